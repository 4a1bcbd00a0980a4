//! Real synthesis and place-and-route: `tern synth` (Yosys, every family) and `tern pnr`
//! (nextpnr for ECP5, iCE40 and Gowin). Each run happens in its own work directory, with
//! a time limit, and its result — success, tool failure or unreadable output — is one
//! typed record, cached by (design content, tool versions, script). Time-outs are
//! reported but not cached: a longer limit may succeed.

pub mod cache;
pub mod harness;
pub mod report;
pub mod script;
pub mod tools;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tern_boards::{Board, Family, PnrTool};
use tern_hdl::top::TopDesign;
use tern_hdl::{write_design, Design};

use cache::ResultCache;
use report::{CellUsage, RouteReport, TimingEstimate, Utilisation};
use script::{Purpose, NETLIST_FILE, STAT_FILE, STA_FILE};
use tools::{RunStatus, Tool};

/// Bumped whenever a record's meaning changes, so old cache entries are not reused.
pub const RECORD_SCHEMA: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{tool} not found (tried {tried}); {hint}")]
    ToolMissing {
        tool: &'static str,
        tried: String,
        hint: &'static str,
    },
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error(transparent)]
    Emit(#[from] tern_hdl::emit::EmitError),
    #[error("board `{board}` ({family}) has no open place-and-route flow; `tern synth` reports a labelled timing estimate instead")]
    NoRouter { board: String, family: &'static str },
    #[error("a Verilog block or a whole top is placed out of context, which only the ECP5 flow does; board `{board}` is {family}")]
    OutOfContext { board: String, family: &'static str },
    /// Only the cache was to be asked (`SynthOptions::cache_only`), and it has no record.
    #[error("no cached record")]
    NotCached,
    #[error(
        "the engine cannot fit the {board}: its tables and adders alone need at least {floor} LUTs \
         (tables {tables}, row trees {trees}, accumulators {accumulators}) and the board has {available}; \
         reduce `engine.rows_parallel` (P = {p}) or `engine.groups_per_cycle` (Q = {q}){hint} (no tool was run)"
    )]
    WontFit {
        board: String,
        floor: u64,
        tables: u64,
        trees: u64,
        accumulators: u64,
        available: u64,
        p: usize,
        q: usize,
        hint: &'static str,
    },
}

/// The place-and-route tool of a board, if it has an open one.
pub fn router_tool(board: &Board) -> Option<Tool> {
    match board.toolchain.pnr {
        PnrTool::None => None,
        PnrTool::NextpnrEcp5 => Some(Tool::NextpnrEcp5),
        PnrTool::NextpnrIce40 => Some(Tool::NextpnrIce40),
        PnrTool::NextpnrHimbaechel => Some(Tool::NextpnrHimbaechelGowin),
    }
}

/// Refuse, before any tool runs (and before generating it), an engine whose structure
/// alone exceeds the board's LUTs (see `tern_hdl::cost`).
pub fn check_floor(config: &tern_hdl::DesignConfig, board: &Board) -> Result<(), SynthError> {
    let Some(cfg) = config.matmul() else {
        return Ok(());
    };
    let floor = tern_hdl::cost::lut_floor(cfg);
    if floor.total() > board.resources.luts {
        return Err(SynthError::WontFit {
            board: board.name.clone(),
            floor: floor.total(),
            tables: floor.tables,
            trees: floor.trees,
            accumulators: floor.accumulators,
            available: board.resources.luts,
            p: cfg.engine.rows_parallel,
            q: cfg.engine.groups_per_cycle,
            hint: if cfg.engine.token_block > 1 {
                ", or `engine.token_block`"
            } else {
                ""
            },
        });
    }
    Ok(())
}

impl SynthError {
    pub fn io(path: impl AsRef<Path>, cause: std::io::Error) -> SynthError {
        SynthError::Io {
            path: path.as_ref().display().to_string(),
            cause,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// tern's cache root: results in `results/`, work directories in `work/`.
    pub cache_root: PathBuf,
    /// Per tool run.
    pub time_limit: Duration,
    /// Ignore cached results (and overwrite them).
    pub force: bool,
    /// Keep work directories of successful runs too (failed runs always keep theirs).
    pub keep_work: bool,
    /// Answer from the cache only: a miss is `SynthError::NotCached`, no tool runs.
    pub cache_only: bool,
}

impl SynthOptions {
    pub fn new(cache_root: PathBuf) -> SynthOptions {
        SynthOptions {
            cache_root,
            time_limit: Duration::from_secs(3600),
            force: false,
            keep_work: false,
            cache_only: false,
        }
    }
}

/// Which design a record describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignId {
    pub engine: String,
    pub content_hash: String,
    pub top: String,
    pub config_toml: String,
}

impl DesignId {
    fn of(design: &Design) -> DesignId {
        let m = &design.manifest;
        DesignId {
            engine: m.engine.clone(),
            content_hash: m.content_hash.clone(),
            top: m.top.clone(),
            config_toml: m.config_toml.clone(),
        }
    }
}

// One record per tool run: the Ok variant's size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SynthOutcome {
    Ok {
        cells: BTreeMap<String, u64>,
        usage: CellUsage,
        utilisation: Vec<Utilisation>,
        /// Every resource within the board's budget.
        fits: bool,
        /// Xilinx only (no open router): see `report::TimingEstimate`.
        timing_estimate: Option<TimingEstimate>,
        /// A run with the engine's RTL blocks kept as hierarchy ([`synthesize_blocks`]):
        /// each block's cells (`hdl::graph::rtl_blocks` names, plus `glue` for the rest).
        /// `usage` is then their sum, which flattening would have optimised a little more.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<BTreeMap<String, CellUsage>>,
    },
    /// The tool failed, or its output could not be read.
    Failed {
        message: String,
        log_tail: String,
        work_dir: String,
    },
    TimedOut {
        limit_s: f64,
    },
}

/// One Yosys run on one design for one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthRecord {
    pub schema: u32,
    pub key: String,
    pub design: DesignId,
    pub board: String,
    pub family: Family,
    pub part: String,
    pub yosys: String,
    pub outcome: SynthOutcome,
    /// Wall time of the tool itself.
    pub tool_seconds: f64,
    /// A tool bug the run worked around, and how (see `script::corrected_xcu_lutrams`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workaround: Option<String>,
}

impl SynthRecord {
    pub fn usage(&self) -> Option<&CellUsage> {
        match &self.outcome {
            SynthOutcome::Ok { usage, .. } => Some(usage),
            _ => None,
        }
    }
}

/// A record and how it was obtained.
#[derive(Debug, Clone)]
pub struct Run<R> {
    pub record: R,
    pub cached: bool,
    /// Wall time of the whole step in tern, tools included.
    pub wall_seconds: f64,
}

/// A fresh work directory under the cache root: `work/{what}-{key}-{host}-{pid}-{n}`.
/// The first one a process makes also clears the directories that killed runs of this
/// host left behind.
fn work_dir(opts: &SynthOptions, key: &str, what: &str) -> Result<PathBuf, SynthError> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static SWEPT: std::sync::Once = std::sync::Once::new();
    let root = opts.cache_root.join("work");
    SWEPT.call_once(|| {
        let n = remove_stale_work_dirs(&root, &host_name(), |pid| {
            Path::new("/proc").join(pid.to_string()).exists()
        });
        if n > 0 {
            tracing::info!(
                "removed {n} work directories of killed runs under {}",
                root.display()
            );
        }
    });
    let dir = root.join(format!(
        "{what}-{}-{}-{}-{}",
        &key[..12],
        host_name(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| SynthError::io(&dir, e))?;
    Ok(dir)
}

/// Marks a work directory kept on purpose (a failed run, `--keep-work`): never swept.
const KEPT_MARKER: &str = "KEPT";

fn finish_work_dir(dir: &Path, ok: bool, opts: &SynthOptions) {
    if ok && !opts.keep_work {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        let why = if ok { "--keep-work" } else { "the run failed" };
        let _ = std::fs::write(dir.join(KEPT_MARKER), format!("kept: {why}\n"));
    }
}

/// This machine's name, as work directories record it (a shared cache may be written by
/// several hosts; only this host's processes can be checked for life).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(['/', '-'], "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Remove the work directories under `root` that a process of `host` made and left
/// unfinished (no `KEPT` marker) and that is no longer `alive`; the count removed.
fn remove_stale_work_dirs(root: &Path, host: &str, alive: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // {what}-{key}-{host}-{pid}-{n}: the host and pid are the third and fourth fields.
        let fields: Vec<&str> = name.split('-').collect();
        let [_, _, h, pid, _] = fields[..] else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let path = entry.path();
        if h != host || alive(pid) || path.join(KEPT_MARKER).exists() {
            continue;
        }
        if std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn design_files(design: &Design) -> Vec<&str> {
    design.manifest.files.iter().map(|s| s.as_str()).collect()
}

/// A Verilog block that is no design of its own (the one top's sequencer, units and
/// memory interconnect, written by `tern verilog`): one file and its top module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerilogBlock {
    pub file: String,
    pub top: String,
    pub text: String,
    content_hash: String,
}

impl VerilogBlock {
    pub fn new(file: &str, top: &str, text: String) -> VerilogBlock {
        let content_hash = tern_hdl::emit::content_hash(&text, top);
        VerilogBlock {
            file: file.to_string(),
            top: top.to_string(),
            text,
            content_hash,
        }
    }
}

/// What one Yosys run reads: an engine alone, the accelerator top around it, or a
/// Verilog block.
#[derive(Debug, Clone, Copy)]
pub enum Unit<'a> {
    Engine(&'a Design),
    Top(&'a TopDesign),
    Block(&'a VerilogBlock),
}

impl Unit<'_> {
    /// The engine the unit holds (none in a Verilog block).
    pub fn engine(&self) -> Option<&Design> {
        match self {
            Unit::Engine(d) => Some(d),
            Unit::Top(t) => Some(&t.engine),
            Unit::Block(_) => None,
        }
    }
    fn content_hash(&self) -> &str {
        match self {
            Unit::Engine(d) => &d.manifest.content_hash,
            Unit::Top(t) => &t.content_hash,
            Unit::Block(b) => &b.content_hash,
        }
    }
    fn top_module(&self) -> &str {
        match self {
            Unit::Engine(d) => &d.manifest.top,
            Unit::Top(_) => tern_hdl::top::TOP_MODULE,
            Unit::Block(b) => &b.top,
        }
    }
    fn files(&self) -> Vec<&str> {
        match self {
            Unit::Engine(d) => design_files(d),
            Unit::Top(_) => TopDesign::sources().to_vec(),
            Unit::Block(b) => vec![b.file.as_str()],
        }
    }
    fn write(&self, dir: &Path) -> Result<(), SynthError> {
        match self {
            Unit::Engine(d) => {
                write_design(d, dir)?;
            }
            Unit::Top(t) => {
                write_design(&t.engine, dir)?;
                std::fs::write(dir.join(tern_hdl::top::TOP_FILE), &t.top_verilog)
                    .map_err(|e| SynthError::io(dir, e))?;
            }
            Unit::Block(b) => {
                std::fs::write(dir.join(&b.file), &b.text).map_err(|e| SynthError::io(dir, e))?;
            }
        }
        Ok(())
    }
    fn id(&self) -> DesignId {
        match self {
            Unit::Engine(d) => DesignId::of(d),
            Unit::Top(t) => DesignId {
                content_hash: self.content_hash().to_string(),
                top: tern_hdl::top::TOP_MODULE.to_string(),
                ..DesignId::of(&t.engine)
            },
            Unit::Block(b) => DesignId {
                engine: "verilog".into(),
                content_hash: b.content_hash.clone(),
                top: b.top.clone(),
                config_toml: String::new(),
            },
        }
    }
    /// The modules kept as hierarchy for per-block labels: the engine's RTL blocks and,
    /// in a top, the engine core itself, so that the top module's own cells are the
    /// shell's and the core's own cells the engine's glue.
    fn kept_modules(&self) -> Vec<String> {
        match self {
            Unit::Engine(d) => kept_modules(d),
            Unit::Top(t) => {
                let mut keep = kept_modules(&t.engine);
                keep.push(ENGINE_CORE_MODULE.to_string());
                keep
            }
            Unit::Block(_) => vec![],
        }
    }
    fn shell_module(&self) -> Option<&'static str> {
        match self {
            Unit::Top(_) => Some(tern_hdl::top::TOP_MODULE),
            _ => None,
        }
    }
}

/// Synthesise a Verilog block for `board` with the project's Yosys script (cells and,
/// for Xilinx, the unrouted timing estimate), or return the cached record.
pub fn synthesize_verilog(
    block: &VerilogBlock,
    board: &Board,
    opts: &SynthOptions,
) -> Result<Run<SynthRecord>, SynthError> {
    synthesize_unit(Unit::Block(block), board, opts, Purpose::Report)
}

/// The rust-hdl core's module name (`tern_engine` wraps it).
const ENGINE_CORE_MODULE: &str = "top";

/// Synthesise `design` for `board` with Yosys, or return the cached record.
pub fn synthesize(
    design: &Design,
    board: &Board,
    opts: &SynthOptions,
) -> Result<Run<SynthRecord>, SynthError> {
    synthesize_unit(Unit::Engine(design), board, opts, Purpose::Report)
}

/// Synthesise `design` with its RTL blocks (`hdl::graph::rtl_blocks`) kept as hierarchy
/// and report each block's cells: the per-block labels the surrogate learns from. A
/// second Yosys run beside [`synthesize`]'s flattened one, cached on its own.
pub fn synthesize_blocks(
    design: &Design,
    board: &Board,
    opts: &SynthOptions,
) -> Result<Run<SynthRecord>, SynthError> {
    synthesize_unit(Unit::Engine(design), board, opts, Purpose::Blocks)
}

/// The rust-hdl modules (`top$<instance>`) of the design's RTL blocks that exist in it.
fn kept_modules(design: &Design) -> Vec<String> {
    tern_hdl::graph::rtl_blocks(&design.manifest.engine)
        .iter()
        .flat_map(|(_, instances)| instances.iter())
        .map(|i| format!("top${i}"))
        .filter(|m| design.core_verilog.contains(&format!("module {m}(")))
        .collect()
}

/// Synthesise an engine or a whole top (`Purpose::Report` or `Purpose::Blocks`; in a
/// top's blocks the shell is `hdl::graph::SHELL`), or return the cached record.
pub fn synthesize_unit(
    unit: Unit,
    board: &Board,
    opts: &SynthOptions,
    purpose: Purpose,
) -> Result<Run<SynthRecord>, SynthError> {
    let start = Instant::now();
    if let Some(design) = unit.engine() {
        check_floor(&design.config, board)?;
    }
    let yosys = tools::find(Tool::yosys_for(board.family))?;
    let keep = match purpose {
        Purpose::Blocks => unit.kept_modules(),
        _ => vec![],
    };
    let script = |lutram_fix| {
        script::yosys_script_with(
            board.family,
            &unit.files(),
            unit.top_module(),
            purpose,
            &keep,
            lutram_fix,
        )
    };
    let first = run_script(
        unit,
        board,
        opts,
        purpose,
        &yosys,
        &script(false),
        None,
        start,
    )?;
    // Yosys 0.70's UltraScale LUT-RAM library can pick a memory shape its own techmap
    // cannot build (`script::corrected_xcu_lutrams`); such a design is synthesised again
    // with that one library entry corrected. Designs that never hit it keep the stock flow.
    let hit_bug = matches!(&first.record.outcome,
        SynthOutcome::Failed { log_tail, .. } if log_tail.contains(script::LUTRAM_BUG_SIGNATURE));
    if !(hit_bug && board.family == Family::Xcup) {
        return Ok(first);
    }
    let Some(library) = tools::share_dir(&yosys)
        .and_then(|d| std::fs::read_to_string(d.join("xilinx/lutrams_xcu.txt")).ok())
        .and_then(|stock| script::corrected_xcu_lutrams(&stock))
    else {
        return Ok(first);
    };
    let mut second = run_script(
        unit,
        board,
        opts,
        purpose,
        &yosys,
        &script(true),
        Some((script::LUTRAM_FIX_FILE, &library)),
        start,
    )?;
    second.record.workaround = Some(format!(
        "Yosys's lutrams_xcu.txt offers a 2^16-word single-port LUT-RAM its techmap cannot \
         build (\"{}\"): memories mapped with it corrected to RAM512X1S ({})",
        script::LUTRAM_BUG_SIGNATURE,
        script::LUTRAM_FIX_FILE
    ));
    if !second.cached {
        second.record.tool_seconds += first.record.tool_seconds;
    }
    Ok(second)
}

/// One Yosys run of `text` (and `extra`, a file it reads, part of the cache key), or
/// its cached record.
#[allow(clippy::too_many_arguments)]
fn run_script(
    unit: Unit,
    board: &Board,
    opts: &SynthOptions,
    purpose: Purpose,
    yosys: &tools::ToolBinary,
    text: &str,
    extra: Option<(&str, &str)>,
    start: Instant,
) -> Result<Run<SynthRecord>, SynthError> {
    let schema = RECORD_SCHEMA.to_string();
    let mut key_parts = vec!["synth", &schema, unit.content_hash(), &yosys.version, text];
    key_parts.extend(extra.map(|(_, content)| content));
    let key = cache::key(&key_parts);
    let cache = ResultCache::new(&opts.cache_root);
    if !opts.force {
        if let Some(mut record) = cache.get::<SynthRecord>(&key) {
            if record.schema == RECORD_SCHEMA {
                // The verdicts depend on the board; the cells do not.
                if let SynthOutcome::Ok {
                    usage,
                    utilisation,
                    fits,
                    ..
                } = &mut record.outcome
                {
                    *utilisation = report::utilisation(usage, board);
                    *fits = utilisation.iter().all(|u| u.fits);
                }
                record.board = board.name.clone();
                record.part = board.part.clone();
                return Ok(Run {
                    record,
                    cached: true,
                    wall_seconds: start.elapsed().as_secs_f64(),
                });
            }
        }
    }
    if opts.cache_only {
        return Err(SynthError::NotCached);
    }
    let dir = work_dir(opts, &key, "synth")?;
    unit.write(&dir)?;
    std::fs::write(dir.join("synth.ys"), text).map_err(|e| SynthError::io(&dir, e))?;
    if let Some((name, content)) = extra {
        std::fs::write(dir.join(name), content).map_err(|e| SynthError::io(&dir, e))?;
    }
    let run = tools::run(
        yosys,
        &yosys_args("synth.ys"),
        &dir,
        "yosys.out",
        opts.time_limit,
    )?;
    let outcome = match run.status {
        RunStatus::TimedOut => SynthOutcome::TimedOut {
            limit_s: opts.time_limit.as_secs_f64(),
        },
        RunStatus::Failed(how) => failed(
            format!("yosys failed ({how})"),
            &yosys_tail(&dir, &run.log_tail),
            &dir,
        ),
        RunStatus::Success => match read_synth_outputs(&dir, board, purpose, unit) {
            Ok(ok) => ok,
            Err(message) => failed(message, &yosys_tail(&dir, &run.log_tail), &dir),
        },
    };
    let record = SynthRecord {
        schema: RECORD_SCHEMA,
        key: key.clone(),
        design: unit.id(),
        board: board.name.clone(),
        family: board.family,
        part: board.part.clone(),
        yosys: yosys.version.clone(),
        outcome,
        tool_seconds: run.seconds,
        workaround: None,
    };
    if !matches!(record.outcome, SynthOutcome::TimedOut { .. }) {
        cache.put(&key, &record)?;
    }
    finish_work_dir(
        &dir,
        matches!(record.outcome, SynthOutcome::Ok { .. }),
        opts,
    );
    Ok(Run {
        record,
        cached: false,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Yosys's own log file: the YoWASP build loses its standard output after it runs ABC,
/// so the log a failure is reported from is the one Yosys writes itself.
pub const YOSYS_LOG: &str = "yosys.log";

fn yosys_args(script: &str) -> Vec<String> {
    vec!["-q".into(), "-l".into(), YOSYS_LOG.into(), script.into()]
}

/// The tail of Yosys's own log, or of its captured output when it wrote none.
fn yosys_tail(dir: &Path, captured: &str) -> String {
    let own = tools::tail(&dir.join(YOSYS_LOG), 12);
    if own.is_empty() {
        captured.to_string()
    } else {
        own
    }
}

fn failed(message: String, log_tail: &str, dir: &Path) -> SynthOutcome {
    SynthOutcome::Failed {
        message,
        log_tail: log_tail.to_string(),
        work_dir: dir.display().to_string(),
    }
}

fn read_synth_outputs(
    dir: &Path,
    board: &Board,
    purpose: Purpose,
    unit: Unit,
) -> Result<SynthOutcome, String> {
    let stat_path = dir.join(STAT_FILE);
    let stat = std::fs::read_to_string(&stat_path)
        .map_err(|e| format!("yosys left no {STAT_FILE}: {e}"))?;
    let mut cells = report::parse_stat_json(&stat).map_err(|e| format!("{STAT_FILE}: {e}"))?;
    let blocks = if purpose == Purpose::Blocks {
        let modules = report::parse_stat_modules(&stat).map_err(|e| format!("{STAT_FILE}: {e}"))?;
        let engine = unit
            .engine()
            .ok_or("a Verilog block has no RTL blocks to keep")?;
        let blocks = report::block_usage(
            board.family,
            &modules,
            tern_hdl::graph::rtl_blocks(&engine.manifest.engine),
            unit.shell_module(),
        )
        .map_err(|e| format!("{STAT_FILE}: {e}"))?;
        // The design summary counts each kept module's instance as a cell: not hardware.
        cells.retain(|cell, _| !modules.contains_key(cell));
        Some(blocks)
    } else {
        None
    };
    let usage = report::classify(board.family, &cells);
    let timing_estimate =
        if purpose == Purpose::Report && matches!(board.family, Family::Xcup | Family::Xc7) {
            let sta = std::fs::read_to_string(dir.join(STA_FILE))
                .map_err(|e| format!("yosys left no {STA_FILE}: {e}"))?;
            Some(report::parse_sta(&sta).map_err(|e| format!("{STA_FILE}: {e}"))?)
        } else {
            None
        };
    let utilisation = report::utilisation(&usage, board);
    Ok(SynthOutcome::Ok {
        fits: utilisation.iter().all(|u| u.fits),
        cells,
        usage,
        utilisation,
        timing_estimate,
        blocks,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PnrOutcome {
    Ok {
        route: RouteReport,
        /// Flip-flops of the IO harness included in `route.utilisation`, if one was used.
        harness_ffs: Option<usize>,
        /// Whether the achieved Fmax reaches the board's default clock.
        meets_board_clock: bool,
    },
    /// Not attempted, e.g. synthesis says the design does not fit.
    Skipped {
        reason: String,
    },
    Failed {
        stage: String,
        message: String,
        log_tail: String,
        work_dir: String,
    },
    TimedOut {
        stage: String,
        limit_s: f64,
    },
}

/// One Yosys + nextpnr run on one design for one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PnrRecord {
    pub schema: u32,
    pub key: String,
    pub design: DesignId,
    pub board: String,
    pub part: String,
    pub yosys: String,
    pub nextpnr: String,
    pub seed: u64,
    pub target_mhz: f64,
    pub outcome: PnrOutcome,
    pub tool_seconds: f64,
}

impl PnrRecord {
    pub fn fmax_mhz(&self) -> Option<f64> {
        match &self.outcome {
            PnrOutcome::Ok { route, .. } => Some(route.fmax_mhz),
            _ => None,
        }
    }
}

/// Place and route `design` on `board` with nextpnr (after synthesis, which must fit).
pub fn place_and_route(
    design: &Design,
    board: &Board,
    seed: u64,
    opts: &SynthOptions,
) -> Result<Run<PnrRecord>, SynthError> {
    place_and_route_unit(Unit::Engine(design), board, seed, opts)
}

/// Place and route an engine or a Verilog block (`Unit::Block`: out of context, so on
/// ECP5 only; elsewhere the engine's IO harness is needed and a block has none).
pub fn place_and_route_unit(
    unit: Unit,
    board: &Board,
    seed: u64,
    opts: &SynthOptions,
) -> Result<Run<PnrRecord>, SynthError> {
    let start = Instant::now();
    let router = router_tool(board).ok_or_else(|| SynthError::NoRouter {
        board: board.name.clone(),
        family: board.family.name(),
    })?;
    if !matches!(unit, Unit::Engine(_)) && board.family != Family::Ecp5 {
        return Err(SynthError::OutOfContext {
            board: board.name.clone(),
            family: board.family.name(),
        });
    }
    let synth = synthesize_unit(unit, board, opts, Purpose::Report)?;
    let yosys = tools::find(Tool::yosys_for(board.family))?;
    let nextpnr = tools::find(router)?;
    // ECP5 has an out-of-context mode; the others place the engine inside the IO harness.
    let engine = unit.engine();
    let harness = engine
        .filter(|_| board.family != Family::Ecp5)
        .map(|d| harness::harness_verilog(&d.manifest.top, &d.manifest.ports));
    let mut files = unit.files();
    let top = match &harness {
        Some(_) => {
            files.push(harness::HARNESS_FILE);
            harness::HARNESS_TOP
        }
        None => unit.top_module(),
    };
    let text = script::yosys_script(board.family, &files, top, Purpose::Netlist);
    let args = nextpnr_args(board, seed);
    let key = cache::key(&[
        "pnr",
        &RECORD_SCHEMA.to_string(),
        unit.content_hash(),
        &yosys.version,
        &nextpnr.version,
        &text,
        harness.as_deref().unwrap_or(""),
        &args.join(" "),
    ]);
    let record = |outcome, tool_seconds| PnrRecord {
        schema: RECORD_SCHEMA,
        key: key.clone(),
        design: unit.id(),
        board: board.name.clone(),
        part: board.part.clone(),
        yosys: yosys.version.clone(),
        nextpnr: nextpnr.version.clone(),
        seed,
        target_mhz: board.clock.default_mhz,
        outcome,
        tool_seconds,
    };
    let done = |record, cached| Run {
        record,
        cached,
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    match &synth.record.outcome {
        SynthOutcome::Ok { fits: true, .. } => {}
        SynthOutcome::Ok { utilisation, .. } => {
            let over: Vec<String> = utilisation
                .iter()
                .filter(|u| !u.fits)
                .map(|u| format!("{} {:.0}%", u.resource, u.percent))
                .collect();
            let reason = format!("synthesis says it does not fit: {}", over.join(", "));
            return Ok(done(record(PnrOutcome::Skipped { reason }, 0.0), false));
        }
        other => {
            let reason = format!("synthesis did not succeed: {}", outcome_summary(other));
            return Ok(done(record(PnrOutcome::Skipped { reason }, 0.0), false));
        }
    }
    let cache = ResultCache::new(&opts.cache_root);
    if !opts.force {
        if let Some(r) = cache.get::<PnrRecord>(&key) {
            if r.schema == RECORD_SCHEMA {
                return Ok(done(r, true));
            }
        }
    }
    if opts.cache_only {
        return Err(SynthError::NotCached);
    }
    let dir = work_dir(opts, &key, "pnr")?;
    unit.write(&dir)?;
    if let Some(h) = &harness {
        std::fs::write(dir.join(harness::HARNESS_FILE), h).map_err(|e| SynthError::io(&dir, e))?;
    }
    if let Some(pins) = &board.toolchain.harness_pins {
        let pins = [&pins[0], &pins[1], &pins[2], &pins[3]].map(|s| s.as_str());
        std::fs::write(dir.join("pins.cst"), harness::gowin_cst(pins))
            .map_err(|e| SynthError::io(&dir, e))?;
    }
    std::fs::write(dir.join("netlist.ys"), &text).map_err(|e| SynthError::io(&dir, e))?;
    let limit_s = opts.time_limit.as_secs_f64();
    let y = tools::run(
        &yosys,
        &yosys_args("netlist.ys"),
        &dir,
        "yosys.out",
        opts.time_limit,
    )?;
    let mut seconds = y.seconds;
    let outcome = match y.status {
        RunStatus::TimedOut => PnrOutcome::TimedOut {
            stage: "yosys".into(),
            limit_s,
        },
        RunStatus::Failed(how) => PnrOutcome::Failed {
            stage: "yosys".into(),
            message: format!("yosys failed ({how})"),
            log_tail: yosys_tail(&dir, &y.log_tail),
            work_dir: dir.display().to_string(),
        },
        RunStatus::Success => {
            let n = tools::run(&nextpnr, &args, &dir, "nextpnr.log", opts.time_limit)?;
            seconds += n.seconds;
            match n.status {
                RunStatus::TimedOut => PnrOutcome::TimedOut {
                    stage: "nextpnr".into(),
                    limit_s,
                },
                RunStatus::Failed(how) => PnrOutcome::Failed {
                    stage: "nextpnr".into(),
                    message: format!("nextpnr failed ({how})"),
                    log_tail: n.log_tail,
                    work_dir: dir.display().to_string(),
                },
                RunStatus::Success => match std::fs::read_to_string(dir.join("report.json"))
                    .map_err(|e| format!("nextpnr left no report.json: {e}"))
                    .and_then(|t| report::parse_nextpnr_report(&t))
                {
                    Ok(route) => PnrOutcome::Ok {
                        meets_board_clock: route.fmax_mhz >= board.clock.default_mhz,
                        harness_ffs: engine
                            .filter(|_| harness.is_some())
                            .map(|d| harness::harness_ffs(&d.manifest.ports)),
                        route,
                    },
                    Err(message) => PnrOutcome::Failed {
                        stage: "nextpnr".into(),
                        message,
                        log_tail: n.log_tail,
                        work_dir: dir.display().to_string(),
                    },
                },
            }
        }
    };
    let rec = record(outcome, seconds);
    if !matches!(rec.outcome, PnrOutcome::TimedOut { .. }) {
        cache.put(&key, &rec)?;
    }
    finish_work_dir(&dir, matches!(rec.outcome, PnrOutcome::Ok { .. }), opts);
    Ok(done(rec, false))
}

/// nextpnr's command line for `board` (relative paths: it runs in the work directory).
pub fn nextpnr_args(board: &Board, seed: u64) -> Vec<String> {
    let t = &board.toolchain;
    let s = |x: &Option<String>| x.clone().unwrap_or_default();
    let mut args: Vec<String> = match t.pnr {
        PnrTool::None => vec![],
        PnrTool::NextpnrEcp5 => vec![
            format!("--{}", s(&t.device)),
            "--package".into(),
            s(&t.package),
            "--speed".into(),
            s(&t.speed),
            "--out-of-context".into(),
        ],
        PnrTool::NextpnrIce40 => vec![
            format!("--{}", s(&t.device)),
            "--package".into(),
            s(&t.package),
        ],
        PnrTool::NextpnrHimbaechel => vec![
            "--device".into(),
            s(&t.device),
            "--vopt".into(),
            format!("family={}", s(&t.pnr_family)),
            "--vopt".into(),
            "cst=pins.cst".into(),
        ],
    };
    args.extend(
        [
            "--json",
            NETLIST_FILE,
            "--report",
            "report.json",
            "--freq",
            &format!("{}", board.clock.default_mhz),
            "--seed",
            &seed.to_string(),
            // Report the Fmax reached rather than fail when it is below the board clock.
            "--timing-allow-fail",
            "-q",
        ]
        .map(String::from),
    );
    args
}

/// One line on how a synthesis ended (for tables and skip reasons).
pub fn outcome_summary(outcome: &SynthOutcome) -> String {
    match outcome {
        SynthOutcome::Ok { usage, fits, .. } => format!(
            "{} LUT, {} FF, {} DSP, {} BRAM{}",
            usage.luts,
            usage.ffs,
            usage.dsps,
            usage.bram_blocks,
            if *fits { "" } else { " (does not fit)" }
        ),
        SynthOutcome::Failed { message, .. } => format!("FAILED: {message}"),
        SynthOutcome::TimedOut { limit_s } => format!("TIMED OUT after {limit_s:.0} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A whole top is synthesised from its three sources with `tern_top` on top; its
    /// per-block run keeps the engine core too, so that the top module's own cells are
    /// the shell's; its record names the top's content hash, not the engine's.
    #[test]
    fn a_whole_top_keeps_the_engine_core_apart_from_its_shell() {
        let cfg = tern_hdl::config::ConfigBuilder::tlmm(3, 2, 2)
            .workload(64, 96, 1)
            .build()
            .unwrap();
        let top = tern_hdl::top::generate_top(&cfg).unwrap();
        let unit = Unit::Top(&top);
        assert_eq!(unit.top_module(), tern_hdl::top::TOP_MODULE);
        assert_eq!(unit.files(), TopDesign::sources().to_vec());
        let keep = unit.kept_modules();
        assert!(keep.contains(&ENGINE_CORE_MODULE.to_string()), "{keep:?}");
        assert!(top
            .engine
            .core_verilog
            .contains(&format!("module {ENGINE_CORE_MODULE}(")));
        for m in &keep {
            assert!(
                top.engine.core_verilog.contains(&format!("module {m}(")),
                "{m}"
            );
        }
        assert_eq!(unit.shell_module(), Some(tern_hdl::top::TOP_MODULE));
        assert_eq!(unit.id().content_hash, top.content_hash);
        let engine = Unit::Engine(&top.engine);
        assert!(!engine
            .kept_modules()
            .contains(&ENGINE_CORE_MODULE.to_string()));
        assert_eq!(engine.shell_module(), None);
    }

    /// A run killed mid-synthesis leaves its work directory behind; the next process of
    /// the same host removes it, and nothing that is alive, kept or another host's.
    #[test]
    fn work_directories_of_killed_runs_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let host = host_name();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let make = |name: String, kept: bool| {
            let d = root.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("synth.ys"), "read_verilog x.v\n").unwrap();
            if kept {
                std::fs::write(d.join(KEPT_MARKER), "kept: the run failed\n").unwrap();
            }
            d
        };
        let killed = make(format!("synth-0123456789ab-{host}-{dead}-0"), false);
        let killed_pnr = make(format!("pnr-0123456789ab-{host}-{dead}-3"), false);
        let failed = make(format!("synth-0123456789ab-{host}-{dead}-1"), true);
        let running = make(format!("synth-0123456789ab-{host}-{me}-0"), false);
        let elsewhere = make(format!("synth-0123456789ab-otherhost-{dead}-0"), false);
        let unrelated = make("notes".into(), false);
        let alive = |pid: u32| Path::new("/proc").join(pid.to_string()).exists();
        assert_eq!(remove_stale_work_dirs(root.path(), &host, alive), 2);
        assert!(!killed.exists() && !killed_pnr.exists());
        for d in [failed, running, elsewhere, unrelated] {
            assert!(d.exists(), "{} was removed", d.display());
        }
        assert_eq!(
            remove_stale_work_dirs(&root.path().join("absent"), &host, alive),
            0
        );
    }
}
