//! `tern project`: project a matmul top, or a whole accelerator, onto a model on a board:
//! decode tokens/s and prefill time, from the performance model (`tern_dse::performance`).

use anyhow::Result;
use std::path::PathBuf;

use super::options::TopOrAccelerator;

#[derive(clap::Args)]
pub struct Args {
    /// A matmul top's config (its share of a token: matmuls only), or an accelerator
    /// (its matmul and attention tops: the whole token's kernels).
    #[command(flatten)]
    pub design: TopOrAccelerator,
    /// A model preset (bitnet-0.73b, bitnet-2b, small, ...), a model TOML file or a
    /// workload TOML file (docs/files.md, "Workloads").
    #[arg(long, default_value = "bitnet-0.73b")]
    pub workload: String,
    /// Board (default: the config's or accelerator's, else kv260).
    #[arg(long)]
    pub board: Option<String>,
    /// Engine clock (default: the accelerator's, else the board's clock).
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
        design: TopOrAccelerator {
            config,
            accelerator,
        },
        workload,
        board,
        clock_mhz,
        prompts,
        json,
    } = a;
    if prompts.is_empty() || prompts.iter().any(|&p| p == 0 || p > 1 << 16) {
        anyhow::bail!("--prompts: token counts in 1..=65536, e.g. 64,128");
    }
    let design = match (&config, &accelerator) {
        (Some(c), _) => crate::project::Design::Matmul(c),
        (None, Some(a)) => crate::project::Design::Accelerator(a),
        (None, None) => anyhow::bail!("give --config or --accelerator"),
    };
    crate::project::run(
        design,
        &workload,
        board.as_deref(),
        clock_mhz,
        &prompts,
        json.as_deref(),
    )?;
    Ok(())
}
