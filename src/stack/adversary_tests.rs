//! Adversarial model test of the 0.3 stack layout: random operations on two
//! stacks and a pool of suspended segments, with store ids chosen to collide
//! in the store set (their Fibonacci hash is `k` or `2^64 - k`: every one
//! homes to the table's first or last slot, so probe runs wrap and
//! interleave), nested entries, async entries, borrows and nested pauses,
//! suspend at any base, resumes that clash and resumes that do not, and
//! segments dropped unresumed. After every step both stacks' invariants
//! (`Entries::check`: cached top, one set member per store, topmost entry
//! found from the set's index) and a plain model (ids, kinds, borrow
//! counts, every entry's pauses with the borrow each took, decoded from the
//! innermost record kept in the entry and the older ones chained in the
//! record vector by `Entries::pause_lists`, is_paused of every id) must
//! agree. Deep enough to cross the entry vector's quarter-step
//! growths (16, 20, 24, ...) and the store set's doublings many times.

use super::{Segment, Stack};
use crate::async_store::{AsyncStore, StoreRef};
use crate::error::Error;

#[derive(Debug, Clone)]
struct MEntry {
    id: u64,
    guard: u64,
    is_async: bool,
    borrows: u32,
    borrow: Option<u64>,
    /// (pause guard, took a borrow)
    pauses: Vec<(u64, bool)>,
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn inverse(c: u64) -> u64 {
    let mut x = c;
    for _ in 0..6 {
        x = x.wrapping_mul(2u64.wrapping_sub(c.wrapping_mul(x)));
    }
    x
}

fn kind(e: &Error) -> &'static str {
    e.info().name
}

fn compare(s: &Stack, m: &[MEntry], pool: &[u64], step: usize) {
    s.entries.check();
    let slice = s.entries.as_slice();
    assert_eq!(slice.len(), m.len(), "step {step}: depth");
    let pauses = s.entries.pause_lists();
    for (k, ((e, me), p)) in slice.iter().zip(m).zip(&pauses).enumerate() {
        assert_eq!(
            (e.id(), e.is_async(), e.borrows, e.is_paused()),
            (me.id, me.is_async, me.borrows, !me.pauses.is_empty()),
            "step {step}: entry {k}"
        );
        // Each entry's pauses, oldest first, with the borrow each took.
        assert_eq!(p, &me.pauses, "step {step}: pause records of entry {k}");
    }
    let top = m.last().map(|e| e.id);
    for &id in pool {
        let present = m.iter().any(|e| e.id == id);
        assert_eq!(
            s.is_paused(id),
            present && top != Some(id),
            "step {step}: is_paused({id:#x})"
        );
    }
}

#[test]
fn random_operations_on_colliding_ids_agree_with_a_model() {
    let cinv = inverse(0x9E37_79B9_7F4A_7C15);
    let mut pool: Vec<u64> = Vec::new();
    for k in 1..=20u64 {
        pool.push(k.wrapping_mul(cinv));
        pool.push(0u64.wrapping_sub(k).wrapping_mul(cinv));
    }
    pool.extend(1..=6u64);
    let asyncs: Vec<StoreRef> = (0..4)
        .map(|k| AsyncStore::new(pool[k * 7 + 1], 0xa000 + k).unwrap())
        .collect();
    let mut stacks = [Stack::new(), Stack::new()];
    let mut models: [Vec<MEntry>; 2] = [Vec::new(), Vec::new()];
    let mut segments: Vec<(Segment, Vec<MEntry>)> = Vec::new();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    // Under Miri (~1000x slower) a short run (60 steps took 39 s there).
    let steps = if cfg!(miri) { 30 } else { 60_000 };
    let mut deepest = 0;
    for step in 0..steps {
        deepest = deepest.max(models[0].len()).max(models[1].len());
        let t = rng.below(2);
        let (s, m) = (&mut stacks[t], &mut models[t]);
        // Every third phase of 2,000 steps grows the stacks (no uninstall,
        // no drop of segments): past the 64, 80, ... 320 growth steps.
        let op = rng.below(100);
        let growing = (step / 2000) % 3 == 0;
        let op = if growing && ((40..=54).contains(&op) || (78..=87).contains(&op)) {
            rng.below(35)
        } else {
            op
        };
        match op {
            // install (often the store on top again: nested, deep stacks)
            0..=34 => {
                let id = if rng.below(if growing { 2 } else { 3 }) == 0 && !m.is_empty() {
                    m.last().unwrap().id
                } else {
                    pool[rng.below(pool.len())]
                };
                let r = s.install(id, id as usize);
                let top = m.last().map(|e| (e.id, e.is_async));
                match top {
                    Some((tid, true)) if tid == id => {
                        assert!(r.is_ok(), "step {step}: no-op install {r:?}")
                    }
                    Some((tid, false)) if tid == id => m.push(MEntry {
                        id,
                        guard: r.unwrap(),
                        is_async: false,
                        borrows: 0,
                        borrow: None,
                        pauses: Vec::new(),
                    }),
                    _ if m.iter().any(|e| e.id == id) => {
                        assert_eq!(kind(&r.unwrap_err()), "STORECTX_ERR_PAUSED", "step {step}")
                    }
                    _ => m.push(MEntry {
                        id,
                        guard: r.unwrap(),
                        is_async: false,
                        borrows: 0,
                        borrow: None,
                        pauses: Vec::new(),
                    }),
                }
            }
            // install_async
            35..=39 => {
                let a = &asyncs[rng.below(asyncs.len())];
                if let Ok(g) = a.try_write() {
                    let present = m.iter().any(|e| e.id == a.id());
                    match s.install_async(g) {
                        Ok(raw) => {
                            assert!(!present, "step {step}");
                            m.push(MEntry {
                                id: a.id(),
                                guard: raw,
                                is_async: true,
                                borrows: 0,
                                borrow: None,
                                pauses: Vec::new(),
                            });
                        }
                        Err((e, _)) => {
                            assert!(present, "step {step}: {e:?}");
                            assert_eq!(kind(&e), "STORECTX_ERR_ALREADY_ON_STACK");
                        }
                    }
                }
            }
            // uninstall the top, or a random guard
            40..=54 => {
                if m.is_empty() {
                    continue;
                }
                let k = if rng.below(4) == 0 {
                    rng.below(m.len())
                } else {
                    m.len() - 1
                };
                let r = s.uninstall(m[k].guard);
                if k + 1 == m.len() && m[k].borrows == 0 {
                    r.unwrap();
                    m.pop();
                } else {
                    let want = if k + 1 == m.len() {
                        "STORECTX_ERR_STILL_BORROWED"
                    } else {
                        "STORECTX_ERR_OUT_OF_ORDER"
                    };
                    assert_eq!(kind(&r.unwrap_err()), want, "step {step}");
                }
            }
            // borrow / release
            55..=64 => {
                let Some(e) = m.last_mut() else { continue };
                if rng.below(2) == 0 {
                    let b = s.get_current(e.id).unwrap();
                    e.borrows += 1;
                    e.borrow = Some(b.raw);
                } else if let Some(b) = e.borrow {
                    let r = s.borrow_release(b);
                    if e.borrows > 0 {
                        r.unwrap();
                        e.borrows -= 1;
                    } else {
                        assert_eq!(kind(&r.unwrap_err()), "STORECTX_ERR_NOT_BORROWED");
                    }
                }
            }
            // pause / unpause (sometimes the wrong one)
            65..=77 => {
                let Some(e) = m.last_mut() else { continue };
                if rng.below(2) == 0 || e.pauses.is_empty() {
                    let raw = s.pause(e.id).unwrap();
                    let took = e.borrows > 0;
                    e.borrows -= u32::from(took);
                    e.pauses.push((raw, took));
                } else {
                    let k = if rng.below(3) == 0 {
                        rng.below(e.pauses.len())
                    } else {
                        e.pauses.len() - 1
                    };
                    let r = s.unpause(e.pauses[k].0);
                    if k + 1 == e.pauses.len() {
                        r.unwrap();
                        let (_, took) = e.pauses.pop().unwrap();
                        e.borrows += u32::from(took);
                    } else {
                        assert_eq!(kind(&r.unwrap_err()), "STORECTX_ERR_OUT_OF_ORDER");
                    }
                }
            }
            // suspend at a random base
            78..=87 => {
                let base = rng.below(m.len() + 1);
                let mut seg = Segment::default();
                s.suspend_into(base, &mut seg).unwrap();
                let moved = m.split_off(base);
                assert_eq!(seg.len(), moved.len());
                segments.push((seg, moved));
            }
            // resume a random segment (clashes refused, nothing changed)
            88..=96 => {
                if segments.is_empty() {
                    continue;
                }
                let k = rng.below(segments.len());
                let clash = segments[k].1.iter().any(|e| m.iter().any(|x| x.id == e.id));
                let r = s.resume_from(&mut segments[k].0);
                if clash {
                    assert_eq!(kind(&r.unwrap_err()), "STORECTX_ERR_ALREADY_ON_STACK");
                    assert_eq!(segments[k].0.len(), segments[k].1.len());
                } else {
                    assert_eq!(r.unwrap(), m.len(), "step {step}");
                    let (_, moved) = segments.swap_remove(k);
                    m.extend(moved);
                }
            }
            // drop a segment (a cancelled coroutine)
            _ => {
                if !segments.is_empty() {
                    let k = rng.below(segments.len());
                    let (mut seg, _) = segments.swap_remove(k);
                    seg.clear();
                }
            }
        }
        let every = if cfg!(miri) { 3 } else { 7 };
        if step % every == 0 {
            for t in 0..2 {
                compare(&stacks[t], &models[t], &pool, step);
            }
        }
    }
    for t in 0..2 {
        compare(&stacks[t], &models[t], &pool, steps);
        stacks[t].clear();
    }
    segments.clear();
    for a in &asyncs {
        assert!(!a.is_locked(), "every lock released");
    }
    println!("deepest stack: {deepest} entries");
}
