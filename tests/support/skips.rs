//! Suites skipped for a missing toolchain are named at the end of the run.
//!
//! A test that cannot run for want of a tool (Go, Lua, asio, python3-venv,
//! ...) prints its `SKIPPED` line and calls [`record`]; the last test
//! target cargo runs, `tests/zz_skipped_suites.rs`, prints every suite
//! skipped in this `cargo test` invocation with the package that brings
//! it, so a missing toolchain is never a silent pass. Under
//! `STORECTX_REQUIRE_TOOLS=1` (as CI sets) each suite's own check fails
//! instead, and so does the summary if anything was recorded.
//!
//! Records are files in `target/<profile>/skipped-suites/<cargo's pid>/`:
//! every test binary of one `cargo test` is a child of the same cargo
//! process, so the summary reads only this run's records.

#![allow(dead_code)]

use std::path::PathBuf;

/// Whether `STORECTX_REQUIRE_TOOLS=1`: every skip is then a failure.
pub fn required() -> bool {
    std::env::var("STORECTX_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// `target/<profile>/skipped-suites`.
pub fn root_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("test binaries live in target/<profile>/deps");
    profile.join("skipped-suites")
}

/// This run's directory: named by the pid of the cargo process that runs
/// every test binary.
pub fn run_dir() -> PathBuf {
    #[cfg(unix)]
    let cargo = std::os::unix::process::parent_id();
    // Only `cargo check`ed for Windows (.ci/cross.sh): no parent id in std there.
    #[cfg(not(unix))]
    let cargo = 0;
    root_dir().join(cargo.to_string())
}

/// Notes that `suite` was skipped; `package` is what installs its tool
/// (Debian/Ubuntu package names, e.g. `golang-go`).
pub fn record(suite: &str, package: &str) {
    let dir = run_dir();
    let file: String = suite
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(file), format!("{suite}\t{package}\n")));
    if let Err(e) = written {
        eprintln!("could not record the skipped suite {suite}: {e}");
    }
}

/// The suites recorded in this run: (suite, package), sorted.
pub fn recorded() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(run_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| {
            let (suite, package) = t.trim_end().split_once('\t')?;
            Some((suite.to_string(), package.to_string()))
        })
        .collect();
    found.sort();
    found
}
