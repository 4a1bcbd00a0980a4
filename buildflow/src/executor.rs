//! Where the (design, board) jobs of a sweep run: the local thread pool (the default) or
//! a Slurm cluster (`slurm`). Both return the same rows in the same order and report each
//! as it finishes; what a run on Slurm leaves on disk is specified in `docs/slurm.md`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::slurm::{SlurmError, SlurmOptions};

use crate::job::{run_one, Job, OnQueue, OnRow, SweepPlan, SweepRow};
use crate::synth::SynthOptions;

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
    Slurm(SlurmError),
    /// The caller's `OnRow` refused a row (a full disk, say).
    #[error("{0}")]
    Stopped(String),
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

    /// Run every job; rows come back in job order, and `on_row(index, row)` is called as
    /// each finishes, `on_queue(line)` when the queue's state changes (Slurm only).
    pub fn run(
        &self,
        jobs: &[Job],
        plan: SweepPlan,
        opts: &SynthOptions,
        on_row: OnRow,
        on_queue: OnQueue,
    ) -> Result<Vec<SweepRow>, ExecError> {
        match self {
            Executor::Local { jobs: n } => run_local(jobs, *n, plan, opts, on_row),
            Executor::Slurm(s) => Ok(crate::slurm::run(jobs, plan, opts, s, on_row, on_queue)?),
        }
    }
}

impl From<SlurmError> for ExecError {
    fn from(e: SlurmError) -> Self {
        match e {
            SlurmError::Stopped(why) => ExecError::Stopped(why),
            e => ExecError::Slurm(e),
        }
    }
}

/// Workers take jobs in order, so a run stopped early has done a prefix of them.
fn run_local(
    jobs: &[Job],
    threads: usize,
    plan: SweepPlan,
    opts: &SynthOptions,
    on_row: OnRow,
) -> Result<Vec<SweepRow>, ExecError> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<SweepRow>>> = Mutex::new(vec![None; jobs.len()]);
    let stopped: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1).min(jobs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let row = run_one(&job.item, &job.board, plan, opts);
                if let Err(why) = on_row(i, &row) {
                    // No worker takes another job.
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                    stopped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(why);
                }
                rows.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(row);
            });
        }
    });
    if let Some(why) = stopped.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(ExecError::Stopped(why));
    }
    Ok(rows
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::SweepItem;
    use tern_boards::Board;
    use tern_hdl::config::ConfigBuilder;
    use tern_hdl::{DesignConfig, EngineKind};

    /// A caller that cannot keep a row (a full disk) stops the run: no further job starts.
    #[test]
    fn a_refused_row_stops_the_local_run() {
        // Far beyond the board: refused before any tool runs, so no tools are needed.
        let big = ConfigBuilder::new(EngineKind::Tlmm, 4, 64, 16)
            .workload(64, 1024, 1)
            .build()
            .unwrap();
        let board = Board::builtin("icebreaker").unwrap();
        let jobs: Vec<Job> = (0..6)
            .map(|i| Job {
                item: SweepItem {
                    name: format!("big-{i}"),
                    config: DesignConfig::Matmul(big.clone()),
                },
                board: board.clone(),
            })
            .collect();
        let cache = tempfile::tempdir().unwrap();
        let opts = SynthOptions::new(cache.path().to_path_buf());
        let plan = SweepPlan {
            pnr: false,
            seed: 1,
            blocks: false,
            whole_top: false,
        };
        let seen = AtomicUsize::new(0);
        let refuse = |_: usize, _: &SweepRow| {
            seen.fetch_add(1, Ordering::Relaxed);
            Err("disk full".to_string())
        };
        let err = Executor::Local { jobs: 1 }
            .run(&jobs, plan, &opts, &refuse, &|_| ())
            .unwrap_err();
        assert!(
            matches!(&err, ExecError::Stopped(w) if w == "disk full"),
            "{err}"
        );
        assert_eq!(seen.load(Ordering::Relaxed), 1);
        // Accepting every row runs every job.
        let rows = Executor::Local { jobs: 2 }
            .run(&jobs, plan, &opts, &|_, _| Ok(()), &|_| ())
            .unwrap();
        assert_eq!(rows.len(), 6);
        assert!(rows
            .iter()
            .all(|r| r.error.as_deref().is_some_and(|e| e.contains("cannot fit"))));
    }
}
