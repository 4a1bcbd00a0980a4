//! One job of a sweep and what comes of it: a design on a board, synthesised (and placed
//! and routed) by `run_one` into a `SweepRow`. Every executor runs jobs through here.

use serde::{Deserialize, Serialize};
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::{generate_any, DesignConfig};

use crate::synth::script::Purpose;
use crate::synth::{self, PnrRecord, SynthOptions, SynthOutcome, SynthRecord};

/// One job: a design on a board.
#[derive(Debug, Clone)]
pub struct Job {
    pub item: SweepItem,
    pub board: Board,
}

/// Called with each finished row (from any thread); an error stops the run: no further
/// job is started and `run` returns `ExecError::Stopped` with it.
pub type OnRow<'a> = &'a (dyn Fn(usize, &SweepRow) -> Result<(), String> + Sync);
/// Called with one line on where the jobs wait (Slurm: the queue's running and pending
/// tasks and why they pend), for beside a progress bar.
pub type OnQueue<'a> = &'a (dyn Fn(&str) + Sync);

/// One design of a sweep, named for tables and plots.
#[derive(Debug, Clone)]
pub struct SweepItem {
    pub name: String,
    pub config: DesignConfig,
}

/// What happened to one (design, board) pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepRow {
    pub name: String,
    pub board: String,
    /// Generation failed, or the flow itself failed (a missing tool, a full disk).
    pub error: Option<String>,
    pub synth: Option<SynthRecord>,
    pub pnr: Option<PnrRecord>,
    /// The per-block run (`SweepPlan::blocks`): cells of each RTL block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<SynthRecord>,
    /// Steps answered from the cache.
    pub cached: bool,
    /// Wall time in tern for this row (generation, tools, parsing, cache).
    pub wall_seconds: f64,
    /// Of which the tools themselves (zero when cached).
    pub tool_seconds: f64,
}

impl SweepRow {
    pub fn synth_ok(&self) -> bool {
        matches!(
            self.synth.as_ref().map(|s| &s.outcome),
            Some(SynthOutcome::Ok { .. })
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SweepPlan {
    /// Also place and route on boards that have an open router.
    pub pnr: bool,
    pub seed: u64,
    /// Also synthesise with the RTL blocks kept as hierarchy (per-block labels).
    pub blocks: bool,
    /// Synthesise the whole accelerator top (engine + shell, `tern verilog --top`) instead
    /// of the engine alone (no place and route: the top is not an out-of-context core).
    pub whole_top: bool,
}

/// One (design, board) pair: generate, synthesise, and place and route if asked.
pub fn run_one(item: &SweepItem, board: &Board, plan: SweepPlan, opts: &SynthOptions) -> SweepRow {
    let start = Instant::now();
    let mut row = SweepRow {
        name: item.name.clone(),
        board: board.name.clone(),
        error: None,
        synth: None,
        pnr: None,
        blocks: None,
        cached: true,
        wall_seconds: 0.0,
        tool_seconds: 0.0,
    };
    let result = (|| -> Result<(), String> {
        synth::check_floor(&item.config, board).map_err(|e| e.to_string())?;
        // A top is generated around its own engine: the engine is generated once.
        let (top, design);
        let unit = if plan.whole_top {
            top = tern_hdl::top::generate_top_any(&item.config).map_err(|e| e.to_string())?;
            synth::Unit::Top(&top)
        } else {
            design = generate_any(&item.config).map_err(|e| e.to_string())?;
            synth::Unit::Engine(&design)
        };
        let s = synth::synthesize_unit(unit, board, opts, Purpose::Report)
            .map_err(|e| e.to_string())?;
        row.cached &= s.cached;
        if !s.cached {
            row.tool_seconds += s.record.tool_seconds;
        }
        row.synth = Some(s.record);
        if plan.blocks {
            let b = synth::synthesize_unit(unit, board, opts, Purpose::Blocks)
                .map_err(|e| e.to_string())?;
            row.cached &= b.cached;
            if !b.cached {
                row.tool_seconds += b.record.tool_seconds;
            }
            row.blocks = Some(b.record);
        }
        if plan.pnr && board.has_router() && !plan.whole_top {
            let engine = unit
                .engine()
                .ok_or_else(|| "a job's unit is an engine or a top".to_string())?;
            let p = synth::place_and_route(engine, board, plan.seed, opts)
                .map_err(|e| e.to_string())?;
            row.cached &= p.cached;
            if !p.cached {
                row.tool_seconds += p.record.tool_seconds;
            }
            row.pnr = Some(p.record);
        }
        Ok(())
    })();
    row.error = result.err();
    // A failure is never an answer from the cache, even when it came before any step.
    row.cached &= row.error.is_none();
    row.wall_seconds = start.elapsed().as_secs_f64();
    row
}

/// A pair's row from the result cache alone, if every step of it is cached (no tool runs).
pub fn cached_row(
    item: &SweepItem,
    board: &Board,
    plan: SweepPlan,
    opts: &SynthOptions,
) -> Option<SweepRow> {
    let mut only = opts.clone();
    only.cache_only = true;
    let row = run_one(item, board, plan, &only);
    row.error.is_none().then_some(row)
}

/// One line on a row, for progress messages and tables.
pub fn row_summary(row: &SweepRow) -> String {
    if let Some(e) = &row.error {
        return format!("ERROR: {e}");
    }
    let mut s = row
        .synth
        .as_ref()
        .map(|r| synth::outcome_summary(&r.outcome))
        .unwrap_or_default();
    if let Some(p) = &row.pnr {
        match p.fmax_mhz() {
            Some(f) => s.push_str(&format!(", Fmax {f:.1} MHz")),
            None => s.push_str(&format!(", pnr {:?}", status_word(&p.outcome))),
        }
    }
    s
}

fn status_word(o: &synth::PnrOutcome) -> &'static str {
    match o {
        synth::PnrOutcome::Ok { .. } => "ok",
        synth::PnrOutcome::Skipped { .. } => "skipped",
        synth::PnrOutcome::Failed { .. } => "failed",
        synth::PnrOutcome::TimedOut { .. } => "timed out",
    }
}
