//! The `tern` command line: parse, set up logging, and hand each command to its module
//! (one module per command, its options beside its code).

use anyhow::Result;
use clap::{Parser, Subcommand};

mod area;
mod boards;
mod cosim;
mod dataset;
mod demo;
mod dse;
mod eval;
mod generate;
mod lint;
mod model;
mod options;
mod pnr;
mod predict;
mod project;
mod run;
mod serve;
mod sweep;
mod synth;
mod token;
mod train;
mod verilog;
mod worker;

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Co-design flow for ternary LLM accelerators on FPGAs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Generate the Verilog of a design, its wrapper and manifest.
    #[command(alias = "gen")]
    Verilog(verilog::Args),
    /// Lint a generated design with `verilator --lint-only -Wall`.
    Lint(lint::Args),
    /// Co-simulate the RTL under Verilator against the golden model, bit for bit.
    Cosim(cosim::Args),
    /// The demo: generate, lint, co-simulate and report on a config (default example).
    Demo(demo::Args),
    /// List the boards tern knows.
    Boards(boards::Args),
    /// Describe a BitNet b1.58 model: shapes, the ternary matmuls of a layer, weights,
    /// packed bytes and KV-cache bytes (a preset: tiny, bitnet-0.73b, bitnet-2b, small; or a
    /// model TOML file).
    Model(model::Args),
    /// Synthesise a design with Yosys for a board: cells, utilisation, fit verdict.
    Synth(synth::Args),
    /// Place and route with nextpnr (ECP5, iCE40, Gowin): Fmax and post-route utilisation.
    Pnr(pnr::Args),
    /// Synthesise many configs on one or more boards in parallel (resumable from the cache).
    Sweep(sweep::Args),
    /// Sample a design space, synthesise every sample for a board and append the rows
    /// (design graph + targets + tool versions) to a dataset file. Resumable.
    Dataset(dataset::Args),
    /// Rebuild a dataset's design graphs from its rows' configs with today's graph
    /// builder, keeping the labels (after a graph-builder fix that leaves the RTL as it
    /// was).
    Regraph(dataset::RegraphArgs),
    /// Train the GNN surrogate (an ensemble) on a dataset's training split.
    Train(train::Args),
    /// Evaluate a surrogate on a dataset's test rows and held-out region against the
    /// linear baseline: error table and predicted-vs-actual plots.
    Eval(eval::Args),
    /// Predict resources and latency of a design with the surrogate (milliseconds).
    Predict(predict::Args),
    /// Explore a design space with the surrogate for a board and workload: fit filter,
    /// Pareto front, real synthesis of the top picks, predicted vs actual, plot.
    Dse(dse::Args),
    /// One Slurm array task of a run (what `--executor slurm` submits; not for people).
    #[command(hide = true)]
    Worker(worker::Args),
    /// Run the accelerator top's Verilator model as a board behind a socket.
    Serve(serve::Args),
    /// Write a new random token file (mode 0600) for `tern serve --token-file` and the
    /// clients' `--board-token`.
    Token(token::Args),
    /// Run a ternary layer (or, for an attention config, attention against a KV cache) on
    /// a board and check it against the golden model.
    Run(run::Args),
    /// Run a BitNet model on the accelerator: prefill a prompt, decode greedily, every
    /// step's logits checked bit for bit against the golden model; kernel clocks per
    /// step (matmul, attention) and host time.
    Generate(generate::Args),
    /// Project a matmul top, or a whole accelerator, onto a model on a board: decode
    /// tokens/s and time to first token, from the performance model the DSE shares.
    Project(project::Args),
    /// Measure TLMM against the adder-tree baseline at equal weights/clock (G = 2..5,
    /// 128 to 1024 weights/clock, whole engines).
    Area(area::Args),
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    // The daemon logs each connection by default; everything else only warnings.
    let default_filter = match cli.command {
        Command::Serve(_) => "warn,tern_host=info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Verilog(a) => verilog::run(a),
        Command::Lint(a) => lint::run(a),
        Command::Cosim(a) => cosim::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Boards(a) => boards::run(a),
        Command::Model(a) => model::run(a),
        Command::Synth(a) => synth::run(a),
        Command::Pnr(a) => pnr::run(a),
        Command::Sweep(a) => sweep::run(a),
        Command::Dataset(a) => dataset::run(a),
        Command::Regraph(a) => dataset::regraph(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Dse(a) => dse::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Token(a) => token::run(a),
        Command::Run(a) => run::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Project(a) => project::run(a),
        Command::Area(a) => area::run(a),
    }
}
