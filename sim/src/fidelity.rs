//! Fidelity of the integer attention against plain float attention, on Gaussian Q/K/V.
//!
//! Q, K, V are drawn from N(0, 1) and quantised per tensor (`scale = max|x|/127`, as
//! IntAttention does); the output scale is calibrated the same way on the float
//! result. Three integer results are compared with [`float_attention`] row by row:
//! - `index`: IntAttention's IndexSoftmax, not streamed (u8 probabilities), real output;
//! - `single_tile`: the engine's arithmetic with the whole sequence in one tile, before
//!   requantisation (`acc/ℓ · scale_v`): IndexSoftmax without the u8 probabilities;
//! - `streamed`: the same in tiles of `Bc` with the online rescale, so the difference
//!   to `single_tile` is the cost of streaming;
//! - `engine`: the engine's int8 output times `scale_out` (what the hardware returns).

use ndarray::{Array2, ArrayView1};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use tern_hdl::config::IndexRounding;
use tern_hdl::streams::attention::rows;
use tern_hdl::AttentionConfig;

use crate::cosim::attention::gaussian;
use crate::golden::attention::{float_attention, index_attention, requantize, streamed_row};

/// Shape of one fidelity experiment.
#[derive(Debug, Clone, Copy)]
pub struct FidelityCase {
    pub head_dim: usize,
    pub seq_len: usize,
    pub tile: usize,
    pub queries: usize,
    pub rescale_steps: usize,
    pub clip: f64,
    pub rounding: IndexRounding,
    /// Entries of the engine's exp table (`attention.quant.exp_entries`).
    pub exp_entries: usize,
    pub seed: u64,
}

/// Mean cosine similarity and max abs error (real units) of one method.
#[derive(Debug, Clone, Copy, Default)]
pub struct Agreement {
    pub mean_cosine: f64,
    pub min_cosine: f64,
    pub max_abs_error: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct FidelityReport {
    pub case: FidelityCase,
    /// Float attention on the int8-quantised Q/K/V: the cost of int8 inputs alone.
    pub quantised_inputs: Agreement,
    pub index: Agreement,
    /// The engine's arithmetic with the whole sequence in one tile (no rescale).
    pub single_tile: Agreement,
    pub streamed: Agreement,
    pub engine: Agreement,
}

fn quantise(x: &Array2<f64>) -> (Array2<i8>, f64) {
    let max = x
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    let scale = max / 127.0;
    (
        x.mapv(|v| (v / scale).round().clamp(-128.0, 127.0) as i8),
        scale,
    )
}

fn cosine(a: ArrayView1<f64>, b: ArrayView1<f64>) -> f64 {
    let (na, nb) = (a.dot(&a).sqrt(), b.dot(&b).sqrt());
    if na == 0.0 || nb == 0.0 {
        return if na == nb { 1.0 } else { 0.0 };
    }
    a.dot(&b) / (na * nb)
}

fn agreement(got: &Array2<f64>, want: &Array2<f64>) -> Agreement {
    let cosines: Vec<f64> = got
        .rows()
        .into_iter()
        .zip(want.rows())
        .map(|(a, b)| cosine(a, b))
        .collect();
    Agreement {
        mean_cosine: cosines.iter().sum::<f64>() / cosines.len() as f64,
        min_cosine: cosines.iter().copied().fold(f64::INFINITY, f64::min),
        max_abs_error: (got - want).iter().fold(0.0f64, |m, v| m.max(v.abs())),
    }
}

/// The attention config for a case with the given per-tensor scales.
pub fn case_config(case: &FidelityCase, scales: [f64; 4]) -> AttentionConfig {
    let [sq, sk, sv, so] = scales;
    AttentionConfig::from_toml(
        &format!(
            "[attention]\nhead_dim = {}\nmacs = 16\ntile = {}\nmax_seq_len = {}\nmode = \"prefill\"\n\
             causal = false\n[attention.quant]\nscale_q = {sq:e}\nscale_k = {sk:e}\nscale_v = {sv:e}\n\
             scale_out = {so:e}\nclip = {}\nrescale_steps = {}\nindex_rounding = \"{}\"\n\
             exp_entries = {}\n[workload]\nseq_len = {}\nqueries = {}\n",
            case.head_dim,
            case.tile,
            case.seq_len.max(16),
            case.clip,
            case.rescale_steps,
            match case.rounding {
                IndexRounding::Floor => "floor",
                IndexRounding::Nearest => "nearest",
            },
            case.exp_entries,
            case.seq_len,
            case.queries
        ),
        "fidelity case",
    )
    .expect("fidelity cases are valid configs")
}

/// Run one case.
pub fn measure(case: FidelityCase) -> FidelityReport {
    let d = case.head_dim;
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed);
    let mut draw = |n: usize| Array2::from_shape_fn((n, d), |_| gaussian(&mut rng));
    let (qf, kf, vf) = (draw(case.queries), draw(case.seq_len), draw(case.seq_len));
    let (q, sq) = quantise(&qf);
    let (k, sk) = quantise(&kf);
    let (v, sv) = quantise(&vf);
    let probe = case_config(&case, [sq, sk, sv, sv]);
    let schedule = rows(&probe);
    let reference = float_attention(&schedule, qf.view(), kf.view(), vf.view());
    // Calibrate the output scale on the float result, per tensor.
    let so = reference.iter().fold(0.0f64, |m, x| m.max(x.abs())) / 127.0;
    let cfg = case_config(&case, [sq, sk, sv, so]);

    let index = index_attention(&cfg, &schedule, q.view(), k.view(), v.view());
    let mut whole = cfg.clone();
    whole.attention.tile = case.seq_len;
    let mut single_tile = Array2::zeros((schedule.len(), d));
    let mut streamed = Array2::zeros((schedule.len(), d));
    let mut engine = Array2::zeros((schedule.len(), d));
    for (i, row) in schedule.iter().enumerate() {
        let one = streamed_row(&whole, row, q.row(i), k.view(), v.view());
        let state = streamed_row(&cfg, row, q.row(i), k.view(), v.view());
        for c in 0..d {
            streamed[[i, c]] = state.acc[c] as f64 / state.sum as f64 * sv;
            single_tile[[i, c]] = one.acc[c] as f64 / one.sum as f64 * sv;
        }
        let out = requantize(&cfg, &state);
        for (c, &x) in out.values.iter().enumerate() {
            engine[[i, c]] = f64::from(x) * so;
        }
    }
    let dequantised = float_attention(
        &schedule,
        q.mapv(|x| f64::from(x) * sq).view(),
        k.mapv(|x| f64::from(x) * sk).view(),
        v.mapv(|x| f64::from(x) * sv).view(),
    );
    FidelityReport {
        case,
        quantised_inputs: agreement(&dequantised, &reference),
        index: agreement(&index, &reference),
        single_tile: agreement(&single_tile, &reference),
        streamed: agreement(&streamed, &reference),
        engine: agreement(&engine, &reference),
    }
}
