//! Builds every program in cpp20-tests/ as C++20 (`-std=c++20 -pthread`)
//! against the library, runs each, and fails if any does not exit 0. The
//! programs test include/storectx_coro.hpp; those that include <asio.hpp>
//! run on Debian's standalone asio (libasio-dev). Without asio (or without a
//! C++20 compiler) those print "SKIPPED: asio not installed" and pass,
//! unless STORECTX_REQUIRE_TOOLS=1, which makes that a failure.
//!
//! Knobs as for the C programs: `CXX`, `STORECTX_TEST_CFLAGS` (e.g.
//! sanitizers), `STORECTX_TEST_RUNNER` (e.g. valgrind), `STRESS_SCALE`
//! (read by the programs). Arguments filter programs by name:
//! `cargo test --test cpp20_coroutines -- asio_pool`.

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/skips.rs"]
mod skips;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".to_string())
}

fn extra_flags() -> Vec<String> {
    std::env::var("STORECTX_TEST_CFLAGS")
        .map(|f| f.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// Common flags. ASIO_HAS_CO_AWAIT: asio 1.22 only detects clang's
/// coroutines through the old TS header; C++20 clang has them too.
fn base_args() -> Vec<String> {
    let root = cprog::root();
    vec![
        "-std=c++20".into(),
        "-DASIO_HAS_CO_AWAIT=1".into(),
        "-O1".into(),
        "-g".into(),
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pthread".into(),
        format!("-I{}", root.join("include").display()),
        format!("-I{}", root.join("c-tests").display()),
    ]
}

/// Whether <asio.hpp> compiles with C++20 coroutines here.
fn asio_available(out_dir: &Path) -> Result<(), String> {
    let probe = out_dir.join("asio_probe.cpp");
    std::fs::write(
        &probe,
        "#include <asio.hpp>\n#include \"storectx_coro.hpp\"\n\
         #if !defined(STORECTX_CORO_ASIO)\n#error asio awaitable not enabled\n#endif\n\
         int main() { return 0; }\n",
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new(compiler())
        .args(base_args())
        .args(extra_flags())
        .arg("-fsyntax-only")
        .arg(&probe)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", compiler()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn build(source: &Path, out_dir: &Path) -> Result<PathBuf, String> {
    let stem = source.file_stem().expect("file name").to_string_lossy();
    let exe = out_dir.join(stem.as_ref());
    let lib = cprog::lib_dir();
    let mut cmd = Command::new(compiler());
    cmd.args(base_args())
        .args(extra_flags())
        .arg(source)
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lstorectx")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lpthread", "-ldl", "-lm"]);
    cprog::run_compiler(&mut cmd).map(|()| exe)
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(cprog::root().join("cpp20-tests"))
        .expect("cpp20-tests/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cpp"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    sources.sort();
    let out_dir = cprog::lib_dir().with_file_name("cpp20-tests");
    std::fs::create_dir_all(&out_dir).expect("create output dir");

    let require = std::env::var("STORECTX_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    let uses_asio =
        |p: &Path| std::fs::read_to_string(p).is_ok_and(|s| s.contains("#include <asio.hpp>"));
    if sources.iter().any(|p| uses_asio(p)) {
        if let Err(why) = asio_available(&out_dir) {
            if require {
                eprintln!("asio is required (STORECTX_REQUIRE_TOOLS=1) but unusable:\n{why}");
                std::process::exit(1);
            }
            println!("SKIPPED: asio not installed (or no C++20 coroutines): asio programs not run");
            println!("         install libasio-dev; compiler said:\n{why}");
            skips::record("C++20 coroutines on asio", "libasio-dev");
            sources.retain(|p| !uses_asio(p));
        }
    }

    let queue = Mutex::new(sources.clone().into_iter());
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some(source) = queue.lock().unwrap().next() else {
                    break;
                };
                let name = source.file_name().unwrap().to_string_lossy().to_string();
                let result = build(&source, &out_dir)
                    .and_then(|exe| cprog::run(&exe, Duration::from_secs(600)))
                    .and_then(cprog::succeeded);
                match result {
                    Ok(stdout) => {
                        let summary = stdout.lines().last().unwrap_or("").to_string();
                        println!("c++20 program {name} ... ok  {summary}");
                    }
                    Err(why) => {
                        println!("c++20 program {name} ... FAILED");
                        failures.lock().unwrap().push(format!("{name}: {why}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    let total = sources.len();
    if failures.is_empty() {
        println!("\nc++20 programs: {total} passed");
    } else {
        for f in &failures {
            eprintln!("\n==== {f}");
        }
        eprintln!("\nc++20 programs: {} of {total} FAILED", failures.len());
        std::process::exit(1);
    }
}
