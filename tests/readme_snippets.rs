//! The README and the guides in docs/ show only tested code, and point only
//! at files that exist.
//!
//! Every code block marked `<!-- snippet: PATH -->` in README.md or in a
//! docs/*.md page must appear, line for line (indentation aside), in PATH —
//! a file the test suite compiles or runs — so the docs never show code that
//! was not tested. A block marked `<!-- snippet-lines: PATH -->` (shell
//! commands a script runs between checks of its own) must have each of its
//! lines somewhere in PATH, as a whole line; PATH may name several files
//! (separated by spaces), and a line may be found in any of them. For those
//! shell lines a trailing ` # comment` is ignored on both sides, and a line
//! of PATH may set environment variables before the command
//! (`STORECTX_REQUIRE_TOOLS=1 cargo test ...` runs `cargo test ...`).
//!
//! Every other fenced block must be a ```text block (a listing, an output
//! sample): a code block with no marker fails `every_code_block_is_tested`.

use std::path::{Path, PathBuf};

/// The guides, by the names other files and helpers link to.
const PAGES: &[&str] = &[
    "getting-started",
    "threading",
    "coroutines",
    "cpp",
    "go",
    "python",
    "lua",
    "thread-pools",
    "building",
    "platforms",
    "abi",
    "testing",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md page.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The two markers of a tested code block, by what its lines must match in
/// the file(s) the marker names.
#[derive(Clone, Copy)]
enum Marker {
    /// `<!-- snippet: PATH -->`: the block stands line for line
    /// (indentation aside) in PATH.
    Block,
    /// `<!-- snippet-lines: PATH... -->`: each line of the block is a whole
    /// line of one of the files (see `strip_comment`, `runs_line`).
    Lines,
}

impl Marker {
    const ALL: [Marker; 2] = [Marker::Block, Marker::Lines];

    /// The marker's text up to its PATH.
    fn text(self) -> &'static str {
        match self {
            Marker::Block => "<!-- snippet: ",
            Marker::Lines => "<!-- snippet-lines: ",
        }
    }
}

/// The marked snippets of one document, in document order: (marker, the
/// path(s) it names, the block's lines).
fn snippets(doc: &str) -> Vec<(Marker, String, Vec<&str>)> {
    let mut found = Vec::new();
    let mut rest = doc;
    // Neither marker's text is a prefix of the other's: at most one
    // matches at a position.
    while let Some((at, marker)) = Marker::ALL
        .into_iter()
        .filter_map(|m| rest.find(m.text()).map(|at| (at, m)))
        .min_by_key(|&(at, _)| at)
    {
        rest = &rest[at + marker.text().len()..];
        let path = &rest[..rest.find(" -->").expect("marker ends with -->")];
        let fence = rest.find("```").expect("a code block follows the marker");
        let body_start = fence + rest[fence..].find('\n').expect("fence line ends") + 1;
        let body_len = rest[body_start..].find("```").expect("code block closes");
        found.push((
            marker,
            path.to_string(),
            lines(&rest[body_start..body_start + body_len]),
        ));
    }
    found
}

#[test]
fn snippets_are_tested_code() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read document");
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (marker, paths, snippet) in snippets(&text) {
            let files = match marker {
                Marker::Block => vec![paths.as_str()],
                Marker::Lines => paths.split_whitespace().collect(),
            };
            let mut source = Vec::new();
            for path in files {
                let text = std::fs::read_to_string(root().join(path))
                    .unwrap_or_else(|e| panic!("{name}: snippet source {path}: {e}"));
                source.extend(text.lines().map(|l| l.trim().to_string()));
            }
            match marker {
                Marker::Block => {
                    source.retain(|l| !l.is_empty()); // as `lines`
                    if snippet.is_empty()
                        || !source
                            .windows(snippet.len())
                            .any(|w| w == snippet.as_slice())
                    {
                        failures.push(format!(
                            "{name}: a snippet marked as coming from {paths} is not in that file:\n{}",
                            snippet.join("\n")
                        ));
                    }
                }
                Marker::Lines => {
                    for line in &snippet {
                        let line = strip_comment(line);
                        if !source.iter().any(|s| runs_line(strip_comment(s), line)) {
                            failures.push(format!(
                                "{name}: a line marked as run by {paths} is not in that file: {line}"
                            ));
                        }
                    }
                }
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked >= 12,
        "expected at least 12 checked snippets, found {checked}"
    );
}

/// A shell line without its trailing ` # comment` (a `#` after whitespace,
/// outside quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_space => return line[..i].trim_end(),
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// `source` (a line of a script) runs `line`: it is `line`, or `line` after
/// environment assignments (`NAME=value `).
fn runs_line(source: &str, line: &str) -> bool {
    let mut rest = source;
    loop {
        if rest == line {
            return true;
        }
        let Some((word, tail)) = rest.split_once(' ') else {
            return false;
        };
        let Some((var, _)) = word.split_once('=') else {
            return false;
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
        rest = tail.trim_start();
    }
}

/// The fenced blocks of a markdown text: (line number, info string, the
/// nearest non-blank line before the opening fence).
fn fenced_blocks(text: &str) -> Vec<(usize, &str, &str)> {
    let mut blocks = Vec::new();
    let mut open = false;
    let mut before = "";
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(info) = trimmed.strip_prefix("```") {
            if !open {
                blocks.push((n + 1, info.trim(), before));
            }
            open = !open;
        } else if !trimmed.is_empty() {
            before = trimmed;
        }
    }
    blocks
}

/// Every code block of the README and the guides is tested: it carries a
/// `<!-- snippet: PATH -->` or `<!-- snippet-lines: PATH -->` marker, or it
/// is a ```text block (a directory listing, an output sample: not code a
/// reader runs).
#[test]
fn every_code_block_is_tested() {
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read document");
        let name = doc.strip_prefix(root()).unwrap().display().to_string();
        for (line, info, before) in fenced_blocks(&text) {
            let marked = Marker::ALL.iter().any(|m| before.starts_with(m.text()));
            if !marked && info != "text" {
                failures.push(format!(
                    "{name}:{line}: a ```{info} block with no <!-- snippet: PATH --> or \
                     <!-- snippet-lines: PATH --> marker (make a test run it and mark it, \
                     or make it a ```text block if it is not code)"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_guide_exists_and_the_readme_links_it() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for page in PAGES {
        let path = format!("docs/{page}.md");
        assert!(root().join(&path).is_file(), "{path} is missing");
        assert!(
            readme.contains(&format!("]({path})")),
            "the README does not link {path}"
        );
    }
}

#[test]
fn the_readme_stays_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let n = readme.lines().count();
    assert!(
        n <= 260,
        "README.md has {n} lines: move the detail into a docs/ page"
    );
}

/// Relative links `](path)` and `](path#anchor)` in the README and the
/// guides name files that exist, and anchors name a heading of that file.
#[test]
fn relative_links_resolve() {
    let mut failures = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read document");
        let dir = doc.parent().unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if target.contains("://") || target.starts_with("mailto:") || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() {
                doc.clone()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                failures.push(format!("{}: link to {target}: no such file", doc.display()));
                continue;
            }
            if !anchor.is_empty() && path.extension().is_some_and(|e| e == "md") {
                let linked = std::fs::read_to_string(&path).expect("read linked");
                let anchors = headings(&linked)
                    .into_iter()
                    .map(github_anchor)
                    .collect::<Vec<_>>();
                if !anchors.iter().any(|a| a == anchor) {
                    failures.push(format!(
                        "{}: link to {target}: no heading with that anchor",
                        doc.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The headings of a markdown text, outside code blocks.
fn headings(text: &str) -> Vec<&str> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(line.trim_start_matches('#').trim());
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, spaces to '-', punctuation
/// other than '-' and '_' dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The FetchContent example names the repository Cargo.toml declares.
#[test]
fn fetchcontent_names_the_cargo_repository() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let repository = cargo
        .lines()
        .find_map(|l| l.strip_prefix("repository = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("Cargo.toml has a repository");
    let building = std::fs::read_to_string(root().join("docs/building.md")).expect("building.md");
    assert!(
        building.contains(&format!("GIT_REPOSITORY {repository}.git")),
        "docs/building.md's FetchContent example does not name {repository}.git"
    );
}

/// The status table of docs/getting-started.md is the code's: the same
/// codes, names and `storectx_status_str` texts, in the same order, as
/// `storectx::error::STATUSES` (the one table the enum, the header and the
/// bindings come from).
#[test]
fn the_status_table_is_the_codes() {
    let page = std::fs::read_to_string(root().join("docs/getting-started.md")).expect("page");
    let marker = "<!-- status table: checked against src/error.rs STATUSES";
    let at = page
        .find(marker)
        .expect("docs/getting-started.md has the status table marker");
    let rows: Vec<Vec<String>> = page[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and |---| line
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect();
    let expected: Vec<(String, String, String)> = storectx::error::STATUSES
        .iter()
        .map(|s| (s.code.to_string(), s.name.to_string(), s.text.to_string()))
        .collect();
    let found: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            assert!(r.len() >= 4, "a status row has 4 columns: {r:?}");
            (r[0].clone(), r[1].clone(), r[2].clone())
        })
        .collect();
    for (want, got) in expected.iter().zip(&found) {
        assert_eq!(
            got, want,
            "docs/getting-started.md's status row differs from src/error.rs"
        );
    }
    assert_eq!(
        found.len(),
        expected.len(),
        "docs/getting-started.md lists {} statuses, src/error.rs {}",
        found.len(),
        expected.len()
    );
}

/// Every page that states the minimum Rust states Cargo.toml's
/// `rust-version`, and nothing lower: a reader with an older rustc gets the
/// version cargo checks, not a compile error deep in the library.
#[test]
fn the_minimum_rust_is_cargos_rust_version() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let msrv = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("Cargo.toml has a rust-version");
    for page in ["README.md", "docs/getting-started.md", "docs/testing.md"] {
        let text = std::fs::read_to_string(root().join(page)).expect("page");
        assert!(
            text.contains(&format!("Rust **{msrv} or newer**"))
                || text.contains(&format!("Rust ≥ {msrv}")),
            "{page} does not state the minimum Rust {msrv} (Cargo.toml rust-version)"
        );
        // Any other "Rust ≥ X" / "Rust **X or newer**" on the page is that same X.
        for (lead, says) in [("Rust ≥ ", "Rust ≥ {}"), ("Rust **", "Rust {} or newer")] {
            for (at, _) in text.match_indices(lead) {
                let version: String = text[at + lead.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                assert_eq!(
                    version.trim_end_matches('.'),
                    msrv,
                    "{page} states {}, Cargo.toml rust-version is {msrv}",
                    says.replace("{}", &version)
                );
            }
        }
    }
}

/// docs/building.md's Meson line (inline code, not a block) is the one
/// cmake/tests/meson/meson.build builds against a fresh install
/// (cmake/tests/run.sh, step 9).
#[test]
fn the_meson_line_is_built() {
    let building = std::fs::read_to_string(root().join("docs/building.md")).expect("building.md");
    let meson = std::fs::read_to_string(root().join("cmake/tests/meson/meson.build"))
        .expect("cmake/tests/meson/meson.build");
    let line = "dependency('storectx', version: '>=0.2')";
    assert!(
        building.contains(&format!("`{line}`")),
        "docs/building.md no longer shows {line}"
    );
    assert!(meson.contains(line), "meson.build does not use {line}");
    assert!(
        building.contains("`static: true`")
            && meson.contains(&line.replace(")", ", static: true)")),
        "docs/building.md's `static: true` is not what meson.build builds"
    );
}

/// What the docs' build lines leave in the checkout's root is ignored by
/// git: every `-o NAME` of a block run from the root (the blocks of
/// tests/cargo_output.sh) has its `/NAME` line in .gitignore. A new-user
/// trial found docs/cpp.md's `app-cpp` and `app-cpp20` left as untracked
/// files in the root after following the page.
#[test]
fn the_docs_build_outputs_are_ignored() {
    let gitignore = std::fs::read_to_string(root().join(".gitignore")).expect(".gitignore");
    let ignored: Vec<&str> = gitignore.lines().map(str::trim).collect();
    let mut missing = Vec::new();
    let mut outputs = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("read doc");
        for (_, path, block) in snippets(&text) {
            if !path
                .split_whitespace()
                .any(|p| p == "tests/cargo_output.sh")
            {
                continue;
            }
            for line in block {
                let words: Vec<&str> = line.split_whitespace().collect();
                for pair in words.windows(2) {
                    if pair[0] == "-o" && !pair[1].contains('/') {
                        outputs += 1;
                        let entry = format!("/{}", pair[1]);
                        if !ignored.contains(&entry.as_str()) {
                            missing.push(format!("{}: {entry}", doc.display()));
                        }
                    }
                }
            }
        }
    }
    assert!(
        outputs >= 4,
        "found only {outputs} outputs of the build lines"
    );
    assert!(
        missing.is_empty(),
        "not in .gitignore:\n{}",
        missing.join("\n")
    );
}
