//! `tern synth`: synthesise a design with Yosys for a board: cells, utilisation, fit verdict.

use anyhow::Result;
use std::path::PathBuf;

use super::options::{DesignArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub design: DesignArgs,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Write the typed report here (JSON).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        design: DesignArgs { config, board },
        flow,
        json,
    } = a;
    crate::experiments::synthesis::synth(
        &config,
        board.as_deref(),
        &flow.options(),
        json.as_deref(),
    )?;
    Ok(())
}
