//! Building examples/lua/host.c against Debian's liblua5.4 (found with
//! `pkg-config lua5.4`) and the libstorectx cargo just built: shared by
//! `tests/lua_example.rs` and `examples/lua_demo.rs`. Honours `CC` and
//! `STORECTX_TEST_CFLAGS` like tests/support/cprog.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cprog;

/// The compiler and linker flags of lua5.4, or why there are none.
pub fn lua_flags() -> Result<Vec<String>, String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "lua5.4"])
        .output()
        .map_err(|e| format!("cannot run pkg-config: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pkg-config lua5.4: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect())
}

/// Compiles host.c into `out_dir`, linked to libstorectx as `link` asks;
/// answers the executable or the compiler's complaint.
pub fn build(lua: &[String], link: cprog::Link, out_dir: &Path) -> Result<PathBuf, String> {
    let root = cprog::root();
    let dir = root.join("examples/lua");
    let exe = out_dir.join(format!("lua-host-{}", link.name()));
    let lib = cprog::lib_dir();
    let target = env!("STORECTX_TARGET");
    let mut cmd = cc::Build::new()
        .target(target)
        .host(target)
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler()
        .to_command();
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("c-tests"))
        .arg(format!("-DSCRIPT_DIR=\"{}\"", dir.display()));
    if let Ok(flags) = std::env::var("STORECTX_TEST_CFLAGS") {
        cmd.args(flags.split_whitespace());
    }
    cmd.args(lua.iter().filter(|f| !f.starts_with("-l")))
        .arg(dir.join("host.c"))
        .arg("-o")
        .arg(&exe);
    match link {
        cprog::Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lstorectx")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        cprog::Link::Static => {
            cmd.arg(lib.join("libstorectx.a"));
        }
        cprog::Link::Dlopen => {
            return Err("the Lua host links the library; it has no dlopen build".into());
        }
    }
    cmd.args(lua.iter().filter(|f| f.starts_with("-l")))
        .args(["-lpthread", "-ldl", "-lm"]);
    cprog::run_compiler(&mut cmd).map(|()| exe)
}
