//! `tern worker`: one Slurm array task of a run (what `--executor slurm` submits; not for people).

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Job index (default: $SLURM_ARRAY_TASK_ID).
    #[arg(long)]
    pub index: Option<usize>,
}

pub fn run(a: Args) -> Result<()> {
    let Args { run_dir, index } = a;
    let index = match index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .context("tern worker: no --index and no SLURM_ARRAY_TASK_ID")?,
    };
    if let Err(e) = tern_build::slurm::worker(&run_dir, index) {
        eprintln!("tern worker: task {index}: {e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}
