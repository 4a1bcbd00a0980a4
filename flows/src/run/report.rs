//! What both kinds of `tern run` print and write alike: the board line, wall-clock and
//! byte lines, and the output directory's `.npy` arrays and `run.json` (docs/files.md).

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

use tern_host::device::Traffic;
use tern_host::npy::{write, Dtype};
use tern_host::Device;

use crate::run::inputs::mb_per_s;

pub fn print_board(dev: &Device) {
    println!(
        "board      {} (design id {:08x})",
        dev.info().description,
        dev.info().design_id
    );
}

/// The operand that stays on the card across runs (weights, a KV cache): how it got
/// there, what it is, how long that took and its bytes.
pub struct Resident<'a> {
    pub action: &'a str,
    pub what: &'a str,
    pub time: Duration,
    pub bytes: u64,
}

/// The wall-clock line (opening, the resident operand, the run) and the bytes line (the
/// resident operand's, then the run's own `operand` and results).
pub fn print_wall_and_bytes(
    open: Duration,
    resident: &Resident,
    operand: &str,
    run_wall: Duration,
    traffic: &Traffic,
) {
    println!(
        "wall       open {:.1} ms, {} {:.1} ms, run {:.1} ms",
        open.as_secs_f64() * 1e3,
        resident.action,
        resident.time.as_secs_f64() * 1e3,
        run_wall.as_secs_f64() * 1e3
    );
    println!(
        "bytes      {} {} + {} {operand} to the card, {} results back ({:.1} MB/s over the run)",
        resident.bytes,
        resident.what,
        traffic.bytes_to_card,
        traffic.bytes_from_card,
        mb_per_s(traffic.bytes_to_card + traffic.bytes_from_card, run_wall)
    );
}

/// An int8 array as `.npy` (stored as int8).
pub fn write_i8(dir: &Path, name: &str, shape: &[usize], values: &[i8]) -> Result<()> {
    let wide: Vec<i64> = values.iter().map(|&b| i64::from(b)).collect();
    Ok(write(&dir.join(name), Dtype::I8, shape, &wide)?)
}

/// `run.json` beside the arrays.
pub fn write_record(dir: &Path, record: &impl Serialize) -> Result<()> {
    let path = dir.join("run.json");
    std::fs::write(&path, serde_json::to_string_pretty(record)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}
