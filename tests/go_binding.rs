//! Runs `go vet` and `go test -race` (GOMAXPROCS=4) on the Go binding in
//! bindings/go, linked to the libstorectx.a this cargo invocation just built.
//!
//! Which library: the package links `target/release/libstorectx.a` by
//! default (what a user gets after `cargo build --release`), but that copy
//! is only refreshed by `cargo build --release`, so testing it here could
//! test a stale library, and building it from inside `cargo test` would
//! fight the outer cargo for the target directory. Instead the binding is
//! built with `-tags storectx_external` and `CGO_LDFLAGS` naming the archive
//! in target/<profile>/deps, which every cargo command rewrites (as the C
//! tests and the Python binding do). `.ci/run` checks the default path.
//!
//! No Go toolchain: prints "SKIPPED: go not installed" and passes, unless
//! STORECTX_REQUIRE_TOOLS=1, then fails.

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/skips.rs"]
mod skips;

use std::path::Path;
use std::process::Command;

/// What `rustc --print native-static-libs` lists for the archive.
const SYSTEM_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl";

fn main() {
    if Command::new("go").arg("version").output().is_err() {
        if std::env::var("STORECTX_REQUIRE_TOOLS").as_deref() == Ok("1") {
            eprintln!("go is not installed and STORECTX_REQUIRE_TOOLS=1");
            std::process::exit(1);
        }
        println!("SKIPPED: go not installed (the Go binding was not tested)");
        skips::record("Go binding", "golang-go");
        return;
    }
    let archive = cprog::lib_dir().join("libstorectx.a");
    let package = cprog::root().join("bindings/go");
    let ldflags = format!("{} {SYSTEM_LIBS}", archive.display());

    run_go(
        &package,
        &ldflags,
        &["vet", "-tags", "storectx_external", "./..."],
    );
    run_go(
        &package,
        &ldflags,
        &[
            "test",
            "-race",
            "-tags",
            "storectx_external",
            "-count=1",
            "-timeout=900s",
            "-v",
            "./...",
        ],
    );
    println!("go_binding: go vet and go test -race passed");
}

fn run_go(package: &Path, ldflags: &str, args: &[&str]) {
    let mut cmd = Command::new("go");
    cmd.args(args)
        .current_dir(package)
        .env("CGO_ENABLED", "1")
        .env("CGO_LDFLAGS", ldflags)
        .env("GOMAXPROCS", "4")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off") // the module has no dependencies: never fetch
        // cargo test puts target/<profile> on LD_LIBRARY_PATH; the test
        // binary links the archive statically and needs nothing from it.
        .env_remove("LD_LIBRARY_PATH");
    // The go command needs a build cache and a GOPATH; give it both inside
    // target/ when the environment names none (a CI container without HOME).
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if !set("GOCACHE") && !set("XDG_CACHE_HOME") && !set("HOME") {
        cmd.env("GOCACHE", cprog::lib_dir().with_file_name("go-build"));
    }
    if !set("GOPATH") && !set("HOME") {
        cmd.env("GOPATH", cprog::lib_dir().with_file_name("go-path"));
    }
    println!(
        "go_binding: go {} (in {})",
        args.join(" "),
        package.display()
    );
    let status = cmd.status().expect("run go");
    if !status.success() {
        eprintln!("go_binding: `go {}` failed ({status})", args.join(" "));
        std::process::exit(1);
    }
}
