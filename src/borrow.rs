//! Borrowing the current store and pausing a borrow while guest code runs:
//! counters on the top entry, plus the per-entry LIFO of pause records.

use crate::async_store::AsyncStore;
use crate::error::{Error, Result};
use crate::handle::{self, Tag};
use crate::stack::{Entry, PauseRecord, Stack};
use std::sync::Arc;

/// What a successful borrow returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrowed {
    /// The store id (useful for `get_current_unborrowed`).
    pub id: u64,
    /// The embedder's store address.
    pub address: usize,
    /// The borrow's raw handle.
    pub raw: u64,
}

impl Stack {
    /// The top store's address, if the top is `id`; takes no borrow.
    #[inline]
    pub fn get_current_transient(&mut self, id: u64) -> Result<usize> {
        self.top_for(id).map(|e| e.address)
    }

    /// Borrows the top store, which must be `id`.
    #[inline]
    pub fn get_current(&mut self, id: u64) -> Result<Borrowed> {
        match self.try_get_current(id) {
            Some(b) => Ok(b),
            None => Err(self.get_current_error(id)),
        }
    }

    /// [`Stack::get_current`] without the error: `None`, and nothing
    /// changed, where it fails.
    #[inline(always)]
    pub fn try_get_current(&mut self, id: u64) -> Option<Borrowed> {
        let entry = self.entries.last_mut().filter(|top| top.id == id)?;
        entry.borrows = entry.borrows.checked_add(1)?;
        Some(Borrowed {
            id,
            address: entry.address,
            raw: handle::encode(Tag::Borrow, entry.number),
        })
    }

    #[cold]
    #[inline(never)]
    fn get_current_error(&self, id: u64) -> Error {
        match self.entries.last() {
            Some(top) if top.id == id => too_many_borrows(id),
            _ => self.not_on_top_error(id),
        }
    }

    /// Borrows the top store whatever its id, only if nobody borrows it.
    pub fn get_current_unborrowed(&mut self) -> Result<Borrowed> {
        let depth = self.entries.len();
        let Some(entry) = self.entries.last_mut() else {
            return Err(Error::NoContext(
                "this thread's context stack is empty".into(),
            ));
        };
        if entry.borrows > 0 {
            return Err(Error::Borrowed(format!(
                "top store {} at depth {} has {} borrow(s); expected none",
                entry.id, depth, entry.borrows
            )));
        }
        entry.borrows = 1;
        Ok(Borrowed {
            id: entry.id,
            address: entry.address,
            raw: handle::encode(Tag::Borrow, entry.number),
        })
    }

    /// Like [`Stack::get_current`], also answering the entry's async store
    /// (`None` for a sync entry).
    pub fn get_current_async(&mut self, id: u64) -> Result<(Option<Arc<AsyncStore>>, Borrowed)> {
        let borrowed = self.get_current(id)?;
        let store = self.top().and_then(Entry::async_store).cloned();
        Ok((store, borrowed))
    }

    /// One more borrow of the same sync top entry; returns the handle to
    /// release it with.
    pub fn borrow_clone(&mut self, raw: u64) -> Result<u64> {
        let index = self.top_index_of(raw, Tag::Borrow, "borrow")?;
        let entry = &mut self.entries[index];
        if entry.guard.is_some() {
            return Err(Error::NotSync(format!(
                "store {} is an async entry; its borrows cannot be cloned",
                entry.id
            )));
        }
        if entry.borrows == 0 {
            return Err(not_borrowed(entry.id));
        }
        add_borrow(&mut entry.borrows, entry.id)?;
        Ok(raw)
    }

    /// Gives one borrow of the top entry back.
    #[inline]
    pub fn borrow_release(&mut self, raw: u64) -> Result<()> {
        if self.try_borrow_release(raw) {
            Ok(())
        } else {
            Err(self.borrow_release_error(raw))
        }
    }

    /// [`Stack::borrow_release`] without the error: `false`, and nothing
    /// changed, where it fails.
    #[inline(always)]
    pub fn try_borrow_release(&mut self, raw: u64) -> bool {
        match (handle::decode(raw, Tag::Borrow), self.entries.last_mut()) {
            (Some(n), Some(top)) if top.number == n && top.borrows > 0 => {
                crate::testing::maybe_panic();
                top.borrows -= 1;
                true
            }
            _ => false,
        }
    }

    #[cold]
    #[inline(never)]
    fn borrow_release_error(&self, raw: u64) -> Error {
        match self.top_index_of(raw, Tag::Borrow, "borrow") {
            Ok(index) => not_borrowed(self.entries[index].id),
            Err(e) => e,
        }
    }

    /// Pauses the top store `id` while guest code runs: takes one borrow
    /// away if there is one, and remembers whether it did.
    #[inline]
    pub fn pause(&mut self, id: u64) -> Result<u64> {
        // What try_pause leaves to this, the full path: room for the record
        // and a number.
        self.pauses.reserve(1);
        self.numbers.ensure();
        match self.try_pause(id) {
            Some(raw) => Ok(raw),
            None => Err(self.not_on_top_error(id)),
        }
    }

    /// [`Stack::pause`] without the error: `None`, and nothing changed,
    /// where it fails or would have to allocate (the record vector is full,
    /// or the thread's block of numbers is used up). Calls nothing, so the
    /// C export that runs it needs no saved registers.
    #[inline(always)]
    pub fn try_pause(&mut self, id: u64) -> Option<u64> {
        if self.pauses.len() == self.pauses.capacity() {
            return None;
        }
        let entry = self.entries.last_mut().filter(|top| top.id == id)?;
        let number = self.numbers.try_next_number()?;
        let decremented = entry.borrows > 0;
        entry.borrows -= u32::from(decremented);
        let len = self.pauses.len();
        // SAFETY: len < capacity (checked on entry), so the slot at `len` is
        // allocated and unused; it is written before `set_len` counts it.
        // (Vec::push would keep a call to its growth path in this function.)
        unsafe {
            self.pauses.as_mut_ptr().add(len).write(PauseRecord {
                number,
                decremented,
            });
            self.pauses.set_len(len + 1);
        }
        Some(handle::encode(Tag::Pause, number))
    }

    /// Ends the innermost pause of the top entry, restoring its borrow.
    #[inline]
    pub fn unpause(&mut self, raw: u64) -> Result<()> {
        if self.try_unpause(raw) {
            Ok(())
        } else {
            Err(self.unpause_error(handle::decode(raw, Tag::Pause)))
        }
    }

    /// [`Stack::unpause`] without the error: `false`, and nothing changed,
    /// where it fails.
    #[inline(always)]
    pub fn try_unpause(&mut self, raw: u64) -> bool {
        let number = handle::decode(raw, Tag::Pause);
        let innermost = match (self.entries.last(), self.pauses.last()) {
            (Some(top), Some(last)) if self.pauses.len() > top.pause_base => Some(*last),
            _ => None,
        };
        match (number, innermost, self.entries.last_mut()) {
            (Some(n), Some(last), Some(top)) if last.number == n => {
                crate::testing::maybe_panic();
                top.borrows += u32::from(last.decremented);
                self.pauses.pop();
                true
            }
            _ => false,
        }
    }

    #[cold]
    fn unpause_error(&self, number: Option<u64>) -> Error {
        let Some(number) = number else {
            return Error::StaleHandle("pause guard is zeroed, forged or of another kind".into());
        };
        let Some(at) = self.pauses.iter().rposition(|p| p.number == number) else {
            return Error::StaleHandle(format!(
                "pause guard names no outstanding pause on this thread's stack (depth {}): \
                 already unpaused, its entry is gone or suspended, or from another thread",
                self.depth()
            ));
        };
        let owner = self
            .entries
            .iter()
            .rposition(|e| e.pause_base <= at)
            .expect("a pause record always belongs to an entry");
        let entry = &self.entries[owner];
        if owner + 1 == self.depth() {
            let inner = self.pauses.len() - 1 - at;
            Error::OutOfOrder(format!(
                "pause guard of store {} is not its innermost pause; unpause the {inner} later \
                 pause(s) first",
                entry.id
            ))
        } else {
            Error::OutOfOrder(format!(
                "pause guard for store {} is at depth {}, top is store {} at depth {}",
                entry.id,
                owner + 1,
                self.active_store(),
                self.depth()
            ))
        }
    }
}

#[inline]
fn add_borrow(count: &mut u32, id: u64) -> Result<()> {
    *count = count.checked_add(1).ok_or_else(|| too_many_borrows(id))?;
    Ok(())
}

#[cold]
#[inline(never)]
fn too_many_borrows(id: u64) -> Error {
    Error::InvalidArgument(format!("store {id} already has {} borrows", u32::MAX))
}

#[cold]
fn not_borrowed(id: u64) -> Error {
    Error::NotBorrowed(format!(
        "store {id} has a borrow count of 0; expected a live borrow"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrow_counting() {
        let mut s = Stack::new();
        let g = s.install(1, 0x10).unwrap();
        let b = s.get_current(1).unwrap();
        assert_eq!(b.address, 0x10);
        assert!(matches!(s.uninstall(g), Err(Error::StillBorrowed(_))));
        assert!(matches!(
            s.get_current_unborrowed(),
            Err(Error::Borrowed(_))
        ));
        let c = s.borrow_clone(b.raw).unwrap();
        s.borrow_release(c).unwrap();
        s.borrow_release(b.raw).unwrap();
        assert!(matches!(
            s.borrow_release(b.raw),
            Err(Error::NotBorrowed(_))
        ));
        assert!(matches!(s.borrow_clone(b.raw), Err(Error::NotBorrowed(_))));
        let u = s.get_current_unborrowed().unwrap();
        assert_eq!((u.id, u.address), (1, 0x10));
        s.borrow_release(u.raw).unwrap();
        s.uninstall(g).unwrap();
    }

    #[test]
    fn pauses_nest_lifo_and_restore() {
        let mut s = Stack::new();
        let g = s.install(1, 0x10).unwrap();
        let b = s.get_current(1).unwrap();
        let p1 = s.pause(1).unwrap(); // 1 -> 0
        assert_eq!(s.top().unwrap().borrows, 0);
        let p2 = s.pause(1).unwrap(); // stays 0, not decremented
        assert!(matches!(s.unpause(p1), Err(Error::OutOfOrder(_))));
        s.unpause(p2).unwrap();
        assert!(matches!(s.unpause(p2), Err(Error::StaleHandle(_))));
        s.unpause(p1).unwrap();
        assert_eq!(s.top().unwrap().borrows, 1);
        s.borrow_release(b.raw).unwrap();
        s.uninstall(g).unwrap();
    }

    #[test]
    fn unpause_after_top_changed() {
        let mut s = Stack::new();
        let g1 = s.install(1, 0x10).unwrap();
        let p = s.pause(1).unwrap();
        let g2 = s.install(2, 0x20).unwrap();
        assert!(matches!(s.unpause(p), Err(Error::OutOfOrder(_))));
        s.uninstall(g2).unwrap();
        s.unpause(p).unwrap();
        // An uninstalled entry's pauses become stale.
        let p = s.pause(1).unwrap();
        s.uninstall(g1).unwrap();
        assert!(matches!(s.unpause(p), Err(Error::StaleHandle(_))));
        assert!(s.pauses.is_empty());
    }

    #[test]
    fn lookups_by_id() {
        let mut s = Stack::new();
        assert!(matches!(s.get_current(1), Err(Error::NoContext(_))));
        let g1 = s.install(1, 0x10).unwrap();
        let g2 = s.install(2, 0x20).unwrap();
        assert!(matches!(s.get_current(1), Err(Error::Paused(_))));
        assert!(matches!(s.pause(1), Err(Error::Paused(_))));
        assert!(matches!(
            s.get_current_transient(3),
            Err(Error::NotInstalled(_))
        ));
        assert!(matches!(s.get_current(0), Err(Error::InvalidArgument(_))));
        assert_eq!(s.get_current_transient(2).unwrap(), 0x20);
        let (store, b) = s.get_current_async(2).unwrap();
        assert!(store.is_none());
        s.borrow_release(b.raw).unwrap();
        s.uninstall(g2).unwrap();
        s.uninstall(g1).unwrap();
    }
}
