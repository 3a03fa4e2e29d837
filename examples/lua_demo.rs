//! `cargo run --example lua_demo`: builds examples/lua/host.c (a Lua 5.4
//! interpreter embedding libstorectx; needs liblua5.4-dev) against
//! libstorectx.so and runs it with `--trace`: each lua_State a store, nested
//! calls across states, a coroutine that yields in a host function on one
//! thread and is resumed on another, and abandoned coroutines whose locks
//! the garbage collector releases.

#[path = "lua/build_host.rs"]
mod build_host;
#[path = "../tests/support/cprog.rs"]
mod cprog;

fn main() {
    let lua = build_host::lua_flags().unwrap_or_else(|why| {
        eprintln!("{why}\nthe Lua demo needs Lua 5.4: apt-get install liblua5.4-dev");
        std::process::exit(1);
    });
    let out_dir = cprog::lib_dir().with_file_name("lua-example");
    std::fs::create_dir_all(&out_dir).expect("create output dir");
    let exe =
        build_host::build(&lua, cprog::Link::Shared, &out_dir).unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new(&exe)
        .arg("--trace")
        .env_remove("LD_LIBRARY_PATH")
        .status()
        .expect("run the Lua demo");
    std::process::exit(status.code().unwrap_or(1));
}
