//! The accelerator's program (docs/program.md): what the host writes into memory once per
//! model so that a token needs one start. A header, then a list of fixed-size commands
//! the sequencer runs in order for every pass (one decoded token, or a prompt), over
//! vectors in a scratch region. Also the number formats the host converts a checkpoint
//! into ([`Scale`], [`Gain`], [`Int8Head`], docs/vector.md).
//!
//! Everything here is a format: how bytes are laid out and what the host checks before
//! a start. What the commands compute is the vector unit's arithmetic (the golden model
//! in `tern-sim`, and the RTL).

/// `TERNPROG`, the header's first eight bytes.
pub const MAGIC: [u8; 8] = *b"TERNPROG";
pub const VERSION: u32 = 2;
pub const HEADER_BYTES: usize = 128;
pub const COMMAND_BYTES: usize = 64;
/// Every region and vector row starts on this many bytes.
pub const ALIGN: u64 = 16;
/// The program (its header) starts on this many bytes, and the command list on
/// [`COMMANDS_ALIGN`]: the sequencer reads each as one burst, and a burst on one of them
/// never crosses a 4 KiB boundary (AXI).
pub const PROGRAM_ALIGN: u64 = HEADER_BYTES as u64;
pub const COMMANDS_ALIGN: u64 = COMMAND_BYTES as u64;
/// Bytes of one layer's [`AttentionRecord`]; the records start on this many bytes, so
/// each is one burst.
pub const ATTENTION_RECORD_BYTES: usize = 32;

// ---- number formats --------------------------------------------------------------

/// A positive real `m · 2^e` with a 24-bit mantissa (`2^23 ≤ m < 2^24`), or zero (`m = 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub m: u32,
    pub e: i32,
}

/// Why a value cannot be a [`Scale`].
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{0} is not a finite non-negative number a scale can hold")]
pub struct ScaleError(pub f64);

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

impl Scale {
    pub const ZERO: Scale = Scale { m: 0, e: 0 };

    /// The nearest scale (mantissa rounded half to even).
    pub fn of(x: f64) -> Result<Scale, ScaleError> {
        if !(x.is_finite() && x >= 0.0) {
            return Err(ScaleError(x));
        }
        if x == 0.0 {
            return Ok(Scale::ZERO);
        }
        let mut e = x.log2().floor() as i32 - 23;
        // log2 may land one off next to a power of two: settle it exactly.
        while x / pow2(e) >= (1u64 << 24) as f64 {
            e += 1;
        }
        while x / pow2(e) < (1u64 << 23) as f64 {
            e -= 1;
        }
        let mut m = (x / pow2(e)).round_ties_even() as u64;
        if m == 1 << 24 {
            m = 1 << 23;
            e += 1;
        }
        Ok(Scale { m: m as u32, e })
    }

    pub fn value(self) -> f64 {
        f64::from(self.m) * pow2(self.e)
    }

    pub fn is_valid(self) -> bool {
        self.m == 0 || (1 << 23..1 << 24).contains(&self.m)
    }
}

/// The bf16 nearest to `v` (rounded half to even; `v` finite): how embeddings lie in
/// memory.
pub fn bf16_bits(v: f32) -> u16 {
    let bits = v.to_bits();
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

pub fn bf16_value(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// A norm's gains: `g · 2^frac` rounded half to even, `frac` the largest in 0..=15 that
/// keeps every gain inside `i16`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gain {
    pub g: Vec<i16>,
    pub frac: i32,
}

impl Gain {
    pub fn of(gains: &[f32]) -> Gain {
        let fits = |frac: i32| {
            gains
                .iter()
                .all(|&g| (f64::from(g) * pow2(frac)).round_ties_even().abs() <= 32767.0)
        };
        let frac = (0..=15).rev().find(|&f| fits(f)).unwrap_or(0);
        let g = gains
            .iter()
            .map(|&g| {
                (f64::from(g) * pow2(frac))
                    .round_ties_even()
                    .clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        Gain { g, frac }
    }

    /// In memory: `frac` as an `i32`, 12 bytes of zeros, then the gains (docs/program.md).
    pub fn bytes(&self) -> Vec<u8> {
        let mut b = self.frac.to_le_bytes().to_vec();
        b.resize(16, 0);
        b.extend(self.g.iter().flat_map(|g| g.to_le_bytes()));
        b
    }
}

/// The LM head in int8: each row's weights over its own scale (`max|w| / 127`), the
/// scales as 16-bit mantissas with one exponent for the whole head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int8Head {
    pub rows: usize,
    pub width: usize,
    pub w: Vec<i8>,
    pub row_m: Vec<u16>,
    pub exp: i32,
}

impl Int8Head {
    pub fn of(head: &[f32], rows: usize, width: usize) -> Int8Head {
        let (w, row_m, exp) = quantise_groups(head, width, 127.0);
        Int8Head {
            rows,
            width,
            w,
            row_m,
            exp,
        }
    }
}

/// Weights in groups of `group` (a row is a group for a per-row scale), each over its
/// own scale `max|w| / levels`; the scales as 16-bit mantissas sharing the exponent
/// that fits the largest; weights rounded half to even and clamped to ±levels.
fn quantise_groups(head: &[f32], group: usize, levels: f64) -> (Vec<i8>, Vec<u16>, i32) {
    let amax: Vec<f64> = head
        .chunks(group)
        .map(|g| g.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs())))
        .collect();
    let top = amax.iter().fold(0f64, |m, &x| m.max(x)) / levels;
    let mut exp = if top > 0.0 {
        (top / 65535.0).log2().ceil() as i32
    } else {
        0
    };
    while top / pow2(exp) > 65535.0 {
        exp += 1;
    }
    let m: Vec<u16> = amax
        .iter()
        .map(|&a| (a / levels / pow2(exp)).round_ties_even().min(65535.0) as u16)
        .collect();
    let w = head
        .chunks(group)
        .zip(&m)
        .flat_map(|(g, &m)| {
            let s = f64::from(m) * pow2(exp);
            g.iter().map(move |&x| {
                if m == 0 {
                    0
                } else {
                    (f64::from(x) / s).round_ties_even().clamp(-levels, levels) as i8
                }
            })
        })
        .collect();
    (w, m, exp)
}

/// Fractional bits of RoPE's cos/sin table.
pub const ROPE_FRAC: i32 = 14;

/// RoPE's table for positions `0..positions`: per position, `d/2` pairs
/// `(cos, sin)(p · θ^(-2i/d))` in Q1.14, rounded half to even (the host computes it in f64).
pub fn rope_table(head_dim: usize, positions: usize, theta: f64) -> Vec<(i16, i16)> {
    let half = head_dim / 2;
    let q = |x: f64| (x * pow2(ROPE_FRAC)).round_ties_even() as i16;
    (0..positions)
        .flat_map(|p| {
            (0..half).map(move |i| {
                let freq = theta.powf(-2.0 * i as f64 / head_dim as f64);
                let (sin, cos) = (p as f64 * freq).sin_cos();
                (q(cos), q(sin))
            })
        })
        .collect()
}

/// The LM head in 4 bits: each group of `group` weights of a row over its own scale
/// (`max|w| / 7`), weights in −7..=7, the scales as 16-bit mantissas with one exponent
/// for the whole head (for a large vocabulary: 2B4T's 128,256 × 2,560 head is 164 MB of
/// weights and 21 MB of scales in groups of 32, against 328 MB in int8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Int4Head {
    pub rows: usize,
    pub width: usize,
    pub group: usize,
    pub w: Vec<i8>,
    /// Per row, per group.
    pub group_m: Vec<u16>,
    pub exp: i32,
}

impl Int4Head {
    /// `width` must be a multiple of `group`.
    pub fn of(head: &[f32], rows: usize, width: usize, group: usize) -> Int4Head {
        assert!(group > 0 && width.is_multiple_of(group), "whole groups");
        let (w, group_m, exp) = quantise_groups(head, group, 7.0);
        Int4Head {
            rows,
            width,
            group,
            w,
            group_m,
            exp,
        }
    }

    /// Bytes a token reads: the weights at 4 bits and the scales.
    pub fn bytes(&self) -> usize {
        self.w.len() / 2 + 2 * self.group_m.len()
    }

    /// The weights as they lie in memory: two a byte, the first in the low nibble, two's
    /// complement, row-major (docs/program.md). `width` must be even.
    pub fn packed(&self) -> Vec<u8> {
        assert!(self.width.is_multiple_of(2), "rows of whole bytes");
        self.w
            .chunks_exact(2)
            .map(|p| (p[0] as u8 & 0x0f) | ((p[1] as u8 & 0x0f) << 4))
            .collect()
    }
}

/// How an LM head's weights lie in memory (docs/program.md, `LmHead`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeadFormat {
    /// `i8` weights, one `u16` mantissa per row ([`Int8Head`]).
    #[default]
    Int8,
    /// 4-bit weights, two a byte, one `u16` mantissa per `group` weights of a row
    /// ([`Int4Head`]).
    Int4 { group: u32 },
}

#[cfg(test)]
#[test]
fn four_bit_weights_pack_two_a_byte_low_nibble_first() {
    let h = Int4Head {
        rows: 1,
        width: 4,
        group: 4,
        w: vec![-7, 7, 1, -1],
        group_m: vec![1],
        exp: 0,
    };
    assert_eq!(h.packed(), vec![0x79, 0xf1]);
}

// ---- layouts of the vectors in scratch ---------------------------------------------

/// Bytes of one token's row of an `i32` vector of `n` elements: a 16-byte header (its
/// fractional bits as an `i32`, `n` as a `u32`, then zeros) and the elements, padded to
/// [`ALIGN`] so that every row starts on a bus beat.
pub fn vector_row_bytes(n: usize) -> u64 {
    16 + (4 * n as u64).next_multiple_of(ALIGN)
}

/// Bytes of one token's row of `n` int8 values, rounded up to [`ALIGN`].
pub fn int8_row_bytes(n: usize) -> u64 {
    (n as u64).next_multiple_of(ALIGN)
}

/// Bytes of one token's norm factors: `max` (u64), `rms` (u64), gain `frac` (i32), pad.
pub const FACTOR_BYTES: u64 = 32;

/// Bytes of one token's row of `m` matmul results (`i32`), rounded up to [`ALIGN`].
pub fn result_row_bytes(m: usize) -> u64 {
    (4 * m as u64).next_multiple_of(ALIGN)
}

// ---- attention: the KV caches and the per-layer units --------------------------------

/// One KV head's cache in memory, tile-major for the attention engine's tiles of `tile`
/// keys: tile `t` holds keys `t·tile..(t+1)·tile` (`head_dim` bytes each), then their
/// values, so the engine reads a tile's keys and then its values as two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvCacheFormat {
    pub tile: usize,
    pub head_dim: usize,
}

impl KvCacheFormat {
    /// Bytes of one tile: `tile` keys, then their values.
    pub fn tile_bytes(&self) -> u64 {
        2 * (self.tile * self.head_dim) as u64
    }
    /// Bytes of a cache that holds `seq_len` tokens (whole tiles).
    pub fn bytes(&self, seq_len: usize) -> u64 {
        seq_len.div_ceil(self.tile) as u64 * self.tile_bytes()
    }
    /// Offset of key `i` from the cache's start.
    pub fn key_offset(&self, i: usize) -> u64 {
        (i / self.tile) as u64 * self.tile_bytes() + ((i % self.tile) * self.head_dim) as u64
    }
    /// Offset of value `i` from the cache's start.
    pub fn value_offset(&self, i: usize) -> u64 {
        self.key_offset(i) + (self.tile * self.head_dim) as u64
    }
}

use crate::config::attention::MAX_THRESHOLD;

/// One layer's attention (docs/program.md, "Attention records"): where its KV caches lie
/// and its units, as the attention engine's run-time constants. The engine's tables,
/// tile and output shift are its own; these are what a layer's calibration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionRecord {
    /// KV head 0's cache ([`KvCacheFormat`]); KV head `h`'s at `cache_at + h·head_stride`.
    pub cache_at: u64,
    pub head_stride: u64,
    /// The clip threshold in score units (1..=`MAX_THRESHOLD`, the attention config's).
    pub threshold: u32,
    /// Added to every table index's numerator: 0 (floor) or ⌊threshold/2⌋ (nearest);
    /// below the threshold.
    pub index_offset: u32,
    /// `K` of the output requantisation, at most the engine's
    /// `AttentionConstants::max_output_numerator`.
    pub output_numerator: u64,
}

impl AttentionRecord {
    pub fn encode(&self) -> [u8; ATTENTION_RECORD_BYTES] {
        let mut b = [0u8; ATTENTION_RECORD_BYTES];
        let mut w = Writer { b: &mut b, at: 0 };
        w.u64(self.cache_at);
        w.u64(self.head_stride);
        w.u32(self.threshold);
        w.u32(self.index_offset);
        w.u64(self.output_numerator);
        b
    }

    /// The record in `b` (at least [`ATTENTION_RECORD_BYTES`]), unchecked.
    pub fn decode(b: &[u8]) -> AttentionRecord {
        let mut r = Reader { b, at: 0 };
        AttentionRecord {
            cache_at: r.u64(),
            head_stride: r.u64(),
            threshold: r.u32(),
            index_offset: r.u32(),
            output_numerator: r.u64(),
        }
    }

    /// What an engine can run, for caches of `cache_bytes` each and numerators up to
    /// `max_numerator`: `Err` names the field.
    pub fn check(
        &self,
        cache_bytes: u64,
        max_numerator: u64,
    ) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_THRESHOLD).contains(&i64::from(self.threshold)) {
            return Err((
                "threshold",
                format!("{} is not in 1..={MAX_THRESHOLD}", self.threshold),
            ));
        }
        if self.index_offset >= self.threshold {
            return Err((
                "index_offset",
                format!(
                    "{} is not below the threshold {}",
                    self.index_offset, self.threshold
                ),
            ));
        }
        if self.output_numerator > max_numerator {
            return Err((
                "output_numerator",
                format!(
                    "{} is above the engine's {max_numerator}",
                    self.output_numerator
                ),
            ));
        }
        for (field, at) in [
            ("cache_at", self.cache_at),
            ("head_stride", self.head_stride),
        ] {
            if !at.is_multiple_of(ALIGN) {
                return Err((field, format!("0x{at:x} is not a multiple of {ALIGN}")));
            }
        }
        if self.head_stride < cache_bytes {
            return Err((
                "head_stride",
                format!(
                    "{} bytes between KV heads' caches, each needs {cache_bytes}",
                    self.head_stride
                ),
            ));
        }
        Ok(())
    }
}

// ---- the header ---------------------------------------------------------------------

/// The program's header: where its parts lie and the model-wide constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The accelerator a program was built for (its design id); a sequencer refuses
    /// another's.
    pub design: u32,
    pub commands: u32,
    pub commands_at: u64,
    /// The one region commands may write: vectors, the pass's token ids, the output.
    pub scratch_at: u64,
    pub scratch_bytes: u64,
    /// Where the host writes a pass's token ids (`u32` each) and the sequencer the next
    /// token (`u32`) and, when asked, every row's score (`i64` each) after 16 bytes.
    pub ids_at: u64,
    pub output_at: u64,
    pub residual_frac: i32,
    pub eps: Scale,
    pub hidden: u32,
    pub vocab: u32,
    pub max_tokens: u32,
    pub max_seq_len: u32,
    /// The KV caches' region: the one place besides scratch a command writes (an
    /// `Attention` appends its keys and values there).
    pub kv_at: u64,
    pub kv_bytes: u64,
    /// One [`AttentionRecord`] per layer, from here.
    pub attention_at: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[..8].copy_from_slice(&MAGIC);
        let mut w = Writer { b: &mut b, at: 8 };
        w.u32(VERSION);
        w.u32(self.design);
        w.u32(self.commands);
        w.u32(0);
        w.u64(self.commands_at);
        w.u64(self.scratch_at);
        w.u64(self.scratch_bytes);
        w.u64(self.ids_at);
        w.u64(self.output_at);
        w.u32(self.residual_frac as u32);
        w.u32(self.eps.m);
        w.u32(self.eps.e as u32);
        w.u32(self.hidden);
        w.u32(self.vocab);
        w.u32(self.max_tokens);
        w.u32(self.max_seq_len);
        w.u32(0);
        w.u64(self.kv_at);
        w.u64(self.kv_bytes);
        w.u64(self.attention_at);
        b
    }

    pub fn decode(b: &[u8]) -> Result<Header, ProgramError> {
        if b.len() < HEADER_BYTES {
            return Err(ProgramError::Truncated {
                what: "the header".into(),
                need: HEADER_BYTES as u64,
                have: b.len() as u64,
            });
        }
        if b[..8] != MAGIC {
            return Err(ProgramError::Magic);
        }
        let mut r = Reader { b, at: 8 };
        let version = r.u32();
        if version != VERSION {
            return Err(ProgramError::Version(version));
        }
        let design = r.u32();
        let commands = r.u32();
        let _ = r.u32();
        let h = Header {
            design,
            commands,
            commands_at: r.u64(),
            scratch_at: r.u64(),
            scratch_bytes: r.u64(),
            ids_at: r.u64(),
            output_at: r.u64(),
            residual_frac: r.u32() as i32,
            eps: Scale {
                m: r.u32(),
                e: r.u32() as i32,
            },
            hidden: r.u32(),
            vocab: r.u32(),
            max_tokens: r.u32(),
            max_seq_len: r.u32(),
            kv_at: {
                let _ = r.u32();
                r.u64()
            },
            kv_bytes: r.u64(),
            attention_at: r.u64(),
        };
        if !h.eps.is_valid() {
            return Err(ProgramError::Field {
                command: None,
                field: "eps",
                why: format!("mantissa {} is not 24 bits", h.eps.m),
            });
        }
        for (field, at, align) in [
            ("commands_at", h.commands_at, COMMANDS_ALIGN),
            ("scratch_at", h.scratch_at, ALIGN),
            ("scratch_bytes", h.scratch_bytes, ALIGN),
            ("ids_at", h.ids_at, ALIGN),
            ("output_at", h.output_at, ALIGN),
            ("kv_at", h.kv_at, ALIGN),
            ("kv_bytes", h.kv_bytes, ALIGN),
            (
                "attention_at",
                h.attention_at,
                ATTENTION_RECORD_BYTES as u64,
            ),
        ] {
            if !at.is_multiple_of(align) {
                return Err(ProgramError::Field {
                    command: None,
                    field,
                    why: format!("0x{at:x} is not a multiple of {align}"),
                });
            }
        }
        Ok(h)
    }
}

// ---- commands -----------------------------------------------------------------------

/// One command. Addresses are absolute byte addresses; "rows" are the pass's tokens
/// (each command runs over all of them); `layer` and `which` name the matrix or the
/// attention layer the fabric holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The pass's token ids' embedding rows (bf16, `n` each, table at `table`) into an
    /// `i32` vector at `dst` with the program's residual fractional bits.
    Embed { table: u64, dst: u64, n: u32 },
    /// RMSNorm and int8 quantisation of the vector at `src` (or, `int8_unit` set, of the
    /// int8 rows at `src` times that unit) with the gain at `gain`: int8 rows at `dst`,
    /// factors at `factors`.
    NormQuant {
        src: u64,
        gain: u64,
        dst: u64,
        factors: u64,
        n: u32,
        int8_unit: Option<Scale>,
    },
    /// The ternary matmul `(layer, which)`: int8 rows of `k` at `src`, `m` `i32`
    /// results per row at `dst`; the matrix's weights at `weights` in the matmul unit's
    /// tile layout (`units::matmul_weight_image`; 0 when a program leaves them to the
    /// fabric).
    Matmul {
        layer: u16,
        which: u16,
        src: u64,
        weights: u64,
        dst: u64,
        m: u32,
        k: u32,
    },
    /// Results at `src` (`m` per row) with the factors at `factors` and the weight scale
    /// into the residual format: written to the vector at `dst`, or added to it (`add`).
    Dequant {
        src: u64,
        factors: u64,
        dst: u64,
        m: u32,
        scale: Scale,
        add: bool,
    },
    /// RoPE on `heads` heads of `head_dim` of the vector at `vec`, from the table at
    /// `table` (`head_dim / 2` (cos, sin) `i16` pairs per position).
    Rope {
        vec: u64,
        table: u64,
        heads: u32,
        head_dim: u32,
    },
    /// The vector at `src` to the attention's int8 unit (`inv_unit` = 1/unit) at `dst`.
    ToInt8 {
        src: u64,
        dst: u64,
        n: u32,
        inv_unit: Scale,
    },
    /// One layer's attention on the fabric: int8 q (`hidden`), k and v (`kv_width`)
    /// rows appended to its KV caches, outputs (`hidden` int8 per row) at `dst`.
    Attention {
        layer: u16,
        q: u64,
        k: u64,
        v: u64,
        dst: u64,
    },
    /// `relu(gate)² · up` of the vectors at `gate` and `up` into the vector at `dst`.
    Relu2Mul {
        gate: u64,
        up: u64,
        dst: u64,
        n: u32,
    },
    /// The LM head (weights at `weights`, `rows` × `width` in `format`, their mantissas
    /// at `mantissas`) on the last row's int8 at `src`: the next token at the output,
    /// and every score after it when `scores` is set.
    LmHead {
        src: u64,
        weights: u64,
        mantissas: u64,
        rows: u32,
        width: u32,
        scores: bool,
        format: HeadFormat,
    },
    /// The pass is over.
    End,
}

impl Command {
    pub fn opcode(&self) -> u8 {
        match self {
            Command::End => 0,
            Command::Embed { .. } => 1,
            Command::NormQuant { .. } => 2,
            Command::Matmul { .. } => 3,
            Command::Dequant { .. } => 4,
            Command::Rope { .. } => 5,
            Command::ToInt8 { .. } => 6,
            Command::Attention { .. } => 7,
            Command::Relu2Mul { .. } => 8,
            Command::LmHead { .. } => 9,
        }
    }

    /// The 64-byte record (docs/program.md, "Commands").
    pub fn encode(&self) -> [u8; COMMAND_BYTES] {
        let mut f = Fields::default();
        match *self {
            Command::End => {}
            Command::Embed { table, dst, n } => {
                (f.a, f.c, f.n) = (table, dst, n);
            }
            Command::NormQuant {
                src,
                gain,
                dst,
                factors,
                n,
                int8_unit,
            } => {
                (f.a, f.b, f.c, f.d, f.n) = (src, gain, dst, factors, n);
                if let Some(u) = int8_unit {
                    (f.flags, f.scale) = (1, u);
                }
            }
            Command::Matmul {
                layer,
                which,
                src,
                weights,
                dst,
                m,
                k,
            } => {
                (f.layer, f.index, f.a, f.b, f.c, f.n, f.k) =
                    (layer, which, src, weights, dst, m, k);
            }
            Command::Dequant {
                src,
                factors,
                dst,
                m,
                scale,
                add,
            } => {
                (f.a, f.d, f.c, f.n, f.scale) = (src, factors, dst, m, scale);
                f.flags = u8::from(add);
            }
            Command::Rope {
                vec,
                table,
                heads,
                head_dim,
            } => {
                (f.a, f.b, f.count, f.k) = (vec, table, heads, head_dim);
            }
            Command::ToInt8 {
                src,
                dst,
                n,
                inv_unit,
            } => {
                (f.a, f.c, f.n, f.scale) = (src, dst, n, inv_unit);
            }
            Command::Attention {
                layer,
                q,
                k,
                v,
                dst,
            } => {
                (f.layer, f.a, f.b, f.d, f.c) = (layer, q, k, v, dst);
            }
            Command::Relu2Mul { gate, up, dst, n } => {
                (f.a, f.b, f.c, f.n) = (gate, up, dst, n);
            }
            Command::LmHead {
                src,
                weights,
                mantissas,
                rows,
                width,
                scores,
                format,
            } => {
                (f.a, f.b, f.d, f.n, f.k) = (src, weights, mantissas, rows, width);
                f.flags = u8::from(scores);
                if let HeadFormat::Int4 { group } = format {
                    f.flags |= 2;
                    f.count = group;
                }
            }
        }
        f.opcode = self.opcode();
        f.encode()
    }

    /// Decode command `index` from its record, refusing what no command is.
    pub fn decode(index: usize, b: &[u8]) -> Result<Command, ProgramError> {
        let f = Fields::decode(b);
        let bad = |field: &'static str, why: String| ProgramError::Field {
            command: Some(index),
            field,
            why,
        };
        let flag = |allowed: u8| {
            if f.flags & !allowed != 0 {
                Err(bad("flags", format!("0x{:02x} sets unknown bits", f.flags)))
            } else {
                Ok(())
            }
        };
        let scale = || {
            if f.scale.is_valid() {
                Ok(f.scale)
            } else {
                Err(bad(
                    "scale",
                    format!("mantissa {} is not 24 bits", f.scale.m),
                ))
            }
        };
        Ok(match f.opcode {
            0 => {
                flag(0)?;
                Command::End
            }
            1 => {
                flag(0)?;
                Command::Embed {
                    table: f.a,
                    dst: f.c,
                    n: f.n,
                }
            }
            2 => {
                flag(1)?;
                Command::NormQuant {
                    src: f.a,
                    gain: f.b,
                    dst: f.c,
                    factors: f.d,
                    n: f.n,
                    int8_unit: if f.flags & 1 != 0 {
                        Some(scale()?)
                    } else {
                        None
                    },
                }
            }
            3 => {
                flag(0)?;
                Command::Matmul {
                    layer: f.layer,
                    which: f.index,
                    src: f.a,
                    weights: f.b,
                    dst: f.c,
                    m: f.n,
                    k: f.k,
                }
            }
            4 => {
                flag(1)?;
                Command::Dequant {
                    src: f.a,
                    factors: f.d,
                    dst: f.c,
                    m: f.n,
                    scale: scale()?,
                    add: f.flags & 1 != 0,
                }
            }
            5 => {
                flag(0)?;
                Command::Rope {
                    vec: f.a,
                    table: f.b,
                    heads: f.count,
                    head_dim: f.k,
                }
            }
            6 => {
                flag(0)?;
                Command::ToInt8 {
                    src: f.a,
                    dst: f.c,
                    n: f.n,
                    inv_unit: scale()?,
                }
            }
            7 => {
                flag(0)?;
                Command::Attention {
                    layer: f.layer,
                    q: f.a,
                    k: f.b,
                    v: f.d,
                    dst: f.c,
                }
            }
            8 => {
                flag(0)?;
                Command::Relu2Mul {
                    gate: f.a,
                    up: f.b,
                    dst: f.c,
                    n: f.n,
                }
            }
            9 => {
                flag(3)?;
                let format = if f.flags & 2 != 0 {
                    HeadFormat::Int4 { group: f.count }
                } else if f.count != 0 {
                    return Err(bad(
                        "count",
                        format!("{} for an int8 head, which has no groups", f.count),
                    ));
                } else {
                    HeadFormat::Int8
                };
                Command::LmHead {
                    src: f.a,
                    weights: f.b,
                    mantissas: f.d,
                    rows: f.n,
                    width: f.k,
                    scores: f.flags & 1 != 0,
                    format,
                }
            }
            op => return Err(ProgramError::Opcode { command: index, op }),
        })
    }
}

/// The record's fields, by position (docs/program.md).
#[derive(Debug, Default)]
struct Fields {
    opcode: u8,
    flags: u8,
    layer: u16,
    index: u16,
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    n: u32,
    k: u32,
    count: u32,
    scale: Scale,
}

impl Default for Scale {
    fn default() -> Self {
        Scale::ZERO
    }
}

impl Fields {
    fn encode(&self) -> [u8; COMMAND_BYTES] {
        let mut b = [0u8; COMMAND_BYTES];
        b[0] = self.opcode;
        b[1] = self.flags;
        let mut w = Writer { b: &mut b, at: 4 };
        w.u16(self.layer);
        w.u16(self.index);
        w.u64(self.a);
        w.u64(self.b);
        w.u64(self.c);
        w.u64(self.d);
        w.u32(self.n);
        w.u32(self.k);
        w.u32(self.count);
        w.u32(self.scale.m);
        w.u32(self.scale.e as u32);
        b
    }

    fn decode(b: &[u8]) -> Fields {
        let mut r = Reader { b, at: 4 };
        Fields {
            opcode: b[0],
            flags: b[1],
            layer: r.u16(),
            index: r.u16(),
            a: r.u64(),
            b: r.u64(),
            c: r.u64(),
            d: r.u64(),
            n: r.u32(),
            k: r.u32(),
            count: r.u32(),
            scale: Scale {
                m: r.u32(),
                e: r.u32() as i32,
            },
        }
    }
}

struct Writer<'a> {
    b: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.b[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
    fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let v = self.b[self.at..self.at + N].try_into().expect("N bytes");
        self.at += N;
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

/// Why a program cannot run: named by command and field where it is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("not a tern program (the header does not start with TERNPROG)")]
    Magic,
    #[error("program format version {0}; this accelerator runs version {VERSION}")]
    Version(u32),
    #[error("the program was built for accelerator {program:08x}, this one is {accelerator:08x}")]
    Design { program: u32, accelerator: u32 },
    #[error("{what}: {need} bytes needed, {have} there")]
    Truncated { what: String, need: u64, have: u64 },
    #[error("command {command}: opcode {op} is no command")]
    Opcode { command: usize, op: u8 },
    #[error("{}`{field}`: {why}", command.map_or(String::new(), |c| format!("command {c}, ")))]
    Field {
        command: Option<usize>,
        field: &'static str,
        why: String,
    },
    #[error("command {command} ({op}) {access} [0x{start:x}, 0x{end:x}) outside {region} [0x{region_start:x}, 0x{region_end:x})")]
    OutOfRegion {
        command: usize,
        op: &'static str,
        access: &'static str,
        start: u64,
        end: u64,
        region: &'static str,
        region_start: u64,
        region_end: u64,
    },
    #[error("the command list has no End within its {0} commands")]
    NoEnd(u32),
}

/// The sequencer's error codes (docs/program.md, "Errors"): what the RTL's status
/// register says and what the golden sequencer's error maps to.
pub mod error_code {
    /// The header reaches beyond memory.
    pub const TRUNCATED: u8 = 1;
    pub const MAGIC: u8 = 2;
    pub const VERSION: u8 = 3;
    /// A header field that is not valid: ε's mantissa, a region not on [`ALIGN`]
    /// (`super::ALIGN`), a program not on it.
    pub const HEADER_FIELD: u8 = 4;
    pub const DESIGN: u8 = 5;
    /// The program's hidden size or vocabulary is not the accelerator's.
    pub const MODEL: u8 = 6;
    /// More tokens than the program's `max_tokens`.
    pub const TOO_MANY_TOKENS: u8 = 7;
    pub const NO_TOKENS: u8 = 8;
    pub const TOKEN_ID: u8 = 9;
    pub const CONTEXT: u8 = 10;
    pub const OPCODE: u8 = 11;
    pub const FLAGS: u8 = 12;
    pub const SCALE: u8 = 13;
    /// An int8 head with a group count, or a 4-bit head's group that does not fit.
    pub const COUNT: u8 = 14;
    /// A size outside its range (n, m, k, heads, head dimension, rows, width).
    pub const SIZE: u8 = 15;
    /// A matmul's (layer, matrix) that the model does not have.
    pub const MATRIX: u8 = 16;
    /// A matmul's m × k that is not its matrix's.
    pub const SHAPE: u8 = 17;
    /// An attention layer the model does not have.
    pub const LAYER: u8 = 18;
    /// End before any LM head chose a token.
    pub const NO_CHOICE: u8 = 19;
    /// The list ran out without End.
    pub const NO_END: u8 = 20;
    /// A read outside memory or a write outside scratch.
    pub const OUT_OF_REGION: u8 = 21;
    /// What a unit found in the data (a vector's length or fractional bits, a gain's
    /// shift): the units' own checks.
    pub const DATA: u8 = 22;
}

impl ProgramError {
    /// The error's code ([`error_code`]).
    pub fn code(&self) -> u8 {
        use error_code::*;
        match self {
            ProgramError::Magic => MAGIC,
            ProgramError::Version(_) => VERSION,
            ProgramError::Design { .. } => DESIGN,
            ProgramError::Truncated { .. } => TRUNCATED,
            ProgramError::Opcode { .. } => OPCODE,
            ProgramError::OutOfRegion { .. } => OUT_OF_REGION,
            ProgramError::NoEnd(_) => NO_END,
            ProgramError::Field { command, field, .. } => match (*command, *field) {
                (None, "hidden/vocab") => MODEL,
                (None, _) => HEADER_FIELD,
                (Some(_), "flags") => FLAGS,
                (Some(_), "scale") => SCALE,
                (Some(_), "count") => COUNT,
                (Some(_), "n" | "m" | "k" | "heads" | "head_dim" | "rows" | "width") => SIZE,
                (Some(_), "layer/which") => MATRIX,
                (Some(_), "m/k") => SHAPE,
                (Some(_), "layer") => LAYER,
                (Some(_), "End") => NO_CHOICE,
                (Some(_), _) => DATA,
            },
        }
    }

    /// The command the error names, if any.
    pub fn command(&self) -> Option<usize> {
        match self {
            ProgramError::Opcode { command, .. } | ProgramError::OutOfRegion { command, .. } => {
                Some(*command)
            }
            ProgramError::Field { command, .. } => *command,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_the_header_round_trip_through_their_records() {
        let s = Scale::of(0.37).unwrap();
        let all = [
            Command::Embed {
                table: 1 << 33,
                dst: 4096,
                n: 1536,
            },
            Command::NormQuant {
                src: 16,
                gain: 32,
                dst: 48,
                factors: 64,
                n: 7,
                int8_unit: Some(s),
            },
            Command::NormQuant {
                src: 16,
                gain: 32,
                dst: 48,
                factors: 64,
                n: 7,
                int8_unit: None,
            },
            Command::Matmul {
                layer: 23,
                which: 6,
                src: 1,
                weights: 0x4000,
                dst: 2,
                m: 1536,
                k: 4096,
            },
            Command::Dequant {
                src: 3,
                factors: 4,
                dst: 5,
                m: 9,
                scale: s,
                add: true,
            },
            Command::Rope {
                vec: 8,
                table: 9,
                heads: 16,
                head_dim: 96,
            },
            Command::ToInt8 {
                src: 1,
                dst: 2,
                n: 3,
                inv_unit: s,
            },
            Command::Attention {
                layer: 2,
                q: 1,
                k: 2,
                v: 3,
                dst: 4,
            },
            Command::Relu2Mul {
                gate: 1,
                up: 2,
                dst: 3,
                n: 4,
            },
            Command::LmHead {
                src: 1,
                weights: 2,
                mantissas: 3,
                rows: 128256,
                width: 2560,
                scores: true,
                format: HeadFormat::Int8,
            },
            Command::LmHead {
                src: 1,
                weights: 2,
                mantissas: 3,
                rows: 128256,
                width: 2560,
                scores: false,
                format: HeadFormat::Int4 { group: 32 },
            },
            Command::End,
        ];
        for (i, c) in all.iter().enumerate() {
            assert_eq!(Command::decode(i, &c.encode()).unwrap(), *c);
        }
        // An int8 head has no groups: a count is refused, naming it.
        let at = all
            .iter()
            .position(|c| {
                matches!(
                    c,
                    Command::LmHead {
                        format: HeadFormat::Int8,
                        ..
                    }
                )
            })
            .unwrap();
        let mut b = all[at].encode();
        b[48] = 1;
        let e = Command::decode(at, &b).unwrap_err().to_string();
        assert!(e.contains("count"), "{e}");
        let h = Header {
            design: 0xdead_beef,
            commands: 11,
            commands_at: 128,
            scratch_at: 1 << 20,
            scratch_bytes: 1 << 16,
            ids_at: (1 << 20) + 64,
            output_at: 1 << 20,
            residual_frac: 16,
            eps: Scale::of(1e-5).unwrap(),
            hidden: 1536,
            vocab: 32002,
            max_tokens: 128,
            max_seq_len: 2048,
            kv_at: 1 << 24,
            kv_bytes: 3 << 20,
            attention_at: 1 << 21,
        };
        assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        let mut b = h.encode();
        b[112] = 16; // attention_at no longer on a record
        let e = Header::decode(&b).unwrap_err();
        assert_eq!(e.code(), error_code::HEADER_FIELD, "{e}");
        assert!(e.to_string().contains("attention_at"), "{e}");
    }

    #[test]
    fn attention_records_round_trip_and_name_what_no_engine_runs() {
        let r = AttentionRecord {
            cache_at: 1 << 20,
            head_stride: 4096,
            threshold: 1000,
            index_offset: 500,
            output_numerator: (1 << 40) + 3,
        };
        assert_eq!(AttentionRecord::decode(&r.encode()), r);
        let max = 1 << 41;
        assert_eq!(r.check(4096, max), Ok(()));
        for (bad, field) in [
            (AttentionRecord { threshold: 0, ..r }, "threshold"),
            (
                AttentionRecord {
                    threshold: (1 << 24) + 1,
                    ..r
                },
                "threshold",
            ),
            (
                AttentionRecord {
                    index_offset: 1000,
                    ..r
                },
                "index_offset",
            ),
            (
                AttentionRecord {
                    output_numerator: max + 1,
                    ..r
                },
                "output_numerator",
            ),
            (AttentionRecord { cache_at: 8, ..r }, "cache_at"),
            (
                AttentionRecord {
                    head_stride: 4080,
                    ..r
                },
                "head_stride",
            ),
        ] {
            assert_eq!(bad.check(4096, max).map_err(|e| e.0), Err(field), "{bad:?}");
        }
    }

    #[test]
    fn a_kv_cache_is_tile_major() {
        let c = KvCacheFormat {
            tile: 16,
            head_dim: 64,
        };
        // Key 17 is tile 1's second key; its value follows the tile's 16 keys.
        assert_eq!(c.key_offset(17), 2048 + 64);
        assert_eq!(c.value_offset(17), 2048 + 16 * 64 + 64);
        assert_eq!(c.bytes(40), 3 * 2048);
    }

    #[test]
    fn records_that_are_no_command_are_refused_by_index_and_field() {
        let mut b = Command::End.encode();
        b[0] = 200;
        assert_eq!(
            Command::decode(5, &b).unwrap_err(),
            ProgramError::Opcode {
                command: 5,
                op: 200
            }
        );
        let mut b = Command::ToInt8 {
            src: 0,
            dst: 0,
            n: 1,
            inv_unit: Scale::of(3.0).unwrap(),
        }
        .encode();
        b[52..56].copy_from_slice(&1u32.to_le_bytes()); // a mantissa of 1: not 24 bits
        let err = Command::decode(2, &b).unwrap_err().to_string();
        assert!(err.contains("command 2") && err.contains("scale"), "{err}");
        let mut b = Command::End.encode();
        b[0] = 2;
        b[1] = 0x80;
        let err = Command::decode(3, &b).unwrap_err().to_string();
        assert!(err.contains("flags"), "{err}");
        let mut h = Header::decode(
            &Header {
                design: 1,
                commands: 1,
                commands_at: 128,
                scratch_at: 256,
                scratch_bytes: 16,
                ids_at: 256,
                output_at: 256,
                residual_frac: 16,
                eps: Scale::of(1e-6).unwrap(),
                hidden: 8,
                vocab: 8,
                max_tokens: 1,
                max_seq_len: 8,
                kv_at: 512,
                kv_bytes: 64,
                attention_at: 1024,
            }
            .encode(),
        )
        .unwrap()
        .encode();
        h[0] = b'X';
        assert_eq!(Header::decode(&h).unwrap_err(), ProgramError::Magic);
        assert!(matches!(
            Header::decode(&h[..40]),
            Err(ProgramError::Truncated { .. })
        ));
    }
}
