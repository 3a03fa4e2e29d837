//! Runs the Python ctypes binding's tests against the libstorectx.so cargo
//! just built: the binding's behaviour (bindings/python/test_storectx.py) and
//! its agreement with include/storectx.h (bindings/python/test_header.py);
//! and the wheel: `pip install .` into a fresh venv, then the README's Python
//! snippets (bindings/python/test_wheel.sh).

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/skips.rs"]
mod skips;

fn run_python_test(script: &str) {
    let lib = cprog::lib_dir().join("libstorectx.so");
    let script = cprog::root().join(script);
    let out = match std::process::Command::new("python3")
        .arg(&script)
        .env("STORECTX_LIB", &lib)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !skips::required() => {
            println!(
                "SKIPPED: python3 not installed ({} not run)",
                script.display()
            );
            skips::record("Python binding", "python3");
            return;
        }
        Err(e) => panic!("cannot run python3 (STORECTX_REQUIRE_TOOLS=1 needs it): {e}"),
    };
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_binding_tests_pass() {
    run_python_test("bindings/python/test_storectx.py");
}

#[test]
fn python_binding_matches_the_header() {
    run_python_test("bindings/python/test_header.py");
}

#[test]
fn pip_install_builds_a_wheel_that_runs_the_readme() {
    let root = cprog::root();
    let out = std::process::Command::new("bash")
        .arg(root.join("bindings/python/test_wheel.sh"))
        // Its own target dir: cargo test holds the lock on target/ meanwhile.
        .env("CARGO_TARGET_DIR", root.join("target/wheel"))
        .env_remove("STORECTX_LIB")
        .output()
        .expect("bash is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bindings/python/test_wheel.sh failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(skip) = stdout.lines().find(|l| l.starts_with("SKIPPED")) {
        println!("{skip}");
        if skip.contains("python3-venv") {
            skips::record("Python wheel (pip install .)", "python3-venv");
        } else {
            skips::record("Python wheel (pip install .): PyPI not reachable", "");
        }
    }
}
