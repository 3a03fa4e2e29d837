//! include/storectx.h as the tests read it: its text and the functions it
//! declares. Shared by the ABI test (header vs storectx.map vs the
//! library's exports) and the panic-boundary test (header vs src/ffi).

#![allow(dead_code)]

use std::path::Path;

/// The text of include/storectx.h (panics if it cannot be read).
pub fn text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("include/storectx.h"))
        .expect("include/storectx.h")
}

/// The functions `header` declares: every `storectx_NAME(` on a line that
/// is not a comment line (one starting with `*` or `/`), in header order,
/// a name declared twice listed twice.
pub fn functions(header: &str) -> Vec<String> {
    header
        .lines()
        .filter(|l| !l.trim_start().starts_with('*') && !l.trim_start().starts_with('/'))
        .flat_map(|l| {
            l.match_indices("storectx_").filter_map(move |(at, _)| {
                let name: String = l[at..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                l[at + name.len()..].starts_with('(').then_some(name)
            })
        })
        .collect()
}
