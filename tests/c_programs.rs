//! Builds every program in c-tests/ (C11 and C++17) against the library,
//! once linked to libstorectx.so and once to libstorectx.a, runs each, and
//! fails if any does not exit 0. Arguments filter programs by name:
//! `cargo test --test c_programs -- coroutine`. A program marked
//! `cprog: dlopen` is built once, unlinked, and loads the library itself;
//! `cprog: timeout SECONDS` bounds a program's run (default 300 s).
//! `STORECTX_TEST_TARGET=TRIPLE` (with `STORECTX_TEST_RUNNER`) runs the
//! suite against a library built for another target (.ci/cross.sh); a
//! program marked `cprog: skip on=...` for it is reported SKIPPED with its
//! reason.

#[path = "support/cprog.rs"]
mod cprog;

use cprog::Link;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// How long a program may run: its `cprog: timeout`, ten times that under a
/// runner (valgrind is 10–50x slower), else 300 s.
fn limit(asked: Option<Duration>) -> Duration {
    match asked {
        Some(t) if cprog::runner().is_empty() => t,
        Some(t) => t * 10,
        None => Duration::from_secs(300),
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(cprog::root().join("c-tests"))
        .expect("c-tests/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c" || e == "cpp"))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        })
        .collect();
    sources.sort();
    let jobs: Vec<(PathBuf, Link)> = sources
        .iter()
        .flat_map(|s| {
            let dlopen = cprog::directives(s).map(|d| d.dlopen).unwrap_or(false);
            if dlopen {
                vec![(s.clone(), Link::Dlopen)]
            } else {
                vec![(s.clone(), Link::Shared), (s.clone(), Link::Static)]
            }
        })
        .collect();
    let mut skipped = 0;
    let jobs: Vec<(PathBuf, Link)> = jobs
        .into_iter()
        .filter(|(s, link)| {
            let d = cprog::directives(s).unwrap_or_default();
            match d.skipped(*link) {
                Some(why) => {
                    skipped += 1;
                    println!(
                        "c program {} ({}) ... SKIPPED on {}: {why}",
                        s.file_name().unwrap().to_string_lossy(),
                        link.name(),
                        cprog::target()
                    );
                    false
                }
                None => true,
            }
        })
        .collect();
    let total = jobs.len();
    let out_dir = cprog::lib_dir().with_file_name("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create output dir");

    let queue = Mutex::new(jobs.into_iter());
    let failures = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let Some((source, link)) = queue.lock().unwrap().next() else {
                    break;
                };
                let name = format!(
                    "{} ({})",
                    source.file_name().unwrap().to_string_lossy(),
                    link.name()
                );
                let result = cprog::directives(&source)
                    .map(|d| limit(d.timeout))
                    .and_then(|limit| cprog::build(&source, link, &out_dir).map(|exe| (exe, limit)))
                    .and_then(|(exe, limit)| cprog::run(&exe, limit))
                    .and_then(cprog::succeeded)
                    .map(drop);
                match result {
                    Ok(()) => println!("c program {name} ... ok"),
                    Err(why) => {
                        println!("c program {name} ... FAILED");
                        failures.lock().unwrap().push(format!("{name}: {why}"));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    if failures.is_empty() {
        println!(
            "\nc programs: {total} passed, {skipped} skipped (target {})",
            cprog::target()
        );
    } else {
        for f in &failures {
            eprintln!("\n==== {f}");
        }
        eprintln!("\nc programs: {} of {total} FAILED", failures.len());
        std::process::exit(1);
    }
}
