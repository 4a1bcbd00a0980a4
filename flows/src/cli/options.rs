//! Options several commands share: synthesis flow limits, where jobs run, token files.

use anyhow::{bail, Result};
use std::path::Path;

/// Options every synthesis flow takes.
#[derive(clap::Args)]
pub struct FlowArgs {
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
    pub fn options(&self) -> tern_build::synth::SynthOptions {
        let mut o = tern_build::synth::SynthOptions::new(tern_sim::verilator::default_cache_root());
        o.time_limit = std::time::Duration::from_secs(self.time_limit.max(1));
        o.force = self.force;
        o.keep_work = self.keep_work;
        o
    }
}

/// The Verilog of `--verilog FILE...`: the files' texts in order, one design (the matmul
/// unit is its file and the engine's rust-hdl core). The first file names it.
pub fn read_verilog_files(paths: &[std::path::PathBuf]) -> Result<(std::path::PathBuf, String)> {
    let Some(first) = paths.first() else {
        bail!("--verilog names no file");
    };
    let mut text = String::new();
    for path in paths {
        let t = tern_hdl::files::read_text(path)
            .map_err(|e| anyhow::anyhow!("--verilog {}: {e}", path.display()))?;
        text.push_str(&t);
        text.push('\n');
    }
    Ok((first.clone(), text))
}

/// Where a flow's synthesis jobs run (docs/slurm.md).
#[derive(clap::Args)]
pub struct ExecArgs {
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
    pub fn executor(&self) -> Result<tern_build::executor::Executor> {
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

/// A design and the board it is built for (`tern synth`, `tern pnr`, `tern predict`).
#[derive(clap::Args)]
pub struct DesignArgs {
    /// The design's config (tern.toml).
    #[arg(long)]
    pub config: std::path::PathBuf,
    /// A board name (`tern boards`) or a board TOML file; default: the config's board.
    #[arg(long)]
    pub board: Option<String>,
}

/// A design given as one top's config or as an accelerator description (`tern project`,
/// `tern serve`).
#[derive(clap::Args)]
pub struct TopOrAccelerator {
    /// A top's config (tern.toml).
    #[arg(
        long,
        required_unless_present = "accelerator",
        conflicts_with = "accelerator"
    )]
    pub config: Option<std::path::PathBuf>,
    /// An accelerator description (docs/files.md): board, clock, matmul and attention tops.
    #[arg(long)]
    pub accelerator: Option<std::path::PathBuf>,
}

/// How `tern run` and `tern generate` reach their boards.
#[derive(clap::Args)]
pub struct AccessArgs {
    /// Seconds any one board call may take.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// Seconds to wait while `tern serve` gives a board to another client.
    #[arg(long, default_value_t = 60)]
    pub board_wait: u64,
    /// The token file of a `tern serve --token-file` board.
    #[arg(long, env = "TERN_BOARD_TOKEN_FILE")]
    pub board_token: Option<std::path::PathBuf>,
}

impl AccessArgs {
    pub fn access(&self) -> Result<crate::access::BoardAccess> {
        Ok(crate::access::BoardAccess {
            timeout: std::time::Duration::from_secs(self.timeout),
            board_wait: std::time::Duration::from_secs(self.board_wait),
            token: read_token(self.board_token.as_deref())?,
        })
    }
}

/// A token file named by `--token-file` or `--board-token`, if one is.
pub fn read_token(path: Option<&Path>) -> Result<Option<tern_host::auth::Secret>> {
    Ok(path.map(tern_host::auth::Secret::from_file).transpose()?)
}
