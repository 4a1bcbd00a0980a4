//! The memory behind a simulated board: the DDR model a top runs against, from the
//! config's board (docs/top.md), with the performance model's latency.

use anyhow::{bail, Context, Result};

use tern_dse::performance::latency_clocks;
use tern_hdl::config::TopConfig;
use tern_hdl::{Config, DesignConfig};
use tern_sim::top_model::MemoryModel;

/// The `[top]` and board of either kind of config.
fn top_and_board(cfg: &DesignConfig) -> (&TopConfig, Option<&String>) {
    match cfg {
        DesignConfig::Matmul(c) => (&c.top, c.board.as_ref()),
        DesignConfig::Attention(c) => (&c.top, c.board.as_ref()),
    }
}

/// The simulated board's memory for `cfg`: its size from `top.memory_mib`, bandwidth at
/// the board's clock and the latency and reads in flight of the board file's `[memory]` (no board: a
/// memory that keeps up with any bus). The description says which.
pub fn memory_model(cfg: &Config) -> Result<(MemoryModel, String)> {
    memory_model_for(&DesignConfig::Matmul(cfg.clone()))
}

/// [`memory_model`] for either kind of config.
pub fn memory_model_for(cfg: &DesignConfig) -> Result<(MemoryModel, String)> {
    let (top, board) = top_and_board(cfg);
    let bytes = top.memory_bytes();
    let Some(name) = board else {
        return Ok((
            MemoryModel::ideal(bytes),
            "ideal memory (the config names no board)".into(),
        ));
    };
    let board = tern_boards::Board::resolve(name).with_context(|| format!("board `{name}`"))?;
    if bytes > board.memory.bytes {
        bail!(
            "top.memory_mib = {} is more than the {} bytes of {} on {}",
            top.memory_mib,
            board.memory.bytes,
            board.memory.kind,
            board.name
        );
    }
    let mhz = board.clock.default_mhz;
    let model = MemoryModel {
        bytes,
        bytes_per_clock: board.memory.gbyte_per_s * 1e3 / mhz,
        latency_clocks: latency_clocks(&board.memory, mhz) as u32,
        max_reads: board.memory.reads_in_flight,
        stall_percent: 0,
        seed: 1,
    };
    let text = format!(
        "{} model: {:.1} GB/s = {:.1} B/clock at {mhz} MHz, {} clocks ({} ns, assumed) latency",
        board.memory.kind,
        board.memory.gbyte_per_s,
        model.bytes_per_clock,
        model.latency_clocks,
        board.memory.latency_ns
    );
    Ok((model, text))
}
