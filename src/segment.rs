//! Suspend and resume: a coroutine detaches the entries it pushed (with
//! their borrows, pauses and locks) into a segment, and re-attaches them on
//! top of whichever thread resumes it. Both cost O(segment), never O(depth
//! below it).

use crate::error::{Error, Result};
use crate::stack::{Entry, PauseRecord, Stack};
use crate::store_set::NO_SLOT;

/// Entries detached from a thread's stack, bottom first, with their pause
/// records. Reused after resume: its vectors keep their capacity.
#[derive(Debug, Default)]
pub struct Segment {
    entries: Vec<Entry>,
    /// `pause_base` of each entry is relative to this vector.
    pauses: Vec<PauseRecord>,
}

impl Segment {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the segment carries no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Store ids of the entries, bottom first.
    pub fn store_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.iter().map(|e| e.id)
    }

    /// Drops the entries (releasing their locks) and keeps the capacity.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.pauses.clear();
    }
}

impl Stack {
    /// Moves every entry above `base_depth` into `segment`, which must be
    /// empty.
    pub fn suspend_into(&mut self, base_depth: usize, segment: &mut Segment) -> Result<()> {
        debug_assert!(segment.is_empty());
        if base_depth > self.depth() {
            return Err(Error::InvalidArgument(format!(
                "base depth {base_depth} is above this thread's stack (depth {})",
                self.depth()
            )));
        }
        crate::testing::maybe_panic();
        let pause_start = self
            .entries
            .get(base_depth)
            .map_or(self.pauses.len(), |e| e.pause_base);
        // Entries that put their store in `present` clear their slot, newest
        // first; a nested entry of the store below the segment owns none.
        for entry in self.entries[base_depth..].iter().rev() {
            self.present.clear_slot(entry.slot);
        }
        for entry in self.entries.drain(base_depth..) {
            segment.entries.push(Entry {
                pause_base: entry.pause_base - pause_start,
                slot: NO_SLOT,
                ..entry
            });
        }
        segment.pauses.extend(self.pauses.drain(pause_start..));
        Ok(())
    }

    /// Pushes `segment`'s entries back on top of this stack, leaving it
    /// empty, and answers the depth where they start. Refused, with the
    /// segment untouched, if one of its stores is already on this stack.
    pub fn resume_from(&mut self, segment: &mut Segment) -> Result<usize> {
        if let Some(id) = segment.store_ids().find(|&id| self.present.contains(id)) {
            let depth = self.depth_of_store(id).unwrap_or(0);
            return Err(Error::AlreadyOnStack(format!(
                "the segment carries store {id}, which this thread's stack already has at \
                 depth {depth}; resume it on another thread or after that store is uninstalled"
            )));
        }
        crate::testing::maybe_panic();
        let base_depth = self.depth();
        let pause_start = self.pauses.len();
        for mut entry in segment.entries.drain(..) {
            entry.slot = self.present_insert(entry.id);
            entry.pause_base += pause_start;
            self.entries.push(entry);
        }
        self.pauses.append(&mut segment.pauses);
        Ok(base_depth)
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
        assert_eq!(t2.top().unwrap().borrows, 1);
        t2.borrow_release(b.raw).unwrap();
        t2.uninstall(gb.raw).unwrap();
        assert!(t2.is_active(2) && t2.is_paused(7));
        t2.uninstall(ga).unwrap();
        assert!(!store.is_locked());
        t1.uninstall(outer.raw).unwrap();
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
        t.uninstall(a.raw).unwrap();
        t.resume_from(&mut seg).unwrap();
        t.uninstall(b.raw).unwrap();
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
