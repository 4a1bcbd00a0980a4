//! `tern area`: measure TLMM against the adder-tree baseline at equal weights/clock (G = 2..5,
//! 128 to 1024 weights/clock, whole engines).

use anyhow::Result;
use std::path::PathBuf;

use super::options::{ExecArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Where the table, plots and raw results go.
    #[arg(long, default_value = "docs/area")]
    pub out: PathBuf,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Weights/clock to compare at.
    #[arg(long, value_delimiter = ',', default_values_t = crate::experiments::area::SIZES)]
    pub sizes: Vec<usize>,
    /// Place and route on ECP5 only for engines of at most this many weights/clock
    /// (and at most 40% of the board's LUTs).
    #[arg(long, default_value_t = 1024)]
    pub pnr_up_to: usize,
    /// Skip place and route (no Fmax).
    #[arg(long)]
    pub no_pnr: bool,
    /// Only redraw the table and plots from `OUT/results.json` (no tools run).
    #[arg(long)]
    pub replot: bool,
    #[command(flatten)]
    pub flow: FlowArgs,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        out,
        exec,
        sizes,
        pnr_up_to,
        no_pnr,
        replot,
        flow,
    } = a;
    if replot {
        crate::experiments::area::replot(&out)?
    } else {
        if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > 16384) {
            anyhow::bail!("--sizes: weights/clock in 1..=16384, e.g. 128,256,512,1024");
        }
        let plan = crate::experiments::area::AreaPlan {
            sizes,
            executor: exec.executor()?,
            pnr_up_to: if no_pnr { 0 } else { pnr_up_to },
        };
        crate::experiments::area::run(&out, &plan, &flow.options())?
    }
    Ok(())
}
