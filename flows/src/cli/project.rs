//! `tern project`: project an engine onto a whole model's ternary matmuls on a board: decode tokens/s
//! and prefill time, from the exact cycle model and the DDR bandwidth.

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub config: PathBuf,
    /// A model preset (bitnet-0.73b, bitnet-2b, small, ...), a model TOML file or a
    /// workload TOML file (docs/files.md, "Workloads").
    #[arg(long, default_value = "bitnet-0.73b")]
    pub workload: String,
    /// Board (default: the config's, else kv260).
    #[arg(long)]
    pub board: Option<String>,
    /// Engine clock (default: the board's clock).
    #[arg(long)]
    pub clock_mhz: Option<f64>,
    /// Prompt lengths to time prefill for.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 128])]
    pub prompts: Vec<usize>,
    /// Also write the projection as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        workload,
        board,
        clock_mhz,
        prompts,
        json,
    } = a;
    if prompts.is_empty() || prompts.iter().any(|&p| p == 0 || p > 1 << 16) {
        anyhow::bail!("--prompts: token counts in 1..=65536, e.g. 64,128");
    }
    crate::project::run(
        &config,
        &workload,
        board.as_deref(),
        clock_mhz,
        &prompts,
        json.as_deref(),
    )?;
    Ok(())
}
