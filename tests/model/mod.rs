//! Model-based testing of libstorectx: random call sequences (including
//! every kind of misuse) run through the real `extern "C"` functions on
//! several threads and through a reference model side by side; the status,
//! the out-parameters and the observable state of the calling thread must
//! agree after every call.
//!
//! * [`reference`] — the model of SPEC.md + API.md (plain `Vec`s);
//! * [`ops`] — the calls and the generator;
//! * [`driver`] — worker threads running the real calls;
//! * [`source`] — choices from a seed (tests) or from bytes (cargo fuzz).
//!
//! Shared by `tests/model_based.rs` and `fuzz/fuzz_targets/api_sequence.rs`
//! (through `#[path]`), so there is one model.

#![allow(dead_code)]

pub mod driver;
pub mod ops;
pub mod reference;
pub mod source;

use driver::{Done, Driver};
use ops::{Gen, HeapArg, Op};
use reference::{st, Kind, Model, Obs, Reply, Sym, Val};
use source::Source;
use std::fmt;

/// How many of the most recent guard handles every observation asks
/// `install_guard_installed` about.
const INSTALLED_WINDOW: usize = 96;

/// One sequence's shape.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker threads (each with its own real stack).
    pub threads: usize,
    /// Generated calls (teardown calls come on top).
    pub calls: usize,
    /// Keep a hidden reference to every async store for lock probes.
    pub probe_refs: bool,
    /// Store ids in the pool (besides id 0).
    pub pool: usize,
}

impl Config {
    /// A shape drawn from the source (so a seed or an input decides it).
    pub fn draw<S: Source>(src: &mut S, max_calls: usize) -> Config {
        Config {
            threads: if src.chance(85) { 3 } else { 2 },
            calls: 1 + src.below(max_calls as u64) as usize,
            probe_refs: src.chance(60),
            pool: 3 + src.below(3) as usize,
        }
    }
}

/// Totals over many sequences.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Library calls made and checked (not counting observations).
    pub calls: u64,
    pub sequences: u64,
    /// Calls per status answered.
    pub status: [u64; st::COUNT],
    pub thread_exits: u64,
    pub forged: u64,
    /// Calls made with forged values by forgery sweeps (each checked
    /// against the model).
    pub forged_calls: u64,
    /// Observations (each: describe, depth, flags of every id, lock probes, ...).
    pub observations: u64,
    /// Non-empty segments resumed on another thread than the one that suspended them.
    pub migrations: u64,
    /// Threads that exited with entries on their stack; of those, holding a
    /// store lock; with borrows or pauses outstanding.
    pub exits_with_entries: u64,
    pub exits_with_locks: u64,
    pub exits_with_borrows: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.calls += o.calls;
        self.sequences += o.sequences;
        for (a, b) in self.status.iter_mut().zip(o.status) {
            *a += b;
        }
        self.thread_exits += o.thread_exits;
        self.forged += o.forged;
        self.forged_calls += o.forged_calls;
        self.observations += o.observations;
        self.migrations += o.migrations;
        self.exits_with_entries += o.exits_with_entries;
        self.exits_with_locks += o.exits_with_locks;
        self.exits_with_borrows += o.exits_with_borrows;
    }

    /// Statuses never answered (PANIC and EXHAUSTED cannot be reached here).
    pub fn unseen(&self) -> Vec<&'static str> {
        (0..st::COUNT)
            .filter(|&s| self.status[s] == 0 && s as i32 != st::PANIC && s as i32 != st::EXHAUSTED)
            .map(|s| st::NAMES[s])
            .collect()
    }

    pub fn histogram(&self) -> String {
        (0..st::COUNT)
            .filter(|&s| self.status[s] > 0)
            .map(|s| format!("{} {}", st::NAMES[s], self.status[s]))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A disagreement between the library and the model.
#[derive(Debug)]
pub struct Failure {
    /// Index of the failing step in `log`.
    pub index: usize,
    pub what: Vec<String>,
    /// The sequence so far, one step per line (the last one failed).
    pub log: Vec<String>,
    pub config: Config,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "library and model disagree at step {} ({:?}):",
            self.index, self.config
        )?;
        for w in &self.what {
            writeln!(f, "  * {w}")?;
        }
        writeln!(f, "sequence so far:")?;
        for line in &self.log {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

struct Run<'a> {
    m: Model,
    d: Driver,
    log: Vec<String>,
    stats: &'a mut Stats,
    cfg: Config,
    verbose: bool,
}

/// Runs one sequence drawn from `src`: `cfg.calls` generated calls (fewer if
/// a byte source runs dry), then a teardown that observes every thread, ends
/// them all with whatever they hold, checks the locks, frees what is left.
pub fn run_sequence<S: Source>(
    src: &mut S,
    cfg: &Config,
    stats: &mut Stats,
    verbose: bool,
) -> Result<(), Failure> {
    let mut d = Driver::new(cfg.threads, cfg.probe_refs);
    let ids = d.new_ids(cfg.pool).map_err(|e| Failure {
        index: 0,
        what: vec![e],
        log: Vec::new(),
        config: cfg.clone(),
    })?;
    let mut run = Run {
        m: Model::new(ids, cfg.threads),
        d,
        log: Vec::new(),
        stats,
        cfg: cfg.clone(),
        verbose,
    };
    let mut gen = Gen::default();
    for _ in 0..cfg.calls {
        let op = gen.next(&run.m, src);
        if src.exhausted() {
            break;
        }
        run.step(op)?;
    }
    run.teardown()?;
    run.d.shutdown();
    run.stats.sequences += 1;
    Ok(())
}

impl Run<'_> {
    fn teardown(&mut self) -> Result<(), Failure> {
        let threads = self.m.threads.len();
        for t in 0..threads {
            self.step(Op::Observe { t })?;
        }
        // Every thread dies with whatever it holds; the observation made on
        // each fresh thread probes every lock: only live write guards and
        // segments may still hold one.
        for t in 0..threads {
            self.step(Op::ThreadExit { t })?;
        }
        for s in 0..self.m.segments.len() {
            if self.m.segments[s].live {
                self.step(Op::SegmentFree {
                    t: s % threads,
                    s: HeapArg::Segment(s),
                })?;
            }
        }
        for g in 0..self.m.guards.len() {
            if self.m.guards[g].live {
                self.step(Op::GuardRelease {
                    t: g % threads,
                    g: HeapArg::Guard(g),
                })?;
            }
        }
        // Every store can be locked now (the observation probes them all).
        for a in 0..self.m.stores.len() {
            assert!(
                !self.m.locked(a),
                "model: store {a} still locked after teardown"
            );
        }
        self.step(Op::Observe { t: 0 })?;
        for a in 0..self.m.stores.len() {
            while self.m.stores[a].refs > 0 {
                self.step(Op::AsyncRelease {
                    t: a % threads,
                    a: Some(a),
                })?;
            }
        }
        Ok(())
    }

    /// One call: run it for real, apply it to the model, compare.
    fn step(&mut self, op: Op) -> Result<(), Failure> {
        // A forgery sweep runs alone in the process (see driver::step_lock).
        let lock = driver::step_lock();
        let (_shared, _alone) = if matches!(op, Op::ForgeSweep { .. }) {
            (None, Some(lock.write().unwrap_or_else(|e| e.into_inner())))
        } else {
            (Some(lock.read().unwrap_or_else(|e| e.into_inner())), None)
        };
        // A forged value stands for whatever the library has given out since.
        self.d.resolve_forged(&mut self.m);
        let index = self.log.len();
        let note = note(&self.m, &self.d, &op);
        let plan = self.d.plan(INSTALLED_WINDOW, &op);
        let scenario = self.scenario(&op);
        let done = self.d.execute(&op, &self.m, &plan);
        let expected = self.m.apply(&op);
        let mut what = Vec::new();
        let line = |r: &Reply| format!("#{index} {op:?}{note} -> {}", show(r));
        let done: Done = match done {
            Ok(done) => done,
            Err(e) => {
                self.log.push(line(&expected));
                return Err(self.fail(index, vec![e]));
            }
        };
        self.log.push(line(&done.reply));
        if self.verbose {
            eprintln!("{}", self.log.last().unwrap());
        }
        if done.reply != expected {
            what.push(format!(
                "the call answered {}, the model says {}",
                show(&done.reply),
                show(&expected)
            ));
        }
        what.extend(done.problems.iter().cloned());
        if expected.status == st::OK && self.m.handles.len() > self.d.handles.len() {
            // The call gave out a new handle: a value forged before may be it.
            let new = *self.m.handles.last().expect("a new handle");
            for i in 0..self.d.handles.len() {
                if self.d.forged[i] && self.d.handles[i] == done.raw {
                    self.m.handles[i] = new;
                }
            }
        }
        if let Some(t) = op.thread() {
            let want = self.m.observe(t, &plan);
            diff_obs(t, &want, &done.obs, &mut what);
            self.stats.observations += 1;
        }
        if !what.is_empty() {
            return Err(self.fail(index, what));
        }
        self.d.commit(&op, &expected, &done);
        if expected.status == st::OK {
            scenario(self.stats);
        }
        match op {
            Op::Forge { .. } => self.stats.forged += 1,
            Op::ForgeSweep { .. } => self.stats.forged_calls += done.raw,
            Op::ThreadExit { .. } => self.stats.thread_exits += 1,
            Op::Observe { .. } => {}
            _ => {
                self.stats.calls += 1;
                self.stats.status[expected.status as usize] += 1;
            }
        }
        Ok(())
    }

    /// What a successful `op` will count for in the statistics (decided
    /// on the state before it).
    fn scenario(&self, op: &Op) -> fn(&mut Stats) {
        let m = &self.m;
        match *op {
            Op::Resume {
                t,
                s: HeapArg::Segment(i),
                ..
            } if m.segments[i].live
                && m.segments[i].from != t
                && !m.segments[i].entries.is_empty() =>
            {
                |s| s.migrations += 1
            }
            Op::ThreadExit { t } if !m.threads[t].is_empty() => {
                let stack = &m.threads[t];
                let locks = stack.iter().any(|e| e.kind != Kind::Sync);
                let borrows = stack.iter().any(|e| e.borrows > 0 || !e.pauses.is_empty());
                match (locks, borrows) {
                    (true, true) => |s| {
                        s.exits_with_entries += 1;
                        s.exits_with_locks += 1;
                        s.exits_with_borrows += 1;
                    },
                    (true, false) => |s| {
                        s.exits_with_entries += 1;
                        s.exits_with_locks += 1;
                    },
                    (false, true) => |s| {
                        s.exits_with_entries += 1;
                        s.exits_with_borrows += 1;
                    },
                    (false, false) => |s| s.exits_with_entries += 1,
                }
            }
            _ => |_| {},
        }
    }

    fn fail(&mut self, index: usize, what: Vec<String>) -> Failure {
        Failure {
            index,
            what,
            log: std::mem::take(&mut self.log),
            config: self.cfg.clone(),
        }
    }
}

fn show(r: &Reply) -> String {
    if r.status == st::OK {
        match &r.val {
            Val::Nothing => "OK".into(),
            v => format!("OK {v:?}"),
        }
    } else {
        st::name(r.status)
    }
}

/// What the symbolic arguments of `op` stand for, for the log.
fn note(m: &Model, d: &Driver, op: &Op) -> String {
    let h = |h: usize| format!(" [h{h}={} raw {:#x}]", sym(m.handles[h]), d.handles[h]);
    let heap = |g: &HeapArg| match *g {
        HeapArg::Guard(i) => {
            format!(
                " [guard {i} {}]",
                if m.guards[i].live { "live" } else { "spent" }
            )
        }
        HeapArg::Segment(i) => {
            let s = &m.segments[i];
            let state = if s.live { "live" } else { "spent" };
            let ids: Vec<u64> = s.entries.iter().map(|e| e.id).collect();
            format!(" [segment {i} {state} ids {ids:?}]")
        }
        _ => String::new(),
    };
    let id = |i: usize| format!(" [id {}]", m.ids[i]);
    match op {
        Op::Uninstall { h: x, .. }
        | Op::GuardInstalled { h: x, .. }
        | Op::BorrowClone { h: x, .. }
        | Op::BorrowRelease { h: x, .. }
        | Op::Unpause { h: x, .. } => h(*x),
        Op::GuardStore { g, .. } | Op::GuardRelease { g, .. } | Op::InstallAsync { g, .. } => {
            heap(g)
        }
        Op::Resume { s, .. } | Op::SegmentLen { s, .. } | Op::SegmentFree { s, .. } => heap(s),
        Op::Install { id: i, .. }
        | Op::AsyncNew { id: i, .. }
        | Op::GetCurrent { id: i, .. }
        | Op::GetTransient { id: i, .. }
        | Op::GetAsync { id: i, .. }
        | Op::Pause { id: i, .. } => id(*i),
        _ => String::new(),
    }
}

fn sym(s: Sym) -> String {
    match s {
        Sym::Install(u) => format!("install(e{u})"),
        Sym::Noop(u) => format!("noop(e{u})"),
        Sym::Borrow(u) => format!("borrow(e{u})"),
        Sym::Pause(p) => format!("pause(p{p})"),
        Sym::Invalid => "invalid".into(),
    }
}

fn diff_obs(t: usize, want: &Obs, got: &Obs, what: &mut Vec<String>) {
    if want == got {
        return;
    }
    macro_rules! field {
        ($f:ident) => {
            if want.$f != got.$f {
                what.push(format!(
                    "thread {t} {}: library {:?}, model {:?}",
                    stringify!($f),
                    got.$f,
                    want.$f
                ));
            }
        };
    }
    if want.describe != got.describe {
        what.push(format!(
            "thread {t} describe:\n--- library\n{}--- model\n{}---",
            got.describe, want.describe
        ));
    }
    field!(depth);
    field!(empty);
    field!(active_store);
    field!(active);
    field!(paused);
    field!(installed);
    field!(locked);
    field!(guard_store);
    field!(segment_len);
}
