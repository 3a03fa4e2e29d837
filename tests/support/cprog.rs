//! Building and running C/C++ programs against the library cargo just
//! built: shared by the C test harness and the demo example.
//!
//! Knobs (environment): `CC`/`CXX` pick the compiler (the `cc` crate reads
//! them), `STORECTX_TEST_CFLAGS` adds flags (e.g. sanitizers),
//! `STORECTX_TEST_LIBS` adds link arguments after the library (e.g. the
//! unwinder a static musl link needs), `STORECTX_TEST_RUNNER` runs each
//! program under a command (e.g. valgrind,
//! `qemu-aarch64 -L /usr/aarch64-linux-gnu`, `wine`), and
//! `STORECTX_TEST_TARGET` builds the programs for another target triple,
//! against the library `cargo build --target TRIPLE` left in
//! target/TRIPLE/<profile>/deps (the cc crate picks that target's compiler:
//! aarch64-linux-gnu-gcc, musl-gcc, x86_64-w64-mingw32-gcc; .ci/cross.sh).
//!
//! A program may carry directives, one per line, anywhere in its text:
//! `cprog: dlopen` (built once, not linked to the library: it `dlopen`s the
//! path in `STORECTX_LIB`), `cprog: timeout SECONDS` (the harness kills it
//! after that long, ten times that under a runner such as valgrind),
//! `cprog: flags ARGS...` (extra compiler/linker arguments) and
//! `cprog: helper FILE` (FILE, relative to c-tests/, is also built as a
//! shared object linked to the library the same way, and the program finds
//! its path in `STORECTX_HELPER`), `cprog: skip on=WORD[,WORD...] REASON`
//! (not built nor run when the target triple has one of the WORDs as a
//! component, e.g. `windows`, `musl`, `aarch64`, or the runner's command
//! starts with it, e.g. `qemu`, `wine`, or it names the link, `static`;
//! `windows+static` wants both; the harness prints the reason: a program that only makes sense on some platforms says so here).
//! Every program runs with `STORECTX_LIB` set to the shared library's full
//! path (named by its SONAME, `libstorectx.so.0`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How a program links the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Shared,
    Static,
    /// Not linked at all: the program `dlopen`s `STORECTX_LIB`.
    Dlopen,
}

impl Link {
    pub fn name(self) -> &'static str {
        match self {
            Link::Shared => "shared",
            Link::Static => "static",
            Link::Dlopen => "dlopen",
        }
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The target triple the programs are built for: `STORECTX_TEST_TARGET`,
/// else the one this test was built for.
pub fn target() -> String {
    std::env::var("STORECTX_TEST_TARGET")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| env!("STORECTX_TARGET").to_string())
}

/// Whether the target triple has `word` as one of its components
/// (`windows`, `musl`, `linux`, `aarch64`, ...).
pub fn target_is(word: &str) -> bool {
    target().split('-').any(|c| c == word)
}

/// Whether the programs run under `word` (`qemu`, `wine`, `valgrind`): the
/// file name of `STORECTX_TEST_RUNNER`'s command starts with it.
pub fn runner_is(word: &str) -> bool {
    runner().first().is_some_and(|r| {
        Path::new(r)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(word))
    })
}

/// The library's file names on the target: what a program links for
/// [`Link::Shared`] and [`Link::Static`], and the file loaded at run time.
pub struct LibFiles {
    pub link_shared: &'static str,
    pub link_static: &'static str,
    pub runtime: &'static str,
}

pub fn lib_files() -> LibFiles {
    if target_is("windows") && target_is("msvc") {
        LibFiles {
            link_shared: "storectx.dll.lib",
            link_static: "storectx.lib",
            runtime: "storectx.dll",
        }
    } else if target_is("windows") {
        LibFiles {
            link_shared: "libstorectx.dll.a",
            link_static: "libstorectx.a",
            runtime: "storectx.dll",
        }
    } else if target_is("apple") {
        LibFiles {
            link_shared: "libstorectx.dylib",
            link_static: "libstorectx.a",
            runtime: "libstorectx.dylib",
        }
    } else {
        LibFiles {
            link_shared: "libstorectx.so",
            link_static: "libstorectx.a",
            runtime: "libstorectx.so",
        }
    }
}

/// target/<profile>/deps (target/TRIPLE/<profile>/deps for another
/// target): where every cargo command (test, run, build) writes the
/// library; the copies in target/<profile> are only refreshed by `cargo
/// build`, so linking those could test a stale library.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // tests live in target/<profile>/deps, examples in target/<profile>/examples
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("exe is inside target/<profile>/");
    let target = target();
    let dir = if target == env!("STORECTX_TARGET") {
        profile.join("deps")
    } else {
        let target_dir = profile.parent().expect("target/<profile> has a parent");
        target_dir
            .join(&target)
            .join(profile.file_name().expect("profile name"))
            .join("deps")
    };
    let files = lib_files();
    assert!(
        dir.join(files.link_shared).exists() && dir.join(files.link_static).exists(),
        "{}/{} not found in {}; build the library for {target} first",
        files.link_shared,
        files.link_static,
        dir.display()
    );
    // The SONAME is libstorectx.so.0; cargo only writes libstorectx.so.
    #[cfg(unix)]
    if files.runtime == "libstorectx.so"
        && std::fs::read_link(dir.join("libstorectx.so.0")).is_err()
    {
        let soname = dir.join("libstorectx.so.0");
        let _ = std::fs::remove_file(&soname);
        std::os::unix::fs::symlink("libstorectx.so", &soname).expect("link libstorectx.so.0");
    }
    dir
}

/// What a program's `cprog:` lines ask of the harness.
#[derive(Debug, Default, Clone)]
pub struct Directives {
    /// `cprog: dlopen`: build only unlinked (`Link::Dlopen`).
    pub dlopen: bool,
    /// `cprog: timeout SECONDS`.
    pub timeout: Option<Duration>,
    /// `cprog: flags ARGS...`.
    pub flags: Vec<String>,
    /// `cprog: helper FILE`: a shared object to build beside the program.
    pub helper: Option<PathBuf>,
    /// `cprog: skip on=WORDS REASON`: (target words, reason), one per line.
    pub skips: Vec<(Vec<String>, String)>,
}

impl Directives {
    /// Why this program, linked as `link`, is not run on the target, if it
    /// is not. A word matches a target component, the runner or the link
    /// (`static`, `shared`, `dlopen`); `a+b` matches when both do.
    pub fn skipped(&self, link: Link) -> Option<&str> {
        let matches = |w: &str| {
            w.split('+')
                .all(|p| target_is(p) || runner_is(p) || p == link.name())
        };
        self.skips
            .iter()
            .find(|(words, _)| words.iter().any(|w| matches(w)))
            .map(|(_, why)| why.trim_end_matches("*/").trim())
    }
}

/// Reads the `cprog:` directives of `source`.
pub fn directives(source: &Path) -> Result<Directives, String> {
    let text = std::fs::read_to_string(source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let mut d = Directives::default();
    for line in text.lines() {
        let Some((_, rest)) = line.split_once("cprog:") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        match words.next() {
            Some("dlopen") => d.dlopen = true,
            Some("timeout") => {
                let secs = words
                    .next()
                    .and_then(|w| w.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!("{}: `cprog: timeout` wants seconds", source.display())
                    })?;
                d.timeout = Some(Duration::from_secs(secs));
            }
            Some("flags") => d.flags.extend(words.map(String::from)),
            Some("helper") => {
                let file = words
                    .next()
                    .ok_or_else(|| format!("{}: `cprog: helper` wants a file", source.display()))?;
                d.helper = Some(root().join("c-tests").join(file));
            }
            Some("skip") => {
                let words = words
                    .next()
                    .and_then(|w| w.strip_prefix("on="))
                    .ok_or_else(|| {
                        format!(
                            "{}: `cprog: skip` wants on=WORD[,WORD...]",
                            source.display()
                        )
                    })?;
                let reason = words_rest(rest, words);
                if reason.is_empty() {
                    return Err(format!(
                        "{}: `cprog: skip` wants a reason",
                        source.display()
                    ));
                }
                d.skips
                    .push((words.split(',').map(String::from).collect(), reason));
            }
            other => {
                return Err(format!(
                    "{}: unknown directive `cprog: {}`",
                    source.display(),
                    other.unwrap_or("")
                ))
            }
        }
    }
    Ok(d)
}

/// The text of a directive line after its `on=...` word.
fn words_rest(rest: &str, on: &str) -> String {
    let after = &rest[rest.find(on).expect("word of this line") + on.len()..];
    after.trim().trim_end_matches("*/").trim().to_string()
}

/// The shared library under its SONAME, as programs that `dlopen` it see it.
pub fn shared_lib() -> PathBuf {
    let files = lib_files();
    if files.runtime == "libstorectx.so" {
        lib_dir().join("libstorectx.so.0")
    } else {
        lib_dir().join(files.runtime)
    }
}

fn compiler(cpp: bool) -> Command {
    let target = target();
    cc::Build::new()
        .cpp(cpp)
        .target(&target)
        .host(env!("STORECTX_TARGET"))
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler()
        .to_command()
}

/// Where the helper shared object of the program `exe` is built, and what
/// `STORECTX_HELPER` names when it runs.
pub fn helper_path(exe: &Path) -> PathBuf {
    let mut name = exe.file_name().expect("file name").to_os_string();
    name.push("-helper.so");
    exe.with_file_name(name)
}

/// Compiles `source` into `out_dir`, linked as `link` asks, with its
/// `cprog: helper` if any; answers the executable's path or the compiler's
/// complaint.
pub fn build(source: &Path, link: Link, out_dir: &Path) -> Result<PathBuf, String> {
    let stem = source.file_stem().expect("file name").to_string_lossy();
    let suffix = if target_is("windows") { ".exe" } else { "" };
    let exe = out_dir.join(format!("{stem}-{}{suffix}", link.name()));
    let d = directives(source)?;
    if target_is("windows") {
        // A DLL is found beside the program that loads it. Programs built
        // and run in parallel share that copy: it is replaced only when it
        // differs, and then atomically (a copy under a name of this
        // program's, renamed over it), never rewritten in place while
        // another program loads it (wine then found a truncated DLL:
        // "unimplemented function storectx.dll.storectx_store_id_new").
        let dll = lib_files().runtime;
        let (from, to) = (lib_dir().join(dll), out_dir.join(dll));
        let same = matches!((std::fs::read(&from), std::fs::read(&to)), (Ok(a), Ok(b)) if a == b);
        if !same {
            let part = out_dir.join(format!("{dll}.{stem}-{}.part", link.name()));
            std::fs::copy(&from, &part)
                .and_then(|_| std::fs::rename(&part, &to))
                .map_err(|e| format!("cannot copy {dll} to {}: {e}", out_dir.display()))?;
        }
    }
    if let Some(helper) = &d.helper {
        // A shared object that carries the static library must never be
        // unloaded (README, "Install"): its copy's handle tables and the
        // pthread_key destructor of threads still running live in it.
        let flags: &[&str] = match link {
            Link::Static => &["-shared", "-fPIC", "-Wl,-z,nodelete"],
            _ => &["-shared", "-fPIC"],
        };
        compile(helper, link, &helper_path(&exe), flags)?;
    }
    compile(source, link, &exe, &d.flags)?;
    Ok(exe)
}

/// One compiler run: `source` to `out`, linked as `link` asks.
fn compile(
    source: &Path,
    link: Link,
    out: &Path,
    extra: &[impl AsRef<std::ffi::OsStr>],
) -> Result<(), String> {
    let cpp = source.extension().is_some_and(|e| e == "cpp");
    let lib = lib_dir();
    let mut cmd = compiler(cpp);
    cmd.arg(if cpp { "-std=c++17" } else { "-std=c11" })
        .args(["-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("c-tests"));
    if target_is("windows") && target_is("gnu") {
        // C99 printf (%zu, PRIu64) instead of msvcrt's; mingw's gcc still
        // checks format(printf) attributes against msvcrt's, hence -Wno-format.
        cmd.args(["-D__USE_MINGW_ANSI_STDIO=1", "-Wno-format"]);
    }
    if let Ok(flags) = std::env::var("STORECTX_TEST_CFLAGS") {
        cmd.args(flags.split_whitespace());
    }
    cmd.arg(source).arg("-o").arg(out);
    let files = lib_files();
    if target_is("windows") {
        // The import library or archive by its path (with -static, -l would
        // prefer libstorectx.a to the DLL's import library); -static puts
        // winpthreads and libgcc in the program, so only storectx.dll is
        // loaded beside it.
        match link {
            Link::Shared => {
                cmd.arg(lib.join(files.link_shared));
            }
            Link::Static => {
                cmd.arg(lib.join(files.link_static));
            }
            Link::Dlopen => {}
        }
        cmd.args(extra).args(["-static", "-lpthread", "-lm"]);
        // What the Rust static library needs from Windows
        // (`--print native-static-libs`).
        if link == Link::Static {
            cmd.args([
                "-lkernel32",
                "-ladvapi32",
                "-lntdll",
                "-luserenv",
                "-lws2_32",
                "-lsynchronization",
                "-lbcrypt",
                "-ldbghelp",
            ]);
        }
    } else {
        match link {
            Link::Shared => {
                cmd.arg(format!("-L{}", lib.display()))
                    .arg("-lstorectx")
                    .arg(format!("-Wl,-rpath,{}", lib.display()));
            }
            Link::Static => {
                cmd.arg(lib.join(files.link_static));
            }
            Link::Dlopen => {}
        }
        cmd.args(extra).args(["-lpthread", "-ldl", "-lm"]);
    }
    if let Ok(libs) = std::env::var("STORECTX_TEST_LIBS") {
        cmd.args(libs.split_whitespace());
    }
    run_compiler(&mut cmd)
}

/// Runs a compiler command; on failure the error shows the command line
/// and the compiler's output.
pub fn run_compiler(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| {
        let program = cmd.get_program().to_string_lossy().into_owned();
        format!("cannot run {program}: {e}")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "compile failed: {} {}\n{}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The runner prefix from `STORECTX_TEST_RUNNER`, if any.
pub fn runner() -> Vec<String> {
    std::env::var("STORECTX_TEST_RUNNER")
        .map(|r| r.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Runs `exe`, killing it after `limit`; answers its output.
pub fn run(exe: &Path, limit: Duration) -> Result<Output, String> {
    let runner = runner();
    let mut cmd = match runner.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // cargo test puts target/<profile> on LD_LIBRARY_PATH, which outranks
    // the program's RUNPATH and could load a stale uplifted libstorectx.
    let mut child = cmd
        .env_remove("LD_LIBRARY_PATH")
        .env("STORECTX_LIB", shared_lib())
        .env("STORECTX_HELPER", helper_path(exe))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    // Drain the pipes on helper threads so a chatty program cannot block.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).map(|_| v)
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).map(|_| v)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} ran longer than {limit:?}; killed",
                exe.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok(Output {
        status,
        stdout: out_reader.join().expect("reader").unwrap_or_default(),
        stderr: err_reader.join().expect("reader").unwrap_or_default(),
    })
}

/// A finished program's stdout if it exited 0; otherwise a report with its
/// status and both outputs, for the test's failure list.
pub fn succeeded(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "exited with {}\n--- stdout\n{}--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
