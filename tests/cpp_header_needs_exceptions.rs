//! `storectx.hpp` throws `storectx::Error` on every failure, so it needs C++
//! exceptions. Built with `-fno-exceptions` (common in engines that embed a
//! WebAssembly runtime), it stops at its own `#error`, which says why and
//! points to the C API; a new-user trial saw g++ stop inside the header at a
//! `throw` instead ("exception handling disabled"), with nothing saying that
//! storectx.h works without them. With exceptions it compiles.

#[path = "support/skips.rs"]
mod skips;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `c++ -std=c++17 -fsyntax-only <flags>` over `#include "storectx.hpp"`;
/// None when there is no C++ compiler.
fn check_header(flags: &[&str]) -> Option<Output> {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let mut cmd: Command = cc::Build::new()
        .cpp(true)
        .target(env!("STORECTX_TARGET"))
        .host(env!("STORECTX_TARGET"))
        .opt_level(0)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler()
        .to_command();
    cmd.args(["-std=c++17", "-fsyntax-only"])
        .args(flags)
        .arg("-I")
        .arg(&include)
        .args(["-x", "c++", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            assert!(!skips::required(), "a C++ compiler is required: {e}");
            println!("SKIPPED: no C++ compiler (build-essential): storectx.hpp not checked");
            skips::record("C++17 header without exceptions", "build-essential");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"#include \"storectx.hpp\"\nint main() { return 0; }\n")
        .expect("write the program");
    Some(child.wait_with_output().expect("the compiler runs"))
}

#[test]
fn without_exceptions_the_header_says_why() {
    let Some(out) = check_header(&["-fno-exceptions"]) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "compiled with -fno-exceptions");
    assert!(
        stderr.contains("storectx.hpp throws storectx::Error")
            && stderr.contains("needs C++ exceptions")
            && stderr.contains("C API of storectx.h"),
        "the compiler's complaint does not say why: {stderr}"
    );
}

#[test]
fn with_exceptions_the_header_compiles() {
    let Some(out) = check_header(&[]) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
