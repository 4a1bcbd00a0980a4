//! Co-verification of the attention engine: stream queries, keys and values through
//! the Verilated engine and compare every output (and every empty-row flag) with
//! [`streamed_attention`], bit for bit. Mismatch reporting as for the matmul engines.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

use tern_hdl::streams::attention::{pack_block, rows, unpack_row, RowOutput, RowSchedule};
use tern_hdl::{AttentionConfig, Design};

use super::{
    drive_plan, rerun_with_waveform, CosimError, Mismatch, Report, Run, Stimulus, StreamPlan,
};
use crate::golden::attention::streamed_attention;
use crate::verilator::{EngineSim, ModelLibrary};

/// What the attention vectors look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionVectorKind {
    /// Gaussian Q/K/V (σ ≈ 30 units): scores spread over the whole exp table.
    Gaussian,
    /// Uniform int8: most keys fall beyond the clip.
    Uniform,
    /// Every key equal: all scores equal, uniform weights.
    AllEqual,
    /// One key equal to the query, the others small: one dominant score.
    OneDominant,
    /// Extreme ±127 keys against a ±127 query: distances far beyond the clip.
    BeyondClip,
    /// Scores rise key by key: the running maximum grows in every tile (rescales).
    GrowingMax,
    /// Each row sees only key 0 (all others masked).
    OneVisible,
    /// Rows alternate between no visible key (must be flagged) and all visible.
    NoneVisible,
    /// −128 everywhere.
    MinEverywhere,
}

impl AttentionVectorKind {
    pub const ALL: [AttentionVectorKind; 9] = [
        AttentionVectorKind::Gaussian,
        AttentionVectorKind::Uniform,
        AttentionVectorKind::AllEqual,
        AttentionVectorKind::OneDominant,
        AttentionVectorKind::BeyondClip,
        AttentionVectorKind::GrowingMax,
        AttentionVectorKind::OneVisible,
        AttentionVectorKind::NoneVisible,
        AttentionVectorKind::MinEverywhere,
    ];
}

/// A standard normal sample (Box–Muller).
pub fn gaussian(rng: &mut impl Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn int8(x: f64) -> i8 {
    x.round().clamp(-128.0, 127.0) as i8
}

/// One workload's operands: a query per row, keys and values for the whole sequence.
#[derive(Debug, Clone)]
pub struct AttentionVectors {
    pub kind: AttentionVectorKind,
    pub rows: Vec<RowSchedule>,
    pub q: Array2<i8>,
    pub k: Array2<i8>,
    pub v: Array2<i8>,
}

impl AttentionVectors {
    pub fn generate(cfg: &AttentionConfig, kind: AttentionVectorKind, seed: u64) -> Self {
        use AttentionVectorKind as K;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = cfg.attention.head_dim;
        let n = cfg.workload.seq_len;
        let mut schedule = rows(cfg);
        let nq = schedule.len();
        fn normal(rng: &mut impl Rng, sigma: f64) -> i8 {
            int8(sigma * gaussian(rng))
        }
        let (q, k, v) = match kind {
            K::Gaussian | K::OneVisible | K::NoneVisible => (
                Array2::from_shape_fn((nq, d), |_| normal(&mut rng, 30.0)),
                Array2::from_shape_fn((n, d), |_| normal(&mut rng, 30.0)),
                Array2::from_shape_fn((n, d), |_| normal(&mut rng, 40.0)),
            ),
            K::Uniform => (
                Array2::from_shape_fn((nq, d), |_| rng.gen::<i8>()),
                Array2::from_shape_fn((n, d), |_| rng.gen::<i8>()),
                Array2::from_shape_fn((n, d), |_| rng.gen::<i8>()),
            ),
            K::AllEqual => {
                let key: Vec<i8> = (0..d).map(|_| rng.gen()).collect();
                (
                    Array2::from_shape_fn((nq, d), |_| rng.gen::<i8>()),
                    Array2::from_shape_fn((n, d), |(_, c)| key[c]),
                    Array2::from_shape_fn((n, d), |_| rng.gen::<i8>()),
                )
            }
            K::OneDominant => {
                let query: Vec<i8> = (0..d).map(|_| normal(&mut rng, 60.0)).collect();
                let star = rng.gen_range(0..n);
                let mut k = Array2::from_shape_fn((n, d), |_| normal(&mut rng, 4.0));
                k.row_mut(star).assign(&ndarray::ArrayView1::from(&query));
                (
                    Array2::from_shape_fn((nq, d), |(_, c)| query[c]),
                    k,
                    Array2::from_shape_fn((n, d), |_| rng.gen::<i8>()),
                )
            }
            K::BeyondClip => (
                Array2::from_shape_fn((nq, d), |(_, c)| if c % 3 == 0 { -127 } else { 127 }),
                Array2::from_shape_fn((n, d), |_| if rng.gen() { 127 } else { -127 }),
                Array2::from_shape_fn((n, d), |_| if rng.gen() { 127 } else { -128 }),
            ),
            K::GrowingMax => (
                Array2::from_elem((nq, d), 40),
                Array2::from_shape_fn((n, d), |(j, _)| int8(-60.0 + 120.0 * j as f64 / n as f64)),
                Array2::from_shape_fn((n, d), |_| rng.gen::<i8>()),
            ),
            K::MinEverywhere => (
                Array2::from_elem((nq, d), i8::MIN),
                Array2::from_elem((n, d), i8::MIN),
                Array2::from_elem((n, d), i8::MIN),
            ),
        };
        match kind {
            K::OneVisible => schedule.iter_mut().for_each(|r| r.visible = 1),
            K::NoneVisible => schedule.iter_mut().step_by(2).for_each(|r| r.visible = 0),
            _ => {}
        }
        AttentionVectors {
            kind,
            rows: schedule,
            q,
            k,
            v,
        }
    }
}

/// A one-line summary of an attention config for messages.
pub fn describe(cfg: &AttentionConfig) -> String {
    let a = &cfg.attention;
    format!(
        "attention {:?}{} d={} macs={} Bc={} max={} L={} queries={} thr={} R={}",
        a.mode,
        if a.causal { " causal" } else { "" },
        a.head_dim,
        a.macs,
        a.tile,
        a.max_seq_len,
        cfg.workload.seq_len,
        cfg.workload.queries,
        cfg.constants.threshold,
        a.quant.rescale_steps
    )
    .to_lowercase()
}

/// The streams of a workload.
pub fn plan(cfg: &AttentionConfig, vectors: &AttentionVectors) -> Result<StreamPlan, CosimError> {
    let mut act = vec![];
    let mut wgt = vec![];
    let k = vectors.k.as_slice().expect("standard layout");
    let v = vectors.v.as_slice().expect("standard layout");
    let q = vectors.q.as_slice().expect("standard layout");
    let block = cfg.attention.query_block;
    let d = cfg.attention.head_dim;
    for (rows, queries) in vectors.rows.chunks(block).zip(q.chunks(block * d)) {
        let (a, w) = pack_block(cfg, rows, queries, k, v)?;
        act.extend(a);
        wgt.extend(w);
    }
    Ok(StreamPlan {
        act_last: vec![false; act.len()],
        act,
        wgt,
        wgt_repeats: 1,
        results: vectors.rows.len() * cfg.chunks(),
        // The divider (48 steps) and the output lanes are the longest tail.
        drain_clocks: 256,
    })
}

/// Drive the workload through `model`.
pub fn drive(
    model: &mut impl EngineSim,
    cfg: &AttentionConfig,
    vectors: &AttentionVectors,
    stimulus: Stimulus,
    seed: u64,
) -> Result<Run, CosimError> {
    let plan = plan(cfg, vectors)?;
    // Per-row and per-tile control clocks on top of the beats (divider, output lanes).
    drive_plan(model, &plan, stimulus, seed, 16.0, &describe(cfg))
}

/// Where a run first differs from the golden model, and how many outputs differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionDifference {
    pub location: String,
    pub expected: i64,
    pub got: i64,
    pub count: usize,
}

/// The engine's rows from a run's result beats.
pub fn outputs(cfg: &AttentionConfig, run: &Run) -> Vec<RowOutput> {
    run.results
        .chunks(cfg.chunks())
        .map(|beats| unpack_row(cfg, beats))
        .collect()
}

/// Compare a run with [`streamed_attention`]: every output value and every flag.
pub fn compare(
    cfg: &AttentionConfig,
    vectors: &AttentionVectors,
    run: &Run,
) -> Option<AttentionDifference> {
    let golden = streamed_attention(
        cfg,
        &vectors.rows,
        vectors.q.view(),
        vectors.k.view(),
        vectors.v.view(),
    );
    let got = outputs(cfg, run);
    let mut first: Option<AttentionDifference> = None;
    let mut count = 0;
    for (i, (want, have)) in golden.iter().zip(&got).enumerate() {
        let row = &vectors.rows[i];
        let at = format!(
            "row {i} (position {}, {} of {} keys visible)",
            row.position, row.visible, row.kv_len
        );
        if want.empty != have.empty {
            count += 1;
            first.get_or_insert(AttentionDifference {
                location: format!("{at}, empty-row flag"),
                expected: i64::from(want.empty),
                got: i64::from(have.empty),
                count: 0,
            });
        }
        for (c, (&a, &b)) in want.values.iter().zip(&have.values).enumerate() {
            if a != b {
                count += 1;
                first.get_or_insert(AttentionDifference {
                    location: format!("{at}, output {c}"),
                    expected: a.into(),
                    got: b.into(),
                    count: 0,
                });
            }
        }
    }
    first.map(|f| AttentionDifference { count, ..f })
}

/// Run `vectors` through a fresh model and compare; on a mismatch rerun with a VCD.
pub fn cosimulate(
    design: &Design,
    library: &ModelLibrary,
    vectors: &AttentionVectors,
    stimulus: Stimulus,
    seed: u64,
    waveform_dir: &Path,
) -> Result<Report, CosimError> {
    let Some(cfg) = design.config.attention() else {
        return Err(CosimError::WrongEngine("an attention"));
    };
    let mut model = library.instantiate(None)?;
    let run = drive(&mut model, cfg, vectors, stimulus, seed)?;
    let Some(diff) = compare(cfg, vectors, &run) else {
        return Ok(Report {
            outputs: vectors.rows.len() * cfg.attention.head_dim,
            run,
        });
    };
    let waveform = rerun_with_waveform(design, library, seed, waveform_dir, |traced| {
        drive(traced, cfg, vectors, stimulus, seed)
    });
    Err(CosimError::Mismatch(Box::new(Mismatch {
        config: describe(cfg),
        seed,
        vectors: format!("{:?}", vectors.kind),
        location: diff.location,
        expected: diff.expected,
        got: diff.got,
        mismatches: diff.count,
        waveform,
    })))
}
