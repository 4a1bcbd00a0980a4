//! `tern dataset`: sample a design space, synthesise every sample for real (through the
//! result cache), take latency from the cycle model, and append one row per design to
//! a dataset file. Rows are written as they finish, so a killed run resumes from the
//! file (and from the cache); failures are rows of their own.

use anyhow::Result;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use tern_boards::Board;
use tern_dse::space::{Sample, Space};
use tern_hdl::DesignConfig;
use tern_surrogate::dataset::{
    BlockTargets, Header, Row, Status, Targets, Writer, FORMAT, VERSION,
};

use tern_build::executor::Executor;
use tern_build::job::Job;
use tern_build::job::{SweepItem, SweepPlan, SweepRow};
use tern_build::sweep;
use tern_build::synth::{PnrOutcome, SynthOptions, SynthOutcome};

pub struct DatasetPlan {
    pub n: usize,
    pub seed: u32,
    pub executor: Executor,
    pub pnr: bool,
    /// Also synthesise with the RTL blocks kept (per-block labels in every row).
    pub blocks: bool,
}

/// What a dataset run did.
#[derive(Debug, Default)]
pub struct DatasetSummary {
    pub already: usize,
    pub added: usize,
    pub ok: usize,
    pub failed: usize,
    pub timed_out: usize,
    pub rejected_invalid: usize,
    pub rejected_over_limits: usize,
    pub tool_seconds: f64,
    pub wall_seconds: f64,
}

pub fn build(
    space: &Space,
    board: &Board,
    out: &Path,
    plan: &DatasetPlan,
    opts: &SynthOptions,
) -> Result<DatasetSummary> {
    let start = Instant::now();
    let (samples, rejected) = space.sample(plan.n, plan.seed)?;
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        space: space.name.clone(),
        space_hash: space.hash.clone(),
        board: board.name.clone(),
        family: board.family.name().into(),
        seed: plan.seed,
        pnr: plan.pnr && board.has_router(),
        blocks: plan.blocks,
        whole_top: space.whole_top,
    };
    let (writer, existing) = Writer::open(out, &header)?;
    let done: std::collections::HashSet<u32> = existing.iter().map(|r| r.index).collect();
    let todo: Vec<&Sample> = samples
        .iter()
        .filter(|s| !done.contains(&s.index))
        .collect();
    let mut summary = DatasetSummary {
        already: samples.len() - todo.len(),
        rejected_invalid: rejected.invalid,
        rejected_over_limits: rejected.over_limits,
        ..Default::default()
    };
    tracing::info!(
        "dataset {}: {} samples of space {} for {} ({} already there, {} to make)",
        out.display(),
        samples.len(),
        space.name,
        board.name,
        summary.already,
        todo.len()
    );
    let bar = sweep::progress_bar(todo.len() as u64);
    bar.set_message(plan.executor.describe());
    let sweep_plan = SweepPlan {
        pnr: header.pnr,
        seed: 1,
        blocks: plan.blocks,
        whole_top: space.whole_top,
    };
    let jobs: Vec<Job> = todo
        .iter()
        .map(|sample| Job {
            item: SweepItem {
                name: format!("{}-{}", space.name, sample.index),
                config: sample.config.clone(),
            },
            board: board.clone(),
        })
        .collect();
    let writer = Mutex::new(writer);
    let results = Mutex::new(Vec::with_capacity(todo.len()));
    // Rows are appended as they finish: a run stopped early keeps every finished row.
    // (The local executor takes jobs in sequence order, so what it leaves is a prefix
    // of the sequence: a smaller, still well-spread sample.) A row that cannot be
    // written (a full disk) stops the run rather than losing more rows.
    let on_queue = |queue: &str| bar.set_prefix(format!("[{queue}]"));
    plan.executor.run(
        &jobs,
        sweep_plan,
        opts,
        &|i, swept| {
            let row = to_row(space, todo[i], swept);
            writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&row)
                .map_err(|e| format!("appending a dataset row to {}: {e:#}", out.display()))?;
            bar.set_message(format!(
                "{}: {}",
                swept.name,
                tern_build::job::row_summary(swept)
            ));
            bar.inc(1);
            results
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((row, swept.tool_seconds));
            Ok(())
        },
        &on_queue,
    )?;
    let results = results.into_inner().expect("results lock");
    bar.finish_and_clear();
    for (row, tool_seconds) in results {
        summary.added += 1;
        summary.tool_seconds += tool_seconds;
        match row.status {
            Status::Ok => summary.ok += 1,
            Status::Failed => summary.failed += 1,
            Status::TimedOut => summary.timed_out += 1,
        }
    }
    summary.wall_seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// A block's cells as the dataset records them.
pub fn block_targets(
    blocks: &std::collections::BTreeMap<String, tern_build::synth::report::CellUsage>,
) -> std::collections::BTreeMap<String, BlockTargets> {
    blocks
        .iter()
        .map(|(name, u)| {
            let t = BlockTargets {
                luts: u.luts as f64,
                lutram_luts: u.lutram_luts as f64,
                ffs: u.ffs as f64,
                dsps: u.dsps as f64,
                brams: u.bram_blocks,
            };
            (name.clone(), t)
        })
        .collect()
}

/// Latency in clocks of a config's workload, from the cycle model.
pub fn workload_cycles(config: &DesignConfig) -> Option<f64> {
    config.matmul().map(|c| c.streaming_cycles() as f64)
}

fn to_row(space: &Space, sample: &Sample, swept: &SweepRow) -> Row {
    let mut row = Row {
        index: sample.index,
        name: swept.name.clone(),
        config_toml: sample.config.to_toml(),
        held_out: sample.held_out,
        graph: space.graph_of(&sample.config),
        status: Status::Failed,
        error: swept.error.clone(),
        targets: None,
        yosys: swept
            .synth
            .as_ref()
            .map(|s| s.yosys.clone())
            .unwrap_or_default(),
        nextpnr: swept.pnr.as_ref().map(|p| p.nextpnr.clone()),
        tool_seconds: swept.synth.as_ref().map_or(0.0, |s| s.tool_seconds)
            + swept.blocks.as_ref().map_or(0.0, |s| s.tool_seconds)
            + swept.pnr.as_ref().map_or(0.0, |p| p.tool_seconds),
        blocks: None,
    };
    if row.error.is_some() {
        return row;
    }
    let Some(synth) = &swept.synth else {
        row.error = Some("no synthesis record".into());
        return row;
    };
    match &synth.outcome {
        SynthOutcome::Ok { usage, .. } => {
            // Attention has no exact cycle model yet, and a whole top's clocks depend
            // on the memory behind it: their rows carry none.
            let cycles = workload_cycles(&sample.config).filter(|_| !space.whole_top);
            let mut fmax = None;
            if let Some(p) = &swept.pnr {
                match &p.outcome {
                    PnrOutcome::Ok { route, .. } => fmax = Some(route.fmax_mhz),
                    PnrOutcome::TimedOut { stage, limit_s } => {
                        row.status = Status::TimedOut;
                        row.error = Some(format!("{stage} ran past {limit_s} s"));
                        return row;
                    }
                    PnrOutcome::Failed { stage, message, .. } => {
                        row.error = Some(format!("{stage}: {message}"));
                        return row;
                    }
                    PnrOutcome::Skipped { reason } => {
                        row.error = Some(format!("place and route skipped: {reason}"));
                        return row;
                    }
                }
            }
            row.status = Status::Ok;
            row.targets = Some(Targets {
                luts: usage.luts as f64,
                ffs: usage.ffs as f64,
                dsps: usage.dsps as f64,
                brams: usage.bram_blocks,
                cycles,
                fmax_mhz: fmax,
                lutram_luts: Some(usage.lutram_luts as f64),
            });
            if let Some(b) = &swept.blocks {
                match &b.outcome {
                    SynthOutcome::Ok {
                        blocks: Some(blocks),
                        ..
                    } => row.blocks = Some(block_targets(blocks)),
                    other => {
                        row.status = Status::Failed;
                        row.targets = None;
                        row.error = Some(format!(
                            "per-block synthesis: {}",
                            tern_build::synth::outcome_summary(other)
                        ));
                    }
                }
            }
        }
        SynthOutcome::Failed { message, .. } => row.error = Some(message.clone()),
        SynthOutcome::TimedOut { limit_s } => {
            row.status = Status::TimedOut;
            row.error = Some(format!("yosys ran past {limit_s} s"));
        }
    }
    row
}
