//! Suspend and resume: a coroutine detaches the entries it pushed (with
//! their borrows, pauses and locks) into a segment, and re-attaches them on
//! top of whichever thread resumes it. Both cost O(segment), never O(depth
//! below it).

use super::entries::{Detached, EntryParts};
use super::Stack;
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
    /// The entries above the bottom one and the pause records of all,
    /// the bottom one's first.
    rest: Option<Box<Detached>>,
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

impl Segment {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        match self.shape {
            Shape::Empty => 0,
            Shape::Bottom => 1,
            Shape::Spilled => 1 + self.rest.as_ref().map_or(0, |r| r.len()),
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
            (Shape::Spilled, Some(rest)) => Some(rest.ids()),
            _ => None,
        };
        (!self.is_empty())
            .then_some(self.id)
            .into_iter()
            .chain(rest.into_iter().flatten())
    }

    /// Drops the entries (releasing their locks) and keeps the capacity.
    pub(crate) fn clear(&mut self) {
        self.guard = None;
        if let Some(rest) = &mut self.rest {
            rest.clear();
        }
        self.shape = Shape::Empty;
    }

    /// Takes a detached entry's fields as the bottom entry.
    #[inline(always)]
    fn set_bottom(&mut self, p: EntryParts) {
        self.number = p.number;
        self.id = p.id;
        self.address = p.address;
        self.guard = p.guard;
        self.borrows = p.borrows;
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

/// A new, empty detached part, or `None` when the allocator has no memory
/// for it (`Box::new` would abort the process).
#[cold]
#[inline(never)]
fn try_box_detached() -> Option<Box<Detached>> {
    let layout = std::alloc::Layout::new::<Detached>();
    // SAFETY: `Detached` is not zero-sized (it holds two vectors).
    let p = unsafe { std::alloc::alloc(layout) }.cast::<Detached>();
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is non-null, allocated by the global allocator with
    // `Detached`'s layout, so it is valid and aligned for one write, and
    // `Box::from_raw` may own it (the layout `Box<Detached>` frees with).
    unsafe {
        p.write(Detached::default());
        Some(Box::from_raw(p))
    }
}

impl Stack {
    /// Moves every entry above `base_depth` into `segment`, which must be
    /// empty. Refused with `EXHAUSTED`, nothing changed, when there is no
    /// memory for the detached entries and pause records. Inline: into
    /// the suspend export, whose registry half is inline too (one frame).
    #[inline(always)]
    pub(crate) fn suspend_into(&mut self, base_depth: usize, segment: &mut Segment) -> Result<()> {
        debug_assert!(segment.is_empty());
        if base_depth > self.depth() {
            return Err(cold_base_above(base_depth, self.depth()));
        }
        crate::testing::maybe_panic();
        let rest = &mut segment.rest;
        let split = self.entries.split_off(base_depth, || {
            if rest.is_none() {
                *rest = Some(try_box_detached()?);
            }
            rest.as_deref_mut()
        });
        let Some((bottom, spilled)) = split else {
            // Nothing above the base: an empty segment. Entries above it
            // still: no memory to detach them, refused, nothing changed.
            return match base_depth < self.depth() {
                true => Err(super::no_memory_to_suspend(base_depth)),
                false => Ok(()),
            };
        };
        segment.set_bottom(bottom);
        segment.shape = if spilled {
            Shape::Spilled
        } else {
            Shape::Bottom
        };
        // The entries that came from a resume and left with this segment no
        // longer count as such: the refusal paths scan only what remains
        // below the base (a coroutine's resume, run and suspend at one base
        // leaves the marker where it found it).
        self.resumed = self.resumed.min(base_depth);
        Ok(())
    }

    /// Pushes `segment`'s entries back on top of this stack, leaving it
    /// empty, and answers the depth where they start. Refused, with the
    /// segment untouched, if one of its stores is already on this stack.
    /// Inline: into the resume export's halves (one frame each).
    #[inline(always)]
    pub(crate) fn resume_from(&mut self, segment: &mut Segment) -> Result<usize> {
        let base_depth = self.depth();
        let shape = segment.shape;
        if shape == Shape::Empty {
            return Ok(base_depth);
        }
        crate::testing::maybe_panic();
        let rest = match shape {
            Shape::Spilled => segment.rest.as_deref_mut(),
            _ => None,
        };
        // The bottom entry moves out once its store is in the set (a
        // closure over the fields `rest` does not borrow).
        let id = segment.id;
        let bottom = || EntryParts {
            number: segment.number,
            id: segment.id,
            address: segment.address,
            borrows: segment.borrows,
            guard: segment.guard.take(),
        };
        // One probe per store both checks and inserts it (see `append`);
        // on a clash nothing changed and the segment is as it was.
        // (Store id 0 is never on a stack: `append` answers it for "no
        // memory to grow", refused with nothing changed too.)
        if let Err(id) = self.entries.append(id, bottom, rest) {
            return Err(match id {
                0 => super::no_memory(base_depth),
                id => cold_already_on_stack(self, id),
            });
        }
        // Numbered on another thread (or earlier here): below this depth,
        // numbers need not grow up the stack (`Stack::index_of_number`).
        self.resumed = self.depth();
        segment.shape = Shape::Empty;
        Ok(base_depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::async_store::AsyncStore;

    /// Many sync entries (one nested, with borrows and pause records) move
    /// out and back in bulk: handles, borrows and pauses work again, the
    /// store set agrees, and a resume that clashes on its last store takes
    /// out the stores it put in and changes nothing. (No async store: runs
    /// under Miri too, which checks the bulk byte moves.)
    #[test]
    fn sync_entries_move_in_bulk_and_a_clash_changes_nothing() {
        let mut t1 = Stack::new();
        let below = t1.install(1, 0x10).unwrap();
        let base = t1.depth();
        let mut guards = Vec::new();
        for id in 2..=6u64 {
            guards.push(t1.install(id, id as usize * 0x10).unwrap());
        }
        guards.push(t1.install(6, 0x60).unwrap()); // nested: same store on top
        let b = t1.get_current(6).unwrap();
        let p = t1.pause(6).unwrap();
        let mut seg = Segment::default();
        t1.suspend_into(base, &mut seg).unwrap();
        assert_eq!((seg.len(), t1.depth()), (6, 1));
        assert!(t1.entries.pauses().is_empty());
        t1.entries.check();

        // Store 6 is on the other stack already: refused, nothing changed.
        let mut t2 = Stack::new();
        let g6 = t2.install(6, 0x66).unwrap();
        let before = t2.describe();
        assert!(matches!(
            t2.resume_from(&mut seg),
            Err(Error::AlreadyOnStack(_))
        ));
        assert_eq!((t2.describe(), seg.len()), (before, 6));
        for id in 2..=5 {
            assert!(
                !t2.entries.contains_store(id),
                "store {id} was taken out again"
            );
        }
        t2.entries.check();
        t2.uninstall(g6).unwrap();

        assert_eq!(t2.resume_from(&mut seg).unwrap(), 0);
        t2.entries.check();
        assert!(seg.is_empty() && t2.is_active(6) && t2.is_paused(2));
        t2.unpause(p).unwrap();
        t2.borrow_release(b.raw).unwrap();
        for g in guards.into_iter().rev() {
            t2.uninstall(g).unwrap();
            t2.entries.check();
        }
        assert!(t2.is_empty());
        t1.uninstall(below).unwrap();
    }

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
        assert_eq!(t2.top().unwrap().borrows, 1);
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
        assert!(other.is_empty() && other.entries.present().is_empty());

        assert_eq!(t.resume_from(&mut seg).unwrap(), 1);
        assert!(
            t.entries.pauses().is_empty(),
            "no pause of an earlier use came back"
        );
        assert_eq!(t.depth(), 2);
        t.uninstall(b).unwrap();
        t.uninstall(a).unwrap();
        assert!(t.is_empty() && t.entries.present().is_empty());
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
        assert!(t.is_empty() && t.entries.present().is_empty());
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
