//! `tern eval`: a surrogate on a dataset's test rows and held-out region against the
//! linear baseline: error tables and predicted-vs-actual plots.

use anyhow::{bail, Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

use tern_hdl::DesignConfig;

use tern_surrogate::baseline::LinearBaseline;
use tern_surrogate::blocks::{BlockModel, BlockPrediction};
use tern_surrogate::dataset::Split;
use tern_surrogate::features::{EncodedGraph, BRAMS, DSPS, FFS, LUTS, TARGETS, TARGET_COUNT};
use tern_surrogate::metrics::{errors, Errors};
use tern_surrogate::train::Surrogate;

use crate::plot::{plot_error, register_png_font};

use super::rows::{load, Item};

/// The wa-hls4ml GNN's SMAPE on its test split (arXiv 2511.05615), in percent, by target.
pub const WA_HLS4ML_SMAPE: [Option<f64>; TARGET_COUNT] = [
    Some(11.4),
    Some(11.6),
    Some(15.1),
    Some(19.5),
    Some(15.7),
    None,
];

/// Errors of one predictor on one split, per target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalTable {
    pub predictor: String,
    pub split: Split,
    pub errors: Vec<Option<Errors>>,
    /// Per target: the fraction of rows whose actual value lies within the predictor's
    /// stated band (GNN: ± one ensemble standard deviation; blocks: ± the out-of-fold
    /// 90th-percentile relative error, widened beyond training). None: no band.
    #[serde(default)]
    pub coverage: Vec<Option<f64>>,
    /// Rows whose prediction flagged parts it could not cost (block model: unknown
    /// blocks or feature columns; such a total is a lower bound).
    #[serde(default)]
    pub flagged: usize,
    /// Rows the predictor does not price (block model: `tern_surrogate::blocks::refusal`),
    /// left out of its errors.
    #[serde(default)]
    pub refused: usize,
}

/// Prediction and synthesis time on one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SplitTiming {
    pub split: Split,
    pub rows: usize,
    pub yosys_seconds_median: f64,
    pub gnn_ms_per_design: f64,
    pub blocks_ms_per_design: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    pub dataset: String,
    pub model: String,
    #[serde(default)]
    pub block_model: Option<String>,
    #[serde(default)]
    pub extrapolation: Option<String>,
    pub rows: usize,
    pub failed_rows: usize,
    pub tables: Vec<EvalTable>,
    /// Prediction time per design, batched over the random test rows.
    pub prediction_ms_per_design: f64,
    /// Median Yosys (and nextpnr) seconds per design over the test and held-out rows.
    pub yosys_seconds_median: f64,
    /// `yosys_seconds_median` / prediction seconds per design.
    pub speedup: f64,
    #[serde(default)]
    pub timing: Vec<SplitTiming>,
    /// (split, target, actual, predicted, predictor) of every evaluated row, for plots.
    pub points: Vec<(Split, usize, f64, f64, String)>,
    /// The block model per RTL block of every evaluated row that has per-block labels.
    #[serde(default)]
    pub block_points: Vec<BlockPoint>,
    /// The block model's errors per split and design class (`design_class`): where in
    /// the space it misses.
    #[serde(default)]
    pub block_classes: Vec<ClassErrors>,
}

/// The block model's errors on one split's rows of one design class.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassErrors {
    pub split: Split,
    pub class: String,
    /// Per block target (`tern_surrogate::blocks::BLOCK_TARGETS` order): LUT, FF, DSP,
    /// BRAM, LUT-RAM.
    pub errors: Vec<Option<Errors>>,
    /// The model refuses to price this class (its errors are what it would say, kept to
    /// show why).
    #[serde(default)]
    pub refused: bool,
}

/// A design's class for the breakdown: a matmul engine's kind and table storage (the
/// choices that change its structure most), or an attention engine's mode.
pub fn design_class(config: &DesignConfig) -> String {
    // The names as the config file spells them.
    fn name<T: Serialize>(v: &T) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|j| j.as_str().map(str::to_string))
            .unwrap_or_else(|| "?".into())
    }
    match config {
        DesignConfig::Matmul(c) => match name(&c.engine.kind).as_str() {
            "tlmm" => format!("tlmm, {} tables", name(&c.engine.table_storage)),
            other => other.to_string(),
        },
        DesignConfig::Attention(c) => format!("attention, {}", name(&c.attention.mode)),
    }
}

/// One RTL block of one row: kept-hierarchy cells against the block model's cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockPoint {
    pub split: Split,
    pub index: u32,
    pub block: String,
    /// `tern_surrogate::blocks::BLOCK_TARGETS` order.
    pub actual: Vec<f64>,
    pub predicted: Vec<f64>,
}

/// What `tern eval` reads and writes.
pub struct EvalArgs<'a> {
    pub dataset: &'a Path,
    pub model: &'a Path,
    /// A per-block model (`tern train --blocks`) to evaluate beside the GNN.
    pub blocks: Option<&'a Path>,
    /// A dataset of designs never trained on (larger ones), evaluated as its own split.
    pub extrapolation: Option<&'a Path>,
    pub out: &'a Path,
}

/// The block model's targets that are also GNN targets: (GNN index, block index).
const SHARED_TARGETS: [(usize, usize); 4] = [(LUTS, 0), (FFS, 1), (DSPS, 2), (BRAMS, 3)];

/// The block model's design totals against the flat synthesis, per design class.
fn class_errors(
    which: Split,
    items: &[&Item],
    predictions: &[BlockPrediction],
) -> Vec<ClassErrors> {
    type Pairs = Vec<(usize, f64, f64)>;
    let mut by: std::collections::BTreeMap<String, (Pairs, bool)> = Default::default();
    for (item, p) in items.iter().zip(predictions) {
        let class = by.entry(design_class(&item.config)).or_default();
        class.1 |= p.refused.is_some();
        for (g, b) in SHARED_TARGETS {
            if let Some(actual) = item.example.targets[g] {
                class.0.push((b, p.total[b], actual));
            }
        }
    }
    by.into_iter()
        .map(|(class, (pairs, refused))| ClassErrors {
            split: which,
            class,
            refused,
            errors: (0..tern_surrogate::blocks::BLOCK_TARGET_COUNT)
                .map(|b| {
                    let of: Vec<(f64, f64)> = pairs
                        .iter()
                        .filter(|(t, _, _)| *t == b)
                        .map(|&(_, p, a)| (p, a))
                        .collect();
                    errors(&of)
                })
                .collect(),
        })
        .collect()
}

fn median_seconds(items: &[&Item]) -> f64 {
    let mut v: Vec<f64> = items.iter().map(|i| i.tool_seconds).collect();
    v.sort_by(f64::total_cmp);
    tern_surrogate::metrics::quantile(&v, 0.5)
}

/// Evaluate a model (and the linear baseline fitted on the same training split, and a
/// block model if given) on the random test rows, the held-out region and an
/// extrapolation set; write a table, plots and raw results.
pub fn eval(a: &EvalArgs) -> Result<EvalReport> {
    let (dataset, model_path, out) = (a.dataset, a.model, a.out);
    let loaded = load(dataset)?;
    let model = Surrogate::load(model_path)?;
    let (mh, dh) = (&model.header, &loaded.dataset.header);
    if (&mh.space, &mh.space_hash, &mh.board) != (&dh.space, &dh.space_hash, &dh.board) {
        bail!(
            "{} was trained on space `{}` (hash {}) for board `{}`, but {} holds space `{}` (hash {}) for board `{}`: evaluate a model on the dataset it was trained from",
            model_path.display(),
            mh.space,
            mh.space_hash,
            mh.board,
            dataset.display(),
            dh.space,
            dh.space_hash,
            dh.board
        );
    }
    if mh.dataset_sha256 != loaded.dataset.sha256 {
        eprintln!(
            "note: {} was trained on another version of the dataset (sha256 {}…); its training split is the same by construction",
            model_path.display(),
            mh.dataset_sha256.get(..12).unwrap_or(&mh.dataset_sha256)
        );
    }
    let blocks = match a.blocks {
        Some(p) => {
            let m = BlockModel::load(p)?;
            if !m.fitted_on(&dh.space, &dh.space_hash, &dh.board) {
                bail!(
                    "{} was fitted on space `{}` for board `{}`, not on {} (space `{}`, board `{}`)",
                    p.display(),
                    m.space,
                    m.board,
                    dataset.display(),
                    dh.space,
                    dh.board
                );
            }
            Some(m)
        }
        None => None,
    };
    let extra = match a.extrapolation {
        Some(p) => {
            let e = load(p)?;
            if e.dataset.header.board != dh.board {
                bail!(
                    "{} is for board `{}`, the model for `{}`",
                    p.display(),
                    e.dataset.header.board,
                    dh.board
                );
            }
            Some(e)
        }
        None => None,
    };
    let train: Vec<&Item> = loaded
        .items
        .iter()
        .filter(|i| i.split == Split::Train)
        .collect();
    let baseline = LinearBaseline::fit(
        &train
            .iter()
            .map(|i| (i.raw.clone(), i.example.targets))
            .collect::<Vec<_>>(),
    );
    let mut groups: Vec<(Split, Vec<&Item>)> = [Split::Test, Split::HeldOutRegion]
        .into_iter()
        .map(|w| (w, loaded.items.iter().filter(|i| i.split == w).collect()))
        .collect();
    if let Some(e) = &extra {
        groups.push((Split::Extrapolation, e.items.iter().collect()));
    }
    let mut tables = vec![];
    let mut points = vec![];
    let mut block_points = vec![];
    let mut block_classes = vec![];
    let mut timing = vec![];
    for (which, items) in groups.into_iter().filter(|(_, i)| !i.is_empty()) {
        let graphs: Vec<&EncodedGraph> = items.iter().map(|i| &i.example.graph).collect();
        let start = Instant::now();
        let predictions = model.predict(&graphs);
        let gnn_ms = 1e3 * start.elapsed().as_secs_f64() / items.len() as f64;
        let (block_predictions, blocks_ms) = match &blocks {
            Some(m) => {
                let start = Instant::now();
                let p: Vec<BlockPrediction> = items.iter().map(|i| m.predict(&i.graph)).collect();
                let ms = 1e3 * start.elapsed().as_secs_f64() / items.len() as f64;
                (Some(p), Some(ms))
            }
            None => (None, None),
        };
        if let Some(bps) = &block_predictions {
            block_classes.extend(class_errors(which, &items, bps));
        }
        for (item, bp) in items.iter().zip(block_predictions.iter().flatten()) {
            for (block, actual) in item.blocks.iter().flatten() {
                if let Some(p) = bp.blocks.get(block) {
                    block_points.push(BlockPoint {
                        split: which,
                        index: item.index,
                        block: block.clone(),
                        actual: actual.values().to_vec(),
                        predicted: p.clone(),
                    });
                }
            }
        }
        timing.push(SplitTiming {
            split: which,
            rows: items.len(),
            yosys_seconds_median: median_seconds(&items),
            gnn_ms_per_design: gnn_ms,
            blocks_ms_per_design: blocks_ms,
        });
        let within = |v: f64, a: f64, band: f64| (v - a).abs() <= band * v.abs();
        let mut gnn = (vec![], vec![]);
        let mut lin = vec![];
        let mut blk = (vec![], vec![]);
        for t in 0..TARGET_COUNT {
            let mut g_pairs = vec![];
            let mut g_in = 0usize;
            let mut l_pairs = vec![];
            let mut b_pairs = vec![];
            let mut b_in = 0usize;
            // Rows whose prediction states a band (coverage is measured over those).
            let mut b_banded = 0usize;
            let shared = SHARED_TARGETS.iter().find(|(g, _)| *g == t).map(|x| x.1);
            for (n, (item, p)) in items.iter().zip(&predictions).enumerate() {
                let Some(actual) = item.example.targets[t] else {
                    continue;
                };
                if let Some(v) = p.value[t] {
                    g_pairs.push((v, actual));
                    g_in += usize::from(within(v, actual, p.spread[t].unwrap_or(0.0)));
                    points.push((which, t, actual, v, "gnn".to_string()));
                }
                if let Some(v) = baseline.predict(&item.raw)[t] {
                    l_pairs.push((v, actual));
                }
                if let (Some(bp), Some(b)) = (&block_predictions, shared) {
                    let bp = &bp[n];
                    if bp.refused.is_some() {
                        continue;
                    }
                    let v = bp.total[b];
                    b_pairs.push((v, actual));
                    if let Some(band) = bp.band[b] {
                        b_banded += 1;
                        b_in += usize::from(within(v, actual, band));
                    }
                    points.push((which, t, actual, v, "blocks".to_string()));
                }
            }
            let frac = |k: usize, n: usize| (n > 0).then(|| k as f64 / n as f64);
            gnn.0.push(errors(&g_pairs));
            gnn.1.push(frac(g_in, g_pairs.len()));
            lin.push(errors(&l_pairs));
            blk.0.push(errors(&b_pairs));
            blk.1.push(frac(b_in, b_banded));
        }
        tables.push(EvalTable {
            predictor: "gnn".into(),
            split: which,
            errors: gnn.0,
            coverage: gnn.1,
            flagged: 0,
            refused: 0,
        });
        tables.push(EvalTable {
            predictor: "linear".into(),
            split: which,
            coverage: vec![None; TARGET_COUNT],
            errors: lin,
            flagged: 0,
            refused: 0,
        });
        if blocks.is_some() {
            tables.push(EvalTable {
                predictor: "blocks".into(),
                split: which,
                errors: blk.0,
                coverage: blk.1,
                flagged: block_predictions
                    .iter()
                    .flatten()
                    .filter(|p| p.refused.is_none() && !p.unknown.is_empty())
                    .count(),
                refused: block_predictions
                    .iter()
                    .flatten()
                    .filter(|p| p.refused.is_some())
                    .count(),
            });
        }
    }
    if tables.is_empty() {
        bail!(
            "{} has no test or held-out rows to evaluate on",
            dataset.display()
        );
    }
    let in_space: Vec<&Item> = loaded
        .items
        .iter()
        .filter(|i| i.split != Split::Train)
        .collect();
    let yosys_median = median_seconds(&in_space);
    let per_design = timing
        .iter()
        .find(|t| t.split == Split::Test)
        .map_or(f64::NAN, |t| t.gnn_ms_per_design / 1e3);
    let report = EvalReport {
        dataset: dataset.display().to_string(),
        model: model_path.display().to_string(),
        block_model: a.blocks.map(|p| p.display().to_string()),
        extrapolation: a.extrapolation.map(|p| p.display().to_string()),
        rows: loaded.dataset.rows.len(),
        failed_rows: loaded.dataset.rows.len() - loaded.items.len(),
        tables,
        prediction_ms_per_design: per_design * 1e3,
        yosys_seconds_median: yosys_median,
        speedup: yosys_median / per_design,
        timing,
        points,
        block_points,
        block_classes,
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let md = eval_markdown(&report, &model, blocks.as_ref());
    std::fs::write(out.join("eval.md"), &md)?;
    tern_build::synth::cache::write_json(&out.join("eval.json"), &report)?;
    plot_eval(
        &report,
        &out.join("predicted_vs_actual.svg"),
        &out.join("predicted_vs_actual.png"),
    )?;
    println!("{md}");
    println!(
        "wrote {}/eval.md, eval.json, predicted_vs_actual.png/.svg",
        out.display()
    );
    Ok(report)
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.1}")
    }
}

fn split_title(which: Split) -> &'static str {
    match which {
        Split::Test => "Random test rows",
        Split::HeldOutRegion => "Held-out region",
        Split::Extrapolation => "Extrapolation set (larger designs, never trained on)",
        Split::Train => "Training rows",
    }
}

fn eval_markdown(r: &EvalReport, model: &Surrogate, blocks: Option<&BlockModel>) -> String {
    let h = &model.header;
    let mut s = format!(
        "# Surrogate evaluation\n\nDataset `{}` ({} rows, {} failed rows excluded), model `{}` \
         ({} members, {} parameters each, trained on {} rows of space `{}` for `{}`).\n\n\
         Splits: **test** = a fixed {}% of the space's rows chosen by a hash of the sample index; \
         **held-out region** = every row in the space's `[holdout]` region, which training never sees; \
         **extrapolation** = every row of a second dataset of larger designs, never trained on. \
         APE is over rows whose actual value is nonzero (the `n≠0` column); SMAPE and R² over all rows \
         (0/0 counts as 0 in SMAPE). The linear baseline is a least-squares power law on the raw \
         config parameters, fitted on the same training rows. **band covers**: the share of rows whose \
         actual value lies within the predictor's stated band (GNN: ± one ensemble standard deviation, \
         ~68 % if calibrated; blocks: ± the out-of-fold 90th-percentile error, ~90 % if calibrated, \
         widened for graphs larger than any trained on). wa-hls4ml: its GNN's test SMAPE \
         (arXiv 2511.05615), for scale only — a different design space and tool.\n\n",
        r.dataset,
        r.rows,
        r.failed_rows,
        r.model,
        h.members,
        h.parameters_per_member,
        h.trained_rows,
        h.space,
        h.board,
        tern_surrogate::dataset::TEST_PERCENT
    );
    if let (Some(b), Some(path)) = (blocks, &r.block_model) {
        s += &format!(
            "Block model `{path}`: per-block costs fitted on {} training rows' per-block labels, \
             {} RTL blocks, flattening factors (LUT, FF) {:.3}, {:.3}.\n\n",
            b.trained_rows,
            b.blocks.len(),
            b.flatten[0],
            b.flatten[1]
        );
    }
    if let Some(e) = &r.extrapolation {
        s += &format!("Extrapolation set: `{e}`.\n\n");
    }
    for which in [Split::Test, Split::HeldOutRegion, Split::Extrapolation] {
        let tables: Vec<&EvalTable> = r.tables.iter().filter(|t| t.split == which).collect();
        if tables.is_empty() {
            continue;
        }
        s += &format!(
            "## {}\n\n| target | predictor | rows | n≠0 | median APE % | p90 APE % | SMAPE % | R² | band covers | wa-hls4ml SMAPE % |\n|---|---|---|---|---|---|---|---|---|---|\n",
            split_title(which)
        );
        for t in 0..TARGET_COUNT {
            for table in &tables {
                let Some(e) = table.errors.get(t).copied().flatten() else {
                    continue;
                };
                let covers = table
                    .coverage
                    .get(t)
                    .copied()
                    .flatten()
                    .map_or("–".into(), |c| format!("{:.0} %", 100.0 * c));
                s += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {} | {} |\n",
                    TARGETS[t],
                    table.predictor,
                    e.rows,
                    e.nonzero,
                    fmt(e.median_ape),
                    fmt(e.p90_ape),
                    fmt(e.smape),
                    e.r2,
                    covers,
                    WA_HLS4ML_SMAPE[t].map_or("–".into(), |v| format!("{v:.1}"))
                );
            }
        }
        for table in tables.iter().filter(|t| t.refused > 0) {
            s += &format!(
                "\n**The {} model does not price {} of these rows** (TLMM engines with shared \
                 tables: `tern predict` says why); they are left out of its errors.\n",
                table.predictor, table.refused
            );
        }
        for table in tables.iter().filter(|t| t.flagged > 0) {
            s += &format!(
                "**{} of these rows' {} predictions flagged parts the model could not cost** \
                 (their totals are lower bounds; `tern predict` names the parts).\n",
                table.flagged, table.predictor
            );
        }
        s += "\n";
    }
    if !r.block_classes.is_empty() {
        s += "## The block model by design class\n\nMedian APE % of the design totals (rows in brackets): where in the space the model misses. A class marked refused is one the model does not price; its errors are what it would say.\n\n| split | class | LUT | FF | BRAM |\n|---|---|---|---|---|\n";
        for c in &r.block_classes {
            let cell = |t: usize| match &c.errors[t] {
                Some(e) if e.nonzero > 0 => format!("{} ({})", fmt(e.median_ape), e.nonzero),
                _ => "–".into(),
            };
            s += &format!(
                "| {} | {}{} | {} | {} | {} |\n",
                split_title(c.split),
                c.class,
                if c.refused { " (refused)" } else { "" },
                cell(0),
                cell(1),
                cell(3)
            );
        }
        s += "\n";
    }
    s += "## Time\n\n| split | rows | Yosys median s | GNN ms/design | blocks ms/design | Yosys ÷ slower predictor |\n|---|---|---|---|---|---|\n";
    for t in &r.timing {
        let slowest = t
            .gnn_ms_per_design
            .max(t.blocks_ms_per_design.unwrap_or(0.0));
        s += &format!(
            "| {} | {} | {:.1} | {:.3} | {} | {:.0}× |\n",
            split_title(t.split),
            t.rows,
            t.yosys_seconds_median,
            t.gnn_ms_per_design,
            t.blocks_ms_per_design
                .map_or("–".into(), |m| format!("{m:.4}")),
            1e3 * t.yosys_seconds_median / slowest
        );
    }
    s += "\nGNN times are batched over the split's rows; the block model predicts one design at a time.\n";
    s
}

fn plot_eval(r: &EvalReport, svg: &Path, png: &Path) -> Result<()> {
    let targets: Vec<usize> = (0..TARGET_COUNT)
        .filter(|t| r.points.iter().any(|p| p.1 == *t))
        .collect();
    let size = (400 * targets.len().max(1) as u32, 420);
    draw_eval(r, &targets, SVGBackend::new(svg, size).into_drawing_area())?;
    register_png_font()?;
    draw_eval(
        r,
        &targets,
        BitMapBackend::new(png, size).into_drawing_area(),
    )
}

fn draw_eval<DB: DrawingBackend>(
    r: &EvalReport,
    targets: &[usize],
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_error(&e))?;
    let panels = root.split_evenly((1, targets.len().max(1)));
    for (panel, &t) in panels.iter().zip(targets) {
        let pts: Vec<&(Split, usize, f64, f64, String)> =
            r.points.iter().filter(|p| p.1 == t).collect();
        // log1p axes: zero-valued targets (no BRAM, no DSP) stay on the plot.
        let l = |v: f64| (1.0 + v.max(0.0)).log10();
        let hi = pts
            .iter()
            .map(|p| l(p.2).max(l(p.3)))
            .fold(0.5f64, f64::max)
            * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..hi, 0f64..hi)
            .map_err(|e| plot_error(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!("actual {} (log10(1+x))", TARGETS[t]))
            .y_desc("predicted")
            .draw()
            .map_err(|e| plot_error(&e))?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (hi, hi)],
                BLACK.stroke_width(1),
            ))
            .map_err(|e| plot_error(&e))?;
        // Colour by split; GNN as dots, the block model as crosses.
        for (which, colour) in [
            (Split::Test, RGBColor(31, 119, 180)),
            (Split::HeldOutRegion, RGBColor(214, 39, 40)),
            (Split::Extrapolation, RGBColor(44, 160, 44)),
        ] {
            let of = |predictor: &'static str| {
                pts.iter()
                    .filter(move |p| p.0 == which && p.4 == predictor)
                    .map(|p| (l(p.2), l(p.3)))
            };
            chart
                .draw_series(of("gnn").map(|xy| Circle::new(xy, 2, colour.filled())))
                .map_err(|e| plot_error(&e))?;
            chart
                .draw_series(of("blocks").map(|xy| Cross::new(xy, 3, colour.stroke_width(1))))
                .map_err(|e| plot_error(&e))?;
        }
    }
    root.present().map_err(|e| plot_error(&e))?;
    Ok(())
}
