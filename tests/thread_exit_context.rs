//! Calls made while a thread exits, from other thread-local destructors:
//! before the thread's stack is dropped they see it, after it they are
//! answered `NoContext`, never handed the dropped stack (the initial-exec
//! pointer to it is cleared first). Thread-local destructors run in reverse
//! order of registration, so registering a probe before or after the stack's
//! first use puts its destructor after or before the stack's.

use std::cell::Cell;
use std::sync::mpsc::{channel, Sender};
use storectx::current;
use storectx::Error;

/// What a probe's destructor saw: the depth, or the error's text.
type Seen = Result<usize, String>;

struct Probe(Cell<Option<Sender<Seen>>>);

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(report) = self.0.take() {
            let seen = match current::with(|s| Ok(s.depth())) {
                Ok(depth) => Ok(depth),
                Err(Error::NoContext(m)) => Err(m),
                Err(e) => panic!("unexpected error at thread exit: {e}"),
            };
            report.send(seen).unwrap();
        }
    }
}

thread_local! {
    static PROBE: Probe = const { Probe(Cell::new(None)) };
}

fn install_one() {
    current::with(|s| s.install(7, 0x70).map(|_| ())).unwrap();
}

#[test]
fn a_destructor_running_after_the_stack_is_told_no_context() {
    let (report, seen) = channel();
    std::thread::spawn(move || {
        PROBE.with(|p| p.0.set(Some(report))); // registered first: dropped last
        install_one();
    })
    .join()
    .unwrap();
    let seen = seen.recv().unwrap();
    assert!(
        seen.as_ref().is_err_and(|m| m.contains("exiting")),
        "{seen:?}"
    );
}

#[test]
fn a_destructor_running_before_the_stack_still_sees_it() {
    let (report, seen) = channel();
    std::thread::spawn(move || {
        install_one();
        PROBE.with(|p| p.0.set(Some(report))); // registered second: dropped first
    })
    .join()
    .unwrap();
    assert_eq!(seen.recv().unwrap(), Ok(1));
}
