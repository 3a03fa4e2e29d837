//! Generates include/storectx.h from src/ffi/ with cbindgen and sets the
//! shared library's SONAME. The header is committed; CI checks it is fresh.

use std::env;
use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets the version");

    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstorectx.so.{major}");
        // Never unloaded: dlclose leaves it mapped, so a process that loads
        // and unloads it repeatedly does not grow (its handle tables live as
        // long as the process) and the pthread_key destructor of threads
        // still running stays callable.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    // The C tests and the demo build against the library for this target.
    println!(
        "cargo:rustc-env=STORECTX_TARGET={}",
        env::var("TARGET").expect("cargo sets TARGET")
    );
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    config.after_includes = Some(format!(
        "\n#define STORECTX_VERSION_MAJOR {major}\n#define STORECTX_VERSION_MINOR {minor}\n#define STORECTX_VERSION_PATCH {patch}"
    ));
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(root.join("include/storectx.h"));
}
