//! The attention half of `tern dse`: attention tops searched beside the matmul top.
//!
//! Every option is an attention engine of the attention space with the workload's head
//! size, run as `engines` tops side by side (KV head `h` on top `h mod engines`, a layer
//! waiting for the busiest top, as `tern generate --attention-engines` runs them). Its
//! time is the performance model's (`tern_dse::performance::attention_step`). Its
//! resources are the block model's engine plus the shell measured on a
//! reference attention top (one Yosys run with the engine kept as hierarchy: the top
//! module's own cells), times `engines`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use tern_boards::Board;
use tern_build::executor::Executor;
use tern_build::job::{SweepItem, SweepPlan};
use tern_build::sweep;
use tern_build::synth::SynthOptions;
use tern_dse::performance::{attention_step, AttentionTiming, Stream, PROMPT_TOKENS};
use tern_dse::space::Space;
use tern_dse::workload::ModelWorkload;
use tern_hdl::config::attention::{AttentionConfig, AttentionFile};
use tern_hdl::DesignConfig;
use tern_surrogate::blocks::BlockModel;

use crate::dse::estimate::Resources;

pub struct AttentionPlan {
    pub space: Space,
    /// The attention engine's block model and its path.
    pub blocks: (PathBuf, BlockModel),
    /// Counts of attention tops side by side, each searched.
    pub engines: Vec<usize>,
    /// The attention top whose shell every option adds, and its path.
    pub reference: (PathBuf, AttentionConfig),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttentionOption {
    pub name: String,
    pub config_toml: String,
    pub engines: usize,
    /// All `engines` tops: block-model engines plus the reference shell each.
    pub predicted: Resources,
    /// The block model's relative LUT band of one engine (None: fitted on too few rows
    /// to state one).
    pub lut_band: Option<f64>,
    pub timing: AttentionTiming,
    /// All `engines` tops as synthesised (whole tops), when picked.
    pub actual: Option<Resources>,
    #[serde(default)]
    pub error: Option<String>,
    /// Where the engine lies outside what the block model was fitted on (one line per
    /// parameter; empty: inside).
    #[serde(default)]
    pub outside: Vec<String>,
}

/// The shell measured on the reference top, and that top's whole usage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Shell {
    pub shell: Resources,
    pub reference_top: Resources,
}

/// An attention option's time as the DSE judges it: `engines` tops of `cfg` on the
/// workload's heads, a `PROMPT_TOKENS` prompt, at the board's clock.
pub fn option_timing(
    cfg: &AttentionConfig,
    workload: &ModelWorkload,
    engines: usize,
    board: &Board,
) -> Result<AttentionTiming> {
    let shape = workload
        .attention
        .with_context(|| format!("workload {} has no attention heads", workload.name))?;
    let stream = Stream::of(&cfg.top, board, board.clock.default_mhz);
    Ok(attention_step(
        cfg,
        &shape,
        workload.layers,
        engines,
        PROMPT_TOKENS,
        &stream,
    ))
}

/// The attention space's engines with the workload's head size and the reference's top
/// (points whose MACs do not divide the head, or whose head is not a whole number of
/// bus words, are skipped), each as every count of side-by-side tops.
pub fn options(
    plan: &AttentionPlan,
    workload: &ModelWorkload,
    board: &Board,
    shell: &Shell,
) -> Result<Vec<AttentionOption>> {
    let Some(shape) = workload.attention else {
        bail!(
            "workload {} has no [attention] shape (heads, kv_heads, head_dim): an attention \
             engine cannot be searched for it",
            workload.name
        );
    };
    let (configs, _) = plan.space.enumerate(4096)?;
    let (_, blocks) = &plan.blocks;
    let mut out = vec![];
    for config in configs {
        let DesignConfig::Attention(c) = config else {
            bail!(
                "space {} is not a space of attention engines",
                plan.space.name
            );
        };
        let mut file = AttentionFile {
            attention: c.attention.clone(),
            workload: c.workload.clone(),
            board: Some(board.name.clone()),
            top: plan.reference.1.top.clone(),
        };
        file.attention.head_dim = shape.head_dim;
        let Ok(cfg) = AttentionConfig::validate(file, "dse attention option") else {
            continue;
        };
        if tern_hdl::top::attention::KvCacheLayout::of(&cfg).is_err() {
            continue;
        }
        let p = blocks.predict(&tern_hdl::graph::attention_graph(&cfg));
        let engine = crate::dse::estimate::predicted(&p);
        let error = (!p.unknown.is_empty())
            .then(|| format!("block model could not cost: {}", p.unknown.join("; ")));
        let outside = blocks.outside(&cfg.to_toml());
        for &n in &plan.engines {
            out.push(AttentionOption {
                name: format!(
                    "attention-m{}-t{}-qb{}-x{n}",
                    cfg.attention.macs, cfg.attention.tile, cfg.attention.query_block
                ),
                config_toml: cfg.to_toml(),
                engines: n,
                predicted: engine.plus(shell.shell).scaled(n as f64),
                lut_band: p.band[0],
                timing: option_timing(&cfg, workload, n, board)?,
                actual: None,
                error: error.clone(),
                outside: outside.clone(),
            });
        }
    }
    if out.is_empty() {
        bail!(
            "space {} has no attention engine for heads of {} (MACs must divide the head; \
             the head must be a whole number of bus words)",
            plan.space.name,
            shape.head_dim
        );
    }
    Ok(out)
}

/// The reference top's shell: its top module's own cells, from one synthesis with the
/// engine kept as hierarchy (cached like every run).
pub fn measure_shell(
    plan: &AttentionPlan,
    board: &Board,
    executor: &Executor,
    opts: &SynthOptions,
) -> Result<Shell> {
    let (path, cfg) = &plan.reference;
    let items = [SweepItem {
        name: "attention-reference".into(),
        config: DesignConfig::Attention(cfg.clone()),
    }];
    let rows = sweep_tops(&items, true, board, executor, opts)?;
    let row = rows
        .first()
        .context("the reference sweep returned no row")?;
    let record = row.blocks.as_ref().with_context(|| {
        format!(
            "the reference attention top {} did not synthesise: {}",
            path.display(),
            row.error
                .clone()
                .unwrap_or_else(|| tern_build::job::row_summary(row))
        )
    })?;
    let Some((top, blocks)) = (match &record.outcome {
        tern_build::synth::SynthOutcome::Ok { usage, blocks, .. } => {
            blocks.as_ref().map(|b| (usage, b))
        }
        _ => None,
    }) else {
        bail!(
            "the reference attention top {} has no per-block report: {}",
            path.display(),
            tern_build::job::row_summary(row)
        );
    };
    let shell = blocks
        .get(tern_hdl::graph::SHELL)
        .with_context(|| format!("no `shell` block in {}'s report", path.display()))?;
    Ok(Shell {
        shell: shell.resources(),
        reference_top: top.resources(),
    })
}

/// Synthesise the `which` options as whole tops (one per distinct engine) and record
/// their actual resources, times their count of tops.
pub fn synthesise(
    options: &mut [AttentionOption],
    which: &[usize],
    board: &Board,
    executor: &Executor,
    opts: &SynthOptions,
) -> Result<()> {
    let mut distinct: Vec<String> = which
        .iter()
        .map(|&i| options[i].config_toml.clone())
        .collect();
    distinct.sort();
    distinct.dedup();
    let items: Vec<SweepItem> = distinct
        .iter()
        .enumerate()
        .map(|(k, t)| {
            Ok(SweepItem {
                name: format!("attention-pick-{k}"),
                config: DesignConfig::Attention(AttentionConfig::from_toml(t, "dse pick")?),
            })
        })
        .collect::<Result<_>>()?;
    let rows = sweep_tops(&items, false, board, executor, opts)?;
    for &i in which {
        let k = distinct
            .iter()
            .position(|t| *t == options[i].config_toml)
            .expect("every pick is in the distinct list");
        let row = &rows[k];
        match row.synth.as_ref().and_then(|s| s.usage()) {
            Some(u) => options[i].actual = Some(u.resources().scaled(options[i].engines as f64)),
            None => {
                options[i].error = Some(
                    row.error
                        .clone()
                        .unwrap_or_else(|| tern_build::job::row_summary(row)),
                )
            }
        }
    }
    Ok(())
}

/// Whole attention tops through the sweep executor (`blocks`: with per-block labels).
fn sweep_tops(
    items: &[SweepItem],
    blocks: bool,
    board: &Board,
    executor: &Executor,
    opts: &SynthOptions,
) -> Result<Vec<tern_build::job::SweepRow>> {
    let plan = SweepPlan {
        pnr: false,
        seed: 1,
        blocks,
        whole_top: true,
    };
    Ok(sweep::run(
        items,
        std::slice::from_ref(board),
        plan,
        opts,
        executor,
    )?)
}

pub fn describe(o: &AttentionOption) -> String {
    match AttentionConfig::from_toml(&o.config_toml, "dse") {
        Ok(c) => format!(
            "{} × (d {}, {} MACs, Bc {}, query blocks of {})",
            o.engines,
            c.attention.head_dim,
            c.attention.macs,
            c.attention.tile,
            c.attention.query_block
        ),
        Err(_) => "?".into(),
    }
}
