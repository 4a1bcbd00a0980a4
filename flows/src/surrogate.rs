//! `tern train`, `tern eval`, `tern predict`: the surrogate's flows over a dataset file
//! and a weights file. `tern dse` lives in `dse`.

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_boards::Board;
use tern_hdl::{design_graph, DesignConfig};
use tern_surrogate::baseline::{raw_parameters, LinearBaseline};
use tern_surrogate::blocks::{BlockModel, BlockPrediction};
use tern_surrogate::dataset::{split, Dataset, Split};
use tern_surrogate::features::{
    encode, target_vector, EncodedGraph, BRAMS, CYCLES, DSPS, FFS, LUTS, TARGETS, TARGET_COUNT,
};
use tern_surrogate::metrics::{errors, Errors};
use tern_surrogate::space::Space;
use tern_surrogate::train::{Example, Prediction, Progress, Provenance, Surrogate, TrainOptions};

use crate::plot::{plot_error, register_png_font};

/// The wa-hls4ml GNN's SMAPE on its test split (arXiv 2511.05615), in percent, by target.
pub const WA_HLS4ML_SMAPE: [Option<f64>; TARGET_COUNT] = [
    Some(11.4),
    Some(11.6),
    Some(15.1),
    Some(19.5),
    Some(15.7),
    None,
];

/// A dataset row ready for the model.
pub struct Item {
    pub index: u32,
    pub graph: tern_hdl::DesignGraph,
    pub blocks: Option<std::collections::BTreeMap<String, tern_surrogate::dataset::BlockTargets>>,
    pub config: DesignConfig,
    pub example: Example,
    pub raw: Vec<f64>,
    pub split: Split,
    pub tool_seconds: f64,
}

pub struct Loaded {
    pub dataset: Dataset,
    pub items: Vec<Item>,
}

/// Read a dataset and turn its ok rows into examples (failed rows are counted, never
/// trained on).
pub fn load(path: &Path) -> Result<Loaded> {
    let dataset = Dataset::read(path)?;
    let mut items = vec![];
    for row in dataset.ok_rows() {
        let config = DesignConfig::from_toml(
            &row.config_toml,
            &format!("{} row {}", path.display(), row.index),
        )?;
        let targets = row.targets.as_ref().expect("ok rows carry targets");
        items.push(Item {
            index: row.index,
            graph: row.graph.clone(),
            blocks: row.blocks.clone(),
            example: Example {
                graph: encode(&row.graph, &config),
                targets: target_vector(targets),
            },
            raw: raw_parameters(&config),
            split: split(row),
            tool_seconds: row.tool_seconds,
            config,
        });
    }
    Ok(Loaded { dataset, items })
}

struct Bar(ProgressBar, usize);

impl Progress for Bar {
    fn epoch(&self, member: usize, epoch: usize, train_loss: f64, validation_loss: f64) {
        self.0.set_message(format!(
            "member {}/{} epoch {epoch}: train {train_loss:.4}, validation {validation_loss:.4}",
            member + 1,
            self.1
        ));
        self.0.inc(1);
    }
}

/// Train on the dataset's training split and save the ensemble.
pub fn train(dataset: &Path, out: &Path, options: TrainOptions) -> Result<Surrogate> {
    let loaded = load(dataset)?;
    let h = &loaded.dataset.header;
    let examples: Vec<Example> = loaded
        .items
        .iter()
        .filter(|i| i.split == Split::Train)
        .map(|i| i.example.clone())
        .collect();
    println!(
        "training on {} of {} rows of {} ({} failed rows not used; {} test, {} in the held-out region)",
        examples.len(),
        loaded.dataset.rows.len(),
        dataset.display(),
        loaded.dataset.rows.len() - loaded.items.len(),
        loaded.items.iter().filter(|i| i.split == Split::Test).count(),
        loaded.items.iter().filter(|i| i.split == Split::HeldOutRegion).count(),
    );
    let progress = Bar(
        tern_build::sweep::progress_bar((options.members * options.max_epochs) as u64),
        options.members,
    );
    let start = Instant::now();
    let model = Surrogate::train(
        &examples,
        options,
        Provenance {
            space: h.space.clone(),
            space_hash: h.space_hash.clone(),
            board: h.board.clone(),
            family: h.family.clone(),
            dataset_sha256: loaded.dataset.sha256.clone(),
            datapath: loaded
                .dataset
                .rows
                .iter()
                .map(|r| r.graph.datapath)
                .max()
                .unwrap_or(tern_hdl::graph::MATMUL_DATAPATH_VERSION),
        },
        &progress,
    )?;
    progress.0.finish_and_clear();
    model.save(out)?;
    println!(
        "wrote {}: {} members × {} parameters, epochs {:?}, validation loss {:?}, {:.0} s",
        out.display(),
        model.header.members,
        model.header.parameters_per_member,
        model.header.epochs,
        model
            .header
            .validation_loss
            .iter()
            .map(|l| format!("{l:.4}"))
            .collect::<Vec<_>>(),
        start.elapsed().as_secs_f64()
    );
    Ok(model)
}

/// Fit the per-block cost model on the dataset's training split and save it.
pub fn train_blocks(dataset: &Path, also: &[PathBuf], out: &Path) -> Result<BlockModel> {
    let data = Dataset::read(dataset)?;
    let more = also
        .iter()
        .map(|p| Dataset::read(p).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<&Dataset> = std::iter::once(&data).chain(&more).collect();
    let start = Instant::now();
    let model = BlockModel::fit_many(&all)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(out)?;
    println!(
        "wrote {}: {} RTL blocks fitted on {} training rows of {} in {:.3} s",
        out.display(),
        model.blocks.len(),
        model.trained_rows,
        std::iter::once(dataset)
            .chain(also.iter().map(|p| p.as_path()))
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        seconds
    );
    for (t, name) in tern_surrogate::blocks::BLOCK_TARGETS.iter().enumerate() {
        println!(
            "  {name:<12} flattening factor {:.3}, {}",
            model.flatten[t],
            match model.band[t] {
                Some(_) => format!(
                    "band {} (out-of-fold p90)",
                    tern_surrogate::blocks::band_text(model.band[t])
                ),
                None => tern_surrogate::blocks::band_text(None),
            }
        );
    }
    Ok(model)
}

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
        });
        tables.push(EvalTable {
            predictor: "linear".into(),
            split: which,
            coverage: vec![None; TARGET_COUNT],
            errors: lin,
            flagged: 0,
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
                    .filter(|p| !p.unknown.is_empty())
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
    };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let md = eval_markdown(&report, &model, blocks.as_ref());
    std::fs::write(out.join("eval.md"), &md)?;
    crate::synthesis::write_json(&out.join("eval.json"), &report)?;
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
        for table in tables.iter().filter(|t| t.flagged > 0) {
            s += &format!(
                "**{} of these rows' {} predictions flagged parts the model could not cost** \
                 (their totals are lower bounds; `tern predict` names the parts).\n",
                table.flagged, table.predictor
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

/// A weights file and its loaded ensemble.
pub struct FoundModel {
    pub path: PathBuf,
    pub model: Surrogate,
}

/// The model named on the command line, or else the one in `models/*.tgnn` (beside the
/// repository) trained for this board, or else for its family. Each file is read once.
pub fn find_model(board: &Board, explicit: Option<&Path>) -> Result<FoundModel> {
    if let Some(p) = explicit {
        return Ok(FoundModel {
            path: p.to_path_buf(),
            model: Surrogate::load(p)?,
        });
    }
    let dir = crate::cli::find_in_repo(Path::new("models"));
    let mut same_family = None;
    let mut older = None;
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgnn"))
            .collect();
        paths.sort();
        // A model of today's datapath first, then older ones.
        for path in paths {
            let Ok(model) = Surrogate::load(&path) else {
                continue;
            };
            if model.header.board == board.name {
                if model.header.datapath == tern_hdl::graph::MATMUL_DATAPATH_VERSION {
                    return Ok(FoundModel { path, model });
                }
                older.get_or_insert(FoundModel { path, model });
                continue;
            }
            if model.header.family == board.family.name() && same_family.is_none() {
                same_family = Some(FoundModel { path, model });
            }
        }
    }
    older.or(same_family).with_context(|| {
        format!(
            "no surrogate model for {} ({}) in {}; build one with `tern dataset` and `tern train`, or pass --model",
            board.name,
            board.family.name(),
            dir.display()
        )
    })
}

/// A prediction for one config, with what it may not be trusted for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictReport {
    pub model: String,
    pub board: String,
    pub prediction: Prediction,
    /// Why this is an extrapolation (empty: inside the trained space).
    pub extrapolation: Vec<String>,
    pub milliseconds: f64,
    /// The per-block model's answer, where one for the board covers the design.
    #[serde(default)]
    pub blocks: Option<BlockReport>,
    /// Clocks of the config's workload from the exact cycle model (matmul engines):
    /// what tern uses, not the network's `cycles`.
    #[serde(default)]
    pub cycles_exact: Option<u64>,
}

/// The block model's prediction of one design.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BlockReport {
    pub model: String,
    /// The whole top (engine + shell) was priced, not the engine alone.
    #[serde(default)]
    pub whole_top: bool,
    /// `tern_surrogate::blocks::BLOCK_TARGETS` order.
    pub total: Vec<f64>,
    pub band: Vec<Option<f64>>,
    pub blocks: std::collections::BTreeMap<String, Vec<f64>>,
    pub unknown: Vec<String>,
    pub extrapolating: bool,
    pub milliseconds: f64,
}

/// The block model in `models/*.blocks.json` fitted for this board that knows the most
/// of the design's blocks (matmul and attention engines have models of their own).
/// With `whole_top`, a matmul design is priced as its whole top (`graph::top_graph`).
pub fn predict_blocks(
    config: &DesignConfig,
    board: &Board,
    whole_top: bool,
) -> Option<BlockReport> {
    let dir = crate::cli::find_in_repo(Path::new("models"));
    let whole_top = whole_top && config.matmul().is_some();
    let graph = tern_hdl::graph::unit_graph(config, whole_top);
    let mut best: Option<BlockReport> = None;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".blocks.json"))
        .collect();
    paths.sort();
    for path in paths {
        let Ok(model) = BlockModel::load(&path) else {
            continue;
        };
        if model.board != board.name {
            continue;
        }
        let start = Instant::now();
        let p = model.predict(&graph);
        let report = BlockReport {
            model: path.display().to_string(),
            whole_top,
            total: p.total,
            band: p.band,
            blocks: p.blocks,
            unknown: p.unknown,
            extrapolating: p.extrapolating,
            milliseconds: start.elapsed().as_secs_f64() * 1e3,
        };
        if best
            .as_ref()
            .is_none_or(|b| report.unknown.len() < b.unknown.len())
        {
            best = Some(report);
        }
    }
    best
}

pub fn predict_one(
    config: &DesignConfig,
    board: &Board,
    found: &FoundModel,
    whole_top: bool,
) -> PredictReport {
    let model = &found.model;
    let start = Instant::now();
    let raw = design_graph(config);
    let graph = encode(&raw, config);
    let prediction = model.predict(&[&graph]).remove(0);
    let milliseconds = start.elapsed().as_secs_f64() * 1e3;
    let mut extrapolation = vec![];
    if config.matmul().is_some() && raw.datapath != model.header.datapath {
        extrapolation.push(format!(
            "trained on matmul datapath version {} and this design is version {}: the model has \
             never seen this hardware (regenerate the dataset with `tern dataset` and retrain)",
            model.header.datapath, raw.datapath
        ));
    }
    match Space::resolve(&model.header.space) {
        Ok(space) if space.hash == model.header.space_hash => {
            extrapolation.extend(space.outside(config));
            if let Some(why) = space.limits.exceeded(config) {
                extrapolation.push(format!("beyond the space's limits: {why}"));
            }
        }
        _ => extrapolation.push(format!(
            "the model's space `{}` is not available in this tern (or has changed)",
            model.header.space
        )),
    }
    if model.header.family != board.family.name() {
        extrapolation.push(format!(
            "trained for the {} family, asked for {}",
            model.header.family,
            board.family.name()
        ));
    }
    PredictReport {
        model: found.path.display().to_string(),
        board: board.name.clone(),
        prediction,
        extrapolation,
        milliseconds,
        blocks: predict_blocks(config, board, whole_top),
        cycles_exact: config.matmul().map(|c| c.streaming_cycles()),
    }
}

pub fn print_prediction(r: &PredictReport, board: &Board) {
    println!(
        "prediction for {} by {} ({:.2} ms):",
        r.board, r.model, r.milliseconds
    );
    let budget = |t: usize| -> Option<f64> {
        let res = &board.resources;
        match t {
            LUTS => Some(res.luts as f64),
            FFS => Some(res.ffs as f64),
            DSPS => Some(res.dsps as f64),
            BRAMS => Some(res.bram_blocks as f64),
            _ => None,
        }
    };
    for (t, name) in TARGETS.iter().enumerate() {
        if let (CYCLES, Some(c)) = (t, r.cycles_exact) {
            println!("  {name:<9} {c:>12}  (exact cycle model, not the network)");
            continue;
        }
        match (r.prediction.value[t], r.prediction.spread[t]) {
            (Some(v), Some(s)) => {
                let share = budget(t)
                    .filter(|b| *b > 0.0)
                    .map(|b| format!("  ({:.1}% of the board)", 100.0 * v / b))
                    .unwrap_or_default();
                println!("  {name:<9} {v:>12.1}  ± {:.1}%{share}", 100.0 * s);
            }
            _ => println!(
                "  {name:<9} {:>12}  (not in the model's training data)",
                "–"
            ),
        }
    }
    if r.extrapolation.is_empty() {
        println!("  inside the trained space");
    } else {
        println!("  EXTRAPOLATION — outside the trained space:");
        for why in &r.extrapolation {
            println!("    {why}");
        }
    }
    let Some(b) = &r.blocks else {
        println!("block model: none for {} in models/", r.board);
        return;
    };
    println!(
        "block model {} ({:.3} ms): the {} as the sum of its RTL blocks",
        b.model,
        b.milliseconds,
        if b.whole_top {
            "whole top (engine + shell)"
        } else {
            "engine"
        }
    );
    println!(
        "  {:<18} {:>10} {:>10} {:>6} {:>8} {:>10}",
        "block", "LUT", "FF", "DSP", "BRAM", "LUT-RAM"
    );
    for (name, v) in &b.blocks {
        println!(
            "  {name:<18} {:>10.0} {:>10.0} {:>6.0} {:>8.1} {:>10.0}",
            v[0], v[1], v[2], v[3], v[4]
        );
    }
    println!(
        "  {:<18} {:>10.0} {:>10.0} {:>6.0} {:>8.1} {:>10.0}  (flattened; LUT {}, FF {})",
        "design",
        b.total[0],
        b.total[1],
        b.total[2],
        b.total[3],
        b.total[4],
        tern_surrogate::blocks::band_text(b.band[0]),
        tern_surrogate::blocks::band_text(b.band[1])
    );
    if b.extrapolating {
        println!("  larger than any design it was fitted on: the band is widened");
    }
    if !b.unknown.is_empty() {
        println!("  NOT COSTED (the totals are lower bounds):");
        for u in &b.unknown {
            println!("    {u}");
        }
    }
}
