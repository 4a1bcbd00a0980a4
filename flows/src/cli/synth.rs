//! `tern synth`: synthesise a design with Yosys for a board: cells, utilisation, fit verdict.

use anyhow::Result;
use std::path::PathBuf;

use super::options::FlowArgs;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// A board name (`tern boards`) or a board TOML file; default: the config's board.
    #[arg(long)]
    pub board: Option<String>,
    #[command(flatten)]
    pub flow: FlowArgs,
    /// Write the typed report here (JSON).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        board,
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
