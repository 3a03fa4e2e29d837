//! The summary of the test command: cargo runs this target after the
//! other test files (targets run in name order), so the run's output ends
//! with the list of every suite that was skipped for a missing toolchain
//! and the package that brings it — a missing toolchain is never a silent
//! pass. The suites record their skips through tests/support/skips.rs.
//! Fails if anything was skipped under `STORECTX_REQUIRE_TOOLS=1`.

#[path = "support/skips.rs"]
mod skips;

fn main() {
    let skipped = skips::recorded();
    forget_finished_runs();

    if skipped.is_empty() {
        println!("\nskipped suites: none (every suite of the test command ran)\n");
        return;
    }
    let width = skipped.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    println!(
        "\nSKIPPED SUITES: {} of the test command's suites did not run:",
        skipped.len()
    );
    for (suite, package) in &skipped {
        let needs = if package.is_empty() {
            "(see its SKIPPED line)".to_string()
        } else {
            format!("needs {package}")
        };
        println!("  {suite:width$}  {needs}");
    }
    let mut packages: Vec<&str> = skipped
        .iter()
        .flat_map(|(_, p)| p.split_whitespace())
        .collect();
    packages.sort_unstable();
    packages.dedup();
    if !packages.is_empty() {
        println!("install them with: apt-get install {}", packages.join(" "));
    }
    println!("(STORECTX_REQUIRE_TOOLS=1 makes every skip a failure)\n");
    if skips::required() {
        eprintln!("STORECTX_REQUIRE_TOOLS=1: suites were skipped");
        std::process::exit(1);
    }
}

/// Removes this run's records and those of runs whose cargo process has
/// ended (a run of a single test target never reaches this summary).
fn forget_finished_runs() {
    let _ = std::fs::remove_dir_all(skips::run_dir());
    for entry in std::fs::read_dir(skips::root_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` exists.
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 sends nothing; it only asks whether `pid` exists.
    let answered = unsafe { libc::kill(pid as libc::pid_t, 0) };
    answered == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Only `cargo check`ed for Windows (.ci/cross.sh): records are kept there.
#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}
