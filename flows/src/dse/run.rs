//! `tern dse`: search a design space with the surrogate for a board and a workload,
//! keep what fits and is Pareto-optimal (decode tokens/s ↑, LUTs ↓, block RAMs ↓),
//! synthesise the top of the front for real and report predicted against actual.
//! With `--exhaustive` (small spaces), also synthesise every point and report how much
//! of the true front's hypervolume the surrogate-guided picks reach.

use anyhow::{bail, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_boards::Board;
use tern_dse::pareto::{front, greedy_after, greedy_by_contribution, hypervolume};
use tern_dse::performance::{Projection, Stream, TiledEngine, TokenTime, PROMPT_TOKENS};
use tern_dse::space::Space;
use tern_dse::workload::ModelWorkload;
use tern_hdl::{design_graph, Config, DesignConfig};
use tern_surrogate::blocks::BlockModel;
use tern_surrogate::features::{encode, BRAMS, DSPS, FFS, FMAX_MHZ, LUTS};

use crate::dse::attention::{AttentionOption, Shell};
use crate::dse::estimate::Resources;
use crate::plot::{plot_error, register_png_font};
use crate::surrogate::predict::FoundModel;
use tern_build::executor::Executor;
use tern_build::job::{SweepItem, SweepPlan, SweepRow};
use tern_build::sweep;
use tern_build::synth::SynthOptions;

pub struct DsePlan {
    pub n: usize,
    pub top_k: usize,
    pub seed: u32,
    pub exhaustive: bool,
    pub executor: Executor,
    /// Resources from this per-block model (composed from the engine's RTL blocks)
    /// instead of the GNN's; its path for the report.
    pub blocks: Option<(PathBuf, BlockModel)>,
    /// What the rest of the accelerator takes on the chip (the top's shell, attention
    /// engines): added to every engine's resources before the fit check.
    pub reserve: Resources,
    /// Optimise prefill (time to first token) too: the front is over (decode tokens/s,
    /// 128-token prefill seconds, LUTs).
    pub prefill: bool,
    /// Search attention tops beside the matmul top: the front is then over the whole
    /// accelerator (decode tokens/s and time to first token of both, LUTs of both).
    pub attention: Option<crate::dse::attention::AttentionPlan>,
}

/// What is known about one candidate engine: its resources and decode projection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Estimate {
    #[serde(flatten)]
    pub resources: Resources,
    /// Relative ensemble spread of the LUT prediction (predicted estimates only).
    pub lut_spread: Option<f64>,
    pub projection: Projection,
    /// Matmul seconds of a 128-token prompt's prefill (the exact cycle model against
    /// the weight traffic of its token blocks, `tern project`): the engine's share of
    /// the time to first token.
    #[serde(default)]
    pub prefill_128_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub config_toml: String,
    pub predicted: Estimate,
    pub fits: bool,
    pub on_front: bool,
    /// After real synthesis (top-k, or every point with `--exhaustive`).
    pub actual: Option<Estimate>,
    #[serde(default)]
    pub error: Option<String>,
    /// Where the design lies outside what the model that priced it was trained on
    /// (one line per parameter; empty: inside).
    #[serde(default)]
    pub outside: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exhaustive {
    pub points: usize,
    pub synthesised_by_guided: usize,
    pub fraction_synthesised: f64,
    pub hypervolume_exhaustive: f64,
    pub hypervolume_guided: f64,
    pub ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DseReport {
    pub space: String,
    pub board: String,
    pub workload: ModelWorkload,
    pub model: String,
    pub candidates: usize,
    pub fitting: usize,
    /// When none fits: which resources ran out, for how many, and the least needed.
    #[serde(default)]
    pub nothing_fits: Option<String>,
    pub predict_seconds: f64,
    pub results: Vec<Candidate>,
    pub exhaustive: Option<Exhaustive>,
    /// The block model that gave the resources, if one did.
    #[serde(default)]
    pub block_model: Option<String>,
    #[serde(default)]
    pub reserve: Resources,
    /// The front includes prefill time (`--prefill`).
    #[serde(default)]
    pub prefill: bool,
    /// Candidates are whole tops (engine + shell), not engines.
    #[serde(default)]
    pub whole_top: bool,
    /// The attention tops searched beside the matmul top, and the joint front.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionReport>,
    /// The performance model's version that judged the candidates
    /// (`tern_dse::performance::VERSION`; 0: a report made before it was recorded).
    #[serde(default)]
    pub performance_model: u32,
}

/// The whole accelerator: matmul tops (the candidates above) with attention tops.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttentionReport {
    pub space: String,
    pub block_model: String,
    pub reference: String,
    pub shell: Shell,
    pub options: Vec<AttentionOption>,
    /// Pairs of a matmul candidate and an attention option that survived pruning (each
    /// side on its own front) and fit together; the front and the picks among them.
    pub joint: Vec<Joint>,
    pub picks: Vec<usize>,
}

/// A whole accelerator's figures: both tops' resources (the reserve included), decode
/// tokens/s (matmul roofline + attention decode, run one after the other) and the time
/// to first token of a 128-token prompt (matmul prefill + attention prefill).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Whole {
    pub resources: Resources,
    pub tokens_per_s: f64,
    pub ttft_s: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joint {
    /// Index into `results` and into `attention.options`.
    pub matmul: usize,
    pub attention: usize,
    pub predicted: Whole,
    pub actual: Option<Whole>,
    pub on_front: bool,
}

fn clock(board: &Board, fmax: Option<f64>, source: &str) -> (f64, String) {
    match fmax {
        Some(f) => (f, source.into()),
        None => (board.clock.default_mhz, "board clock (no router)".into()),
    }
}

/// A candidate's speed as the DSE judges it: the decode projection and (with `prefill`)
/// the matmul seconds of a `PROMPT_TOKENS` prompt, at `fmax` (else the board's clock).
pub fn candidate_speed(
    engine: &Config,
    workload: &ModelWorkload,
    board: &Board,
    fmax: Option<f64>,
    prefill: bool,
) -> Result<(Projection, Option<f64>)> {
    let t = TiledEngine::new(engine)?;
    Ok(speed(engine, &t, workload, board, fmax, "fmax", prefill))
}

/// [`candidate_speed`] for an engine already tiled, its clock labelled `source`: the
/// performance model's decode roofline and prefill on one stream at one clock.
fn speed(
    engine: &Config,
    tiled: &TiledEngine,
    workload: &ModelWorkload,
    board: &Board,
    fmax: Option<f64>,
    source: &str,
    prefill: bool,
) -> (Projection, Option<f64>) {
    let (mhz, source) = clock(board, fmax, source);
    let stream = Stream::of(&engine.top, board, mhz);
    (
        tiled.decode(workload, &stream, &source),
        prefill.then(|| tiled.prefill_s(workload, PROMPT_TOKENS, &stream)),
    )
}

fn fits(e: &Estimate, board: &Board) -> bool {
    e.resources.fits(&board.resources)
}

/// A matmul top (its estimate, the reserve included) with an attention option whose
/// tops take `attention`: kernels run one after the other, so their times add.
pub fn whole(m: &Estimate, a: &AttentionOption, attention: Resources) -> Whole {
    let matmul_s = if m.projection.tokens_per_s > 0.0 {
        1.0 / m.projection.tokens_per_s
    } else {
        f64::INFINITY
    };
    let token = TokenTime::new(
        matmul_s,
        m.prefill_128_s.unwrap_or(f64::INFINITY),
        &a.timing,
    );
    Whole {
        resources: m.resources.plus(attention),
        tokens_per_s: token.decode_tokens_per_s,
        ttft_s: token.ttft_s,
    }
}

/// The whole accelerator's front: each side is first cut to its own front over (its
/// decode time, its prefill time, LUT, FF, DSP, BRAM), since a pair with a dominated
/// side is dominated by the pair with the side that dominates it (times and resources
/// add). Pairs that fit are ranked over (decode tokens/s ↑, time to first token ↓,
/// LUTs ↓); the `k` picks are chosen by predicted hypervolume contribution.
fn joint_front(
    results: &[Candidate],
    options: &[AttentionOption],
    board: &Board,
    k: usize,
) -> (Vec<Joint>, Vec<usize>) {
    let own_front = |ids: Vec<usize>, obj: &dyn Fn(usize) -> Vec<f64>| -> Vec<usize> {
        let objs: Vec<Vec<f64>> = ids.iter().map(|&i| obj(i)).collect();
        front(&objs).into_iter().map(|j| ids[j]).collect()
    };
    let matmuls = own_front(
        (0..results.len())
            .filter(|&i| results[i].fits && results[i].predicted.prefill_128_s.is_some())
            .collect(),
        &|i| {
            let p = &results[i].predicted;
            vec![
                1.0 / p.projection.tokens_per_s,
                p.prefill_128_s.unwrap_or(f64::INFINITY),
                p.resources.luts,
                p.resources.ffs,
                p.resources.dsps,
                p.resources.brams,
            ]
        },
    );
    let attentions = own_front(
        (0..options.len())
            .filter(|&i| options[i].error.is_none())
            .collect(),
        &|i| {
            let o = &options[i];
            let r = o.predicted;
            vec![
                o.timing.decode_s,
                o.timing.prefill_s,
                r.luts,
                r.ffs,
                r.dsps,
                r.brams,
            ]
        },
    );
    let mut joint = vec![];
    for &m in &matmuls {
        for &a in &attentions {
            let predicted = whole(&results[m].predicted, &options[a], options[a].predicted);
            if predicted.resources.fits(&board.resources) {
                joint.push(Joint {
                    matmul: m,
                    attention: a,
                    predicted,
                    actual: None,
                    on_front: false,
                });
            }
        }
    }
    let objs: Vec<Vec<f64>> = joint
        .iter()
        .map(|j| {
            vec![
                -j.predicted.tokens_per_s,
                j.predicted.ttft_s,
                j.predicted.resources.luts,
            ]
        })
        .collect();
    let on_front = front(&objs);
    for &i in &on_front {
        joint[i].on_front = true;
    }
    let reference = nadir(&objs);
    let front_objs: Vec<Vec<f64>> = on_front.iter().map(|&i| objs[i].clone()).collect();
    // The front's fastest design on each time objective first (the hypervolume of a
    // front spanning seconds of TTFT hardly rewards the last tenths), then by
    // contribution.
    let best_by = |key: &dyn Fn(&Vec<f64>) -> (f64, f64)| {
        (0..front_objs.len()).min_by(|&a, &b| {
            key(&front_objs[a])
                .partial_cmp(&key(&front_objs[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    };
    let mut first: Vec<usize> = [best_by(&|o| (o[1], o[2])), best_by(&|o| (o[0], o[2]))]
        .into_iter()
        .flatten()
        .collect();
    first.dedup();
    let picks = greedy_after(&front_objs, &reference, k, first)
        .into_iter()
        .map(|j| on_front[j])
        .collect();
    (joint, picks)
}

/// The fitting candidates' predicted front, and the `k` of it to synthesise, chosen by
/// predicted hypervolume contribution.
fn matmul_picks(results: &[Candidate], prefill: bool, k: usize) -> (Vec<usize>, Vec<usize>) {
    let fitting: Vec<usize> = (0..results.len()).filter(|&i| results[i].fits).collect();
    let all: Vec<Vec<f64>> = results
        .iter()
        .map(|c| objectives(&c.predicted, prefill))
        .collect();
    let objs: Vec<Vec<f64>> = fitting.iter().map(|&i| all[i].clone()).collect();
    let on_front: Vec<usize> = front(&objs).into_iter().map(|j| fitting[j]).collect();
    let front_objs: Vec<Vec<f64>> = on_front.iter().map(|&i| all[i].clone()).collect();
    let guided = greedy_by_contribution(&front_objs, &nadir(&all), k)
        .into_iter()
        .map(|j| on_front[j])
        .collect();
    (on_front, guided)
}

/// Minimised objectives: (−tokens/s, LUTs, BRAMs), or with `prefill` (−tokens/s,
/// prefill seconds of a 128-token prompt, LUTs): BRAMs then only have to fit.
fn objectives(e: &Estimate, prefill: bool) -> Vec<f64> {
    if prefill {
        // An engine that cannot be built for a matmul of the model never wins on it.
        vec![
            -e.projection.tokens_per_s,
            e.prefill_128_s.unwrap_or(1e9),
            e.resources.luts,
        ]
    } else {
        vec![
            -e.projection.tokens_per_s,
            e.resources.luts,
            e.resources.brams,
        ]
    }
}

/// The candidate engines: every point of the space (`--exhaustive`) or `plan.n` Sobol
/// samples.
fn engines(space: &Space, plan: &DsePlan) -> Result<Vec<Config>> {
    Ok(if plan.exhaustive {
        let (configs, rejected) = space.enumerate(4096)?;
        if configs.is_empty() {
            bail!(
                "space {}: none of its points is a design ({} invalid, {} over the limits): {}",
                space.name,
                rejected.invalid,
                rejected.over_limits,
                rejected.summary(3)
            );
        }
        configs
            .into_iter()
            .filter_map(|c| c.matmul().cloned())
            .collect()
    } else {
        let (samples, _) = space.sample(plan.n, plan.seed)?;
        samples
            .into_iter()
            .filter_map(|s| s.config.matmul().cloned())
            .collect()
    })
}

/// Every engine's predicted resources (the GNN, or the block model when given; the
/// reserve added) and speed (the performance model), and how long predicting took.
fn predict(
    space: &Space,
    engines: &[Config],
    board: &Board,
    workload: &ModelWorkload,
    model: &tern_surrogate::train::Surrogate,
    plan: &DsePlan,
) -> Result<(Vec<Candidate>, f64)> {
    // Predict every engine's tile graph in one batch.
    let start = Instant::now();
    let mut graphs = vec![];
    let mut plans = vec![];
    for engine in engines {
        let t = TiledEngine::new(engine)?;
        let dc = DesignConfig::Matmul(t.tile.clone());
        graphs.push(encode(&design_graph(&dc), &dc));
        plans.push(t);
    }
    let refs: Vec<_> = graphs.iter().collect();
    let predictions = model.predict(&refs);
    let predict_seconds = start.elapsed().as_secs_f64();
    let trained_space = crate::surrogate::predict::trained_space(model);

    let mut results = vec![];
    for (i, ((engine, t), pred)) in engines.iter().zip(&plans).zip(&predictions).enumerate() {
        let v = |k: usize| pred.value[k].unwrap_or(0.0);
        // Cycles are not learned: the exact cycle model (checked against co-simulation)
        // gives them, so no candidate is credited with fewer clocks than it needs.
        let fmax = pred.value[FMAX_MHZ];
        // A cycle-level schedule of a whole prompt only when asked for (it is slow for
        // narrow engines).
        let (projection, prefill_128_s) = speed(
            engine,
            t,
            workload,
            board,
            fmax,
            "fmax (predicted)",
            plan.prefill,
        );
        let mut predicted = Estimate {
            resources: Resources {
                luts: v(LUTS),
                ffs: v(FFS),
                dsps: v(DSPS),
                brams: v(BRAMS),
            },
            lut_spread: pred.spread[LUTS],
            projection,
            prefill_128_s,
        };
        let mut error = None;
        let mut outside = match &trained_space {
            Ok(s) => s.outside(&DesignConfig::Matmul(t.tile.clone())),
            Err(why) => vec![why.clone()],
        };
        if let Some((_, blocks)) = &plan.blocks {
            // The engine (or whole top) as synthesised and as the top runs it (tiles of
            // its own M × K).
            let p = blocks.predict(&space.graph_of(&DesignConfig::Matmul(engine.clone())));
            let r = crate::dse::estimate::predicted(&p);
            predicted.resources = r;
            predicted.lut_spread = p.band[0];
            outside = blocks.outside(&engine.to_toml());
            if let Some(why) = &p.refused {
                error = Some(format!("not priced: {why}"));
            } else if !p.unknown.is_empty() {
                error = Some(format!(
                    "block model could not cost: {}",
                    p.unknown.join("; ")
                ));
            }
        }
        predicted.resources = predicted.resources.plus(plan.reserve);
        results.push(Candidate {
            name: format!("{}-{i}", space.name),
            config_toml: engine.to_toml(),
            fits: error.is_none() && fits(&predicted, board),
            predicted,
            on_front: false,
            actual: None,
            error,
            outside,
        });
    }
    Ok((results, predict_seconds))
}

/// With `--exhaustive`: how much of the exhaustive front's hypervolume (every point
/// synthesised) the guided picks reach.
fn exhaustive_score(
    results: &[Candidate],
    guided: &[usize],
    board: &Board,
    prefill: bool,
) -> Exhaustive {
    let actual: Vec<(usize, Vec<f64>)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            c.actual
                .as_ref()
                .filter(|a| fits(a, board))
                .map(|a| (i, objectives(a, prefill)))
        })
        .collect();
    let all_actual: Vec<Vec<f64>> = actual.iter().map(|(_, o)| o.clone()).collect();
    let reference = nadir(&all_actual);
    let guided_actual: Vec<Vec<f64>> = actual
        .iter()
        .filter(|(i, _)| guided.contains(i))
        .map(|(_, o)| o.clone())
        .collect();
    let hv_all = hypervolume(&all_actual, &reference);
    let hv_guided = hypervolume(&guided_actual, &reference);
    Exhaustive {
        points: results.len(),
        synthesised_by_guided: guided.len(),
        fraction_synthesised: guided.len() as f64 / results.len() as f64,
        hypervolume_exhaustive: hv_all,
        hypervolume_guided: hv_guided,
        ratio: if hv_all > 0.0 {
            hv_guided / hv_all
        } else {
            f64::NAN
        },
    }
}

pub fn run(
    space: &Space,
    board: &Board,
    workload: &ModelWorkload,
    found: &FoundModel,
    plan: &DsePlan,
    opts: &SynthOptions,
    out: &Path,
) -> Result<DseReport> {
    let model = &found.model;
    if model.header.datapath != tern_hdl::graph::MATMUL_DATAPATH_VERSION {
        println!(
            "warning: {} was trained on matmul datapath version {}; today's RTL is version {}: \
             its predictions are extrapolations until the dataset is regenerated and the model retrained",
            found.path.display(),
            model.header.datapath,
            tern_hdl::graph::MATMUL_DATAPATH_VERSION
        );
    }
    let engines = engines(space, plan)?;
    if engines.is_empty() {
        bail!("space {} has no matmul engines to explore", space.name);
    }
    if plan.attention.is_some() && (plan.exhaustive || !plan.prefill) {
        bail!(
            "an attention search ranks whole accelerators by time to first token: it needs \
             --prefill and cannot be --exhaustive"
        );
    }
    if space.whole_top && plan.blocks.is_none() {
        bail!(
            "space {} is of whole tops: price them with a block model that knows the shell \
             (--blocks, fitted with `tern train --blocks --also datasets/tlmm-top-<board>.jsonl`)",
            space.name
        );
    }

    // The attention tops' shell comes from a synthesis: do it (or find it cached) before
    // the search, so that a reference that does not build stops the run early.
    let attention_setup = match &plan.attention {
        Some(a) => {
            let shell = crate::dse::attention::measure_shell(a, board, &plan.executor, opts)?;
            let options = crate::dse::attention::options(a, workload, board, &shell)?;
            Some((a, shell, options))
        }
        None => None,
    };

    let (mut results, predict_seconds) =
        predict(space, &engines, board, workload, &found.model, plan)?;
    let (on_front, guided) = matmul_picks(&results, plan.prefill, plan.top_k);
    for &i in &on_front {
        results[i].on_front = true;
    }
    let fitting: Vec<usize> = (0..results.len()).filter(|&i| results[i].fits).collect();
    let nothing_fits = fitting
        .is_empty()
        .then(|| why_nothing_fits(&results, board));
    if let Some(why) = &nothing_fits {
        println!("{why}");
    }
    // With attention, the picks are whole accelerators: their matmul tops are
    // synthesised here, their attention tops below.
    let mut attention_report = None;
    let guided = match attention_setup {
        Some((a, shell, mut options)) => {
            let (joint, picks) = joint_front(&results, &options, board, plan.top_k);
            let mut matmuls: Vec<usize> = picks.iter().map(|&j| joint[j].matmul).collect();
            matmuls.sort_unstable();
            matmuls.dedup();
            let mut attentions: Vec<usize> = picks.iter().map(|&j| joint[j].attention).collect();
            attentions.sort_unstable();
            attentions.dedup();
            crate::dse::attention::synthesise(
                &mut options,
                &attentions,
                board,
                &plan.executor,
                opts,
            )?;
            attention_report = Some(AttentionReport {
                space: a.space.name.clone(),
                block_model: a.blocks.0.display().to_string(),
                reference: a.reference.0.display().to_string(),
                shell,
                options,
                joint,
                picks,
            });
            matmuls
        }
        None => guided,
    };
    let to_synth: Vec<usize> = if plan.exhaustive {
        (0..results.len()).collect()
    } else {
        guided.clone()
    };
    synthesise(
        &mut results,
        &engines,
        &to_synth,
        space.whole_top,
        board,
        workload,
        &plan.executor,
        opts,
        &plan.reserve,
        plan.prefill,
    )?;

    let exhaustive = plan
        .exhaustive
        .then(|| exhaustive_score(&results, &guided, board, plan.prefill));

    if let Some(a) = &mut attention_report {
        for j in a.picks.clone() {
            let (m, o) = (a.joint[j].matmul, a.joint[j].attention);
            a.joint[j].actual = match (&results[m].actual, &a.options[o].actual) {
                (Some(ma), Some(oa)) => Some(whole(ma, &a.options[o], *oa)),
                _ => None,
            };
        }
    }

    let report = DseReport {
        space: space.name.clone(),
        board: board.name.clone(),
        workload: workload.clone(),
        model: found.path.display().to_string(),
        candidates: results.len(),
        fitting: fitting.len(),
        nothing_fits,
        predict_seconds,
        results,
        exhaustive,
        block_model: plan.blocks.as_ref().map(|(p, _)| p.display().to_string()),
        reserve: plan.reserve,
        prefill: plan.prefill,
        whole_top: space.whole_top,
        attention: attention_report,
        performance_model: tern_dse::performance::VERSION,
    };
    std::fs::create_dir_all(out)?;
    tern_build::synth::cache::write_json(&out.join("dse.json"), &report)?;
    let md = markdown(&report, &guided);
    std::fs::write(out.join("dse.md"), &md)?;
    plot(&report, &out.join("front.svg"), &out.join("front.png"))?;
    println!("{md}");
    println!("wrote {}/dse.md, dse.json, front.png/.svg", out.display());
    Ok(report)
}

/// Why no candidate fits `board`: per resource, for how many it ran out and the least
/// any candidate needs of it (the reserve included); candidates that could not be
/// priced are counted apart.
fn why_nothing_fits(results: &[Candidate], board: &Board) -> String {
    let priced: Vec<&Candidate> = results.iter().filter(|c| c.error.is_none()).collect();
    let mut s = format!(
        "nothing fits the {}: of {} candidates",
        board.name,
        results.len()
    );
    if priced.len() < results.len() {
        s += &format!(", {} could not be priced", results.len() - priced.len());
    }
    if priced.is_empty() {
        return s + ", none was priced";
    }
    let budgets: Vec<_> = priced
        .iter()
        .map(|c| c.predicted.resources.budget(&board.resources))
        .collect();
    let ran_out: Vec<String> = (0..budgets[0].len())
        .filter_map(|k| {
            let (name, _, have) = budgets[0][k];
            let over = budgets.iter().filter(|b| b[k].1 > have).count();
            let least = budgets.iter().map(|b| b[k].1).fold(f64::INFINITY, f64::min);
            (over > 0).then(|| {
                format!(
                    "{name} ran out for {over} (the least any needs is {least:.0} of {have:.0})"
                )
            })
        })
        .collect();
    format!("{s}: {}", ran_out.join("; "))
}

/// A reference point just beyond the worst value of every objective.
fn nadir(points: &[Vec<f64>]) -> Vec<f64> {
    let d = points.first().map_or(3, |p| p.len());
    (0..d)
        .map(|k| {
            let worst = points
                .iter()
                .map(|p| p[k])
                .fold(f64::NEG_INFINITY, f64::max);
            let best = points.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
            worst + 0.1 * (worst - best).abs().max(1e-9)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn synthesise(
    results: &mut [Candidate],
    engines: &[Config],
    which: &[usize],
    whole_top: bool,
    board: &Board,
    workload: &ModelWorkload,
    executor: &Executor,
    opts: &SynthOptions,
    reserve: &Resources,
    prefill: bool,
) -> Result<()> {
    let items: Vec<SweepItem> = which
        .iter()
        .map(|&i| SweepItem {
            name: results[i].name.clone(),
            config: DesignConfig::Matmul(engines[i].clone()),
        })
        .collect();
    let plan = SweepPlan {
        pnr: board.has_router(),
        seed: 1,
        blocks: false,
        whole_top,
    };
    let rows: Vec<SweepRow> =
        sweep::run(&items, std::slice::from_ref(board), plan, opts, executor)?;
    for (&i, row) in which.iter().zip(&rows) {
        let engine = &engines[i];
        let usage = row.synth.as_ref().and_then(|s| s.usage());
        let Some(usage) = usage else {
            results[i].error = Some(
                row.error
                    .clone()
                    .unwrap_or_else(|| tern_build::job::row_summary(row)),
            );
            continue;
        };
        let Ok(t) = TiledEngine::new(engine) else {
            continue;
        };
        let fmax = row.pnr.as_ref().and_then(|p| p.fmax_mhz());
        let (projection, prefill_128_s) =
            speed(engine, &t, workload, board, fmax, "fmax (nextpnr)", prefill);
        let mut actual = Estimate {
            resources: usage.resources(),
            lut_spread: None,
            projection,
            prefill_128_s,
        };
        actual.resources = actual.resources.plus(*reserve);
        results[i].actual = Some(actual);
    }
    Ok(())
}

fn describe(toml_text: &str) -> String {
    match Config::from_toml(toml_text, "dse") {
        Ok(c) => {
            format!(
                "{} K-tile={} bus={} reads-in-flight={}×{}",
                c.engine.summary(),
                c.workload.k,
                c.top.bus_bits,
                c.top.reads_in_flight,
                c.top.burst_beats
            )
        }
        Err(_) => "?".into(),
    }
}

fn markdown(r: &DseReport, guided: &[usize]) -> String {
    let w = &r.workload;
    let mut s = format!(
        "# DSE: space `{}` on `{}` for workload `{}`\n\n{}: {} layers, {} ternary weights per decoded token.\n\n\
         {} candidates predicted in {:.2} s by `{}`; {} fit the board; {} on the predicted Pareto front \
         ({}). Decode tokens/s is a roofline: \
         min(clock / engine clocks per token, stream rate / packed weight bytes per token), the \
         stream rate being the slower of the board's DDR and the top's read port (bus width × clock, \
         less when too few reads are in flight to cover the DDR latency). \
         Engines run each layer as `tern generate` cuts it: zero-padded tiles of the engine's \
         M × K (ceil(m / M) × ceil(k / K) of them, the host adding the K tiles' partial sums); \
         the weight bytes are the padded tiles' as streamed.\n\n",
        r.space,
        r.board,
        w.name,
        w.description,
        w.layers,
        w.weights_per_token(),
        r.candidates,
        r.predict_seconds,
        r.model,
        r.fitting,
        r.results.iter().filter(|c| c.on_front).count(),
        if r.prefill {
            "decode tokens/s ↑, 128-token prefill s ↓, LUTs ↓"
        } else {
            "decode tokens/s ↑, LUTs ↓, block RAMs ↓"
        }
    );
    if let Some(b) = &r.block_model {
        s += &format!(
            "Resources from the block model `{b}` (± its band, widened beyond training), not the GNN. "
        );
    }
    if r.whole_top {
        s +=
            "Candidates are whole tops (engine + shell: register file, AXI readers, read buffers, \
              gearboxes, result writer), predicted and synthesised as such. ";
    }
    let v = &r.reserve;
    if v.luts + v.ffs + v.dsps + v.brams > 0.0 {
        s += &format!(
            "Every engine's resources include {:.0} LUT, {:.0} FF, {:.0} DSP and {:.1} BRAM set aside for the rest \
             of the accelerator (`--reserve-*`), predicted and actual alike.",
            v.luts, v.ffs, v.dsps, v.brams
        );
    }
    if let Some(why) = &r.nothing_fits {
        s += &format!("\n\n**{why}.**");
    }
    s += "\n\n";
    s += "## Synthesised: predicted vs actual\n\n| engine | LUT pred | LUT actual | FF pred | FF actual | BRAM pred | BRAM actual | clocks/token pred | clocks/token actual | clock (MHz, source) | compute ms | memory ms | tok/s pred | tok/s actual | bound | prefill(128) matmul s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for &i in guided {
        let c = &r.results[i];
        let p = &c.predicted;
        match &c.actual {
            Some(a) => {
                s += &format!(
                    "| {} | {:.0} ± {:.0}% | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.3e} | {:.3e} | {:.0} ({}) | {:.1} | {:.1} | {:.2} | {:.2} | {} | {} |\n",
                    pick_name(c),
                    p.resources.luts,
                    100.0 * p.lut_spread.unwrap_or(0.0),
                    a.resources.luts,
                    p.resources.ffs,
                    a.resources.ffs,
                    p.resources.brams,
                    a.resources.brams,
                    p.projection.cycles_per_token,
                    a.projection.cycles_per_token,
                    a.projection.clock_mhz,
                    a.projection.clock_source,
                    1e3 * a.projection.compute_s,
                    1e3 * a.projection.memory_s,
                    p.projection.tokens_per_s,
                    a.projection.tokens_per_s,
                    a.projection.bound,
                    a.prefill_128_s.map_or("–".into(), |t| format!("{t:.3}"))
                )
            }
            None => {
                s += &format!(
                    "| {} | {:.0} | failed: {} | | | | | | | | | | {:.2} | | |\n",
                    pick_name(c),
                    p.resources.luts,
                    c.error.as_deref().unwrap_or("?"),
                    p.projection.tokens_per_s
                )
            }
        }
    }
    s += &outside_markdown(&r.results, guided);
    if let Some(a) = &r.attention {
        s += &attention_markdown(r, a);
    }
    if let Some(e) = &r.exhaustive {
        s += &format!(
            "\n## Against exhaustive synthesis\n\nAll {} points synthesised. The surrogate-guided picks ({} designs, {:.1}% of the space) \
             reach a hypervolume of {:.4} against {:.4} for the exhaustive front: **{:.3}** of it \
             (objectives as above, actual values, reference point 10% beyond the worst fitting design).\n",
            e.points,
            e.synthesised_by_guided,
            100.0 * e.fraction_synthesised,
            e.hypervolume_guided,
            e.hypervolume_exhaustive,
            e.ratio
        );
    }
    s
}

/// A pick's name in the tables, marked when it lies outside the model's training.
fn pick_name(c: &Candidate) -> String {
    if c.outside.is_empty() {
        describe(&c.config_toml)
    } else {
        format!("{} (outside training)", describe(&c.config_toml))
    }
}

/// How many candidates the model priced outside what it was trained on, and why each
/// synthesised pick that is was.
fn outside_markdown(results: &[Candidate], guided: &[usize]) -> String {
    let count = results.iter().filter(|c| !c.outside.is_empty()).count();
    if count == 0 {
        return "\nEvery candidate lies inside the model's trained ranges.\n".into();
    }
    let mut s = format!(
        "\n{count} of {} candidates lie outside the model's trained ranges: their \
         predictions are extrapolations, which the stated band does not cover.",
        results.len()
    );
    for &i in guided {
        let c = &results[i];
        if !c.outside.is_empty() {
            s += &format!("\n- {}: {}", describe(&c.config_toml), c.outside.join("; "));
        }
    }
    s + "\n"
}

fn attention_markdown(r: &DseReport, a: &AttentionReport) -> String {
    let sh = &a.shell;
    let mut s = format!(
        "\n## The whole accelerator: matmul top + attention tops\n\n\
         Attention tops from space `{}` with the workload's head size, priced by the block \
         model `{}` plus the shell of `{}` as synthesised with its engine kept as hierarchy \
         ({:.0} LUT, {:.0} FF, {:.0} DSP, {:.1} BRAM of that top's {:.0} LUT). {} options \
         (engines × counts of tops side by side); {} pairs of a matmul top and attention \
         tops fit after each side was cut to its own front; {} on the joint front. \
         Attention clocks are the exact cycle model's upper bound (every tile after a row's \
         first raises its maximum; the lower bound is within 1/(2·Bc)); decode is one token \
         at a context of {} after a {}-token prompt; matmul and attention kernels run one \
         after the other, so tokens/s = 1 / (matmul roofline time + attention time) and \
         TTFT = matmul prefill + attention prefill. Host work (norms, LM head) is not in \
         these figures. Resources include the reserve. Picks: the front's lowest TTFT, its \
         highest decode tokens/s, then by predicted hypervolume contribution.\n\n\
         | matmul top | attention tops | LUT pred | LUT actual | FF pred / actual | DSP pred / actual | BRAM pred / actual | decode tok/s (attention ms) | TTFT(128) s (attention s) |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        a.space,
        a.block_model,
        a.reference,
        sh.shell.luts,
        sh.shell.ffs,
        sh.shell.dsps,
        sh.shell.brams,
        sh.reference_top.luts,
        a.options.len(),
        a.joint.len(),
        a.joint.iter().filter(|j| j.on_front).count(),
        PROMPT_TOKENS + 1,
        PROMPT_TOKENS,
    );
    for &j in &a.picks {
        let joint = &a.joint[j];
        let o = &a.options[joint.attention];
        let p = &joint.predicted;
        let actual = |f: &dyn Fn(&Whole) -> f64, digits: usize| {
            joint
                .actual
                .as_ref()
                .map_or("–".to_string(), |w| format!("{:.*}", digits, f(w)))
        };
        let lut_actual = match &joint.actual {
            Some(w) => format!(
                "{:.0} ({:+.1} %)",
                w.resources.luts,
                100.0 * (p.resources.luts - w.resources.luts) / w.resources.luts
            ),
            None => format!(
                "failed: {}",
                o.error
                    .as_deref()
                    .or(r.results[joint.matmul].error.as_deref())
                    .unwrap_or("?")
            ),
        };
        s += &format!(
            "| {} | {} | {:.0} ± {:.0} | {} | {:.0} / {} | {:.0} / {} | {:.1} / {} | {:.1} ({:.2}) | {:.3} ({:.3}) |\n",
            pick_name(&r.results[joint.matmul]),
            if o.outside.is_empty() {
                crate::dse::attention::describe(o)
            } else {
                format!("{} (outside training)", crate::dse::attention::describe(o))
            },
            p.resources.luts,
            // The bands of the matmul top and of the attention engines (the reserve and
            // the shell are measured).
            r.results[joint.matmul].predicted.lut_spread.unwrap_or(0.0)
                * (r.results[joint.matmul].predicted.resources.luts - r.reserve.luts)
                + o.lut_band.unwrap_or(0.0) * (o.predicted.luts - o.engines as f64 * sh.shell.luts),
            lut_actual,
            p.resources.ffs,
            actual(&|w| w.resources.ffs, 0),
            p.resources.dsps,
            actual(&|w| w.resources.dsps, 0),
            p.resources.brams,
            actual(&|w| w.resources.brams, 1),
            p.tokens_per_s,
            1e3 * o.timing.decode_s,
            p.ttft_s,
            o.timing.prefill_s,
        );
    }
    for &j in &a.picks {
        let o = &a.options[a.joint[j].attention];
        if !o.outside.is_empty() {
            s += &format!(
                "\n- {}: outside the block model's training: {}",
                crate::dse::attention::describe(o),
                o.outside.join("; ")
            );
        }
    }
    s
}

fn plot(r: &DseReport, svg: &Path, png: &Path) -> Result<()> {
    draw(r, SVGBackend::new(svg, (900, 600)).into_drawing_area())?;
    register_png_font()?;
    draw(r, BitMapBackend::new(png, (900, 600)).into_drawing_area())
}

fn draw<DB: DrawingBackend>(
    r: &DseReport,
    root: DrawingArea<DB, plotters::coord::Shift>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| plot_error(&e))?;
    let fitting: Vec<&Candidate> = r.results.iter().filter(|c| c.fits).collect();
    let xmax = fitting
        .iter()
        .map(|c| c.predicted.resources.luts)
        .chain(
            r.results
                .iter()
                .filter_map(|c| c.actual.as_ref().map(|a| a.resources.luts)),
        )
        .fold(1.0f64, f64::max)
        * 1.05;
    let ymax = fitting
        .iter()
        .map(|c| c.predicted.projection.tokens_per_s)
        .chain(
            r.results
                .iter()
                .filter_map(|c| c.actual.as_ref().map(|a| a.projection.tokens_per_s)),
        )
        .fold(1e-3f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(|e| plot_error(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "LUTs — {} on {}: grey predicted, blue predicted front, red actual (synthesised)",
            r.workload.name, r.board
        ))
        .y_desc("decode tokens/s")
        .draw()
        .map_err(|e| plot_error(&e))?;
    let grey = RGBColor(180, 180, 180);
    let blue = RGBColor(31, 119, 180);
    let red = RGBColor(214, 39, 40);
    chart
        .draw_series(fitting.iter().filter(|c| !c.on_front).map(|c| {
            Circle::new(
                (
                    c.predicted.resources.luts,
                    c.predicted.projection.tokens_per_s,
                ),
                2,
                grey.filled(),
            )
        }))
        .map_err(|e| plot_error(&e))?;
    let mut front: Vec<(f64, f64)> = fitting
        .iter()
        .filter(|c| c.on_front)
        .map(|c| {
            (
                c.predicted.resources.luts,
                c.predicted.projection.tokens_per_s,
            )
        })
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    chart
        .draw_series(front.iter().map(|&p| Circle::new(p, 4, blue.filled())))
        .map_err(|e| plot_error(&e))?;
    for c in r
        .results
        .iter()
        .filter(|c| c.actual.is_some() && (c.on_front || r.exhaustive.is_none()))
    {
        let a = c.actual.as_ref().expect("filtered");
        let p = (
            c.predicted.resources.luts,
            c.predicted.projection.tokens_per_s,
        );
        let q = (a.resources.luts, a.projection.tokens_per_s);
        chart
            .draw_series(LineSeries::new(vec![p, q], red.stroke_width(1)))
            .map_err(|e| plot_error(&e))?;
        chart
            .draw_series(std::iter::once(TriangleMarker::new(q, 6, red.filled())))
            .map_err(|e| plot_error(&e))?;
    }
    root.present().map_err(|e| plot_error(&e))?;
    Ok(())
}

#[cfg(test)]
mod replay {
    use super::*;
    use tern_hdl::AttentionConfig;

    /// A pick as (matmul candidate, attention option); matmul-only reports use 0 for the
    /// attention.
    type Pick = (usize, usize);

    /// Reports made before the DSE ranked prefill (issue 18's first step), with a
    /// performance model whose decode counted K passes rather than padded tiles.
    const PREDATES_THE_MODEL: [&str; 3] = [
        "matmul-kv260-bitnet-2b",
        "matmul-kv260-small",
        "matmul-small-kv260-bitnet-2b",
    ];

    /// A candidate's predicted figures recomputed with today's performance model at the
    /// clock its report recorded.
    fn replayed(c: &Candidate, r: &DseReport, board: &Board) -> Estimate {
        let engine = Config::from_toml(&c.config_toml, &c.name).unwrap();
        let t = TiledEngine::new(&engine).unwrap();
        let p = &c.predicted.projection;
        let fmax = (p.clock_source != "board clock (no router)").then_some(p.clock_mhz);
        let (projection, prefill_128_s) = speed(
            &engine,
            &t,
            &r.workload,
            board,
            fmax,
            &p.clock_source,
            r.prefill,
        );
        Estimate {
            projection,
            prefill_128_s,
            ..c.predicted.clone()
        }
    }

    /// Every committed DSE report is replayed from its recorded predictions with today's
    /// performance model: each candidate's decode projection and each attention
    /// option's timing are the same figures (and the prefill too, for reports made with
    /// today's model: `performance_model`), and the picks, made from the recorded
    /// figures or from today's, are the report's.
    #[test]
    fn committed_dse_reports_replay_with_todays_performance_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/dse");
        let (mut replayed_reports, mut older) = (vec![], vec![]);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().to_string();
            let Ok(text) = std::fs::read_to_string(entry.path().join("dse.json")) else {
                continue;
            };
            if PREDATES_THE_MODEL.contains(&name.as_str()) {
                older.push(name);
                continue;
            }
            let r: DseReport = serde_json::from_str(&text).unwrap();
            let mut board = Board::resolve(&r.board).unwrap();
            // Before version 3 the memory ran at its peak: those reports replay on their
            // board without its DRAM timing (the board data they were made with), through
            // today's code.
            if r.performance_model < 3 {
                board.memory.dram = None;
            }
            let today: Vec<Candidate> = r
                .results
                .iter()
                .map(|c| {
                    let now = replayed(c, &r, &board);
                    assert_eq!(now.projection, c.predicted.projection, "{name}: {}", c.name);
                    if r.performance_model >= 2 {
                        assert_eq!(
                            now.prefill_128_s, c.predicted.prefill_128_s,
                            "{name}: {}",
                            c.name
                        );
                    }
                    assert!(now.prefill_128_s.is_some() == c.predicted.prefill_128_s.is_some());
                    Candidate {
                        predicted: now,
                        ..c.clone()
                    }
                })
                .collect();
            let compare = |recorded: Vec<Pick>, replayed: Vec<Pick>, now: Vec<Pick>| {
                assert_eq!(
                    replayed, recorded,
                    "{name}: picks from the recorded figures"
                );
                assert_eq!(now, recorded, "{name}: picks from today's figures");
            };
            match &r.attention {
                None => {
                    let synthesised: Vec<(usize, usize)> = (0..r.results.len())
                        .filter(|&i| r.results[i].actual.is_some() || r.results[i].error.is_some())
                        .map(|i| (i, 0))
                        .collect();
                    let sorted = |results: &[Candidate]| {
                        let (_, mut picks) = matmul_picks(results, r.prefill, synthesised.len());
                        picks.sort_unstable();
                        picks.into_iter().map(|i| (i, 0)).collect::<Vec<_>>()
                    };
                    compare(synthesised.clone(), sorted(&r.results), sorted(&today));
                }
                Some(a) => {
                    for o in &a.options {
                        let cfg = AttentionConfig::from_toml(&o.config_toml, &o.name).unwrap();
                        let t = crate::dse::attention::option_timing(
                            &cfg,
                            &r.workload,
                            o.engines,
                            &board,
                        )
                        .unwrap();
                        assert_eq!(t, o.timing, "{name}: {}", o.name);
                    }
                    let pairs = |results: &[Candidate]| -> Vec<(usize, usize)> {
                        let (joint, picks) =
                            joint_front(results, &a.options, &board, a.picks.len());
                        picks
                            .iter()
                            .map(|&j| (joint[j].matmul, joint[j].attention))
                            .collect()
                    };
                    let recorded = a
                        .picks
                        .iter()
                        .map(|&j| (a.joint[j].matmul, a.joint[j].attention))
                        .collect();
                    compare(recorded, pairs(&r.results), pairs(&today));
                }
            }
            replayed_reports.push(name);
        }
        older.sort();
        assert_eq!(
            older,
            PREDATES_THE_MODEL,
            "reports read from {}",
            dir.display()
        );
        assert!(
            replayed_reports.len() >= 4,
            "replayed only {replayed_reports:?}"
        );
    }
}
