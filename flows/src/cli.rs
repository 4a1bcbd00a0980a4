//! The `tern` command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};

use tern_boards::Board;
use tern_hdl::{generate_any, write_design, DesignConfig};
use tern_sim::verilator::ModelCache;

use crate::cosim::{self, Handshakes};
use crate::{demo, lint};

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

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Generate the Verilog of a design, its wrapper and manifest.
    Gen {
        #[arg(long)]
        config: PathBuf,
        /// Output directory (created if needed).
        #[arg(short, long)]
        out: PathBuf,
        /// Also write the accelerator top (AXI4-Lite registers, AXI4 master, feeder) around
        /// the matmul engine, and its register map (regmap.md, regmap.json).
        #[arg(long)]
        top: bool,
    },
    /// Lint a generated design with `verilator --lint-only -Wall`.
    Lint {
        /// A config to generate and lint (into a temporary directory) ...
        #[arg(long, conflicts_with = "dir")]
        config: Option<PathBuf>,
        /// ... or a directory written by `tern gen`.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Co-simulate the RTL under Verilator against the golden model, bit for bit.
    Cosim {
        #[arg(long)]
        config: PathBuf,
        /// Vector sets: the corner cases first, then random ones.
        #[arg(long, default_value_t = 8)]
        vectors: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, value_enum, default_value_t = Handshakes::Mixed)]
        handshakes: Handshakes,
        /// Where a waveform is written on a mismatch.
        #[arg(long, default_value = "build/waveforms")]
        waveforms: PathBuf,
    },
    /// The demo: generate, lint, co-simulate and report on a config (default example).
    Demo {
        #[arg(long, default_value = "examples/default.toml")]
        config: PathBuf,
        #[arg(long, default_value = "build/demo")]
        out: PathBuf,
    },
    /// List the boards tern knows.
    Boards,
    /// Describe a BitNet b1.58 model: shapes, the ternary matmuls of a layer, weights,
    /// packed bytes and KV-cache bytes (a preset: tiny, bitnet-0.73b, bitnet-2b; or a
    /// model TOML file).
    Model {
        /// Preset name, model TOML file, or (with --checkpoint) ignored.
        #[arg(default_value = "bitnet-0.73b")]
        model: String,
        /// Print the model config as TOML (to start a file of your own from a preset).
        #[arg(long)]
        toml: bool,
        /// Read a Hugging Face BitNet checkpoint directory (config.json and
        /// model.safetensors), check every weight, and describe it.
        #[arg(long, conflicts_with = "write_random")]
        checkpoint: Option<PathBuf>,
        /// Write a checkpoint of the model with random ternary weights here (the layout
        /// of microsoft/bitnet-b1.58-2B-4T; docs/files.md).
        #[arg(long)]
        write_random: Option<PathBuf>,
        /// Seed of --write-random.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Synthesise a design with Yosys for a board: cells, utilisation, fit verdict.
    Synth {
        #[arg(long)]
        config: PathBuf,
        /// A board name (`tern boards`) or a board TOML file; default: the config's board.
        #[arg(long)]
        board: Option<String>,
        #[command(flatten)]
        flow: FlowArgs,
        /// Write the typed report here (JSON).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Place and route with nextpnr (ECP5, iCE40, Gowin): Fmax and post-route utilisation.
    Pnr {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        board: Option<String>,
        /// nextpnr's placement seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        flow: FlowArgs,
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Synthesise many configs on one or more boards in parallel (resumable from the cache).
    Sweep {
        /// Config files, or directories of *.toml configs.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
        /// Boards (comma-separated names or board files).
        #[arg(long, value_delimiter = ',', required = true)]
        boards: Vec<String>,
        /// Also place and route where a board has an open router.
        #[arg(long)]
        pnr: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        exec: ExecArgs,
        /// Write every row (records, timings) and the sweep's throughput here (JSON).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Sample a design space, synthesise every sample for a board and append the rows
    /// (design graph + targets + tool versions) to a dataset file. Resumable.
    Dataset {
        /// A space name (`matmul`, `matmul-edge`, `matmul-small`) or a space TOML file.
        #[arg(long)]
        space: String,
        #[arg(long)]
        board: String,
        /// Samples (the first N valid points of the space's Sobol sequence).
        #[arg(long)]
        n: usize,
        #[arg(long, default_value_t = 1)]
        seed: u32,
        /// The dataset file (JSON lines); default `datasets/<space>-<board>.jsonl`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also place and route (for Fmax) where the board has an open router.
        #[arg(long)]
        pnr: bool,
        /// Also synthesise each design with its RTL blocks kept as hierarchy and record
        /// every block's cells (per-block labels; a second Yosys run per design).
        #[arg(long)]
        blocks: bool,
        #[command(flatten)]
        flow: FlowArgs,
        #[command(flatten)]
        exec: ExecArgs,
    },
    /// Train the GNN surrogate (an ensemble) on a dataset's training split.
    Train {
        #[arg(long)]
        dataset: PathBuf,
        /// The weights file to write (default: models/<dataset name>.tgnn).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Ensemble members (their spread is the stated uncertainty).
        #[arg(long, default_value_t = 3)]
        members: usize,
        #[arg(long, default_value_t = 150)]
        epochs: usize,
        #[arg(long, default_value_t = 64)]
        hidden: usize,
        #[arg(long, default_value_t = 3)]
        layers: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Fit the per-block cost model instead (needs a dataset made with `--blocks`;
        /// default out: models/<dataset name>.blocks.json). Milliseconds, no GNN.
        #[arg(long)]
        blocks: bool,
        /// With --blocks: also fit on these datasets of the same board (e.g. whole tops,
        /// `datasets/tlmm-top-kv260.jsonl`, for the shell block).
        #[arg(long, requires = "blocks")]
        also: Vec<PathBuf>,
    },
    /// Evaluate a surrogate on a dataset's test rows and held-out region against the
    /// linear baseline: error table and predicted-vs-actual plots.
    Eval {
        #[arg(long)]
        dataset: PathBuf,
        #[arg(long)]
        model: PathBuf,
        /// A per-block model (`tern train --blocks`) to evaluate beside the GNN.
        #[arg(long)]
        blocks: Option<PathBuf>,
        /// A dataset of larger designs never trained on, evaluated as its own split.
        #[arg(long)]
        extrapolation: Option<PathBuf>,
        #[arg(long, default_value = "docs/surrogate")]
        out: PathBuf,
    },
    /// Predict resources and latency of a design with the surrogate (milliseconds).
    Predict {
        #[arg(long)]
        config: PathBuf,
        /// Default: the config's board.
        #[arg(long)]
        board: Option<String>,
        /// Default: the model in models/ trained for the board (or its family).
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Price the whole accelerator top (engine + shell, `tern gen --top`) with the
        /// block model, not the engine alone.
        #[arg(long)]
        whole_top: bool,
    },
    /// Explore a design space with the surrogate for a board and workload: fit filter,
    /// Pareto front, real synthesis of the top picks, predicted vs actual, plot.
    Dse {
        #[arg(long)]
        space: String,
        #[arg(long)]
        board: String,
        /// `bitnet-2b`, `small`, or a workload TOML file.
        #[arg(long, default_value = "bitnet-2b")]
        workload: String,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Candidates sampled from the space (ignored with --exhaustive).
        #[arg(long, default_value_t = 4000)]
        n: usize,
        /// Designs of the predicted front synthesised for real.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        #[arg(long, default_value_t = 7)]
        seed: u32,
        /// Enumerate the whole (small) space, synthesise every point and compare fronts.
        #[arg(long)]
        exhaustive: bool,
        /// Take resources from this per-block model (`tern train --blocks`) instead of
        /// the GNN.
        #[arg(long)]
        blocks: Option<PathBuf>,
        /// LUTs set aside for the rest of the accelerator (the top's shell, attention
        /// engines): added to every engine before the fit check.
        #[arg(long, default_value_t = 0.0)]
        reserve_luts: f64,
        #[arg(long, default_value_t = 0.0)]
        reserve_ffs: f64,
        #[arg(long, default_value_t = 0.0)]
        reserve_dsps: f64,
        #[arg(long, default_value_t = 0.0)]
        reserve_brams: f64,
        /// Pareto front over (decode tokens/s, 128-token prefill time, LUTs) instead of
        /// (decode tokens/s, LUTs, BRAMs).
        #[arg(long)]
        prefill: bool,
        /// Also search attention tops from this space (e.g. `attention-accelerator`),
        /// with the workload's head size: the front is then over whole accelerators
        /// (implies --prefill).
        #[arg(long)]
        attention_space: Option<String>,
        /// The attention engine's block model (`tern train --blocks` on an attention
        /// dataset).
        #[arg(long, requires = "attention_space")]
        attention_blocks: Option<PathBuf>,
        /// Counts of attention tops side by side to search.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        attention_engines: Vec<usize>,
        /// An attention top config whose shell (synthesised with the engine kept) every
        /// attention option adds; its top section (bus) is every option's.
        #[arg(long, requires = "attention_space")]
        attention_reference: Option<PathBuf>,
        #[command(flatten)]
        exec: ExecArgs,
        /// Default: docs/dse/<space>-<board>-<workload>.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        flow: FlowArgs,
    },
    /// One Slurm array task of a run (what `--executor slurm` submits; not for people).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        run_dir: PathBuf,
        /// Job index (default: $SLURM_ARRAY_TASK_ID).
        #[arg(long)]
        index: Option<usize>,
    },
    /// Run the accelerator top's Verilator model as a board behind a socket.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// unix:PATH or tcp:IP:PORT (port 0 picks a free one and prints it).
        #[arg(long)]
        listen: String,
        /// Disconnect a client silent for this many seconds.
        #[arg(long, default_value_t = 30)]
        idle_timeout: u64,
        /// A client that has held the board this many seconds gives it up at its next
        /// request, if another client is waiting.
        #[arg(long, default_value_t = 300)]
        max_hold: u64,
        /// Clients that may wait for the board (more stay in the listen backlog).
        #[arg(long, default_value_t = 16)]
        max_waiting: usize,
        /// Record the whole session's waveform (VCD) here.
        #[arg(long)]
        waveform: Option<PathBuf>,
        /// A shared secret every client must prove before any request (a file of one
        /// line, mode 0600; `tern token --out FILE` writes one). docs/wire.md, Security.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Listen on a TCP address other hosts can reach (needs --token-file): whoever
        /// connects can read and write the whole board memory.
        #[arg(long)]
        allow_remote: bool,
        /// Open the Unix socket to this group (mode 0660); it is owner-only otherwise.
        #[arg(long)]
        socket_group: Option<String>,
    },
    /// Write a new random token file (mode 0600) for `tern serve --token-file` and the
    /// clients' `--board-token`.
    Token {
        #[arg(long)]
        out: PathBuf,
    },
    /// Run a ternary layer (or, for an attention config, attention against a KV cache) on
    /// a board and check it against the golden model.
    Run {
        /// sim:, unix:PATH, tcp:HOST:PORT, xdma:/dev/xdma0 or usb:VID:PID.
        #[arg(long)]
        board_uri: String,
        #[arg(long)]
        config: PathBuf,
        /// Tokens to run (default: the config's workload.tokens).
        #[arg(long)]
        tokens: Option<usize>,
        /// Seed of the random weights and activations.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A ternary weight matrix (.tw) instead of random weights.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Activations from a .npy file (int8, or int32/int64 within -128..=127; shape
        /// (tokens, K) or (K,)) instead of random ones. Attention: the queries, shape
        /// (queries, head_dim).
        #[arg(long)]
        activations: Option<PathBuf>,
        /// Attention: the KV cache's keys from a .npy file, shape (seq_len, head_dim).
        #[arg(long, requires = "values")]
        keys: Option<PathBuf>,
        /// Attention: the KV cache's values, shape (seq_len, head_dim).
        #[arg(long, requires = "keys")]
        values: Option<PathBuf>,
        /// Write the run's inputs, results, golden results (.npy) and a run.json here
        /// (docs/files.md).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds any one board call may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Seconds to wait while `tern serve` gives the board to another client.
        #[arg(long, default_value_t = 60)]
        board_wait: u64,
        /// The token file of a `tern serve --token-file` board.
        #[arg(long, env = "TERN_BOARD_TOKEN_FILE")]
        board_token: Option<PathBuf>,
    },
    /// Run a BitNet model on the accelerator: prefill a prompt, decode greedily, every
    /// step's logits checked bit for bit against the golden model; kernel clocks per
    /// step (matmul, attention) and host time.
    Generate {
        /// sim:, unix:PATH, tcp:HOST:PORT, ...: the board with the matmul top.
        #[arg(long, default_value = "sim:")]
        board_uri: String,
        /// The board(s) with the attention top, comma-separated for several engines
        /// side by side (default: sim: when --board-uri is sim:).
        #[arg(long, value_delimiter = ',')]
        attention_uri: Vec<String>,
        /// Attention engines side by side on sim: (KV head h on engine h mod N).
        #[arg(long, default_value_t = 1)]
        attention_engines: usize,
        /// Preset (tiny, bitnet-0.73b, bitnet-2b) or model TOML; random ternary weights
        /// from --seed.
        #[arg(long, default_value = "tiny")]
        model: String,
        /// A Hugging Face BitNet checkpoint directory instead of random weights.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The matmul top's config (its workload.m × workload.k is the tile shape);
        /// default: examples/bitnet_tiny_matmul.toml.
        #[arg(long)]
        matmul_config: Option<PathBuf>,
        /// The attention top's config; default: examples/bitnet_tiny_attention.toml.
        #[arg(long)]
        attention_config: Option<PathBuf>,
        /// Prompt token ids, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = crate::generate::DEFAULT_PROMPT)]
        prompt: Vec<usize>,
        /// Tokens to generate.
        #[arg(long, default_value_t = 8)]
        tokens: usize,
        /// Measure the attention scales with the float reference on the prompt (they
        /// change the attention engine: a served attention board must carry them).
        #[arg(long)]
        calibrate: bool,
        /// Write generate.json (tokens, per-step clocks, logits; docs/files.md) here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds any one board call may take.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Seconds to wait while `tern serve` gives a board to another client.
        #[arg(long, default_value_t = 60)]
        board_wait: u64,
        /// The token file of `tern serve --token-file` boards.
        #[arg(long, env = "TERN_BOARD_TOKEN_FILE")]
        board_token: Option<PathBuf>,
    },
    /// Project an engine onto a whole model's ternary matmuls on a board: decode tokens/s
    /// and prefill time, from the exact cycle model and the DDR bandwidth.
    Project {
        #[arg(long)]
        config: PathBuf,
        /// bitnet-0.73b, bitnet-2b, small, or a workload TOML file.
        #[arg(long, default_value = "bitnet-0.73b")]
        workload: String,
        /// Board (default: the config's, else kv260).
        #[arg(long)]
        board: Option<String>,
        /// Engine clock (default: the board's clock).
        #[arg(long)]
        clock_mhz: Option<f64>,
        /// Prompt lengths to time prefill for.
        #[arg(long, value_delimiter = ',', default_values_t = [64usize, 128])]
        prompts: Vec<usize>,
        /// Also write the projection as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Measure TLMM against the adder-tree baseline at equal weights/clock (G = 2..5,
    /// 128 to 1024 weights/clock, whole engines).
    Area {
        /// Where the table, plots and raw results go.
        #[arg(long, default_value = "docs/area")]
        out: PathBuf,
        #[command(flatten)]
        exec: ExecArgs,
        /// Weights/clock to compare at.
        #[arg(long, value_delimiter = ',', default_values_t = crate::area::SIZES)]
        sizes: Vec<usize>,
        /// Place and route on ECP5 only for engines of at most this many weights/clock
        /// (and at most 40% of the board's LUTs).
        #[arg(long, default_value_t = 1024)]
        pnr_up_to: usize,
        /// Skip place and route (no Fmax).
        #[arg(long)]
        no_pnr: bool,
        /// Only redraw the table and plots from `OUT/results.json` (no tools run).
        #[arg(long)]
        replot: bool,
        #[command(flatten)]
        flow: FlowArgs,
    },
}

/// Options every synthesis flow takes.
#[derive(clap::Args)]
struct FlowArgs {
    /// Time limit per tool run, in seconds.
    #[arg(long, default_value_t = 3600)]
    time_limit: u64,
    /// Ignore and overwrite cached results.
    #[arg(long)]
    force: bool,
    /// Keep the work directories of successful runs (failed ones are always kept).
    #[arg(long)]
    keep_work: bool,
}

impl FlowArgs {
    fn options(&self) -> tern_build::synth::SynthOptions {
        let mut o = tern_build::synth::SynthOptions::new(tern_sim::verilator::default_cache_root());
        o.time_limit = std::time::Duration::from_secs(self.time_limit.max(1));
        o.force = self.force;
        o.keep_work = self.keep_work;
        o
    }
}

/// Where a flow's synthesis jobs run (docs/slurm.md).
#[derive(clap::Args)]
struct ExecArgs {
    /// `local` (this machine) or `slurm` (job arrays on a cluster); default
    /// `$TERN_EXECUTOR`, else local.
    #[arg(long)]
    executor: Option<String>,
    /// Parallel tool runs with the local executor (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Slurm partition (sbatch --partition).
    #[arg(long)]
    slurm_partition: Option<String>,
    /// Time limit of each Slurm task (sbatch --time), e.g. 2:00:00.
    #[arg(long)]
    slurm_time: Option<String>,
    /// Memory of each Slurm task (sbatch --mem), e.g. 8G.
    #[arg(long)]
    slurm_mem: Option<String>,
    /// CPUs of each Slurm task (sbatch --cpus-per-task).
    #[arg(long)]
    slurm_cpus: Option<u32>,
    /// A further sbatch argument, passed as given (repeat for more), e.g.
    /// --slurm-arg=--qos=low.
    #[arg(long = "slurm-arg", allow_hyphen_values = true)]
    slurm_args: Vec<String>,
    /// Tasks of a job array running at once (--array=...%K).
    #[arg(long, default_value_t = 64)]
    slurm_max_running: usize,
    /// Times a failed, cancelled, timed-out or vanished task is submitted again.
    #[arg(long, default_value_t = 2)]
    slurm_retries: u32,
    /// Seconds between looks at the queue.
    #[arg(long, default_value_t = 2.0)]
    slurm_poll: f64,
}

impl ExecArgs {
    fn executor(&self) -> Result<tern_build::executor::Executor> {
        if !(0.05..=600.0).contains(&self.slurm_poll) {
            bail!("--slurm-poll: seconds in 0.05..=600");
        }
        if self.slurm_max_running == 0 {
            bail!("--slurm-max-running must be at least 1");
        }
        let jobs = self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let slurm = tern_build::slurm::SlurmOptions {
            partition: self.slurm_partition.clone(),
            time: self.slurm_time.clone(),
            mem: self.slurm_mem.clone(),
            cpus: self.slurm_cpus,
            extra: self.slurm_args.clone(),
            max_running: self.slurm_max_running,
            retries: self.slurm_retries,
            poll: std::time::Duration::from_secs_f64(self.slurm_poll),
        };
        Ok(tern_build::executor::Executor::choose(
            self.executor.as_deref(),
            jobs.max(1),
            slurm,
        )?)
    }
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    // The daemon logs each connection by default; everything else only warnings.
    let default_filter = match cli.command {
        Command::Serve { .. } => "warn,tern_host=info",
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
        Command::Gen { config, out, top } => {
            let cfg = DesignConfig::from_path(&config)?;
            // A board named in the config must exist even though generation does not
            // use it: a typo would otherwise surface only at synthesis.
            if let Some(board) = cfg.board() {
                tern_boards::Board::resolve(board)
                    .with_context(|| format!("{}: `board`", config.display()))?;
            }
            let design = if top {
                let top = tern_hdl::top::generate_top_any(&cfg)
                    .with_context(|| format!("{}: the accelerator top", config.display()))?;
                tern_hdl::top::write_top(&top, &out)?;
                println!(
                    "top: AXI4 master {} bits wide, bursts of up to {} beats, {} MiB of memory, design id {:08x}, register map in {}",
                    top.layout.bus_bytes() * 8,
                    top.layout.burst_beats(),
                    top.layout.memory_bytes() >> 20,
                    top.design_id(),
                    out.join(tern_hdl::top::REGMAP_MARKDOWN).display()
                );
                top.engine
            } else {
                let design = generate_any(&cfg)?;
                write_design(&design, &out)?;
                design
            };
            let m = &design.manifest;
            let timing = match (m.cycles_per_token, m.pipeline_latency) {
                (Some(c), Some(l)) => format!(", {c} clocks/token, latency {l} clocks"),
                _ => String::new(),
            };
            println!(
                "wrote {} ({} engine, {} lines of Verilog, hash {}, {} bits of on-chip memory{timing})",
                out.display(),
                m.engine,
                m.verilog_lines,
                design.short_hash(),
                m.total_memory_bits(),
            );
        }
        Command::Lint { config, dir } => {
            let mut tmp = None;
            let subject = match (&config, &dir) {
                (Some(c), _) => c.display().to_string(),
                (None, Some(d)) => d.display().to_string(),
                (None, None) => String::new(),
            };
            let dir = match (config, dir) {
                (Some(config), _) => {
                    let design = generate_any(&DesignConfig::from_path(&config)?)?;
                    let dir = tempdir()?;
                    tmp = Some(dir.clone());
                    write_design(&design, &dir)?;
                    dir
                }
                (None, Some(dir)) => dir,
                (None, None) => bail!("give --config or --dir"),
            };
            let diagnostics = lint::lint_dir(&dir);
            if let Some(tmp) = &tmp {
                let _ = std::fs::remove_dir_all(tmp);
            }
            let diagnostics = diagnostics?;
            if !diagnostics.is_empty() {
                bail!(
                    "verilator -Wall reported {} diagnostics:\n{}",
                    diagnostics.len(),
                    diagnostics.join("\n")
                );
            }
            println!("lint clean: verilator --lint-only -Wall on {subject}");
        }
        Command::Cosim {
            config,
            vectors,
            seed,
            handshakes,
            waveforms,
        } => {
            let cfg = DesignConfig::from_path(&config)?;
            let design = generate_any(&cfg)?;
            let library = ModelCache::default().load(&design)?;
            let s = cosim::run(&design, &library, vectors, seed, handshakes, &waveforms)?;
            println!(
                "PASS: {} vector sets, {} outputs bit-exact against the golden model ({} clocks simulated)",
                s.vector_sets, s.outputs, s.cycles
            );
        }
        Command::Demo { config, out } => demo::run(&config, &out)?,
        Command::Model {
            model,
            toml,
            checkpoint,
            write_random,
            seed,
        } => {
            let m = match &checkpoint {
                Some(dir) => {
                    let c = tern_model::checkpoint::Checkpoint::read_hf(dir)?;
                    println!(
                        "checkpoint {}: every tensor present with its shape, {} ternary weights decoded",
                        dir.display(),
                        c.config.ternary_weights()
                    );
                    c.config
                }
                None => tern_model::ModelConfig::resolve(&model)?,
            };
            if let Some(dir) = &write_random {
                tern_model::checkpoint::Checkpoint::random(&m, seed).write_hf(dir)?;
                println!(
                    "wrote      {} and {} in {} (random weights, seed {seed})",
                    tern_model::checkpoint::CONFIG_JSON,
                    tern_model::checkpoint::WEIGHTS_FILE,
                    dir.display()
                );
            }
            if toml {
                print!("{}", m.to_toml());
                return Ok(());
            }
            println!(
                "model      {}: hidden {}, {} layers, {} query / {} KV heads of {}, FFN {}, vocab {}, \
                 RoPE theta {}, norm eps {:e}, up to {} tokens",
                m.name, m.hidden, m.layers, m.heads, m.kv_heads, m.head_dim, m.ffn, m.vocab,
                m.rope_theta, m.norm_eps, m.max_seq_len
            );
            println!("per layer  ternary matmuls (m x k):");
            for mm in m.layer_matmuls() {
                println!("           {:<10} {:>6} x {}", mm.name, mm.m, mm.k);
            }
            let ternary = m.ternary_weights();
            println!(
                "weights    {:.3} B ternary ({:.1} MB packed at 5 bits per 3 weights, {:.1} MB at 2 bits), \
                 {:.3} B full precision (embedding{}, norms)",
                ternary as f64 / 1e9,
                ternary as f64 * 5.0 / 3.0 / 8.0 / 1e6,
                ternary as f64 * 2.0 / 8.0 / 1e6,
                m.float_weights() as f64 / 1e9,
                if m.tied_embeddings { " = LM head" } else { ", LM head" }
            );
            println!(
                "KV cache   {} bytes per token (int8 K and V, all layers); {:.1} MB at {} tokens",
                m.kv_bytes_per_token_per_layer() * m.layers as u64,
                (m.kv_bytes_per_token_per_layer() * (m.layers * m.max_seq_len) as u64) as f64 / 1e6,
                m.max_seq_len
            );
        }
        Command::Boards => {
            println!(
                "{:<13} {:<20} {:<6} {:>9} {:>9} {:>5} {:>10} {:>10} {:>6} {:>9}  {:<22} {:<19} description",
                "board", "part", "family", "LUT", "FF", "DSP", "BRAM", "URAM", "MHz", "mem GB/s", "host links", "place & route"
            );
            for b in Board::all()? {
                let r = &b.resources;
                let links: Vec<String> = b
                    .host_links
                    .iter()
                    .map(|l| {
                        serde_json::to_value(l.kind)
                            .unwrap()
                            .as_str()
                            .unwrap_or("")
                            .to_string()
                    })
                    .collect();
                let pnr = serde_json::to_value(b.toolchain.pnr).unwrap();
                println!(
                    "{:<13} {:<20} {:<6} {:>9} {:>9} {:>5} {:>4} ({:>4}k) {:>3} ({:>4}k) {:>6} {:>9}  {:<22} {:<19} {}",
                    b.name,
                    b.part,
                    b.family.name(),
                    r.luts,
                    r.ffs,
                    r.dsps,
                    r.bram_blocks,
                    r.bram_bits / 1024,
                    r.urams,
                    r.uram_bits / 1024,
                    b.clock.default_mhz,
                    b.memory.gbyte_per_s,
                    links.join(","),
                    pnr.as_str().unwrap_or(""),
                    b.description
                );
            }
        }
        Command::Synth {
            config,
            board,
            flow,
            json,
        } => crate::synthesis::synth(&config, board.as_deref(), &flow.options(), json.as_deref())?,
        Command::Pnr {
            config,
            board,
            seed,
            flow,
            json,
        } => crate::synthesis::pnr(
            &config,
            board.as_deref(),
            seed,
            &flow.options(),
            json.as_deref(),
        )?,
        Command::Sweep {
            configs,
            boards,
            pnr,
            exec,
            seed,
            flow,
            out,
        } => {
            let items = crate::synthesis::collect_configs(&configs)?;
            let boards = boards
                .iter()
                .map(|b| Board::resolve(b))
                .collect::<Result<Vec<_>, _>>()?;
            let plan = tern_build::sweep::SweepPlan {
                pnr,
                seed,
                blocks: false,
                whole_top: false,
            };
            let rows = crate::synthesis::sweep(
                &items,
                &boards,
                plan,
                &flow.options(),
                &exec.executor()?,
                out.as_deref(),
            )?;
            let failed = rows
                .iter()
                .filter(|r| r.error.is_some() || !r.synth_ok())
                .count();
            if failed > 0 {
                bail!("{failed} of {} sweep rows failed (see above)", rows.len());
            }
        }
        Command::Dataset {
            space,
            board,
            n,
            seed,
            out,
            pnr,
            blocks,
            exec,
            flow,
        } => {
            let space = tern_surrogate::space::Space::resolve(&space)?;
            let board = Board::resolve(&board)?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!("datasets/{}-{}.jsonl", space.name, board.name))
            });
            let plan = crate::dataset::DatasetPlan {
                n,
                seed,
                executor: exec.executor()?,
                pnr,
                blocks,
            };
            let s = crate::dataset::build(&space, &board, &out, &plan, &flow.options())?;
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
        }
        Command::Train {
            dataset,
            out,
            members,
            epochs,
            hidden,
            layers,
            seed,
            blocks,
            also,
        } => {
            let stem = dataset
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "model".into());
            if blocks {
                let out =
                    out.unwrap_or_else(|| PathBuf::from(format!("models/{stem}.blocks.json")));
                crate::surrogate::train_blocks(&dataset, &also, &out)?;
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
            crate::surrogate::train(&dataset, &out, options)?;
        }
        Command::Eval {
            dataset,
            model,
            blocks,
            extrapolation,
            out,
        } => {
            crate::surrogate::eval(&crate::surrogate::EvalArgs {
                dataset: &dataset,
                model: &model,
                blocks: blocks.as_deref(),
                extrapolation: extrapolation.as_deref(),
                out: &out,
            })?;
        }
        Command::Predict {
            config,
            board,
            model,
            json,
            whole_top,
        } => {
            let cfg = DesignConfig::from_path(&config)?;
            let board = crate::synthesis::board_for(&cfg, board.as_deref(), &config)?;
            let model = crate::surrogate::find_model(&board, model.as_deref())?;
            let report = crate::surrogate::predict_one(&cfg, &board, &model, whole_top);
            crate::surrogate::print_prediction(&report, &board);
            if let Some(j) = json {
                crate::synthesis::write_json(&j, &report)?;
            }
        }
        Command::Dse {
            space,
            board,
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
        } => {
            let attention = match attention_space {
                Some(name) => {
                    let (Some(blocks), Some(reference)) = (attention_blocks, attention_reference)
                    else {
                        anyhow::bail!(
                            "--attention-space needs --attention-blocks (the attention block \
                             model) and --attention-reference (an attention top config)"
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
                    Some(crate::dse_attention::AttentionPlan {
                        space: tern_surrogate::space::Space::resolve(&name)?,
                        blocks: (blocks, model),
                        engines: attention_engines,
                        reference: (reference, cfg),
                    })
                }
                None => None,
            };
            let prefill = prefill || attention.is_some();
            let space = tern_surrogate::space::Space::resolve(&space)?;
            let board = Board::resolve(&board)?;
            let workload = tern_surrogate::workload::Workload::resolve(&workload)?;
            let model = crate::surrogate::find_model(&board, model.as_deref())?;
            let out = out.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "docs/dse/{}-{}-{}",
                    space.name, board.name, workload.name
                ))
            });
            let plan = crate::dse::DsePlan {
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
                reserve: crate::dse::Resources {
                    luts: reserve_luts,
                    ffs: reserve_ffs,
                    dsps: reserve_dsps,
                    brams: reserve_brams,
                },
                prefill,
                attention,
            };
            crate::dse::run(
                &space,
                &board,
                &workload,
                &model,
                &plan,
                &flow.options(),
                &out,
            )?;
        }
        Command::Worker { run_dir, index } => {
            let index = match index {
                Some(i) => i,
                None => std::env::var("SLURM_ARRAY_TASK_ID")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .context("tern worker: no --index and no SLURM_ARRAY_TASK_ID")?,
            };
            if let Err(e) = tern_build::slurm::worker(&run_dir, index) {
                eprintln!("tern worker: task {index}: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Serve {
            config,
            listen,
            idle_timeout,
            max_hold,
            max_waiting,
            waveform,
            token_file,
            allow_remote,
            socket_group,
        } => {
            if idle_timeout == 0 || max_waiting == 0 {
                anyhow::bail!("--idle-timeout and --max-waiting must be at least 1");
            }
            let socket_group = socket_group
                .as_deref()
                .map(tern_host::server::group_id)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--socket-group: {e}"))?;
            let opts = tern_host::server::ServeOptions {
                idle_timeout: std::time::Duration::from_secs(idle_timeout),
                max_hold: std::time::Duration::from_secs(max_hold),
                max_waiting,
                secret: read_token(token_file.as_deref())?,
                allow_remote,
                socket_group,
                ..tern_host::server::ServeOptions::default()
            };
            crate::board::serve_command(&config, &listen, &opts, waveform.as_deref())?
        }
        Command::Token { out } => {
            tern_host::auth::Secret::generate()?.write_new(&out)?;
            println!(
                "wrote a new token to {} (mode 0600): give it to `tern serve --token-file` and to \
                 the clients' --board-token",
                out.display()
            );
        }
        Command::Run {
            board_uri,
            config,
            tokens,
            seed,
            weights,
            activations,
            keys,
            values,
            out,
            timeout,
            board_wait,
            board_token,
        } => crate::board::run_command(&crate::board::RunArgs {
            uri: board_uri,
            config,
            tokens,
            seed,
            weights,
            activations,
            keys,
            values,
            out,
            timeout: std::time::Duration::from_secs(timeout),
            board_wait: std::time::Duration::from_secs(board_wait),
            token: read_token(board_token.as_deref())?,
        })?,
        Command::Generate {
            board_uri,
            attention_uri,
            attention_engines,
            model,
            checkpoint,
            seed,
            matmul_config,
            attention_config,
            prompt,
            tokens,
            calibrate,
            out,
            timeout,
            board_wait,
            board_token,
        } => {
            crate::generate::generate(&crate::generate::GenerateArgs {
                model,
                checkpoint,
                seed,
                matmul_config,
                attention_config,
                board_uri,
                attention_uris: attention_uri,
                attention_engines,
                prompt,
                tokens,
                calibrate,
                out,
                timeout: std::time::Duration::from_secs(timeout),
                board_wait: std::time::Duration::from_secs(board_wait),
                token: read_token(board_token.as_deref())?,
                verbose: true,
            })?;
        }
        Command::Project {
            config,
            workload,
            board,
            clock_mhz,
            prompts,
            json,
        } => {
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
            )?
        }
        Command::Area {
            out,
            exec,
            sizes,
            pnr_up_to,
            no_pnr,
            replot,
            flow,
        } => {
            if replot {
                crate::area::replot(&out)?
            } else {
                if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > 16384) {
                    anyhow::bail!("--sizes: weights/clock in 1..=16384, e.g. 128,256,512,1024");
                }
                let plan = crate::area::AreaPlan {
                    sizes,
                    executor: exec.executor()?,
                    pnr_up_to: if no_pnr { 0 } else { pnr_up_to },
                };
                crate::area::run(&out, &plan, &flow.options())?
            }
        }
    }
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tern-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Resolve a path given relative to the repository when run from elsewhere.
pub fn find_in_repo(path: &Path) -> PathBuf {
    if path.exists() || path.is_absolute() {
        return path.to_path_buf();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidate = repo.join(path);
    if candidate.exists() {
        candidate
    } else {
        path.to_path_buf()
    }
}

/// A token file named by `--token-file` or `--board-token`, if one is.
fn read_token(path: Option<&Path>) -> Result<Option<tern_host::auth::Secret>> {
    Ok(path.map(tern_host::auth::Secret::from_file).transpose()?)
}
