//! `tern synth`: synthesise a design with Yosys for a board: cells, utilisation, fit
//! verdict; or any Verilog block `tern verilog` writes (`--verilog FILE --top MODULE`).

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
    /// Instead of a design: Verilog files (the one top's sequencer, units, memory
    /// interconnect from `tern verilog`; several are read as one), the top module
    /// named by `--top`.
    #[arg(long, requires = "top", num_args = 1..)]
    pub verilog: Vec<PathBuf>,
    #[arg(long, requires = "verilog")]
    pub top: Option<String>,
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
        verilog,
        top,
        flow,
        json,
    } = a;
    if let Some(top) = top {
        let board = board.context("--verilog needs --board")?;
        let (path, text) = super::options::read_verilog_files(&verilog)?;
        return crate::experiments::synthesis::synth_verilog(
            &path,
            &top,
            text,
            &board,
            &flow.options(),
            json.as_deref(),
        );
    }
    let config = config.expect("clap requires --config without --verilog");
    crate::experiments::synthesis::synth(
        &config,
        board.as_deref(),
        &flow.options(),
        json.as_deref(),
    )?;
    Ok(())
}
