//! Build script. Two jobs, both opt-in, so that a consumer's plain
//! `cargo build --release` compiles no header tooling and writes nothing
//! into the source tree:
//!
//! * `STORECTX_SONAME=1` in the environment gives the cdylib its versioned
//!   SONAME (see "Versioning and ABI" in the README): `libstorectx.so.0.<minor>`
//!   while the version is 0.x, `libstorectx.so.<major>` from 1.0; on macOS
//!   the install name `@rpath/libstorectx.0.<minor>.dylib`. The CMake
//!   build sets it, and stages the library under that name. A plain cargo
//!   build leaves the SONAME out (install name `@rpath/libstorectx.dylib`),
//!   so a program linked with `-Ltarget/release -lstorectx` records the
//!   file cargo writes, and runs from the cargo output as is. Windows has
//!   no SONAME: `storectx.dll` with its import library
//!   (`storectx.dll.lib` MSVC, `libstorectx.dll.a` GNU). Per platform:
//!   docs/platforms.md.
//! * `--features generate-header` regenerates include/storectx.h from
//!   src/ffi/ with cbindgen (an optional build-dependency). The header is
//!   committed; `.ci/run` regenerates it and fails if it differs.

use std::env;

fn main() {
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets the version");

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=STORECTX_SONAME");
    let want_soname = env::var("STORECTX_SONAME").is_ok_and(|v| !v.is_empty() && v != "0");
    // The ABI name: 0.<minor> while the version is 0.x, <major> from 1.0.
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major.clone()
    };
    let vendor = env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    let family = env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    if vendor == "apple" {
        // Mach-O: the install name is what a program linked to the dylib
        // records. Versioned and @rpath-relative in the CMake build (which
        // stages the file under that name); @rpath/libstorectx.dylib, the
        // file cargo writes, otherwise. The compatibility version is the
        // ABI's: dyld refuses a library older than the program was linked to.
        // Never unloaded: dyld does not unload a dylib with thread-local
        // variables, and the thread word is one (src/platform/mod.rs).
        let name = if want_soname {
            format!("libstorectx.{abi}.dylib")
        } else {
            "libstorectx.dylib".to_string()
        };
        let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets the version");
        let compat = if major == "0" {
            format!("0.{minor}.0")
        } else {
            format!("{major}.0.0")
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/{name}");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-compatibility_version,{compat}");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-current_version,{major}.{minor}.{patch}");
    } else if family == "unix" {
        // ELF (Linux, FreeBSD, Android).
        if want_soname {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstorectx.so.{abi}");
        }
        // Never unloaded: dlclose leaves it mapped, so a process that loads
        // and unloads it repeatedly does not grow (its handle tables live as
        // long as the process) and the pthread_key destructor of threads
        // still running stays callable.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    // Windows: no SONAME (a DLL is found by its file name, storectx.dll);
    // the module pins itself at its first use instead of -z nodelete
    // (src/platform/windows.rs).
    // Symbol versions (issue 21): a self-contained block, see the module.
    symbol_versions::link_cdylib_with_version_script();
    // The C tests and the demo build against the library for this target.
    println!(
        "cargo:rustc-env=STORECTX_TARGET={}",
        env::var("TARGET").expect("cargo sets TARGET")
    );

    #[cfg(feature = "generate-header")]
    header::generate();
}

/// The cdylib's exports get the version nodes of `storectx.map` (docs/abi.md),
/// on Linux (glibc and musl). rustc links every cdylib with an anonymous
/// version script of its own (`{ global: <exports>; local: *; }`), which GNU
/// ld refuses to combine with named nodes and lld lets override them. So the
/// cdylib is linked through a small `ld.bfd` wrapper (found first through
/// `-B`, chosen by `-fuse-ld=bfd`) that drops rustc's list and keeps every
/// other argument; `storectx.map` then is the only version script, with the
/// same exports (tests/abi_symbols.rs keeps them equal to the header's
/// functions). `STORECTX_SYMVER=0` turns it off (unversioned exports, as
/// before). Only the cdylib is affected: the static library and the rlib
/// are untouched.
mod symbol_versions {
    use std::env;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    pub fn link_cdylib_with_version_script() {
        println!("cargo:rerun-if-changed=storectx.map");
        println!("cargo:rerun-if-env-changed=STORECTX_SYMVER");
        println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
        let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
        let off = env::var("STORECTX_SYMVER").is_ok_and(|v| v == "0");
        if !linux || off {
            return;
        }
        let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        let mut map = fs::read_to_string(root.join("storectx.map")).expect("read storectx.map");
        if env::var_os("CARGO_FEATURE_TESTING").is_some() {
            // The test-only hooks of the `testing` feature; never shipped.
            map.push_str(
                "STORECTX_TESTING {\n  global:\n    storectx_testing_*;\n} STORECTX_0.2;\n",
            );
        }
        let map_path = out.join("storectx.map");
        fs::write(&map_path, map).expect("write the version script");

        // The linker the C compiler driver would run: `<prefix>ld.bfd`,
        // where a cross compiler `aarch64-linux-gnu-gcc` gives the prefix.
        let prefix = env::var("RUSTC_LINKER")
            .ok()
            .and_then(|l| {
                let name = l.rsplit('/').next().unwrap_or("").to_string();
                ["gcc", "clang", "cc"]
                    .iter()
                    .find_map(|d| name.strip_suffix(d).map(str::to_string))
            })
            .unwrap_or_default();
        let dir = out.join("symver-ld");
        fs::create_dir_all(&dir).expect("create the wrapper directory");
        let wrapper = dir.join("ld.bfd");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 # Written by libstorectx's build.rs: runs {prefix}ld.bfd without the\n\
                 # anonymous version script rustc adds, so that storectx.map names the\n\
                 # version nodes of the exports.\n\
                 for a in \"$@\"; do\n\
                 \x20 shift\n\
                 \x20 case $a in\n\
                 \x20   --version-script=*/rustc*/list) continue ;;\n\
                 \x20 esac\n\
                 \x20 set -- \"$@\" \"$a\"\n\
                 done\n\
                 # musl-gcc and the like wrap the host's own ld.\n\
                 command -v {prefix}ld.bfd >/dev/null 2>&1 || exec ld.bfd \"$@\"\n\
                 exec {prefix}ld.bfd \"$@\"\n"
            ),
        )
        .expect("write the linker wrapper");
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
        println!("cargo:rustc-cdylib-link-arg=-B{}/", dir.display());
        println!("cargo:rustc-cdylib-link-arg=-fuse-ld=bfd");
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map_path.display()
        );
    }
}

#[cfg(feature = "generate-header")]
mod header {
    use std::env;
    use std::path::PathBuf;

    pub fn generate() {
        let root =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        let version = |part: &str| {
            env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets the version")
        };
        println!("cargo:rerun-if-changed=src/ffi");
        println!("cargo:rerun-if-changed=cbindgen.toml");

        let mut config =
            cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
        config.after_includes = Some(format!(
            "
/**
 * \\ingroup api_diagnostics
 * \\brief Major version of this header; storectx_version() gives the library's.
 */
#define STORECTX_VERSION_MAJOR {}
/**
 * \\ingroup api_diagnostics
 * \\brief Minor version of this header (while 0.x, a new minor may change the ABI).
 */
#define STORECTX_VERSION_MINOR {}
/**
 * \\ingroup api_diagnostics
 * \\brief Patch version of this header.
 */
#define STORECTX_VERSION_PATCH {}",
            version("MAJOR"),
            version("MINOR"),
            version("PATCH")
        ));
        cbindgen::Builder::new()
            .with_crate(&root)
            .with_config(config)
            .generate()
            .expect("cbindgen generates the header")
            .write_to_file(root.join("include/storectx.h"));
    }
}
