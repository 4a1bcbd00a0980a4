//! The attention engine's configuration: `[attention]`, `[attention.quant]` and an
//! attention `[workload]`, validated once into [`AttentionConfig`] together with every
//! integer constant the RTL and the golden model share (threshold, tables, reciprocals).
//!
//! The arithmetic these constants define is specified in `docs/attention.md`;
//! `tern-sim`'s `golden::attention` states it operation by operation.

use serde::{Deserialize, Serialize};

use super::{ConfigError, TopConfig};

/// Entries of the IndexSoftmax exp table (IntAttention's 5-bit index).
/// IntAttention's exp table: 32 entries (its reference semantics, `index_softmax`).
pub const INTATTENTION_EXP_ENTRIES: usize = 32;
/// Exp table sizes the engine can be built with (`attention.quant.exp_entries`).
pub const EXP_ENTRIES: [usize; 4] = [32, 64, 128, 256];
/// Fraction bits of the online-softmax rescale factors (`2^15` is 1.0).
pub const RESCALE_FRACTION_BITS: u32 = 15;
/// Width of the engine's running sum, output accumulators and scores.
pub const STATE_BITS: usize = 32;
/// Width of the output reciprocal's numerator (the divider runs this many steps).
pub const RECIPROCAL_NUMERATOR_BITS: u32 = 48;
/// Largest supported sequence: keeps `255·L·128` inside the 32-bit accumulators.
pub const MAX_SEQ_LEN: usize = 16384;
/// Most query rows one pass over the KV tiles serves (`attention.query_block`).
pub const MAX_QUERY_BLOCK: usize = 64;
/// MAC lane counts the RTL is generated for (the bus is `8·macs` bits).
pub const MAC_LANES: [usize; 4] = [4, 8, 16, 32];
/// Largest clip threshold in score units (keeps the index multiply within 72 bits).
pub const MAX_THRESHOLD: i64 = 1 << 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionMode {
    /// One query (the newest token) against the whole KV cache.
    Decode,
    /// A block of queries, each masked causally (if `causal`) against the keys.
    Prefill,
}

/// How a clipped distance maps to a table index: `floor(n·Δ/thr)` as IntAttention, or
/// to the nearest step, `floor((n·Δ + ⌊thr/2⌋)/thr)`, which halves the worst-case error
/// of each weight (measured in `BENCHMARKS.md`, "Attention fidelity").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexRounding {
    Floor,
    Nearest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionQuant {
    /// Real value of one unit of the int8 Q, K, V and output tensors (per tensor).
    pub scale_q: f64,
    pub scale_k: f64,
    pub scale_v: f64,
    pub scale_out: f64,
    /// Clip distance from the row maximum, in real (softmax-input) units; IntAttention
    /// uses 6.6. Scores further below the maximum get probability 0.
    #[serde(default = "default_clip")]
    pub clip: f64,
    /// Steps of the online-softmax rescale table over `[0, clip]`; a power of two.
    #[serde(default = "default_rescale_steps")]
    pub rescale_steps: usize,
    /// Index rounding of the streamed engine (the exp and the rescale index alike).
    #[serde(default = "default_index_rounding")]
    pub index_rounding: IndexRounding,
    /// Entries of the engine's exp table over `[0, clip]` (32, 64, 128 or 256; u8
    /// values). IntAttention uses 32; 128 (the default) is what reaches mean cosine
    /// 0.999 against float attention (BENCHMARKS.md).
    #[serde(default = "default_exp_entries")]
    pub exp_entries: usize,
}

fn default_exp_entries() -> usize {
    128
}

fn default_index_rounding() -> IndexRounding {
    IndexRounding::Nearest
}

fn default_clip() -> f64 {
    6.6
}
fn default_query_block() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn default_rescale_steps() -> usize {
    256
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionSection {
    /// d: elements per query/key/value vector.
    pub head_dim: usize,
    /// int8 multiply-accumulates per clock (also the stream width in int8 lanes).
    pub macs: usize,
    /// Bc: keys per KV tile; on-chip score storage is one tile.
    pub tile: usize,
    /// Longest KV sequence the engine accepts.
    pub max_seq_len: usize,
    pub mode: AttentionMode,
    /// Prefill only: query `i` sees keys `0..=i` (positions within the sequence).
    #[serde(default)]
    pub causal: bool,
    /// Query rows that share one pass over the KV tiles: the engine keeps this many
    /// rows' state and replays each streamed tile from an on-chip buffer for the rest of
    /// the block, so K/V is read once per block instead of once per row.
    #[serde(default = "default_query_block", skip_serializing_if = "is_one")]
    pub query_block: usize,
    pub quant: AttentionQuant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionWorkload {
    /// Keys (and values) in the sequence, the current token included.
    pub seq_len: usize,
    /// Query rows: the last `queries` positions of the sequence (decode: 1).
    pub queries: usize,
}

/// The raw attention config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionFile {
    pub attention: AttentionSection,
    pub workload: AttentionWorkload,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board: Option<String>,
    /// The accelerator top's memory interface (as for the matmul engines).
    #[serde(default, skip_serializing_if = "TopConfig::is_default")]
    pub top: TopConfig,
}

/// Attention configs built in code (tests, benches, flows) with the validation every file
/// gets: one place that knows the file's shape, instead of TOML formatted by hand.
#[derive(Debug, Clone)]
pub struct AttentionConfigBuilder {
    file: AttentionFile,
}

impl AttentionConfigBuilder {
    /// An engine of head size `d`, `macs` MACs, tiles of `tile` keys and caches of up to
    /// `max_seq_len` keys; decode of one query against a full cache; scales of 0.035 for
    /// Q and K and 0.03 for V and the output, the other quantisation settings at their
    /// defaults.
    pub fn new(head_dim: usize, macs: usize, tile: usize, max_seq_len: usize) -> Self {
        AttentionConfigBuilder {
            file: AttentionFile {
                attention: AttentionSection {
                    head_dim,
                    macs,
                    tile,
                    max_seq_len,
                    mode: AttentionMode::Decode,
                    causal: false,
                    query_block: default_query_block(),
                    quant: AttentionQuant {
                        scale_q: 0.035,
                        scale_k: 0.035,
                        scale_v: 0.03,
                        scale_out: 0.03,
                        clip: default_clip(),
                        rescale_steps: default_rescale_steps(),
                        index_rounding: default_index_rounding(),
                        exp_entries: default_exp_entries(),
                    },
                },
                workload: AttentionWorkload {
                    seq_len: max_seq_len,
                    queries: 1,
                },
                board: None,
                top: TopConfig::default(),
            },
        }
    }
    /// The file a validated config was made from, to change and build again.
    pub fn from_config(cfg: &AttentionConfig) -> Self {
        AttentionConfigBuilder {
            file: AttentionFile {
                attention: cfg.attention.clone(),
                workload: cfg.workload.clone(),
                board: cfg.board.clone(),
                top: cfg.top.clone(),
            },
        }
    }
    /// Decode (`prefill = false`) or prefill, causally masked if `causal`.
    pub fn mode(mut self, prefill: bool, causal: bool) -> Self {
        self.file.attention.mode = if prefill {
            AttentionMode::Prefill
        } else {
            AttentionMode::Decode
        };
        self.file.attention.causal = causal;
        self
    }
    pub fn workload(mut self, seq_len: usize, queries: usize) -> Self {
        self.file.workload = AttentionWorkload { seq_len, queries };
        self
    }
    pub fn macs(mut self, macs: usize) -> Self {
        self.file.attention.macs = macs;
        self
    }
    /// Tiles of `keys` keys.
    pub fn tile(mut self, keys: usize) -> Self {
        self.file.attention.tile = keys;
        self
    }
    pub fn query_block(mut self, rows: usize) -> Self {
        self.file.attention.query_block = rows;
        self
    }
    pub fn rescale_steps(mut self, steps: usize) -> Self {
        self.file.attention.quant.rescale_steps = steps;
        self
    }
    pub fn quant(mut self, quant: AttentionQuant) -> Self {
        self.file.attention.quant = quant;
        self
    }
    pub fn board(mut self, board: &str) -> Self {
        self.file.board = Some(board.to_string());
        self
    }
    pub fn top(mut self, top: TopConfig) -> Self {
        self.file.top = top;
        self
    }
    pub fn build(self) -> Result<AttentionConfig, ConfigError> {
        AttentionConfig::validate(self.file, "built in code")
    }
}

/// Integer constants derived from the scales; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttentionConstants {
    /// Clip threshold in score units: `trunc(clip / (s_q·s_k/√d))`, as IntAttention.
    pub threshold: i64,
    /// The engine's table: `exp_table[i] = round(255·exp(−i·clip/(N−1)))` for the
    /// config's `N = exp_entries`, first 255, last 0.
    pub exp_table: Vec<u8>,
    /// IntAttention's own 32-entry table (`round(255·exp(−i·clip/31))`), for its
    /// reference semantics.
    pub intattention_exp_table: Vec<u8>,
    /// `rescale_table[i] = round(2^15·exp(−i·clip/R))` for `i < R`, `rescale_table[R] = 0`.
    pub rescale_table: Vec<u32>,
    /// `floor(n / threshold) = (n·threshold_reciprocal) >> threshold_shift` for every
    /// numerator the engine forms (Granlund–Montgomery, proved and tested).
    pub threshold_reciprocal: u64,
    pub threshold_shift: u32,
    /// Added to every index numerator before the division: 0 (floor) or ⌊thr/2⌋ (nearest).
    pub index_offset: u64,
    /// Output requantisation: `out = sat8((acc·floor(K/ℓ) + 2^(S−1)) >> S)` with
    /// `K = output_numerator`, `S = output_shift`.
    pub output_numerator: u64,
    pub output_shift: u32,
}

/// A validated attention configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttentionConfig {
    pub attention: AttentionSection,
    pub workload: AttentionWorkload,
    pub board: Option<String>,
    pub top: TopConfig,
    pub constants: AttentionConstants,
}

impl AttentionConfig {
    pub fn from_path(path: &std::path::Path) -> Result<AttentionConfig, ConfigError> {
        super::from_path(path, AttentionConfig::from_toml)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<AttentionConfig, ConfigError> {
        let file: AttentionFile = super::parse_toml(text, origin)?;
        AttentionConfig::validate(file, origin)
    }

    pub fn validate(file: AttentionFile, origin: &str) -> Result<AttentionConfig, ConfigError> {
        let a = &file.attention;
        let q = &a.quant;
        let w = &file.workload;
        let bad = |key: &'static str, value: String, allowed: String| ConfigError::OutOfRange {
            origin: origin.to_string(),
            key,
            value,
            allowed,
        };
        let range = |key: &'static str, value: usize, lo: usize, hi: usize| {
            if value < lo || value > hi {
                Err(bad(key, value.to_string(), format!("{lo}..={hi}")))
            } else {
                Ok(())
            }
        };
        if !MAC_LANES.contains(&a.macs) {
            return Err(bad(
                "attention.macs",
                a.macs.to_string(),
                format!("one of {MAC_LANES:?}"),
            ));
        }
        range("attention.head_dim", a.head_dim, a.macs, 256)?;
        if !a.head_dim.is_multiple_of(a.macs) {
            return Err(bad(
                "attention.head_dim",
                a.head_dim.to_string(),
                format!("a multiple of attention.macs = {}", a.macs),
            ));
        }
        range("attention.tile", a.tile, 1, 1024)?;
        range("attention.query_block", a.query_block, 1, MAX_QUERY_BLOCK)?;
        range("attention.max_seq_len", a.max_seq_len, 1, MAX_SEQ_LEN)?;
        range("workload.seq_len", w.seq_len, 1, a.max_seq_len)?;
        match a.mode {
            AttentionMode::Decode => range("workload.queries", w.queries, 1, 1)?,
            AttentionMode::Prefill => range("workload.queries", w.queries, 1, w.seq_len)?,
        }
        for (key, value) in [
            ("attention.quant.scale_q", q.scale_q),
            ("attention.quant.scale_k", q.scale_k),
            ("attention.quant.scale_v", q.scale_v),
            ("attention.quant.scale_out", q.scale_out),
            ("attention.quant.clip", q.clip),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(bad(key, value.to_string(), "a finite number > 0".into()));
            }
        }
        if !q.rescale_steps.is_power_of_two() || !(32..=1024).contains(&q.rescale_steps) {
            return Err(bad(
                "attention.quant.rescale_steps",
                q.rescale_steps.to_string(),
                "a power of two in 32..=1024".into(),
            ));
        }
        if !EXP_ENTRIES.contains(&q.exp_entries) {
            return Err(bad(
                "attention.quant.exp_entries",
                q.exp_entries.to_string(),
                format!("one of {EXP_ENTRIES:?}"),
            ));
        }
        let ratio = q.scale_v / q.scale_out;
        if !(1.0 / 256.0..=128.0).contains(&ratio) {
            return Err(bad(
                "attention.quant.scale_out",
                q.scale_out.to_string(),
                format!(
                    "scale_v / scale_out in [2^-8, 2^7] (it is {ratio:.3e} with scale_v = {})",
                    q.scale_v
                ),
            ));
        }
        let score_unit = q.scale_q * q.scale_k / (a.head_dim as f64).sqrt();
        let threshold = (q.clip / score_unit).trunc();
        if !(1.0..=MAX_THRESHOLD as f64).contains(&threshold) {
            return Err(bad(
                "attention.quant.clip",
                q.clip.to_string(),
                format!(
                    "a clip threshold of 1..={MAX_THRESHOLD} score units; clip / (scale_q·scale_k/√d) = {threshold:.3e}: \
                     check the scales"
                ),
            ));
        }
        file.top.check(origin)?;
        let constants = constants(a, threshold as i64);
        Ok(AttentionConfig {
            attention: file.attention,
            workload: file.workload,
            board: file.board,
            top: file.top,
            constants,
        })
    }

    /// The same engine for operands in other int8 units (`[q, k, v, out]`, real value
    /// of one unit): the constants are rebuilt and checked as if read from a file.
    pub fn with_scales(&self, scales: [f64; 4], origin: &str) -> Result<Self, ConfigError> {
        let mut attention = self.attention.clone();
        let q = &mut attention.quant;
        [q.scale_q, q.scale_k, q.scale_v, q.scale_out] = scales;
        AttentionConfig::validate(
            AttentionFile {
                attention,
                workload: self.workload.clone(),
                board: self.board.clone(),
                top: self.top.clone(),
            },
            origin,
        )
    }

    pub fn to_toml(&self) -> String {
        let file = AttentionConfigBuilder::from_config(self).file;
        toml::to_string(&file).expect("a validated config always serialises")
    }

    /// Beats of `macs` int8 per vector (query, key or value).
    pub fn chunks(&self) -> usize {
        self.attention.head_dim / self.attention.macs
    }

    /// Bits of every stream beat's data (header, q, k, v and output beats).
    pub fn bus_bits(&self) -> usize {
        8 * self.attention.macs
    }

    /// The real value of one score unit, `s_q·s_k/√d`.
    pub fn score_unit(&self) -> f64 {
        let q = &self.attention.quant;
        q.scale_q * q.scale_k / (self.attention.head_dim as f64).sqrt()
    }

    /// Ideal clocks for one query row against `keys` keys: every MAC busy every clock
    /// on `q·k` and then on `p·v` (2·keys·d MACs).
    pub fn ideal_row_cycles(&self, keys: usize) -> f64 {
        (2 * keys * self.attention.head_dim) as f64 / self.attention.macs as f64
    }
}

/// `ceil(log2(n + 1))`: bits to hold every value in `0..=n`.
fn bits_for(n: u64) -> u32 {
    64 - n.leading_zeros()
}

fn constants(a: &AttentionSection, threshold: i64) -> AttentionConstants {
    let q = &a.quant;
    let exp_table_of = |entries: usize| {
        let last = entries - 1;
        let mut t: Vec<u8> = (0..entries)
            .map(|i| (255.0 * (-(i as f64) * q.clip / last as f64).exp()).round() as u8)
            .collect();
        t[0] = 255;
        t[last] = 0;
        t
    };
    let exp_table = exp_table_of(q.exp_entries);
    let intattention_exp_table = exp_table_of(INTATTENTION_EXP_ENTRIES);
    let last = q.exp_entries - 1;
    let steps = q.rescale_steps;
    let one = f64::from(1u32 << RESCALE_FRACTION_BITS);
    let mut rescale_table: Vec<u32> = (0..=steps)
        .map(|i| (one * (-(i as f64) * q.clip / steps as f64).exp()).round() as u32)
        .collect();
    rescale_table[steps] = 0;

    let thr = threshold as u64;
    let index_offset = match q.index_rounding {
        IndexRounding::Floor => 0,
        IndexRounding::Nearest => thr / 2,
    };
    let (reciprocal, shift) = threshold_division(thr, last.max(steps));

    let max_sum = 255 * a.max_seq_len as u64;
    let output_shift = bits_for(max_sum) + 16;
    let ratio = q.scale_v / q.scale_out;
    let output_numerator = (ratio * (1u64 << output_shift) as f64).round() as u64;
    AttentionConstants {
        threshold,
        exp_table,
        intattention_exp_table,
        rescale_table,
        threshold_reciprocal: reciprocal,
        threshold_shift: shift,
        index_offset,
        output_numerator,
        output_shift,
    }
}

/// `(reciprocal, shift)` with `floor(n/thr) = (n·reciprocal) >> shift` for every index
/// numerator `min(Δ,thr)·steps + offset` (offset below thr) of tables up to `steps`
/// (and IntAttention's 31), for every threshold up to [`MAX_THRESHOLD`] with one shift:
/// the engine's, so that a layer's threshold is run-time data (its reciprocal changes,
/// the shift does not).
///
/// Numerators are below `2^B = 2^bits(MAX_THRESHOLD·(steps+1) − 1)`. With
/// `m = ceil(2^S/thr) = (2^S + e)/thr`, `0 ≤ e < thr`, `S = B + 24`:
/// `n·m/2^S = n/thr + n·e/(thr·2^S)` and `n·e < 2^B·2^24 = 2^S`, so the error never
/// reaches the next multiple of `1/thr` and `floor(n·m/2^S) = floor(n/thr)` (Granlund &
/// Montgomery 1994, Thm 4.2, with `l = log2 MAX_THRESHOLD`).
fn threshold_division(thr: u64, steps: usize) -> (u64, u32) {
    let shift = threshold_shift(steps);
    (((1u128 << shift).div_ceil(u128::from(thr))) as u64, shift)
}

/// The engine's fixed shift for tables up to `steps` ([`threshold_division`]).
pub fn threshold_shift(steps: usize) -> u32 {
    let steps = steps.max(INTATTENTION_EXP_ENTRIES - 1) as u64;
    bits_for(MAX_THRESHOLD as u64 * (steps + 1) - 1) + MAX_THRESHOLD.trailing_zeros()
}

impl AttentionConstants {
    /// The largest output numerator the engine takes: `2^(S+7)`, what the config's
    /// largest `scale_v / scale_out` (2^7) gives. It keeps `floor(K/ℓ)` inside the
    /// requantiser's 40 bits (ℓ ≥ 255 when a row saw a key) and the requantised value far
    /// inside 32 bits before saturation.
    pub fn max_output_numerator(&self) -> u64 {
        1 << (self.output_shift + 7)
    }

    /// The same engine's constants for other units (a layer's attention record in a
    /// program): the threshold's reciprocal derived again; tables and output shift
    /// are the engine's.
    pub fn for_units(&self, threshold: i64, index_offset: u64, output_numerator: u64) -> Self {
        let steps = (self.exp_table.len() - 1).max(self.rescale_table.len() - 1);
        let (threshold_reciprocal, threshold_shift) = threshold_division(threshold as u64, steps);
        AttentionConstants {
            threshold,
            threshold_reciprocal,
            threshold_shift,
            index_offset,
            output_numerator,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = r#"
[attention]
head_dim = 64
macs = 16
tile = 16
max_seq_len = 2048
mode = "prefill"
causal = true

[attention.quant]
scale_q = 0.035
scale_k = 0.035
scale_v = 0.03
scale_out = 0.03

[workload]
seq_len = 100
queries = 4
"#;

    #[test]
    fn good_config_derives_intattention_constants() {
        let c = AttentionConfig::from_toml(GOOD, "good").unwrap();
        let k = &c.constants;
        // trunc(6.6 / (0.035²/8))
        assert_eq!(k.threshold, (6.6f64 / (0.035 * 0.035 / 8.0)).trunc() as i64);
        assert_eq!(k.exp_table.len(), 128);
        assert_eq!((k.exp_table[0], k.exp_table[127]), (255, 0));
        assert!(k.exp_table.windows(2).all(|w| w[0] >= w[1]));
        // IntAttention's 32-entry table, and the engine's at 32 entries, are the same.
        assert_eq!(k.intattention_exp_table.len(), 32);
        assert_eq!(
            (k.intattention_exp_table[0], k.intattention_exp_table[31]),
            (255, 0)
        );
        let coarse = AttentionConfig::from_toml(
            &GOOD.replace("scale_out = 0.03", "scale_out = 0.03\nexp_entries = 32"),
            "coarse",
        )
        .unwrap();
        assert_eq!(coarse.constants.exp_table, k.intattention_exp_table);
        let err = AttentionConfig::from_toml(
            &GOOD.replace("scale_out = 0.03", "scale_out = 0.03\nexp_entries = 100"),
            "bad",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("attention.quant.exp_entries"), "{err}");
        assert_eq!(k.rescale_table.len(), 257);
        assert_eq!(k.rescale_table[0], 1 << 15);
        assert_eq!(k.rescale_table[256], 0);
        assert!(k.output_numerator < 1 << RECIPROCAL_NUMERATOR_BITS);
        assert_eq!(
            AttentionConfig::from_toml(&c.to_toml(), "again").unwrap(),
            c
        );
    }

    #[test]
    fn reciprocal_divides_exactly_by_the_threshold() {
        // Exhaustive over every numerator the engine can form, for a spread of
        // thresholds (small, power of two, odd, large).
        for thr in [1i64, 2, 3, 31, 32, 1000, 4097, 65_521] {
            let a = AttentionConfig::from_toml(GOOD, "t").unwrap().attention;
            let k = constants(&a, thr);
            let max = thr as u64 * 256 + k.index_offset;
            for n in 0..=max {
                let fast = ((u128::from(n) * u128::from(k.threshold_reciprocal))
                    >> k.threshold_shift) as u64;
                assert_eq!(fast, n / thr as u64, "thr {thr}, n {n}");
            }
        }
    }

    /// A program's record carries a layer's threshold, offset and numerator; the rest
    /// follows from the engine, as if its config had the layer's scales.
    #[test]
    fn other_units_give_what_a_config_with_their_scales_gives() {
        let c = AttentionConfig::from_toml(GOOD, "good").unwrap();
        let other = c.with_scales([0.021, 0.05, 0.013, 0.04], "other").unwrap();
        let k = &other.constants;
        assert_ne!(k.threshold, c.constants.threshold);
        assert_eq!(
            &c.constants
                .for_units(k.threshold, k.index_offset, k.output_numerator),
            k
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (from, to, key) in [
            ("scale_q = 0.035", "scale_q = 0.0", "scale_q"),
            ("scale_k = 0.035", "scale_k = -1.0", "scale_k"),
            ("macs = 16", "macs = 12", "attention.macs"),
            ("head_dim = 64", "head_dim = 72", "attention.head_dim"),
            ("seq_len = 100", "seq_len = 4096", "workload.seq_len"),
            ("queries = 4", "queries = 101", "workload.queries"),
            ("scale_out = 0.03", "scale_out = 100.0", "scale_out"),
            ("scale_q = 0.035", "scale_q = 1e-9", "attention.quant.clip"),
        ] {
            let text = GOOD.replace(from, to);
            let err = AttentionConfig::from_toml(&text, "f.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains("f.toml"), "{to}: {err}");
        }
        let decode = GOOD.replace("\"prefill\"", "\"decode\"");
        let err = AttentionConfig::from_toml(&decode, "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("workload.queries"), "{err}");
    }
}
