//! Borrowing the current store: a borrow count on the top entry.
//!
//! The count is a `u32`: every way up (`get_current`, `borrow_clone`,
//! `unpause`) is refused at `u32::MAX` with nothing changed, so it never
//! wraps.

use super::handle::{self, Tag};
use super::{BorrowHandle, Entry, Stack};
use crate::async_store::StoreRef;
use crate::error::{AsError, Code, Error, Refusal, Result};

/// What a successful borrow returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Borrowed {
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
    pub(crate) fn get_current_transient(&mut self, id: u64) -> Result<usize> {
        self.top_for(id).map(|e| e.address())
    }

    /// [`Stack::get_current_transient`] without the error: `None` where it
    /// fails.
    #[inline(always)]
    pub(crate) fn try_get_current_transient(&self, id: u64) -> Option<usize> {
        if self.entries.top_id() != id {
            return None;
        }
        self.entries.top().map(Entry::address)
    }

    /// Borrows the top store, which must be `id`.
    #[inline]
    pub(crate) fn get_current(&mut self, id: u64) -> Result<Borrowed> {
        match self.try_get_current(id) {
            Some(b) => Ok(b),
            None => Err(self.get_current_error(id)),
        }
    }

    /// [`Stack::get_current`] without the error: `None`, and nothing
    /// changed, where it fails.
    #[inline(always)]
    pub(crate) fn try_get_current(&mut self, id: u64) -> Option<Borrowed> {
        if self.entries.top_id() != id {
            return None;
        }
        let entry = self.entries.top_mut()?;
        entry.borrows = entry
            .borrows
            .checked_add(1)
            .filter(|n| *n <= crate::testing::borrow_limit())?;
        Some(Borrowed {
            id,
            address: entry.address(),
            raw: entry.handle(Tag::Borrow),
        })
    }

    #[cold]
    #[inline(never)]
    fn get_current_error(&self, id: u64) -> Error {
        self.explain_get_current(id, AsError)
    }

    /// Why [`Stack::try_get_current`] refused, given `to`.
    #[inline(always)]
    pub(crate) fn explain_get_current<R: Refusal>(&self, id: u64, to: R) -> R::Out {
        match self.top() {
            Some(top) if top.id() == id => too_many_borrows(id, to),
            _ => self.explain_not_on_top(id, to),
        }
    }

    /// Borrows the top store whatever its id, only if nobody borrows it.
    pub(crate) fn get_current_unborrowed(&mut self) -> Result<Borrowed> {
        let depth = self.depth();
        let Some(entry) = self.entries.top_mut() else {
            return Err(Error::NoContext(detail!(
                "this thread's context stack is empty"
            )));
        };
        if entry.borrows > 0 {
            return Err(Error::Borrowed(detail!(
                "top store {} at depth {} has {} borrow(s); expected none",
                entry.id(),
                depth,
                entry.borrows
            )));
        }
        entry.borrows = 1;
        Ok(Borrowed {
            id: entry.id(),
            address: entry.address(),
            raw: entry.handle(Tag::Borrow),
        })
    }

    /// Like [`Stack::get_current`], also answering the entry's async store
    /// (`None` for a sync entry).
    pub(crate) fn get_current_async(&mut self, id: u64) -> Result<(Option<StoreRef>, Borrowed)> {
        let borrowed = self.get_current(id)?;
        let store = self.top().and_then(Entry::async_store).cloned();
        Ok((store, borrowed))
    }

    /// One more borrow of the same sync top entry; returns the handle to
    /// release it with.
    pub(crate) fn borrow_clone(&mut self, raw: u64) -> Result<u64> {
        self.check_names_top::<BorrowHandle>(raw, Tag::Borrow)?;
        let Some(entry) = self.entries.top_mut() else {
            return Err(Error::Panic(detail!("no top entry after finding it")));
        };
        if entry.is_async() {
            return Err(Error::NotSync(detail!(
                "store {} is an async entry; its borrows cannot be cloned",
                entry.id()
            )));
        }
        if entry.borrows == 0 {
            return Err(not_borrowed(entry.id(), AsError));
        }
        let id = entry.id();
        add_borrow(&mut entry.borrows, id)?;
        Ok(raw)
    }

    /// Gives one borrow of the top entry back.
    #[inline]
    pub(crate) fn borrow_release(&mut self, raw: u64) -> Result<()> {
        if self.try_borrow_release(raw) {
            Ok(())
        } else {
            Err(self.borrow_release_error(raw))
        }
    }

    /// [`Stack::borrow_release`] without the error: `false`, and nothing
    /// changed, where it fails.
    #[inline(always)]
    pub(crate) fn try_borrow_release(&mut self, raw: u64) -> bool {
        // Entry numbers are never 0, so comparing encodings is decoding.
        match self.entries.top_mut() {
            Some(top) if raw == top.handle(Tag::Borrow) && top.borrows > 0 => {
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
        self.explain_borrow_release(raw, AsError)
    }

    /// Why [`Stack::try_borrow_release`] refused (it did), given `to`.
    #[inline(always)]
    pub(crate) fn explain_borrow_release<R: Refusal>(&self, raw: u64, to: R) -> R::Out {
        let number = handle::decode(raw, Tag::Borrow);
        match (number, self.top()) {
            (Some(n), Some(top)) if top.number() == n => not_borrowed(top.id(), to),
            _ => self.explain_handle::<BorrowHandle, R>(number, to),
        }
    }
}

#[inline]
pub(super) fn add_borrow(count: &mut u32, id: u64) -> Result<()> {
    match count
        .checked_add(1)
        .filter(|n| *n <= crate::testing::borrow_limit())
    {
        Some(n) => {
            *count = n;
            Ok(())
        }
        None => Err(too_many_borrows_error(id)),
    }
}

#[cold]
#[inline(never)]
pub(super) fn too_many_borrows_error(id: u64) -> Error {
    too_many_borrows(id, AsError)
}

/// `INVALID_ARGUMENT`: store `id`'s top entry has the most borrows it can.
#[inline(always)]
pub(super) fn too_many_borrows<R: Refusal>(id: u64, to: R) -> R::Out {
    to.refuse(
        Code::InvalidArgument,
        text!(
            "store {id} already has {} borrows, the most an entry can have",
            crate::testing::borrow_limit()
        ),
    )
}

/// `NOT_BORROWED`: store `id`'s top entry has no borrow to give back.
#[inline(always)]
fn not_borrowed<R: Refusal>(id: u64, to: R) -> R::Out {
    to.refuse(
        Code::NotBorrowed,
        text!("store {id} has a borrow count of 0; expected a live borrow"),
    )
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
