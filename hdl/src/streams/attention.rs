//! Beat formats of the attention engine, on the same three-stream shell as the matmul
//! engines (`act` = per-row operand, `wgt` = streamed operand, `res` = results). Every
//! beat is `8·macs` data bits (int8 lane `i` at bit `8·i`); result beats add one flag.
//!
//! Per query row, in this order:
//! - `act`: a header beat (bits 0..16 = `visible`, the keys `0..visible` the row may see;
//!   bits 16..32 = `kv_len`, the keys streamed for it), then `d/macs` query beats;
//! - `wgt`: for each tile of up to `Bc` keys: the tile's key beats (key-major, `d/macs`
//!   beats per key), then its value beats in the same order;
//! - `res`: `d/macs` beats of int8 outputs; bit `8·macs` is set when the row had no
//!   visible key (its outputs are then 0 and must not be used).

use super::{get_field, put_field, sign_extend, words_for, Beat};
use crate::config::{AttentionConfig, AttentionMode};

/// Header field widths (the engine's key counters are 16 bits).
pub const HEADER_FIELD_BITS: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttentionStreamError {
    #[error("{what} has {got} elements, expected {expected} ({rows} × head_dim {head_dim})")]
    Shape {
        what: &'static str,
        got: usize,
        expected: usize,
        rows: usize,
        head_dim: usize,
    },
    #[error("row streams {kv_len} keys but the engine was built for at most {max} (attention.max_seq_len)")]
    TooLong { kv_len: usize, max: usize },
    #[error("row sees {visible} keys but only {kv_len} are streamed")]
    VisibleBeyondStream { visible: usize, kv_len: usize },
}

/// What one query row sees and what is streamed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSchedule {
    /// Position of the query in the sequence.
    pub position: usize,
    /// Keys `0..visible` are unmasked.
    pub visible: usize,
    /// Keys `0..kv_len` are streamed (tiles wholly beyond `visible` are not).
    pub kv_len: usize,
}

/// The rows of the configured workload: decode is the last position against all keys;
/// prefill is the last `queries` positions, causally masked if `causal`.
pub fn rows(cfg: &AttentionConfig) -> Vec<RowSchedule> {
    let w = &cfg.workload;
    let causal = cfg.attention.mode == AttentionMode::Prefill && cfg.attention.causal;
    schedule(
        w.seq_len - w.queries,
        w.queries,
        w.seq_len,
        causal,
        cfg.attention.tile,
    )
}

/// `rows` query rows at positions `first_position..` against a sequence of `seq_len`
/// keys: each row sees every key, or (causal) the keys up to its own position, and
/// streams the tiles of `tile` keys that hold what it sees.
pub fn schedule(
    first_position: usize,
    rows: usize,
    seq_len: usize,
    causal: bool,
    tile: usize,
) -> Vec<RowSchedule> {
    (first_position..first_position + rows)
        .map(|position| {
            if causal {
                let visible = position + 1;
                RowSchedule {
                    position,
                    visible,
                    kv_len: visible.next_multiple_of(tile).min(seq_len),
                }
            } else {
                RowSchedule {
                    position,
                    visible: seq_len,
                    kv_len: seq_len,
                }
            }
        })
        .collect()
}

/// The tiles of a row's key stream: `(first key, keys)`.
pub fn tiles(kv_len: usize, tile: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..kv_len)
        .step_by(tile.max(1))
        .map(move |start| (start, tile.min(kv_len - start)))
}

fn int8_beat(cfg: &AttentionConfig, lanes: &[i8]) -> Beat {
    let mut beat = vec![0u32; words_for(cfg.bus_bits())];
    for (i, &v) in lanes.iter().enumerate() {
        put_field(&mut beat, 8 * i, 8, u64::from(v as u8));
    }
    beat
}

/// One row's `act` and `wgt` beats. `keys` and `values` hold at least `kv_len` rows of
/// `head_dim` int8 (row-major); `query` holds `head_dim`.
pub fn pack_row(
    cfg: &AttentionConfig,
    row: &RowSchedule,
    query: &[i8],
    keys: &[i8],
    values: &[i8],
) -> Result<(Vec<Beat>, Vec<Beat>), AttentionStreamError> {
    let d = cfg.attention.head_dim;
    let macs = cfg.attention.macs;
    let max = cfg.attention.max_seq_len;
    if row.kv_len > max {
        return Err(AttentionStreamError::TooLong {
            kv_len: row.kv_len,
            max,
        });
    }
    if row.visible > row.kv_len {
        return Err(AttentionStreamError::VisibleBeyondStream {
            visible: row.visible,
            kv_len: row.kv_len,
        });
    }
    let shape = |what, got: usize, rows: usize| {
        if got == rows * d || (what != "query" && got >= rows * d && got.is_multiple_of(d)) {
            Ok(())
        } else {
            Err(AttentionStreamError::Shape {
                what,
                got,
                expected: rows * d,
                rows,
                head_dim: d,
            })
        }
    };
    shape("query", query.len(), 1)?;
    shape("keys", keys.len(), row.kv_len)?;
    shape("values", values.len(), row.kv_len)?;

    let mut header = vec![0u32; words_for(cfg.bus_bits())];
    put_field(&mut header, 0, HEADER_FIELD_BITS, row.visible as u64);
    put_field(
        &mut header,
        HEADER_FIELD_BITS,
        HEADER_FIELD_BITS,
        row.kv_len as u64,
    );
    let mut act = vec![header];
    act.extend(query.chunks(macs).map(|c| int8_beat(cfg, c)));
    let mut wgt = Vec::with_capacity(2 * row.kv_len * cfg.chunks());
    for (start, n) in tiles(row.kv_len, cfg.attention.tile) {
        for source in [keys, values] {
            let tile = &source[start * d..(start + n) * d];
            wgt.extend(tile.chunks(macs).map(|c| int8_beat(cfg, c)));
        }
    }
    Ok((act, wgt))
}

/// One row's output: `head_dim` int8 and whether the row had no visible key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowOutput {
    pub values: Vec<i8>,
    pub empty: bool,
}

/// Unpack one row's `d/macs` result beats.
pub fn unpack_row(cfg: &AttentionConfig, beats: &[Beat]) -> RowOutput {
    let macs = cfg.attention.macs;
    let mut values = Vec::with_capacity(cfg.attention.head_dim);
    let mut empty = false;
    for beat in beats {
        for i in 0..macs {
            values.push(sign_extend(get_field(beat, 8 * i, 8), 8) as i8);
        }
        empty |= get_field(beat, 8 * macs, 1) == 1;
    }
    RowOutput { values, empty }
}

/// Bits of a result beat: the outputs and the empty-row flag.
pub fn result_bits(cfg: &AttentionConfig) -> usize {
    cfg.bus_bits() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: &str, causal: bool, seq: usize, queries: usize) -> AttentionConfig {
        AttentionConfig::from_toml(
            &format!(
                "[attention]\nhead_dim = 8\nmacs = 4\ntile = 4\nmax_seq_len = 64\nmode = \"{mode}\"\ncausal = {causal}\n\
                 [attention.quant]\nscale_q = 0.05\nscale_k = 0.05\nscale_v = 0.02\nscale_out = 0.02\n\
                 [workload]\nseq_len = {seq}\nqueries = {queries}\n"
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn causal_rows_stream_only_tiles_they_can_see() {
        let rows = rows(&cfg("prefill", true, 10, 4));
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.position, r.visible, r.kv_len))
            .collect();
        assert_eq!(got, [(6, 7, 8), (7, 8, 8), (8, 9, 10), (9, 10, 10)]);
        let rows = super::rows(&cfg("decode", true, 10, 1));
        assert_eq!((rows[0].visible, rows[0].kv_len), (10, 10));
    }

    #[test]
    fn row_beats_follow_the_documented_layout() {
        let c = cfg("decode", false, 6, 1);
        let row = rows(&c)[0];
        let q: Vec<i8> = (0..8).collect();
        let k: Vec<i8> = (0..48).map(|i| i as i8).collect();
        let v: Vec<i8> = (0..48).map(|i| -(i as i8)).collect();
        let (act, wgt) = pack_row(&c, &row, &q, &k, &v).unwrap();
        assert_eq!(act.len(), 3);
        assert_eq!(get_field(&act[0], 0, 16), 6);
        assert_eq!(get_field(&act[0], 16, 16), 6);
        // tiles of 4 and 2 keys, 2 beats per vector: K0(8) V0(8) K1(4) V1(4)
        assert_eq!(wgt.len(), 24);
        assert_eq!(get_field(&wgt[8], 0, 8) as u8 as i8, 0); // V[0][0]
        assert_eq!(get_field(&wgt[9], 8, 8) as u8 as i8, -5); // V[0][5]
        assert_eq!(get_field(&wgt[16], 0, 8) as u8 as i8, 32); // K[4][0]
    }

    #[test]
    fn bad_rows_are_errors() {
        let c = cfg("decode", false, 6, 1);
        let mut row = rows(&c)[0];
        assert!(matches!(
            pack_row(&c, &row, &[0; 7], &[0; 48], &[0; 48]),
            Err(AttentionStreamError::Shape { what: "query", .. })
        ));
        assert!(pack_row(&c, &row, &[0; 8], &[0; 40], &[0; 48]).is_err());
        row.kv_len = 65;
        assert!(matches!(
            pack_row(&c, &row, &[0; 8], &[0; 520], &[0; 520]),
            Err(AttentionStreamError::TooLong { max: 64, .. })
        ));
    }
}
