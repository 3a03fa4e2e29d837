//! Every `extern "C"` export runs its body inside the panic boundary (the
//! lesson of rustls-ffi #286: one export that forgot it could unwind into C).

#[path = "support/header.rs"]
mod header;

use std::path::Path;

#[test]
fn every_export_starts_inside_the_panic_boundary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    let mut names = Vec::new();
    for file in std::fs::read_dir(&dir).expect("src/ffi") {
        let path = file.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read source");
        let mut rest = text.as_str();
        // Safe and unsafe exports alike, and the private out-of-line halves
        // of the fast exports (`*_slow`, `*_refused`, `*_full`), which must
        // be inside the boundary too but are not exported.
        while let Some(at) = rest.find("extern \"C\" fn ") {
            rest = &rest[at..];
            let name: String = rest["extern \"C\" fn ".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body = &rest[rest.find('{').expect("fn body") + 1..];
            let first = body.trim_start();
            assert!(
                [
                    "boundary(",
                    "boundary::status(",
                    "boundary::status_fast(",
                    "boundary::status_fast_cx(",
                    "boundary::refused_at(",
                    "boundary::refused_or(",
                    "boundary::done_refused_or(",
                ]
                .iter()
                .any(|b| first.starts_with(b)),
                "{}: export {name} does not start with boundary(..) / boundary::status(..)",
                path.display()
            );
            if ["_slow", "_refused", "_full"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                assert!(!text.contains(&format!("pub extern \"C\" fn {name}")));
                assert!(!text.contains(&format!("pub unsafe extern \"C\" fn {name}")));
                rest = body;
                continue;
            }
            assert!(
                text.contains(&format!("#[no_mangle]\npub extern \"C\" fn {name}"))
                    || text.contains(&format!("#[no_mangle]\npub unsafe extern \"C\" fn {name}")),
                "{name} lacks #[no_mangle] directly above it"
            );
            names.push(name);
            rest = body;
        }
    }
    // The header declares exactly the exported functions.
    let mut declared = header::functions(&header::text());
    declared.sort();
    names.sort();
    assert!(names.len() >= 34, "found only {} exports", names.len());
    assert_eq!(
        names, declared,
        "exports in src/ffi and functions in the header differ"
    );
}

#[test]
fn header_names_carry_the_prefix() {
    let header = header::text();
    for line in header.lines() {
        let t = line.trim_start();
        for (key, prefix) in [
            ("#define ", "STORECTX_"),
            ("typedef struct ", "storectx_"),
            ("enum ", "storectx_"),
            ("struct ", "storectx_"),
        ] {
            if let Some(rest) = t.strip_prefix(key) {
                assert!(
                    rest.starts_with(prefix)
                        || (key == "#define " && rest.starts_with("STORECTX_H")),
                    "header item without the {prefix} prefix: {line}"
                );
            }
        }
    }
}
