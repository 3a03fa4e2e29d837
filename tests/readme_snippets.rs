//! Every README code block marked `<!-- snippet: PATH -->` must appear, line
//! for line (indentation aside), in PATH — a file the test suite runs — so the
//! README never shows code that was not tested.

use std::path::Path;

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn readme_snippets_are_tested_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let mut checked = 0;
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("<!-- snippet: ") {
        rest = &rest[at + "<!-- snippet: ".len()..];
        let path = &rest[..rest.find(" -->").expect("marker ends with -->")];
        let fence = rest.find("```").expect("a code block follows the marker");
        let body_start = fence + rest[fence..].find('\n').expect("fence line ends") + 1;
        let body_len = rest[body_start..].find("```").expect("code block closes");
        let snippet = lines(&rest[body_start..body_start + body_len]);
        let source = std::fs::read_to_string(root.join(path))
            .unwrap_or_else(|e| panic!("README snippet source {path}: {e}"));
        let source = lines(&source);
        assert!(
            !snippet.is_empty()
                && source
                    .windows(snippet.len())
                    .any(|w| w == snippet.as_slice()),
            "a README snippet marked as coming from {path} is not in that file:\n{}",
            snippet.join("\n")
        );
        checked += 1;
    }
    assert!(
        checked >= 6,
        "expected at least 6 checked snippets, found {checked}"
    );
}
