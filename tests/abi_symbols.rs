//! The ABI promise, checked (issue 21; docs/abi.md): the shared library
//! exports exactly the functions include/storectx.h declares, each under the
//! version node storectx.map gives it (`STORECTX_0.2`), and nothing else;
//! storectx.map lists exactly the header's functions. Reads the library this
//! cargo invocation built with `nm -D --defined-only` (binutils); without nm
//! the library check is a recorded skip (a failure under
//! STORECTX_REQUIRE_TOOLS=1). `.ci/abi.sh` adds the abidiff against the
//! committed baseline.

#[path = "support/cprog.rs"]
mod cprog;
#[path = "support/header.rs"]
mod header;
#[path = "support/skips.rs"]
mod skips;

use std::collections::{BTreeMap, BTreeSet};

/// storectx.map: function name -> version node.
fn map_nodes() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(cprog::root().join("storectx.map")).expect("storectx.map");
    // Drop /* comments */.
    let mut plain = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("/*") {
        plain.push_str(&rest[..at]);
        rest = &rest[at + rest[at..].find("*/").expect("comment closes") + 2..];
    }
    plain.push_str(rest);
    let mut nodes = BTreeMap::new();
    let mut node = String::new();
    let mut local = false;
    for token in plain
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|t| !t.is_empty())
    {
        match token {
            "{" => {}
            "global:" => local = false,
            "local:" => local = true,
            t if t.starts_with('}') => node.clear(),
            t if node.is_empty() => {
                node = t.trim_end_matches('{').to_string();
                local = false;
            }
            t if !local => {
                let previous = nodes.insert(t.to_string(), node.clone());
                assert!(previous.is_none(), "storectx.map lists {t} twice");
            }
            _ => {}
        }
    }
    nodes
}

#[test]
fn the_version_script_lists_exactly_the_header_functions() {
    let header: BTreeSet<String> = header::functions(&header::text()).into_iter().collect();
    let map: BTreeSet<String> = map_nodes().into_keys().collect();
    assert!(header.len() >= 30, "found only {} functions", header.len());
    let missing: Vec<_> = header.difference(&map).collect();
    let extra: Vec<_> = map.difference(&header).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "storectx.map and include/storectx.h differ: not in the map {missing:?}, \
         not in the header {extra:?} (a function added to the header goes into a new \
         version node, see docs/abi.md)"
    );
    for (name, node) in map_nodes() {
        assert!(
            node.starts_with("STORECTX_"),
            "{name} is in node {node}, not a STORECTX_* node"
        );
    }
}

#[test]
fn the_library_exports_the_header_functions_versioned_and_nothing_else() {
    if !cfg!(target_os = "linux") || std::env::var("STORECTX_SYMVER").is_ok_and(|v| v == "0") {
        println!("symbol versions are made on Linux only (and not with STORECTX_SYMVER=0)");
        return;
    }
    let lib = cprog::lib_dir().join("libstorectx.so");
    let out = match std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "nm -D {} failed: {}",
            lib.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(!skips::required(), "nm (binutils) is required: {e}");
            println!("SKIPPED: nm not installed (binutils): exports not checked");
            skips::record("ABI: exported symbols", "binutils");
            return;
        }
    };
    let mut nodes = map_nodes();
    let testing_hooks = cfg!(feature = "testing");
    let mut version_symbols = BTreeSet::new();
    let mut exported = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split_whitespace().rev();
        let (Some(symbol), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        if kind == "A" {
            version_symbols.insert(symbol.to_string());
            continue;
        }
        let (name, node) = symbol.split_once("@@").unwrap_or((symbol, ""));
        exported.insert(name.to_string(), node.to_string());
    }
    if testing_hooks {
        for (name, node) in &exported {
            if name.starts_with("storectx_testing_") {
                nodes.insert(name.clone(), "STORECTX_TESTING".into());
                assert_eq!(node, "STORECTX_TESTING", "{name}");
            }
        }
    }
    let mut failures = Vec::new();
    for (name, node) in &exported {
        match nodes.get(name) {
            None => failures.push(format!(
                "{name} is exported but not a function of include/storectx.h"
            )),
            Some(want) if want != node => failures.push(format!(
                "{name} is exported with version '{node}', storectx.map says '{want}'"
            )),
            Some(_) => {}
        }
    }
    for name in nodes.keys() {
        if !exported.contains_key(name) {
            failures.push(format!("{name} is declared but not exported"));
        }
    }
    let want_versions: BTreeSet<String> = nodes.values().cloned().collect();
    if version_symbols != want_versions {
        failures.push(format!(
            "version nodes {version_symbols:?}, expected {want_versions:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{}: {}",
        lib.display(),
        failures.join("\n")
    );
    println!(
        "{}: {} functions, versions {:?}",
        lib.display(),
        exported.len(),
        version_symbols
    );
}

/// The header declares the library's API only: no function of another name
/// (cbindgen once copied the platform layer's `__ulock_wait` import into it).
#[test]
fn the_header_declares_only_storectx_functions() {
    let header = header::text();
    let foreign: Vec<&str> = header
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with('*') && !t.starts_with('/') && !t.starts_with('#')
        })
        .filter(|l| l.trim_end().ends_with(");") && l.contains('('))
        .filter(|l| {
            let before = &l[..l.find('(').expect("has a parenthesis")];
            let name = before
                .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("");
            !name.is_empty() && !name.starts_with("storectx_")
        })
        .collect();
    assert!(
        foreign.is_empty(),
        "include/storectx.h declares functions outside the API: {foreign:?}"
    );
}
