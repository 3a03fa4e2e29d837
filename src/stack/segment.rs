//! Suspend and resume: a coroutine detaches the entries it pushed (with
//! their borrows, pauses and locks) into a segment, and re-attaches them on
//! top of whichever thread resumes it. Both cost O(segment), never O(depth
//! below it).

use super::store_set::NO_SLOT;
use super::{Entry, PauseRecord, Stack, State, ASYNC};
use crate::async_store::WriteGuard;
use crate::error::{Error, Result};

/// Entries detached from a thread's stack, with their pause records.
///
/// The bottom entry is kept inline, so that the common case, a coroutine
/// suspended with one entry and no pause, fits in the segment's registry
/// slot: one cache line, which is all that travels when another thread
/// resumes it. Further entries and all pause records go to `rest`, allocated
/// on first need and kept (with its capacity) when the segment is reused.
#[derive(Debug, Default)]
pub(crate) struct Segment {
    // The bottom entry's fields, flattened so that `shape` fills their
    // padding (48 bytes in all: the registry slot stays one cache line).
    number: u64,
    id: u64,
    address: usize,
    guard: Option<WriteGuard>,
    borrows: u32,
    shape: Shape,
    rest: Option<Box<Rest>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// No entry.
    #[default]
    Empty,
    /// The bottom entry only, without pauses; `rest` is unused.
    Bottom,
    /// The bottom entry, then `rest`.
    Spilled,
}

/// What does not fit inline.
#[derive(Debug, Default)]
struct Rest {
    /// The entries above the bottom one, bottom first.
    entries: Vec<Entry>,
    /// Pause records of all entries, in stack order, the bottom one's
    /// first (each entry's `state` counts its own).
    pauses: Vec<PauseRecord>,
    /// How many of `pauses` are the bottom entry's.
    bottom_pauses: usize,
}

impl Segment {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        match self.shape {
            Shape::Empty => 0,
            Shape::Bottom => 1,
            Shape::Spilled => 1 + self.rest.as_ref().map_or(0, |r| r.entries.len()),
        }
    }

    /// True when the segment carries no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.shape == Shape::Empty
    }

    /// Store ids of the entries, bottom first.
    #[cfg(test)]
    pub(crate) fn store_ids(&self) -> impl Iterator<Item = u64> + '_ {
        let rest = match (self.shape, &self.rest) {
            (Shape::Spilled, Some(rest)) => &rest.entries[..],
            _ => &[],
        };
        (!self.is_empty())
            .then_some(self.id)
            .into_iter()
            .chain(rest.iter().map(|e| e.id))
    }

    /// Drops the entries (releasing their locks) and keeps the capacity.
    pub(crate) fn clear(&mut self) {
        self.guard = None;
        if let Some(rest) = &mut self.rest {
            rest.entries.clear();
            rest.pauses.clear();
        }
        self.shape = Shape::Empty;
    }

    /// Takes `entry` as the bottom entry (its pause count, if any, goes to
    /// `rest`).
    #[inline(always)]
    fn set_bottom(&mut self, entry: Entry) {
        self.number = entry.number;
        self.id = entry.id;
        self.address = entry.address;
        self.borrows = entry.borrows();
        self.guard = entry.guard;
    }

    /// The bottom entry, moved out, with `pauses` records and its stack slot.
    #[inline(always)]
    fn take_bottom(&mut self, pauses: usize, slot: u32) -> Entry {
        let guard = self.guard.take();
        Entry {
            number: self.number,
            id: self.id,
            address: self.address,
            state: State {
                borrows: self.borrows,
                // At most MAX_PAUSES records: below ASYNC.
                records: pauses as u32 | if guard.is_some() { ASYNC } else { 0 },
            },
            guard,
            slot,
        }
    }
}

/// The suspended segments C holds, as validated handles.
pub(crate) static SEGMENTS: crate::registry::Registry<Segment> =
    crate::registry::Registry::new(2, "suspended segment");

/// A segment's table slot shows its length to readers.
impl crate::registry::Peek for Segment {
    fn peek(&self) -> u64 {
        self.len() as u64
    }
}

#[cold]
#[inline(never)]
fn cold_already_on_stack(stack: &Stack, id: u64) -> Error {
    let depth = stack.depth_of_store(id).unwrap_or(0);
    Error::AlreadyOnStack(detail!(
        "the segment carries store {id}, which this thread's stack already has at depth \
         {depth}; resume it on another thread or after that store is uninstalled"
    ))
}

#[cold]
#[inline(never)]
fn cold_base_above(base_depth: usize, depth: usize) -> Error {
    Error::InvalidArgument(detail!(
        "base depth {base_depth} is above this thread's stack (depth {depth})"
    ))
}

impl Stack {
    /// Moves every entry above `base_depth` into `segment`, which must be
    /// empty.
    pub(crate) fn suspend_into(&mut self, base_depth: usize, segment: &mut Segment) -> Result<()> {
        debug_assert!(segment.is_empty());
        if base_depth > self.depth() {
            return Err(cold_base_above(base_depth, self.depth()));
        }
        crate::testing::maybe_panic();
        let Some(bottom) = self.entries.get(base_depth) else {
            return Ok(()); // nothing above the base: an empty segment
        };
        if self.entries.len() == base_depth + 1 && bottom.pause_count() == 0 {
            // The common case: one entry without pauses, kept inline.
            let entry = self.entries.pop().expect("the bottom entry exists");
            // SAFETY: the slot of an entry of this stack.
            unsafe { self.present.clear_slot(entry.slot) };
            segment.set_bottom(entry);
            segment.shape = Shape::Bottom;
            self.refresh_top();
            return Ok(());
        }
        // Entries that put their store in `present` clear their slot, newest
        // first (a nested entry of the store below clears the scratch slot),
        // and their pause records are counted.
        let mut records = 0;
        for entry in self.entries[base_depth..].iter().rev() {
            records += entry.pause_count();
            // SAFETY: the slot of an entry of this stack.
            unsafe { self.present.clear_slot(entry.slot) };
        }
        let pause_start = self.pauses.len() - records;
        let rest = segment.rest.get_or_insert_with(Box::default);
        // Moved as they are, in bulk (their slots are set again on resume).
        rest.entries.extend(self.entries.drain(base_depth + 1..));
        rest.pauses.extend_from_slice(&self.pauses[pause_start..]);
        self.pauses.truncate(pause_start);
        let bottom = self.entries.pop().expect("the bottom entry exists");
        rest.bottom_pauses = bottom.pause_count();
        segment.set_bottom(bottom);
        segment.shape = Shape::Spilled;
        self.refresh_top();
        Ok(())
    }

    /// Pushes `segment`'s entries back on top of this stack, leaving it
    /// empty, and answers the depth where they start. Refused, with the
    /// segment untouched, if one of its stores is already on this stack.
    pub(crate) fn resume_from(&mut self, segment: &mut Segment) -> Result<usize> {
        let base_depth = self.depth();
        let len = segment.len();
        if len == 0 {
            return Ok(base_depth);
        }
        crate::testing::maybe_panic();
        if self.entries.capacity() - self.entries.len() < len {
            self.grow_entries(len);
        }
        // The segment's stores go into the set first, bottom first: one
        // probe per entry both checks that the stack lacks the store and
        // inserts it. A nested entry (same store as the entry below it) puts
        // nothing in. On a clash, the inserted ones come out again, newest
        // first, and nothing has changed.
        let Some(bottom_slot) = self.present.insert_slot(segment.id) else {
            return Err(cold_already_on_stack(self, segment.id));
        };
        let spilled = segment.shape == Shape::Spilled;
        if let (true, Some(rest)) = (spilled, segment.rest.as_deref_mut()) {
            if let Err(id) = self.insert_stores(segment.id, &mut rest.entries) {
                // SAFETY: answered by the set just above.
                unsafe { self.present.clear_slot(bottom_slot) };
                return Err(cold_already_on_stack(self, id));
            }
        }
        segment.shape = Shape::Empty;
        let bottom_pauses = match (spilled, segment.rest.as_deref()) {
            (true, Some(rest)) => rest.bottom_pauses,
            _ => 0,
        };
        self.entries
            .push(segment.take_bottom(bottom_pauses, bottom_slot));
        if let (true, Some(rest)) = (spilled, segment.rest.as_deref_mut()) {
            // Moved in bulk, their states (borrows, record counts) as they are.
            self.entries.append(&mut rest.entries);
            self.pauses.append(&mut rest.pauses);
        }
        self.refresh_top();
        Ok(base_depth)
    }

    /// Puts the stores of `entries` (above an entry of store `below`) in
    /// the set and their slots in the entries; on a store the set has
    /// already, takes out again those it put in and answers that store.
    fn insert_stores(
        &mut self,
        mut below: u64,
        entries: &mut [Entry],
    ) -> std::result::Result<(), u64> {
        for k in 0..entries.len() {
            let id = entries[k].id;
            entries[k].slot = if id == below {
                NO_SLOT
            } else {
                match self.present.insert_slot(id) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::async_store::AsyncStore;

    #[test]
    fn suspend_and_resume_keep_handles_borrows_and_pauses() {
        let mut t1 = Stack::new();
        let outer = t1.install(1, 0x10).unwrap();
        let base = t1.depth();
        let store = AsyncStore::new(2, 0x20).unwrap();
        let ga = t1.install_async(store.try_write().unwrap()).unwrap();
        let gb = t1.install(3, 0x30).unwrap();
        let b = t1.get_current(3).unwrap();
        let p = t1.pause(3).unwrap();

        let mut seg = Segment::default();
        t1.suspend_into(base, &mut seg).unwrap();
        assert_eq!((seg.len(), t1.depth()), (2, 1));
        assert!(!t1.is_paused(2) && !t1.is_paused(3) && t1.is_active(1));
        assert!(matches!(t1.unpause(p), Err(Error::StaleHandle(_))));
        assert!(store.is_locked(), "the segment keeps the lock");

        let mut t2 = Stack::new();
        t2.install(7, 0x70).unwrap();
        assert_eq!(t2.resume_from(&mut seg).unwrap(), 1);
        assert!(seg.is_empty());
        t2.unpause(p).unwrap();
        assert_eq!(t2.top().unwrap().borrows(), 1);
        t2.borrow_release(b.raw).unwrap();
        t2.uninstall(gb).unwrap();
        assert!(t2.is_active(2) && t2.is_paused(7));
        t2.uninstall(ga).unwrap();
        assert!(!store.is_locked());
        t1.uninstall(outer).unwrap();
    }

    /// One segment reused through every shape: inline only, inline with its
    /// pauses spilled, several entries; nothing of an earlier use leaks into
    /// a later one.
    #[test]
    fn a_reused_segment_carries_exactly_its_entries_and_pauses() {
        let mut t = Stack::new();
        let mut seg = Segment::default();
        let a = t.install(1, 0x10).unwrap();
        let pa = t.pause(1).unwrap();
        t.suspend_into(0, &mut seg).unwrap();
        assert_eq!((seg.len(), seg.shape), (1, Shape::Spilled));
        t.resume_from(&mut seg).unwrap();
        t.unpause(pa).unwrap();

        let b = t.install(2, 0x20).unwrap();
        let c = t.install(3, 0x30).unwrap();
        t.suspend_into(1, &mut seg).unwrap();
        assert_eq!(seg.store_ids().collect::<Vec<_>>(), [2, 3]);
        let mut other = Stack::new();
        other.resume_from(&mut seg).unwrap();
        assert!(matches!(other.unpause(pa), Err(Error::StaleHandle(_))));
        other.uninstall(c).unwrap();
        other.suspend_into(0, &mut seg).unwrap();
        assert_eq!((seg.len(), seg.shape), (1, Shape::Bottom));
        assert_eq!(seg.store_ids().collect::<Vec<_>>(), [2]);
        assert!(other.is_empty() && other.present.is_empty());

        assert_eq!(t.resume_from(&mut seg).unwrap(), 1);
        assert!(t.pauses.is_empty(), "no pause of an earlier use came back");
        assert_eq!(t.depth(), 2);
        t.uninstall(b).unwrap();
        t.uninstall(a).unwrap();
        assert!(t.is_empty() && t.present.is_empty());
    }

    #[test]
    fn resume_refuses_a_store_already_here() {
        let mut t = Stack::new();
        let a = t.install(1, 0x10).unwrap();
        let b = t.install(1, 0x10).unwrap();
        let mut seg = Segment::default();
        t.suspend_into(1, &mut seg).unwrap();
        assert!(t.is_active(1), "the outer entry of the split run stays");
        assert!(matches!(
            t.resume_from(&mut seg),
            Err(Error::AlreadyOnStack(_))
        ));
        assert_eq!(seg.len(), 1);
        t.uninstall(a).unwrap();
        t.resume_from(&mut seg).unwrap();
        t.uninstall(b).unwrap();
        assert!(t.is_empty() && t.present.is_empty());
    }

    #[test]
    fn suspend_above_depth_and_empty_segments() {
        let mut t = Stack::new();
        let mut seg = Segment::default();
        assert!(matches!(
            t.suspend_into(1, &mut seg),
            Err(Error::InvalidArgument(_))
        ));
        t.suspend_into(0, &mut seg).unwrap();
        assert!(seg.is_empty());
        assert_eq!(t.resume_from(&mut seg).unwrap(), 0);
    }
}
