//! `tern pnr`: place and route with nextpnr (ECP5, iCE40, Gowin): Fmax and post-route utilisation.

use anyhow::Result;
use std::path::PathBuf;

use super::options::{DesignArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub design: DesignArgs,
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
        design: DesignArgs { config, board },
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
