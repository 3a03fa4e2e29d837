//! The calls a sequence is made of, and the generator that picks them.
//!
//! Arguments are symbolic: `t` is a worker thread, `id` an index into the
//! store-id pool (0 is the reserved id 0), `h` an index into the table of
//! guard handles (any kind, live or not), `a` an async store, `HeapArg` a
//! write-guard / segment argument. The driver turns them into real values.
//!
//! The generator looks at the model only to make sequences interesting
//! (mostly right handles, sometimes wrong ones); what a call must answer is
//! the model's business, never the generator's.

use super::reference::{Kind, Model, Sym};
use super::source::Source;

/// How long `write` may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// 0: try once.
    Zero,
    /// A few microseconds.
    Short,
    /// UINT64_MAX: only generated when the model says it cannot block.
    Forever,
}

/// A `storectx_write_guard *` or `storectx_suspended *` argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapArg {
    Null,
    /// Write guard number `i` (live or spent).
    Guard(usize),
    /// Segment number `i` (live or spent).
    Segment(usize),
    /// A value the library never handed out.
    Garbage(u64),
    /// A real `storectx_async_store *` of store `a`, cast to the wrong type.
    StorePtr(usize),
}

/// A fabricated guard-handle value (no library call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forge {
    /// `{ 0 }`.
    Zero,
    /// An uninitialised-memory-like value.
    Garbage(u64),
    /// Handle `h` with high bits flipped: same kind, a number never issued.
    Flip { h: usize, bits: u64 },
    /// Handle `h` plus a small delta (a neighbouring number, or the same
    /// number with other kind bits).
    Near { h: usize, delta: i64 },
    /// Handle `h` with its low three (kind) bits replaced by `tag`.
    Retag { h: usize, tag: u64 },
    /// Handle `h` with one bit flipped.
    BitFlip { h: usize, bit: u32 },
    /// The value of write guard `i` (`guard`) or segment `i`, as a guard handle.
    Heap { guard: bool, i: usize },
}

/// What a forgery sweep derives its values from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepBase {
    /// Guard handle `h` of the table.
    Handle(usize),
    /// Write guard `i` (live or spent).
    Guard(usize),
    /// Segment `i` (live or spent).
    Segment(usize),
    /// Nothing: random values.
    Random,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Install {
        t: usize,
        id: usize,
        addr: usize,
        null_store: bool,
        null_out: bool,
    },
    Uninstall {
        t: usize,
        h: usize,
    },
    GuardInstalled {
        t: usize,
        h: usize,
    },
    AsyncNew {
        t: usize,
        id: usize,
        addr: usize,
        null_store: bool,
        null_out: bool,
    },
    AsyncClone {
        t: usize,
        a: Option<usize>,
    },
    AsyncRelease {
        t: usize,
        a: Option<usize>,
    },
    AsyncId {
        t: usize,
        a: Option<usize>,
    },
    TryWrite {
        t: usize,
        a: Option<usize>,
        null_out: bool,
    },
    Write {
        t: usize,
        a: Option<usize>,
        wait: Wait,
        null_out: bool,
    },
    GuardStore {
        t: usize,
        g: HeapArg,
    },
    GuardRelease {
        t: usize,
        g: HeapArg,
    },
    InstallAsync {
        t: usize,
        g: HeapArg,
        null_out: bool,
    },
    GetCurrent {
        t: usize,
        id: usize,
        null_store: bool,
        null_out: bool,
    },
    GetTransient {
        t: usize,
        id: usize,
        null_store: bool,
    },
    GetUnborrowed {
        t: usize,
        null_id: bool,
        null_store: bool,
        null_out: bool,
    },
    GetAsync {
        t: usize,
        id: usize,
        null_async: bool,
        null_store: bool,
        null_out: bool,
    },
    BorrowClone {
        t: usize,
        h: usize,
        null_out: bool,
    },
    BorrowRelease {
        t: usize,
        h: usize,
    },
    Pause {
        t: usize,
        id: usize,
        null_out: bool,
    },
    Unpause {
        t: usize,
        h: usize,
    },
    Suspend {
        t: usize,
        base: usize,
        null_out: bool,
    },
    Resume {
        t: usize,
        s: HeapArg,
        null_base: bool,
    },
    SegmentLen {
        t: usize,
        s: HeapArg,
    },
    SegmentFree {
        t: usize,
        s: HeapArg,
    },
    Describe {
        t: usize,
        len: usize,
        null_buf: bool,
    },
    /// Not a library call: adds a fabricated value to the handle table.
    Forge {
        how: Forge,
    },
    /// Many values derived from `base` (its 8 kind-bit patterns, neighbours,
    /// bit flips, random ones; chosen by `seed`), each passed to every
    /// function that takes a guard handle, write guard or segment, on thread
    /// `t`, wherever the model says the call must be refused (a value that
    /// names nothing of that function's kind); each must answer what the
    /// model answers and change nothing.
    ForgeSweep {
        t: usize,
        base: SweepBase,
        seed: u64,
    },
    /// The worker thread exits (with whatever its stack holds) and a fresh
    /// thread takes its place.
    ThreadExit {
        t: usize,
    },
    /// Not a call: only the observation of thread `t`.
    Observe {
        t: usize,
    },
}

impl Op {
    /// The worker the call runs on (`None`: no library call).
    pub fn thread(&self) -> Option<usize> {
        use Op::*;
        match *self {
            Install { t, .. }
            | Uninstall { t, .. }
            | GuardInstalled { t, .. }
            | AsyncNew { t, .. }
            | AsyncClone { t, .. }
            | AsyncRelease { t, .. }
            | AsyncId { t, .. }
            | TryWrite { t, .. }
            | Write { t, .. }
            | GuardStore { t, .. }
            | GuardRelease { t, .. }
            | InstallAsync { t, .. }
            | GetCurrent { t, .. }
            | GetTransient { t, .. }
            | GetUnborrowed { t, .. }
            | GetAsync { t, .. }
            | BorrowClone { t, .. }
            | BorrowRelease { t, .. }
            | Pause { t, .. }
            | Unpause { t, .. }
            | Suspend { t, .. }
            | Resume { t, .. }
            | SegmentLen { t, .. }
            | SegmentFree { t, .. }
            | Describe { t, .. }
            | ForgeSweep { t, .. }
            | ThreadExit { t }
            | Observe { t } => Some(t),
            Forge { .. } => None,
        }
    }

    /// Whether this is a call of the library under test (counted).
    pub fn is_call(&self) -> bool {
        !matches!(
            self,
            Op::Forge { .. } | Op::Observe { .. } | Op::ThreadExit { .. }
        )
    }
}

/// Address of a sync store for pool id `id` (never NULL); `variant`
/// gives another address for the same id (ADDRESS_MISMATCH).
pub fn sync_addr(id: usize, variant: bool) -> usize {
    0x1000 * (id + 1) + if variant { 0x10 } else { 0 }
}

/// Address of the `n`-th async store.
pub fn async_addr(n: usize) -> usize {
    0x10_0000 + 0x100 * (n + 1)
}

/// Bounds that keep tables small and sequences meaningful.
const MAX_STORES: usize = 6;
const MAX_DEPTH: usize = 24;

/// Generator state carried between calls.
#[derive(Debug, Default)]
pub struct Gen {
    /// The thread the sequence is "on"; calls stick to it most of the time.
    pub t: usize,
}

#[derive(Clone, Copy, Debug)]
enum Cat {
    Install,
    Uninstall,
    GuardInstalled,
    AsyncNew,
    AsyncClone,
    AsyncRelease,
    AsyncId,
    TryWrite,
    Write,
    GuardStore,
    GuardRelease,
    InstallAsync,
    GetCurrent,
    GetTransient,
    GetUnborrowed,
    GetAsync,
    BorrowClone,
    BorrowRelease,
    Pause,
    Unpause,
    Suspend,
    Resume,
    SegmentLen,
    SegmentFree,
    Describe,
    Forge,
    ForgeSweep,
    ThreadExit,
}

const CATS: &[(Cat, u64)] = &[
    (Cat::Install, 18),
    (Cat::Uninstall, 11),
    (Cat::GuardInstalled, 1),
    (Cat::AsyncNew, 3),
    (Cat::AsyncClone, 1),
    (Cat::AsyncRelease, 1),
    (Cat::AsyncId, 1),
    (Cat::TryWrite, 4),
    (Cat::Write, 3),
    (Cat::GuardStore, 1),
    (Cat::GuardRelease, 3),
    (Cat::InstallAsync, 6),
    (Cat::GetCurrent, 8),
    (Cat::GetTransient, 2),
    (Cat::GetUnborrowed, 3),
    (Cat::GetAsync, 3),
    (Cat::BorrowClone, 3),
    (Cat::BorrowRelease, 9),
    (Cat::Pause, 4),
    (Cat::Unpause, 6),
    (Cat::Suspend, 5),
    (Cat::Resume, 6),
    (Cat::SegmentLen, 1),
    (Cat::SegmentFree, 2),
    (Cat::Describe, 1),
    (Cat::Forge, 3),
    (Cat::ForgeSweep, 3),
    (Cat::ThreadExit, 1),
];

impl Gen {
    /// Picks the next call (`Observe` when the source runs dry).
    pub fn next<S: Source>(&mut self, m: &Model, src: &mut S) -> Op {
        let threads = m.threads.len();
        if src.chance(22) {
            self.t = src.below(threads as u64) as usize;
        }
        let t = self.t;
        let weights: Vec<u64> = CATS.iter().map(|c| c.1).collect();
        // A category may refuse (nothing to call it on); a dry byte source
        // answers 0 forever, so the retries are bounded.
        for _ in 0..64 {
            if src.exhausted() {
                break;
            }
            let cat = CATS[src.weighted(&weights)].0;
            if let Some(op) = self.make(cat, t, m, src) {
                return op;
            }
        }
        Op::Observe { t }
    }

    fn make<S: Source>(&mut self, cat: Cat, t: usize, m: &Model, src: &mut S) -> Option<Op> {
        let null = |src: &mut S| src.chance(3);
        let stack = &m.threads[t];
        // Calls on objects that do not exist yet are mostly skipped (some
        // stay: NULL and garbage arguments with nothing to confuse them with).
        let held = m.stores.iter().any(|a| a.refs > 0);
        let needs = match cat {
            Cat::AsyncClone | Cat::AsyncRelease | Cat::AsyncId | Cat::TryWrite | Cat::Write => held,
            Cat::GuardStore | Cat::GuardRelease | Cat::InstallAsync => !m.guards.is_empty(),
            Cat::Resume | Cat::SegmentLen | Cat::SegmentFree => !m.segments.is_empty(),
            _ => true,
        };
        if !needs && src.chance(85) {
            return None;
        }
        Some(match cat {
            Cat::Install => {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                let id = self.store_id(t, m, src);
                let addr = match stack.iter().rev().find(|e| m.ids[id] == e.id) {
                    // the same store again: mostly its own address
                    Some(e) if !src.chance(12) => e.addr,
                    _ => sync_addr(id, src.chance(10)),
                };
                Op::Install {
                    t,
                    id,
                    addr,
                    null_store: null(src),
                    null_out: null(src),
                }
            }
            Cat::Uninstall => Op::Uninstall {
                t,
                h: self.handle(t, m, src, HKind::Install)?,
            },
            Cat::GuardInstalled => Op::GuardInstalled {
                t,
                h: self.handle(t, m, src, HKind::Install)?,
            },
            Cat::AsyncNew => {
                if m.stores.len() >= MAX_STORES {
                    return None;
                }
                let id = if src.chance(4) {
                    0
                } else {
                    1 + src.below(m.ids.len() as u64 - 1) as usize
                };
                Op::AsyncNew {
                    t,
                    id,
                    addr: async_addr(m.stores.len()),
                    null_store: null(src),
                    null_out: null(src),
                }
            }
            Cat::AsyncClone => Op::AsyncClone {
                t,
                a: self.store_ref(m, src, 10),
            },
            Cat::AsyncRelease => {
                // Never over-release: that is a refcount bug of the caller (UB).
                Op::AsyncRelease {
                    t,
                    a: self.store_ref(m, src, 10),
                }
            }
            Cat::AsyncId => Op::AsyncId {
                t,
                a: self.store_ref(m, src, 10),
            },
            Cat::TryWrite => Op::TryWrite {
                t,
                a: self.store_ref(m, src, 3),
                null_out: null(src),
            },
            Cat::Write => {
                let a = self.store_ref(m, src, 3);
                let mut wait = [Wait::Zero, Wait::Short, Wait::Forever][src.below(3) as usize];
                if let Some(a) = a {
                    // Waiting forever only where it cannot block this
                    // single-stepped driver: free, or held by our own stack.
                    if wait == Wait::Forever && m.locked(a) && !m.would_deadlock(t, a) {
                        wait = Wait::Short;
                    }
                }
                Op::Write {
                    t,
                    a,
                    wait,
                    null_out: null(src),
                }
            }
            Cat::GuardStore => Op::GuardStore {
                t,
                g: self.heap(m, src, true),
            },
            Cat::GuardRelease => Op::GuardRelease {
                t,
                g: self.heap(m, src, true),
            },
            Cat::InstallAsync => {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                Op::InstallAsync {
                    t,
                    g: self.heap(m, src, true),
                    null_out: null(src),
                }
            }
            Cat::GetCurrent => Op::GetCurrent {
                t,
                id: self.lookup_id(t, m, src),
                null_store: null(src),
                null_out: null(src),
            },
            Cat::GetTransient => Op::GetTransient {
                t,
                id: self.lookup_id(t, m, src),
                null_store: null(src),
            },
            Cat::GetUnborrowed => Op::GetUnborrowed {
                t,
                null_id: null(src),
                null_store: null(src),
                null_out: null(src),
            },
            Cat::GetAsync => Op::GetAsync {
                t,
                id: self.lookup_id(t, m, src),
                null_async: null(src),
                null_store: null(src),
                null_out: null(src),
            },
            Cat::BorrowClone => Op::BorrowClone {
                t,
                h: self.handle(t, m, src, HKind::Borrow)?,
                null_out: null(src),
            },
            Cat::BorrowRelease => Op::BorrowRelease {
                t,
                h: self.handle(t, m, src, HKind::Borrow)?,
            },
            Cat::Pause => Op::Pause {
                t,
                id: self.lookup_id(t, m, src),
                null_out: null(src),
            },
            Cat::Unpause => Op::Unpause {
                t,
                h: self.handle(t, m, src, HKind::Pause)?,
            },
            Cat::Suspend => {
                let d = stack.len();
                let base = match src.below(100) {
                    0..=39 => d.saturating_sub(1 + src.below(2) as usize),
                    40..=64 => src.below(d as u64 + 1) as usize,
                    65..=74 => d,
                    75..=84 => 0,
                    85..=94 => d + 1 + src.below(3) as usize,
                    _ => usize::MAX,
                };
                Op::Suspend {
                    t,
                    base,
                    null_out: null(src),
                }
            }
            Cat::Resume => {
                if stack.len() >= MAX_DEPTH {
                    return None;
                }
                let s = self.heap(m, src, false);
                // A coroutine resumes wherever it is polled next: often on
                // another thread than the one it yielded on.
                let threads = m.threads.len();
                let t = match s {
                    HeapArg::Segment(i)
                        if threads > 1 && m.segments[i].from == t && src.chance(60) =>
                    {
                        self.t = (t + 1 + src.below(threads as u64 - 1) as usize) % threads;
                        self.t
                    }
                    _ => t,
                };
                Op::Resume {
                    t,
                    s,
                    null_base: null(src),
                }
            }
            Cat::SegmentLen => Op::SegmentLen {
                t,
                s: self.heap(m, src, false),
            },
            Cat::SegmentFree => Op::SegmentFree {
                t,
                s: self.heap(m, src, false),
            },
            Cat::Describe => {
                let len = match src.below(4) {
                    0 => 0,
                    1 => 1,
                    2 => src.below(64) as usize,
                    _ => 4096,
                };
                Op::Describe {
                    t,
                    len,
                    null_buf: src.chance(10),
                }
            }
            Cat::Forge => {
                let n = m.handles.len() as u64;
                let how = match src.below(8) {
                    0 => Forge::Zero,
                    1 => Forge::Garbage(garbage(src)),
                    _ if n == 0 => Forge::Zero,
                    2 => Forge::Flip {
                        h: src.below(n) as usize,
                        bits: 1 + src.below(63),
                    },
                    3 | 4 => Forge::Retag {
                        h: src.below(n) as usize,
                        tag: src.below(8),
                    },
                    5 => Forge::Near {
                        h: src.below(n) as usize,
                        delta: src.below(33) as i64 - 16,
                    },
                    6 => Forge::BitFlip {
                        h: src.below(n) as usize,
                        bit: src.below(64) as u32,
                    },
                    _ => {
                        let (g, s) = (m.guards.len() as u64, m.segments.len() as u64);
                        if g + s == 0 {
                            Forge::Zero
                        } else {
                            let k = src.below(g + s);
                            Forge::Heap {
                                guard: k < g,
                                i: if k < g { k } else { k - g } as usize,
                            }
                        }
                    }
                };
                Op::Forge { how }
            }
            Cat::ForgeSweep => {
                let (n, g, s) = (
                    m.handles.len() as u64,
                    m.guards.len() as u64,
                    m.segments.len() as u64,
                );
                let base = match src.below(10) {
                    0..=5 if n > 0 => SweepBase::Handle(src.below(n) as usize),
                    6 | 7 if g > 0 => SweepBase::Guard(src.below(g) as usize),
                    8 if s > 0 => SweepBase::Segment(src.below(s) as usize),
                    _ => SweepBase::Random,
                };
                Op::ForgeSweep {
                    t,
                    base,
                    seed: src.any(),
                }
            }
            Cat::ThreadExit => {
                let t = src.below(m.threads.len() as u64) as usize;
                Op::ThreadExit { t }
            }
        })
    }

    /// A store id for install: mostly the top's (nested call on the same
    /// store), otherwise any, sometimes a paused one, rarely id 0.
    fn store_id<S: Source>(&self, t: usize, m: &Model, src: &mut S) -> usize {
        let stack = &m.threads[t];
        let index_of = |id: u64| m.ids.iter().position(|&x| x == id).unwrap_or(0);
        match src.below(100) {
            0..=2 => 0,
            3..=37 if !stack.is_empty() => index_of(stack.last().unwrap().id),
            38..=47 if !stack.is_empty() => {
                index_of(stack[src.below(stack.len() as u64) as usize].id)
            }
            _ => 1 + src.below(m.ids.len() as u64 - 1) as usize,
        }
    }

    /// A store id for a lookup (get_current*, pause): mostly the top's.
    fn lookup_id<S: Source>(&self, t: usize, m: &Model, src: &mut S) -> usize {
        let stack = &m.threads[t];
        match stack.last() {
            Some(top) if src.chance(70) => m.ids.iter().position(|&x| x == top.id).unwrap_or(0),
            _ => self.store_id(t, m, src),
        }
    }

    /// An async store the caller holds a reference to (or NULL).
    fn store_ref<S: Source>(&self, m: &Model, src: &mut S, null_percent: u64) -> Option<usize> {
        let held: Vec<usize> = (0..m.stores.len())
            .filter(|&a| m.stores[a].refs > 0)
            .collect();
        if held.is_empty() || src.chance(null_percent) {
            None
        } else {
            Some(src.pick(&held))
        }
    }

    /// A guard handle for a slot of kind `want`: mostly one of that kind
    /// whose entry is on this thread (usually the top), else anything in the
    /// table: stale, foreign, suspended, wrong kind, forged.
    fn handle<S: Source>(&self, t: usize, m: &Model, src: &mut S, want: HKind) -> Option<usize> {
        if m.handles.is_empty() {
            return None;
        }
        let stack = &m.threads[t];
        let top_uid = stack.last().map(|e| e.uid);
        let on_stack = |uid: u32| stack.iter().any(|e| e.uid == uid);
        let top_pause = stack.last().and_then(|e| e.pauses.last()).map(|p| p.0);
        let good: Vec<usize> = (0..m.handles.len())
            .filter(|&i| match (want, m.handles[i]) {
                (HKind::Install, Sym::Install(u)) => on_stack(u),
                (HKind::Install, Sym::Noop(u)) => on_stack(u),
                (HKind::Borrow, Sym::Borrow(u)) => on_stack(u),
                (HKind::Pause, Sym::Pause(p)) => {
                    stack.iter().any(|e| e.pauses.iter().any(|q| q.0 == p))
                }
                _ => false,
            })
            .collect();
        let best: Vec<usize> = good
            .iter()
            .copied()
            .filter(|&i| match m.handles[i] {
                Sym::Install(u) | Sym::Noop(u) | Sym::Borrow(u) => Some(u) == top_uid,
                Sym::Pause(p) => Some(p) == top_pause,
                _ => false,
            })
            .collect();
        Some(match src.below(100) {
            0..=54 if !best.is_empty() => src.pick(&best),
            0..=74 if !good.is_empty() => src.pick(&good),
            _ => src.below(m.handles.len() as u64) as usize,
        })
    }

    /// A write-guard (`guard` = true) or segment argument: mostly a live
    /// one, else spent, of the other type, garbage, a store pointer, NULL.
    fn heap<S: Source>(&self, m: &Model, src: &mut S, guard: bool) -> HeapArg {
        let live: Vec<usize> = if guard {
            (0..m.guards.len()).filter(|&g| m.guards[g].live).collect()
        } else {
            // Segments that carry entries first: those are the interesting ones.
            let live = |s: &usize| m.segments[*s].live;
            let full: Vec<usize> = (0..m.segments.len())
                .filter(|s| live(s) && !m.segments[*s].entries.is_empty())
                .collect();
            if !full.is_empty() && src.chance(80) {
                full
            } else {
                (0..m.segments.len()).filter(live).collect()
            }
        };
        let all = if guard {
            m.guards.len()
        } else {
            m.segments.len()
        };
        let other = if guard {
            m.segments.len()
        } else {
            m.guards.len()
        };
        let own = |i| {
            if guard {
                HeapArg::Guard(i)
            } else {
                HeapArg::Segment(i)
            }
        };
        let foreign = |i| {
            if guard {
                HeapArg::Segment(i)
            } else {
                HeapArg::Guard(i)
            }
        };
        let held: Vec<usize> = (0..m.stores.len())
            .filter(|&a| m.stores[a].refs > 0)
            .collect();
        match src.below(100) {
            0..=69 if !live.is_empty() => own(src.pick(&live)),
            0..=84 if all > 0 => own(src.below(all as u64) as usize),
            85..=89 if other > 0 && cross_type_heap_handles() => {
                foreign(src.below(other as u64) as usize)
            }
            90..=93 if !held.is_empty() => HeapArg::StorePtr(src.pick(&held)),
            94..=96 => HeapArg::Null,
            _ => HeapArg::Garbage(heap_garbage(src)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HKind {
    Install,
    Borrow,
    Pause,
}

/// Whether to pass a segment handle where a write guard is expected and
/// vice versa (the model says: names nothing). On by default: each handle
/// table tags its handles, so a segment is never taken for a write guard.
/// `STORECTX_MODEL_CROSS_TYPE=0` turns it off.
pub fn cross_type_heap_handles() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("STORECTX_MODEL_CROSS_TYPE").map_or(true, |v| v != "0"))
}

/// A garbage guard-handle value, like uninitialised memory. Random values
/// go through a hash so that a fuzzer cannot steer them onto a live handle
/// (a value the library did hand out is not garbage).
fn garbage<S: Source>(src: &mut S) -> u64 {
    let v = match src.below(5) {
        0 => u64::MAX,
        1 => 0xDEAD_BEEF_DEAD_BEEF,
        2 => 0xCCCC_CCCC_CCCC_CCCC,
        3 => 0xAAAA_AAAA_AAAA_AAAA,
        _ => mix(src.any()),
    };
    v.max(1)
}

/// A garbage write-guard / segment value (never NULL, never dereferenced by
/// the library: those handles are validated, not pointers).
fn heap_garbage<S: Source>(src: &mut S) -> u64 {
    let v = match src.below(4) {
        0 => u64::MAX,
        1 => 0x7f00_dead_b000,       // looks like a heap pointer
        2 => 1 + src.below(1 << 16), // small integers
        _ => mix(src.any()),
    };
    v.max(1)
}

/// splitmix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the model holds something a sequence end must clean up.
pub fn has_async_entries(m: &Model, t: usize) -> bool {
    m.threads[t]
        .iter()
        .any(|e| matches!(e.kind, Kind::Async(_)))
}
