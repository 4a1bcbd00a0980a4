//! Helpers the engine tests share: where waveforms go, and what a reported mismatch must
//! carry.

use std::path::PathBuf;

use tern_sim::cosim::CosimError;

/// Where the harness writes the waveform of a failing run.
pub fn waveforms() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms")
}

/// A deliberately broken design was caught: `err` is a mismatch whose message names
/// every one of `needles` (the seed, the config, the first differing output) and whose
/// waveform is a VCD on disk with the result stream in it.
pub fn assert_mismatch_reported(err: CosimError, needles: &[&str]) {
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "`{needle}` not in: {text}");
    }
    let CosimError::Mismatch(m) = err else {
        panic!("not a mismatch: {text}")
    };
    let vcd = m.waveform.expect("a waveform is written");
    let dump = std::fs::read_to_string(&vcd).unwrap();
    assert!(
        dump.contains("res_data") && dump.contains('#'),
        "not a VCD: {}",
        vcd.display()
    );
}
