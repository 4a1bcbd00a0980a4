//! The attention engine's memory layout on the shared top (`docs/top.md`, "Attention").
//!
//! The same shell carries it: the `act` stream reads the queries (`ACTIVATIONS`), the
//! `wgt` stream the KV cache (`WEIGHTS`), `TOKENS` counts query rows. The top makes
//! each row's header beat itself from `SEQ_LEN`, `FIRST_POSITION` and `CAUSAL`, and
//! walks the KV cache row by row, reading only the tiles the row sees.
//!
//! Rows run in blocks of `attention.query_block`: the walk reads the tiles of each
//! block's last row once, and the engine replays them for the block's other rows.
//!
//! The KV cache is tile-major: tile `t` holds the keys `t·Bc..(t+1)·Bc` (`Bc·d` bytes)
//! and then their values (`Bc·d` bytes), so a row's stream is one read of its whole
//! tiles and, if its last tile is partial, a read of that tile's keys and one of its
//! values. Appending a token writes `d` bytes of key and `d` of value.

use serde::Serialize;

use super::{check_spans, RegionError};
use crate::program::KvCacheFormat;
use crate::streams::attention::{result_bits, streamed_keys, RowSchedule};
use crate::streams::words_for;
use crate::AttentionConfig;

/// Why an attention config cannot be carried by the top.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvLayoutError {
    #[error("attention.tile = {0} is not a power of two (the top walks the KV cache by shifting)")]
    TileNotPowerOfTwo(usize),
    #[error(
        "attention.head_dim = {head_dim} bytes per key is not a multiple of the {bus_bytes}-byte bus \
         (top.bus_bits): a key would share a bus word with the next"
    )]
    HeadDimNotBusWords { head_dim: usize, bus_bytes: usize },
}

/// Where queries, KV cache and results live, and the bus the top reaches them through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KvCacheLayout {
    pub bus_bytes: usize,
    pub burst_beats: usize,
    pub reads_in_flight: usize,
    pub memory_bytes: u64,
    pub head_dim: usize,
    /// Keys per tile (`Bc`).
    pub tile: usize,
    pub max_seq_len: usize,
    /// 32-bit words of a query, key or value beat (`8·macs` bits).
    pub beat_words: usize,
    /// 32-bit words of a result beat (`8·macs` outputs and the empty flag).
    pub result_words: usize,
    /// Beats per vector (`d/macs`).
    pub chunks: usize,
    /// Query rows per pass over the KV tiles (`attention.query_block`).
    pub query_block: usize,
}

impl KvCacheLayout {
    pub fn of(cfg: &AttentionConfig) -> Result<KvCacheLayout, KvLayoutError> {
        let a = &cfg.attention;
        let bus_bytes = cfg.top.bus_bytes();
        if !a.tile.is_power_of_two() {
            return Err(KvLayoutError::TileNotPowerOfTwo(a.tile));
        }
        if !a.head_dim.is_multiple_of(bus_bytes) {
            return Err(KvLayoutError::HeadDimNotBusWords {
                head_dim: a.head_dim,
                bus_bytes,
            });
        }
        Ok(KvCacheLayout {
            bus_bytes,
            burst_beats: cfg.top.burst_beats,
            reads_in_flight: cfg.top.reads_in_flight,
            memory_bytes: cfg.top.memory_bytes(),
            head_dim: a.head_dim,
            tile: a.tile,
            max_seq_len: a.max_seq_len,
            beat_words: words_for(cfg.bus_bits()),
            result_words: words_for(result_bits(cfg)),
            chunks: cfg.chunks(),
            query_block: a.query_block,
        })
    }
    /// The cache's byte layout: the program's, so the one top's attention unit reads
    /// the same caches.
    pub fn cache(&self) -> KvCacheFormat {
        KvCacheFormat {
            tile: self.tile,
            head_dim: self.head_dim,
        }
    }
    /// Bytes of one tile: `Bc` keys, then their `Bc` values.
    pub fn tile_bytes(&self) -> usize {
        self.cache().tile_bytes() as usize
    }
    /// Bytes of a KV cache that holds `seq_len` tokens (whole tiles).
    pub fn cache_bytes(&self, seq_len: usize) -> u64 {
        self.cache().bytes(seq_len)
    }
    /// Offset of key `i` from the cache's start.
    pub fn key_offset(&self, i: usize) -> u64 {
        self.cache().key_offset(i)
    }
    /// Offset of value `i` from the cache's start.
    pub fn value_offset(&self, i: usize) -> u64 {
        self.cache().value_offset(i)
    }
    /// Bytes from one query to the next (a query is whole bus words).
    pub fn query_stride(&self) -> usize {
        self.head_dim
    }
    /// Bytes from one result beat to the next: each starts a bus word.
    pub fn result_beat_stride(&self) -> usize {
        (4 * self.result_words).next_multiple_of(self.bus_bytes)
    }
    /// Bytes from one row's results to the next's.
    pub fn result_stride(&self) -> usize {
        self.chunks * self.result_beat_stride()
    }
    /// Bytes a run of these rows reads: each query once, and the keys and values of
    /// each block's longest row.
    pub fn bytes_read(&self, rows: &[RowSchedule]) -> u64 {
        let keys = streamed_keys(rows, self.query_block);
        (rows.len() * self.head_dim + 2 * keys * self.head_dim) as u64
    }
    /// Bytes a run of `rows` rows writes.
    pub fn bytes_written(&self, rows: usize) -> u64 {
        (rows * self.result_stride()) as u64
    }

    /// Check a run's regions: a KV cache of `seq_len` tokens at `cache`, `rows` queries
    /// at `queries` and their results at `results` must start on a bus word, end inside
    /// memory and not overlap one another.
    pub fn check_regions(
        &self,
        cache: u64,
        seq_len: u64,
        queries: u64,
        results: u64,
        rows: u64,
    ) -> Result<(), RegionError> {
        let tiles = u128::from(seq_len.div_ceil(self.tile as u64));
        check_spans(
            self.bus_bytes as u64,
            self.memory_bytes,
            &[
                ("KV cache", cache, tiles * self.tile_bytes() as u128),
                (
                    "queries",
                    queries,
                    u128::from(rows) * self.query_stride() as u128,
                ),
                (
                    "results",
                    results,
                    u128::from(rows) * self.result_stride() as u128,
                ),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopConfig;

    fn cfg(head_dim: usize, tile: usize, bus_bits: usize) -> AttentionConfig {
        let mut c = AttentionConfig::from_toml(
            &format!(
                "[attention]\nhead_dim = {head_dim}\nmacs = 16\ntile = {tile}\nmax_seq_len = 256\nmode = \"decode\"\n\
                 [attention.quant]\nscale_q = 0.05\nscale_k = 0.05\nscale_v = 0.02\nscale_out = 0.02\n\
                 [workload]\nseq_len = 40\nqueries = 1\n"
            ),
            "test",
        )
        .unwrap();
        c.top = TopConfig {
            bus_bits,
            memory_mib: 1,
            ..TopConfig::default()
        };
        c
    }

    #[test]
    fn the_cache_is_the_programs_and_results_take_whole_bus_words() {
        let l = KvCacheLayout::of(&cfg(64, 16, 256)).unwrap();
        assert_eq!(
            l.cache(),
            KvCacheFormat {
                tile: 16,
                head_dim: 64
            }
        );
        assert_eq!(l.tile_bytes(), 2 * 16 * 64);
        // A 129-bit result beat takes a 32-byte bus word; 4 beats per row.
        assert_eq!((l.result_words, l.result_beat_stride()), (5, 32));
        assert_eq!(l.result_stride(), 4 * 32);
    }

    #[test]
    fn shapes_the_top_cannot_walk_are_named() {
        assert_eq!(
            KvCacheLayout::of(&cfg(64, 24, 256)),
            Err(KvLayoutError::TileNotPowerOfTwo(24))
        );
        let err = KvCacheLayout::of(&cfg(48, 16, 256)).unwrap_err();
        assert!(err.to_string().contains("head_dim = 48"), "{err}");
    }

    #[test]
    fn regions_are_checked_like_the_matmul_tops() {
        let l = KvCacheLayout::of(&cfg(64, 16, 256)).unwrap();
        let cache = l.cache_bytes(40);
        assert_eq!(l.check_regions(0, 40, cache, cache + 4096, 3), Ok(()));
        let err = l
            .check_regions(0, 40, cache - 32, cache + 4096, 1)
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Overlap {
                    a: "KV cache",
                    b: "queries",
                    ..
                }
            ),
            "{err}"
        );
        let err = l
            .check_regions(0, 40, cache + 16, cache + 4096, 1)
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Misaligned {
                    region: "queries",
                    ..
                }
            ),
            "{err}"
        );
        let err = l
            .check_regions(0, 40, cache, l.memory_bytes - 32, 1)
            .unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::OutOfRange {
                    region: "results",
                    ..
                }
            ),
            "{err}"
        );
    }
}
