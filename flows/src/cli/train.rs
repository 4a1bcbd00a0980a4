//! `tern train`: train the GNN surrogate (an ensemble) on a dataset's training split.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub dataset: PathBuf,
    /// The weights file to write (default: models/<dataset name>.tgnn).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Ensemble members (their spread is the stated uncertainty).
    #[arg(long, default_value_t = 3)]
    pub members: usize,
    #[arg(long, default_value_t = 150)]
    pub epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fit the per-block cost model instead (needs a dataset made with `--blocks`;
    /// default out: models/<dataset name>.blocks.json). Milliseconds, no GNN.
    #[arg(long)]
    pub blocks: bool,
    /// With --blocks: also fit on these datasets of the same board (e.g. whole tops,
    /// `datasets/tlmm-top-kv260.jsonl`, for the shell block).
    #[arg(long, requires = "blocks")]
    pub also: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        dataset,
        out,
        members,
        epochs,
        hidden,
        layers,
        seed,
        blocks,
        also,
    } = a;
    let stem = dataset
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "model".into());
    if blocks {
        let out = out.unwrap_or_else(|| PathBuf::from(format!("models/{stem}.blocks.json")));
        crate::surrogate::train::train_blocks(&dataset, &also, &out)?;
        return Ok(());
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("models/{stem}.tgnn")));
    let options = tern_surrogate::train::TrainOptions {
        shape: tern_surrogate::model::Shape { hidden, layers },
        members,
        max_epochs: epochs,
        seed,
        ..Default::default()
    };
    crate::surrogate::train::train(&dataset, &out, options)?;
    Ok(())
}
