//! The accelerator top: what a board carries. A register file in the Vitis kernel
//! convention ([`regmap`]), an on-card memory for weights, activations and results, a
//! controller that streams beats from card memory into the matmul engine and writes
//! its result beats back, and the engine itself (the `tern_engine` wrapper).
//!
//! Ports of `tern_top` (all synchronous to `clk`):
//! - register bus: `reg_addr`, `reg_wdata`, `reg_write`, `reg_read` strobes; `reg_rdata`
//!   is valid the clock after `reg_read` (a read of CONTROL clears ap_done/ap_ready);
//! - host memory port: `mem_addr` (word address), `mem_wdata`, `mem_write`, `mem_read`;
//!   `mem_rdata` the clock after `mem_read`. Card memory belongs to the host only while
//!   ap_idle is 1; while a run is in progress the controller owns it and host accesses
//!   are ignored (the host checks ap_idle first);
//! - `irq`: GIE and any enabled pending status bit.
//!
//! Card memory is 32-bit words. A beat of B bits occupies ceil(B/32) consecutive words,
//! least significant word first (the layout of `streams`). A run, per block of up to
//! `T_b` tokens: the activation beats of the block's tokens (`act_last` on the last),
//! then every weight beat (read again for each block); each result beat is written at
//! its token's place, so results lie token after token whatever the block size.

pub mod regmap;
mod verilog;

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::config::{ceil_log2, Config};
use crate::emit::{generate, write_design, write_file, Design, EmitError};
use crate::streams::words_for;

pub const TOP_MODULE: &str = "tern_top";
pub const TOP_FILE: &str = "tern_top.v";
pub const REGMAP_MARKDOWN: &str = "regmap.md";
pub const REGMAP_JSON: &str = "regmap.json";
/// Largest card memory generated (words): 4 MiB, a few hundred BRAM36 blocks.
pub const MAX_CARD_WORDS: usize = 1 << 20;
/// Smallest card memory generated (words): 4 KiB.
pub const MIN_CARD_WORDS: usize = 1 << 10;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error("card memory for {what} would need {words} words ({kib} KiB), more than the {max} KiB a top may have; reduce workload.tokens or the matrix size")]
    TooLarge {
        what: String,
        words: usize,
        kib: usize,
        max: usize,
    },
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// Why a run's regions of card memory cannot be used. The top refuses the same layouts
/// (ERROR bits `out_of_range` and `overlap`), with its own logic in `tern_top.v`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("{region} [0x{start:x}, 0x{end:x}) ends beyond card memory ({card} bytes)")]
    OutOfRange {
        region: &'static str,
        start: u64,
        end: u64,
        card: u64,
    },
    #[error("{a} [0x{a_start:x}, 0x{a_end:x}) and {b} [0x{b_start:x}, 0x{b_end:x}) overlap")]
    Overlap {
        a: &'static str,
        a_start: u64,
        a_end: u64,
        b: &'static str,
        b_start: u64,
        b_end: u64,
    },
}

/// Where beats live in card memory, in 32-bit words per beat and beats per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CardLayout {
    /// Card memory size in 32-bit words (a power of two).
    pub card_words: usize,
    pub activation_words: usize,
    pub weight_words: usize,
    pub result_words: usize,
    /// Activation beats per token.
    pub chunks: usize,
    /// Weight beats (the whole matrix, read once per token block).
    pub weight_beats: usize,
    /// Result beats per token.
    pub row_blocks: usize,
    /// Tokens the card was sized for (the config's `workload.tokens`).
    pub tokens: usize,
    /// Tokens per block: the weights are read once per block.
    pub token_block: usize,
}

impl CardLayout {
    pub fn of(cfg: &Config) -> Result<CardLayout, TopError> {
        let geo = &cfg.geometry;
        let mut l = CardLayout {
            card_words: 0,
            activation_words: words_for(geo.activation_beat_bits()),
            weight_words: words_for(geo.weight_beat_bits()),
            result_words: words_for(geo.result_beat_bits()),
            chunks: geo.chunks,
            weight_beats: geo.weight_beats_per_token(),
            row_blocks: geo.row_blocks,
            tokens: cfg.workload.tokens,
            token_block: geo.token_block,
        };
        let need = l.weight_bytes() + l.tokens * (l.activation_bytes() + l.result_bytes());
        let words = (need / 4).next_power_of_two().max(MIN_CARD_WORDS);
        if words > MAX_CARD_WORDS {
            return Err(TopError::TooLarge {
                what: format!(
                    "{} tokens of a {}x{} matrix",
                    l.tokens, cfg.workload.m, cfg.workload.k
                ),
                words,
                kib: words / 256,
                max: MAX_CARD_WORDS / 256,
            });
        }
        l.card_words = words;
        Ok(l)
    }
    pub fn card_bytes(&self) -> usize {
        4 * self.card_words
    }
    pub fn address_bits(&self) -> usize {
        ceil_log2(self.card_words)
    }
    /// Bytes of the packed weight matrix.
    pub fn weight_bytes(&self) -> usize {
        4 * self.weight_words * self.weight_beats
    }
    /// Bytes of one token's activations.
    pub fn activation_bytes(&self) -> usize {
        4 * self.activation_words * self.chunks
    }
    /// Bytes of one token's results.
    pub fn result_bytes(&self) -> usize {
        4 * self.result_words * self.row_blocks
    }

    /// Check a run's regions: the weights at `weights`, `tokens` tokens of activations at
    /// `activations` and of results at `results` must each end inside card memory and
    /// must not overlap one another.
    pub fn check_regions(
        &self,
        weights: u64,
        activations: u64,
        results: u64,
        tokens: u64,
    ) -> Result<(), RegionError> {
        let card = self.card_bytes() as u64;
        let span = |start: u64, bytes: u128| (start, u128::from(start) + bytes);
        let regions = [
            ("weights", span(weights, self.weight_bytes() as u128)),
            (
                "activations",
                span(
                    activations,
                    u128::from(tokens) * self.activation_bytes() as u128,
                ),
            ),
            (
                "results",
                span(results, u128::from(tokens) * self.result_bytes() as u128),
            ),
        ];
        let clamp = |end: u128| u64::try_from(end).unwrap_or(u64::MAX);
        for &(region, (start, end)) in &regions {
            if end > u128::from(card) {
                return Err(RegionError::OutOfRange {
                    region,
                    start,
                    end: clamp(end),
                    card,
                });
            }
        }
        for (i, &(a, (a_start, a_end))) in regions.iter().enumerate() {
            for &(b, (b_start, b_end)) in &regions[i + 1..] {
                if u128::from(a_start) < b_end && u128::from(b_start) < a_end {
                    return Err(RegionError::Overlap {
                        a,
                        a_start,
                        a_end: clamp(a_end),
                        b,
                        b_start,
                        b_end: clamp(b_end),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The generated top: the engine design plus `tern_top.v`.
#[derive(Debug, Clone)]
pub struct TopDesign {
    pub engine: Design,
    pub layout: CardLayout,
    pub top_verilog: String,
    /// SHA-256 over the engine's content hash and the top's Verilog.
    pub content_hash: String,
}

impl TopDesign {
    pub fn short_hash(&self) -> &str {
        &self.content_hash[..16]
    }
    /// What `DESIGN_ID` reads: the first 32 bits of the engine's content hash.
    pub fn design_id(&self) -> u32 {
        design_id(&self.engine)
    }
    /// Verilog sources in dependency order (the waiver file is not a source).
    pub fn sources() -> [&'static str; 3] {
        [
            crate::emit::DESIGN_FILE,
            crate::emit::WRAPPER_FILE,
            TOP_FILE,
        ]
    }
}

pub fn design_id(engine: &Design) -> u32 {
    u32::from_str_radix(&engine.manifest.content_hash[..8], 16).expect("content hash is hex")
}

/// Generate the accelerator top around a matmul engine.
pub fn generate_top(cfg: &Config) -> Result<TopDesign, TopError> {
    let layout = CardLayout::of(cfg)?;
    let engine = generate(cfg)?;
    let top_verilog = verilog::top(&layout, &engine, design_id(&engine));
    let content_hash = top_content_hash(&engine, &top_verilog);
    Ok(TopDesign {
        engine,
        layout,
        top_verilog,
        content_hash,
    })
}

/// SHA-256 over the engine's content hash and the top's Verilog: the top's cache key.
pub fn top_content_hash(engine: &Design, top_verilog: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(engine.manifest.content_hash.as_bytes());
    hasher.update(top_verilog.as_bytes());
    hex::encode(hasher.finalize())
}

/// Write the engine's files, `tern_top.v` and the register map tables into `dir`.
pub fn write_top(top: &TopDesign, dir: &Path) -> Result<Vec<PathBuf>, EmitError> {
    std::fs::create_dir_all(dir).map_err(|cause| EmitError::CreateDir {
        path: dir.display().to_string(),
        cause,
    })?;
    let mut written = vec![
        write_file(dir, TOP_FILE, &top.top_verilog)?,
        write_file(dir, REGMAP_MARKDOWN, &regmap::markdown())?,
        write_file(dir, REGMAP_JSON, &regmap::json())?,
    ];
    // The engine's manifest goes last: it marks a complete directory.
    written.extend(write_design(&top.engine, dir)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(m: usize, k: usize, tokens: usize) -> Config {
        crate::config::ConfigBuilder::tlmm(4, 4, 2)
            .workload(m, k, tokens)
            .build()
            .unwrap()
    }

    #[test]
    fn card_memory_holds_weights_and_every_tokens_beats() {
        let c = cfg(32, 64, 4);
        let l = CardLayout::of(&c).unwrap();
        // 8 rows × 8 lanes (P=4, L=2) of 7-bit codes = 56 bits = 2 words per weight beat.
        assert_eq!(l.weight_words, 2);
        assert_eq!(l.activation_words, 2); // 8 int8 per chunk
        assert_eq!(l.result_words, 3); // 4 rows × 24 bits
        assert_eq!(l.weight_beats, 8 * 8);
        let need = l.weight_bytes() + 4 * (l.activation_bytes() + l.result_bytes());
        assert!(l.card_bytes() >= need && l.card_words.is_power_of_two());
    }

    #[test]
    fn regions_must_end_inside_the_card_and_not_overlap() {
        let l = CardLayout::of(&cfg(32, 64, 4)).unwrap();
        let (w, a, r) = (
            l.weight_bytes() as u64,
            l.activation_bytes() as u64,
            l.result_bytes() as u64,
        );
        let card = l.card_bytes() as u64;
        // The host's own layout: weights, then activations, then results.
        assert_eq!(l.check_regions(0, w, w + 4 * a, 4), Ok(()));
        // Results ending exactly at the end of the card are fine, one word more is not.
        assert_eq!(l.check_regions(0, w, card - 4 * r, 4), Ok(()));
        let err = l.check_regions(0, w, card - 4 * r + 4, 4).unwrap_err();
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
        // The case: results starting one word before the end, 4 tokens.
        let err = l.check_regions(0, w, card - 4, 4).unwrap_err();
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
        // A huge token count cannot wrap around.
        let err = l
            .check_regions(0, w, w + a, u64::from(u32::MAX))
            .unwrap_err();
        assert!(matches!(err, RegionError::OutOfRange { .. }), "{err}");
        // Results over the last weight word; activations over the results; activations
        // over the weights.
        let err = l.check_regions(0, w, w - 4, 1).unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Overlap {
                    a: "weights",
                    b: "results",
                    ..
                }
            ),
            "{err}"
        );
        let err = l.check_regions(0, w, w + a, 2).unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Overlap {
                    a: "activations",
                    b: "results",
                    ..
                }
            ),
            "{err}"
        );
        let err = l.check_regions(4, 0, w + 8 * a, 1).unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Overlap {
                    a: "weights",
                    b: "activations",
                    ..
                }
            ),
            "{err}"
        );
        // Touching regions do not overlap.
        assert_eq!(l.check_regions(r, r + w, 0, 1), Ok(()));
    }

    #[test]
    fn an_oversized_card_is_refused_with_the_reason() {
        let err = CardLayout::of(&cfg(4096, 4096, 1)).unwrap_err().to_string();
        assert!(err.contains("4096x4096"), "{err}");
        assert!(err.contains("KiB"), "{err}");
    }
}
