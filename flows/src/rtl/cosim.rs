//! `tern cosim`: co-simulate a config against the golden model over many vector sets.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

use tern_hdl::{Config, Design, DesignConfig};
use tern_sim::cosim::attention::{self as attention_cosim, AttentionVectorKind, AttentionVectors};
use tern_sim::cosim::{cosimulate, drive, Stimulus, VectorKind, Vectors};
use tern_sim::verilator::ModelLibrary;

/// Which handshake pattern each vector set uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Handshakes {
    /// Always valid, always ready.
    Streaming,
    /// Random gaps in the inputs and stalls on the result.
    Bursty,
    /// Alternate the two.
    Mixed,
}

#[derive(Debug, Clone)]
pub struct CosimSummary {
    pub vector_sets: usize,
    pub outputs: usize,
    pub cycles: u64,
}

/// The vector kind of set `i`: every corner case first, then random.
pub fn kind_of(i: usize) -> VectorKind {
    VectorKind::ALL
        .get(i)
        .copied()
        .unwrap_or(VectorKind::Random)
}

/// The attention vector kind of set `i`: every corner case first, then Gaussian.
pub fn attention_kind_of(i: usize) -> AttentionVectorKind {
    AttentionVectorKind::ALL
        .get(i)
        .copied()
        .unwrap_or(AttentionVectorKind::Gaussian)
}

/// Vector sets that cover every corner case of the design's engine.
pub fn corner_cases(design: &Design) -> usize {
    match design.config {
        DesignConfig::Matmul(_) => VectorKind::ALL.len(),
        DesignConfig::Attention(_) => AttentionVectorKind::ALL.len(),
    }
}

/// Run `sets` vector sets (seeds `seed`, `seed+1`, ...); stops at the first mismatch.
pub fn run(
    design: &Design,
    library: &ModelLibrary,
    sets: usize,
    seed: u64,
    handshakes: Handshakes,
    waveforms: &Path,
) -> Result<CosimSummary> {
    let bar = ProgressBar::new(sets as u64).with_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} vector sets {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("cosim");
    let mut summary = CosimSummary {
        vector_sets: 0,
        outputs: 0,
        cycles: 0,
    };
    for i in 0..sets {
        let s = seed + i as u64;
        let stimulus = match handshakes {
            Handshakes::Streaming => Stimulus::STREAMING,
            Handshakes::Bursty => Stimulus::BURSTY,
            Handshakes::Mixed if i % 2 == 0 => Stimulus::STREAMING,
            Handshakes::Mixed => Stimulus::BURSTY,
        };
        let report = match &design.config {
            DesignConfig::Matmul(cfg) => {
                let vectors = Vectors::generate(cfg, kind_of(i), s);
                bar.set_message(format!("seed {s} {:?}", vectors.kind));
                cosimulate(design, library, &vectors, stimulus, s, waveforms)
            }
            DesignConfig::Attention(cfg) => {
                let vectors = AttentionVectors::generate(cfg, attention_kind_of(i), s);
                bar.set_message(format!("seed {s} {:?}", vectors.kind));
                attention_cosim::cosimulate(design, library, &vectors, stimulus, s, waveforms)
            }
        }
        .inspect_err(|_| bar.abandon())?;
        summary.vector_sets += 1;
        summary.outputs += report.outputs;
        summary.cycles += report.run.cycles;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// How busy the engine is on the config's workload with streaming handshakes: ideal
/// clocks `M·K·T/(P·Q·G)` over the clocks from the first weight beat to the last result.
/// (A resource share is synthesis's `Utilisation`, another thing.)
#[derive(Debug, Clone, Copy)]
pub struct EngineBusy {
    pub ideal: f64,
    pub measured: u64,
}

impl EngineBusy {
    pub fn ratio(&self) -> f64 {
        self.ideal / self.measured as f64
    }
}

pub fn engine_busy(cfg: &Config, library: &ModelLibrary, seed: u64) -> Result<EngineBusy> {
    let mut model = library.instantiate(None)?;
    let vectors = Vectors::generate(cfg, VectorKind::Random, seed);
    let run = drive(&mut model, cfg, &vectors, Stimulus::STREAMING, seed)?;
    Ok(EngineBusy {
        ideal: cfg.ideal_cycles(),
        measured: run.last_result - run.first_weight + 1,
    })
}
