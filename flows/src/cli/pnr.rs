//! `tern pnr`: place and route with nextpnr (ECP5, iCE40, Gowin): Fmax and post-route
//! utilisation; also for a Verilog block `tern verilog` writes (`--verilog FILE --top
//! MODULE`, out of context: ECP5 boards).

use anyhow::{Context, Result};
use std::path::PathBuf;

use super::options::FlowArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The design's config (tern.toml).
    #[arg(long, required_unless_present = "verilog", conflicts_with = "verilog")]
    pub config: Option<PathBuf>,
    /// A board name (`tern boards`) or a board TOML file; default: the config's board
    /// (required with `--verilog`).
    #[arg(long)]
    pub board: Option<String>,
    /// Instead of a design: Verilog files (several are read as one), the top module named
    /// by `--top`.
    #[arg(long, requires = "top", num_args = 1..)]
    pub verilog: Vec<PathBuf>,
    #[arg(long, requires = "verilog")]
    pub top: Option<String>,
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
        verilog,
        top,
        seed,
        flow,
        json,
    } = a;
    if let Some(top) = top {
        let board = board.context("--verilog needs --board")?;
        let (path, text) = super::options::read_verilog_files(&verilog)?;
        return crate::experiments::synthesis::pnr_verilog(
            &path,
            &top,
            text,
            &board,
            seed,
            &flow.options(),
            json.as_deref(),
        );
    }
    let config = config.expect("clap requires --config without --verilog");
    crate::experiments::synthesis::pnr(
        &config,
        board.as_deref(),
        seed,
        &flow.options(),
        json.as_deref(),
    )?;
    Ok(())
}
