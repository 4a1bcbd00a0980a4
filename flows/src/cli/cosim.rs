//! `tern cosim`: co-simulate the RTL under Verilator against the golden model, bit for bit.

use anyhow::Result;
use std::path::PathBuf;

use tern_hdl::{generate_any, DesignConfig};
use tern_sim::verilator::ModelCache;

use crate::rtl::cosim::{self, Handshakes};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// Vector sets: the corner cases first, then random ones.
    #[arg(long, default_value_t = 8)]
    pub vectors: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = Handshakes::Mixed)]
    pub handshakes: Handshakes,
    /// Where a waveform is written on a mismatch.
    #[arg(long, default_value = "build/waveforms")]
    pub waveforms: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        vectors,
        seed,
        handshakes,
        waveforms,
    } = a;
    let cfg = DesignConfig::from_path(&config)?;
    let design = generate_any(&cfg)?;
    let library = ModelCache::default().load(&design)?;
    let s = cosim::run(&design, &library, vectors, seed, handshakes, &waveforms)?;
    println!(
        "PASS: {} vector sets, {} outputs bit-exact against the golden model ({} clocks simulated)",
        s.vector_sets, s.outputs, s.cycles
    );
    Ok(())
}
