//! The one owner of a thread's entries: only [`Entries`] pushes, pops,
//! truncates, drains and reserves them, together with the two things that
//! must agree with them (the older pause records, chained per entry behind
//! the innermost pause each entry keeps, and the set of their store ids),
//! and it alone keeps the top the hot paths read.
//!
//! The top is cached as the top entry's id and address, for one load each on
//! the hot paths, and set only here, after every change of the vector, from
//! the vector's own buffer pointer (`Vec::as_mut_ptr` makes no reference, so
//! no later borrow of an entry invalidates it: the provenance Miri checks
//! under Stacked and Tree Borrows).

use super::handle::{self, Tag};
use super::store_set::{StoreSet, NO_SLOT};
use super::EMPTY_TOP;
use crate::async_store::{StoreRef, WriteGuard};

/// One installed store on a thread's stack. Only `borrows` can be changed
/// from outside this file; the rest is fixed when the entry is made (or
/// kept by [`Entries`]). 48 bytes, no padding.
///
/// `repr(C)`: `slot` and `borrows` are one aligned 8-byte word, which is
/// the entry's slot alone (no [`ASYNC`] bit, no borrow) exactly when, with
/// no pause in `inner`, uninstall's fast path may pop the entry.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Entry {
    /// The install guard's raw handle, `encode(Tag::Install, number)`:
    /// the entry's process-unique number (which its borrows name too), kept
    /// encoded so that uninstall compares its guard with one load.
    install: u64,
    id: u64,
    address: usize,
    /// The slot of `id` in the store set if this entry put it there
    /// ([`NO_SLOT`] otherwise), and [`ASYNC`].
    slot: u32,
    /// Borrows of this entry (the rules live in borrow.rs and pause.rs).
    pub(super) borrows: u32,
    /// The entry's innermost pause ([`PauseRecord`]'s word), 0 for none:
    /// kept here, so that a pause and its unpause touch the entry only.
    /// Without [`LAST`], the entry's older pauses follow in
    /// [`Entries::pauses`].
    inner: u64,
    /// `Some` for an async entry: the entry holds the store's lock.
    guard: Option<WriteGuard>,
}

/// [`Entry::slot`]'s bit of an async entry (slots are below 2^31: the
/// store set never has 2^31 slots).
const ASYNC: u32 = 1 << 31;
/// The bits of the `slot`/`borrows` word that a clear entry has 0: the
/// borrows and [`ASYNC`].
const NOT_CLEAR: u64 = !((ASYNC as u64) - 1);
/// The most older pause records a stack holds.
const MAX_PAUSES: usize = (1 << 31) - 1;
/// The entry vector's first capacity.
const MIN_ENTRIES: usize = 16;

// `slot` and `borrows` share one 8-byte-aligned word (`Entry::is_clear`),
// borrows in its high half (little-endian), and the entry has no padding.
const _: () = assert!(std::mem::offset_of!(Entry, slot) % 8 == 0);
const _: () =
    assert!(std::mem::offset_of!(Entry, borrows) == std::mem::offset_of!(Entry, slot) + 4);
const _: () = assert!(std::mem::size_of::<Entry>() == 48);
#[cfg(target_endian = "big")]
compile_error!("Entry::slot_word assumes a little-endian target");

/// An entry's own fields, for a segment that keeps them flattened.
pub(super) struct EntryParts {
    pub(super) number: u64,
    pub(super) id: u64,
    pub(super) address: usize,
    pub(super) borrows: u32,
    pub(super) guard: Option<WriteGuard>,
}

impl Entry {
    /// The `slot`/`borrows` word: the slot (with [`ASYNC`]) in its low
    /// half, the borrows in its high half.
    #[inline(always)]
    fn slot_word(&self) -> u64 {
        // SAFETY: `slot` and `borrows` are adjacent `u32`s starting at an
        // 8-aligned offset of this `repr(C)` struct (asserted above), so the
        // 8 bytes there are initialised and aligned; the pointer is derived
        // from `self`, whose provenance covers them.
        unsafe {
            std::ptr::from_ref(self)
                .cast::<u8>()
                .add(std::mem::offset_of!(Entry, slot))
                .cast::<u64>()
                .read()
        }
    }

    /// No borrow, no pause, sync: what uninstall's fast path needs.
    #[inline(always)]
    pub(super) fn is_clear(&self) -> bool {
        self.is_clear_and(0)
    }

    /// [`Entry::is_clear`] and `mismatch` is 0 (uninstall's fast path
    /// passes its guard XOR the entry's: one test for both).
    #[inline(always)]
    pub(super) fn is_clear_and(&self, mismatch: u64) -> bool {
        (mismatch | self.inner) == 0 && self.slot_word() & NOT_CLEAR == 0
    }

    /// The slot of `id` in the store set, or [`NO_SLOT`].
    #[inline(always)]
    fn slot(&self) -> u32 {
        self.slot & !ASYNC
    }

    /// How many pauses are this entry's (error paths and checks: O(its
    /// pauses)); `vec_pauses` is the record vector up to this entry's
    /// older records included.
    #[cfg(test)]
    fn pause_count(&self, vec_pauses: &[PauseRecord]) -> usize {
        match self.inner {
            0 => 0,
            inner => 1 + older_records(inner, vec_pauses),
        }
    }

    /// The fields of a detached entry (see [`Entries::split_off`]).
    pub(super) fn into_parts(self) -> EntryParts {
        EntryParts {
            number: self.number(),
            id: self.id,
            address: self.address,
            borrows: self.borrows,
            guard: self.guard,
        }
    }

    /// The entry's number (the install handle without its tag).
    #[inline(always)]
    pub(super) fn number(&self) -> u64 {
        self.install >> handle::TAG_BITS
    }

    /// The entry's no-op install handle, from the install handle read
    /// again (a volatile read: the compiler does not keep the first read in
    /// a register for it, so uninstall's fast path folds its guard test into
    /// its clear test in place: one instruction fewer).
    #[inline(always)]
    pub(super) fn noop_handle_reloaded(&self) -> u64 {
        // SAFETY: a reference to a field of `self`: valid, aligned.
        handle::rebase(
            unsafe { std::ptr::read_volatile(&self.install) },
            Tag::NoopInstall,
        )
    }

    /// The entry's handle of kind `tag` (one add to the install handle).
    #[inline(always)]
    pub(super) fn handle(&self, tag: Tag) -> u64 {
        handle::rebase(self.install, tag)
    }

    #[inline(always)]
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    #[inline(always)]
    pub(super) fn address(&self) -> usize {
        self.address
    }

    /// Whether the entry holds its store's lock.
    #[inline(always)]
    pub(super) fn is_async(&self) -> bool {
        self.guard.is_some()
    }

    /// Whether the entry has a pause.
    #[inline(always)]
    pub(super) fn is_paused(&self) -> bool {
        self.inner != 0
    }

    /// The entry's innermost pause, if it has one.
    #[inline(always)]
    pub(super) fn innermost_pause(&self) -> Option<PauseRecord> {
        (self.inner != 0).then_some(PauseRecord(self.inner))
    }

    /// The async store of an async entry.
    pub(crate) fn async_store(&self) -> Option<&StoreRef> {
        self.guard.as_ref().map(WriteGuard::store)
    }

    pub(super) fn kind(&self) -> &'static str {
        if self.is_async() {
            "async"
        } else {
            "sync"
        }
    }
}

/// How many of the last records of `vec_pauses` belong to an entry whose
/// innermost pause is `inner` (nonzero): the older ones, down to the first
/// with [`LAST`] (error paths and checks).
fn older_records(inner: u64, vec_pauses: &[PauseRecord]) -> usize {
    if inner & LAST != 0 {
        return 0;
    }
    vec_pauses
        .iter()
        .rev()
        .position(|r| r.0 & LAST != 0)
        .map_or(vec_pauses.len(), |k| k + 1)
}

/// An outstanding pause on some entry, in one word: its pause guard's raw
/// handle, whose lowest bit (always 0 in a pause handle: its tag is 4) says
/// whether the pause took one borrow away (and unpause gives it back), and
/// whose bit 1 (also 0 in a pause handle) is [`LAST`]. One load and one
/// compare check a guard against it and find the borrow.
#[derive(Debug, Clone, Copy)]
pub(super) struct PauseRecord(u64);

/// [`PauseRecord`]'s bit of an entry's oldest pause: no older record of
/// the same entry follows it (in [`Entries::pauses`]). An entry's only
/// pause has it, so the fast unpause, which takes that pause only, tests
/// one bit (an entry without a pause, `inner` 0, fails the same test).
const LAST: u64 = 2;

const _: () = assert!(super::handle::Tag::Pause as u64 & 3 == 0);

impl PauseRecord {
    /// The record of the pause whose guard is `raw` (a pause handle).
    #[inline(always)]
    pub(super) fn new(raw: u64, decremented: bool) -> Self {
        debug_assert!(raw & 3 == 0);
        PauseRecord(raw | u64::from(decremented))
    }

    /// The borrow `raw` gives back if it is this pause's guard (0 or 1),
    /// `None` if it is not: exactly one value of `raw` is accepted (`raw +
    /// (bits 0 and 1)` equals the word only for the guard's own handle,
    /// whose bits 0 and 1 are clear: a forged `raw` with either set never
    /// is, the addition carrying out of them).
    #[inline(always)]
    pub(super) fn restores(self, raw: u64) -> Option<u32> {
        (raw.wrapping_add(self.0 & 3) == self.0).then_some((self.0 & 1) as u32)
    }

    /// The pause guard's raw handle.
    #[inline(always)]
    pub(super) fn raw(self) -> u64 {
        self.0 & !3
    }
}

/// Entries and their older pause records detached from a stack, bottom
/// first (each entry keeps its innermost pause; the records chain behind
/// it). Kept, with its capacity, by a segment that is reused.
#[derive(Debug, Default)]
pub(super) struct Detached {
    entries: Vec<Entry>,
    pauses: Vec<PauseRecord>,
    /// The bottom entry's innermost pause (`Entry::inner`; its older
    /// records are the first of `pauses`).
    bottom_inner: u64,
}

impl Detached {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub(super) fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(Entry::id)
    }

    /// Drops the entries (releasing their locks), keeps the capacity.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.pauses.clear();
        self.bottom_inner = 0;
    }
}

/// Why the entries refused to grow (nothing changed either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoRoom {
    /// At the most a stack holds (pause records: [`MAX_PAUSES`]).
    Full,
    /// The allocator had no memory for the larger vector (or box).
    NoMemory,
}

/// A thread's entries, bottom first, with their pause records and store set.
#[derive(Debug)]
pub(super) struct Entries {
    vec: Vec<Entry>,
    /// Older pause records of all entries (each entry keeps its innermost
    /// one), in stack order: each entry's older records follow those of the
    /// entries below it, newest last, the oldest marked [`LAST`].
    pauses: Vec<PauseRecord>,
    /// Every store id with an entry here.
    present: StoreSet,
    /// The top entry's id, [`EMPTY_TOP`] when there is none.
    top_id: u64,
    /// The top entry, null when there is none: `vec.as_mut_ptr() + len - 1`,
    /// set by `sync_top` or `push`/`pop` after every change of `vec`.
    top: *mut Entry,
}

impl Default for Entries {
    fn default() -> Self {
        Self::new()
    }
}

impl Entries {
    /// No entries; allocates on first push.
    pub(super) const fn new() -> Self {
        Entries {
            vec: Vec::new(),
            pauses: Vec::new(),
            present: StoreSet::new(),
            top_id: EMPTY_TOP,
            top: std::ptr::null_mut(),
        }
    }

    /// Sets the cached top from the vector, after any change but a push or
    /// a sync pop (which set it themselves).
    #[inline(always)]
    fn sync_top(&mut self) {
        match self.vec.len().checked_sub(1) {
            Some(last) => {
                // SAFETY: `last` is below the length: a live entry inside
                // the buffer; `as_mut_ptr` keeps the buffer's provenance.
                unsafe {
                    self.top = self.vec.as_mut_ptr().add(last);
                    self.top_id = (*self.top).id;
                }
            }
            None => {
                self.top = std::ptr::null_mut();
                self.top_id = EMPTY_TOP;
            }
        }
    }

    /// Moves the cached top one entry down after a pop left `len` entries
    /// (the top was entry `len`).
    #[inline(always)]
    fn lower_top(&mut self, len: usize) {
        if len == 0 {
            self.top = std::ptr::null_mut();
            self.top_id = EMPTY_TOP;
        } else {
            // SAFETY: `top` pointed to entry `len`; one below is entry
            // `len - 1`, live, in the same buffer (same provenance).
            unsafe {
                self.top = self.top.sub(1);
                self.top_id = (*self.top).id;
            }
        }
    }

    /// Number of entries.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.vec.len()
    }

    /// The top entry's store id, [`EMPTY_TOP`] when there is none.
    #[inline(always)]
    pub(super) fn top_id(&self) -> u64 {
        self.top_id
    }

    /// The top entry.
    #[inline(always)]
    pub(super) fn top(&self) -> Option<&Entry> {
        // SAFETY: `top` is null or points to the last live entry, with the
        // buffer's provenance (the field's invariant, kept by every function
        // of this type that changes `vec`); `&self` excludes a `&mut`.
        unsafe { self.top.as_ref() }
    }

    /// The top entry, to change its borrows.
    #[inline(always)]
    pub(super) fn top_mut(&mut self) -> Option<&mut Entry> {
        // SAFETY: as in `top`; `&mut self` makes this the only reference.
        unsafe { self.top.as_mut() }
    }

    /// The top entry and the pause records, together.
    #[inline(always)]
    fn top_and_pauses(&mut self) -> (Option<&mut Entry>, &mut Vec<PauseRecord>) {
        // SAFETY: as in `top_mut`; the records are another allocation.
        (unsafe { self.top.as_mut() }, &mut self.pauses)
    }

    /// All entries, bottom first.
    #[inline]
    pub(super) fn as_slice(&self) -> &[Entry] {
        &self.vec
    }

    /// All older pause records, in stack order (each entry's innermost
    /// pause is in the entry).
    #[inline]
    pub(super) fn pauses(&self) -> &[PauseRecord] {
        &self.pauses
    }

    /// Whether an entry here is for store `id`.
    #[inline(always)]
    pub(super) fn contains_store(&self, id: u64) -> bool {
        self.present.contains(id)
    }

    /// The index of the topmost entry of store `id`, without scanning the
    /// stack below it: the set keeps its lowest entry, and a store's
    /// entries are consecutive (only the store on top may be pushed again),
    /// so its nested entries follow that one.
    #[inline]
    pub(super) fn topmost_of_store(&self, id: u64) -> Option<usize> {
        let mut index = self.lowest_of_store(id)?;
        while self.vec.get(index + 1).is_some_and(|e| e.id == id) {
            index += 1;
        }
        Some(index)
    }

    /// The index of the lowest entry of store `id`, from the store set.
    #[inline(always)]
    pub(super) fn lowest_of_store(&self, id: u64) -> Option<usize> {
        if self.vec.is_empty() {
            return None;
        }
        // SAFETY: an entry, so the set has a table (`reserve` sizes it
        // before the first push, and nothing shrinks it).
        unsafe { self.present.entry_of_in_table(id) }
    }

    /// Room for one more entry without allocating. (The store set is sized
    /// from the vector's capacity, so it has room whenever the vector has.)
    #[inline(always)]
    pub(super) fn has_room(&self) -> bool {
        self.vec.len() < self.vec.capacity()
    }

    /// Makes [`Entries::has_room`] true; `false`, nothing changed but
    /// capacity, when memory is short.
    #[cold]
    #[inline(never)]
    pub(super) fn make_room(&mut self) -> bool {
        self.try_reserve(1)
    }

    /// Room for `more` entries past the length: the store set is sized for
    /// the new capacity, then the vector grows by steps of a quarter of the
    /// power of two below its capacity (x1.14 to x1.25: geometric, so
    /// pushes stay O(1) amortised, and at most a fifth of it is spare just
    /// after a growth). Heap bytes per entry stay below 96 at every depth
    /// (BENCHMARKS.md, "Memory"; test `heap_bytes_per_entry_...`).
    ///
    /// `false` when the memory cannot be had: the entries are unchanged
    /// then (the store set may have grown, its ids re-inserted: a larger
    /// set is always valid). An embedder's runaway recursion under a memory
    /// limit is refused, not aborted
    /// (c-tests/adversary_stack_growth_out_of_memory.c).
    #[cold]
    #[inline(never)]
    pub(super) fn try_reserve(&mut self, more: usize) -> bool {
        let need = self.vec.len() + more;
        if need <= self.vec.capacity() {
            return true;
        }
        let mut cap = self.vec.capacity().max(MIN_ENTRIES);
        while cap < need {
            let step = (1usize << (usize::BITS - 1 - cap.leading_zeros())) / 4;
            cap = (cap / step + 1) * step;
        }
        // The set first, so that the vector never outgrows it.
        if self.present.capacity() < cap {
            if !self.present.try_reserve_for(cap) {
                return false;
            }
            self.reinsert_present();
        }
        if self.vec.try_reserve_exact(cap - self.vec.len()).is_err() {
            self.sync_top(); // unmoved; re-derived after the set's pass over them
            return false;
        }
        self.sync_top(); // the entries may have moved
        if self.present.capacity() < self.vec.capacity() {
            self.regrow_present(); // (only if the allocator gave more than asked)
        }
        true
    }

    /// Room for one more pause record; refused, nothing changed, when the
    /// stack holds [`MAX_PAUSES`] already or the records cannot grow for
    /// lack of memory.
    pub(super) fn reserve_pause(&mut self) -> Result<(), NoRoom> {
        let len = self.pauses.len();
        if len == self.pauses.capacity() {
            if len >= MAX_PAUSES {
                return Err(NoRoom::Full);
            }
            if self
                .pauses
                .try_reserve_exact(len.clamp(4, MAX_PAUSES - len))
                .is_err()
            {
                return Err(NoRoom::NoMemory);
            }
        }
        Ok(())
    }

    /// Pushes an entry for store `id` whose install handle `install`
    /// answers (called once the push is certain: it takes the entry's
    /// number), and answers that handle. Refused, nothing
    /// changed and the guard handed back, without room (see `has_room`) or
    /// when `id` is deeper in the stack: only an entry of the store on top
    /// (a nested call) may repeat an id. `on_top` is `top_id() == id`, as
    /// the caller found it (callers branch on it already: passed, it is not
    /// tested twice). Calls nothing else, so the exports that run it need
    /// no saved registers.
    #[inline(always)]
    pub(super) fn push(
        &mut self,
        id: u64,
        on_top: bool,
        address: usize,
        guard: Option<WriteGuard>,
        install: impl FnOnce() -> u64,
    ) -> Result<u64, Option<WriteGuard>> {
        debug_assert_eq!(on_top, self.top_id == id);
        if !self.has_room() {
            return Err(guard);
        }
        let len = self.vec.len();
        let slot = if on_top {
            NO_SLOT // the store on top is present already
        } else {
            // Below 2^31 entries (the set's size bounds the capacity).
            // (A far probe also refuses: see `settle_probe`.)
            match self.present.insert_slot_near(id, len as u32) {
                Some(slot) => slot,
                None => return Err(guard), // deeper: nothing inserted
            }
        };
        let install = install();
        // Written straight into the spare capacity: `Vec::push` builds the
        // Entry on the stack and copies it, a store-forwarding stall on this,
        // the hottest path.
        // Field by field, the slot and the borrows (0) as their one word:
        // four stores (and a zeroed register) for a sync entry.
        // SAFETY: `has_room` checked len < capacity and nothing since
        // touched `vec`, so the slot at `len` is allocated and unused; every
        // field (the `slot`/`borrows` word as one `u64`, see `slot_word`) is
        // written before `set_len` counts it.
        unsafe {
            let e = self.vec.as_mut_ptr().add(len);
            (&raw mut (*e).install).write(install);
            (&raw mut (*e).id).write(id);
            (&raw mut (*e).address).write(address);
            let word = u64::from(slot | if guard.is_some() { ASYNC } else { 0 });
            (&raw mut (*e).slot).cast::<u64>().write(word);
            (&raw mut (*e).inner).write(0);
            (&raw mut (*e).guard).write(guard);
            self.vec.set_len(len + 1);
            self.top = self.vec.as_mut_ptr().add(len);
        }
        self.top_id = id;
        Ok(install)
    }

    /// Pops the top entry, which must be clear ([`Entry::is_clear`]: sync,
    /// no borrow, no pause record): popping it is forgetting it. Calls
    /// nothing, so uninstall's fast path keeps no frame.
    #[inline(always)]
    pub(super) fn pop_clear(&mut self) {
        let Some(top) = self.top() else {
            return;
        };
        debug_assert!(top.is_clear());
        let slot = top.slot; // a clear entry's has no ASYNC bit
                             // SAFETY: the slot of an entry of this stack (or NO_SLOT).
        unsafe { self.present.clear_slot(slot) };
        let len = self.vec.len() - 1;
        // SAFETY: the vector is not empty (its top was read above) and the
        // entry's only field with a destructor, `guard`, is `None` (clear).
        unsafe { self.vec.set_len(len) };
        self.lower_top(len);
    }

    /// Pops the top entry with its pause records (none if empty). Dropping
    /// an async entry releases its lock, last, once all is consistent. Out
    /// of line: the fast path pops clear entries only ([`Entries::pop_clear`]).
    /// An entry without pause records (an async entry's common uninstall)
    /// is popped as `pop_clear` pops, its guard moved out and dropped last;
    /// one with records goes on to [`Entries::pop_paused`].
    #[cold]
    #[inline(never)]
    pub(super) fn pop(&mut self) {
        let Some(top) = self.top() else {
            return;
        };
        if top.inner != 0 {
            return self.pop_paused();
        }
        let slot = top.slot();
        // SAFETY: the slot of an entry of this stack (or NO_SLOT).
        unsafe { self.present.clear_slot(slot) };
        let len = self.vec.len() - 1;
        // SAFETY: `top` points to the live entry `len`, whose guard is moved
        // out here and never read again: `set_len` below forgets the entry
        // without dropping it (its other fields have no destructor).
        let guard = unsafe { (&raw const (*self.top).guard).read() };
        // SAFETY: the vector is not empty (its top was read above); the
        // entry's one field with a destructor was moved out just above.
        unsafe { self.vec.set_len(len) };
        self.lower_top(len);
        drop(guard); // the lock goes last, once the stack is consistent
    }

    /// [`Entries::pop`] of a top entry with pause records.
    #[cold]
    #[inline(never)]
    fn pop_paused(&mut self) {
        let Some(top) = self.top() else {
            return;
        };
        let older = match top.inner {
            0 => 0,
            inner => older_records(inner, &self.pauses),
        };
        let slot = top.slot();
        self.pauses.truncate(self.pauses.len() - older);
        // SAFETY: the slot of an entry of this stack (or NO_SLOT).
        unsafe { self.present.clear_slot(slot) };
        let entry = self.vec.pop();
        self.sync_top();
        drop(entry); // the lock goes last, once the stack is consistent
    }

    /// Pops every entry, top first (async entries release their locks), and
    /// every pause record.
    pub(super) fn clear(&mut self) {
        while let Some(entry) = self.vec.pop() {
            // SAFETY: the slot of an entry of this stack (or NO_SLOT).
            unsafe { self.present.clear_slot(entry.slot()) };
        }
        self.pauses.clear();
        self.sync_top();
    }

    /// Pauses the top entry, which must be store `id` and have no pause,
    /// without allocating: `make` sees the top entry and answers the
    /// record (`None`: nothing added), kept in the entry. `false`, nothing
    /// changed, when it cannot (a nested pause is [`Entries::push_nested_pause`]'s).
    #[inline(always)]
    pub(super) fn push_pause(
        &mut self,
        id: u64,
        make: impl FnOnce(&mut Entry) -> Option<PauseRecord>,
    ) -> bool {
        if self.top_id != id {
            return false;
        }
        let Some(top) = self.top_mut() else {
            return false;
        };
        if top.inner != 0 {
            return false;
        }
        let Some(record) = make(top) else {
            return false;
        };
        top.inner = record.0 | LAST;
        true
    }

    /// [`Entries::push_pause`] of a pause nested in another of the top
    /// entry (or not): the entry's innermost record moves to the vector,
    /// which must have room for it (`reserve_pause`); `false`, nothing
    /// changed, when it cannot.
    #[cold]
    #[inline(never)]
    pub(super) fn push_nested_pause(
        &mut self,
        id: u64,
        make: impl FnOnce(&mut Entry) -> Option<PauseRecord>,
    ) -> bool {
        if self.top_id != id || self.pauses.len() == self.pauses.capacity() {
            return false;
        }
        let (Some(top), pauses) = self.top_and_pauses() else {
            return false;
        };
        let Some(record) = make(top) else {
            return false;
        };
        match top.inner {
            0 => top.inner = record.0 | LAST,
            older => {
                pauses.push(PauseRecord(older)); // room: checked above
                top.inner = record.0;
            }
        }
        true
    }

    /// Removes the top entry's innermost pause if `accept` (shown the top
    /// entry and that record) agrees; `false`, nothing removed, otherwise or
    /// when the top entry has none. `only`: the fast path, which takes an
    /// entry's only pause (one bit tested), and leaves nested ones to the
    /// full path.
    #[inline(always)]
    pub(super) fn pop_pause(
        &mut self,
        only: bool,
        accept: impl FnOnce(&mut Entry, PauseRecord) -> bool,
    ) -> bool {
        let (Some(top), pauses) = self.top_and_pauses() else {
            return false;
        };
        let inner = top.inner;
        if (only && inner & LAST == 0) || inner == 0 {
            return false;
        }
        if !accept(top, PauseRecord(inner)) {
            return false;
        }
        top.inner = if inner & LAST != 0 {
            0
        } else {
            // Without LAST, the entry's next older record is the vector's
            // last; it becomes the innermost.
            pauses.pop().map_or(0, |r| r.0)
        };
        true
    }

    /// Where among the top entry's pauses the one whose guard is `raw` is:
    /// how many later pauses the top has (0: it is the innermost); `None`
    /// if it is none of the top's. O(the top's pauses): its older records
    /// are the record vector's last ones.
    #[inline]
    pub(super) fn top_pause(&self, raw: u64) -> Option<usize> {
        let inner = self.top()?.inner;
        if inner == 0 {
            return None;
        }
        if PauseRecord(inner).raw() == raw {
            return Some(0);
        }
        let older = older_records(inner, &self.pauses);
        let mine = &self.pauses[self.pauses.len() - older..];
        mine.iter()
            .rev()
            .position(|r| r.raw() == raw)
            .map(|k| k + 1)
    }

    /// Whether an older pause record (of any entry) has the guard `raw`.
    /// O(older records): usually none (an entry keeps its innermost pause).
    #[inline]
    pub(super) fn has_older_pause(&self, raw: u64) -> bool {
        self.pauses.iter().any(|r| r.raw() == raw)
    }

    /// Where the pause whose guard is `raw` is: the index of its entry and
    /// how many later pauses that entry has (error paths: O(depth +
    /// pauses)).
    pub(super) fn find_pause(&self, raw: u64) -> Option<(usize, usize)> {
        let mut end = self.pauses.len();
        for (index, e) in self.vec.iter().enumerate().rev() {
            if e.inner == 0 {
                continue;
            }
            if PauseRecord(e.inner).raw() == raw {
                return Some((index, 0));
            }
            let older = older_records(e.inner, &self.pauses[..end]);
            let mine = &self.pauses[end - older..end];
            if let Some(k) = mine.iter().rev().position(|r| r.raw() == raw) {
                return Some((index, k + 1));
            }
            end -= older;
        }
        None
    }

    /// Moves the entries above the first `base` out: the bottom one's
    /// fields are answered and, unless it is the only one and has no pause
    /// records, the others and all the records go to `rest()` (then
    /// `true`), detached. `None`, nothing changed, when there is no entry
    /// above `base`, or when `rest()` answers `None` or its vectors cannot
    /// grow for lack of memory (the caller tells these apart by the depth:
    /// the fast path tests nothing more).
    #[inline(always)]
    pub(super) fn split_off<'r>(
        &mut self,
        base: usize,
        rest: impl FnOnce() -> Option<&'r mut Detached>,
    ) -> Option<(EntryParts, bool)> {
        let bottom = self.vec.get(base)?;
        if self.vec.len() == base + 1 && !bottom.is_paused() {
            // The common case: one entry without pauses.
            let bottom = self.vec.pop()?;
            // SAFETY: the slot of an entry of this stack (or NO_SLOT).
            unsafe { self.present.clear_slot(bottom.slot()) };
            self.sync_top();
            return Some((bottom.into_parts(), false));
        }
        let bottom = self.split_off_spilled(base, rest()?)?;
        Some((bottom.into_parts(), true))
    }

    /// [`Entries::split_off`] of several entries or of pause records;
    /// `None`, nothing changed, when `rest` cannot grow for them.
    #[inline]
    fn split_off_spilled(&mut self, base: usize, rest: &mut Detached) -> Option<Entry> {
        // Entries that put their store in the set clear their slot, and
        // their records are counted.
        let records = self.detach_slots(base);
        let pause_start = self.pauses.len() - records;
        // Moved as they are, in bulk: one copy of their bytes (their slots
        // are set again on resume).
        let moved = self.vec.len() - (base + 1);
        // The room tests inline: the (out-of-line) reservations only to grow.
        if (rest.entries.capacity() - rest.entries.len() < moved
            && rest.entries.try_reserve(moved).is_err())
            || (rest.pauses.capacity() - rest.pauses.len() < records
                && rest.pauses.try_reserve(records).is_err())
        {
            self.restore_slots(base);
            return None;
        }
        let at = rest.entries.len();
        // SAFETY: `base + 1 + moved` is the length, so the source range is
        // `moved` live entries; the destination has room for them (reserved
        // just above) past its length; the two vectors are distinct
        // allocations. Ownership moves with the bytes: the source's length
        // drops to `base + 1` before anything can drop them there, and the
        // destination counts them only once they are written.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.vec.as_ptr().add(base + 1),
                rest.entries.as_mut_ptr().add(at),
                moved,
            );
            self.vec.set_len(base + 1);
            rest.entries.set_len(at + moved);
        }
        rest.pauses.extend_from_slice(&self.pauses[pause_start..]); // room: reserved above
        self.pauses.truncate(pause_start);
        let bottom = self.vec.pop();
        rest.bottom_inner = bottom.as_ref().map_or(0, |b| b.inner);
        self.sync_top();
        bottom
    }

    /// Takes the stores of the entries from `base` up out of the set,
    /// newest first (a nested entry of the store below clears the scratch
    /// slot), keeping only their ASYNC bit in `slot` (`insert_stores` ORs
    /// the new slot in), and answers how many older pause records they have.
    #[inline(always)]
    fn detach_slots(&mut self, base: usize) -> usize {
        let mut records = 0;
        for entry in self.vec[base..].iter_mut().rev() {
            if entry.inner != 0 {
                records += older_records(entry.inner, &self.pauses[..self.pauses.len() - records]);
            }
            // SAFETY: the slot of an entry of this stack (or NO_SLOT).
            unsafe { self.present.clear_slot(entry.slot()) };
            entry.slot &= ASYNC;
        }
        records
    }

    /// Undoes [`Entries::detach_slots`] for the entries from `base` up
    /// (a suspend refused for lack of memory): their stores go back into the set in stack
    /// order (as `reinsert_present` does: removal by slot stays valid) and
    /// each entry records its slot again.
    #[cold]
    #[inline(never)]
    fn restore_slots(&mut self, base: usize) {
        let mut below = base.checked_sub(1).map_or(EMPTY_TOP, |k| self.vec[k].id);
        for (k, entry) in self.vec.iter_mut().enumerate().skip(base) {
            if entry.id != below {
                let slot = self.present.insert_slot(entry.id, k as u32);
                debug_assert!(slot.is_some(), "just removed");
                entry.slot |= slot.unwrap_or(NO_SLOT);
            }
            below = entry.id;
        }
    }

    /// Pushes detached entries back on top: `bottom` (store `bottom_id`),
    /// then those of `rest` (which is left empty, its capacity kept), with
    /// their pause records. Each store goes into the set with one probe
    /// that also finds one the stack has already: then the stores put in
    /// come out again, newest first, and `Err` answers that store, nothing
    /// changed; `Err(0)` (no store's id), nothing changed, when there is no
    /// memory to make room. A nested entry (the store of the entry below it) puts none.
    #[inline(always)]
    pub(super) fn append(
        &mut self,
        bottom_id: u64,
        bottom: impl FnOnce() -> EntryParts,
        mut rest: Option<&mut Detached>,
    ) -> Result<(), u64> {
        let more = 1 + rest.as_deref().map_or(0, Detached::len);
        // The room test inline: the cold call only when the vector grows.
        if self.vec.capacity() - self.vec.len() < more && !self.try_reserve(more) {
            return Err(0); // no memory to grow: nothing changed
        }
        let at = self.vec.len();
        let Some(slot) = self.present.insert_slot(bottom_id, at as u32) else {
            return Err(bottom_id);
        };
        if let Some(rest) = rest.as_deref_mut() {
            if let Err(id) = self.attach_rest(bottom_id, at + 1, rest) {
                // SAFETY: answered by the set just above.
                unsafe { self.present.clear_slot(slot) };
                return Err(id);
            }
        }
        let bottom = bottom();
        let inner = rest.as_deref().map_or(0, |r| r.bottom_inner);
        // Written straight into the spare capacity, as `push` does: built on
        // the stack, the entry was copied with 16-byte loads over its two
        // 4-byte fields, a store-forwarding stall (11% of a cross-thread
        // resume's cycles under perf).
        // SAFETY: the room test above left `more` >= 1 free slots past
        // `at` (the length), and nothing since touched `vec`, so the slot
        // at `at` is allocated and unused; every field (the `slot`/`borrows`
        // word as one `u64`, see `slot_word`) is written before `set_len`
        // counts it.
        unsafe {
            let e = self.vec.as_mut_ptr().add(at);
            (&raw mut (*e).install).write(handle::encode(Tag::Install, bottom.number));
            (&raw mut (*e).id).write(bottom.id);
            (&raw mut (*e).address).write(bottom.address);
            let low = slot | if bottom.guard.is_some() { ASYNC } else { 0 };
            let word = u64::from(low) | (u64::from(bottom.borrows) << 32);
            (&raw mut (*e).slot).cast::<u64>().write(word);
            (&raw mut (*e).inner).write(inner);
            (&raw mut (*e).guard).write(bottom.guard);
            self.vec.set_len(at + 1);
        }
        if let Some(rest) = rest {
            // Moved in bulk, their counts as they are.
            self.vec.append(&mut rest.entries);
            self.pauses.append(&mut rest.pauses); // room: reserved above
            rest.bottom_inner = 0;
        }
        self.sync_top();
        Ok(())
    }

    /// Readies `rest` (a spilled segment's part) to be appended above an
    /// entry of store `below` that will be entry `first - 1`: room for its
    /// pause records, then its stores in the set (`insert_stores`). `Err(0)`,
    /// nothing changed, when the records cannot grow for lack of memory
    /// (their `append` would grow the vector infallibly: an abort, c-tests/
    /// adversary_segment_resume_out_of_memory.c); else as
    /// `insert_stores`. Out of line: a one-entry segment has no `rest`.
    #[inline(never)]
    fn attach_rest(&mut self, below: u64, first: usize, rest: &mut Detached) -> Result<(), u64> {
        let records = rest.pauses.len();
        if self.pauses.capacity() - self.pauses.len() < records
            && self.pauses.try_reserve(records).is_err()
        {
            return Err(0);
        }
        self.insert_stores(below, first, &mut rest.entries)
    }

    /// Puts the stores of `entries` (above an entry of store `below`;
    /// detached, so their `slot` holds their ASYNC bit only) in the set and
    /// their slots in the entries (the first of them to be entry `first` of
    /// the stack); on a store the set has already, takes out again those it
    /// put in (their `slot` back to the ASYNC bit) and answers that store.
    fn insert_stores(
        &mut self,
        mut below: u64,
        first: usize,
        entries: &mut [Entry],
    ) -> Result<(), u64> {
        for (index, entry) in (first as u32..).zip(entries.iter_mut()) {
            let id = entry.id;
            if id != below {
                let Some(slot) = self.present.insert_slot(id, index) else {
                    self.remove_stores(&mut entries[..(index as usize - first)]);
                    return Err(id);
                };
                entry.slot |= slot;
            }
            below = id;
        }
        Ok(())
    }

    /// Takes the stores `insert_stores` put in for `entries` out again.
    #[cold]
    #[inline(never)]
    fn remove_stores(&mut self, entries: &mut [Entry]) {
        for entry in entries.iter_mut().rev() {
            // SAFETY: answered by the set in `insert_stores`.
            unsafe { self.present.clear_slot(entry.slot()) };
            entry.slot &= ASYNC;
        }
    }

    /// Sizes the store set for the vector's capacity and re-inserts the ids
    /// in stack order (which keeps removal by slot valid).
    #[cold]
    #[inline(never)]
    fn regrow_present(&mut self) {
        self.present.reserve_for(self.vec.capacity());
        self.reinsert_present();
    }

    /// Redraws the store set's multiplier, re-inserting the ids, while a
    /// push of `id` would be refused for a far probe (at most the set's
    /// redraws left): what a push refused without `id` on the stack needs
    /// before it is tried again, which then takes `id` (see
    /// `StoreSet::insert_slot_near`). Allocates nothing.
    #[cold]
    #[inline(never)]
    pub(super) fn settle_probe(&mut self, id: u64) {
        while self.present.would_probe_far(id) {
            self.present.redraw();
            self.reinsert_present();
        }
    }

    /// Re-inserts the ids in stack order into the (new, empty) store set
    /// and records their slots.
    #[cold]
    fn reinsert_present(&mut self) {
        for (k, e) in self.vec.iter_mut().enumerate() {
            if e.slot() != NO_SLOT {
                let slot = self.present.insert_slot(e.id, k as u32).unwrap_or(NO_SLOT);
                e.slot = slot | (e.slot & ASYNC);
            }
        }
    }

    /// The entry vector's capacity and the store set's bytes (tests).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.vec.capacity() * std::mem::size_of::<Entry>() + self.present.heap_bytes()
    }

    /// Gives the store set multiplier `m` and `redraws` redraws left and
    /// re-inserts the ids (tests: a multiplier that piles ids up).
    #[cfg(test)]
    pub(super) fn force_multiplier(&mut self, m: u64, redraws: u32) {
        self.present.force_multiplier(m, redraws);
        self.reinsert_present();
    }

    /// The store set, for tests.
    #[cfg(test)]
    pub(super) fn present(&self) -> &StoreSet {
        &self.present
    }

    /// Every entry's pauses, oldest first, as (guard's raw handle, took a
    /// borrow), decoded from the records' layout (tests): an entry's
    /// innermost pause is in the entry, its older ones follow in the vector
    /// those of the entries below, the oldest marked [`LAST`] (an only
    /// pause carries LAST in the entry). Panics unless every record belongs
    /// to exactly one entry that way.
    #[cfg(test)]
    pub(super) fn pause_lists(&self) -> Vec<Vec<(u64, bool)>> {
        let decode = |r: u64| (PauseRecord(r).raw(), r & 1 != 0);
        let mut at = 0;
        let mut lists = Vec::with_capacity(self.vec.len());
        for e in &self.vec {
            let mut list = Vec::new();
            if e.inner != 0 && e.inner & LAST == 0 {
                let first = self
                    .pauses
                    .get(at)
                    .expect("an older record per nested pause");
                assert!(
                    first.0 & LAST != 0,
                    "an entry's oldest record is marked LAST"
                );
                list.push(decode(first.0));
                at += 1;
                while let Some(r) = self.pauses.get(at).filter(|r| r.0 & LAST == 0) {
                    list.push(decode(r.0));
                    at += 1;
                }
            }
            if e.inner != 0 {
                list.push(decode(e.inner & !LAST));
            }
            lists.push(list);
        }
        assert_eq!(at, self.pauses.len(), "every record has its entry");
        lists
    }

    /// Checks every invariant this type keeps (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let last = self.vec.last();
        assert_eq!(
            self.top.cast_const(),
            last.map_or(std::ptr::null(), |e| e as *const Entry),
            "the cached top is the last entry"
        );
        assert_eq!(self.top_id, last.map_or(EMPTY_TOP, |e| e.id));
        let mut ids: Vec<u64> = self.vec.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(self.present.len(), ids.len(), "one set member per store");
        assert!(ids.iter().all(|&id| self.present.contains(id)));
        assert!(ids
            .iter()
            .all(|&id| self.topmost_of_store(id) == self.vec.iter().rposition(|e| e.id == id)));
        let mut end = self.pauses.len();
        for e in self.vec.iter().rev() {
            let n = e.pause_count(&self.pauses[..end]);
            end -= n.saturating_sub(1);
        }
        assert_eq!(end, 0, "every record has its entry");
        assert!(self
            .vec
            .iter()
            .all(|e| (e.slot & ASYNC != 0) == e.guard.is_some()));
        assert!(self.present.capacity() >= self.vec.capacity() || self.vec.capacity() == 0);
        // Each store's lowest entry records the slot its id is in (what
        // its pop clears), found from the id's home; every other entry is
        // a nested one (the store below it) and records none.
        let mut below = EMPTY_TOP;
        for (k, e) in self.vec.iter().enumerate() {
            if e.id == below {
                assert_eq!(e.slot(), NO_SLOT, "entry {k}: nested, no slot");
            } else {
                assert!(
                    self.present.holds(e.slot(), e.id, k),
                    "entry {k} (store {:#x}): slot {} is not its id's",
                    e.id,
                    e.slot()
                );
            }
            below = e.id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::store_set::MAX_REDRAWS;
    use super::super::Stack;
    use super::*;
    use crate::async_store::AsyncStore;

    /// A push whose store-set probe goes far (more than 2 log2(slots) = 10
    /// slots at 32: here a multiplier of 1 homes every small id to slot 0)
    /// is refused by the fast path with nothing changed, and taken by the
    /// full path after a redraw of the multiplier, every id still found.
    /// The same for an async entry; and a table without redraws left (a
    /// fixed multiplier) takes the far push at once.
    #[test]
    fn a_far_probe_redraws_the_multiplier_and_the_push_is_taken() {
        for redraws in [MAX_REDRAWS, 1, 0] {
            let mut s = Stack::new();
            s.install(1, 0x10).unwrap();
            s.entries.force_multiplier(1, redraws);
            for id in 2..=11 {
                s.try_install(id, 0x10)
                    .expect("10 slots or fewer from home");
            }
            s.entries.check();
            if redraws == 0 {
                s.try_install(12, 0x10)
                    .expect("no redraw left: taken as it is");
                assert_eq!(s.entries.present().draw_state(), (1, 0));
            } else {
                assert!(s.try_install(12, 0x10).is_none(), "11 slots from home: far");
                assert_eq!(s.depth(), 11, "nothing changed");
                assert!(!s.entries.contains_store(12));
                s.entries.check();
                s.install(12, 0x10).unwrap();
                let (m, left) = s.entries.present().draw_state();
                assert!(m != 1 && left == redraws - 1, "{m:#x}, {left}");
            }
            s.entries.check();
            assert_eq!(s.depth(), 12);
            assert!((1..=11).all(|id| s.is_paused(id)) && s.is_active(12));
            // An async entry's far push takes the same way (its id homes to
            // slot 0 too, 17 slots before the first free one; the vector
            // has room for 20 entries, so nothing grows).
            let store = AsyncStore::new(1 << 40, 0x99).unwrap();
            for id in 13..=17 {
                s.install(id, 0x10).unwrap();
            }
            s.entries.force_multiplier(1, redraws);
            let guard = store.try_write().unwrap();
            let guard = if redraws == 0 {
                guard // (taken at once: see install_async below)
            } else {
                let refused = s.try_install_async(guard);
                assert_eq!(s.depth(), 17, "nothing changed");
                refused.expect_err("far: refused").expect("handed back")
            };
            s.install_async(guard).unwrap();
            assert_eq!(s.entries.present().draw_state().0 == 1, redraws == 0);
            s.entries.check();
            assert!(s.is_active(1 << 40) && (1..=17).all(|id| s.is_paused(id)));
        }
    }

    /// The cached top follows every change of the entries: pushes past
    /// capacity (the entries move), async and sync pops, suspend and resume
    /// in both shapes, and clearing.
    #[test]
    fn the_cached_top_follows_every_change() {
        let mut s = Stack::new();
        s.entries.check();
        let store = AsyncStore::new(999, 0x999).unwrap();
        // Past several growths of the vector (by 16) and of the store set;
        // fewer under Miri, where `check` is slow.
        let n: u64 = if cfg!(miri) { 40 } else { 300 };
        let mut guards = Vec::new();
        for id in 1..=n {
            guards.push(s.install(id, 0x10).unwrap());
            s.entries.check();
        }
        let ga = s.install_async(store.try_write().unwrap()).unwrap();
        s.entries.check();
        s.uninstall(ga).unwrap();
        s.entries.check();
        let mut seg = super::super::Segment::default();
        s.suspend_into(n as usize / 3, &mut seg).unwrap();
        s.entries.check();
        let mut other = Stack::new();
        other.resume_from(&mut seg).unwrap();
        other.entries.check();
        other.suspend_into(0, &mut seg).unwrap();
        other.entries.check();
        s.resume_from(&mut seg).unwrap();
        s.entries.check();
        for raw in guards.drain(..).rev().take(n as usize / 2) {
            s.uninstall(raw).unwrap();
            s.entries.check();
        }
        s.clear();
        s.entries.check();
        assert!(!s.is_active(0) && !s.is_active(EMPTY_TOP) && s.active_store() == 0);
    }

    /// A suspend refused for lack of memory takes the entries' stores out
    /// of the set and puts them back (`detach_slots`, `restore_slots`): at
    /// every base of a stack with nested, async and paused entries, deep
    /// enough for a grown set, the stack is as it was and unwinds.
    #[test]
    fn restored_slots_leave_the_stack_as_it_was() {
        let mut s = Stack::new();
        let store = AsyncStore::new(77, 0x77).unwrap();
        let mut ids: Vec<u64> = (1..=40).collect();
        ids.insert(10, 10); // nested
        ids.insert(25, 77); // async
        let mut guards = Vec::new();
        for &id in &ids {
            guards.push(match id {
                77 => s.install_async(store.try_write().unwrap()).unwrap(),
                id => s.install(id, 0x10).unwrap(),
            });
            if id % 7 == 0 {
                s.pause(id).unwrap();
                s.pause(id).unwrap();
            }
        }
        let before: Vec<u64> = s.entries.as_slice().iter().map(|e| e.slot_word()).collect();
        let lists = s.entries.pause_lists();
        for base in 0..=ids.len() {
            let records = s.entries.detach_slots(base);
            assert_eq!(
                records,
                lists[base..]
                    .iter()
                    .map(|l| l.len().saturating_sub(1))
                    .sum()
            );
            s.entries.restore_slots(base);
            s.entries.check();
            let after: Vec<u64> = s.entries.as_slice().iter().map(|e| e.slot_word()).collect();
            assert_eq!(after, before, "base {base}: every slot back");
            assert_eq!(s.entries.pause_lists(), lists);
        }
        assert!(s.install(20, 0x10).is_err(), "20 still found deeper");
        s.clear();
        assert!(s.entries.present().is_empty() && !store.is_locked());
    }

    /// Detached entries keep only their ASYNC bit in `slot`, and a resume
    /// refused half-way (a store the stack has already, met after others
    /// were put in the set) puts them back that way: the retry gives every
    /// entry its new slot, the async one keeps its bit, pauses (nested
    /// ones too) come back with their entries, and everything unwinds.
    #[test]
    fn a_refused_resume_leaves_detached_entries_as_they_were() {
        let mut s = Stack::new();
        let base = s.install(1, 0x10).unwrap();
        let store = AsyncStore::new(50, 0x50).unwrap();
        let ga = s.install_async(store.try_write().unwrap()).unwrap();
        let p_outer = s.pause(50).unwrap();
        let p_inner = s.pause(50).unwrap();
        let g: Vec<u64> = (2..=6).map(|id| s.install(id, 0x20).unwrap()).collect();
        let nested = s.install(6, 0x20).unwrap();
        let mut seg = super::super::Segment::default();
        s.suspend_into(1, &mut seg).unwrap();
        s.entries.check();
        let mut other = Stack::new();
        let clash = other.install(5, 0x30).unwrap(); // met after 50, 2, 3, 4
        assert!(other.resume_from(&mut seg).is_err());
        other.entries.check();
        assert_eq!(other.depth(), 1);
        other.uninstall(clash).unwrap();
        for _ in 0..2 {
            // Refused and retried twice over: nothing accumulates.
            let blocker = other.install(6, 0x30).unwrap();
            assert!(other.resume_from(&mut seg).is_err());
            other.uninstall(blocker).unwrap();
            other.entries.check();
        }
        // Resumed onto a stack whose set is larger (other slots).
        let mut third = Stack::new();
        let below: Vec<u64> = (100..140)
            .map(|id| third.install(id, 0x40).unwrap())
            .collect();
        third.resume_from(&mut seg).unwrap();
        third.entries.check();
        third.uninstall(nested).unwrap();
        for raw in g.into_iter().rev() {
            third.uninstall(raw).unwrap();
            third.entries.check();
        }
        third.unpause(p_inner).unwrap();
        third.unpause(p_outer).unwrap();
        third.uninstall(ga).unwrap();
        for raw in below.into_iter().rev() {
            third.uninstall(raw).unwrap();
        }
        third.entries.check();
        assert!(third.is_empty() && third.entries.present().is_empty());
        assert!(!store.is_locked());
        s.uninstall(base).unwrap();
        assert!(s.is_empty() && s.entries.present().is_empty());
    }
}
