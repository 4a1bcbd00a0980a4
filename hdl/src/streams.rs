//! Beat formats of the engine's three streams, defined once for RTL, golden and host
//! (`docs/streams.md` is the user-facing specification).
//!
//! A beat is a little-endian bit vector held in `u32` words (bit 0 of word 0 first),
//! the same layout Verilator uses for wide ports.
//!
//! Tokens travel in blocks of up to `T_b` (`engine.token_block`) tokens
//! ([`token_blocks`]); the weight matrix is streamed once per block.
//! - activation beat (token `t`, chunk `c`): `Q·G` int8 at bit `8·a` for activation
//!   `c·Q·G + a`. A block's beats are token-major (all chunks of its first token, then
//!   of the next); `act_last` marks the block's last beat (T_b = 1: every token's last);
//! - weight beat (chunk `c`, row block `b`, in that loop order: chunk-major): lane
//!   `p·L + l` holds the code of row `b·P + p`, group `l` of chunk `c` at bit
//!   `(p·L + l)·code_bits`;
//! - result beat (row block `b`, token `t`): row `b·P + p` as a two's-complement
//!   accumulator at bit `p·acc_bits`. A block of `n` tokens returns `n·R` beats in
//!   (row block, token) order: beat `b·n + t`.
//!
//! `K` is zero-padded to whole chunks and `M` to whole row blocks.

pub mod attention;

use crate::config::Geometry;
use crate::weights::{encode_group, WeightError};

pub type Beat = Vec<u32>;

pub fn words_for(bits: usize) -> usize {
    bits.div_ceil(32).max(1)
}

pub fn put_field(words: &mut [u32], offset: usize, width: usize, value: u64) {
    for i in 0..width {
        let bit = offset + i;
        let w = &mut words[bit / 32];
        if (value >> i) & 1 == 1 {
            *w |= 1 << (bit % 32);
        } else {
            *w &= !(1 << (bit % 32));
        }
    }
}

pub fn get_field(words: &[u32], offset: usize, width: usize) -> u64 {
    (0..width).fold(0u64, |acc, i| {
        let bit = offset + i;
        acc | (u64::from((words[bit / 32] >> (bit % 32)) & 1) << i)
    })
}

/// Sign-extend the low `width` bits of `v`.
pub fn sign_extend(v: u64, width: usize) -> i64 {
    let shift = 64 - width;
    ((v << shift) as i64) >> shift
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("weight matrix has {got} entries, expected M·K = {m}·{k}")]
    WeightShape { got: usize, m: usize, k: usize },
    #[error("activation vector has {got} entries, expected K = {k}")]
    ActivationShape { got: usize, k: usize },
    #[error("weight row {row}, column {col}: {cause}")]
    Weight {
        row: usize,
        col: usize,
        cause: WeightError,
    },
}

/// How `tokens` tokens are grouped into blocks of at most `token_block`: full blocks,
/// then the rest. The host sets `act_last` on each block's last activation beat.
pub fn token_blocks(tokens: usize, token_block: usize) -> Vec<usize> {
    let mut blocks = vec![token_block; tokens / token_block];
    if !tokens.is_multiple_of(token_block) {
        blocks.push(tokens % token_block);
    }
    blocks
}

/// Pack a row-major ternary matrix (M×K) into weight beats, chunk-major (the order the
/// engine consumes them, once per token block).
pub fn pack_weights(
    geo: &Geometry,
    w: &[i8],
    m: usize,
    k: usize,
) -> Result<Vec<Beat>, StreamError> {
    if w.len() != m * k {
        return Err(StreamError::WeightShape { got: w.len(), m, k });
    }
    let g = geo.lane_group;
    let code_bits = geo.code_bits();
    let mut beats = Vec::with_capacity(geo.weight_beats_per_token());
    let mut group = vec![0i8; g];
    for c in 0..geo.chunks {
        for b in 0..geo.row_blocks {
            let mut beat = vec![0u32; words_for(geo.weight_beat_bits())];
            for p in 0..geo.rows {
                let row = b * geo.rows + p;
                for l in 0..geo.lanes_per_row {
                    let col0 = c * geo.chunk_activations + l * g;
                    for (j, slot) in group.iter_mut().enumerate() {
                        let col = col0 + j;
                        *slot = if row < m && col < k {
                            w[row * k + col]
                        } else {
                            0
                        };
                    }
                    let code = encode_group(&group).map_err(|cause| StreamError::Weight {
                        row,
                        col: col0,
                        cause,
                    })?;
                    let lane = p * geo.lanes_per_row + l;
                    put_field(
                        &mut beat,
                        lane * code_bits,
                        code_bits,
                        u64::from(code.to_bits(g)),
                    );
                }
            }
            beats.push(beat);
        }
    }
    Ok(beats)
}

/// Pack one token's activations (length K) into activation beats.
pub fn pack_activations(geo: &Geometry, x: &[i8], k: usize) -> Result<Vec<Beat>, StreamError> {
    if x.len() != k {
        return Err(StreamError::ActivationShape { got: x.len(), k });
    }
    Ok((0..geo.chunks)
        .map(|c| {
            let mut beat = vec![0u32; words_for(geo.activation_beat_bits())];
            for a in 0..geo.chunk_activations {
                let col = c * geo.chunk_activations + a;
                let v = if col < k { x[col] } else { 0 };
                put_field(&mut beat, a * 8, 8, u64::from(v as u8));
            }
            beat
        })
        .collect())
}

/// Unpack one token's result beats (row block order) into `m` outputs (padding rows
/// dropped).
pub fn unpack_results(geo: &Geometry, beats: &[Beat], m: usize) -> Vec<i64> {
    let acc = geo.accumulator_bits;
    let mut y = Vec::with_capacity(m);
    for beat in beats {
        for p in 0..geo.rows {
            if y.len() < m {
                y.push(sign_extend(get_field(beat, p * acc, acc), acc));
            }
        }
    }
    y
}

/// Unpack a block's `n·R` result beats ((row block, token) order) into `n` tokens of
/// `m` outputs.
pub fn unpack_block_results(geo: &Geometry, beats: &[Beat], n: usize, m: usize) -> Vec<Vec<i64>> {
    assert_eq!(
        beats.len(),
        n * geo.row_blocks,
        "a block of {n} tokens has n·R result beats"
    );
    (0..n)
        .map(|t| {
            let token: Vec<Beat> = (0..geo.row_blocks)
                .map(|b| beats[b * n + t].clone())
                .collect();
            unpack_results(geo, &token, m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigBuilder, EngineKind};
    use crate::weights::{decode_group, GroupCode};
    use proptest::prelude::*;

    fn config(kind: EngineKind, g: usize, p: usize, q: usize, m: usize, k: usize) -> Config {
        ConfigBuilder::new(kind, g, p, q)
            .accumulator_bits(32)
            .workload(m, k, 1)
            .build()
            .unwrap()
    }

    proptest! {
        #[test]
        fn fields_round_trip(offset in 0usize..200, width in 1usize..=32, value: u32, fill: bool) {
            let mut words = vec![if fill { u32::MAX } else { 0 }; 8];
            let v = u64::from(value) & ((1u64 << width) - 1);
            put_field(&mut words, offset, width, v);
            prop_assert_eq!(get_field(&words, offset, width), v);
        }

        #[test]
        fn weights_round_trip_through_beats(
            kind in prop::sample::select(vec![EngineKind::Tlmm, EngineKind::AdderTree]),
            g in 2usize..=5, p in 1usize..=4, q in 1usize..=3,
            m in 1usize..=9, k in 1usize..=40, seed: u64,
        ) {
            let cfg = config(kind, g, p, q, m, k);
            let geo = cfg.geometry;
            let w: Vec<i8> = (0..m * k).map(|i| ((seed >> (i % 61)) % 3) as i8 - 1).collect();
            let beats = pack_weights(&geo, &w, m, k).unwrap();
            prop_assert_eq!(beats.len(), geo.row_blocks * geo.chunks);
            // Unpack by the documented layout and compare with the matrix.
            let cb = 1 + geo.index_bits;
            for (n, beat) in beats.iter().enumerate() {
                // Chunk-major: beat n is chunk n / R, row block n % R.
                let (c, b) = (n / geo.row_blocks, n % geo.row_blocks);
                for lane in 0..geo.lanes() {
                    let (pp, l) = (lane / geo.lanes_per_row, lane % geo.lanes_per_row);
                    let code = GroupCode::from_bits(get_field(beat, lane * cb, cb) as u32, geo.lane_group);
                    for (j, d) in decode_group(code, geo.lane_group).into_iter().enumerate() {
                        let (row, col) = (b * p + pp, c * geo.chunk_activations + l * geo.lane_group + j);
                        let want = if row < m && col < k { w[row * k + col] } else { 0 };
                        prop_assert_eq!(d, want, "row {} col {}", row, col);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_shapes_and_values_are_errors() {
        let geo = config(EngineKind::Tlmm, 3, 2, 2, 4, 10).geometry;
        assert!(matches!(
            pack_weights(&geo, &[0; 39], 4, 10),
            Err(StreamError::WeightShape { .. })
        ));
        let mut w = vec![0i8; 40];
        w[13] = 3;
        let err = pack_weights(&geo, &w, 4, 10).unwrap_err().to_string();
        assert!(err.contains("row 1"), "{err}");
        assert!(pack_activations(&geo, &[0; 9], 10).is_err());
    }

    #[test]
    fn blocks_are_full_then_the_rest() {
        assert_eq!(token_blocks(7, 3), vec![3, 3, 1]);
        assert_eq!(token_blocks(6, 3), vec![3, 3]);
        assert_eq!(token_blocks(2, 1), vec![1, 1]);
        assert_eq!(token_blocks(2, 8), vec![2]);
    }

    #[test]
    fn sign_extension() {
        assert_eq!(sign_extend(0xFF, 8), -1);
        assert_eq!(sign_extend(0x80, 8), -128);
        assert_eq!(sign_extend(0x7F, 8), 127);
        assert_eq!(sign_extend(0xFFFF_FFFF, 32), -1);
    }
}
