//! Co-verification: stream weights and activations through the Verilated engine and
//! compare every output with the golden model, bit for bit.
//!
//! On a mismatch the run is repeated with the same seed and a waveform (VCD) is written;
//! the error names the configuration, the seed, the first differing output and the file.

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;
use std::path::{Path, PathBuf};

use tern_hdl::streams::{
    pack_activations, pack_weights, token_blocks, unpack_block_results, Beat, StreamError,
};
use tern_hdl::{Config, Design};

use crate::golden::tlmm::ternary_gemm;
use crate::verilator::{BridgeError, EngineSim, Handshake, Inputs, ModelLibrary};

pub mod attention;
pub mod sequencer;
pub mod stripe;
pub mod units;
pub mod vector;
pub mod write_side;

/// What the vectors look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorKind {
    /// Uniform int8 activations, uniform ternary weights.
    Random,
    /// Mostly-zero weights (BitNet layers are ~1/3 zeros; this is 90%).
    Sparse,
    /// All activations −128, all weights +1: the most negative sum.
    MinTimesPlus,
    /// All activations −128, all weights −1: the most positive sum (+128·K).
    MinTimesMinus,
    /// All activations 127, all weights +1.
    MaxTimesPlus,
    /// Alternating extremes in activations and weights.
    Alternating,
}

impl VectorKind {
    pub const ALL: [VectorKind; 6] = [
        VectorKind::Random,
        VectorKind::Sparse,
        VectorKind::MinTimesPlus,
        VectorKind::MinTimesMinus,
        VectorKind::MaxTimesPlus,
        VectorKind::Alternating,
    ];
}

/// One workload's operands: `W` (M×K) and the tokens `X` (T×K).
#[derive(Debug, Clone)]
pub struct Vectors {
    pub kind: VectorKind,
    pub w: Array2<i8>,
    pub xs: Array2<i8>,
}

impl Vectors {
    pub fn generate(cfg: &Config, kind: VectorKind, seed: u64) -> Vectors {
        let (m, k, t) = (cfg.workload.m, cfg.workload.k, cfg.workload.tokens);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (w, xs) = match kind {
            VectorKind::Random => (
                Array2::from_shape_fn((m, k), |_| rng.gen_range(-1i8..=1)),
                Array2::from_shape_fn((t, k), |_| rng.gen::<i8>()),
            ),
            VectorKind::Sparse => (
                Array2::from_shape_fn((m, k), |_| {
                    if rng.gen_bool(0.1) {
                        if rng.gen() {
                            1
                        } else {
                            -1
                        }
                    } else {
                        0
                    }
                }),
                Array2::from_shape_fn((t, k), |_| rng.gen::<i8>()),
            ),
            VectorKind::MinTimesPlus => (
                Array2::from_elem((m, k), 1),
                Array2::from_elem((t, k), i8::MIN),
            ),
            VectorKind::MinTimesMinus => (
                Array2::from_elem((m, k), -1),
                Array2::from_elem((t, k), i8::MIN),
            ),
            VectorKind::MaxTimesPlus => (
                Array2::from_elem((m, k), 1),
                Array2::from_elem((t, k), i8::MAX),
            ),
            VectorKind::Alternating => (
                Array2::from_shape_fn((m, k), |(r, c)| if (r + c) % 2 == 0 { 1 } else { -1 }),
                Array2::from_shape_fn(
                    (t, k),
                    |(r, c)| if (r + c) % 2 == 0 { i8::MIN } else { i8::MAX },
                ),
            ),
        };
        Vectors { kind, w, xs }
    }
}

/// How the testbench drives the handshakes. Gaps and stalls exercise the engine's
/// flow control; `Stimulus::STREAMING` measures its throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stimulus {
    /// Probability that an activation or weight beat is withheld on a clock.
    pub valid_gap: f64,
    /// Probability that `res_ready` is low on a clock.
    pub result_stall: f64,
}

impl Stimulus {
    pub const STREAMING: Stimulus = Stimulus {
        valid_gap: 0.0,
        result_stall: 0.0,
    };
    pub const BURSTY: Stimulus = Stimulus {
        valid_gap: 0.3,
        result_stall: 0.3,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum CosimError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("packing the vectors: {0}")]
    Stream(StreamError),
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    #[error("this co-simulation needs {0} design")]
    WrongEngine(&'static str),
    #[error("packing the attention vectors: {0}")]
    AttentionStream(tern_hdl::streams::attention::AttentionStreamError),
    #[error(
        "engine stalled: {results} of {expected} results after {cycles} clocks (config {config}, seed {seed})"
    )]
    Hung {
        config: String,
        seed: u64,
        results: usize,
        expected: usize,
        cycles: u64,
    },
    #[error(
        "the engine sent a result beat after all {expected} expected ones, {after} clocks after the last (config {config}, seed {seed}); waveform: {}",
        waveform.as_ref().map_or("(not written)".to_string(), |p| p.display().to_string())
    )]
    ExtraResult {
        config: String,
        seed: u64,
        expected: usize,
        after: u64,
        waveform: Option<PathBuf>,
    },
}

// By hand rather than `#[from]`, which would also make the inner error the `source`
// and `{:#}` print it twice (the message already carries it).
impl From<StreamError> for CosimError {
    fn from(e: StreamError) -> Self {
        CosimError::Stream(e)
    }
}

impl From<tern_hdl::streams::attention::AttentionStreamError> for CosimError {
    fn from(e: tern_hdl::streams::attention::AttentionStreamError) -> Self {
        CosimError::AttentionStream(e)
    }
}

/// The first differing output of a failed co-simulation.
#[derive(Debug)]
pub struct Mismatch {
    pub config: String,
    pub seed: u64,
    /// The vector set (its kind).
    pub vectors: String,
    /// Where the first difference is, e.g. `token 2, row 17`.
    pub location: String,
    pub expected: i64,
    pub got: i64,
    pub mismatches: usize,
    pub waveform: Option<PathBuf>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "RTL and golden model differ ({} outputs differ)",
            self.mismatches
        )?;
        writeln!(f, "  config:   {}", self.config)?;
        writeln!(f, "  seed:     {} ({} vectors)", self.seed, self.vectors)?;
        writeln!(
            f,
            "  first:    {}: expected {}, got {}",
            self.location, self.expected, self.got
        )?;
        match &self.waveform {
            Some(p) => write!(f, "  waveform: {}", p.display()),
            None => write!(f, "  waveform: (not written)"),
        }
    }
}

/// The outcome of driving one workload through the engine.
#[derive(Debug, Clone)]
pub struct Run {
    /// Result beats in arrival order.
    pub results: Vec<Beat>,
    /// Clocks from the end of reset to the last result.
    pub cycles: u64,
    /// Clock on which the first weight beat was accepted.
    pub first_weight: u64,
    /// Clock on which the last result was accepted.
    pub last_result: u64,
}

/// A one-line summary of a config for messages.
pub fn describe(cfg: &Config) -> String {
    let w = &cfg.workload;
    format!(
        "{} M={} K={} T={}",
        cfg.engine.summary(),
        w.m,
        w.k,
        w.tokens
    )
}

/// The beats of one workload on the shell's three streams.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub act: Vec<Beat>,
    /// `act_last` of each activation beat (the end of a token block).
    pub act_last: Vec<bool>,
    /// The weight-stream beats, sent `wgt_repeats` times over (weights are streamed
    /// again for every token block; attention streams each beat once).
    pub wgt: Vec<Beat>,
    pub wgt_repeats: usize,
    /// Result beats the workload produces.
    pub results: usize,
    /// Clocks to keep watching after the last expected result: any result beat in this
    /// window is an error (longer than anything the engine still has in flight).
    pub drain_clocks: u64,
}

/// The streams of a matmul workload: tokens in blocks of `engine.token_block`, each
/// block's activations token-major with `act_last` on its last beat, the weights once
/// per block.
pub fn matmul_plan(cfg: &Config, vectors: &Vectors) -> Result<StreamPlan, CosimError> {
    let geo = &cfg.geometry;
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let weights = pack_weights(geo, vectors.w.as_slice().expect("standard layout"), m, k)?;
    let blocks = token_blocks(vectors.xs.nrows(), geo.token_block);
    let (mut act, mut act_last) = (Vec::new(), Vec::new());
    let mut rows = vectors.xs.axis_iter(Axis(0));
    for &n in &blocks {
        for t in 0..n {
            let x = rows.next().expect("blocks cover the tokens");
            let beats = pack_activations(geo, x.as_slice().expect("standard layout"), k)?;
            let last = beats.len() - 1;
            act_last.extend((0..beats.len()).map(|c| t == n - 1 && c == last));
            act.extend(beats);
        }
    }
    Ok(StreamPlan {
        act,
        act_last,
        wgt: weights,
        wgt_repeats: blocks.len(),
        results: vectors.xs.nrows() * geo.row_blocks,
        drain_clocks: 4 * (tern_hdl::timing::pipeline_latency(geo) + geo.build_clocks) as u64 + 64,
    })
}

/// Drive the workload through `model`; returns every result beat and the clock counts.
pub fn drive(
    model: &mut impl EngineSim,
    cfg: &Config,
    vectors: &Vectors,
    stimulus: Stimulus,
    seed: u64,
) -> Result<Run, CosimError> {
    let plan = matmul_plan(cfg, vectors)?;
    // Generous bound: every beat, slowed by the gaps and stalls, plus the table fills; a
    // weight beat is held once per token of its block.
    let geo = &cfg.geometry;
    let per_beat = (4.0 + geo.build_clocks as f64) * geo.token_block as f64;
    drive_plan(model, &plan, stimulus, seed, per_beat, &describe(cfg))
}

/// Drive `plan` through `model` with `stimulus`; `clocks_per_beat` bounds the run
/// (a hang is reported, never waited out). After the last expected result the clock
/// keeps running for `plan.drain_clocks` with every result taken: an extra result beat
/// is an error.
pub fn drive_plan(
    model: &mut impl EngineSim,
    plan: &StreamPlan,
    stimulus: Stimulus,
    seed: u64,
    clocks_per_beat: f64,
    config: &str,
) -> Result<Run, CosimError> {
    let total_wgt = plan.wgt.len() * plan.wgt_repeats;
    let expected = plan.results;
    let slowdown = 1.0 / ((1.0 - stimulus.valid_gap) * (1.0 - stimulus.result_stall)).max(0.01);
    let limit = ((total_wgt + plan.act.len() + expected) as f64 * slowdown * clocks_per_beat)
        as u64
        + 10_000;

    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F10C);
    let idle = Inputs {
        reset: true,
        act: None,
        act_last: false,
        wgt: None,
        res_ready: false,
    };
    for _ in 0..2 {
        model.drive(&idle);
        model.tick();
    }
    let (mut next_act, mut next_wgt) = (0usize, 0usize);
    let mut results = Vec::with_capacity(expected);
    let (mut first_weight, mut last_result) = (None, 0);
    let mut cycle = 0u64;
    while results.len() < expected {
        if cycle >= limit {
            return Err(CosimError::Hung {
                config: config.to_string(),
                seed,
                results: results.len(),
                expected,
                cycles: cycle,
            });
        }
        let offer_act = next_act < plan.act.len() && !rng.gen_bool(stimulus.valid_gap);
        let offer_wgt = next_wgt < total_wgt && !rng.gen_bool(stimulus.valid_gap);
        let res_ready = !rng.gen_bool(stimulus.result_stall);
        let inputs = Inputs {
            reset: false,
            act: offer_act.then(|| plan.act[next_act].as_slice()),
            act_last: offer_act && plan.act_last[next_act],
            wgt: offer_wgt.then(|| plan.wgt[next_wgt % plan.wgt.len()].as_slice()),
            res_ready,
        };
        let Handshake {
            act_ready,
            wgt_ready,
            res_valid,
        } = model.drive(&inputs);
        if offer_act && act_ready {
            next_act += 1;
        }
        if offer_wgt && wgt_ready {
            first_weight.get_or_insert(cycle);
            next_wgt += 1;
        }
        if res_valid && res_ready {
            results.push(model.result());
            last_result = cycle;
        }
        model.tick();
        cycle += 1;
    }
    let run = Run {
        results,
        cycles: cycle,
        first_weight: first_weight.unwrap_or(0),
        last_result,
    };
    // Nothing more may come out.
    let quiet = Inputs {
        reset: false,
        act: None,
        act_last: false,
        wgt: None,
        res_ready: true,
    };
    for after in 1..=plan.drain_clocks {
        if model.drive(&quiet).res_valid {
            return Err(CosimError::ExtraResult {
                config: config.to_string(),
                seed,
                expected,
                after,
                waveform: None,
            });
        }
        model.tick();
    }
    Ok(run)
}

/// Rerun a failed workload on a fresh model writing `waveform_dir/<hash>-seed<seed>.vcd`;
/// returns the file if it was written.
pub fn rerun_with_waveform(
    design: &Design,
    library: &ModelLibrary,
    seed: u64,
    waveform_dir: &Path,
    rerun: impl FnOnce(&mut crate::verilator::Model) -> Result<Run, CosimError>,
) -> Option<PathBuf> {
    std::fs::create_dir_all(waveform_dir).ok()?;
    let path = waveform_dir.join(format!("{}-seed{seed}.vcd", design.short_hash()));
    let mut traced = library.instantiate(Some(&path)).ok()?;
    // The rerun fails the same way; what matters is the waveform it leaves.
    let _ = rerun(&mut traced);
    drop(traced);
    path.exists().then_some(path)
}

/// A passing co-simulation.
#[derive(Debug, Clone)]
pub struct Report {
    pub outputs: usize,
    pub run: Run,
}

/// Run `vectors` through a fresh model of `design` and compare with the golden model.
/// On a mismatch, rerun with the same seed writing `waveform_dir/<hash>-seed<seed>.vcd`.
pub fn cosimulate(
    design: &Design,
    library: &ModelLibrary,
    vectors: &Vectors,
    stimulus: Stimulus,
    seed: u64,
    waveform_dir: &Path,
) -> Result<Report, CosimError> {
    let Some(cfg) = design.config.matmul() else {
        return Err(CosimError::WrongEngine("a matmul"));
    };
    let mut model = library.instantiate(None)?;
    let run = match drive(&mut model, cfg, vectors, stimulus, seed) {
        Err(CosimError::ExtraResult {
            config,
            seed,
            expected,
            after,
            ..
        }) => {
            let waveform = rerun_with_waveform(design, library, seed, waveform_dir, |traced| {
                drive(traced, cfg, vectors, stimulus, seed)
            });
            return Err(CosimError::ExtraResult {
                config,
                seed,
                expected,
                after,
                waveform,
            });
        }
        other => other?,
    };
    let Some(FirstDifference {
        token,
        row,
        expected,
        got,
        count,
    }) = compare(cfg, vectors, &run)
    else {
        return Ok(Report {
            outputs: cfg.workload.m * vectors.xs.nrows(),
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
        location: format!("token {token}, row {row}"),
        expected,
        got,
        mismatches: count,
        waveform,
    })))
}

/// Where a run first differs from the golden model, and how many outputs differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstDifference {
    pub token: usize,
    pub row: usize,
    pub expected: i64,
    pub got: i64,
    pub count: usize,
}

/// Compare a run's results with the golden model ([`ternary_gemm`]). Results arrive per
/// token block, in (row block, token) order.
pub fn compare(cfg: &Config, vectors: &Vectors, run: &Run) -> Option<FirstDifference> {
    let golden = ternary_gemm(vectors.w.view(), vectors.xs.view());
    let geo = &cfg.geometry;
    let rb = geo.row_blocks;
    let mut first: Option<FirstDifference> = None;
    let mut count = 0;
    let (mut t0, mut beat) = (0, 0);
    for n in token_blocks(golden.nrows(), geo.token_block) {
        let tokens =
            unpack_block_results(geo, &run.results[beat..beat + n * rb], n, cfg.workload.m);
        for (dt, got) in tokens.iter().enumerate() {
            let t = t0 + dt;
            for (row, (&want, &have)) in golden.row(t).iter().zip(got).enumerate() {
                if want != have {
                    count += 1;
                    first.get_or_insert(FirstDifference {
                        token: t,
                        row,
                        expected: want,
                        got: have,
                        count: 0,
                    });
                }
            }
        }
        t0 += n;
        beat += n * rb;
    }
    first.map(|f| FirstDifference { count, ..f })
}
