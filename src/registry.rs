//! Validated handles for heap objects that C hands back to us and may misuse
//! (double resume, release after consumption, a freed handle): write guards
//! and suspended segments live in slots of a process-wide table and C holds
//! `generation | index`, never an address. A handle whose slot has moved on
//! answers `STALE_HANDLE` instead of touching freed memory.
//!
//! Slots are allocated in chunks that are never freed (type-stable memory),
//! and a slot's value keeps its capacity between uses.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::OnceLock;

const CHUNK: usize = 1024;
const MAX_CHUNKS: usize = 4096;
/// Marks a handle so that it can never look like NULL or a small integer.
const MARK: u64 = 1 << 63;
/// A slot whose generation reaches this is retired, never reused.
const LAST_GENERATION: u32 = (1 << 31) - 1;

struct Slot<T> {
    generation: u32,
    live: bool,
    value: T,
}

/// `CHUNK` slots, allocated on first use and never freed.
type Chunk<T> = OnceLock<Box<[Mutex<Slot<T>>]>>;

/// A table of `T`s addressed by generation-checked handles.
pub struct Registry<T> {
    what: &'static str,
    chunks: [Chunk<T>; MAX_CHUNKS],
    free: Mutex<FreeList>,
}

struct FreeList {
    reusable: Vec<u32>,
    fresh: u32,
}

fn encode(index: u32, generation: u32) -> u64 {
    MARK | (u64::from(generation) << 32) | u64::from(index)
}

fn decode(handle: u64) -> Option<(u32, u32)> {
    (handle & MARK != 0).then_some((handle as u32, ((handle & !MARK) >> 32) as u32))
}

impl<T: Default> Registry<T> {
    /// An empty table of `what`s (named in error messages).
    pub const fn new(what: &'static str) -> Self {
        Registry {
            what,
            chunks: [const { OnceLock::new() }; MAX_CHUNKS],
            free: Mutex::new(FreeList {
                reusable: Vec::new(),
                fresh: 0,
            }),
        }
    }

    fn slot(&self, index: u32) -> Option<&Mutex<Slot<T>>> {
        let index = index as usize;
        self.chunks.get(index / CHUNK)?.get()?.get(index % CHUNK)
    }

    fn allocate(&self) -> Result<u32> {
        let mut free = self.free.lock();
        if let Some(index) = free.reusable.pop() {
            return Ok(index);
        }
        let index = free.fresh;
        let chunk = self.chunks.get(index as usize / CHUNK).ok_or_else(|| {
            Error::Exhausted(format!(
                "{} live {}s: the table is full; free some first",
                CHUNK * MAX_CHUNKS,
                self.what
            ))
        })?;
        chunk.get_or_init(|| {
            (0..CHUNK)
                .map(|_| {
                    Mutex::new(Slot {
                        generation: 0,
                        live: false,
                        value: T::default(),
                    })
                })
                .collect()
        });
        free.fresh += 1;
        Ok(index)
    }

    fn recycle(&self, index: u32) {
        self.free.lock().reusable.push(index);
    }

    /// Fills a free slot with `fill` and answers its handle. If `fill`
    /// fails, the slot goes back unused.
    pub fn insert_with<R>(&self, fill: impl FnOnce(&mut T) -> Result<R>) -> Result<(u64, R)> {
        let index = self.allocate()?;
        let mut slot = self.slot(index).expect("allocated slots exist").lock();
        match fill(&mut slot.value) {
            Ok(r) => {
                slot.live = true;
                crate::valgrind::release(std::ptr::from_ref(&*slot).cast());
                Ok((encode(index, slot.generation), r))
            }
            Err(e) => {
                drop(slot);
                self.recycle(index);
                Err(e)
            }
        }
    }

    /// Runs `f` on the live value named by `handle`.
    pub fn with_live<R>(&self, handle: u64, f: impl FnOnce(&mut T) -> R) -> Result<R> {
        let (index, generation) = decode(handle).ok_or_else(|| self.stale())?;
        let mut slot = self.slot(index).ok_or_else(|| self.stale())?.lock();
        if !slot.live || slot.generation != generation {
            return Err(self.stale());
        }
        crate::valgrind::acquire(std::ptr::from_ref(&*slot).cast());
        Ok(f(&mut slot.value))
    }

    /// Runs `consume` on the live value named by `handle`; if it succeeds
    /// the handle is spent (every later use is `STALE_HANDLE`). `consume`
    /// must leave the value empty on success.
    pub fn take_with<R>(
        &self,
        handle: u64,
        consume: impl FnOnce(&mut T) -> Result<R>,
    ) -> Result<R> {
        let (index, generation) = decode(handle).ok_or_else(|| self.stale())?;
        let mut slot = self.slot(index).ok_or_else(|| self.stale())?.lock();
        if !slot.live || slot.generation != generation {
            return Err(self.stale());
        }
        crate::valgrind::acquire(std::ptr::from_ref(&*slot).cast());
        let r = consume(&mut slot.value)?;
        slot.live = false;
        slot.generation += 1;
        let retired = slot.generation == LAST_GENERATION;
        drop(slot);
        if !retired {
            self.recycle(index);
        }
        Ok(r)
    }

    #[cold]
    fn stale(&self) -> Error {
        Error::StaleHandle(format!(
            "this {} handle was already consumed or released, or was never valid",
            self.what
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: Registry<Vec<u32>> = Registry::new("test object");

    #[test]
    fn handles_are_checked_and_never_alias() {
        let (h1, ()) = TABLE
            .insert_with(|v| {
                v.push(1);
                Ok(())
            })
            .unwrap();
        assert_ne!(h1, 0);
        assert_eq!(TABLE.with_live(h1, |v| v.clone()).unwrap(), vec![1]);
        TABLE
            .take_with(h1, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
        assert!(matches!(
            TABLE.take_with(h1, |_| Ok(())),
            Err(Error::StaleHandle(_))
        ));
        // The slot is reused under a new generation: the old handle stays dead.
        let (h2, ()) = TABLE
            .insert_with(|v| {
                v.push(2);
                Ok(())
            })
            .unwrap();
        assert_ne!(h1, h2);
        assert!(TABLE.with_live(h1, |_| ()).is_err());
        assert!(TABLE.with_live(0, |_| ()).is_err());
        assert!(TABLE.with_live(u64::MAX, |_| ()).is_err());
        TABLE
            .take_with(h2, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn failed_fill_and_failed_consume_change_nothing() {
        let err = TABLE.insert_with(|_| Err::<(), _>(Error::Busy("no".into())));
        assert!(err.is_err());
        let (h, ()) = TABLE
            .insert_with(|v| {
                v.push(3);
                Ok(())
            })
            .unwrap();
        assert!(TABLE
            .take_with(h, |_| Err::<(), _>(Error::Busy("no".into())))
            .is_err());
        assert_eq!(TABLE.with_live(h, |v| v.len()).unwrap(), 1);
        TABLE
            .take_with(h, |v| {
                v.clear();
                Ok(())
            })
            .unwrap();
    }
}
