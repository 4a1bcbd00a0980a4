//! `tern dataset`: sample a design space, synthesise every sample for a board and append the rows
//! (design graph + targets + tool versions) to a dataset file. Resumable.

use anyhow::Result;
use std::path::PathBuf;

use tern_boards::Board;

use super::options::{ExecArgs, FlowArgs};

#[derive(clap::Args)]
pub struct Args {
    /// A space name (`matmul`, `matmul-edge`, `matmul-small`) or a space TOML file.
    #[arg(long)]
    pub space: String,
    #[arg(long)]
    pub board: String,
    /// Samples (the first N valid points of the space's Sobol sequence).
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// The dataset file (JSON lines); default `datasets/<space>-<board>.jsonl`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also place and route (for Fmax) where the board has an open router.
    #[arg(long)]
    pub pnr: bool,
    /// Also synthesise each design with its RTL blocks kept as hierarchy and record
    /// every block's cells (per-block labels; a second Yosys run per design).
    #[arg(long)]
    pub blocks: bool,
    #[command(flatten)]
    pub flow: FlowArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        space,
        board,
        n,
        seed,
        out,
        pnr,
        blocks,
        exec,
        flow,
    } = a;
    let space = tern_dse::space::Space::resolve(&space)?;
    let board = Board::resolve(&board)?;
    let out = out
        .unwrap_or_else(|| PathBuf::from(format!("datasets/{}-{}.jsonl", space.name, board.name)));
    let plan = crate::surrogate::dataset::DatasetPlan {
        n,
        seed,
        executor: exec.executor()?,
        pnr,
        blocks,
    };
    let s = crate::surrogate::dataset::build(&space, &board, &out, &plan, &flow.options())?;
    println!(
        "{}: {} rows already there, {} added ({} ok, {} failed, {} timed out) in {:.0} s \
         ({:.0} s in tools); {} points skipped as invalid configs, {} over the space's limits",
        out.display(),
        s.already,
        s.added,
        s.ok,
        s.failed,
        s.timed_out,
        s.wall_seconds,
        s.tool_seconds,
        s.rejected_invalid,
        s.rejected_over_limits
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct RegraphArgs {
    /// The dataset file to rewrite in place.
    #[arg(long)]
    pub dataset: PathBuf,
}

/// `tern regraph`: rebuild every row's design graph from its config with today's graph
/// builder, keeping its labels. Only for a fix to the graph builder that leaves the RTL,
/// and so the synthesis labels, as they were: tern cannot check that the RTL is unchanged.
pub fn regraph(a: RegraphArgs) -> Result<()> {
    let changed = tern_surrogate::dataset::Dataset::rewrite_graphs(&a.dataset, |header, row| {
        let config = tern_hdl::DesignConfig::from_toml(&row.config_toml, &row.name)
            .map_err(|e| e.to_string())?;
        let graph = tern_hdl::graph::unit_graph(&config, header.whole_top);
        if graph.datapath != row.graph.datapath {
            return Err(format!(
                "its graph is of datapath version {}, today's builder makes version {}: the \
                 RTL changed, so its labels no longer describe it (synthesise it again with \
                 `tern dataset`)",
                row.graph.datapath, graph.datapath
            ));
        }
        Ok(graph)
    })?;
    println!(
        "{}: {changed} rows' graphs rewritten; the labels are as they were (refit the \
         models trained on it)",
        a.dataset.display()
    );
    Ok(())
}
