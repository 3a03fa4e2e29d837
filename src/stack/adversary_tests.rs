//! Adversarial model test of the 0.3 stack layout: random operations on two
//! stacks and a pool of suspended segments, with store ids chosen to collide
//! in the store set (the test fixes the tables' multiplier to
//! 0x9E3779B97F4A7C15, each table drawing its own otherwise, and under it
//! their hash is `k` or `2^64 - k`: every one homes to the table's first or
//! last slot, so probe runs wrap and interleave), nested entries, async entries, borrows and nested pauses,
//! suspend at any base, resumes that clash and resumes that do not, and
//! segments dropped unresumed. After every step both stacks' invariants
//! (`Entries::check`: cached top, one set member per store, topmost entry
//! found from the set's index) and a plain model (ids, kinds, borrow
//! counts, every entry's pauses with the borrow each took, decoded from the
//! innermost record kept in the entry and the older ones chained in the
//! record vector by `Entries::pause_lists`, is_paused of every id) must
//! agree. Deep enough to cross the entry vector's quarter-step
//! growths (16, 20, 24, ...) and the store set's doublings many times.

use super::handle::{self, Tag};
use super::{BorrowHandle, Segment, Stack};
use crate::async_store::{AsyncStore, StoreRef};
use crate::error::{AsError, Code, Error};

#[derive(Debug, Clone)]
struct MEntry {
    id: u64,
    guard: u64,
    is_async: bool,
    /// The no-op guard an install on this async entry answered, if any.
    noop: Option<u64>,
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

pub(crate) fn inverse(c: u64) -> u64 {
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

/// Every refusal of a handle of `m`'s entries names the entry at its
/// depth, as a scan of the model finds it (uninstall of an install or
/// no-op guard, borrow release, unpause below the top: `OUT_OF_ORDER` with
/// "at depth D"; the top's pauses but the innermost: `OUT_OF_ORDER`), and
/// every guard of an entry elsewhere (the other stack, a segment, gone) is
/// `STALE_HANDLE`: the refusal paths' guesses, searches by number and
/// "stale at once" shortcuts against the plain answer.
fn names_every_handle(s: &Stack, m: &[MEntry], elsewhere: impl Iterator<Item = u64>, step: usize) {
    let depth = m.len();
    let top_id = m.last().map_or(0, |e| e.id);
    for (k, e) in m.iter().enumerate() {
        let at = format!(
            "for store {} is at depth {}, top is store {top_id} at depth {depth}",
            e.id,
            k + 1
        );
        let out_of_order = |r: Option<Error>, what: &str| {
            let r = r.unwrap_or_else(|| panic!("step {step}: {what} of entry {k} not refused"));
            assert_eq!(
                r.code(),
                Code::OutOfOrder,
                "step {step}: {what} of entry {k}: {r}"
            );
            assert!(
                r.to_string().ends_with(&at),
                "step {step}: {what}: {r} (want ...{at})"
            );
        };
        if k + 1 < depth {
            for guard in [e.guard].into_iter().chain(e.noop) {
                out_of_order(s.uninstall_refusal(guard, AsError), "uninstall");
            }
            if let Some(b) = e.borrow {
                let number = handle::decode(b, Tag::Borrow);
                out_of_order(
                    Some(s.explain_handle::<BorrowHandle, _>(number, AsError)),
                    "borrow release",
                );
            }
            for &(p, _) in &e.pauses {
                out_of_order(Some(s.explain_unpause(p, AsError)), "unpause");
            }
        } else {
            let r = s.uninstall_refusal(e.guard, AsError);
            assert_eq!(
                r.map(|r| r.code()),
                (e.borrows != 0).then_some(Code::StillBorrowed),
                "step {step}: the top's guard"
            );
            if let Some(noop) = e.noop {
                assert!(
                    s.uninstall_refusal(noop, AsError).is_none(),
                    "step {step}: no-op"
                );
            }
            for &(p, _) in e.pauses.iter().rev().skip(1) {
                let r = s.explain_unpause(p, AsError);
                assert_eq!(r.code(), Code::OutOfOrder, "step {step}: {r}");
            }
        }
    }
    for guard in elsewhere {
        let r = s.uninstall_refusal(guard, AsError);
        let code = r.map(|r| r.code());
        assert_eq!(
            code,
            Some(Code::StaleHandle),
            "step {step}: guard {guard:#x} elsewhere"
        );
    }
}

/// What uninstall of `raw` must answer on a stack modelled by `m`, found
/// by a plain scan: `None` where it pops or does nothing (the top's own
/// guard unborrowed, the no-op guard of the async entry on top), else the
/// code and, for `OUT_OF_ORDER`, the entry's index.
fn uninstall_oracle(m: &[MEntry], raw: u64) -> Option<(Code, usize)> {
    let Some(top) = m.last() else {
        return Some((Code::StaleHandle, 0));
    };
    if raw == top.guard {
        return (top.borrows != 0).then_some((Code::StillBorrowed, m.len() - 1));
    }
    for (k, e) in m.iter().enumerate().rev() {
        let noop = e.is_async && raw == handle::rebase(e.guard, Tag::NoopInstall);
        if raw == e.guard || noop {
            return (k + 1 != m.len()).then_some((Code::OutOfOrder, k));
        }
    }
    Some((Code::StaleHandle, 0))
}

/// Values near the stack's guards (and the others given) and random ones,
/// given to uninstall's refusal: the same answer as [`uninstall_oracle`]'s
/// scan, the entry named at its depth.
fn forged_guards_answer_as_a_scan(
    s: &Stack,
    m: &[MEntry],
    others: &[u64],
    rng: &mut Rng,
    step: usize,
) {
    for _ in 0..64 {
        let pick = rng.below(m.len() + others.len() + 1);
        let base = match pick {
            p if p < m.len() => m[p].guard,
            p if p < m.len() + others.len() => others[p - m.len()],
            _ => rng.next(),
        };
        let raw = match rng.below(5) {
            0 => base.wrapping_add(rng.below(161) as u64),
            1 => base.wrapping_sub(rng.below(161) as u64),
            2 => (base & !7) | rng.below(8) as u64,
            3 => base ^ (1 << rng.below(64)),
            _ => base,
        };
        let got = s.uninstall_refusal(raw, AsError);
        let want = uninstall_oracle(m, raw);
        assert_eq!(
            got.map(|e| e.code()),
            want.map(|w| w.0),
            "step {step}: uninstall({raw:#x}): {got:?}"
        );
        if let (Some(e), Some((Code::OutOfOrder, k))) = (got, want) {
            let at = format!("is at depth {}, top is store", k + 1);
            assert!(e.to_string().contains(&at), "step {step}: {e} (want {at})");
        }
    }
}

#[test]
fn random_operations_on_colliding_ids_agree_with_a_model() {
    let redraws = run_model(0x5eed_1234_abcd_ef01, false);
    assert_eq!(redraws, [0; 3], "a fixed multiplier never redraws");
}

/// The model test with the tables' redraw at work: before a quarter of the
/// steps, a stack with a table is given the Fibonacci multiplier again
/// (`Entries::force_multiplier`, its ids re-inserted: under it the pool's
/// ids pile up at the table's first and last slots, so that the 11th id
/// pushed onto a pile of 32 slots probes far) with 0 to `MAX_REDRAWS`
/// redraws left. Pushes then go far on every path that pushes (install,
/// install_async, right at the entry vector's capacity, on top of async
/// entries, borrows, pauses and resumed segments) and are taken after one
/// or more redraws, or at once where none is left (and on tables a growth
/// made, fixed: none); segments suspended before a redraw are resumed
/// after it with unbounded inserts. `Entries::check` then verifies that
/// each entry's recorded slot holds its id, reachable from its home, with
/// its own index (what its pop clears and a refusal names), besides the
/// model's answers.
#[test]
fn random_operations_agree_with_a_model_while_far_pushes_redraw() {
    let [sync, not_room, async_] = run_model(0x0dd5_eed5_7a11_0001, true);
    println!("installs that redrew: {sync} sync ({not_room} at capacity), {async_} async");
    if !cfg!(miri) {
        assert!(sync >= 300 && not_room >= 1 && async_ >= 5);
    }
}

/// The random operations of the model tests; with `force`, a quarter of
/// the steps give a stack's table the piling multiplier (see the test
/// above). Answers how many installs redrew their stack's multiplier:
/// sync ones, those of them made at the entry vector's capacity, async ones.
fn run_model(seed: u64, force: bool) -> [usize; 3] {
    use super::store_set::MAX_REDRAWS;
    let fib = 0x9E37_79B9_7F4A_7C15u64;
    // Tables made from now on hash with this multiplier (each would draw
    // its own otherwise), so that the ids below collide in every table:
    // the multiplier is left fixed, for tables this test's stacks make
    // later (other tests' tables, fixed too, only lose their spread).
    crate::testing::fix_hash_multiplier(0x9E37_79B9_7F4A_7C15);
    let cinv = inverse(0x9E37_79B9_7F4A_7C15);
    let mut pool: Vec<u64> = Vec::new();
    // (Forced: more ids per pile, so that pushes go far at every depth.)
    for k in 1..=if force { 40 } else { 20u64 } {
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
    let mut rng = Rng(seed);
    // The forcing's own sequence (the operations' stays as it was).
    let mut force_rng = Rng(0x7ab1_e5ee_d000_0001);
    let mut redraws = [0; 3];
    // The forged values' own sequence (the operations' stays as it was).
    let mut forge_rng = Rng(0xf0f0_5eed_0dd5_1234);
    // Handles of entries gone (popped, dropped in a segment): stale for good.
    let mut spent: Vec<u64> = Vec::new();
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
        // Before a quarter of the steps, and before every install_async
        // or install at the vector's capacity, the piling multiplier.
        let had_room = s.entries.has_room();
        let push_to_watch = (35..=39).contains(&op) || (op < 35 && !had_room);
        if force
            && (push_to_watch || force_rng.below(4) == 0)
            && s.entries.present().capacity() != 0
        {
            let left = force_rng.below(MAX_REDRAWS as usize + 1) as u32;
            s.entries.force_multiplier(fib, left);
            s.entries.check();
        }
        // The table's draw before the step: an install that leaves the same
        // table (no growth) with fewer redraws left redrew.
        let before = (
            s.entries.present().capacity(),
            s.entries.present().draw_state(),
        );
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
                        let noop = r.unwrap_or_else(|e| panic!("step {step}: no-op install {e:?}"));
                        m.last_mut().unwrap().noop = Some(noop);
                    }
                    Some((tid, false)) if tid == id => m.push(MEntry {
                        id,
                        guard: r.unwrap(),
                        is_async: false,
                        noop: None,
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
                        noop: None,
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
                                noop: None,
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
                    let gone = m.pop().unwrap();
                    spent.push(gone.guard);
                    spent.extend(gone.noop);
                    spent.extend(gone.borrow);
                    spent.extend(gone.pauses.iter().map(|p| p.0));
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
                    let (mut seg, gone) = segments.swap_remove(k);
                    seg.clear();
                    spent.extend(gone.iter().map(|e| e.guard));
                }
            }
        }
        let s = &stacks[t];
        let after = (
            s.entries.present().capacity(),
            s.entries.present().draw_state(),
        );
        if after.0 == before.0 && after.1 .1 < before.1 .1 {
            assert!(op < 40, "step {step}: only a push redraws (op {op})");
            redraws[if op < 35 { 0 } else { 2 }] += 1;
            redraws[1] += usize::from(op < 35 && !had_room);
            assert_ne!(after.1 .0, fib, "step {step}: a redraw draws");
            // A redraw runs on the full path only, and leaves the push
            // taken or refused as the model says (checked above): the
            // stack is whole at once.
            s.entries.check();
        }
        let every = if cfg!(miri) { 3 } else { 7 };
        if step % every == 0 {
            for t in 0..2 {
                compare(&stacks[t], &models[t], &pool, step);
            }
        }
        if step % (every * 7) == 0 {
            for t in 0..2 {
                let elsewhere = models[1 - t]
                    .iter()
                    .chain(segments.iter().flat_map(|(_, m)| m))
                    .flat_map(|e| [e.guard].into_iter().chain(e.noop))
                    .chain(spent.iter().copied().rev().take(200));
                let elsewhere: Vec<u64> = elsewhere.collect();
                names_every_handle(&stacks[t], &models[t], elsewhere.iter().copied(), step);
                forged_guards_answer_as_a_scan(
                    &stacks[t],
                    &models[t],
                    &elsewhere,
                    &mut forge_rng,
                    step,
                );
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
    redraws
}
