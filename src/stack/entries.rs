//! The one owner of a thread's entries: only [`Entries`] pushes, pops,
//! truncates, drains and reserves them, together with the two things that
//! must agree with them (the pause records, whose ranges the entries' pause
//! bases mark, and the set of their store ids), and it alone keeps the top
//! the hot paths read.
//!
//! The top is cached as the top entry's id and address, for one load each on
//! the hot paths, and set only here, after every change of the vector, from
//! the vector's own buffer pointer (`Vec::as_mut_ptr` makes no reference, so
//! no later borrow of an entry invalidates it: the provenance Miri checks
//! under Stacked and Tree Borrows).

use super::store_set::{StoreSet, NO_SLOT};
use super::EMPTY_TOP;
use crate::async_store::{AsyncStore, WriteGuard};
use std::sync::Arc;

/// One installed store on a thread's stack. Only `borrows` can be changed
/// from outside this file; the rest is fixed when the entry is made (or
/// kept by [`Entries`]).
///
/// `repr(C)`: `borrows` and `records` are one aligned 8-byte word, which
/// is 0 exactly when uninstall's fast path may pop the entry (no borrow, no
/// pause record to drop, no lock to release): one test instead of three.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Entry {
    /// Process-unique; named by this entry's install guard and borrows.
    number: u64,
    id: u64,
    address: usize,
    /// Borrows of this entry (the rules live in borrow.rs and pause.rs).
    pub(super) borrows: u32,
    /// How many pause records are this entry's (the last ones of
    /// [`Entries::pauses`] below those of the entries above it), and
    /// [`ASYNC`].
    records: u32,
    /// `Some` for an async entry: the entry holds the store's lock.
    guard: Option<WriteGuard>,
    /// The slot of `id` in the store set if this entry put it there.
    slot: u32,
}

/// [`Entry::records`]' bit of an async entry.
const ASYNC: u32 = 1 << 31;
/// The most pause records a stack holds, so that an entry's count never
/// reaches [`ASYNC`].
const MAX_PAUSES: usize = (1 << 31) - 1;
/// The entry vector's first capacity.
const MIN_ENTRIES: usize = 16;

// `borrows` and `records` share one 8-byte-aligned word (`Entry::is_clear`).
const _: () = assert!(std::mem::offset_of!(Entry, borrows) % 8 == 0);
const _: () =
    assert!(std::mem::offset_of!(Entry, records) == std::mem::offset_of!(Entry, borrows) + 4);

/// An entry's own fields, for a segment that keeps them flattened.
pub(super) struct EntryParts {
    pub(super) number: u64,
    pub(super) id: u64,
    pub(super) address: usize,
    pub(super) borrows: u32,
    pub(super) guard: Option<WriteGuard>,
}

impl Entry {
    /// No borrow, no pause record, sync: what uninstall's fast path needs.
    #[inline(always)]
    pub(super) fn is_clear(&self) -> bool {
        // SAFETY: `borrows` and `records` are adjacent `u32`s starting at an
        // 8-aligned offset of this `repr(C)` struct (asserted above), so the
        // 8 bytes there are initialised and aligned; the pointer is derived
        // from `self`, whose provenance covers them.
        unsafe {
            std::ptr::from_ref(self)
                .cast::<u8>()
                .add(std::mem::offset_of!(Entry, borrows))
                .cast::<u64>()
                .read()
                == 0
        }
    }

    /// How many pause records are this entry's.
    #[inline(always)]
    pub(super) fn pause_count(&self) -> usize {
        (self.records & !ASYNC) as usize
    }

    /// The fields of a detached entry (see [`Entries::split_off`]).
    pub(super) fn into_parts(self) -> EntryParts {
        EntryParts {
            number: self.number,
            id: self.id,
            address: self.address,
            borrows: self.borrows,
            guard: self.guard,
        }
    }

    #[inline(always)]
    pub(super) fn number(&self) -> u64 {
        self.number
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

    /// The async store of an async entry.
    pub(crate) fn async_store(&self) -> Option<&Arc<AsyncStore>> {
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

/// An outstanding pause on some entry, in one word: its pause guard's raw
/// handle, whose lowest bit (always 0 in a pause handle: its tag is 4) says
/// whether the pause took one borrow away (and unpause gives it back). One
/// load and one compare check a guard against it and find the borrow.
#[derive(Debug, Clone, Copy)]
pub(super) struct PauseRecord(u64);

const _: () = assert!(super::handle::Tag::Pause as u64 & 1 == 0);

impl PauseRecord {
    /// The record of the pause whose guard is `raw` (a pause handle).
    #[inline(always)]
    pub(super) fn new(raw: u64, decremented: bool) -> Self {
        debug_assert!(raw & 1 == 0);
        PauseRecord(raw | u64::from(decremented))
    }

    /// The borrow `raw` gives back if it is this pause's guard (0 or 1),
    /// `None` if it is not: exactly one value of `raw` is accepted (a
    /// forged `raw` with its lowest bit set never is: adding 1 to it clears
    /// that bit and carries into bit 1, which a pause handle has clear).
    #[inline(always)]
    pub(super) fn restores(self, raw: u64) -> Option<u32> {
        let restore = self.0 & 1;
        (raw.wrapping_add(restore) == self.0).then_some(restore as u32)
    }

    /// The pause guard's raw handle.
    #[inline(always)]
    pub(super) fn raw(self) -> u64 {
        self.0 & !1
    }
}

/// Entries and their pause records detached from a stack, bottom first
/// (each entry's record count is kept in it). Kept, with its capacity, by a
/// segment that is reused.
#[derive(Debug, Default)]
pub(super) struct Detached {
    entries: Vec<Entry>,
    pauses: Vec<PauseRecord>,
    /// How many of `pauses` are the bottom entry's (kept apart from them).
    bottom_pauses: usize,
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
        self.bottom_pauses = 0;
    }
}

/// A thread's entries, bottom first, with their pause records and store set.
#[derive(Debug)]
pub(super) struct Entries {
    vec: Vec<Entry>,
    /// Pause records of all entries, in stack order: each entry owns the
    /// `pause_count()` records after those of the entries below it.
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

    /// All pause records, in stack order.
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

    /// Makes [`Entries::has_room`] true.
    #[cold]
    #[inline(never)]
    pub(super) fn make_room(&mut self) {
        self.reserve(1);
    }

    /// Room for `more` entries past the length: the vector grows by steps
    /// of a quarter of the power of two below its capacity (x1.14 to x1.25:
    /// geometric, so pushes stay O(1) amortised, and at most a fifth of it
    /// is spare just after a growth), then the store set is sized for the
    /// new capacity. Heap bytes per entry stay below 96 at every depth
    /// (BENCHMARKS.md, "Memory"; test `heap_bytes_per_entry_...`).
    #[cold]
    #[inline(never)]
    pub(super) fn reserve(&mut self, more: usize) {
        let need = self.vec.len() + more;
        if need <= self.vec.capacity() {
            return;
        }
        let mut cap = self.vec.capacity().max(MIN_ENTRIES);
        while cap < need {
            let step = (1usize << (usize::BITS - 1 - cap.leading_zeros())) / 4;
            cap = (cap / step + 1) * step;
        }
        self.vec.reserve_exact(cap - self.vec.len());
        self.sync_top(); // the entries may have moved
        if self.present.capacity() < self.vec.capacity() {
            self.regrow_present();
        }
    }

    /// Room for one more pause record; `false` (nothing changed) when the
    /// stack holds [`MAX_PAUSES`] already.
    pub(super) fn reserve_pause(&mut self) -> bool {
        let len = self.pauses.len();
        if len == self.pauses.capacity() {
            if len >= MAX_PAUSES {
                return false;
            }
            self.pauses.reserve_exact(len.clamp(4, MAX_PAUSES - len));
        }
        true
    }

    /// Pushes an entry for store `id`, numbered by `number` (called once
    /// the push is certain), and answers the number. Refused, nothing
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
        number: impl FnOnce() -> u64,
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
            match self.present.insert_slot(id, len as u32) {
                Some(slot) => slot,
                None => return Err(guard), // deeper: nothing inserted
            }
        };
        let number = number();
        // Written straight into the spare capacity: `Vec::push` builds the
        // Entry on the stack and copies it, a store-forwarding stall on this,
        // the hottest path.
        // SAFETY: `has_room` checked len < capacity and nothing since
        // touched `vec`, so the slot at `len` is allocated and unused; it is
        // fully written before `set_len` counts it.
        unsafe {
            self.vec.as_mut_ptr().add(len).write(Entry {
                number,
                id,
                address,
                borrows: 0,
                records: if guard.is_some() { ASYNC } else { 0 },
                guard,
                slot,
            });
            self.vec.set_len(len + 1);
            self.top = self.vec.as_mut_ptr().add(len);
        }
        self.top_id = id;
        Ok(number)
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
        let slot = top.slot;
        // SAFETY: the slot of an entry of this stack (or NO_SLOT).
        unsafe { self.present.clear_slot(slot) };
        let len = self.vec.len() - 1;
        // SAFETY: the vector is not empty (its top was read above) and the
        // entry's only field with a destructor, `guard`, is `None` (clear).
        unsafe { self.vec.set_len(len) };
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

    /// Pops the top entry with its pause records (none if empty). Dropping
    /// an async entry releases its lock, last, once all is consistent. Out
    /// of line: the fast path pops clear entries only ([`Entries::pop_clear`]).
    #[cold]
    #[inline(never)]
    pub(super) fn pop(&mut self) {
        let Some(top) = self.top() else {
            return;
        };
        let (records, slot) = (top.pause_count(), top.slot);
        self.pauses.truncate(self.pauses.len() - records);
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
            unsafe { self.present.clear_slot(entry.slot) };
        }
        self.pauses.clear();
        self.sync_top();
    }

    /// Adds a pause record to the top entry, which must be store `id`,
    /// without allocating: `make` sees the top entry and answers the record
    /// (`None`: nothing added). `false`, nothing changed, when it cannot.
    #[inline(always)]
    pub(super) fn push_pause(
        &mut self,
        id: u64,
        make: impl FnOnce(&mut Entry) -> Option<PauseRecord>,
    ) -> bool {
        if self.pauses.len() == self.pauses.capacity() || self.top_id != id {
            return false;
        }
        let (Some(top), pauses) = self.top_and_pauses() else {
            return false;
        };
        let Some(record) = make(top) else {
            return false;
        };
        // Below MAX_PAUSES records (the vector never holds more): never ASYNC.
        top.records += 1;
        let len = pauses.len();
        // SAFETY: len < capacity (checked above), so the slot at `len` is
        // allocated and unused; it is written before `set_len` counts it.
        // (Vec::push would keep a call to its growth path here.)
        unsafe {
            pauses.as_mut_ptr().add(len).write(record);
            pauses.set_len(len + 1);
        }
        true
    }

    /// Removes the top entry's innermost pause record if `accept` (shown
    /// the top entry and that record) agrees; `false`, nothing removed,
    /// otherwise or when the top entry has no record.
    #[inline(always)]
    pub(super) fn pop_pause(
        &mut self,
        accept: impl FnOnce(&mut Entry, PauseRecord) -> bool,
    ) -> bool {
        let (Some(top), pauses) = self.top_and_pauses() else {
            return false;
        };
        if top.pause_count() == 0 {
            return false;
        }
        let len = pauses.len();
        // SAFETY: the top entry owns `pause_count() > 0` records, the last
        // ones of the vector: `len - 1` is in bounds.
        let last = unsafe { *pauses.get_unchecked(len - 1) };
        if !accept(top, last) {
            return false;
        }
        top.records -= 1;
        // SAFETY: `len - 1` is below the length (the vector has a last
        // record), and a record is `Copy`: shortening is forgetting it.
        unsafe { pauses.set_len(len - 1) };
        true
    }

    /// The index of the entry that owns pause record `at` (error paths:
    /// O(depth)).
    pub(super) fn pause_owner(&self, at: usize) -> Option<usize> {
        let mut start = self.pauses.len();
        if at >= start {
            return None;
        }
        for (index, e) in self.vec.iter().enumerate().rev() {
            start -= e.pause_count();
            if start <= at {
                return Some(index);
            }
        }
        None
    }

    /// Moves the entries above the first `base` out: the bottom one's
    /// fields are answered and, unless it is the only one and has no pause
    /// records, the others and all the records go to `rest()` (then
    /// `true`), detached. `None`, nothing changed, when there is no entry
    /// above `base`.
    #[inline(always)]
    pub(super) fn split_off<'r>(
        &mut self,
        base: usize,
        rest: impl FnOnce() -> &'r mut Detached,
    ) -> Option<(EntryParts, bool)> {
        let bottom = self.vec.get(base)?;
        if self.vec.len() == base + 1 && bottom.pause_count() == 0 {
            // The common case: one entry without pauses.
            let bottom = self.vec.pop()?;
            // SAFETY: the slot of an entry of this stack (or NO_SLOT).
            unsafe { self.present.clear_slot(bottom.slot) };
            self.sync_top();
            return Some((bottom.into_parts(), false));
        }
        let bottom = self.split_off_spilled(base, rest())?;
        Some((bottom.into_parts(), true))
    }

    /// [`Entries::split_off`] of several entries or of pause records.
    #[inline]
    fn split_off_spilled(&mut self, base: usize, rest: &mut Detached) -> Option<Entry> {
        // Entries that put their store in the set clear their slot, newest
        // first (a nested entry of the store below clears the scratch slot),
        // and their records are counted.
        let mut records = 0;
        for entry in self.vec[base..].iter().rev() {
            records += entry.pause_count();
            // SAFETY: the slot of an entry of this stack (or NO_SLOT).
            unsafe { self.present.clear_slot(entry.slot) };
        }
        let pause_start = self.pauses.len() - records;
        // Moved as they are, in bulk: one copy of their bytes (their slots
        // are set again on resume).
        let moved = self.vec.len() - (base + 1);
        rest.entries.reserve(moved);
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
        rest.pauses.extend_from_slice(&self.pauses[pause_start..]);
        self.pauses.truncate(pause_start);
        let bottom = self.vec.pop();
        rest.bottom_pauses = bottom.as_ref().map_or(0, Entry::pause_count);
        self.sync_top();
        bottom
    }

    /// Pushes detached entries back on top: `bottom` (store `bottom_id`),
    /// then those of `rest` (which is left empty, its capacity kept), with
    /// their pause records. Each store goes into the set with one probe
    /// that also finds one the stack has already: then the stores put in
    /// come out again, newest first, and `Err` answers that store, nothing
    /// changed. A nested entry (the store of the entry below it) puts none.
    #[inline(always)]
    pub(super) fn append(
        &mut self,
        bottom_id: u64,
        bottom: impl FnOnce() -> EntryParts,
        mut rest: Option<&mut Detached>,
    ) -> Result<(), u64> {
        self.reserve(1 + rest.as_deref().map_or(0, Detached::len));
        let at = self.vec.len();
        let Some(slot) = self.present.insert_slot(bottom_id, at as u32) else {
            return Err(bottom_id);
        };
        if let Some(rest) = rest.as_deref_mut() {
            if let Err(id) = self.insert_stores(bottom_id, at + 1, &mut rest.entries) {
                // SAFETY: answered by the set just above.
                unsafe { self.present.clear_slot(slot) };
                return Err(id);
            }
        }
        let bottom = bottom();
        let records = rest.as_deref().map_or(0, |r| r.bottom_pauses);
        self.vec.push(Entry {
            number: bottom.number,
            id: bottom.id,
            address: bottom.address,
            borrows: bottom.borrows,
            // At most MAX_PAUSES: below ASYNC.
            records: records as u32 | if bottom.guard.is_some() { ASYNC } else { 0 },
            guard: bottom.guard,
            slot,
        });
        if let Some(rest) = rest {
            // Moved in bulk, their counts as they are.
            self.vec.append(&mut rest.entries);
            self.pauses.append(&mut rest.pauses);
            rest.bottom_pauses = 0;
        }
        self.sync_top();
        Ok(())
    }

    /// Puts the stores of `entries` (above an entry of store `below`) in
    /// the set and their slots in the entries (the first of them to be
    /// entry `first` of the stack); on a store the set has already, takes
    /// out again those it put in and answers that store.
    fn insert_stores(
        &mut self,
        mut below: u64,
        first: usize,
        entries: &mut [Entry],
    ) -> Result<(), u64> {
        for k in 0..entries.len() {
            let id = entries[k].id;
            entries[k].slot = if id == below {
                NO_SLOT
            } else {
                match self.present.insert_slot(id, (first + k) as u32) {
                    Some(slot) => slot,
                    None => {
                        for entry in entries[..k].iter().rev() {
                            // SAFETY: answered by the set just above.
                            unsafe { self.present.clear_slot(entry.slot) };
                        }
                        return Err(id);
                    }
                }
            };
            below = id;
        }
        Ok(())
    }

    /// Sizes the store set for the vector's capacity and re-inserts the ids
    /// in stack order (which keeps removal by slot valid).
    #[cold]
    #[inline(never)]
    fn regrow_present(&mut self) {
        self.present.reserve_for(self.vec.capacity());
        for (k, e) in self.vec.iter_mut().enumerate() {
            if e.slot != NO_SLOT {
                e.slot = self.present.insert_slot(e.id, k as u32).unwrap_or(NO_SLOT);
            }
        }
    }

    /// The entry vector's capacity and the store set's bytes (tests).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.vec.capacity() * std::mem::size_of::<Entry>() + self.present.heap_bytes()
    }

    /// The store set, for tests.
    #[cfg(test)]
    pub(super) fn present(&self) -> &StoreSet {
        &self.present
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
        let records: usize = self.vec.iter().map(Entry::pause_count).sum();
        assert_eq!(records, self.pauses.len(), "every record has its entry");
        assert!(self
            .vec
            .iter()
            .all(|e| (e.records & ASYNC != 0) == e.guard.is_some()));
        assert!(self.present.capacity() >= self.vec.capacity() || self.vec.capacity() == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Stack;
    use super::*;

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
}
