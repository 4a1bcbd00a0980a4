//! `tern run`: run a ternary layer (or, for an attention config, attention against a KV cache) on
//! a board and check it against the golden model.

use anyhow::Result;
use std::path::PathBuf;

use super::options::AccessArgs;

#[derive(clap::Args)]
pub struct Args {
    /// sim:, unix:PATH, tcp:HOST:PORT, xdma:/dev/xdma0 or usb:VID:PID.
    #[arg(long)]
    pub board_uri: String,
    #[arg(long)]
    pub config: PathBuf,
    /// Tokens to run (default: the config's workload.tokens).
    #[arg(long)]
    pub tokens: Option<usize>,
    /// Seed of the random weights and activations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A ternary weight matrix (.tw) instead of random weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Activations from a .npy file (int8, or int32/int64 within -128..=127; shape
    /// (tokens, K) or (K,)) instead of random ones. Attention: the queries, shape
    /// (queries, head_dim).
    #[arg(long)]
    pub activations: Option<PathBuf>,
    /// Attention: the KV cache's keys from a .npy file, shape (seq_len, head_dim).
    #[arg(long, requires = "values")]
    pub keys: Option<PathBuf>,
    /// Attention: the KV cache's values, shape (seq_len, head_dim).
    #[arg(long, requires = "keys")]
    pub values: Option<PathBuf>,
    /// Write the run's inputs, results, golden results (.npy) and a run.json here
    /// (docs/files.md).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub access: AccessArgs,
}

pub fn run(a: Args) -> Result<()> {
    crate::run::run(&crate::run::inputs::RunArgs {
        uri: a.board_uri,
        config: a.config,
        tokens: a.tokens,
        seed: a.seed,
        weights: a.weights,
        activations: a.activations,
        keys: a.keys,
        values: a.values,
        out: a.out,
        access: a.access.access()?,
    })
}
