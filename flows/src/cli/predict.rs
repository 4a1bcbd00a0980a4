//! `tern predict`: predict resources and latency of a design with the surrogate (milliseconds).

use anyhow::Result;
use std::path::PathBuf;

use tern_hdl::DesignConfig;

use super::options::DesignArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub design: DesignArgs,
    /// Default: the model in models/ trained for the board (or its family).
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Price the whole accelerator top (engine + shell, `tern verilog --top`) with the
    /// block model, not the engine alone.
    #[arg(long)]
    pub whole_top: bool,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        design: DesignArgs { config, board },
        model,
        json,
        whole_top,
    } = a;
    let cfg = DesignConfig::from_path(&config)?;
    let board = crate::experiments::synthesis::board_for(&cfg, board.as_deref(), &config)?;
    let model = crate::surrogate::predict::find_model(&board, model.as_deref())?;
    let report = crate::surrogate::predict::predict_one(&cfg, &board, &model, whole_top);
    crate::surrogate::predict::print_prediction(&report, &board);
    if let Some(j) = json {
        tern_build::synth::cache::write_json(&j, &report)?;
    }
    Ok(())
}
