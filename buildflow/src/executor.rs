//! Where the (design, board) jobs of a sweep run: the local thread pool (the default) or
//! a Slurm cluster (`slurm`). Both return the same rows in the same order and report each
//! as it finishes; what a run on Slurm leaves on disk is specified in `docs/slurm.md`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use tern_boards::Board;

use crate::slurm::{SlurmError, SlurmOptions};
use crate::sweep::{self, SweepItem, SweepPlan, SweepRow};
use crate::synth::SynthOptions;

/// One job: a design on a board.
#[derive(Debug, Clone)]
pub struct Job {
    pub item: SweepItem,
    pub board: Board,
}

#[derive(Debug, Clone)]
pub enum Executor {
    /// This machine, `jobs` runs at a time.
    Local {
        jobs: usize,
    },
    Slurm(SlurmOptions),
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("executor slurm: {0}")]
    Slurm(#[from] SlurmError),
    #[error(
        "unknown executor `{0}` (expected `local` or `slurm`; from --executor or TERN_EXECUTOR)"
    )]
    Unknown(String),
}

impl Executor {
    /// `--executor`, else `TERN_EXECUTOR`, else local.
    pub fn choose(
        flag: Option<&str>,
        jobs: usize,
        slurm: SlurmOptions,
    ) -> Result<Executor, ExecError> {
        let env = std::env::var("TERN_EXECUTOR").ok();
        match flag.or(env.as_deref()).unwrap_or("local") {
            "local" => Ok(Executor::Local { jobs }),
            "slurm" => Ok(Executor::Slurm(slurm)),
            other => Err(ExecError::Unknown(other.to_string())),
        }
    }

    /// For the line a flow prints before it starts.
    pub fn describe(&self) -> String {
        match self {
            Executor::Local { jobs } => format!("{jobs} parallel runs on this machine"),
            Executor::Slurm(s) => format!(
                "Slurm job arrays (up to {} tasks running, {} retries)",
                s.max_running, s.retries
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Executor::Local { .. } => "local",
            Executor::Slurm(_) => "slurm",
        }
    }

    /// Run every job; rows come back in job order, and `on_row(index, row)` is called as
    /// each finishes (from any thread).
    pub fn run(
        &self,
        jobs: &[Job],
        plan: SweepPlan,
        opts: &SynthOptions,
        on_row: &(dyn Fn(usize, &SweepRow) + Sync),
    ) -> Result<Vec<SweepRow>, ExecError> {
        match self {
            Executor::Local { jobs: n } => Ok(run_local(jobs, *n, plan, opts, on_row)),
            Executor::Slurm(s) => Ok(crate::slurm::run(jobs, plan, opts, s, on_row)?),
        }
    }
}

/// Workers take jobs in order, so a run stopped early has done a prefix of them.
fn run_local(
    jobs: &[Job],
    threads: usize,
    plan: SweepPlan,
    opts: &SynthOptions,
    on_row: &(dyn Fn(usize, &SweepRow) + Sync),
) -> Vec<SweepRow> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let row = sweep::run_one(&job.item, &job.board, plan, opts);
                on_row(i, &row);
                rows.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(row);
            });
        }
    });
    rows.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
