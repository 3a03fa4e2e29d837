//! The reference model: what SPEC.md and API.md say every call does, written
//! as plainly as possible with `Vec`s. It knows nothing of how the library
//! encodes handles: a handle here is a symbol naming what it was issued for
//! (an entry, a pause) or `Invalid` (zeroed, garbage, forged).
//!
//! Plain lookups everywhere (linear scans): this is the obviously-correct
//! version, not the fast one.

use super::ops::{HeapArg, Op, Wait};
use std::fmt::Write as _;

/// Status codes, as numbered in API.md.
pub mod st {
    pub const OK: i32 = 0;
    pub const NULL_ARGUMENT: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 2;
    pub const NO_CONTEXT: i32 = 3;
    pub const NOT_INSTALLED: i32 = 4;
    pub const PAUSED: i32 = 5;
    pub const ADDRESS_MISMATCH: i32 = 6;
    pub const OUT_OF_ORDER: i32 = 7;
    pub const STALE_HANDLE: i32 = 8;
    pub const STILL_BORROWED: i32 = 9;
    pub const NOT_BORROWED: i32 = 10;
    pub const BORROWED: i32 = 11;
    pub const NOT_SYNC: i32 = 12;
    pub const BUSY: i32 = 13;
    pub const TIMED_OUT: i32 = 14;
    pub const WOULD_DEADLOCK: i32 = 15;
    pub const ALREADY_ON_STACK: i32 = 16;
    pub const PANIC: i32 = 17;
    pub const EXHAUSTED: i32 = 18;
    pub const COUNT: usize = 19;

    pub const NAMES: [&str; COUNT] = [
        "OK",
        "NULL_ARGUMENT",
        "INVALID_ARGUMENT",
        "NO_CONTEXT",
        "NOT_INSTALLED",
        "PAUSED",
        "ADDRESS_MISMATCH",
        "OUT_OF_ORDER",
        "STALE_HANDLE",
        "STILL_BORROWED",
        "NOT_BORROWED",
        "BORROWED",
        "NOT_SYNC",
        "BUSY",
        "TIMED_OUT",
        "WOULD_DEADLOCK",
        "ALREADY_ON_STACK",
        "PANIC",
        "EXHAUSTED",
    ];

    pub fn name(status: i32) -> String {
        usize::try_from(status)
            .ok()
            .and_then(|i| NAMES.get(i))
            .map_or_else(|| format!("status {status}"), |n| n.to_string())
    }
}

/// What a guard-handle value stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sym {
    /// The install guard of entry `uid`.
    Install(u32),
    /// The no-op install guard of an install onto async entry `uid` (the
    /// same store on top): pops nothing, valid while that entry is on top.
    Noop(u32),
    /// A borrow of entry `uid` (borrows are counted per entry).
    Borrow(u32),
    /// Pause `pid`.
    Pause(u32),
    /// Zeroed, garbage, or forged: a value the library never issued.
    Invalid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sync,
    /// Holds the lock of async store `index`.
    Async(usize),
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub uid: u32,
    pub id: u64,
    pub addr: usize,
    pub kind: Kind,
    pub borrows: u32,
    /// Outstanding pauses, oldest first: (pause id, took a borrow away).
    pub pauses: Vec<(u32, bool)>,
}

#[derive(Clone, Debug)]
pub struct AsyncStore {
    pub id: u64,
    pub addr: usize,
    /// References the caller (the driver) holds and may use.
    pub refs: usize,
}

#[derive(Clone, Debug)]
pub struct WriteGuard {
    pub store: usize,
    pub live: bool,
}

#[derive(Clone, Debug)]
pub struct Segment {
    pub entries: Vec<Entry>,
    pub live: bool,
    /// The thread that suspended it (for statistics only).
    pub from: usize,
}

/// What a call answered, besides its status: everything written to
/// out-parameters, in a form both the model and the driver can state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    /// Nothing written (any failure, or a call without out-parameters).
    Nothing,
    /// A guard handle was written (its raw value is recorded by the driver).
    Handle,
    /// A borrow: the store id and address written, plus a handle.
    Borrow { id: u64, addr: usize },
    /// `get_current_async`: address, and which async store (NULL: `None`).
    BorrowAsync { addr: usize, store: Option<usize> },
    /// `get_current_transient` / `write_guard_store`: an address (0 = NULL).
    Addr(usize),
    /// An async store pointer identified as store `index` (new or cloned).
    Store(usize),
    /// A NULL pointer returned.
    Null,
    /// A store id returned.
    Id(u64),
    /// A new write guard / segment handle was written.
    Object,
    /// `resume`: the base depth written.
    Base(usize),
    /// `suspended_len`.
    Len(usize),
    /// `install_guard_installed`.
    Bool(bool),
    /// `describe`: the length returned and the text written (None: nothing).
    Described { len: usize, text: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: i32,
    pub val: Val,
}

impl Reply {
    fn ok(val: Val) -> Self {
        Reply {
            status: st::OK,
            val,
        }
    }
    fn err(status: i32) -> Self {
        Reply {
            status,
            val: Val::Nothing,
        }
    }
}

/// What an observation covers (chosen by the driver before the call).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Per async store: probe its lock? (the driver holds a pointer to it)
    pub probe: Vec<bool>,
    /// Which guard handles to ask `install_guard_installed` about.
    pub handles: std::ops::Range<usize>,
    /// How many write guards / segments (those made before the call).
    pub guards: usize,
    pub segments: usize,
}

/// The observable state of one thread, checked after every call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Obs {
    pub describe: String,
    pub depth: usize,
    pub empty: bool,
    pub active_store: u64,
    /// `is_active` / `is_paused` of every id of the pool (index 0 is id 0).
    pub active: Vec<bool>,
    pub paused: Vec<bool>,
    /// `install_guard_installed` of every handle of the table.
    pub installed: Vec<bool>,
    /// Per async store: locked? (`None` where not probed.)
    pub locked: Vec<Option<bool>>,
    /// `write_guard_store` of every write guard ever made (0 = NULL).
    pub guard_store: Vec<usize>,
    /// `suspended_len` of every segment ever made.
    pub segment_len: Vec<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Model {
    /// The store-id pool; `ids[0]` is the reserved id 0.
    pub ids: Vec<u64>,
    pub threads: Vec<Vec<Entry>>,
    pub stores: Vec<AsyncStore>,
    pub guards: Vec<WriteGuard>,
    pub segments: Vec<Segment>,
    /// Every guard-handle value seen or fabricated, in order.
    pub handles: Vec<Sym>,
    next_uid: u32,
    next_pid: u32,
}

/// Where a handle's entry is, seen from thread `t`.
enum Found {
    Top,
    Deeper,
    Absent,
}

/// What a write-guard / segment argument names.
enum Heap {
    Null,
    Live(usize),
    /// Spent, garbage, or a handle of another type.
    Invalid,
}

impl Model {
    pub fn new(ids: Vec<u64>, threads: usize) -> Self {
        Model {
            ids,
            threads: vec![Vec::new(); threads],
            ..Model::default()
        }
    }

    // ----- queries -----------------------------------------------------

    pub fn top(&self, t: usize) -> Option<&Entry> {
        self.threads[t].last()
    }

    pub fn on_stack(&self, t: usize, id: u64) -> bool {
        self.threads[t].iter().any(|e| e.id == id)
    }

    /// Is async store `a` locked: by a live write guard, or by an async entry
    /// on any thread's stack or in any live segment?
    pub fn locked(&self, a: usize) -> bool {
        let holds = |e: &Entry| e.kind == Kind::Async(a);
        self.guards.iter().any(|g| g.live && g.store == a)
            || self.threads.iter().flatten().any(holds)
            || self
                .segments
                .iter()
                .filter(|s| s.live)
                .flat_map(|s| &s.entries)
                .any(holds)
    }

    /// Would waiting for store `a`'s lock on thread `t` never end because
    /// `t`'s own stack holds it?
    pub fn would_deadlock(&self, t: usize, a: usize) -> bool {
        self.threads[t].iter().any(|e| e.kind == Kind::Async(a))
    }

    /// The kind of entry `uid`, wherever it is (a stack or a live
    /// segment); `None` once it is gone.
    pub fn entry_kind(&self, uid: u32) -> Option<Kind> {
        self.threads
            .iter()
            .flatten()
            .chain(
                self.segments
                    .iter()
                    .filter(|s| s.live)
                    .flat_map(|s| &s.entries),
            )
            .find(|e| e.uid == uid)
            .map(|e| e.kind)
    }

    fn find_entry(&self, t: usize, uid: u32) -> Found {
        let stack = &self.threads[t];
        match stack.iter().position(|e| e.uid == uid) {
            Some(i) if i + 1 == stack.len() => Found::Top,
            Some(_) => Found::Deeper,
            None => Found::Absent,
        }
    }

    fn heap_guard(&self, arg: &HeapArg) -> Heap {
        match arg {
            HeapArg::Null => Heap::Null,
            HeapArg::Guard(g) if self.guards[*g].live => Heap::Live(*g),
            _ => Heap::Invalid,
        }
    }

    fn heap_segment(&self, arg: &HeapArg) -> Heap {
        match arg {
            HeapArg::Null => Heap::Null,
            HeapArg::Segment(s) if self.segments[*s].live => Heap::Live(*s),
            _ => Heap::Invalid,
        }
    }

    pub fn describe(&self, t: usize) -> String {
        let mut text = String::new();
        for (i, e) in self.threads[t].iter().enumerate().rev() {
            let kind = match e.kind {
                Kind::Sync => "sync",
                Kind::Async(_) => "async",
            };
            let _ = writeln!(
                text,
                "depth {}: store {} at {:#x} {} borrows {}",
                i + 1,
                e.id,
                e.addr,
                kind,
                e.borrows
            );
        }
        text
    }

    /// The observable state of thread `t`, as the contract defines it.
    pub fn observe(&self, t: usize, plan: &Plan) -> Obs {
        let stack = &self.threads[t];
        let top_id = stack.last().map_or(0, |e| e.id);
        Obs {
            describe: self.describe(t),
            depth: stack.len(),
            empty: stack.is_empty(),
            active_store: top_id,
            active: self.ids.iter().map(|&id| id != 0 && id == top_id).collect(),
            paused: self
                .ids
                .iter()
                .map(|&id| id != 0 && id != top_id && self.on_stack(t, id))
                .collect(),
            installed: self.handles[plan.handles.clone()]
                .iter()
                .map(|h| match h {
                    Sym::Install(uid) => stack.iter().any(|e| e.uid == *uid),
                    _ => false,
                })
                .collect(),
            locked: (0..plan.probe.len())
                .map(|a| plan.probe[a].then(|| self.locked(a)))
                .collect(),
            guard_store: self.guards[..plan.guards]
                .iter()
                .map(|g| if g.live { self.stores[g.store].addr } else { 0 })
                .collect(),
            segment_len: self.segments[..plan.segments]
                .iter()
                .map(|s| if s.live { s.entries.len() } else { 0 })
                .collect(),
        }
    }

    // ----- the calls ---------------------------------------------------

    fn push(&mut self, t: usize, id: u64, addr: usize, kind: Kind) -> Sym {
        self.next_uid += 1;
        let uid = self.next_uid;
        self.threads[t].push(Entry {
            uid,
            id,
            addr,
            kind,
            borrows: 0,
            pauses: Vec::new(),
        });
        Sym::Install(uid)
    }

    fn new_handle(&mut self, sym: Sym) {
        self.handles.push(sym);
    }

    /// The lookup every by-id call makes (get_current*, pause): the top
    /// entry if it is `id`, else the status API.md prescribes.
    fn top_for(&self, t: usize, id: u64) -> Result<usize, i32> {
        let stack = &self.threads[t];
        if id == 0 {
            return Err(st::INVALID_ARGUMENT);
        }
        match stack.last() {
            None => Err(st::NO_CONTEXT),
            Some(top) if top.id == id => Ok(stack.len() - 1),
            Some(_) if self.on_stack(t, id) => Err(st::PAUSED),
            Some(_) => Err(st::NOT_INSTALLED),
        }
    }

    /// Applies one call to the model and answers what the library must answer.
    pub fn apply(&mut self, op: &Op) -> Reply {
        match *op {
            Op::Install {
                t,
                id,
                addr,
                null_store,
                null_out,
            } => {
                let id = self.ids[id];
                if null_store || null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                if id == 0 {
                    return Reply::err(st::INVALID_ARGUMENT);
                }
                if let Some(top) = self.top(t) {
                    if top.id == id {
                        match top.kind {
                            Kind::Async(_) => {
                                let uid = top.uid;
                                self.new_handle(Sym::Noop(uid));
                                return Reply::ok(Val::Handle);
                            }
                            Kind::Sync if top.addr != addr => {
                                return Reply::err(st::ADDRESS_MISMATCH)
                            }
                            Kind::Sync => {}
                        }
                    } else if self.on_stack(t, id) {
                        return Reply::err(st::PAUSED);
                    }
                }
                let sym = self.push(t, id, addr, Kind::Sync);
                self.new_handle(sym);
                Reply::ok(Val::Handle)
            }

            Op::Uninstall { t, h } => match self.handles[h] {
                // API.md: pops nothing; OK while its async entry is on top.
                Sym::Noop(uid) => match self.find_entry(t, uid) {
                    Found::Top => Reply::ok(Val::Nothing),
                    Found::Deeper => Reply::err(st::OUT_OF_ORDER),
                    Found::Absent => Reply::err(st::STALE_HANDLE),
                },
                Sym::Install(uid) => match self.find_entry(t, uid) {
                    Found::Top => {
                        if self.top(t).unwrap().borrows > 0 {
                            return Reply::err(st::STILL_BORROWED);
                        }
                        // Its pauses go with it; an async entry's lock is
                        // released (`locked()` stops seeing it).
                        self.threads[t].pop();
                        Reply::ok(Val::Nothing)
                    }
                    Found::Deeper => Reply::err(st::OUT_OF_ORDER),
                    Found::Absent => Reply::err(st::STALE_HANDLE),
                },
                _ => Reply::err(st::STALE_HANDLE),
            },

            Op::GuardInstalled { t, h } => {
                let on = match self.handles[h] {
                    Sym::Install(uid) => self.threads[t].iter().any(|e| e.uid == uid),
                    _ => false,
                };
                Reply::ok(Val::Bool(on))
            }

            Op::AsyncNew {
                id,
                addr,
                null_store,
                null_out,
                ..
            } => {
                let id = self.ids[id];
                if null_store || null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                if id == 0 {
                    return Reply::err(st::INVALID_ARGUMENT);
                }
                self.stores.push(AsyncStore { id, addr, refs: 1 });
                Reply::ok(Val::Store(self.stores.len() - 1))
            }

            Op::AsyncClone { a, .. } => match a {
                None => Reply::ok(Val::Null),
                Some(a) => {
                    self.stores[a].refs += 1;
                    Reply::ok(Val::Store(a))
                }
            },

            Op::AsyncRelease { a, .. } => {
                if let Some(a) = a {
                    assert!(self.stores[a].refs > 0, "generator: over-release");
                    self.stores[a].refs -= 1;
                }
                Reply::ok(Val::Nothing)
            }

            Op::AsyncId { a, .. } => Reply::ok(Val::Id(a.map_or(0, |a| self.stores[a].id))),

            Op::TryWrite { a, null_out, .. } => {
                let Some(a) = a.filter(|_| !null_out) else {
                    return Reply::err(st::NULL_ARGUMENT);
                };
                if self.locked(a) {
                    return Reply::err(st::BUSY);
                }
                self.guards.push(WriteGuard {
                    store: a,
                    live: true,
                });
                Reply::ok(Val::Object)
            }

            Op::Write {
                t,
                a,
                wait,
                null_out,
            } => {
                let Some(a) = a.filter(|_| !null_out) else {
                    return Reply::err(st::NULL_ARGUMENT);
                };
                if self.would_deadlock(t, a) {
                    return Reply::err(st::WOULD_DEADLOCK);
                }
                if self.locked(a) {
                    assert!(
                        wait != Wait::Forever,
                        "generator: wait forever on a held lock"
                    );
                    return Reply::err(st::TIMED_OUT);
                }
                self.guards.push(WriteGuard {
                    store: a,
                    live: true,
                });
                Reply::ok(Val::Object)
            }

            Op::GuardStore { ref g, .. } => match self.heap_guard(g) {
                Heap::Live(g) => Reply::ok(Val::Addr(self.stores[self.guards[g].store].addr)),
                _ => Reply::ok(Val::Addr(0)),
            },

            Op::GuardRelease { ref g, .. } => {
                if let Heap::Live(g) = self.heap_guard(g) {
                    self.guards[g].live = false;
                }
                Reply::ok(Val::Nothing)
            }

            Op::InstallAsync { t, ref g, null_out } => {
                let g = match self.heap_guard(g) {
                    _ if null_out => return Reply::err(st::NULL_ARGUMENT),
                    Heap::Null => return Reply::err(st::NULL_ARGUMENT),
                    Heap::Invalid => return Reply::err(st::STALE_HANDLE),
                    Heap::Live(g) => g,
                };
                let a = self.guards[g].store;
                let (id, addr) = (self.stores[a].id, self.stores[a].addr);
                if self.on_stack(t, id) {
                    return Reply::err(st::ALREADY_ON_STACK); // g stays the caller's
                }
                self.guards[g].live = false; // consumed: the entry owns the lock now
                let sym = self.push(t, id, addr, Kind::Async(a));
                self.new_handle(sym);
                Reply::ok(Val::Handle)
            }

            Op::GetCurrent {
                t,
                id,
                null_store,
                null_out,
            } => {
                if null_store || null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                match self.top_for(t, self.ids[id]) {
                    Err(s) => Reply::err(s),
                    Ok(i) => {
                        let e = &mut self.threads[t][i];
                        e.borrows += 1;
                        let (id, addr, uid) = (e.id, e.addr, e.uid);
                        self.new_handle(Sym::Borrow(uid));
                        Reply::ok(Val::Borrow { id, addr })
                    }
                }
            }

            Op::GetTransient { t, id, null_store } => {
                if null_store {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                match self.top_for(t, self.ids[id]) {
                    Err(s) => Reply::err(s),
                    Ok(i) => Reply::ok(Val::Addr(self.threads[t][i].addr)),
                }
            }

            Op::GetUnborrowed {
                t,
                null_id,
                null_store,
                null_out,
            } => {
                if null_id || null_store || null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                let Some(e) = self.threads[t].last_mut() else {
                    return Reply::err(st::NO_CONTEXT);
                };
                if e.borrows > 0 {
                    return Reply::err(st::BORROWED);
                }
                e.borrows = 1;
                let (id, addr, uid) = (e.id, e.addr, e.uid);
                self.new_handle(Sym::Borrow(uid));
                Reply::ok(Val::Borrow { id, addr })
            }

            Op::GetAsync {
                t,
                id,
                null_async,
                null_store,
                null_out,
            } => {
                if null_async || null_store || null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                match self.top_for(t, self.ids[id]) {
                    Err(s) => Reply::err(s),
                    Ok(i) => {
                        let e = &mut self.threads[t][i];
                        e.borrows += 1;
                        let (addr, uid, kind) = (e.addr, e.uid, e.kind);
                        self.new_handle(Sym::Borrow(uid));
                        let store = match kind {
                            Kind::Sync => None,
                            Kind::Async(a) => {
                                self.stores[a].refs += 1; // a new reference for the caller
                                Some(a)
                            }
                        };
                        Reply::ok(Val::BorrowAsync { addr, store })
                    }
                }
            }

            Op::BorrowClone { t, h, null_out } => {
                if null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                let Sym::Borrow(uid) = self.handles[h] else {
                    return Reply::err(st::STALE_HANDLE);
                };
                match self.find_entry(t, uid) {
                    Found::Absent => Reply::err(st::STALE_HANDLE),
                    Found::Deeper => Reply::err(st::OUT_OF_ORDER),
                    Found::Top => {
                        let e = self.threads[t].last_mut().unwrap();
                        if matches!(e.kind, Kind::Async(_)) {
                            return Reply::err(st::NOT_SYNC);
                        }
                        if e.borrows == 0 {
                            return Reply::err(st::NOT_BORROWED);
                        }
                        e.borrows += 1;
                        self.new_handle(Sym::Borrow(uid));
                        Reply::ok(Val::Handle)
                    }
                }
            }

            Op::BorrowRelease { t, h } => {
                let Sym::Borrow(uid) = self.handles[h] else {
                    return Reply::err(st::STALE_HANDLE);
                };
                match self.find_entry(t, uid) {
                    Found::Absent => Reply::err(st::STALE_HANDLE),
                    Found::Deeper => Reply::err(st::OUT_OF_ORDER),
                    Found::Top => {
                        let e = self.threads[t].last_mut().unwrap();
                        if e.borrows == 0 {
                            return Reply::err(st::NOT_BORROWED);
                        }
                        e.borrows -= 1;
                        Reply::ok(Val::Nothing)
                    }
                }
            }

            Op::Pause { t, id, null_out } => {
                if null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                match self.top_for(t, self.ids[id]) {
                    Err(s) => Reply::err(s),
                    Ok(i) => {
                        self.next_pid += 1;
                        let pid = self.next_pid;
                        let e = &mut self.threads[t][i];
                        let took = e.borrows > 0;
                        if took {
                            e.borrows -= 1;
                        }
                        e.pauses.push((pid, took));
                        self.new_handle(Sym::Pause(pid));
                        Reply::ok(Val::Handle)
                    }
                }
            }

            Op::Unpause { t, h } => {
                let Sym::Pause(pid) = self.handles[h] else {
                    return Reply::err(st::STALE_HANDLE);
                };
                let stack = &mut self.threads[t];
                let Some(owner) = stack
                    .iter()
                    .position(|e| e.pauses.iter().any(|p| p.0 == pid))
                else {
                    return Reply::err(st::STALE_HANDLE); // unpaused, entry gone/suspended, other thread
                };
                let is_top = owner + 1 == stack.len();
                let e = &mut stack[owner];
                if !is_top || e.pauses.last().unwrap().0 != pid {
                    return Reply::err(st::OUT_OF_ORDER);
                }
                let (_, took) = e.pauses.pop().unwrap();
                if took {
                    e.borrows += 1;
                }
                Reply::ok(Val::Nothing)
            }

            Op::Suspend { t, base, null_out } => {
                if null_out {
                    return Reply::err(st::NULL_ARGUMENT);
                }
                let stack = &mut self.threads[t];
                if base > stack.len() {
                    return Reply::err(st::INVALID_ARGUMENT);
                }
                let entries = stack.split_off(base);
                self.segments.push(Segment {
                    entries,
                    live: true,
                    from: t,
                });
                Reply::ok(Val::Object)
            }

            Op::Resume {
                t,
                ref s,
                null_base,
            } => {
                let s = match self.heap_segment(s) {
                    _ if null_base => return Reply::err(st::NULL_ARGUMENT),
                    Heap::Null => return Reply::err(st::NULL_ARGUMENT),
                    Heap::Invalid => return Reply::err(st::STALE_HANDLE),
                    Heap::Live(s) => s,
                };
                if self.segments[s]
                    .entries
                    .iter()
                    .any(|e| self.on_stack(t, e.id))
                {
                    return Reply::err(st::ALREADY_ON_STACK); // s stays the caller's
                }
                let base = self.threads[t].len();
                let entries = std::mem::take(&mut self.segments[s].entries);
                self.segments[s].live = false;
                self.threads[t].extend(entries);
                Reply::ok(Val::Base(base))
            }

            Op::SegmentLen { ref s, .. } => match self.heap_segment(s) {
                Heap::Live(s) => Reply::ok(Val::Len(self.segments[s].entries.len())),
                _ => Reply::ok(Val::Len(0)),
            },

            Op::SegmentFree { ref s, .. } => {
                if let Heap::Live(s) = self.heap_segment(s) {
                    // A cancelled coroutine: entries dropped, locks released.
                    self.segments[s].entries.clear();
                    self.segments[s].live = false;
                }
                Reply::ok(Val::Nothing)
            }

            Op::Describe { t, len, null_buf } => {
                let full = self.describe(t);
                let text = (!null_buf && len > 0).then(|| {
                    let n = full.len().min(len - 1);
                    full[..n].to_string()
                });
                Reply::ok(Val::Described {
                    len: full.len(),
                    text,
                })
            }

            Op::Forge { .. } => {
                // A fabricated value names nothing, whatever its kind, unless
                // it equals a handle the library gives out: the runner then
                // replaces `Invalid` with that handle's symbol before every
                // call (`Driver::resolve`).
                self.new_handle(Sym::Invalid);
                Reply::ok(Val::Handle)
            }

            // Only calls the model refuses are made (the driver asks it
            // value by value): nothing changes.
            Op::ForgeSweep { .. } => Reply::ok(Val::Nothing),

            Op::ThreadExit { t } => {
                // The thread's entries are dropped: async entries release
                // their locks; every handle of them is stale from now on.
                self.threads[t].clear();
                Reply::ok(Val::Nothing)
            }

            Op::Observe { .. } => Reply::ok(Val::Nothing),
        }
    }
}
