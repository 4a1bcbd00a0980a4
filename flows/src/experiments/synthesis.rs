//! The `tern synth`, `tern pnr` and `tern sweep` commands: run the flows in `synth` and
//! `sweep`, print what an FPGA engineer asks first (what does it cost, does it fit, how
//! fast), and write the typed records as JSON.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::{generate_any, Design, DesignConfig};

use tern_build::job::{SweepItem, SweepPlan, SweepRow};
use tern_build::sweep;
use tern_build::synth::{self, PnrOutcome, PnrRecord, SynthOptions, SynthOutcome, SynthRecord};

/// The board named on the command line, else the config's `board`.
pub fn board_for(config: &DesignConfig, board: Option<&str>, config_path: &Path) -> Result<Board> {
    match board.or(config.board()) {
        Some(b) => Ok(Board::resolve(b)?),
        None => bail!(
            "{}: no board; give --board or set `board = \"...\"` in the config (`tern boards` lists them)",
            config_path.display()
        ),
    }
}

pub use synth::cache::write_json;

/// Read the config, pick the board, generate the design, and say so.
fn prepare(config_path: &Path, board: Option<&str>, what: &str) -> Result<(Design, Board)> {
    let cfg = DesignConfig::from_path(config_path)?;
    let board = board_for(&cfg, board, config_path)?;
    synth::check_floor(&cfg, &board)?;
    let design = generate_any(&cfg)?;
    println!(
        "tern {what}: {} ({} engine, hash {}) for {} ({}, {})",
        config_path.display(),
        design.manifest.engine,
        design.short_hash(),
        board.name,
        board.part,
        board.family.name()
    );
    Ok((design, board))
}

pub fn synth(
    config_path: &Path,
    board: Option<&str>,
    opts: &SynthOptions,
    json: Option<&Path>,
) -> Result<()> {
    let (design, board) = prepare(config_path, board, "synth")?;
    let run = synth::synthesize(&design, &board, opts)?;
    print_synth(&run.record, run.cached, run.wall_seconds);
    if let Some(path) = json {
        write_json(path, &run.record)?;
        println!("  report       {}", path.display());
    }
    match &run.record.outcome {
        SynthOutcome::Ok { .. } => Ok(()),
        _ => bail!("synthesis of {} did not succeed", config_path.display()),
    }
}

/// A Verilog block from the command line: its file name and top module checked.
fn verilog_block(
    path: &Path,
    top: &str,
    text: String,
    board: &Board,
    what: &str,
) -> Result<synth::VerilogBlock> {
    let file = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("--verilog: the path names no file")?;
    if !text.contains(&format!("module {top}")) {
        bail!("{}: no module `{top}` in it", path.display());
    }
    println!(
        "tern {what}: {} (module {top}) for {} ({}, {})",
        path.display(),
        board.name,
        board.part,
        board.family.name()
    );
    Ok(synth::VerilogBlock::new(file, top, text))
}

/// `tern synth --verilog FILE --top MODULE --board B`: a Verilog block through the
/// project's Yosys script.
pub fn synth_verilog(
    path: &Path,
    top: &str,
    text: String,
    board: &str,
    opts: &SynthOptions,
    json: Option<&Path>,
) -> Result<()> {
    let board = Board::resolve(board)?;
    let block = verilog_block(path, top, text, &board, "synth")?;
    let run = synth::synthesize_verilog(&block, &board, opts)?;
    print_synth(&run.record, run.cached, run.wall_seconds);
    if let Some(path) = json {
        write_json(path, &run.record)?;
        println!("  report       {}", path.display());
    }
    match &run.record.outcome {
        SynthOutcome::Ok { .. } => Ok(()),
        _ => bail!("synthesis of {} did not succeed", path.display()),
    }
}

/// `tern pnr --verilog FILE --top MODULE --board B`: a Verilog block placed and routed
/// out of context (ECP5).
pub fn pnr_verilog(
    path: &Path,
    top: &str,
    text: String,
    board: &str,
    seed: u64,
    opts: &SynthOptions,
    json: Option<&Path>,
) -> Result<()> {
    let board = Board::resolve(board)?;
    let block = verilog_block(path, top, text, &board, "pnr")?;
    let run = synth::place_and_route_unit(synth::Unit::Block(&block), &board, seed, opts)?;
    print_pnr(&run.record, run.cached, run.wall_seconds);
    if let Some(path) = json {
        write_json(path, &run.record)?;
        println!("  report       {}", path.display());
    }
    match &run.record.outcome {
        PnrOutcome::Ok { .. } => Ok(()),
        _ => bail!("place and route of {} did not succeed", path.display()),
    }
}

pub fn print_synth(r: &SynthRecord, cached: bool, wall: f64) {
    println!(
        "  tool         {} ({})",
        r.yosys,
        if cached {
            "cached result".to_string()
        } else {
            format!("{:.1} s in the tool, {:.1} s in all", r.tool_seconds, wall)
        }
    );
    if let Some(w) = &r.workaround {
        println!("  workaround   {w}");
    }
    match &r.outcome {
        SynthOutcome::Ok {
            usage,
            utilisation,
            fits,
            timing_estimate,
            ..
        } => {
            let sizes: Vec<String> = usage
                .luts_by_size
                .iter()
                .map(|(k, v)| format!("LUT{k} {v}"))
                .collect();
            println!(
                "  cells        {}; LUT-RAM {} LUTs; muxes {}; carry {}; FF {}",
                sizes.join(", "),
                usage.lutram_luts,
                usage.muxes,
                usage.carry,
                usage.ffs
            );
            if usage.lut1() > 0 {
                println!(
                    "  LUT1         {} of the {} LUTs are 1-input buffers or inverters, which Vivado absorbs ({} without them)",
                    usage.lut1(),
                    usage.luts,
                    usage.luts - usage.lut1()
                );
            }
            if !usage.other.is_empty() {
                println!("  unclassified {:?}", usage.other);
            }
            println!("  resource         used   available    util  verdict");
            for u in utilisation {
                println!(
                    "  {:<8} {:>12} {:>11} {:>6.1}%  {}",
                    u.resource,
                    trim_float(u.used),
                    u.available,
                    u.percent.min(9999.9),
                    if u.fits { "fits" } else { "DOES NOT FIT" }
                );
            }
            println!(
                "  verdict      {}",
                if *fits {
                    format!("fits on {}", r.board)
                } else {
                    format!("does NOT fit on {}", r.board)
                }
            );
            if let Some(t) = timing_estimate {
                println!(
                    "  logic depth  {:.2} ns unrouted logic delay: {} LUT, {} mux, {} carry cells to {}",
                    t.logic_delay_ns, t.lut_levels, t.mux_levels, t.carry_cells, t.endpoint
                );
                println!("               ({})", t.kind);
            }
        }
        SynthOutcome::Failed {
            message,
            log_tail,
            work_dir,
        } => {
            println!("  FAILED       {message}");
            println!("  work dir     {work_dir}");
            for l in log_tail.lines() {
                println!("    | {l}");
            }
        }
        SynthOutcome::TimedOut { limit_s } => {
            println!(
                "  TIMED OUT    after the {limit_s:.0} s limit (not cached; raise --time-limit)"
            )
        }
    }
}

fn trim_float(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

pub fn pnr(
    config_path: &Path,
    board: Option<&str>,
    seed: u64,
    opts: &SynthOptions,
    json: Option<&Path>,
) -> Result<()> {
    let (design, board) = prepare(config_path, board, "pnr")?;
    if !board.has_router() {
        // No open router: the synthesis report carries the labelled logic-depth estimate.
        println!(
            "  no open place-and-route for {} ({}): no Fmax. Yosys's logic-depth estimate instead:",
            board.name,
            board.family.name()
        );
        let run = synth::synthesize(&design, &board, opts)?;
        print_synth(&run.record, run.cached, run.wall_seconds);
        if let Some(path) = json {
            write_json(path, &run.record)?;
        }
        return Ok(());
    }
    let run = synth::place_and_route(&design, &board, seed, opts)?;
    print_pnr(&run.record, run.cached, run.wall_seconds);
    if let Some(path) = json {
        write_json(path, &run.record)?;
        println!("  report       {}", path.display());
    }
    match &run.record.outcome {
        PnrOutcome::Ok { .. } => Ok(()),
        _ => bail!(
            "place and route of {} did not succeed",
            config_path.display()
        ),
    }
}

pub fn print_pnr(r: &PnrRecord, cached: bool, wall: f64) {
    println!(
        "  tools        {} + {} (seed {}; {})",
        r.yosys,
        r.nextpnr,
        r.seed,
        if cached {
            "cached result".to_string()
        } else {
            format!("{:.1} s in the tools, {:.1} s in all", r.tool_seconds, wall)
        }
    );
    match &r.outcome {
        PnrOutcome::Ok {
            route,
            harness_ffs,
            meets_board_clock,
        } => {
            println!(
                "  Fmax         {:.2} MHz after routing (board clock {} MHz: {})",
                route.fmax_mhz,
                r.target_mhz,
                if *meets_board_clock { "met" } else { "NOT met" }
            );
            println!("  post-route   bel               used   available    util");
            for (bel, (used, available)) in &route.utilisation {
                println!(
                    "               {:<14} {:>8} {:>11} {:>6.1}%",
                    bel,
                    used,
                    available,
                    100.0 * *used as f64 / (*available).max(1) as f64
                );
            }
            if let Some(h) = harness_ffs {
                println!("  note         includes the IO harness: {h} FFs (one per engine port bit) and their feedback logic");
            }
        }
        PnrOutcome::Skipped { reason } => println!("  SKIPPED      {reason}"),
        PnrOutcome::Failed {
            stage,
            message,
            log_tail,
            work_dir,
        } => {
            println!("  FAILED       {stage}: {message}");
            println!("  work dir     {work_dir}");
            for l in log_tail.lines() {
                println!("    | {l}");
            }
        }
        PnrOutcome::TimedOut { stage, limit_s } => {
            println!("  TIMED OUT    {stage} after the {limit_s:.0} s limit (not cached)")
        }
    }
}

/// Config files named directly, or every `*.toml` in a named directory.
pub fn collect_configs(paths: &[PathBuf]) -> Result<Vec<SweepItem>> {
    let mut files = vec![];
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no config files given (a directory must hold *.toml files)");
    }
    files
        .iter()
        .map(|f| {
            Ok(SweepItem {
                name: f
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default(),
                config: DesignConfig::from_path(f)?,
            })
        })
        .collect()
}

pub fn sweep(
    items: &[SweepItem],
    boards: &[Board],
    plan: SweepPlan,
    opts: &SynthOptions,
    executor: &tern_build::executor::Executor,
    out: Option<&Path>,
) -> Result<Vec<SweepRow>> {
    let start = Instant::now();
    let rows = sweep::run(items, boards, plan, opts, executor)?;
    let stats = sweep::stats(&rows, start.elapsed().as_secs_f64());
    for r in &rows {
        println!(
            "{:<28} {:<12} {}",
            r.name,
            r.board,
            tern_build::job::row_summary(r)
        );
    }
    println!(
        "{} rows ({} ran tools, {} from the cache, {} failed) in {:.1} s; {:.0} designs/hour; flow overhead {:.2}% of tool time",
        stats.rows,
        stats.ran_tools,
        stats.from_cache,
        stats.failed,
        stats.wall_seconds,
        stats.designs_per_hour,
        stats.overhead_percent
    );
    if let Some(path) = out {
        write_json(path, &serde_json::json!({ "stats": stats, "rows": rows }))?;
        println!("wrote {}", path.display());
    }
    Ok(rows)
}
