//! Runs the calls through the real `extern "C"` functions, on K worker
//! threads that each own a real thread stack. One call at a time in the
//! whole process: the main thread sends a job to the chosen worker and waits
//! for its answer, so a sequence is deterministic while handles, write
//! guards and segments travel between threads.
//!
//! The driver maps the model's symbols to the raw values the library gave
//! out (guard handles, write guards, segments, async store pointers) and
//! normalises what the library answers into the model's vocabulary
//! ([`Reply`], [`Obs`]). Checks that need no model (a failed call must not
//! touch its out-parameters and must leave a `last_error` naming the
//! function) are made here and reported as problems.

use super::ops::{Forge, HeapArg, Op, SweepBase, Wait};
use super::reference::{Kind, Model, Obs, Plan, Reply, Sym, Val};
use super::source::{Rng, Source};
use std::collections::HashSet;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::null_mut;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock, RwLock};
use std::thread;
use std::time::Duration;
use storectx::ffi::async_store::{
    storectx_async_store, storectx_async_store_clone, storectx_async_store_id,
    storectx_async_store_new, storectx_async_store_release, storectx_async_store_try_write,
    storectx_async_store_write, storectx_install_async, storectx_write_guard,
    storectx_write_guard_release, storectx_write_guard_store,
};
use storectx::ffi::borrow::{
    storectx_borrow, storectx_borrow_clone, storectx_borrow_release, storectx_get_current,
    storectx_get_current_async, storectx_get_current_transient, storectx_get_current_unborrowed,
};
use storectx::ffi::identity::{
    storectx_active_store, storectx_depth, storectx_describe, storectx_is_active,
    storectx_is_empty, storectx_is_paused, storectx_store_id_new,
};
use storectx::ffi::install::{
    storectx_install, storectx_install_guard, storectx_install_guard_installed, storectx_uninstall,
};
use storectx::ffi::pause::{storectx_pause, storectx_pause_guard, storectx_unpause};
use storectx::ffi::segment::{
    storectx_resume, storectx_suspend, storectx_suspended, storectx_suspended_free,
    storectx_suspended_len,
};
use storectx::ffi::status::{storectx_last_error, storectx_status};

/// Written into every out-parameter before a call: a failed call must leave
/// it there.
const SENT: u64 = 0x5E57_1E15_5E57_1E15;
/// How long the main thread waits for one call before calling it a hang.
const HANG: Duration = Duration::from_secs(60);

/// What a worker sends back for one job.
#[derive(Debug)]
pub struct Done {
    pub reply: Reply,
    /// A raw value the call produced (handle, write guard, segment, pointer).
    pub raw: u64,
    /// Contract violations the driver saw without the model.
    pub problems: Vec<String>,
    pub obs: Obs,
}

type Job = Box<dyn FnOnce() -> Done + Send>;

struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    join: Option<thread::JoinHandle<()>>,
    /// A job was sent and gave no answer (the call hangs): never join it.
    stuck: bool,
}

impl Worker {
    fn spawn(t: usize) -> Worker {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (outbox, done) = mpsc::channel::<Done>();
        let join = thread::Builder::new()
            .name(format!("model-worker-{t}"))
            .spawn(move || {
                for job in inbox {
                    if outbox.send(job()).is_err() {
                        break;
                    }
                }
            })
            .expect("spawn a worker thread");
        Worker {
            jobs: Some(jobs),
            done,
            join: Some(join),
            stuck: false,
        }
    }

    /// Ends the thread (its stack goes with it) and waits for it.
    fn exit(&mut self) {
        drop(self.jobs.take());
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

/// Everything an observation needs, as plain values a job can carry.
#[derive(Clone)]
struct ObsArgs {
    ids: Vec<u64>,
    handles: Vec<u64>,
    probes: Vec<Option<usize>>,
    guards: Vec<u64>,
    segments: Vec<u64>,
}

pub struct Driver {
    workers: Vec<Worker>,
    ids: Vec<u64>,
    /// Raw guard-handle values, parallel to `Model::handles`.
    pub handles: Vec<u64>,
    /// Which of `handles` were fabricated (`Op::Forge`), not given out.
    pub forged: Vec<bool>,
    /// Write-guard handle values, parallel to `Model::guards`.
    pub guards: Vec<u64>,
    /// Segment handle values, parallel to `Model::segments`.
    pub segments: Vec<u64>,
    /// The pointer `async_store_new` gave for each store: its identity.
    canon: Vec<usize>,
    /// References the caller holds (the model counts them).
    refs: Vec<Vec<usize>>,
    /// One extra reference per store, invisible to the model, for probing
    /// its lock (only when `probe_refs`; otherwise the last visible release
    /// really leaves the store to its entries, guards and segments).
    probes: Vec<Option<usize>>,
    probe_refs: bool,
}

fn status(s: storectx_status) -> i32 {
    s as i32
}

fn last_error() -> String {
    // SAFETY: never NULL, NUL-terminated, valid until this thread's next failed call.
    unsafe { CStr::from_ptr(storectx_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn ptr<T>(null: bool, x: &mut T) -> *mut T {
    if null {
        null_mut()
    } else {
        x
    }
}

/// Collects contract violations of one call that need no model.
struct Check {
    name: &'static str,
    problems: Vec<String>,
}

impl Check {
    fn new(name: &'static str) -> Self {
        Check {
            name,
            problems: Vec::new(),
        }
    }

    /// The status as a number; on failure, `last_error` must name the call
    /// and every out-parameter must still hold the sentinel.
    fn status(&mut self, s: storectx_status, untouched: &[(&str, bool)]) -> i32 {
        let s = status(s);
        if s != 0 {
            self.expect_last_error();
            for (what, same) in untouched {
                if !same {
                    self.problems.push(format!(
                        "{}: failed call wrote out-parameter {what}",
                        self.name
                    ));
                }
            }
        }
        s
    }

    fn expect_last_error(&mut self) {
        let e = last_error();
        if !e.starts_with(&format!("{}: ", self.name)) {
            self.problems.push(format!(
                "{}: last_error {e:?} does not start with \"{}: \"",
                self.name, self.name
            ));
        }
    }

    fn done(self, status: i32, val: Val, raw: u64, obs: Obs) -> Done {
        let val = if status == 0 { val } else { Val::Nothing };
        Done {
            reply: Reply { status, val },
            raw,
            problems: self.problems,
            obs,
        }
    }
}

/// Sets `last_error` to something that is not `name`'s, so that a void
/// function's note can be told apart.
fn reset_last_error() {
    let _ = storectx_uninstall(storectx_install_guard { raw: 0 });
}

fn observe(a: &ObsArgs, problems: &mut Vec<String>) -> Obs {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let need = storectx_describe(null_mut(), 0);
        let mut buf = vec![0xAAu8; need + 1];
        let n = storectx_describe(buf.as_mut_ptr().cast::<c_char>(), buf.len());
        if n != need || buf[need] != 0 {
            problems.push(format!(
                "describe: answered {n} then {need}, or the text is not NUL-terminated"
            ));
        }
        let describe = String::from_utf8_lossy(&buf[..need]).into_owned();
        let locked = a
            .probes
            .iter()
            .map(|p| {
                p.map(|p| {
                    let mut g: *mut storectx_write_guard = null_mut();
                    match status(storectx_async_store_try_write(p as *mut _, &mut g)) {
                        0 => {
                            storectx_write_guard_release(g);
                            false
                        }
                        13 => true, // BUSY
                        s => {
                            problems.push(format!("probe: try_write answered status {s}"));
                            true
                        }
                    }
                })
            })
            .collect();
        Obs {
            describe,
            depth: storectx_depth(),
            empty: storectx_is_empty(),
            active_store: storectx_active_store(),
            active: a.ids.iter().map(|&id| storectx_is_active(id)).collect(),
            paused: a.ids.iter().map(|&id| storectx_is_paused(id)).collect(),
            installed: a
                .handles
                .iter()
                .map(|&raw| storectx_install_guard_installed(storectx_install_guard { raw }))
                .collect(),
            locked,
            guard_store: a
                .guards
                .iter()
                .map(|&g| {
                    storectx_write_guard_store(g as usize as *const storectx_write_guard) as usize
                })
                .collect(),
            segment_len: a
                .segments
                .iter()
                .map(|&s| storectx_suspended_len(s as usize as *const storectx_suspended))
                .collect(),
        }
    }
}

impl Driver {
    pub fn new(threads: usize, probe_refs: bool) -> Driver {
        Driver {
            workers: (0..threads).map(Worker::spawn).collect(),
            ids: Vec::new(),
            handles: Vec::new(),
            forged: Vec::new(),
            guards: Vec::new(),
            segments: Vec::new(),
            canon: Vec::new(),
            refs: Vec::new(),
            probes: Vec::new(),
            probe_refs,
        }
    }

    /// A pool of fresh store ids; index 0 is the reserved id 0.
    pub fn new_ids(&mut self, n: usize) -> Result<Vec<u64>, String> {
        let mut ids = vec![0];
        for _ in 0..n {
            let id = storectx_store_id_new();
            if id == 0 || ids.contains(&id) {
                return Err(format!("store_id_new answered {id} after {ids:?}"));
            }
            ids.push(id);
        }
        self.ids = ids.clone();
        Ok(ids)
    }

    /// What the next observation covers: every object made so far (not
    /// the call's own new ones), the last `window` guard handles, and the
    /// stores the driver holds a pointer to.
    /// A store whose last usable reference `op` releases is not probed
    /// after it (that pointer may be freed).
    pub fn plan(&self, window: usize, op: &Op) -> Plan {
        let released = match *op {
            Op::AsyncRelease { a: Some(a), .. } => Some(a),
            _ => None,
        };
        Plan {
            probe: (0..self.canon.len())
                .map(|a| {
                    let last =
                        released == Some(a) && self.probes[a].is_none() && self.refs[a].len() == 1;
                    self.probe_ptr(a).is_some() && !last
                })
                .collect(),
            handles: self.handles.len().saturating_sub(window)..self.handles.len(),
            guards: self.guards.len(),
            segments: self.segments.len(),
        }
    }

    fn probe_ptr(&self, a: usize) -> Option<usize> {
        self.probes[a].or_else(|| self.refs[a].first().copied())
    }

    fn store_ptr(&self, a: Option<usize>) -> usize {
        a.map_or(0, |a| {
            *self.refs[a].last().expect("generator: a held reference")
        })
    }

    /// The raw value of a write-guard / segment argument. Garbage that
    /// happens to equal a live value the library gave out is not garbage:
    /// it is moved off it.
    fn heap(&self, arg: HeapArg) -> usize {
        let raw = match arg {
            HeapArg::Null => 0,
            HeapArg::Guard(g) => self.guards[g],
            HeapArg::Segment(s) => self.segments[s],
            HeapArg::StorePtr(a) => self.store_ptr(Some(a)) as u64,
            HeapArg::Garbage(mut v) => {
                while self.guards.contains(&v) || self.segments.contains(&v) {
                    v = v.rotate_left(7) | 1;
                }
                v
            }
        };
        raw as usize
    }

    /// The raw value a fabricated guard handle gets.
    pub fn forge(&self, how: Forge) -> u64 {
        match how {
            Forge::Zero => 0,
            Forge::Garbage(v) => v,
            // Numbers this high are never issued: same kind, names nothing.
            Forge::Flip { h, bits } => self.handles[h] | (bits << 58),
            Forge::Near { h, delta } => self.handles[h].wrapping_add(delta as u64),
            Forge::Retag { h, tag } => (self.handles[h] & !7) | (tag & 7),
            Forge::BitFlip { h, bit } => self.handles[h] ^ (1u64 << (bit % 64)),
            Forge::Heap { guard: true, i } => self.guards[i],
            Forge::Heap { guard: false, i } => self.segments[i],
        }
    }

    /// What the raw guard-handle value `raw` stands for now: a handle the
    /// library gave out (a forged value may equal one, even one given out
    /// after the forgery), the handle the library gives for an entry without
    /// having given it yet (the borrow of an entry never borrowed, the no-op
    /// guard of an async entry: see [`layout`]), or nothing.
    pub fn resolve(&self, m: &Model, raw: u64) -> Sym {
        let given = |j: &usize| !self.forged.get(*j).copied().unwrap_or(false);
        if let Some(j) = (0..self.handles.len())
            .filter(given)
            .find(|&j| self.handles[j] == raw)
        {
            return m.handles[j];
        }
        let lay = layout();
        for j in (0..self.handles.len()).filter(given) {
            if let Sym::Install(uid) = m.handles[j] {
                let r = self.handles[j];
                if lay.borrow_xor.is_some_and(|x| r ^ x == raw) {
                    return Sym::Borrow(uid);
                }
                if lay.noop_xor.is_some_and(|x| r ^ x == raw)
                    && matches!(m.entry_kind(uid), Some(Kind::Async(_)))
                {
                    return Sym::Noop(uid);
                }
            }
        }
        Sym::Invalid
    }

    /// Gives every fabricated handle of the table the symbol its value
    /// stands for now (before each call: handles given out since may equal it).
    pub fn resolve_forged(&self, m: &mut Model) {
        let now: Vec<(usize, Sym)> = (0..self.handles.len())
            .filter(|&i| self.forged.get(i).copied().unwrap_or(false))
            .map(|i| (i, self.resolve(m, self.handles[i])))
            .collect();
        for (i, sym) in now {
            m.handles[i] = sym;
        }
    }

    /// The values a forgery sweep passes, derived from its base.
    fn sweep_values(&self, base: SweepBase, seed: u64) -> Vec<u64> {
        let mut rng = Rng::new(seed);
        let r = match base {
            SweepBase::Handle(h) => self.handles[h],
            SweepBase::Guard(i) => self.guards[i],
            SweepBase::Segment(i) => self.segments[i],
            SweepBase::Random => rng.any(),
        };
        let mut v: Vec<u64> = (0..8).map(|k| (r & !7) | k).collect();
        for d in [1u64, 8, 1 + rng.below(64)] {
            v.push(r.wrapping_add(d));
            v.push(r.wrapping_sub(d));
        }
        for _ in 0..6 {
            v.push(r ^ (1u64 << rng.below(64)));
        }
        v.push(r ^ rng.any());
        v.push(rng.any());
        v.push(0);
        v
    }

    /// The calls of a forgery sweep on thread `t`: (function, value, what
    /// the model answers), only where the model refuses the value (or, for
    /// `install_guard_installed`, whatever it answers).
    fn sweep_cases(&self, op: &Op, m: &Model) -> Vec<(Fun, u64, Reply)> {
        let Op::ForgeSweep { t, base, seed } = *op else {
            unreachable!("a sweep")
        };
        let mut mm = m.clone();
        let live_guard =
            |v: u64| (0..self.guards.len()).any(|i| m.guards[i].live && self.guards[i] == v);
        let live_segment =
            |v: u64| (0..self.segments.len()).any(|i| m.segments[i].live && self.segments[i] == v);
        let issued = issued_heap_values()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut cases = Vec::new();
        for v in self.sweep_values(base, seed) {
            let sym = self.resolve(m, v);
            mm.handles.push(sym);
            let h = mm.handles.len() - 1;
            let mut ask = |fun: Fun, op: Op, mm: &mut Model| {
                let reply = mm.apply(&op);
                debug_assert!(
                    reply.status != 0
                        || matches!(
                            fun,
                            Fun::GuardInstalled
                                | Fun::GuardStore
                                | Fun::GuardRelease
                                | Fun::SegmentLen
                                | Fun::SegmentFree
                        )
                );
                cases.push((fun, v, reply));
            };
            if !matches!(sym, Sym::Install(_) | Sym::Noop(_)) {
                ask(Fun::Uninstall, Op::Uninstall { t, h }, &mut mm);
            }
            ask(Fun::GuardInstalled, Op::GuardInstalled { t, h }, &mut mm);
            if !matches!(sym, Sym::Borrow(_)) {
                ask(
                    Fun::BorrowClone,
                    Op::BorrowClone {
                        t,
                        h,
                        null_out: false,
                    },
                    &mut mm,
                );
                ask(Fun::BorrowRelease, Op::BorrowRelease { t, h }, &mut mm);
            }
            if !matches!(sym, Sym::Pause(_)) {
                ask(Fun::Unpause, Op::Unpause { t, h }, &mut mm);
            }
            mm.handles.pop();
            // A value some sequence was given is no forgery (it may be another
            // sequence's live object: the tables are process-wide).
            let heap_ok = v != 0 && !issued.contains(&v);
            if heap_ok && !live_guard(v) {
                let g = HeapArg::Garbage(v);
                ask(Fun::GuardStore, Op::GuardStore { t, g }, &mut mm);
                ask(Fun::GuardRelease, Op::GuardRelease { t, g }, &mut mm);
                ask(
                    Fun::InstallAsync,
                    Op::InstallAsync {
                        t,
                        g,
                        null_out: false,
                    },
                    &mut mm,
                );
            }
            if heap_ok && !live_segment(v) {
                let s = HeapArg::Garbage(v);
                ask(
                    Fun::Resume,
                    Op::Resume {
                        t,
                        s,
                        null_base: false,
                    },
                    &mut mm,
                );
                ask(Fun::SegmentLen, Op::SegmentLen { t, s }, &mut mm);
                ask(Fun::SegmentFree, Op::SegmentFree { t, s }, &mut mm);
            }
        }
        cases
    }

    fn obs_args(&self, plan: &Plan) -> ObsArgs {
        ObsArgs {
            ids: self.ids.clone(),
            handles: self.handles[plan.handles.clone()].to_vec(),
            probes: (0..plan.probe.len())
                .map(|a| plan.probe[a].then(|| self.probe_ptr(a)).flatten())
                .collect(),
            guards: self.guards[..plan.guards].to_vec(),
            segments: self.segments[..plan.segments].to_vec(),
        }
    }

    /// Runs `op` for real (the model has not applied it yet: `m` is the
    /// state before the call) and answers what happened.
    pub fn execute(&mut self, op: &Op, m: &Model, plan: &Plan) -> Result<Done, String> {
        let t = match op.thread() {
            Some(t) => t,
            None => {
                // Forge: no call, nothing to observe.
                return Ok(Done {
                    reply: Reply {
                        status: 0,
                        val: Val::Handle,
                    },
                    raw: match op {
                        Op::Forge { how } => self.forge(*how),
                        _ => unreachable!(),
                    },
                    problems: Vec::new(),
                    obs: Obs::default(),
                });
            }
        };
        if let Op::ThreadExit { t } = *op {
            self.workers[t].exit();
            self.workers[t] = Worker::spawn(t);
            return self.run(t, self.job(&Op::Observe { t }, m, plan));
        }
        if let Op::ForgeSweep { .. } = op {
            let cases = self.sweep_cases(op, m);
            let oa = self.obs_args(plan);
            return self.run(t, Box::new(move || sweep(&cases, &oa)));
        }
        let job = self.job(op, m, plan);
        self.run(t, job)
    }

    fn run(&mut self, t: usize, job: Job) -> Result<Done, String> {
        let w = &mut self.workers[t];
        w.jobs
            .as_ref()
            .expect("worker running")
            .send(job)
            .map_err(|_| format!("worker {t} is gone (a job panicked?)"))?;
        w.done.recv_timeout(HANG).map_err(|e| {
            w.stuck = true;
            format!("worker {t} gave no answer within {HANG:?} ({e}): a call blocked or panicked")
        })
    }

    /// Builds the closure a worker runs: the call, its checks, then the
    /// observation of that thread.
    fn job(&self, op: &Op, m: &Model, plan: &Plan) -> Job {
        // SAFETY: every pointer passed below is NULL or points to a live local.
        unsafe {
            let oa = self.obs_args(plan);
            let ids = self.ids.clone();
            // Pointers of the stores still alive (a freed store's address may
            // come back for a new one): referenced, or holding a lock.
            let alive: Vec<usize> = (0..self.canon.len())
                .map(|a| {
                    let live = m.stores[a].refs > 0 || self.probes[a].is_some() || m.locked(a);
                    if live {
                        self.canon[a]
                    } else {
                        usize::MAX
                    }
                })
                .collect();
            macro_rules! job {
                ($name:literal, |$c:ident| $body:block) => {
                    Box::new(move || {
                        let mut $c = Check::new($name);
                        let (status, val, raw): (i32, Val, u64) = $body;
                        let obs = observe(&oa, &mut $c.problems);
                        $c.done(status, val, raw, obs)
                    })
                };
            }
            match *op {
                Op::Install {
                    id,
                    addr,
                    null_store,
                    null_out,
                    ..
                } => {
                    let id = ids[id];
                    job!("install", |c| {
                        let mut out = storectx_install_guard { raw: SENT };
                        let store = if null_store {
                            null_mut()
                        } else {
                            addr as *mut c_void
                        };
                        let s = storectx_install(id, store, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out.raw == SENT)]);
                        (s, Val::Handle, out.raw)
                    })
                }
                Op::Uninstall { h, .. } => {
                    let raw = self.handles[h];
                    job!("uninstall", |c| {
                        let s = storectx_uninstall(storectx_install_guard { raw });
                        (c.status(s, &[]), Val::Nothing, 0)
                    })
                }
                Op::GuardInstalled { h, .. } => {
                    let raw = self.handles[h];
                    job!("install_guard_installed", |_c| {
                        let on = storectx_install_guard_installed(storectx_install_guard { raw });
                        (0, Val::Bool(on), 0)
                    })
                }
                Op::AsyncNew {
                    id,
                    addr,
                    null_store,
                    null_out,
                    ..
                } => {
                    let id = ids[id];
                    let new_index = self.canon.len();
                    let known = alive.clone();
                    job!("async_store_new", |c| {
                        let mut out = SENT as usize as *mut storectx_async_store;
                        let store = if null_store {
                            null_mut()
                        } else {
                            addr as *mut c_void
                        };
                        let s = storectx_async_store_new(id, store, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out as usize as u64 == SENT)]);
                        if s == 0 {
                            if out.is_null() || known.contains(&(out as usize)) {
                                c.problems.push(format!("async_store_new gave {out:p}"));
                            } else if storectx_async_store_id(out) != id {
                                c.problems
                                    .push("async_store_id of a new store is not its id".into());
                            }
                        }
                        (s, Val::Store(new_index), out as usize as u64)
                    })
                }
                Op::AsyncClone { a, .. } => {
                    let p = a.map_or(0, |a| self.refs[a][0]);
                    let canon = alive.clone();
                    job!("async_store_clone", |_c| {
                        let q =
                            storectx_async_store_clone(p as *const storectx_async_store) as usize;
                        let val = match (q, canon.iter().position(|&x| x == q)) {
                            (0, _) => Val::Null,
                            (_, Some(i)) => Val::Store(i),
                            (q, None) => Val::Addr(q),
                        };
                        (0, val, q as u64)
                    })
                }
                Op::AsyncRelease { a, .. } => {
                    let p = self.store_ptr(a);
                    job!("async_store_release", |_c| {
                        storectx_async_store_release(p as *mut storectx_async_store);
                        (0, Val::Nothing, 0)
                    })
                }
                Op::AsyncId { a, .. } => {
                    let p = self.store_ptr(a);
                    job!("async_store_id", |_c| {
                        (0, Val::Id(storectx_async_store_id(p as *const _)), 0)
                    })
                }
                Op::TryWrite { a, null_out, .. } => {
                    let p = self.store_ptr(a);
                    job!("async_store_try_write", |c| {
                        let mut out = SENT as usize as *mut storectx_write_guard;
                        let s =
                            storectx_async_store_try_write(p as *mut _, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out as usize as u64 == SENT)]);
                        if s == 0 && out.is_null() {
                            c.problems.push("try_write: OK with a NULL guard".into());
                        }
                        (s, Val::Object, out as usize as u64)
                    })
                }
                Op::Write {
                    a, wait, null_out, ..
                } => {
                    let p = self.store_ptr(a);
                    let ns = match wait {
                        Wait::Zero => 0,
                        Wait::Short => 2_000,
                        Wait::Forever => u64::MAX,
                    };
                    job!("async_store_write", |c| {
                        let mut out = SENT as usize as *mut storectx_write_guard;
                        let s =
                            storectx_async_store_write(p as *mut _, ns, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out as usize as u64 == SENT)]);
                        if s == 0 && out.is_null() {
                            c.problems.push("write: OK with a NULL guard".into());
                        }
                        (s, Val::Object, out as usize as u64)
                    })
                }
                Op::GuardStore { g, .. } => {
                    let g = self.heap(g);
                    job!("write_guard_store", |_c| {
                        let p = storectx_write_guard_store(g as *const storectx_write_guard);
                        (0, Val::Addr(p as usize), 0)
                    })
                }
                Op::GuardRelease { g, .. } => {
                    // API.md: a spent guard is a no-op that sets last_error.
                    let noted =
                        g != HeapArg::Null && !matches!(g, HeapArg::Guard(i) if m.guards[i].live);
                    let g = self.heap(g);
                    job!("write_guard_release", |c| {
                        reset_last_error();
                        storectx_write_guard_release(g as *mut storectx_write_guard);
                        if noted {
                            c.expect_last_error();
                        }
                        (0, Val::Nothing, 0)
                    })
                }
                Op::InstallAsync { g, null_out, .. } => {
                    let g = self.heap(g);
                    job!("install_async", |c| {
                        let mut out = storectx_install_guard { raw: SENT };
                        let s = storectx_install_async(g as *mut _, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out.raw == SENT)]);
                        (s, Val::Handle, out.raw)
                    })
                }
                Op::GetCurrent {
                    id,
                    null_store,
                    null_out,
                    ..
                } => {
                    let id = ids[id];
                    job!("get_current", |c| {
                        let mut store = SENT as usize as *mut c_void;
                        let mut out = storectx_borrow { raw: SENT };
                        let s = storectx_get_current(
                            id,
                            ptr(null_store, &mut store),
                            ptr(null_out, &mut out),
                        );
                        let s = c.status(
                            s,
                            &[
                                ("store", store as usize as u64 == SENT),
                                ("out", out.raw == SENT),
                            ],
                        );
                        (
                            s,
                            Val::Borrow {
                                id,
                                addr: store as usize,
                            },
                            out.raw,
                        )
                    })
                }
                Op::GetTransient { id, null_store, .. } => {
                    let id = ids[id];
                    job!("get_current_transient", |c| {
                        let mut store = SENT as usize as *mut c_void;
                        let s = storectx_get_current_transient(id, ptr(null_store, &mut store));
                        let s = c.status(s, &[("store", store as usize as u64 == SENT)]);
                        (s, Val::Addr(store as usize), 0)
                    })
                }
                Op::GetUnborrowed {
                    null_id,
                    null_store,
                    null_out,
                    ..
                } => {
                    job!("get_current_unborrowed", |c| {
                        let mut id = SENT;
                        let mut store = SENT as usize as *mut c_void;
                        let mut out = storectx_borrow { raw: SENT };
                        let s = storectx_get_current_unborrowed(
                            ptr(null_id, &mut id),
                            ptr(null_store, &mut store),
                            ptr(null_out, &mut out),
                        );
                        let s = c.status(
                            s,
                            &[
                                ("id", id == SENT),
                                ("store", store as usize as u64 == SENT),
                                ("out", out.raw == SENT),
                            ],
                        );
                        (
                            s,
                            Val::Borrow {
                                id,
                                addr: store as usize,
                            },
                            out.raw,
                        )
                    })
                }
                Op::GetAsync {
                    id,
                    null_async,
                    null_store,
                    null_out,
                    ..
                } => {
                    let id = ids[id];
                    let canon = alive.clone();
                    job!("get_current_async", |c| {
                        let mut shared = SENT as usize as *mut storectx_async_store;
                        let mut store = SENT as usize as *mut c_void;
                        let mut out = storectx_borrow { raw: SENT };
                        let s = storectx_get_current_async(
                            id,
                            ptr(null_async, &mut shared),
                            ptr(null_store, &mut store),
                            ptr(null_out, &mut out),
                        );
                        let s = c.status(
                            s,
                            &[
                                ("async_store", shared as usize as u64 == SENT),
                                ("store", store as usize as u64 == SENT),
                                ("out", out.raw == SENT),
                            ],
                        );
                        let q = shared as usize;
                        let which = match (q, canon.iter().position(|&x| x == q)) {
                            (0, _) => None,
                            (_, Some(i)) => Some(i),
                            (q, None) => {
                                if s == 0 {
                                    c.problems
                                        .push(format!("get_current_async: unknown store {q:#x}"));
                                }
                                None
                            }
                        };
                        // The borrow's raw goes first; the reference is found again by `which`.
                        (
                            s,
                            Val::BorrowAsync {
                                addr: store as usize,
                                store: which,
                            },
                            out.raw,
                        )
                    })
                }
                Op::BorrowClone { h, null_out, .. } => {
                    let raw = self.handles[h];
                    job!("borrow_clone", |c| {
                        let mut out = storectx_borrow { raw: SENT };
                        let s =
                            storectx_borrow_clone(storectx_borrow { raw }, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out.raw == SENT)]);
                        (s, Val::Handle, out.raw)
                    })
                }
                Op::BorrowRelease { h, .. } => {
                    let raw = self.handles[h];
                    job!("borrow_release", |c| {
                        let s = storectx_borrow_release(storectx_borrow { raw });
                        (c.status(s, &[]), Val::Nothing, 0)
                    })
                }
                Op::Pause { id, null_out, .. } => {
                    let id = ids[id];
                    job!("pause", |c| {
                        let mut out = storectx_pause_guard { raw: SENT };
                        let s = storectx_pause(id, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out.raw == SENT)]);
                        (s, Val::Handle, out.raw)
                    })
                }
                Op::Unpause { h, .. } => {
                    let raw = self.handles[h];
                    job!("unpause", |c| {
                        let s = storectx_unpause(storectx_pause_guard { raw });
                        (c.status(s, &[]), Val::Nothing, 0)
                    })
                }
                Op::Suspend { base, null_out, .. } => {
                    job!("suspend", |c| {
                        let mut out = SENT as usize as *mut storectx_suspended;
                        let s = storectx_suspend(base, ptr(null_out, &mut out));
                        let s = c.status(s, &[("out", out as usize as u64 == SENT)]);
                        if s == 0 && out.is_null() {
                            c.problems.push("suspend: OK with a NULL segment".into());
                        }
                        (s, Val::Object, out as usize as u64)
                    })
                }
                Op::Resume { s, null_base, .. } => {
                    let seg = self.heap(s);
                    job!("resume", |c| {
                        let mut base = SENT as usize;
                        let s = storectx_resume(seg as *mut _, ptr(null_base, &mut base));
                        let s = c.status(s, &[("base_depth", base as u64 == SENT)]);
                        (s, Val::Base(base), 0)
                    })
                }
                Op::SegmentLen { s, .. } => {
                    let seg = self.heap(s);
                    job!("suspended_len", |_c| {
                        (0, Val::Len(storectx_suspended_len(seg as *const _)), 0)
                    })
                }
                Op::SegmentFree { s, .. } => {
                    let noted = s != HeapArg::Null
                        && !matches!(s, HeapArg::Segment(i) if m.segments[i].live);
                    let seg = self.heap(s);
                    job!("suspended_free", |c| {
                        reset_last_error();
                        storectx_suspended_free(seg as *mut _);
                        if noted {
                            c.expect_last_error();
                        }
                        (0, Val::Nothing, 0)
                    })
                }
                Op::Describe { len, null_buf, .. } => {
                    job!("describe", |c| {
                        const FILL: u8 = 0xAA;
                        let mut buf = vec![FILL; len + 16];
                        let p = if null_buf {
                            null_mut()
                        } else {
                            buf.as_mut_ptr().cast::<c_char>()
                        };
                        let need = storectx_describe(p, len);
                        if buf[len..].iter().any(|&b| b != FILL) {
                            c.problems.push(format!("describe wrote past len {len}"));
                        }
                        let text = if null_buf || len == 0 {
                            if buf.iter().any(|&b| b != FILL) {
                                c.problems
                                    .push("describe wrote with a NULL buffer or len 0".into());
                            }
                            None
                        } else {
                            match buf[..len].iter().position(|&b| b == 0) {
                                Some(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
                                None => {
                                    c.problems.push("describe: no NUL within len".into());
                                    None
                                }
                            }
                        };
                        (0, Val::Described { len: need, text }, 0)
                    })
                }
                Op::Observe { .. } => job!("observe", |_c| { (0, Val::Nothing, 0) }),
                Op::ThreadExit { .. } | Op::Forge { .. } | Op::ForgeSweep { .. } => {
                    unreachable!("handled by execute")
                }
            }
        }
    }

    /// Records what a successful call produced, once the model agreed.
    pub fn commit(&mut self, op: &Op, reply: &Reply, done: &Done) {
        // SAFETY: every pointer passed below is NULL or points to a live local.
        unsafe {
            if reply.status != 0 {
                return;
            }
            match *op {
                Op::Install { .. }
                | Op::InstallAsync { .. }
                | Op::GetCurrent { .. }
                | Op::GetUnborrowed { .. }
                | Op::BorrowClone { .. }
                | Op::Pause { .. }
                | Op::Forge { .. } => self.handles.push(done.raw),
                Op::GetAsync { .. } => {
                    self.handles.push(done.raw);
                    if let Val::BorrowAsync { store: Some(a), .. } = reply.val {
                        // The new reference is the same pointer (identity checked).
                        let p = self.canon[a];
                        self.refs[a].push(p);
                    }
                }
                Op::AsyncNew { .. } => {
                    let p = done.raw as usize;
                    self.canon.push(p);
                    self.refs.push(vec![p]);
                    self.probes.push(self.probe_refs.then(|| {
                        storectx_async_store_clone(p as *const storectx_async_store) as usize
                    }));
                }
                Op::AsyncClone { a: Some(a), .. } => self.refs[a].push(done.raw as usize),
                Op::AsyncRelease { a: Some(a), .. } => {
                    self.refs[a].pop();
                }
                Op::TryWrite { .. } | Op::Write { .. } => {
                    self.guards.push(done.raw);
                    note_issued(done.raw);
                }
                Op::Suspend { .. } => {
                    self.segments.push(done.raw);
                    note_issued(done.raw);
                }
                _ => {}
            }
            self.forged.resize(self.handles.len(), false);
            if let Op::Forge { .. } = op {
                *self
                    .forged
                    .last_mut()
                    .expect("the forged value was just pushed") = true;
            }
        }
    }

    /// Drops the hidden probe references and ends every worker.
    pub fn shutdown(&mut self) {
        // SAFETY: every pointer passed below is NULL or points to a live local.
        unsafe {
            for p in self.probes.drain(..).flatten() {
                storectx_async_store_release(p as *mut storectx_async_store);
            }
            for w in &mut self.workers {
                w.exit();
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // After a mismatch: end the workers and wait for them (a failure is
        // reported by a panic, and under libFuzzer by an abort, which should
        // not race with threads still exiting), except one stuck in a call.
        // Leaked references and locks die with the process.
        for w in &mut self.workers {
            drop(w.jobs.take());
            if !w.stuck {
                if let Some(join) = w.join.take() {
                    let _ = join.join();
                }
            }
        }
    }
}

/// How the library derives one kind of handle from another for the same
/// entry, learned from the library itself (on a thread of its own, once per
/// process) rather than assumed: `Some(x)` when, for two entries, the borrow
/// (no-op guard) equals the install guard XOR the same `x`. The model needs
/// it for forged values that equal a handle the library would give for an
/// entry but has not given yet; they are that handle, not forgeries.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub borrow_xor: Option<u64>,
    pub noop_xor: Option<u64>,
}

pub fn layout() -> Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    *LAYOUT.get_or_init(|| {
        thread::spawn(calibrate)
            .join()
            .expect("calibrating the handle layout")
    })
}

fn calibrate() -> Layout {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let mut store = 0u64;
        let addr = std::ptr::from_mut(&mut store).cast::<c_void>();
        let ok = |s: storectx_status, what: &str| assert_eq!(status(s), 0, "calibration: {what}");
        let (mut borrow, mut noop) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            let id = storectx_store_id_new();
            let mut g = storectx_install_guard { raw: 0 };
            ok(storectx_install(id, addr, &mut g), "install");
            let mut p = null_mut();
            let mut b = storectx_borrow { raw: 0 };
            ok(storectx_get_current(id, &mut p, &mut b), "get_current");
            borrow.push(g.raw ^ b.raw);
            ok(storectx_borrow_release(b), "borrow_release");
            ok(storectx_uninstall(g), "uninstall");
            let id = storectx_store_id_new();
            let mut a = null_mut();
            ok(
                storectx_async_store_new(id, addr, &mut a),
                "async_store_new",
            );
            let mut w = null_mut();
            ok(storectx_async_store_try_write(a, &mut w), "try_write");
            let mut ga = storectx_install_guard { raw: 0 };
            ok(storectx_install_async(w, &mut ga), "install_async");
            let mut n = storectx_install_guard { raw: 0 };
            ok(storectx_install(id, addr, &mut n), "install (no-op)");
            noop.push(ga.raw ^ n.raw);
            ok(storectx_uninstall(n), "uninstall (no-op)");
            ok(storectx_uninstall(ga), "uninstall (async)");
            storectx_async_store_release(a);
        }
        let same = |d: &[u64]| (d[0] == d[1]).then_some(d[0]);
        Layout {
            borrow_xor: same(&borrow),
            noop_xor: same(&noop),
        }
    }
}

/// A function a forgery sweep calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fun {
    Uninstall,
    GuardInstalled,
    BorrowClone,
    BorrowRelease,
    Unpause,
    GuardStore,
    GuardRelease,
    InstallAsync,
    Resume,
    SegmentLen,
    SegmentFree,
}

impl Fun {
    fn name(self) -> &'static str {
        match self {
            Fun::Uninstall => "uninstall",
            Fun::GuardInstalled => "install_guard_installed",
            Fun::BorrowClone => "borrow_clone",
            Fun::BorrowRelease => "borrow_release",
            Fun::Unpause => "unpause",
            Fun::GuardStore => "write_guard_store",
            Fun::GuardRelease => "write_guard_release",
            Fun::InstallAsync => "install_async",
            Fun::Resume => "resume",
            Fun::SegmentLen => "suspended_len",
            Fun::SegmentFree => "suspended_free",
        }
    }
}

fn describe_now() -> String {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let need = storectx_describe(null_mut(), 0);
        let mut buf = vec![0u8; need + 1];
        storectx_describe(buf.as_mut_ptr().cast::<c_char>(), buf.len());
        String::from_utf8_lossy(&buf[..need]).into_owned()
    }
}

/// Runs a forgery sweep on the calling worker: each call must answer what
/// the model said, name itself in `last_error` when it refuses, leave its
/// out-parameters alone, and leave the stack as it was. Answers the number
/// of calls made (as `raw`).
fn sweep(cases: &[(Fun, u64, Reply)], oa: &ObsArgs) -> Done {
    // SAFETY: every pointer passed below is NULL or points to a live local.
    unsafe {
        let mut problems = Vec::new();
        let before = describe_now();
        for (fun, v, want) in cases {
            let (fun, v) = (*fun, *v);
            let mut c = Check::new(fun.name());
            let (status, val) = match fun {
                Fun::Uninstall => {
                    let s = storectx_uninstall(storectx_install_guard { raw: v });
                    (c.status(s, &[]), Val::Nothing)
                }
                Fun::GuardInstalled => (
                    0,
                    Val::Bool(storectx_install_guard_installed(storectx_install_guard {
                        raw: v,
                    })),
                ),
                Fun::BorrowClone => {
                    let mut out = storectx_borrow { raw: SENT };
                    let s = storectx_borrow_clone(storectx_borrow { raw: v }, &mut out);
                    (c.status(s, &[("out", out.raw == SENT)]), Val::Handle)
                }
                Fun::BorrowRelease => {
                    let s = storectx_borrow_release(storectx_borrow { raw: v });
                    (c.status(s, &[]), Val::Nothing)
                }
                Fun::Unpause => {
                    let s = storectx_unpause(storectx_pause_guard { raw: v });
                    (c.status(s, &[]), Val::Nothing)
                }
                Fun::GuardStore => {
                    let p = storectx_write_guard_store(v as usize as *const storectx_write_guard);
                    (0, Val::Addr(p as usize))
                }
                Fun::GuardRelease => {
                    reset_last_error();
                    storectx_write_guard_release(v as usize as *mut storectx_write_guard);
                    c.expect_last_error();
                    (0, Val::Nothing)
                }
                Fun::InstallAsync => {
                    let mut out = storectx_install_guard { raw: SENT };
                    let s =
                        storectx_install_async(v as usize as *mut storectx_write_guard, &mut out);
                    (c.status(s, &[("out", out.raw == SENT)]), Val::Handle)
                }
                Fun::Resume => {
                    let mut base = SENT as usize;
                    let s = storectx_resume(v as usize as *mut storectx_suspended, &mut base);
                    (
                        c.status(s, &[("base_depth", base as u64 == SENT)]),
                        Val::Base(base),
                    )
                }
                Fun::SegmentLen => (
                    0,
                    Val::Len(storectx_suspended_len(
                        v as usize as *const storectx_suspended,
                    )),
                ),
                Fun::SegmentFree => {
                    reset_last_error();
                    storectx_suspended_free(v as usize as *mut storectx_suspended);
                    c.expect_last_error();
                    (0, Val::Nothing)
                }
            };
            let got = Reply {
                status,
                val: if status == 0 { val } else { Val::Nothing },
            };
            if &got != want {
                problems.push(format!(
                    "forged value {v:#x}: {}({v:#x}) answered {got:?}, the model says {want:?}",
                    fun.name()
                ));
            }
            problems.extend(c.problems);
            if describe_now() != before {
                problems.push(format!(
                "forged value {v:#x}: {}({v:#x}) changed the stack:\n--- before\n{before}--- after\n{}",
                fun.name(),
                describe_now()
            ));
                break;
            }
            if problems.len() > 8 {
                break;
            }
        }
        let obs = observe(oa, &mut problems);
        Done {
            reply: Reply {
                status: 0,
                val: Val::Nothing,
            },
            raw: cases.len() as u64,
            problems,
            obs,
        }
    }
}

/// Every write-guard and segment value given to any sequence of this
/// process. Sequences run side by side share the library's tables, so a
/// forgery sweep passes only values outside this set to the heap functions,
/// and runs alone (see [`step_lock`]): no other sequence can be given a new
/// value while it runs.
fn issued_heap_values() -> &'static Mutex<HashSet<u64>> {
    static ISSUED: OnceLock<Mutex<HashSet<u64>>> = OnceLock::new();
    ISSUED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn note_issued(raw: u64) {
    issued_heap_values()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(raw);
}

/// Held (shared) by every step of every sequence, and exclusively by a
/// forgery sweep.
pub fn step_lock() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}
