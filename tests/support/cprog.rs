//! Building and running C/C++ programs against the library cargo just
//! built: shared by the C test harness and the demo example.
//!
//! Knobs (environment): `CC`/`CXX` pick the compiler (the `cc` crate reads
//! them), `STORECTX_TEST_CFLAGS` adds flags (e.g. sanitizers),
//! `STORECTX_TEST_RUNNER` runs each program under a command (e.g. valgrind).
//!
//! A program may carry directives, one per line, anywhere in its text:
//! `cprog: dlopen` (built once, not linked to the library: it `dlopen`s the
//! path in `STORECTX_LIB`), `cprog: timeout SECONDS` (the harness kills it
//! after that long, ten times that under a runner such as valgrind),
//! `cprog: flags ARGS...` (extra compiler/linker arguments) and
//! `cprog: helper FILE` (FILE, relative to c-tests/, is also built as a
//! shared object linked to the library the same way, and the program finds
//! its path in `STORECTX_HELPER`). Every program runs with `STORECTX_LIB`
//! set to the shared library's full path (named by its SONAME,
//! `libstorectx.so.0`).

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

/// target/<profile>/deps: where every cargo command (test, run, build)
/// writes libstorectx.{so,a}; the copies in target/<profile> are only
/// refreshed by `cargo build`, so linking those could test a stale library.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // tests live in target/<profile>/deps, examples in target/<profile>/examples
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("exe is inside target/<profile>/");
    let dir = profile.join("deps");
    assert!(
        dir.join("libstorectx.so").exists() && dir.join("libstorectx.a").exists(),
        "libstorectx.so/.a not found in {}; build the library first",
        dir.display()
    );
    // The SONAME is libstorectx.so.0; cargo only writes libstorectx.so.
    #[cfg(unix)]
    if std::fs::read_link(dir.join("libstorectx.so.0")).is_err() {
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

/// The shared library under its SONAME, as programs that `dlopen` it see it.
pub fn shared_lib() -> PathBuf {
    lib_dir().join("libstorectx.so.0")
}

fn compiler(cpp: bool) -> Command {
    let target = env!("STORECTX_TARGET");
    cc::Build::new()
        .cpp(cpp)
        .target(target)
        .host(target)
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
    let exe = out_dir.join(format!("{stem}-{}", link.name()));
    let d = directives(source)?;
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
    if let Ok(flags) = std::env::var("STORECTX_TEST_CFLAGS") {
        cmd.args(flags.split_whitespace());
    }
    cmd.arg(source).arg("-o").arg(out);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lstorectx")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Link::Static => {
            cmd.arg(lib.join("libstorectx.a"));
        }
        Link::Dlopen => {}
    }
    cmd.args(extra).args(["-lpthread", "-ldl", "-lm"]);
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
