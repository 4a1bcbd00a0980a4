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

/// The tile an engine runs (its own M × K, one token) and how many tiles one decode
/// token takes, as `tern generate` cuts a model (`generate::TilePlan`): every matmul as
/// ceil(m / M) × ceil(k / K) zero-padded tiles (`Config::tiles_for`).
pub fn tiles(engine: &Config, w: &Workload) -> Result<(Config, f64)> {
    let per_layer: usize = w
        .matmuls
        .iter()
        .map(|mm| {
            let (rows, columns) = engine.tiles_for(mm.m, mm.k);
            rows * columns * mm.per_layer
        })
        .sum();
    let tile = engine.with_workload(engine.workload.m, engine.workload.k, 1)?;
    Ok((tile, (per_layer * w.layers) as f64))
}
