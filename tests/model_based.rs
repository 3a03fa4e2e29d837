//! Model-based tests: random call sequences — right and wrong — through the
//! real C ABI on several threads and through the reference model in
//! tests/model/, compared after every call.
//!
//! Knobs (environment):
//! * `STORECTX_MODEL_CALLS=N` — long mode: keep running sequences until at
//!   least N calls were checked (CI: 1000000, ideally with `--release`);
//! * `STORECTX_MODEL_SEQUENCES=N` — number of sequences in the normal run
//!   (default 2000);
//! * `STORECTX_MODEL_SEED=S` — replay the single sequence of seed S, printing
//!   every step;
//! * `STORECTX_MODEL_FIRST_SEED=S` — start from seed S (default 0);
//! * `STORECTX_MODEL_JOBS=N` — sequences run side by side (default: cores, at most 4);
//! * `STORECTX_MODEL_CROSS_TYPE=0` — stop passing segment handles as write
//!   guards and vice versa (see tests/model/ops.rs).

mod model;

use model::source::Rng;
use model::{run_sequence, Config, Stats};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Generated calls per sequence are drawn from 1..=MAX_CALLS.
const MAX_CALLS: usize = 80;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Runs the sequence of `seed`; the failure text says how to replay it.
fn run_seed(seed: u64, stats: &mut Stats, verbose: bool) -> Result<(), String> {
    let mut rng = Rng::new(seed);
    let cfg = Config::draw(&mut rng, MAX_CALLS);
    run_sequence(&mut rng, &cfg, stats, verbose).map_err(|failure| {
        format!(
            "model_based: seed {seed} failed (replay: STORECTX_MODEL_SEED={seed} cargo test \
             --test model_based -- --nocapture)\n{failure}"
        )
    })
}

#[test]
fn api_sequences_agree_with_the_model() {
    let start = Instant::now();
    if let Some(seed) = env_u64("STORECTX_MODEL_SEED") {
        let mut stats = Stats::default();
        if let Err(e) = run_seed(seed, &mut stats, true) {
            panic!("{e}");
        }
        println!(
            "model_based: seed {seed}: {} calls, statuses: {}",
            stats.calls,
            stats.histogram()
        );
        return;
    }
    let first = env_u64("STORECTX_MODEL_FIRST_SEED").unwrap_or(0);
    let long = env_u64("STORECTX_MODEL_CALLS");
    let sequences = env_u64("STORECTX_MODEL_SEQUENCES").unwrap_or(2000);
    // Sequences are independent (fresh store ids, fresh threads), so several
    // run side by side; each is still one call at a time.
    let jobs = env_u64("STORECTX_MODEL_JOBS").map_or_else(
        || std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        |j| j.max(1) as usize,
    );
    let next_seed = AtomicU64::new(first);
    let calls = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::<(u64, String)>::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut mine = Stats::default();
                while !stop.load(Ordering::Relaxed) {
                    let more = match long {
                        Some(target) => calls.load(Ordering::Relaxed) < target,
                        None => next_seed.load(Ordering::Relaxed) < first + sequences,
                    };
                    if !more {
                        break;
                    }
                    let seed = next_seed.fetch_add(1, Ordering::Relaxed);
                    if long.is_none() && seed >= first + sequences {
                        break;
                    }
                    let before = mine.calls;
                    if let Err(e) = run_seed(seed, &mut mine, false) {
                        failures.lock().unwrap().push((seed, e));
                        stop.store(true, Ordering::Relaxed);
                        break;
                    }
                    let now = calls.fetch_add(mine.calls - before, Ordering::Relaxed);
                    if long.is_some() && now / 100_000 != (now + mine.calls - before) / 100_000 {
                        println!(
                            "model_based: ... {} calls, {:.1} s",
                            now + mine.calls - before,
                            start.elapsed().as_secs_f64()
                        );
                    }
                }
                total.lock().unwrap().add(&mine);
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort_by_key(|f| f.0);
    if let Some((_, e)) = failures.first() {
        panic!("{e}");
    }
    let stats = total.into_inner().unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "model_based: {} calls checked in {} sequences (seeds from {first}, {jobs} at a time), \
         {} thread exits, {} forged handles, {} observations, {secs:.2} s",
        stats.calls, stats.sequences, stats.thread_exits, stats.forged, stats.observations
    );
    println!(
        "model_based: {} segments resumed on another thread; {} threads exited with entries \
         ({} holding store locks, {} with borrows or pauses)",
        stats.migrations,
        stats.exits_with_entries,
        stats.exits_with_locks,
        stats.exits_with_borrows
    );
    println!(
        "model_based: {} calls with forged values (forgery sweeps), each refused as the model says",
        stats.forged_calls
    );
    println!("model_based: statuses: {}", stats.histogram());
    if stats.sequences >= 500 {
        assert!(
            stats.unseen().is_empty(),
            "model_based: the generator never provoked {:?}",
            stats.unseen()
        );
    }
}
