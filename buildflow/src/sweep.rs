//! Sweeps: synthesise (and place and route) many designs on many boards in parallel.
//! Every finished step is in the result cache before the next starts, so a killed sweep
//! resumes where it stopped; failures and time-outs are rows of their own, never zeros.

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use tern_boards::Board;

use crate::executor::{ExecError, Executor};
use crate::job::{row_summary, Job, SweepItem, SweepPlan, SweepRow};
use crate::synth::SynthOptions;

/// Run every item on every board with `executor`; rows come back in input order.
pub fn run(
    items: &[SweepItem],
    boards: &[Board],
    plan: SweepPlan,
    opts: &SynthOptions,
    executor: &Executor,
) -> Result<Vec<SweepRow>, ExecError> {
    let jobs: Vec<Job> = items
        .iter()
        .flat_map(|i| {
            boards.iter().map(move |b| Job {
                item: i.clone(),
                board: b.clone(),
            })
        })
        .collect();
    let bar = progress_bar(jobs.len() as u64);
    let rows = executor.run(
        &jobs,
        plan,
        opts,
        &|_, row| {
            bar.set_message(format!(
                "{} on {}: {}",
                row.name,
                row.board,
                row_summary(row)
            ));
            bar.inc(1);
            Ok(())
        },
        &|queue| bar.set_prefix(format!("[{queue}]")),
    );
    bar.finish_and_clear();
    rows
}

/// The progress bar of every long flow (sweeps, datasets, training); hidden when
/// `TERN_NO_PROGRESS` is set (tests, logs).
pub fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} eta {eta} {prefix} {msg}",
        )
        .expect("valid template"),
    );
    if std::env::var_os("TERN_NO_PROGRESS").is_some() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Throughput and overhead of a sweep, from the rows that ran their tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepStats {
    pub rows: usize,
    pub ran_tools: usize,
    /// Successful rows answered wholly from the result cache (a failed row is counted
    /// as failed only).
    #[serde(default)]
    pub from_cache: usize,
    pub failed: usize,
    pub wall_seconds: f64,
    pub tool_seconds: f64,
    /// (row wall − tool time) / tool time over rows that ran tools, in percent.
    pub overhead_percent: f64,
    pub designs_per_hour: f64,
}

pub fn stats(rows: &[SweepRow], wall_seconds: f64) -> SweepStats {
    let ran: Vec<&SweepRow> = rows
        .iter()
        .filter(|r| !r.cached && r.tool_seconds > 0.0)
        .collect();
    let tool: f64 = ran.iter().map(|r| r.tool_seconds).sum();
    let wall: f64 = ran.iter().map(|r| r.wall_seconds).sum();
    SweepStats {
        rows: rows.len(),
        ran_tools: ran.len(),
        from_cache: rows
            .iter()
            .filter(|r| r.cached && r.error.is_none() && r.synth_ok())
            .count(),
        failed: rows
            .iter()
            .filter(|r| r.error.is_some() || !r.synth_ok())
            .count(),
        wall_seconds,
        tool_seconds: tool,
        overhead_percent: if tool > 0.0 {
            100.0 * (wall - tool) / tool
        } else {
            0.0
        },
        designs_per_hour: if wall_seconds > 0.0 {
            ran.len() as f64 * 3600.0 / wall_seconds
        } else {
            0.0
        },
    }
}
