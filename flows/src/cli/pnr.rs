//! `tern pnr`: place and route with nextpnr (ECP5, iCE40, Gowin): Fmax and post-route utilisation.

use anyhow::Result;
use std::path::PathBuf;

use super::options::FlowArgs;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long)]
    pub board: Option<String>,
    /// nextpnr's placement seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        board,
        seed,
        flow,
        json,
    } = a;
    crate::experiments::synthesis::pnr(
        &config,
        board.as_deref(),
        seed,
        &flow.options(),
        json.as_deref(),
    )?;
    Ok(())
}
