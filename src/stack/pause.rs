//! Pausing a borrow while guest code runs: the per-entry LIFO of pause
//! records. A pause takes the top entry's borrow away (if it has one) and its
//! unpause gives it back.

use super::borrow::too_many_borrows;
use super::entries::{NoRoom, PauseRecord};
use super::handle::{self, Tag};
use super::{Entry, Stack};
use crate::error::{AsError, Code, Error, Refusal, Result};
use std::fmt;

impl Stack {
    /// Pauses the top store `id` while guest code runs: takes one borrow
    /// away if there is one, and remembers whether it did.
    #[inline]
    pub(crate) fn pause(&mut self, id: u64) -> Result<u64> {
        if !self.is_active(id) {
            // Refused before anything grows: a refusal allocates nothing.
            return Err(self.not_on_top_error(id));
        }
        // What try_pause leaves to this, the full path: a number, and room
        // for the record a nested pause moves out of the entry (never past
        // the most a stack holds).
        self.numbers.ensure()?;
        if let Some(raw) = self.try_pause(id) {
            return Ok(raw);
        }
        match self.entries.reserve_pause() {
            Ok(()) => {}
            Err(NoRoom::Full) => {
                return Err(Error::InvalidArgument(detail!(
                "this thread's stack holds {} nested pauses, the most it can; unpause some first",
                self.entries.pauses().len()
            )))
            }
            Err(NoRoom::NoMemory) => {
                return Err(super::no_memory_for_pauses(self.entries.pauses().len()))
            }
        }
        let numbers = &mut self.numbers;
        let mut raw = 0;
        let pushed = self.entries.push_nested_pause(id, |top| {
            Some(take_borrow(
                top,
                numbers.try_next_handle(Tag::Pause)?,
                &mut raw,
            ))
        });
        if pushed {
            Ok(raw)
        } else {
            Err(self.not_on_top_error(id))
        }
    }

    /// [`Stack::pause`] without the error: `None`, and nothing changed,
    /// where it fails, where it would have to allocate (the thread's block
    /// of numbers is used up) and for a pause nested in another (the full
    /// path's). Calls nothing, so the C export that runs it needs no saved
    /// registers.
    #[inline(always)]
    pub(crate) fn try_pause(&mut self, id: u64) -> Option<u64> {
        let numbers = &mut self.numbers;
        let mut raw = 0;
        let pushed = self.entries.push_pause(id, |top| {
            Some(take_borrow(
                top,
                numbers.try_next_handle(Tag::Pause)?,
                &mut raw,
            ))
        });
        pushed.then_some(raw)
    }

    /// Ends the innermost pause of the top entry, restoring its borrow.
    #[inline]
    pub(crate) fn unpause(&mut self, raw: u64) -> Result<()> {
        if self
            .entries
            .pop_pause(false, |top, last| restore_borrow(top, last, raw))
        {
            Ok(())
        } else {
            Err(self.unpause_error(raw))
        }
    }

    /// [`Stack::unpause`] of the top entry's only pause, without the error:
    /// `false`, and nothing changed, where it fails or when the pause is
    /// nested in another (the full path's).
    #[inline(always)]
    pub(crate) fn try_unpause(&mut self, raw: u64) -> bool {
        self.entries
            .pop_pause(true, |top, last| restore_borrow(top, last, raw))
    }

    #[cold]
    #[inline(never)]
    fn unpause_error(&self, raw: u64) -> Error {
        self.explain_unpause(raw, AsError)
    }

    /// Why unpause of `raw` is refused, given `to`, once its fast path did
    /// not take it; `None` (nothing given) when `raw` is the top entry's
    /// innermost pause: the full path's (a pause nested in another, or a
    /// restored borrow that would not fit, which it explains).
    ///
    /// The common refusal, a spent (or forged) guard, is told in O(1) with
    /// no frame: no older pause record anywhere, no entry from a resume,
    /// and the guard numbered above the top entry (a thread's numbers only
    /// grow, so no pause of an entry below the top is numbered above it:
    /// see [`Stack::locate_pause`]). Any other case is explained out of
    /// line ([`Stack::explain_unpause_far`]).
    #[inline(always)]
    pub(crate) fn unpause_refusal<R: Refusal>(&self, raw: u64, to: R) -> Option<R::Out> {
        let Some(top) = self.top() else {
            return Some(self.unpause_stale(raw, to));
        };
        if top.innermost_pause().is_some_and(|p| p.raw() == raw) {
            return None;
        }
        // Compared as handles: a pause handle is above an install handle
        // exactly when its number is.
        if self.entries.pauses().is_empty()
            && self.by_number().0.is_empty()
            && raw > top.handle(Tag::Install)
        {
            return Some(self.unpause_stale(raw, to));
        }
        Some(self.explain_unpause_far(raw, to))
    }

    /// [`Stack::explain_unpause`] out of line, and `extern "C"` (it cannot
    /// unwind: nothing here panics), so that a refusal path calls it last
    /// inside its panic boundary without a landing pad: a tail jump.
    #[cold]
    #[inline(never)]
    #[allow(improper_ctypes_definitions)] // called from Rust only
    extern "C" fn explain_unpause_far<R: Refusal>(&self, raw: u64, to: R) -> R::Out {
        self.explain_unpause(raw, to)
    }

    /// `STALE_HANDLE`: `raw` names no outstanding pause here. Whether it is
    /// a pause handle at all (zeroed, forged or of another kind) only the
    /// message says: it is told when the message is written.
    #[inline(always)]
    fn unpause_stale<R: Refusal>(&self, raw: u64, to: R) -> R::Out {
        let depth = self.depth();
        to.refuse(Code::StaleHandle, move |f: &mut fmt::Formatter<'_>| {
            if handle::decode(raw, Tag::Pause).is_none() {
                return f.write_str("pause guard is zeroed, forged or of another kind");
            }
            write!(
                f,
                "pause guard names no outstanding pause on this thread's stack (depth \
                 {depth}): already unpaused, its entry is gone or suspended, or from another \
                 thread"
            )
        })
    }

    /// Why [`Stack::unpause`] refused `raw` (it did), given `to`.
    #[inline(always)]
    pub(crate) fn explain_unpause<R: Refusal>(&self, raw: u64, to: R) -> R::Out {
        match self.locate_pause(raw) {
            Some((owner, inner)) => self.explain_unpause_at(owner, inner, to),
            None => self.unpause_stale(raw, to),
        }
    }

    /// Where the outstanding pause whose guard is `raw` is (any value: a
    /// pause is found only by its own guard): its entry's index and how many later pauses that entry has;
    /// `None` if there is none. The top's pauses first (O(its pauses)),
    /// then the older records (usually none: each entry keeps its innermost
    /// pause; where one matches, its entry is found by a scan), then the
    /// innermost pauses of the entries below. Among the entries installed on
    /// this thread since the last resume, a pause's number lies between its
    /// entry's and the next entry's (a thread's numbers only grow, and an
    /// entry above a paused one was installed after the pause), so the one
    /// candidate is found by binary search, and none is looked for when the
    /// number is above the top's (a spent guard of a pause of the top
    /// entry, or of one gone: O(1)); entries that may have come from a
    /// resume are scanned.
    #[inline]
    fn locate_pause(&self, raw: u64) -> Option<(usize, usize)> {
        if let Some(later) = self.entries.top_pause(raw) {
            return Some((self.depth() - 1, later));
        }
        if self.entries.has_older_pause(raw) {
            return self.entries.find_pause(raw);
        }
        let is_it = |e: &Entry| e.innermost_pause().is_some_and(|p| p.raw() == raw);
        let (foreign, ordered) = self.by_number();
        let number = handle::number_if(raw, Tag::Pause);
        if let Some((top, below)) = ordered.split_last() {
            if number < top.number() {
                // The candidate: the last entry numbered below the pause.
                let at = below.partition_point(|e| e.number() < number);
                if let Some(at) = at.checked_sub(1).filter(|&at| is_it(&below[at])) {
                    return Some((foreign.len() + at, 0));
                }
            }
        }
        foreign.iter().rposition(is_it).map(|index| (index, 0))
    }

    /// Why the pause of the entry at `owner`, with `inner` later pauses of
    /// that entry, cannot end now, given `to`.
    #[cold]
    #[inline(never)]
    fn explain_unpause_at<R: Refusal>(&self, owner: usize, inner: usize, to: R) -> R::Out {
        let id = self.entries.as_slice()[owner].id();
        if owner + 1 == self.depth() && inner == 0 {
            // Its innermost pause, on top: refused only because the
            // restored borrow would not fit.
            return too_many_borrows(id, to);
        }
        if owner + 1 == self.depth() {
            to.refuse(
                Code::OutOfOrder,
                text!(
                    "pause guard of store {id} is not its innermost pause; unpause the {inner} \
                     later pause(s) first"
                ),
            )
        } else {
            to.refuse(
                Code::OutOfOrder,
                text!(
                    "pause guard for store {id} is at depth {}, top is store {} at depth {}",
                    owner + 1,
                    self.active_store(),
                    self.depth()
                ),
            )
        }
    }
}

/// Takes the top entry's borrow away, if it has one, for the pause whose
/// guard is `pause` (written to `raw`); answers its record.
#[inline(always)]
fn take_borrow(top: &mut Entry, pause: u64, raw: &mut u64) -> PauseRecord {
    let decremented = top.borrows > 0;
    top.borrows -= u32::from(decremented);
    *raw = pause;
    PauseRecord::new(*raw, decremented)
}

/// Gives the top entry back the borrow its pause `last` took, if `raw` is
/// that pause's guard and the borrow fits (the count may have reached its
/// limit while paused); `false`, nothing changed, otherwise.
#[inline(always)]
fn restore_borrow(top: &mut Entry, last: PauseRecord, raw: u64) -> bool {
    // Pause numbers are never 0, so comparing encodings is decoding.
    let Some(restore) = last.restores(raw) else {
        return false;
    };
    let Some(restored) = top
        .borrows
        .checked_add(restore)
        .filter(|n| *n <= crate::testing::borrow_limit())
    else {
        return false;
    };
    crate::testing::maybe_panic();
    top.borrows = restored;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::Segment;

    /// Every guard is located (entry, later pauses) as the full scan
    /// (`Entries::find_pause`) finds it, and every install guard's entry by
    /// number as a scan finds it.
    fn agree(s: &Stack, pauses: &[u64], installs: &[u64]) {
        for &raw in pauses {
            assert_eq!(
                s.locate_pause(raw),
                s.entries.find_pause(raw),
                "pause {raw:#x} on {}",
                s.describe()
            );
        }
        for &raw in installs {
            let number = handle::number_if(raw, Tag::Install);
            let scan = s
                .entries
                .as_slice()
                .iter()
                .rposition(|e| e.number() == number);
            assert_eq!(s.index_of_number(number), scan, "install {raw:#x}");
        }
    }

    /// The refusal paths find a pause or an entry without scanning the
    /// entries installed on this thread (numbers grow up the stack there),
    /// and scan those resumed from another thread, whose numbers need not:
    /// here a segment numbered after this thread's block sits below entries
    /// numbered from it, with pauses live, spent, nested and deeper on both
    /// sides.
    #[test]
    fn pauses_and_entries_are_found_as_a_scan_finds_them() {
        let mut s = Stack::new();
        let (mut pauses, mut installs) = (Vec::new(), Vec::new());
        installs.push(s.install(1, 0x10).unwrap());
        pauses.push(s.pause(1).unwrap());
        let spent = s.pause(1).unwrap();
        pauses.push(spent);
        s.unpause(spent).unwrap();
        installs.push(s.install(2, 0x20).unwrap());
        pauses.push(s.pause(2).unwrap());
        agree(&s, &pauses, &installs);

        // Another thread's entries, numbered later than this stack's block.
        let mut other = Stack::new();
        installs.push(other.install(10, 0x100).unwrap());
        pauses.push(other.pause(10).unwrap());
        installs.push(other.install(11, 0x110).unwrap());
        pauses.push(other.pause(11).unwrap());
        pauses.push(other.pause(11).unwrap()); // nested
        let mut seg = Segment::default();
        other.suspend_into(0, &mut seg).unwrap();
        s.resume_from(&mut seg).unwrap();
        agree(&s, &pauses, &installs);

        // Entries installed here after the resume: numbered below the
        // resumed ones (this stack's block is older).
        for id in 20..24u64 {
            installs.push(s.install(id, id as usize * 0x10).unwrap());
            pauses.push(s.pause(id).unwrap());
            let spent = s.pause(id).unwrap();
            pauses.push(spent);
            s.unpause(spent).unwrap();
            agree(&s, &pauses, &installs);
        }
        let nested = s.pause(23).unwrap();
        pauses.push(nested);
        agree(&s, &pauses, &installs);
        s.unpause(nested).unwrap();
        // Entries installed one on another (numbers a stride apart, found
        // at the distance their numbers give), and a spent guard among them.
        for id in 30..34u64 {
            installs.push(s.install(id, id as usize * 0x10).unwrap());
            agree(&s, &pauses, &installs);
        }
        let spent = s.install(34, 0x340).unwrap();
        s.uninstall(spent).unwrap();
        installs.push(spent);
        installs.push(s.install(35, 0x350).unwrap());
        agree(&s, &pauses, &installs);

        // Unwound, the guards go stale one entry at a time.
        while let Some(top) = s.top() {
            let id = top.id();
            while s.is_paused(id) || s.top().unwrap().is_paused() {
                let (_, raw) = pauses
                    .iter()
                    .filter_map(|&p| s.entries.top_pause(p).map(|k| (k, p)))
                    .min()
                    .unwrap();
                s.unpause(raw).unwrap();
                agree(&s, &pauses, &installs);
            }
            let g = *installs
                .iter()
                .find(|&&g| s.entries.top().unwrap().handle(Tag::Install) == g)
                .unwrap();
            s.uninstall(g).unwrap();
            agree(&s, &pauses, &installs);
        }
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

    /// A pause record keeps its guard and the borrow it took in one word:
    /// no guard one bit or one unit away from the real one is accepted,
    /// whether the pause took a borrow or not (the model-based test found
    /// `raw | 1` accepted by a first version).
    #[test]
    fn only_the_exact_guard_unpauses() {
        let mut s = Stack::new();
        let g = s.install(1, 0x10).unwrap();
        for borrowed in [false, true] {
            let b = borrowed.then(|| s.get_current(1).unwrap());
            let p = s.pause(1).unwrap();
            let before = s.describe();
            let near = (0..64)
                .map(|bit| p ^ (1 << bit))
                .chain([1, 2, 3, 4, 8].iter().flat_map(|d| [p + d, p - d]));
            for forged in near {
                assert!(s.unpause(forged).is_err(), "{forged:#x} (pause {p:#x})");
                assert_eq!(s.describe(), before);
            }
            s.unpause(p).unwrap();
            if let Some(b) = b {
                assert_eq!(s.top().unwrap().borrows, 1);
                s.borrow_release(b.raw).unwrap();
            }
        }
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
        assert!(s.entries.pauses().is_empty());
    }

    /// The issue-10 input: a borrow, a pause (count 0), borrows up to the
    /// limit, then unpause would wrap the count to 0: refused, nothing
    /// changed, and everything unwinds cleanly afterwards.
    #[test]
    fn unpause_is_refused_when_the_restored_borrow_would_not_fit() {
        let mut s = Stack::new();
        let g = s.install(1, 0x10).unwrap();
        let b = s.get_current(1).unwrap();
        let p = s.pause(1).unwrap();
        assert_eq!(s.top().unwrap().borrows, 0);
        s.entries.top_mut().unwrap().borrows = u32::MAX - 1; // as if taken one by one
        s.get_current(1).unwrap();
        assert!(matches!(s.get_current(1), Err(Error::InvalidArgument(_))));
        let before = s.describe();
        assert!(matches!(s.unpause(p), Err(Error::InvalidArgument(_))));
        assert_eq!(s.describe(), before, "a refused unpause changes nothing");
        assert!(matches!(
            s.get_current_unborrowed(),
            Err(Error::Borrowed(_))
        ));
        assert!(matches!(s.uninstall(g), Err(Error::StillBorrowed(_))));
        s.borrow_release(b.raw).unwrap();
        s.unpause(p).unwrap();
        assert_eq!(s.top().unwrap().borrows, u32::MAX);
        s.entries.top_mut().unwrap().borrows = 0;
        s.uninstall(g).unwrap();
    }
}
