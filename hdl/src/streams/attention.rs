//! Beat formats of the attention engine, on the same three-stream shell as the matmul
//! engines (`act` = per-row operand, `wgt` = streamed operand, `res` = results). Every
//! beat is `8·macs` data bits (int8 lane `i` at bit `8·i`); result beats add one flag.
//!
//! Rows come in blocks of up to `attention.query_block` rows (one row each when it is
//! 1). Per block, in this order:
//! - `act`, per row of the block: a header beat (bits 0..16 = `visible`, the keys
//!   `0..visible` the row may see; bits 16..31 = `kv_len`, the keys streamed for it;
//!   bit 31 set on the block's last row), then `d/macs` query beats;
//! - `wgt`, once for the block: for each tile of up to `Bc` keys of the block's longest
//!   row (`max kv_len`): the tile's key beats (key-major, `d/macs` beats per key), then
//!   its value beats in the same order;
//! - `res`, per row in order: `d/macs` beats of int8 outputs; bit `8·macs` is set when
//!   the row had no visible key (its outputs are then 0 and must not be used).
//!
//! A block also ends after `query_block` rows whatever bit 31 says.

use super::{get_field, put_field, sign_extend, words_for, Beat};
use crate::config::{AttentionConfig, AttentionMode};

/// Header fields: `visible` at bit 0 (16 bits), `kv_len` at bit 16 (15 bits: at most
/// `MAX_SEQ_LEN` = 2^14), the block's-last-row flag at bit 31.
pub const HEADER_FIELD_BITS: usize = 16;
pub const HEADER_KV_LEN_BITS: usize = 15;
pub const HEADER_LAST_BIT: usize = 31;

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

/// One block's `act` and `wgt` beats: `rows` with their `queries` (`head_dim` int8
/// each, row-major). `keys` and `values` hold at least the block's longest `kv_len`
/// rows of `head_dim` int8 (row-major).
pub fn pack_block(
    cfg: &AttentionConfig,
    rows: &[RowSchedule],
    queries: &[i8],
    keys: &[i8],
    values: &[i8],
) -> Result<(Vec<Beat>, Vec<Beat>), AttentionStreamError> {
    let d = cfg.attention.head_dim;
    let macs = cfg.attention.macs;
    let max = cfg.attention.max_seq_len;
    assert!(
        !rows.is_empty() && rows.len() <= cfg.attention.query_block,
        "a block holds 1..=query_block rows"
    );
    for row in rows {
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
    }
    let kv_len = rows.iter().map(|r| r.kv_len).max().unwrap_or(0);
    let shape = |what, got: usize, n: usize| {
        if got == n * d || (what != "query" && got >= n * d && got.is_multiple_of(d)) {
            Ok(())
        } else {
            Err(AttentionStreamError::Shape {
                what,
                got,
                expected: n * d,
                rows: n,
                head_dim: d,
            })
        }
    };
    shape("query", queries.len(), rows.len())?;
    shape("keys", keys.len(), kv_len)?;
    shape("values", values.len(), kv_len)?;

    let mut act = Vec::with_capacity(rows.len() * (1 + cfg.chunks()));
    for (i, (row, query)) in rows.iter().zip(queries.chunks(d)).enumerate() {
        let mut header = vec![0u32; words_for(cfg.bus_bits())];
        put_field(&mut header, 0, HEADER_FIELD_BITS, row.visible as u64);
        put_field(
            &mut header,
            HEADER_FIELD_BITS,
            HEADER_KV_LEN_BITS,
            row.kv_len as u64,
        );
        put_field(
            &mut header,
            HEADER_LAST_BIT,
            1,
            u64::from(i + 1 == rows.len()),
        );
        act.push(header);
        act.extend(query.chunks(macs).map(|c| int8_beat(cfg, c)));
    }
    let mut wgt = Vec::with_capacity(2 * kv_len * cfg.chunks());
    for (start, n) in tiles(kv_len, cfg.attention.tile) {
        for source in [keys, values] {
            let tile = &source[start * d..(start + n) * d];
            wgt.extend(tile.chunks(macs).map(|c| int8_beat(cfg, c)));
        }
    }
    Ok((act, wgt))
}

/// Keys streamed for a run of `rows` in blocks of `query_block`: each block's longest.
pub fn streamed_keys(rows: &[RowSchedule], query_block: usize) -> usize {
    rows.chunks(query_block.max(1))
        .map(|b| b.iter().map(|r| r.kv_len).max().unwrap_or(0))
        .sum()
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
        let (act, wgt) = pack_block(&c, std::slice::from_ref(&row), &q, &k, &v).unwrap();
        assert_eq!(act.len(), 3);
        assert_eq!(get_field(&act[0], 0, 16), 6);
        assert_eq!(get_field(&act[0], 16, 15), 6);
        assert_eq!(
            get_field(&act[0], 31, 1),
            1,
            "a row alone is its block's last"
        );
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
            pack_block(&c, std::slice::from_ref(&row), &[0; 7], &[0; 48], &[0; 48]),
            Err(AttentionStreamError::Shape { what: "query", .. })
        ));
        assert!(pack_block(&c, std::slice::from_ref(&row), &[0; 8], &[0; 40], &[0; 48]).is_err());
        row.kv_len = 65;
        assert!(matches!(
            pack_block(
                &c,
                std::slice::from_ref(&row),
                &[0; 8],
                &[0; 520],
                &[0; 520]
            ),
            Err(AttentionStreamError::TooLong { max: 64, .. })
        ));
    }
}
