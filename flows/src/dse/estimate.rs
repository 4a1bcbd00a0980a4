//! What the DSE estimates a unit by: its LUT/FF/DSP/BRAM, and the tiles a workload runs
//! as on an engine.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use tern_hdl::Config;
use tern_surrogate::workload::Workload;

/// LUT, FF, DSP and block RAM of a unit (or set aside for the rest of the accelerator:
/// `--reserve-*`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    pub luts: f64,
    pub ffs: f64,
    pub dsps: f64,
    pub brams: f64,
}

impl Resources {
    pub fn scaled(self, k: f64) -> Resources {
        Resources {
            luts: self.luts * k,
            ffs: self.ffs * k,
            dsps: self.dsps * k,
            brams: self.brams * k,
        }
    }
    pub fn plus(self, o: Resources) -> Resources {
        Resources {
            luts: self.luts + o.luts,
            ffs: self.ffs + o.ffs,
            dsps: self.dsps + o.dsps,
            brams: self.brams + o.brams,
        }
    }
    /// A block model's composed totals (`blocks::BLOCK_TARGETS` order).
    pub fn predicted(p: &tern_surrogate::blocks::BlockPrediction) -> Resources {
        Resources {
            luts: p.total[0],
            ffs: p.total[1],
            dsps: p.total[2],
            brams: p.total[3],
        }
    }
    pub fn of(u: &tern_build::synth::report::CellUsage) -> Resources {
        Resources {
            luts: u.luts as f64,
            ffs: u.ffs as f64,
            dsps: u.dsps as f64,
            brams: u.bram_blocks,
        }
    }
}

/// The engine config of a candidate with the workload fields set for one run.
pub fn with_workload(engine: &Config, m: usize, k: usize, tokens: usize) -> Result<Config> {
    let mut file = tern_hdl::config::ConfigFile {
        engine: engine.engine.clone(),
        workload: engine.workload.clone(),
        board: engine.board.clone(),
        top: engine.top.clone(),
    };
    file.workload.m = m;
    file.workload.k = k;
    file.workload.tokens = tokens;
    Ok(Config::validate(file, "dse candidate")?)
}

/// The tile an engine runs (its own M × K, one token) and how many tiles one decode
/// token takes, as `tern generate` cuts a model (`generate::TilePlan`): every matmul as
/// ceil(m / M) × ceil(k / K) zero-padded tiles.
pub fn tiles(engine: &Config, w: &Workload) -> Result<(Config, f64)> {
    let (tile_m, tile_k) = (engine.workload.m, engine.workload.k);
    let per_layer: usize = w
        .matmuls
        .iter()
        .map(|mm| mm.m.div_ceil(tile_m) * mm.k.div_ceil(tile_k) * mm.per_layer)
        .sum();
    let tile = with_workload(engine, tile_m, tile_k, 1)?;
    Ok((tile, (per_layer * w.layers) as f64))
}
