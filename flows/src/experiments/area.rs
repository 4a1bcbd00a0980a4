//! `tern area`: the table-lookup method's area claim, measured at the sizes of a real
//! accelerator. Whole engines (control, buffers, tables, trees, accumulators), TLMM and
//! the adder-tree baseline at equal weights/clock (P·Q·G), for G = 2..5 and 128 to 1024
//! weights/clock, synthesised for UltraScale+ (KV260) and ECP5 (ULX3S, placed and
//! routed for Fmax where nextpnr finishes within the time limit). Writes a Markdown
//! table, the raw rows (JSON) and plots (PNG and SVG).

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::config::{ConfigBuilder, TableStorage};
use tern_hdl::{Config, DesignConfig, EngineKind};

use tern_build::executor::Executor;
use tern_build::job::{SweepItem, SweepPlan, SweepRow};
use tern_build::sweep;
use tern_build::synth::cache::write_json;
use tern_build::synth::{PnrOutcome, SynthOptions, SynthOutcome};

/// Weights per clock the comparison is made at.
pub const SIZES: [usize; 4] = [128, 256, 512, 1024];
pub const GROUP_SIZES: [usize; 4] = [2, 3, 4, 5];
pub const BOARDS: [&str; 2] = ["kv260", "ulx3s"];
/// The layer every engine is built for: BitNet b1.58 2B's hidden size. It sets the
/// activation buffer and accumulator memory (block RAM) alike for both kinds.
pub const LAYER: (usize, usize) = (2560, 2560);
/// Engines using more of a board's LUTs than this are not placed and routed (time).
pub const ROUTE_LUT_SHARE: f64 = 0.4;
/// Where the other table storages are measured too (a shared copy with a multiplexer
/// per lane): one size and G, since they cost several times more.
const STORAGE_POINT: (usize, usize) = (256, 3);

/// Q per G: a chunk of 28–36 activations for every G.
pub fn groups_per_cycle(g: usize) -> usize {
    match g {
        2 => 16,
        3 => 12,
        4 => 8,
        _ => 7,
    }
}

/// P for a size: the nearest whole number of rows.
pub fn rows_parallel(size: usize, g: usize) -> usize {
    ((size as f64 / (groups_per_cycle(g) * g) as f64).round() as usize).max(1)
}

/// One engine of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub kind: EngineKind,
    pub storage: TableStorage,
    pub banks: usize,
}

impl Variant {
    pub const ADDER_TREE: Variant = Variant {
        kind: EngineKind::AdderTree,
        storage: TableStorage::Registers,
        banks: 2,
    };

    pub fn tlmm(storage: TableStorage, banks: usize) -> Variant {
        Variant {
            kind: EngineKind::Tlmm,
            storage,
            banks,
        }
    }

    pub fn label(&self) -> String {
        match self.kind {
            EngineKind::AdderTree => "adder tree".into(),
            EngineKind::Tlmm => format!(
                "tlmm {}, {} bank{}",
                self.storage.name(),
                self.banks,
                if self.banks == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The variants measured at (size, G).
pub fn variants(size: usize, g: usize) -> Vec<Variant> {
    let mut v = vec![
        Variant::ADDER_TREE,
        Variant::tlmm(TableStorage::LaneLutram, 2),
        Variant::tlmm(TableStorage::LaneLutram, 1),
    ];
    if (size, g) == STORAGE_POINT {
        for s in [
            TableStorage::Registers,
            TableStorage::Distributed,
            TableStorage::Block,
        ] {
            v.push(Variant::tlmm(s, 2));
        }
    }
    v
}

/// One design point.
pub fn config(variant: Variant, size: usize, g: usize) -> Result<Config> {
    Ok(
        ConfigBuilder::new(variant.kind, g, rows_parallel(size, g), groups_per_cycle(g))
            .storage(variant.storage)
            .table_banks(variant.banks)
            .workload(LAYER.0, LAYER.1, 1)
            .build()?,
    )
}

/// The sweep items, with the (size, G, variant) each stands for.
pub fn items(sizes: &[usize]) -> Result<Vec<(SweepItem, usize, usize, Variant)>> {
    let mut out = vec![];
    for &size in sizes {
        for g in GROUP_SIZES {
            for v in variants(size, g) {
                let name = format!(
                    "{}-{}-b{}-g{g}-{size}",
                    v.kind.name(),
                    v.storage.name(),
                    v.banks
                );
                out.push((
                    SweepItem {
                        name,
                        config: DesignConfig::Matmul(config(v, size, g)?),
                    },
                    size,
                    g,
                    v,
                ));
            }
        }
    }
    Ok(out)
}

/// One row of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AreaPoint {
    pub variant: Variant,
    pub label: String,
    pub size: usize,
    pub g: usize,
    pub p: usize,
    pub q: usize,
    pub weights_per_clock: usize,
    pub board: String,
    pub family: String,
    pub luts: Option<u64>,
    /// One-input LUTs (buffers, inverters) Vivado would absorb.
    pub lut1: Option<u64>,
    pub lutram_luts: Option<u64>,
    pub ffs: Option<u64>,
    pub carry: Option<u64>,
    pub bram: Option<f64>,
    pub luts_per_weight_clock: Option<f64>,
    /// Yosys's unrouted logic delay and LUT levels (Xilinx), never an Fmax.
    pub logic_delay_ns: Option<f64>,
    pub logic_levels: Option<u64>,
    /// After routing (ECP5); None where no router exists, it failed or timed out.
    pub fmax_mhz: Option<f64>,
    pub yosys_seconds: Option<f64>,
    pub nextpnr_seconds: Option<f64>,
    /// Busy fraction decoding the layer (cycle model, 8 tokens in blocks of one).
    #[serde(alias = "decode_utilisation")]
    pub decode_busy: f64,
    /// Why a figure is missing.
    pub note: Option<String>,
}

fn point(
    row: &SweepRow,
    size: usize,
    g: usize,
    variant: Variant,
    cfg: &Config,
    pnr_up_to: usize,
) -> AreaPoint {
    let usage = row.synth.as_ref().and_then(|s| s.usage());
    let wpc = cfg.geometry.weights_per_clock();
    let timing = row.synth.as_ref().and_then(|s| match &s.outcome {
        SynthOutcome::Ok {
            timing_estimate, ..
        } => timing_estimate.clone(),
        _ => None,
    });
    let note = if let Some(e) = &row.error {
        Some(e.clone())
    } else if usage.is_some() && row.pnr.is_none() && row.board == "ulx3s" {
        Some(format!(
            "not placed and routed: above {} weights/clock or {:.0}% of the board's LUTs (`--pnr-up-to`)",
            pnr_up_to,
            100.0 * ROUTE_LUT_SHARE
        ))
    } else if usage.is_none() {
        row.synth
            .as_ref()
            .map(|s| tern_build::synth::outcome_summary(&s.outcome))
    } else {
        row.pnr.as_ref().and_then(|p| match &p.outcome {
            PnrOutcome::Ok { .. } => None,
            PnrOutcome::TimedOut { stage, limit_s } => {
                Some(format!("{stage} did not finish within {limit_s:.0} s"))
            }
            other => Some(format!(
                "pnr: {}",
                serde_json::to_string(other).unwrap_or_default()
            )),
        })
    };
    let tokens = 8;
    let decode = cfg
        .with_workload(LAYER.0, LAYER.1, tokens)
        .map(|c| c.ideal_cycles() / tern_hdl::timing::streaming_cycles(&c, tokens) as f64)
        .unwrap_or(0.0);
    AreaPoint {
        variant,
        label: variant.label(),
        size,
        g,
        p: cfg.engine.rows_parallel,
        q: cfg.engine.groups_per_cycle,
        weights_per_clock: wpc,
        board: row.board.clone(),
        family: row
            .synth
            .as_ref()
            .map(|s| s.family.name().to_string())
            .unwrap_or_default(),
        luts: usage.map(|u| u.luts),
        lut1: usage.map(|u| u.lut1()),
        lutram_luts: usage.map(|u| u.lutram_luts),
        ffs: usage.map(|u| u.ffs),
        carry: usage.map(|u| u.carry),
        bram: usage.map(|u| u.bram_blocks),
        luts_per_weight_clock: usage.map(|u| u.luts as f64 / wpc as f64),
        logic_delay_ns: timing.as_ref().map(|t| t.logic_delay_ns),
        logic_levels: timing.as_ref().map(|t| t.lut_levels + t.mux_levels),
        fmax_mhz: row.pnr.as_ref().and_then(|p| p.fmax_mhz()),
        yosys_seconds: row.synth.as_ref().map(|s| s.tool_seconds),
        nextpnr_seconds: row
            .pnr
            .as_ref()
            .filter(|p| matches!(p.outcome, PnrOutcome::Ok { .. }))
            .map(|p| p.tool_seconds),
        decode_busy: decode,
        note,
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    tools: Vec<String>,
    points: Vec<AreaPoint>,
    rows: Vec<SweepRow>,
}

/// Redraw the table and plots from a previous run's `results.json`, without any tool.
pub fn replot(out: &Path) -> Result<()> {
    let path = out.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an area results file", path.display()))?;
    write_outputs(out, &saved.points, &saved.tools, &saved.rows)
}

/// The table (`area.md`) and the plots, printed and written beside the raw results.
fn write_outputs(
    out: &Path,
    points: &[AreaPoint],
    tools: &[String],
    rows: &[SweepRow],
) -> Result<()> {
    let mut table = markdown(points, tools);
    table.push_str(&tool_times(rows));
    tern_build::synth::cache::write_atomic(&out.join("area.md"), table.as_bytes())?;
    plot(points, &out.join("area.svg"), &out.join("area.png"))?;
    print!("{table}");
    Ok(())
}

/// What `tern area` runs.
#[derive(Debug, Clone)]
pub struct AreaPlan {
    pub sizes: Vec<usize>,
    pub executor: Executor,
    /// Place and route on ECP5 for engines of at most this many weights/clock (0: none).
    pub pnr_up_to: usize,
}

pub fn run(out: &Path, plan: &AreaPlan, opts: &SynthOptions) -> Result<()> {
    let items = items(&plan.sizes)?;
    let boards = BOARDS
        .iter()
        .map(|b| Board::builtin(b))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "tern area: {} designs × {} boards, {}, place and route on ECP5 up to {} weights/clock ({} s per tool run)",
        items.len(),
        boards.len(),
        plan.executor.describe(),
        plan.pnr_up_to,
        opts.time_limit.as_secs()
    );
    let start = Instant::now();
    let sweep_items: Vec<SweepItem> = items.iter().map(|(i, ..)| i.clone()).collect();
    // Synthesis for every pair, then place and route for the engines small enough; the
    // second pass takes the synthesis records from the cache.
    let mut rows = sweep::run(
        &sweep_items,
        &boards,
        SweepPlan {
            pnr: false,
            seed: 1,
            blocks: false,
            whole_top: false,
        },
        opts,
        &plan.executor,
    )?;
    let routers: Vec<Board> = boards.iter().filter(|b| b.has_router()).cloned().collect();
    for board in routers.iter().filter(|_| plan.pnr_up_to > 0) {
        // Route what is small enough: nextpnr (WebAssembly here) takes tens of minutes
        // on engines beyond a few tens of thousands of LUTs, so engines above
        // `ROUTE_LUT_SHARE` of the board are reported without an Fmax, saying why.
        let routed: Vec<SweepItem> = items
            .iter()
            .filter(|(i, ..)| {
                let small = i
                    .config
                    .matmul()
                    .is_some_and(|c| c.geometry.weights_per_clock() <= plan.pnr_up_to);
                let luts = rows
                    .iter()
                    .find(|r| r.name == i.name && r.board == board.name)
                    .and_then(|r| r.synth.as_ref()?.usage().map(|u| u.luts));
                small
                    && luts.is_some_and(|l| {
                        (l as f64) <= ROUTE_LUT_SHARE * board.resources.luts as f64
                    })
            })
            .map(|(i, ..)| i.clone())
            .collect();
        let routed_rows = sweep::run(
            &routed,
            std::slice::from_ref(board),
            SweepPlan {
                pnr: true,
                seed: 1,
                blocks: false,
                whole_top: false,
            },
            opts,
            &plan.executor,
        )?;
        for r in routed_rows {
            if let Some(row) = rows
                .iter_mut()
                .find(|x| x.name == r.name && x.board == r.board)
            {
                *row = r;
            }
        }
    }
    let stats = sweep::stats(&rows, start.elapsed().as_secs_f64());
    let mut points = vec![];
    for (item, size, g, variant) in &items {
        let cfg = item
            .config
            .matmul()
            .expect("area designs are matmul engines");
        for board in &boards {
            let row = rows
                .iter()
                .find(|r| r.name == item.name && r.board == board.name)
                .expect("one row per item and board");
            points.push(point(row, *size, *g, *variant, cfg, plan.pnr_up_to));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tools: Vec<String> = {
        let mut t: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                r.synth
                    .as_ref()
                    .map(|s| format!("{} ({})", s.yosys, s.family.name()))
            })
            .chain(
                rows.iter()
                    .filter_map(|r| r.pnr.as_ref().map(|p| p.nextpnr.clone())),
            )
            .collect();
        t.sort();
        t.dedup();
        t
    };
    write_json(
        &out.join("results.json"),
        &serde_json::json!({ "tools": tools, "stats": stats, "points": points, "rows": rows }),
    )?;
    write_outputs(out, &points, &tools, &rows)?;
    println!(
        "sweep: {} rows, {} ran tools, {} failed, {:.0} s wall, {:.0} designs/hour, flow overhead {:.2}% of tool time",
        stats.rows,
        stats.ran_tools,
        stats.failed,
        stats.wall_seconds,
        stats.designs_per_hour,
        stats.overhead_percent
    );
    println!(
        "wrote {0}/area.md, {0}/area.png, {0}/area.svg, {0}/results.json",
        out.display()
    );
    if points.iter().any(|p| p.luts.is_none()) {
        bail!("some design points have no synthesis result (see the notes in the table)");
    }
    Ok(())
}

/// Tool time per design, from the records (cached records keep the time of their run).
fn tool_times(rows: &[SweepRow]) -> String {
    let summary = |mut v: Vec<f64>| -> String {
        if v.is_empty() {
            return "—".into();
        }
        v.sort_by(f64::total_cmp);
        format!(
            "{:.1} / {:.1} / {:.1}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    let mut s = String::from(
        "\n## Tool time per design (seconds: min / median / max)\n\n| board | Yosys synthesis | Yosys netlist + nextpnr |\n|---|---|---|\n",
    );
    for board in BOARDS {
        let of_board = || rows.iter().filter(move |r| r.board == board);
        let synth: Vec<f64> = of_board()
            .filter_map(|r| r.synth.as_ref())
            .filter(|r| matches!(r.outcome, SynthOutcome::Ok { .. }))
            .map(|r| r.tool_seconds)
            .collect();
        let pnr: Vec<f64> = of_board()
            .filter_map(|r| r.pnr.as_ref())
            .filter(|r| matches!(r.outcome, PnrOutcome::Ok { .. }))
            .map(|r| r.tool_seconds)
            .collect();
        s.push_str(&format!(
            "| {board} | {} | {} |\n",
            summary(synth),
            summary(pnr)
        ));
    }
    s
}

fn opt<T: std::fmt::Display>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
}

fn f1(x: Option<f64>) -> String {
    opt(x.map(|v| format!("{v:.1}")))
}

fn f2(x: Option<f64>) -> String {
    opt(x.map(|v| format!("{v:.2}")))
}

/// The adder tree's LUTs per weight/clock at the same size and G on the same board.
fn adder_tree_of<'a>(points: &'a [AreaPoint], x: &AreaPoint) -> Option<&'a AreaPoint> {
    points.iter().find(|a| {
        a.variant == Variant::ADDER_TREE && a.size == x.size && a.g == x.g && a.board == x.board
    })
}

fn ratio(points: &[AreaPoint], x: &AreaPoint) -> Option<f64> {
    let a = adder_tree_of(points, x)?.luts_per_weight_clock?;
    Some(x.luts_per_weight_clock? / a)
}

/// The lowest LUTs per weight/clock of a kind at a size on a board.
fn best<'a>(
    points: &'a [AreaPoint],
    kind: EngineKind,
    size: usize,
    board: &str,
) -> Option<&'a AreaPoint> {
    points
        .iter()
        .filter(|p| p.variant.kind == kind && p.size == size && p.board == board)
        .filter(|p| p.luts_per_weight_clock.is_some())
        .min_by(|a, b| {
            a.luts_per_weight_clock
                .unwrap()
                .total_cmp(&b.luts_per_weight_clock.unwrap())
        })
}

fn markdown(points: &[AreaPoint], tools: &[String]) -> String {
    let mut s = String::new();
    s.push_str("# Area: table lookup (TLMM) vs adder tree at equal weights/clock\n\n");
    s.push_str("Made by `cargo run --release -- area --out docs/area` (results cached; `--force` reruns the tools; `--replot` redraws from `results.json`).\n");
    s.push_str(&format!("Tools: {}.\n\n", tools.join("; ")));
    s.push_str(&format!(
        "Whole engines (control, activation buffer, tables, row trees, accumulators; no weight FIFO) built for one {}×{} layer, 24-bit results, two pipeline levels per register. \
         P·Q·G weights/clock with Q = 16, 12, 8, 7 for G = 2, 3, 4, 5 and P the nearest whole number for the size, so sizes are within a few percent of 128, 256, 512 and 1024; both kinds have the same P, Q, G. \
         `LUT/w` is LUTs per weight/clock; LUTs count LUT-RAM LUTs as the vendor does (a RAM32M16 or RAM64M8 is 8 LUTs, an ECP5 DPR16X4 4) and ECP5 carry cells as their two LUT4s. \
         LUT1 (buffers and inverters Vivado absorbs) are in the LUT count and shown apart. \
         Yosys counts are before Vivado's LUT6_2 packing. UltraScale+ has no open router: its timing is Yosys's unrouted logic-delay estimate with the LUT and mux levels of the longest path, not an Fmax. \
         `decode util.` is the engine's busy fraction on the layer with 8 tokens in blocks of one (cycle model): a one-bank table stalls while it is rebuilt.\n\n",
        LAYER.0, LAYER.1
    ));
    s.push_str("## Best of each kind per size\n\n| size | board | best TLMM | LUT/w | best adder tree | LUT/w | TLMM / adder tree |\n|---|---|---|---|---|---|---|\n");
    let sizes: Vec<usize> = {
        let mut v: Vec<usize> = points.iter().map(|p| p.size).collect();
        v.sort();
        v.dedup();
        v
    };
    for &size in &sizes {
        for board in BOARDS {
            let (Some(t), Some(a)) = (
                best(points, EngineKind::Tlmm, size, board),
                best(points, EngineKind::AdderTree, size, board),
            ) else {
                continue;
            };
            s.push_str(&format!(
                "| {size} | {board} | G={} P={} Q={} {} ({} w/clk) | {} | G={} P={} Q={} | {} | {} |\n",
                t.g,
                t.p,
                t.q,
                t.label,
                t.weights_per_clock,
                f2(t.luts_per_weight_clock),
                a.g,
                a.p,
                a.q,
                f2(a.luts_per_weight_clock),
                f2(Some(t.luts_per_weight_clock.unwrap() / a.luts_per_weight_clock.unwrap()))
            ));
        }
    }
    s.push_str("\n## UltraScale+ (KV260, `synth_xilinx -family xcup`)\n\n| size | G | P×Q | w/clk | engine | LUT | LUT1 | LUT-RAM | FF | carry | BRAM | LUT/w | FF/w | vs adder tree | logic delay ns (levels) | decode util. | Yosys s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for x in points.iter().filter(|p| p.board == "kv260") {
        s.push_str(&format!(
            "| {} | {} | {}×{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.3} | {} |\n",
            x.size,
            x.g,
            x.p,
            x.q,
            x.weights_per_clock,
            x.label,
            opt(x.luts),
            opt(x.lut1),
            opt(x.lutram_luts),
            opt(x.ffs),
            opt(x.carry),
            f1(x.bram),
            f2(x.luts_per_weight_clock),
            f1(x.ffs.map(|f| f as f64 / x.weights_per_clock as f64)),
            f2(ratio(points, x)),
            f2(x.logic_delay_ns),
            opt(x.logic_levels),
            x.decode_busy,
            f1(x.yosys_seconds),
        ));
    }
    s.push_str("\n## ECP5 (ULX3S, `synth_ecp5`, nextpnr-ecp5 out of context)\n\n| size | G | P×Q | w/clk | engine | LUT4 | LUT-RAM | FF | CCU2C | BRAM | LUT/w | vs adder tree | Fmax MHz | Yosys s | nextpnr s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for x in points.iter().filter(|p| p.board == "ulx3s") {
        s.push_str(&format!(
            "| {} | {} | {}×{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            x.size,
            x.g,
            x.p,
            x.q,
            x.weights_per_clock,
            x.label,
            opt(x.luts),
            opt(x.lutram_luts),
            opt(x.ffs),
            opt(x.carry),
            f1(x.bram),
            f2(x.luts_per_weight_clock),
            f2(ratio(points, x)),
            f1(x.fmax_mhz),
            f1(x.yosys_seconds),
            f1(x.nextpnr_seconds),
        ));
    }
    let notes: Vec<&AreaPoint> = points.iter().filter(|p| p.note.is_some()).collect();
    if !notes.is_empty() {
        s.push_str("\nMissing figures:\n\n");
        for p in notes {
            s.push_str(&format!(
                "- {} G={} P={} Q={} on {}: {}\n",
                p.label,
                p.g,
                p.p,
                p.q,
                p.board,
                p.note.as_deref().unwrap_or("")
            ));
        }
    }
    s.push_str("\nPlot (`area.png`, `area.svg`): LUTs per weight/clock against weights/clock on UltraScale+ and ECP5, TLMM/adder-tree ratio, and ECP5 Fmax. One colour per G (blue 2, red 3, green 4, purple 5); thick lines with dots: TLMM with two table banks; dashed: one bank; thin lines with triangles: the adder tree.\n");
    s
}

pub fn plot(points: &[AreaPoint], svg: &Path, png: &Path) -> Result<()> {
    draw(
        points,
        SVGBackend::new(svg, (1800, 500)).into_drawing_area(),
    )?;
    crate::plot::register_png_font()?;
    draw(
        points,
        BitMapBackend::new(png, (1800, 500)).into_drawing_area(),
    )?;
    Ok(())
}

/// What a panel shows of a point.
#[derive(Clone, Copy)]
enum Panel {
    LutsPerWeight(&'static str),
    Ratio(&'static str),
    Fmax,
}

fn draw<DB: DrawingBackend>(
    points: &[AreaPoint],
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // plotters 0.3.7's captions and legends fail to find the registered font here, so
    // the panel titles go in the axis text and the legend in area.md.
    let panels = root.split_evenly((1, 4));
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    let specs = [
        (
            Panel::LutsPerWeight("kv260"),
            "UltraScale+ (KV260): LUT/w",
            "LUTs / (weight·clock)",
        ),
        (
            Panel::LutsPerWeight("ulx3s"),
            "ECP5 (ULX3S): LUT/w",
            "LUT4s / (weight·clock)",
        ),
        (
            Panel::Ratio("kv260"),
            "TLMM / adder tree LUT/w, KV260",
            "ratio",
        ),
        (
            Panel::Fmax,
            "ECP5 (ULX3S): Fmax after nextpnr",
            "Fmax (MHz)",
        ),
    ];
    let xmax = points
        .iter()
        .map(|p| p.weights_per_clock as f64)
        .fold(0.0, f64::max)
        * 1.05
        + 1.0;
    for (area, (panel, title, ylabel)) in panels.iter().zip(specs) {
        let value = |x: &AreaPoint| -> Option<f64> {
            match panel {
                Panel::LutsPerWeight(board) => (x.board == board)
                    .then_some(x.luts_per_weight_clock)
                    .flatten(),
                Panel::Ratio(board) => (x.board == board && x.variant.kind == EngineKind::Tlmm)
                    .then(|| ratio(points, x))
                    .flatten(),
                Panel::Fmax => (x.board == "ulx3s").then_some(x.fmax_mhz).flatten(),
            }
        };
        let ymax = points
            .iter()
            .filter_map(value)
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.15;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!("weights/clock — {title}"))
            .y_desc(ylabel)
            .x_labels(5)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (gi, &g) in GROUP_SIZES.iter().enumerate() {
            let colour = colours[gi % colours.len()];
            for v in [
                Variant::tlmm(TableStorage::LaneLutram, 2),
                Variant::tlmm(TableStorage::LaneLutram, 1),
                Variant::ADDER_TREE,
            ] {
                let mut series: Vec<(f64, f64)> = points
                    .iter()
                    .filter(|x| x.g == g && x.variant == v)
                    .filter_map(|x| value(x).map(|y| (x.weights_per_clock as f64, y)))
                    .collect();
                series.sort_by(|a, b| a.0.total_cmp(&b.0));
                if series.is_empty() {
                    continue;
                }
                let (width, dashed) = match (v.kind, v.banks) {
                    (EngineKind::AdderTree, _) => (1, false),
                    (_, 2) => (3, false),
                    _ => (2, true),
                };
                if dashed {
                    for pair in series.windows(2) {
                        let (a, b) = (pair[0], pair[1]);
                        let mid = (a.0 + (b.0 - a.0) * 0.5, a.1 + (b.1 - a.1) * 0.5);
                        chart
                            .draw_series(LineSeries::new(vec![a, mid], colour.stroke_width(width)))
                            .map_err(|e| err(&e))?;
                    }
                } else {
                    chart
                        .draw_series(LineSeries::new(series.clone(), colour.stroke_width(width)))
                        .map_err(|e| err(&e))?;
                }
                if v.kind == EngineKind::Tlmm {
                    chart
                        .draw_series(
                            series
                                .iter()
                                .map(|&(x, y)| Circle::new((x, y), 4, colour.filled())),
                        )
                        .map_err(|e| err(&e))?;
                } else {
                    chart
                        .draw_series(
                            series.iter().map(|&(x, y)| {
                                TriangleMarker::new((x, y), 5, colour.stroke_width(1))
                            }),
                        )
                        .map_err(|e| err(&e))?;
                }
            }
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_carry_the_same_weights_per_clock_near_each_size() {
        for size in SIZES {
            for g in GROUP_SIZES {
                let w: Vec<usize> = variants(size, g)
                    .into_iter()
                    .map(|v| config(v, size, g).unwrap().geometry.weights_per_clock())
                    .collect();
                assert!(w.iter().all(|&x| x == w[0]), "{size} G={g}: {w:?}");
                let off = (w[0] as f64 - size as f64).abs() / size as f64;
                assert!(off < 0.15, "{size} G={g}: {} weights/clock", w[0]);
            }
        }
        // The other storages are measured once, beside the default.
        assert_eq!(variants(256, 3).len(), 6);
        assert_eq!(variants(1024, 3).len(), 3);
    }

    #[test]
    fn the_plot_is_drawn_from_points() {
        let dir = tempfile::tempdir().unwrap();
        let mut points = vec![];
        for (i, v) in [
            Variant::tlmm(TableStorage::LaneLutram, 2),
            Variant::ADDER_TREE,
        ]
        .into_iter()
        .enumerate()
        {
            for size in [128, 256] {
                points.push(AreaPoint {
                    variant: v,
                    label: v.label(),
                    size,
                    g: 3,
                    p: 2,
                    q: 2,
                    weights_per_clock: size,
                    board: "kv260".into(),
                    family: "xcup".into(),
                    luts: Some(100),
                    lut1: Some(1),
                    lutram_luts: Some(0),
                    ffs: Some(10),
                    carry: Some(1),
                    bram: Some(1.0),
                    luts_per_weight_clock: Some(5.0 + 5.0 * i as f64),
                    logic_delay_ns: Some(1.0),
                    logic_levels: Some(3),
                    fmax_mhz: None,
                    yosys_seconds: Some(1.0),
                    nextpnr_seconds: None,
                    decode_busy: 0.99,
                    note: None,
                });
            }
        }
        let (svg, png) = (dir.path().join("a.svg"), dir.path().join("a.png"));
        plot(&points, &svg, &png).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("LUT/w"));
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        // The ratio of the TLMM to the adder tree at equal size: 5 / 10.
        assert_eq!(ratio(&points, &points[0]), Some(0.5));
        let md = markdown(&points, &["Yosys 0.70".into()]);
        assert!(
            md.contains("| 128 | kv260 |") && md.contains("| 0.50 |"),
            "{md}"
        );
    }
}
