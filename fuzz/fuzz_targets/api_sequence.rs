//! libFuzzer target: the input's bytes are the choices of one call sequence
//! (the same generator and the same reference model as
//! tests/model_based.rs, included below), run through the real C ABI on
//! worker threads and compared with the model after every call. A
//! disagreement panics with the sequence so far; ASan (cargo fuzz's
//! default) catches memory errors on the way.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

use model::source::Bytes;
use model::{run_sequence, Config, Stats};

/// At most this many generated calls per input (the input's length usually
/// ends the sequence first).
const MAX_CALLS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let mut src = Bytes::new(data);
    let mut cfg = Config::draw(&mut src, MAX_CALLS);
    cfg.calls = MAX_CALLS;
    let mut stats = Stats::default();
    if let Err(failure) = run_sequence(&mut src, &cfg, &mut stats, false) {
        panic!("storectx api_sequence: {failure}");
    }
});
