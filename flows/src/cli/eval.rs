//! `tern eval`: evaluate a surrogate on a dataset's test rows and held-out region against the
//! linear baseline: error table and predicted-vs-actual plots.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub dataset: PathBuf,
    #[arg(long)]
    pub model: PathBuf,
    /// A per-block model (`tern train --blocks`) to evaluate beside the GNN.
    #[arg(long)]
    pub blocks: Option<PathBuf>,
    /// A dataset of larger designs never trained on, evaluated as its own split.
    #[arg(long)]
    pub extrapolation: Option<PathBuf>,
    #[arg(long, default_value = "docs/surrogate")]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        dataset,
        model,
        blocks,
        extrapolation,
        out,
    } = a;
    crate::surrogate::eval::eval(&crate::surrogate::eval::EvalArgs {
        dataset: &dataset,
        model: &model,
        blocks: blocks.as_deref(),
        extrapolation: extrapolation.as_deref(),
        out: &out,
    })?;
    Ok(())
}
