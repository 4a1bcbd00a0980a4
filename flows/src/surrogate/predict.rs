//! `tern predict` and the models the other flows ask: which model serves a board, and
//! a design's resources and latency from it in milliseconds.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_boards::Board;
use tern_dse::space::Space;
use tern_hdl::{design_graph, DesignConfig};
use tern_surrogate::blocks::BlockModel;
use tern_surrogate::features::{encode, BRAMS, CYCLES, DSPS, FFS, LUTS, TARGETS};
use tern_surrogate::train::{Prediction, Surrogate};

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
    let dir = crate::files::find_in_repo(Path::new("models"));
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
    /// The graph is larger than any fitted on.
    pub extrapolating: bool,
    /// The design's parameters outside the values the model was fitted on (one line
    /// each, `BlockModel::outside`); the band does not cover them.
    #[serde(default)]
    pub outside: Vec<String>,
    /// Why the model does not price this design (`tern_surrogate::blocks::refusal`):
    /// its totals are then no prediction.
    #[serde(default)]
    pub refused: Option<String>,
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
    let dir = crate::files::find_in_repo(Path::new("models"));
    let whole_top = whole_top && config.matmul().is_some();
    let graph = tern_hdl::graph::unit_graph(config, whole_top);
    let config_toml = config.to_toml();
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
            outside: model.outside(&config_toml),
            refused: p.refused,
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

/// The space the GNN was trained on, as this tern has it; or why a prediction cannot
/// be checked against it.
pub fn trained_space(model: &Surrogate) -> Result<Space, String> {
    Space::resolve(&model.header.space)
        .ok()
        .filter(|s| s.hash == model.header.space_hash)
        .ok_or_else(|| {
            format!(
                "the model's space `{}` is not available in this tern (or has changed)",
                model.header.space
            )
        })
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
    match trained_space(model) {
        Ok(space) => {
            extrapolation.extend(space.outside(config));
            if let Some(why) = space.limits.exceeded(config) {
                extrapolation.push(format!("beyond the space's limits: {why}"));
            }
        }
        Err(why) => extrapolation.push(why),
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
        "GNN {} for {} ({:.2} ms): the engine alone (its graph has no top's shell)",
        r.model, r.board, r.milliseconds
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
            "engine alone (no top's shell; --whole-top prices it)"
        }
    );
    if let Some(why) = &b.refused {
        println!("  REFUSED: {why}");
        return;
    }
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
        if b.whole_top { "whole top" } else { "engine" },
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
    if !b.outside.is_empty() {
        println!("  OUTSIDE THE TRAINED RANGE (the band was measured inside it only):");
        for why in &b.outside {
            println!("    {why}");
        }
    }
    if !b.unknown.is_empty() {
        println!("  NOT COSTED (the totals are lower bounds):");
        for u in &b.unknown {
            println!("    {u}");
        }
    }
}
