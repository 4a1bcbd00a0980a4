//! The accelerator top: what a board carries, in the shape of a Vitis RTL kernel.
//! `ap_clk`, `ap_rst_n`, an AXI4-Lite slave `s_axi_control` with the register map of
//! [`regmap`], one AXI4 master `m_axi_gmem` (data width `top.bus_bits`) through which
//! the kernel reads activations and weights from memory (DDR on a board) and writes its
//! results, and an `interrupt` line. Inside: the read requester (INCR bursts of up to
//! `top.burst_beats`, never across 4 KiB, `top.reads_in_flight` bursts of buffer), a
//! gearbox that cuts bus words into the engine's beats, the matmul engine's
//! `tern_engine` wrapper, and a result writer (one burst per result beat).
//!
//! Memory layout ([`MemoryLayout`], `docs/top.md`): beats are 32-bit words, least
//! significant first (the `streams` layout). The weight beats lie back to back; each
//! token's activation beats likewise, one token every `activation_stride` bytes (a
//! whole number of bus words); each result beat starts a bus word, `result_beat_stride`
//! bytes per row block, one token every `result_stride` bytes. A run, per block of up
//! to `T_b` tokens: the block's activations, then every weight beat (read again for each
//! block); results land at their token's place whatever the block size.

pub mod attention;
pub mod package;
pub mod regmap;
mod verilog;

pub use attention::{KvCacheLayout, KvLayoutError};

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::config::{Config, DesignConfig};
use crate::emit::{generate_any, write_design, write_file, Design, EmitError};
use crate::streams::words_for;

pub const TOP_MODULE: &str = "tern_top";
pub const TOP_FILE: &str = "tern_top.v";
pub const REGMAP_MARKDOWN: &str = "regmap.md";
pub const REGMAP_JSON: &str = "regmap.json";

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error(transparent)]
    KvLayout(#[from] KvLayoutError),
}

/// Why a run's regions of memory cannot be used. The top refuses the same layouts
/// itself (ERROR bits `misaligned`, `out_of_range` and `overlap`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    #[error("{region} at 0x{start:x} is not aligned to the {bus_bytes}-byte bus")]
    Misaligned {
        region: &'static str,
        start: u64,
        bus_bytes: u64,
    },
    #[error("{region} [0x{start:x}, 0x{end:x}) ends beyond memory ({memory} bytes)")]
    OutOfRange {
        region: &'static str,
        start: u64,
        end: u64,
        memory: u64,
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

/// Where beats live in memory, and the bus the top reaches it through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryLayout {
    /// Bytes per bus word (`top.bus_bits / 8`): every region starts at a multiple.
    pub bus_bytes: usize,
    pub burst_beats: usize,
    pub reads_in_flight: usize,
    /// Bytes of memory the kernel addresses (`top.memory_mib`).
    pub memory_bytes: u64,
    pub activation_words: usize,
    pub weight_words: usize,
    pub result_words: usize,
    /// Activation beats per token.
    pub chunks: usize,
    /// Weight beats (the whole matrix, read once per token block).
    pub weight_beats: usize,
    /// Result beats per token.
    pub row_blocks: usize,
    /// Tokens per block: the weights are read once per block.
    pub token_block: usize,
}

impl MemoryLayout {
    pub fn of(cfg: &Config) -> MemoryLayout {
        let geo = &cfg.geometry;
        MemoryLayout {
            bus_bytes: cfg.top.bus_bytes(),
            burst_beats: cfg.top.burst_beats,
            reads_in_flight: cfg.top.reads_in_flight,
            memory_bytes: cfg.top.memory_bytes(),
            activation_words: words_for(geo.activation_beat_bits()),
            weight_words: words_for(geo.weight_beat_bits()),
            result_words: words_for(geo.result_beat_bits()),
            chunks: geo.chunks,
            weight_beats: geo.weight_beats_per_token(),
            row_blocks: geo.row_blocks,
            token_block: geo.token_block,
        }
    }
    /// Whether each weight beat is a whole number of bus words. Then the top collects
    /// bus words into a beat with no shifter; otherwise beats lie back to back and a
    /// gearbox cuts them out of the bus words (its word shifter grows with the beat).
    /// Padding beats to bus words instead would cost the same fraction of DDR bandwidth,
    /// which bounds decode, so it is never done.
    pub fn weights_aligned(&self) -> bool {
        self.weight_words.is_multiple_of(self.bus_bytes / 4)
    }
    /// Bytes of the packed weight matrix (beats back to back).
    pub fn weight_bytes(&self) -> usize {
        4 * self.weight_words * self.weight_beats
    }
    /// Bytes the top reads for the weights: whole bus words.
    pub fn weight_region_bytes(&self) -> usize {
        self.weight_bytes().next_multiple_of(self.bus_bytes)
    }
    /// Bytes of one token's activation beats.
    pub fn activation_bytes(&self) -> usize {
        4 * self.activation_words * self.chunks
    }
    /// Bytes from one token's activations to the next's.
    pub fn activation_stride(&self) -> usize {
        self.activation_bytes().next_multiple_of(self.bus_bytes)
    }
    /// Bytes from one result beat (row block) to the next.
    pub fn result_beat_stride(&self) -> usize {
        (4 * self.result_words).next_multiple_of(self.bus_bytes)
    }
    /// Bytes from one token's results to the next's.
    pub fn result_stride(&self) -> usize {
        self.row_blocks * self.result_beat_stride()
    }
    /// Bytes a run of `tokens` tokens reads from memory: activations once, the weights
    /// once per token block.
    pub fn bytes_read(&self, tokens: usize) -> u64 {
        let blocks = tokens.div_ceil(self.token_block) as u64;
        tokens as u64 * self.activation_stride() as u64 + blocks * self.weight_region_bytes() as u64
    }
    /// Bytes a run of `tokens` tokens writes.
    pub fn bytes_written(&self, tokens: usize) -> u64 {
        tokens as u64 * self.result_stride() as u64
    }

    /// Check a run's regions: the weights at `weights`, `tokens` tokens of activations at
    /// `activations` and of results at `results` must start on a bus word, end inside
    /// memory and not overlap one another.
    pub fn check_regions(
        &self,
        weights: u64,
        activations: u64,
        results: u64,
        tokens: u64,
    ) -> Result<(), RegionError> {
        check_spans(
            self.bus_bytes as u64,
            self.memory_bytes,
            &[
                ("weights", weights, self.weight_region_bytes() as u128),
                (
                    "activations",
                    activations,
                    u128::from(tokens) * self.activation_stride() as u128,
                ),
                (
                    "results",
                    results,
                    u128::from(tokens) * self.result_stride() as u128,
                ),
            ],
        )
    }
}

/// Regions `(name, start, bytes)` must start on a bus word, end inside `memory` bytes
/// and not overlap one another.
fn check_spans(
    bus_bytes: u64,
    memory: u64,
    spans: &[(&'static str, u64, u128)],
) -> Result<(), RegionError> {
    let clamp = |end: u128| u64::try_from(end).unwrap_or(u64::MAX);
    let end = |start: u64, bytes: u128| u128::from(start) + bytes;
    for &(region, start, bytes) in spans {
        if start % bus_bytes != 0 {
            return Err(RegionError::Misaligned {
                region,
                start,
                bus_bytes,
            });
        }
        if end(start, bytes) > u128::from(memory) {
            return Err(RegionError::OutOfRange {
                region,
                start,
                end: clamp(end(start, bytes)),
                memory,
            });
        }
    }
    for (i, &(a, a_start, a_bytes)) in spans.iter().enumerate() {
        for &(b, b_start, b_bytes) in &spans[i + 1..] {
            let (a_end, b_end) = (end(a_start, a_bytes), end(b_start, b_bytes));
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

/// The memory layout of a top: a matmul engine's or the attention engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "engine", rename_all = "kebab-case")]
pub enum TopLayout {
    Matmul(MemoryLayout),
    Attention(KvCacheLayout),
}

impl TopLayout {
    pub fn bus_bytes(&self) -> usize {
        match self {
            TopLayout::Matmul(l) => l.bus_bytes,
            TopLayout::Attention(l) => l.bus_bytes,
        }
    }
    pub fn burst_beats(&self) -> usize {
        match self {
            TopLayout::Matmul(l) => l.burst_beats,
            TopLayout::Attention(l) => l.burst_beats,
        }
    }
    pub fn memory_bytes(&self) -> u64 {
        match self {
            TopLayout::Matmul(l) => l.memory_bytes,
            TopLayout::Attention(l) => l.memory_bytes,
        }
    }
    pub fn matmul(&self) -> Option<&MemoryLayout> {
        match self {
            TopLayout::Matmul(l) => Some(l),
            TopLayout::Attention(_) => None,
        }
    }
    pub fn attention(&self) -> Option<&KvCacheLayout> {
        match self {
            TopLayout::Attention(l) => Some(l),
            TopLayout::Matmul(_) => None,
        }
    }
}

/// The generated top: the engine design plus `tern_top.v`.
#[derive(Debug, Clone)]
pub struct TopDesign {
    pub engine: Design,
    pub layout: TopLayout,
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
    generate_top_any(&DesignConfig::Matmul(cfg.clone()))
}

/// Generate the accelerator top around either engine.
pub fn generate_top_any(cfg: &DesignConfig) -> Result<TopDesign, TopError> {
    let layout = match cfg {
        DesignConfig::Matmul(c) => TopLayout::Matmul(MemoryLayout::of(c)),
        DesignConfig::Attention(c) => TopLayout::Attention(KvCacheLayout::of(c)?),
    };
    let engine = generate_any(cfg)?;
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

/// Write the engine's files, `tern_top.v`, the register map tables and the packaging
/// files (FuseSoC core, Vitis kernel.xml) into `dir`.
pub fn write_top(top: &TopDesign, dir: &Path) -> Result<Vec<PathBuf>, EmitError> {
    std::fs::create_dir_all(dir).map_err(|cause| EmitError::CreateDir {
        path: dir.display().to_string(),
        cause,
    })?;
    let mut written = vec![
        write_file(dir, TOP_FILE, &top.top_verilog)?,
        write_file(
            dir,
            REGMAP_MARKDOWN,
            &regmap::markdown(top.layout.attention().is_some()),
        )?,
        write_file(
            dir,
            REGMAP_JSON,
            &regmap::json(top.layout.attention().is_some()),
        )?,
        write_file(dir, package::CORE_FILE, &package::core_file(top))?,
        write_file(dir, package::KERNEL_XML, &package::kernel_xml(&top.layout))?,
    ];
    // The engine's manifest goes last: it marks a complete directory.
    written.extend(write_design(&top.engine, dir)?);
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TopConfig;

    fn cfg(m: usize, k: usize, bus_bits: usize) -> Config {
        crate::config::ConfigBuilder::tlmm(4, 4, 2)
            .workload(m, k, 4)
            .top(TopConfig {
                bus_bits,
                memory_mib: 1,
                ..TopConfig::default()
            })
            .build()
            .unwrap()
    }

    #[test]
    fn regions_are_whole_bus_words() {
        let l = MemoryLayout::of(&cfg(32, 64, 128));
        // 8 rows × 8 lanes (P=4, L=2) of 7-bit codes = 56 bits = 2 words per weight beat,
        // back to back, cut out of the 4-word bus words by the gearbox.
        assert_eq!(l.weight_words, 2);
        assert!(!l.weights_aligned());
        assert_eq!(l.activation_words, 2); // 8 int8 per chunk
        assert_eq!(l.result_words, 3); // 4 rows × 24 bits
        assert_eq!(l.weight_beats, 8 * 8);
        assert_eq!(l.weight_bytes(), 64 * 8);
        // 8 chunks × 8 bytes = 64 bytes: four 16-byte bus words, no padding.
        assert_eq!(l.activation_stride(), 64);
        // A 12-byte result beat takes one 16-byte bus word; 8 row blocks per token.
        assert_eq!(l.result_beat_stride(), 16);
        assert_eq!(l.result_stride(), 8 * 16);
        let wide = MemoryLayout::of(&cfg(32, 64, 512));
        assert_eq!(wide.result_beat_stride(), 64);
        assert_eq!(wide.activation_stride(), 64);
        // On a 64-bit bus a 2-word beat is one bus word: collected; same bytes either way.
        let narrow = MemoryLayout::of(&cfg(32, 64, 64));
        assert!(narrow.weights_aligned());
        assert_eq!(narrow.weight_bytes(), l.weight_bytes());
        let with = |weight_words, bus_bytes| MemoryLayout {
            weight_words,
            bus_bytes,
            ..l
        };
        assert!(with(32, 64).weights_aligned() && with(16, 32).weights_aligned());
        assert!(!with(15, 64).weights_aligned() && !with(30, 64).weights_aligned());
        // 7 tokens in blocks of 2: activations once, the weights 4 times.
        let blocks_of_2 = MemoryLayout {
            token_block: 2,
            ..l
        };
        assert_eq!(blocks_of_2.bytes_read(7), 7 * 64 + 4 * 512);
        assert_eq!(l.bytes_read(7), 7 * 64 + 7 * 512);
    }

    #[test]
    fn regions_must_be_aligned_inside_memory_and_apart() {
        let l = MemoryLayout::of(&cfg(32, 64, 128));
        let (w, a, r) = (
            l.weight_region_bytes() as u64,
            l.activation_stride() as u64,
            l.result_stride() as u64,
        );
        let memory = l.memory_bytes;
        // The host's own layout: weights, then activations, then results.
        assert_eq!(l.check_regions(0, w, w + 4 * a, 4), Ok(()));
        // Results ending exactly at the end of memory are fine, one bus word more is not.
        assert_eq!(l.check_regions(0, w, memory - 4 * r, 4), Ok(()));
        let err = l.check_regions(0, w, memory - 4 * r + 16, 4).unwrap_err();
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
        // Half a bus word off.
        let err = l.check_regions(0, w + 8, w + 8 * a, 4).unwrap_err();
        assert!(
            matches!(
                err,
                RegionError::Misaligned {
                    region: "activations",
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
        for (weights, activations, results, tokens, a_name, b_name) in [
            (0, w, w - 16, 1, "weights", "results"),
            (0, w, w + a, 2, "activations", "results"),
            (16, 0, w + 8 * a, 1, "weights", "activations"),
        ] {
            let err = l
                .check_regions(weights, activations, results, tokens)
                .unwrap_err();
            assert!(
                matches!(err, RegionError::Overlap { a, b, .. } if a == a_name && b == b_name),
                "{err}"
            );
        }
        // Touching regions do not overlap.
        assert_eq!(l.check_regions(r, r + w, 0, 1), Ok(()));
    }
}
