//! Builds examples/lua/host.c — a real Lua 5.4 interpreter (Debian's
//! liblua5.4-dev) embedding libstorectx — once linked to libstorectx.so and
//! once to libstorectx.a, runs each on examples/lua/*.lua and fails unless
//! every check in it passes (see the first comment of host.c). Without
//! lua5.4 it prints a SKIPPED line and passes, unless
//! `STORECTX_REQUIRE_TOOLS=1`. `STORECTX_TEST_RUNNER` runs it under a
//! command (valgrind in .ci/run).

#[path = "../examples/lua/build_host.rs"]
mod build_host;
#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/skips.rs"]
mod skips;

use std::time::Duration;

fn main() {
    let lua = match build_host::lua_flags() {
        Ok(flags) => flags,
        Err(why) => {
            if std::env::var("STORECTX_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
                eprintln!("lua5.4 is required (STORECTX_REQUIRE_TOOLS=1) but missing: {why}");
                std::process::exit(1);
            }
            println!("SKIPPED: lua5.4 not installed (apt-get install liblua5.4-dev): {why}");
            skips::record("Lua 5.4 host", "liblua5.4-dev pkg-config");
            return;
        }
    };
    let out_dir = cprog::lib_dir().with_file_name("lua-example");
    std::fs::create_dir_all(&out_dir).expect("create output dir");
    let mut failures = 0;
    for link in [cprog::Link::Shared, cprog::Link::Static] {
        let result = build_host::build(&lua, link, &out_dir)
            .and_then(|exe| cprog::run(&exe, Duration::from_secs(300)))
            .and_then(cprog::succeeded)
            .map(drop);
        match result {
            Ok(()) => println!("lua example ({}) ... ok", link.name()),
            Err(why) => {
                println!("lua example ({}) ... FAILED\n{why}", link.name());
                failures += 1;
            }
        }
    }
    if failures > 0 {
        std::process::exit(1);
    }
}
