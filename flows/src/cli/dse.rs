//! `tern dse`: explore a design space with the surrogate for a board and workload: fit filter,
//! Pareto front, real synthesis of the top picks, predicted vs actual, plot.

use anyhow::Result;
use std::path::PathBuf;

use tern_boards::Board;
use tern_hdl::config::accelerator::Accelerator;

use super::options::{ExecArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    pub space: String,
    /// Board name or file (default: the accelerator's).
    #[arg(long, required_unless_present = "accelerator")]
    pub board: Option<String>,
    /// An accelerator description (docs/files.md): its board, and its attention top as
    /// the --attention-reference.
    #[arg(long)]
    pub accelerator: Option<PathBuf>,
    /// A model preset (`bitnet-2b`, `bitnet-0.73b`, `small`, ...), a model TOML file or a
    /// workload TOML file (docs/files.md, "Workloads").
    #[arg(long, default_value = "bitnet-2b")]
    pub workload: String,
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Candidates sampled from the space (ignored with --exhaustive).
    #[arg(long, default_value_t = 4000)]
    pub n: usize,
    /// Designs of the predicted front synthesised for real.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u32,
    /// Enumerate the whole (small) space, synthesise every point and compare fronts.
    #[arg(long)]
    pub exhaustive: bool,
    /// Take resources from this per-block model (`tern train --blocks`) instead of
    /// the GNN.
    #[arg(long)]
    pub blocks: Option<PathBuf>,
    /// LUTs set aside for the rest of the accelerator (the top's shell, attention
    /// engines): added to every engine before the fit check.
    #[arg(long, default_value_t = 0.0)]
    pub reserve_luts: f64,
    #[arg(long, default_value_t = 0.0)]
    pub reserve_ffs: f64,
    #[arg(long, default_value_t = 0.0)]
    pub reserve_dsps: f64,
    #[arg(long, default_value_t = 0.0)]
    pub reserve_brams: f64,
    /// Pareto front over (decode tokens/s, 128-token prefill time, LUTs) instead of
    /// (decode tokens/s, LUTs, BRAMs).
    #[arg(long)]
    pub prefill: bool,
    /// Also search attention tops from this space (e.g. `attention-accelerator`),
    /// with the workload's head size: the front is then over whole accelerators
    /// (implies --prefill).
    #[arg(long)]
    pub attention_space: Option<String>,
    /// The attention engine's block model (`tern train --blocks` on an attention
    /// dataset).
    #[arg(long, requires = "attention_space")]
    pub attention_blocks: Option<PathBuf>,
    /// Counts of attention tops side by side to search.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub attention_engines: Vec<usize>,
    /// An attention top config whose shell (synthesised with the engine kept) every
    /// attention option adds; its top section (bus) is every option's (default: the
    /// accelerator's attention top).
    #[arg(long, requires = "attention_space")]
    pub attention_reference: Option<PathBuf>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Default: docs/dse/<space>-<board>-<workload>.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub flow: FlowArgs,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        space,
        board,
        accelerator,
        workload,
        model,
        n,
        top_k,
        seed,
        exhaustive,
        blocks,
        reserve_luts,
        reserve_ffs,
        reserve_dsps,
        reserve_brams,
        prefill,
        attention_space,
        attention_blocks,
        attention_engines,
        attention_reference,
        exec,
        out,
        flow,
    } = a;
    let acc = match &accelerator {
        Some(path) => Some(Accelerator::from_path(path)?),
        None => None,
    };
    let board = match (board, &acc) {
        (Some(b), _) => b,
        (None, Some(acc)) => acc.board.clone(),
        (None, None) => anyhow::bail!("give --board or --accelerator"),
    };
    let attention_reference =
        attention_reference.or(acc.as_ref().map(|a| a.attention_path.clone()));
    let attention = match attention_space {
        Some(name) => {
            let (Some(blocks), Some(reference)) = (attention_blocks, attention_reference) else {
                anyhow::bail!(
                    "--attention-space needs --attention-blocks (the attention block \
                     model) and --attention-reference (an attention top config) or \
                     --accelerator"
                );
            };
            if attention_engines.is_empty() || attention_engines.contains(&0) {
                anyhow::bail!("--attention-engines: counts of tops, each at least 1");
            }
            let tern_hdl::DesignConfig::Attention(cfg) =
                tern_hdl::DesignConfig::from_path(&reference)?
            else {
                anyhow::bail!(
                    "--attention-reference {}: not an attention config",
                    reference.display()
                );
            };
            let model = tern_surrogate::blocks::BlockModel::load(&blocks)?;
            Some(crate::dse::attention::AttentionPlan {
                space: tern_dse::space::Space::resolve(&name)?,
                blocks: (blocks, model),
                engines: attention_engines,
                reference: (reference, cfg),
            })
        }
        None => None,
    };
    let prefill = prefill || attention.is_some();
    let space = tern_dse::space::Space::resolve(&space)?;
    let board = Board::resolve(&board)?;
    let workload = tern_dse::workload::ModelWorkload::resolve(&workload)?;
    let model = crate::surrogate::predict::find_model(&board, model.as_deref())?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "docs/dse/{}-{}-{}",
            space.name, board.name, workload.name
        ))
    });
    let plan = crate::dse::run::DsePlan {
        n,
        top_k,
        seed,
        exhaustive,
        executor: exec.executor()?,
        blocks: match blocks {
            Some(p) => {
                let m = tern_surrogate::blocks::BlockModel::load(&p)?;
                Some((p, m))
            }
            None => None,
        },
        reserve: tern_boards::Resources {
            luts: reserve_luts,
            ffs: reserve_ffs,
            dsps: reserve_dsps,
            brams: reserve_brams,
        },
        prefill,
        attention,
    };
    crate::dse::run::run(
        &space,
        &board,
        &workload,
        &model,
        &plan,
        &flow.options(),
        &out,
    )?;
    Ok(())
}
