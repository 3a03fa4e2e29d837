//! Runs the Python ctypes binding's tests against the libstorectx.so cargo
//! just built.

#[path = "support/cprog.rs"]
mod cprog;

#[test]
fn python_binding_tests_pass() {
    let lib = cprog::lib_dir().join("libstorectx.so");
    let script = cprog::root().join("bindings/python/test_storectx.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .env("STORECTX_LIB", &lib)
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "python binding tests failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
