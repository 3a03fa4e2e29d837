//! `cargo run --example demo`: builds c-tests/demo.c against libstorectx.so
//! and runs it, showing nested cross-store calls and a coroutine that
//! migrates between threads.

#[path = "../tests/support/cprog.rs"]
mod cprog;

fn main() {
    let out_dir = cprog::lib_dir().with_file_name("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create output dir");
    let exe = cprog::build(
        &cprog::root().join("c-tests/demo.c"),
        cprog::Link::Shared,
        &out_dir,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new(&exe)
        .status()
        .expect("run the demo");
    std::process::exit(status.code().unwrap_or(1));
}
