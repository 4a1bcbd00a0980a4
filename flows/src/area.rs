//! `tern area`: the table-lookup method's area claim, measured. TLMM and the adder-tree
//! baseline at equal weights/clock (P·Q·G), for G = 2..5 and a few P×Q, synthesised for
//! UltraScale+ (KV260) and ECP5 (ULX3S, placed and routed for Fmax). Writes a Markdown
//! table, the raw rows (JSON) and a plot (PNG and SVG).

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::{Config, DesignConfig, EngineKind};

use crate::sweep::{self, SweepItem, SweepPlan, SweepRow};
use crate::synth::SynthOptions;
use crate::synthesis::write_json;

pub const GROUP_SIZES: [usize; 4] = [2, 3, 4, 5];
/// (P rows in parallel, Q groups per row per clock).
pub const SHAPES: [(usize, usize); 3] = [(2, 2), (4, 1), (4, 2)];
pub const BOARDS: [&str; 2] = ["kv260", "ulx3s"];
/// The layer every point is built for (sets table and buffer depths alike for both kinds).
const LAYER: (usize, usize) = (256, 256);

fn kind_name(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Tlmm => "tlmm",
        EngineKind::AdderTree => "adder-tree",
    }
}

/// One design point of the comparison.
pub fn config(kind: EngineKind, g: usize, p: usize, q: usize) -> Result<Config> {
    let text = format!(
        "[engine]\nkind = \"{}\"\ngroup_size = {g}\nrows_parallel = {p}\ngroups_per_cycle = {q}\n\
         activation_bits = 8\naccumulator_bits = 24\ntable_storage = \"distributed\"\n\
         weight_buffer_depth = 16\n\n[workload]\nm = {}\nk = {}\ntokens = 1\n",
        kind_name(kind),
        LAYER.0,
        LAYER.1
    );
    Ok(Config::from_toml(&text, "tern area")?)
}

pub fn items() -> Result<Vec<SweepItem>> {
    let mut items = vec![];
    for &(p, q) in &SHAPES {
        for g in GROUP_SIZES {
            for kind in [EngineKind::Tlmm, EngineKind::AdderTree] {
                items.push(SweepItem {
                    name: format!("{}-g{g}-p{p}-q{q}", kind_name(kind)),
                    config: DesignConfig::Matmul(config(kind, g, p, q)?),
                });
            }
        }
    }
    Ok(items)
}

/// One row of the comparison table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AreaPoint {
    pub kind: String,
    pub g: usize,
    pub p: usize,
    pub q: usize,
    pub weights_per_clock: usize,
    pub board: String,
    pub family: String,
    pub luts: Option<u64>,
    pub ffs: Option<u64>,
    pub lutram_luts: Option<u64>,
    pub luts_per_weight_clock: Option<f64>,
    /// After routing (ECP5); None where no router exists or routing failed.
    pub fmax_mhz: Option<f64>,
    /// Unrouted logic delay estimate (Xilinx), never an Fmax.
    pub logic_delay_ns: Option<f64>,
    /// Why a figure is missing.
    pub note: Option<String>,
}

fn point(row: &SweepRow, kind: &str, g: usize, p: usize, q: usize) -> AreaPoint {
    let usage = row.synth.as_ref().and_then(|s| s.usage());
    let wpc = p * q * g;
    let timing = row.synth.as_ref().and_then(|s| match &s.outcome {
        crate::synth::SynthOutcome::Ok {
            timing_estimate, ..
        } => timing_estimate.as_ref().map(|t| t.logic_delay_ns),
        _ => None,
    });
    let note = if let Some(e) = &row.error {
        Some(e.clone())
    } else if usage.is_none() {
        row.synth
            .as_ref()
            .map(|s| crate::synth::outcome_summary(&s.outcome))
    } else {
        row.pnr.as_ref().and_then(|p| match &p.outcome {
            crate::synth::PnrOutcome::Ok { .. } => None,
            other => Some(format!(
                "pnr: {}",
                serde_json::to_string(other).unwrap_or_default()
            )),
        })
    };
    AreaPoint {
        kind: kind.to_string(),
        g,
        p,
        q,
        weights_per_clock: wpc,
        board: row.board.clone(),
        family: row
            .synth
            .as_ref()
            .map(|s| s.family.name().to_string())
            .unwrap_or_default(),
        luts: usage.map(|u| u.luts),
        ffs: usage.map(|u| u.ffs),
        lutram_luts: usage.map(|u| u.lutram_luts),
        luts_per_weight_clock: usage.map(|u| u.luts as f64 / wpc as f64),
        fmax_mhz: row.pnr.as_ref().and_then(|p| p.fmax_mhz()),
        logic_delay_ns: timing,
        note,
    }
}

/// Redraw the table and plots from a previous run's `results.json`, without any tool.
pub fn replot(out: &Path) -> Result<()> {
    let path = out.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    #[derive(Deserialize)]
    struct Saved {
        tools: Vec<String>,
        points: Vec<AreaPoint>,
        rows: Vec<SweepRow>,
    }
    let saved: Saved = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an area results file", path.display()))?;
    let pnr = saved.rows.iter().any(|r| r.pnr.is_some());
    write_outputs(out, &saved.points, &saved.tools, &saved.rows, pnr)
}

/// The table (`area.md`) and the plots, printed and written beside the raw results.
fn write_outputs(
    out: &Path,
    points: &[AreaPoint],
    tools: &[String],
    rows: &[SweepRow],
    pnr: bool,
) -> Result<()> {
    let mut table = markdown(points, tools, pnr);
    table.push_str(&tool_times(rows));
    crate::synth::cache::write_atomic(&out.join("area.md"), table.as_bytes())?;
    plot(points, &out.join("area.svg"), &out.join("area.png"))?;
    print!("{table}");
    Ok(())
}

pub fn run(out: &Path, jobs: usize, pnr: bool, opts: &SynthOptions) -> Result<()> {
    let items = items()?;
    let boards = BOARDS
        .iter()
        .map(|b| Board::builtin(b))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "tern area: {} designs × {} boards, {} parallel runs{}",
        items.len(),
        boards.len(),
        jobs,
        if pnr {
            ", with place and route on ECP5"
        } else {
            ""
        }
    );
    let start = Instant::now();
    let rows = sweep::run(&items, &boards, SweepPlan { jobs, pnr, seed: 1 }, opts);
    let stats = sweep::stats(&rows, start.elapsed().as_secs_f64());
    let mut points = vec![];
    let mut it = rows.iter();
    for &(p, q) in &SHAPES {
        for g in GROUP_SIZES {
            for kind in ["tlmm", "adder-tree"] {
                for _ in &boards {
                    let row = it.next().expect("one row per item and board");
                    points.push(point(row, kind, g, p, q));
                }
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let tools: Vec<String> = {
        let mut t: Vec<String> = rows
            .iter()
            .filter_map(|r| r.synth.as_ref().map(|s| s.yosys.clone()))
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
    write_outputs(out, &points, &tools, &rows, pnr)?;
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
            .filter(|r| matches!(r.outcome, crate::synth::SynthOutcome::Ok { .. }))
            .map(|r| r.tool_seconds)
            .collect();
        let pnr: Vec<f64> = of_board()
            .filter_map(|r| r.pnr.as_ref())
            .filter(|r| matches!(r.outcome, crate::synth::PnrOutcome::Ok { .. }))
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

fn markdown(points: &[AreaPoint], tools: &[String], pnr: bool) -> String {
    let mut s = String::new();
    s.push_str("# Area: table lookup (TLMM) vs adder tree at equal weights/clock\n\n");
    s.push_str("Made by `cargo run --release -- area --out docs/area` (results cached; `--force` reruns the tools).\n");
    s.push_str(&format!("Tools: {}.\n\n", tools.join("; ")));
    s.push_str("Both engines see the same layer (M = K = 256), accumulators of 24 bits, distributed tables, a 16-beat weight FIFO.\n");
    s.push_str("LUTs count LUT-RAM and (ECP5) carry LUTs as the vendor tools do. `LUT/w` is LUTs per weight/clock.\n");
    s.push_str("UltraScale+ has no open router: its column is Yosys's unrouted logic-delay estimate, not an Fmax.\n");
    s.push_str("Plot (`area.png`, `area.svg`): thick lines and dots are TLMM, thin lines and triangles the adder tree; blue P×Q = 2×2, red 4×1, green 4×2.\n");
    if !pnr {
        s.push_str("Place and route was skipped for this run (`--no-pnr`).\n");
    }
    s.push_str("\n| P×Q | G | w/clk | kind | KV260 LUT | FF | LUT/w | logic delay ns (est.) | ULX3S LUT | FF | LUT/w | Fmax MHz | TLMM/adder LUT (KV260, ULX3S) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let find = |kind: &str, g, p, q, board: &str| {
        points
            .iter()
            .find(|x| x.kind == kind && x.g == g && x.p == p && x.q == q && x.board == board)
    };
    for &(p, q) in &SHAPES {
        for g in GROUP_SIZES {
            for kind in ["tlmm", "adder-tree"] {
                let (Some(x), Some(e)) =
                    (find(kind, g, p, q, "kv260"), find(kind, g, p, q, "ulx3s"))
                else {
                    continue;
                };
                let ratio = |board: &str| {
                    let t = find("tlmm", g, p, q, board).and_then(|x| x.luts)?;
                    let a = find("adder-tree", g, p, q, board).and_then(|x| x.luts)?;
                    Some(format!("{:.2}", t as f64 / a as f64))
                };
                s.push_str(&format!(
                    "| {p}×{q} | {g} | {} | {kind} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    x.weights_per_clock,
                    opt(x.luts),
                    opt(x.ffs),
                    opt(x.luts_per_weight_clock.map(|v| format!("{v:.1}"))),
                    opt(x.logic_delay_ns.map(|v| format!("{v:.2}"))),
                    opt(e.luts),
                    opt(e.ffs),
                    opt(e.luts_per_weight_clock.map(|v| format!("{v:.1}"))),
                    opt(e.fmax_mhz.map(|v| format!("{v:.1}"))),
                    if kind == "tlmm" {
                        format!("{}, {}", opt(ratio("kv260")), opt(ratio("ulx3s")))
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    let notes: Vec<&AreaPoint> = points.iter().filter(|p| p.note.is_some()).collect();
    if !notes.is_empty() {
        s.push_str("\nMissing figures:\n\n");
        for p in notes {
            s.push_str(&format!(
                "- {} G={} P={} Q={} on {}: {}\n",
                p.kind,
                p.g,
                p.p,
                p.q,
                p.board,
                p.note.as_deref().unwrap_or("")
            ));
        }
    }
    s
}

pub fn plot(points: &[AreaPoint], svg: &Path, png: &Path) -> Result<()> {
    draw(
        points,
        SVGBackend::new(svg, (1500, 500)).into_drawing_area(),
    )?;
    crate::plot::register_png_font()?;
    draw(
        points,
        BitMapBackend::new(png, (1500, 500)).into_drawing_area(),
    )?;
    Ok(())
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
    let panels = root.split_evenly((1, 3));
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
    ];
    let specs: [(&str, &str, &str); 3] = [
        (
            "kv260",
            "UltraScale+ (KV260): LUTs per weight/clock",
            "LUTs / (weight·clock)",
        ),
        (
            "ulx3s",
            "ECP5 (ULX3S): LUTs per weight/clock",
            "LUTs / (weight·clock)",
        ),
        ("ulx3s", "ECP5 (ULX3S): Fmax after nextpnr", "Fmax (MHz)"),
    ];
    for (panel, (board, title, ylabel)) in panels.iter().zip(specs) {
        let fmax = ylabel.starts_with("Fmax");
        let value = |x: &AreaPoint| {
            if fmax {
                x.fmax_mhz
            } else {
                x.luts_per_weight_clock
            }
        };
        let ymax = points
            .iter()
            .filter(|x| x.board == board)
            .filter_map(value)
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(1.5f64..5.5f64, 0f64..ymax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!("G — {title}"))
            .y_desc(ylabel)
            .x_labels(4)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, &(p, q)) in SHAPES.iter().enumerate() {
            let colour = colours[i % colours.len()];
            for kind in ["tlmm", "adder-tree"] {
                let series: Vec<(f64, f64)> = GROUP_SIZES
                    .iter()
                    .filter_map(|&g| {
                        points
                            .iter()
                            .find(|x| {
                                x.kind == kind
                                    && x.g == g
                                    && x.p == p
                                    && x.q == q
                                    && x.board == board
                            })
                            .and_then(value)
                            .map(|v| (g as f64, v))
                    })
                    .collect();
                let style = if kind == "tlmm" {
                    colour.stroke_width(3)
                } else {
                    colour.stroke_width(1)
                };
                chart
                    .draw_series(LineSeries::new(series.clone(), style))
                    .map_err(|e| err(&e))?;
                if kind == "tlmm" {
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
    fn both_kinds_carry_the_same_weights_per_clock() {
        for &(p, q) in &SHAPES {
            for g in GROUP_SIZES {
                let t = config(EngineKind::Tlmm, g, p, q).unwrap();
                let a = config(EngineKind::AdderTree, g, p, q).unwrap();
                let w = |c: &Config| {
                    c.engine.rows_parallel * c.engine.groups_per_cycle * c.engine.group_size
                };
                assert_eq!(w(&t), w(&a));
                assert_eq!(w(&t), p * q * g);
            }
        }
    }
}

#[cfg(test)]
mod plot_tests {
    use super::*;

    #[test]
    fn the_plot_is_drawn_from_points() {
        let dir = tempfile::tempdir().unwrap();
        let points: Vec<AreaPoint> = GROUP_SIZES
            .iter()
            .map(|&g| AreaPoint {
                kind: "tlmm".into(),
                g,
                p: 2,
                q: 2,
                weights_per_clock: 4 * g,
                board: "kv260".into(),
                family: "xcup".into(),
                luts: Some(100),
                ffs: Some(10),
                lutram_luts: Some(0),
                luts_per_weight_clock: Some(10.0 * g as f64),
                fmax_mhz: None,
                logic_delay_ns: Some(1.0),
                note: None,
            })
            .collect();
        let (svg, png) = (dir.path().join("a.svg"), dir.path().join("a.png"));
        plot(&points, &svg, &png).unwrap();
        assert!(std::fs::read_to_string(&svg)
            .unwrap()
            .contains("LUTs per weight/clock"));
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
    }
}
