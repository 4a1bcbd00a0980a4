//! `tern sweep`: synthesise many configs on one or more boards in parallel (resumable from the cache).

use anyhow::{bail, Result};
use std::path::PathBuf;

use tern_boards::Board;

use super::options::{ExecArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Config files, or directories of *.toml configs.
    #[arg(required = true)]
    pub configs: Vec<PathBuf>,
    /// Boards (comma-separated names or board files).
    #[arg(long, value_delimiter = ',', required = true)]
    pub boards: Vec<String>,
    /// Also place and route where a board has an open router.
    #[arg(long)]
    pub pnr: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Write every row (records, timings) and the sweep's throughput here (JSON).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        configs,
        boards,
        pnr,
        exec,
        seed,
        flow,
        out,
    } = a;
    let items = crate::experiments::synthesis::collect_configs(&configs)?;
    let boards = boards
        .iter()
        .map(|b| Board::resolve(b))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = tern_build::job::SweepPlan {
        pnr,
        seed,
        blocks: false,
        whole_top: false,
    };
    let rows = crate::experiments::synthesis::sweep(
        &items,
        &boards,
        plan,
        &flow.options(),
        &exec.executor()?,
        out.as_deref(),
    )?;
    let failed = rows
        .iter()
        .filter(|r| r.error.is_some() || !r.synth_ok())
        .count();
    if failed > 0 {
        bail!("{failed} of {} sweep rows failed (see above)", rows.len());
    }
    Ok(())
}
