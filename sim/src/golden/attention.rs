//! Golden models of the integer attention engine, and the float reference.
//!
//! - [`streamed_attention`]: the engine's arithmetic in the engine's order of
//!   operations (tiles, running maximum, rescale, integer normalisation), in plain
//!   `i64`/`i128` with true integer division. This is what the RTL must match bit for
//!   bit; it shares no code with the RTL (which divides by the threshold with a
//!   reciprocal multiply, by the running sum with a restoring divider, and works in
//!   fixed-width two's complement).
//! - [`index_softmax`] / [`index_attention`]: IntAttention's published IndexSoftmax,
//!   not streamed (global row maximum, probabilities normalised to u8 before `P·V`).
//! - [`float_attention`]: plain softmax attention in `f64`, the fidelity reference.
//!
//! The integer contract, per query row (`thr`, tables and constants from the config):
//! ```text
//! idx(Δ)  = floor((E·min(Δ,thr) + o)/thr)   ridx(Δ) = floor((R·min(Δ,thr) + o)/thr)
//!           (E = exp_entries − 1; o = 0 for `floor` index rounding, ⌊thr/2⌋ for `nearest`)
//! for each tile of Bc keys (masked keys: no score in the maximum, weight 0):
//!     s_j = q·k_j;   t = max over visible s_j (skip the rest if none is visible)
//!     if there is no running maximum m: m = t
//!     else if t > m: f = rescale_table[ridx(t − m)];  ℓ = (ℓ·f + 2^14) >> 15;
//!                    acc_c = (acc_c·f + 2^14) >> 15 (arithmetic);  m = t
//!     for each key j of the tile in order: e = exp_table[idx(m − s_j)] (0 if masked);
//!                    ℓ += e;  acc_c += e·v_jc
//! ℓ = 0 (no visible key): the row is flagged empty, outputs 0.
//! otherwise r = floor(K/ℓ);  out_c = clamp((acc_c·r + 2^(S−1)) >> S, −128, 127)
//! ```

use ndarray::{Array2, ArrayView1, ArrayView2};

use tern_hdl::config::attention::RESCALE_FRACTION_BITS;
use tern_hdl::streams::attention::{tiles, RowOutput, RowSchedule};
use tern_hdl::AttentionConfig;

/// The state of one row after its last tile: output accumulators and running sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowState {
    pub acc: Vec<i64>,
    pub sum: i64,
    /// Tiles whose maximum raised the running one by a nonzero rescale index: where the
    /// engine spends its rescale clocks (`hdl::timing::attention_row_cycles`).
    pub rescaled_tiles: usize,
}

/// IntAttention's index into its 32-entry table: `floor(31·min(Δ,thr)/thr)`.
fn exp_index(delta: i64, thr: i64) -> usize {
    (31 * delta.min(thr) / thr) as usize
}

/// The streamed engine's index into a table of `steps + 1` entries.
fn table_index(delta: i64, thr: i64, steps: i64, offset: i64) -> usize {
    ((steps * delta.min(thr) + offset) / thr) as usize
}

fn rescale(x: i64, factor: i64) -> i64 {
    (x * factor + (1 << (RESCALE_FRACTION_BITS - 1))) >> RESCALE_FRACTION_BITS
}

fn dot(q: ArrayView1<i8>, k: ArrayView1<i8>) -> i64 {
    q.iter()
        .zip(k)
        .map(|(&a, &b)| i64::from(a) * i64::from(b))
        .sum()
}

/// One row in the engine's order of operations, up to (not including) normalisation.
pub fn streamed_row(
    cfg: &AttentionConfig,
    row: &RowSchedule,
    q: ArrayView1<i8>,
    k: ArrayView2<i8>,
    v: ArrayView2<i8>,
) -> RowState {
    let c = &cfg.constants;
    let thr = c.threshold;
    let steps = (c.rescale_table.len() - 1) as i64;
    let exp_steps = (c.exp_table.len() - 1) as i64;
    let offset = c.index_offset as i64;
    let d = cfg.attention.head_dim;
    let mut acc = vec![0i64; d];
    let mut sum = 0i64;
    let mut max: Option<i64> = None;
    let mut rescaled_tiles = 0;
    for (start, n) in tiles(row.kv_len, cfg.attention.tile) {
        let keys = start..start + n;
        let scores: Vec<i64> = keys.clone().map(|j| dot(q, k.row(j))).collect();
        let tile_max = keys
            .clone()
            .zip(&scores)
            .filter(|(j, _)| *j < row.visible)
            .map(|(_, &s)| s)
            .max();
        if let Some(t) = tile_max {
            match max {
                None => max = Some(t),
                Some(m) if t > m => {
                    let ridx = table_index(t - m, thr, steps, offset);
                    rescaled_tiles += usize::from(ridx != 0);
                    let f = i64::from(c.rescale_table[ridx]);
                    sum = rescale(sum, f);
                    for a in &mut acc {
                        *a = rescale(*a, f);
                    }
                    max = Some(t);
                }
                Some(_) => {}
            }
        }
        for (j, &s) in keys.zip(&scores) {
            let e = match max {
                Some(m) if j < row.visible => {
                    i64::from(c.exp_table[table_index(m - s, thr, exp_steps, offset)])
                }
                _ => 0,
            };
            sum += e;
            for (a, &x) in acc.iter_mut().zip(v.row(j)) {
                *a += e * i64::from(x);
            }
        }
    }
    RowState {
        acc,
        sum,
        rescaled_tiles,
    }
}

/// Normalise and requantise a row's state to int8.
pub fn requantize(cfg: &AttentionConfig, state: &RowState) -> RowOutput {
    let c = &cfg.constants;
    if state.sum == 0 {
        return RowOutput {
            values: vec![0; state.acc.len()],
            empty: true,
        };
    }
    let r = i128::from(c.output_numerator / state.sum as u64);
    let half = 1i128 << (c.output_shift - 1);
    let values = state
        .acc
        .iter()
        .map(|&a| ((i128::from(a) * r + half) >> c.output_shift).clamp(-128, 127) as i8)
        .collect();
    RowOutput {
        values,
        empty: false,
    }
}

/// The engine's output for every row: `q` has one row per schedule entry, `k`/`v` one
/// row per key of the sequence.
pub fn streamed_attention(
    cfg: &AttentionConfig,
    rows: &[RowSchedule],
    q: ArrayView2<i8>,
    k: ArrayView2<i8>,
    v: ArrayView2<i8>,
) -> Vec<RowOutput> {
    rows.iter()
        .enumerate()
        .map(|(i, row)| requantize(cfg, &streamed_row(cfg, row, q.row(i), k, v)))
        .collect()
}

/// IntAttention's IndexSoftmax over one row of scores (not streamed): distances to the
/// global maximum, clipped, indexed into the 32-entry table, then normalised to u8
/// probabilities `round(255·e/Σe)` (round half to even, as `torch.round`). Masked
/// entries (`j ≥ visible`) get 0. Returns all zeros when nothing is visible.
pub fn index_softmax(cfg: &AttentionConfig, scores: &[i64], visible: usize) -> Vec<i64> {
    let c = &cfg.constants;
    let Some(max) = scores[..visible.min(scores.len())].iter().copied().max() else {
        return vec![0; scores.len()];
    };
    let e: Vec<i64> = scores
        .iter()
        .enumerate()
        .map(|(j, &s)| {
            if j < visible {
                i64::from(c.intattention_exp_table[exp_index(max - s, c.threshold)])
            } else {
                0
            }
        })
        .collect();
    let total: i64 = e.iter().sum();
    e.iter()
        .map(|&x| {
            let num = 255 * x;
            let (quot, rem) = (num / total, num % total);
            match (2 * rem).cmp(&total) {
                std::cmp::Ordering::Greater => quot + 1,
                std::cmp::Ordering::Equal => quot + (quot & 1),
                std::cmp::Ordering::Less => quot,
            }
        })
        .collect()
}

/// IntAttention (not streamed): `out = Σ_j p_j·v_j · scale_v / 255`, in real units, as
/// its reference implementation returns it (no output requantisation).
pub fn index_attention(
    cfg: &AttentionConfig,
    rows: &[RowSchedule],
    q: ArrayView2<i8>,
    k: ArrayView2<i8>,
    v: ArrayView2<i8>,
) -> Array2<f64> {
    let d = cfg.attention.head_dim;
    let sv = cfg.attention.quant.scale_v;
    let mut out = Array2::zeros((rows.len(), d));
    for (i, row) in rows.iter().enumerate() {
        let scores: Vec<i64> = (0..row.kv_len).map(|j| dot(q.row(i), k.row(j))).collect();
        let p = index_softmax(cfg, &scores, row.visible);
        for c in 0..d {
            let total: i64 = (0..row.kv_len).map(|j| p[j] * i64::from(v[[j, c]])).sum();
            out[[i, c]] = total as f64 * sv / 255.0;
        }
    }
    out
}

/// Plain softmax attention in `f64`: `softmax(q·kᵀ/√d) v` over the visible keys.
pub fn float_attention(
    rows: &[RowSchedule],
    q: ArrayView2<f64>,
    k: ArrayView2<f64>,
    v: ArrayView2<f64>,
) -> Array2<f64> {
    let d = q.ncols();
    let scale = 1.0 / (d as f64).sqrt();
    let mut out = Array2::zeros((rows.len(), d));
    for (i, row) in rows.iter().enumerate() {
        let logits: Vec<f64> = (0..row.visible)
            .map(|j| q.row(i).dot(&k.row(j)) * scale)
            .collect();
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logits.iter().map(|&x| (x - max).exp()).collect();
        let total: f64 = w.iter().sum();
        for (j, &wj) in w.iter().enumerate() {
            out.row_mut(i).scaled_add(wj / total, &v.row(j));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use tern_hdl::streams::attention::rows;

    fn config(tile: usize, seq: usize, steps: usize) -> AttentionConfig {
        // IntAttention's floor indexing and 32-entry table, so that one tile
        // reproduces IndexSoftmax.
        AttentionConfig::from_toml(
            &format!(
                "[attention]\nhead_dim = 8\nmacs = 4\ntile = {tile}\nmax_seq_len = 256\nmode = \"decode\"\n\
                 [attention.quant]\nscale_q = 0.05\nscale_k = 0.05\nscale_v = 0.02\nscale_out = 0.02\n\
                 rescale_steps = {steps}\nindex_rounding = \"floor\"\nexp_entries = 32\n[workload]\nseq_len = {seq}\nqueries = 1\n"
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn one_tile_without_rescale_is_index_softmax_before_normalisation() {
        // With a single tile the streamed weights are exactly IndexSoftmax's table
        // values against the global maximum, so acc/ℓ equals Σ e·v / Σ e.
        let cfg = config(64, 40, 256);
        let row = rows(&cfg)[0];
        let q = Array2::from_shape_fn((1, 8), |(_, c)| (c as i8) * 9 - 30);
        let k = Array2::from_shape_fn((40, 8), |(j, c)| ((j * 7 + c * 13) % 61) as i8 - 30);
        let v = Array2::from_shape_fn((40, 8), |(j, c)| ((j * 5 + c) % 255) as i8);
        let state = streamed_row(&cfg, &row, q.row(0), k.view(), v.view());
        let scores: Vec<i64> = (0..40).map(|j| dot(q.row(0), k.row(j))).collect();
        let max = *scores.iter().max().unwrap();
        let e: Vec<i64> = scores
            .iter()
            .map(|&s| {
                i64::from(
                    cfg.constants.intattention_exp_table
                        [exp_index(max - s, cfg.constants.threshold)],
                )
            })
            .collect();
        assert_eq!(state.sum, e.iter().sum::<i64>());
        for c in 0..8 {
            let want: i64 = (0..40).map(|j| e[j] * i64::from(v[[j, c]])).sum();
            assert_eq!(state.acc[c], want, "lane {c}");
        }
    }

    #[test]
    fn index_softmax_probabilities_are_u8_and_sum_near_255() {
        let cfg = config(16, 50, 256);
        let scores: Vec<i64> = (0..50).map(|j| (j * j * 37) % 9000).collect();
        let p = index_softmax(&cfg, &scores, 50);
        assert!(p.iter().all(|&x| (0..=255).contains(&x)));
        let total: i64 = p.iter().sum();
        assert!((230..=280).contains(&total), "{total}");
        assert_eq!(index_softmax(&cfg, &scores, 0), vec![0; 50]);
    }

    #[test]
    fn no_visible_key_is_flagged_empty() {
        let cfg = config(4, 10, 256);
        let mut row = rows(&cfg)[0];
        row.visible = 0;
        let q = Array2::<i8>::ones((1, 8));
        let kv = Array2::<i8>::ones((10, 8));
        let state = streamed_row(&cfg, &row, q.row(0), kv.view(), kv.view());
        let out = requantize(&cfg, &state);
        assert!(out.empty && out.values.iter().all(|&x| x == 0));
    }
}
