//! The attention half of `tern dse`: attention tops searched beside the matmul top.
//!
//! Every option is an attention engine of the attention space with the workload's head
//! size, run as `engines` tops side by side (KV head `h` on top `h mod engines`, a layer
//! waiting for the busiest top, as `tern generate --attention-engines` runs them). Its
//! clocks come from the exact cycle model (`hdl::timing::attention_cycles`, equal to
//! Verilator's count given how many tiles raised a row's running maximum): the bounds
//! are no rescale and a rescale on every tile after the first. The search uses the upper
//! bound. Its resources are the block model's engine plus the shell measured on a
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
use tern_hdl::config::attention::{AttentionConfig, AttentionFile};
use tern_hdl::streams::attention::{schedule, tiles, RowSchedule};
use tern_hdl::timing::attention_cycles;
use tern_hdl::DesignConfig;
use tern_surrogate::blocks::BlockModel;
use tern_surrogate::space::Space;
use tern_surrogate::workload::{AttentionShape, Workload};

use crate::dse::estimate::Resources;

/// Tokens of the prompt whose time to first token the search minimises; decode is
/// projected at the context that prompt leaves.
pub const PROMPT_TOKENS: usize = 128;

pub struct AttentionPlan {
    pub space: Space,
    /// The attention engine's block model and its path.
    pub blocks: (PathBuf, BlockModel),
    /// Counts of attention tops side by side, each searched.
    pub engines: Vec<usize>,
    /// The attention top whose shell every option adds, and its path.
    pub reference: (PathBuf, AttentionConfig),
}

/// What the busiest attention top does for one model step, from the cycle model.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AttentionTiming {
    /// Clocks of a `PROMPT_TOKENS` prompt's prefill (every layer), no rescale .. every
    /// tile rescaling.
    pub prefill_clocks: (u64, u64),
    /// Clocks of one decode token at a context of `PROMPT_TOKENS + 1`.
    pub decode_clocks: (u64, u64),
    /// K/V bytes the busiest top reads (each tile once per block of query rows).
    pub prefill_kv_bytes: f64,
    pub decode_kv_bytes: f64,
    /// Seconds: the upper clock bound against the K/V bytes at the slower of the DDR
    /// (shared by every top) and the top's own port.
    pub prefill_s: f64,
    pub decode_s: f64,
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
}

/// The shell measured on the reference top, and that top's whole usage.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Shell {
    pub shell: Resources,
    pub reference_top: Resources,
}

/// One attention engine's clocks and K/V bytes for `rows` (one call), no rescale and
/// every tile after the first rescaling.
fn call(cfg: &AttentionConfig, rows: &[RowSchedule]) -> ((u64, u64), f64) {
    let tile = cfg.attention.tile;
    let none = vec![0; rows.len()];
    let every: Vec<usize> = rows
        .iter()
        .map(|r| tiles(r.kv_len, tile).count().saturating_sub(1))
        .collect();
    let clocks = (
        attention_cycles(cfg, rows, &none),
        attention_cycles(cfg, rows, &every),
    );
    // Each block of `query_block` rows streams its longest row's tiles once: K and V,
    // `head_dim` int8 each per key.
    let bytes: usize = rows
        .chunks(cfg.attention.query_block.max(1))
        .map(|b| b.iter().map(|r| r.kv_len).max().unwrap_or(0) * 2 * cfg.attention.head_dim)
        .sum();
    (clocks, bytes as f64)
}

/// The busiest of `engines` tops over a model step: prompt rows per query head (causal,
/// from position 0), decode rows per KV head (its query heads, non-causal) at a context
/// of `PROMPT_TOKENS + 1`.
pub fn timing(
    cfg: &AttentionConfig,
    shape: &AttentionShape,
    layers: usize,
    engines: usize,
    clock_mhz: f64,
    ddr_gbyte_per_s: f64,
) -> AttentionTiming {
    let tile = cfg.attention.tile;
    let kv_per_engine = shape.kv_heads.div_ceil(engines.max(1));
    let busiest = (layers * kv_per_engine) as u64;
    let all = (layers * shape.kv_heads) as f64;
    let prompt = schedule(0, PROMPT_TOKENS, PROMPT_TOKENS, true, tile);
    let (pc, pb) = call(cfg, &prompt);
    let context = PROMPT_TOKENS + 1;
    let decode = schedule(context - 1, shape.group(), context, false, tile);
    let (dc, db) = call(cfg, &decode);
    let group = shape.group() as u64;
    let prefill_clocks = (busiest * group * pc.0, busiest * group * pc.1);
    let decode_clocks = (busiest * dc.0, busiest * dc.1);
    let port = tern_surrogate::workload::port_gbyte_per_s(cfg.top.bus_bytes() as f64, clock_mhz);
    let seconds = |clocks: u64, busiest_bytes: f64, all_bytes: f64| {
        (clocks as f64 / (clock_mhz * 1e6))
            .max(busiest_bytes / (port * 1e9))
            .max(all_bytes / (ddr_gbyte_per_s * 1e9))
    };
    let (prefill_kv_bytes, decode_kv_bytes) =
        (busiest as f64 * group as f64 * pb, busiest as f64 * db);
    AttentionTiming {
        prefill_clocks,
        decode_clocks,
        prefill_kv_bytes,
        decode_kv_bytes,
        prefill_s: seconds(prefill_clocks.1, prefill_kv_bytes, all * group as f64 * pb),
        decode_s: seconds(decode_clocks.1, decode_kv_bytes, all * db),
    }
}

/// The attention space's engines with the workload's head size and the reference's top
/// (points whose MACs do not divide the head, or whose head is not a whole number of
/// bus words, are skipped), each as every count of side-by-side tops.
pub fn options(
    plan: &AttentionPlan,
    workload: &Workload,
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
        let engine = Resources::predicted(&p);
        let error = (!p.unknown.is_empty())
            .then(|| format!("block model could not cost: {}", p.unknown.join("; ")));
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
                timing: timing(
                    &cfg,
                    &shape,
                    workload.layers,
                    n,
                    board.clock.default_mhz,
                    board.memory.gbyte_per_s,
                ),
                actual: None,
                error: error.clone(),
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
        shell: Resources::of(shell),
        reference_top: Resources::of(top),
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
            Some(u) => options[i].actual = Some(Resources::of(u).scaled(options[i].engines as f64)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn kv260_attention() -> AttentionConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model/kv260/attention.toml");
        match DesignConfig::from_path(&path).unwrap() {
            DesignConfig::Attention(c) => c,
            _ => panic!("{} is not an attention engine", path.display()),
        }
    }

    #[test]
    fn tops_side_by_side_split_the_kv_heads_and_context_costs_decode_clocks() {
        let cfg = kv260_attention();
        let w = Workload::resolve("bitnet-0.73b").unwrap();
        let shape = w.attention.unwrap();
        let one = timing(&cfg, &shape, w.layers, 1, 300.0, 19.2);
        let two = timing(&cfg, &shape, w.layers, 2, 300.0, 19.2);
        let three = timing(&cfg, &shape, w.layers, 3, 300.0, 19.2);
        assert!(one.prefill_clocks.0 < one.prefill_clocks.1);
        assert!(one.decode_clocks.0 <= one.decode_clocks.1);
        // 16 KV heads: 8 on each of two tops; three tops wait for the one with 6.
        assert_eq!(two.prefill_clocks.1 * 2, one.prefill_clocks.1);
        assert_eq!(three.prefill_clocks.1 * 16, one.prefill_clocks.1 * 6);
        assert!(two.prefill_s < one.prefill_s && two.decode_s < one.decode_s);
        // The prompt's bound is the cycle model's, one call per (layer, query head).
        let rows = schedule(0, PROMPT_TOKENS, PROMPT_TOKENS, true, cfg.attention.tile);
        let lo = attention_cycles(&cfg, &rows, &vec![0; rows.len()]);
        assert_eq!(one.prefill_clocks.0, lo * (w.layers * shape.heads) as u64);
        // GQA (2B): four query heads per KV head share one decode call.
        let w2 = Workload::resolve("bitnet-2b").unwrap();
        let mut c2 = cfg.to_toml().replace("head_dim = 96", "head_dim = 128");
        c2 = c2.replace("board = \"kv260\"\n", "");
        let c2 = AttentionConfig::from_toml(&c2, "2b").unwrap();
        let t2 = timing(&c2, &w2.attention.unwrap(), w2.layers, 1, 300.0, 19.2);
        let rows = schedule(
            PROMPT_TOKENS,
            4,
            PROMPT_TOKENS + 1,
            false,
            c2.attention.tile,
        );
        let every: Vec<usize> = rows
            .iter()
            .map(|r| tiles(r.kv_len, c2.attention.tile).count() - 1)
            .collect();
        assert_eq!(
            t2.decode_clocks.1,
            attention_cycles(&c2, &rows, &every) * (w2.layers * 5) as u64
        );
    }
}
