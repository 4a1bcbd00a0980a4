//! A BitNet b1.58 transformer, two ways.
//!
//! - [`FloatReference`]: the network as transformers runs a checkpoint
//!   (`AutoBitLinear`, offline weights), in `f32` with `f64` reductions, one token at a
//!   time with a KV cache. The fidelity yardstick, not bit-exact with anything.
//! - [`IntegerModel`]: the accelerator's contract (ARCHITECTURE.md, "A whole model"):
//!   the host's share in `f32` (embedding, norms, per-token int8 quantisation,
//!   dequantisation, RoPE, residuals, ReLU²·up, final norm, LM head) around a
//!   [`Fabric`] that does every ternary matmul and the integer attention. With
//!   [`GoldenFabric`] (plain integer dot products and `golden::attention`) it is the
//!   golden model; the board runner (`tern_flows::generate`) supplies a fabric that
//!   drives the accelerator tops, so the two runs share only the host's share and
//!   their logits agree bit for bit exactly when every fabric call does.
//!
//! The float reference:
//! Per token at position `p` (x is the residual stream):
//! ```text
//! x = embed[token]
//! per layer: h = rmsnorm(x)·g_in;  q, k, v = bitlinear(h);  rope(q, k, p)
//!            attention per head over positions 0..=p (GQA: head i reads KV head i/group)
//!            x += bitlinear(rmsnorm(attn)·g_attn_sub, o)
//!            h = rmsnorm(x)·g_post;  a = relu(bitlinear(h, gate))² · bitlinear(h, up)
//!            x += bitlinear(rmsnorm(a)·g_ffn_sub, down)
//! logits = lm_head · (rmsnorm(x)·g_final)
//! bitlinear(x, W) = (W · round_clamp(x·s)/s) · weight_scale,  s = 127 / max(max|x|, 1e-5)
//!                   (round half to even, as torch.round)
//! rope: pairs (i, i + d/2) rotated by p·θ^(−2i/d)   (transformers' rotate_half)
//! ```

use ndarray::ArrayView2;
use tern_hdl::streams::attention::{schedule, RowOutput};
use tern_hdl::AttentionConfig;
use tern_model::checkpoint::{Checkpoint, TernaryMatrix};
use tern_model::ModelConfig;

use super::attention::streamed_attention;

/// transformers' floor on the absmax of an activation vector.
const ABSMAX_FLOOR: f32 = 1e-5;

fn rmsnorm(x: &[f32], gain: &[f32], eps: f64) -> Vec<f32> {
    let mean = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64;
    let inv = (1.0 / (mean + eps).sqrt()) as f32;
    x.iter().zip(gain).map(|(&v, &g)| v * inv * g).collect()
}

/// Per-token absmax int8 fake quantisation (transformers' `ActQuant`).
fn act_quant(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(ABSMAX_FLOOR);
    let s = 127.0 / max;
    x.iter()
        .map(|&v| (v * s).round_ties_even().clamp(-128.0, 127.0) / s)
        .collect()
}

fn bitlinear(x: &[f32], w: &TernaryMatrix) -> Vec<f32> {
    let xq = act_quant(x);
    (0..w.m)
        .map(|r| {
            let row = &w.w[r * w.k..(r + 1) * w.k];
            let dot: f64 = row
                .iter()
                .zip(&xq)
                .map(|(&t, &v)| f64::from(t) * f64::from(v))
                .sum();
            dot as f32 * w.scale
        })
        .collect()
}

fn rope(x: &mut [f32], position: usize, theta: f64) {
    let d = x.len();
    let half = d / 2;
    for i in 0..half {
        let freq = theta.powf(-2.0 * i as f64 / d as f64);
        let (sin, cos) = (position as f64 * freq).sin_cos();
        let (a, b) = (f64::from(x[i]), f64::from(x[i + half]));
        x[i] = (a * cos - b * sin) as f32;
        x[i + half] = (b * cos + a * sin) as f32;
    }
}

/// Largest `|value|` seen at the attention's inputs and output, over every layer and
/// position a [`FloatReference`] has run: what static int8 scales must cover.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AttentionRanges {
    pub q: f32,
    pub k: f32,
    pub v: f32,
    pub out: f32,
}

fn absmax(x: &[f32]) -> f32 {
    x.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// A checkpoint running token by token.
pub struct FloatReference<'a> {
    ck: &'a Checkpoint,
    /// Per layer: keys and values of every position so far (`kv_width` each).
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    position: usize,
    /// Ranges of the attention's operands so far (for calibrating static scales), over
    /// every layer and per layer.
    pub ranges: AttentionRanges,
    pub layer_ranges: Vec<AttentionRanges>,
    /// Per layer and operand (q, k, v, output): the largest `|value|` per head.
    pub head_ranges: Vec<[Vec<f32>; 4]>,
    /// Where the attention's operands are rounded to int8 (nowhere by default).
    int8: Int8Attention,
}

/// How the float reference rounds one of the attention's operands to int8, to measure
/// what each rounding of the integer attention costs against the float network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Int8Rounding {
    /// Not rounded.
    #[default]
    None,
    /// One static unit per layer (what the one top's program carries).
    PerLayer,
    /// One static unit per layer and head.
    PerHead,
    /// The operand's own absmax: per token and head for q, k and v; per token over every
    /// head for the output (a norm follows it, so one scale per token is free).
    PerToken,
}

/// The roundings of q, k, v and the output, and the static units they need.
#[derive(Debug, Clone, Default)]
pub struct Int8Attention {
    rounding: [Int8Rounding; 4],
    /// Per layer and operand: a unit per head, then the layer's unit.
    units: Vec<[Vec<f32>; 4]>,
}

impl Int8Attention {
    /// Static units over the ranges `calibration` saw (a float reference run over the
    /// prompt), times `headroom`.
    pub fn calibrated(
        calibration: &FloatReference,
        rounding: [Int8Rounding; 4],
        headroom: f32,
    ) -> Self {
        let unit = |range: f32| range.max(ABSMAX_FLOOR) * headroom / 127.0;
        let units = calibration
            .head_ranges
            .iter()
            .zip(&calibration.layer_ranges)
            .map(|(heads, layer)| {
                let layer = [layer.q, layer.k, layer.v, layer.out];
                std::array::from_fn(|t| {
                    let mut u: Vec<f32> = heads[t].iter().map(|&r| unit(r)).collect();
                    u.push(unit(layer[t]));
                    u
                })
            })
            .collect();
        Int8Attention { rounding, units }
    }

    /// Round operand `which` (0..4: q, k, v, output) of layer `l` in place; `d` values
    /// a head.
    fn round(&self, l: usize, which: usize, x: &mut [f32], d: usize) {
        let rounding = self.rounding[which];
        let width = match (rounding, which) {
            (Int8Rounding::None, _) => return,
            (Int8Rounding::PerToken, 3) => x.len(),
            _ => d,
        };
        for (head, chunk) in x.chunks_mut(width).enumerate() {
            let unit = match rounding {
                Int8Rounding::PerLayer => *self.units[l][which].last().expect("a layer unit"),
                Int8Rounding::PerHead => self.units[l][which][head],
                _ => absmax(chunk).max(ABSMAX_FLOOR) / 127.0,
            };
            for v in chunk.iter_mut() {
                *v = (*v / unit).round_ties_even().clamp(-128.0, 127.0) * unit;
            }
        }
    }
}

impl<'a> FloatReference<'a> {
    pub fn new(ck: &'a Checkpoint) -> Self {
        let (c, layers) = (&ck.config, ck.config.layers);
        FloatReference {
            ck,
            keys: vec![vec![]; layers],
            values: vec![vec![]; layers],
            position: 0,
            ranges: AttentionRanges::default(),
            layer_ranges: vec![AttentionRanges::default(); layers],
            head_ranges: vec![
                std::array::from_fn(|t| {
                    let heads = [c.heads, c.kv_heads, c.kv_heads, c.heads];
                    vec![0.0; heads[t]]
                });
                layers
            ],
            int8: Int8Attention::default(),
        }
    }

    /// The same model with the attention's operands rounded as `int8` says.
    pub fn with_int8_attention(mut self, int8: Int8Attention) -> Self {
        assert!(
            int8.units.is_empty() || int8.units.len() == self.ck.config.layers,
            "int8 units for every layer"
        );
        self.int8 = int8;
        self
    }

    /// Tokens seen so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Feed `token` at the next position; the logits over the vocabulary.
    ///
    /// Panics if `token` is outside the vocabulary or the sequence would exceed
    /// `max_seq_len` (callers check first).
    pub fn step(&mut self, token: usize) -> Vec<f32> {
        let c = &self.ck.config;
        assert!(token < c.vocab && self.position < c.max_seq_len);
        let (h, d, eps) = (c.hidden, c.head_dim, c.norm_eps);
        let p = self.position;
        let mut x = self.ck.embed_tokens[token * h..(token + 1) * h].to_vec();
        for (l, layer) in self.ck.layers.iter().enumerate() {
            let [wq, wk, wv, wo, wg, wu, wd] = &layer.matmuls[..] else {
                unreachable!("a layer has seven matmuls")
            };
            let a = rmsnorm(&x, &layer.input_layernorm, eps);
            let mut q = bitlinear(&a, wq);
            let mut k = bitlinear(&a, wk);
            let mut v = bitlinear(&a, wv);
            q.chunks_mut(d).for_each(|head| rope(head, p, c.rope_theta));
            k.chunks_mut(d).for_each(|head| rope(head, p, c.rope_theta));
            for r in [&mut self.ranges, &mut self.layer_ranges[l]] {
                (r.q, r.k, r.v) = (
                    r.q.max(absmax(&q)),
                    r.k.max(absmax(&k)),
                    r.v.max(absmax(&v)),
                );
            }
            for (which, x) in [&mut q, &mut k, &mut v].into_iter().enumerate() {
                for (r, head) in self.head_ranges[l][which].iter_mut().zip(x.chunks(d)) {
                    *r = r.max(absmax(head));
                }
                self.int8.round(l, which, x, d);
            }
            self.keys[l].extend_from_slice(&k);
            self.values[l].extend_from_slice(&v);
            let kv = c.kv_width();
            let mut attn = vec![0f32; h];
            for head in 0..c.heads {
                let kvh = head / c.group();
                let qh = &q[head * d..(head + 1) * d];
                let scores: Vec<f64> = (0..=p)
                    .map(|j| {
                        let kj = &self.keys[l][j * kv + kvh * d..j * kv + (kvh + 1) * d];
                        let dot: f64 = qh
                            .iter()
                            .zip(kj)
                            .map(|(&a, &b)| f64::from(a) * f64::from(b))
                            .sum();
                        dot / (d as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = e.iter().sum();
                for i in 0..d {
                    let out: f64 = (0..=p)
                        .map(|j| e[j] * f64::from(self.values[l][j * kv + kvh * d + i]))
                        .sum();
                    attn[head * d + i] = (out / total) as f32;
                }
            }
            for r in [&mut self.ranges, &mut self.layer_ranges[l]] {
                r.out = r.out.max(absmax(&attn));
            }
            for (r, head) in self.head_ranges[l][3].iter_mut().zip(attn.chunks(d)) {
                *r = r.max(absmax(head));
            }
            self.int8.round(l, 3, &mut attn, d);
            let o = bitlinear(&rmsnorm(&attn, &layer.attn_sub_norm, eps), wo);
            x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
            let a = rmsnorm(&x, &layer.post_attention_layernorm, eps);
            let gate = bitlinear(&a, wg);
            let up = bitlinear(&a, wu);
            let act: Vec<f32> = gate
                .iter()
                .zip(&up)
                .map(|(&g, &u)| g.max(0.0) * g.max(0.0) * u)
                .collect();
            let down = bitlinear(&rmsnorm(&act, &layer.ffn_sub_norm, eps), wd);
            x.iter_mut().zip(&down).for_each(|(x, d)| *x += d);
        }
        self.position += 1;
        lm_head(self.ck, &x)
    }
}

/// Final norm, then the LM head (the embedding when tied), in `f32` with `f64` sums.
fn lm_head(ck: &Checkpoint, x: &[f32]) -> Vec<f32> {
    let (h, vocab) = (ck.config.hidden, ck.config.vocab);
    let xf = rmsnorm(x, &ck.norm, ck.config.norm_eps);
    let head = ck.lm_head.as_ref().unwrap_or(&ck.embed_tokens);
    (0..vocab)
        .map(|t| {
            head[t * h..(t + 1) * h]
                .iter()
                .zip(&xf)
                .map(|(&w, &v)| f64::from(w) * f64::from(v))
                .sum::<f64>() as f32
        })
        .collect()
}

/// The fabric's share of the integer contract: every ternary matmul and the attention.
/// Matmul `which` indexes [`ModelConfig::layer_matmuls`] (q, k, v, o, gate, up, down).
pub trait Fabric {
    type Error;
    /// `W·x` in integers for each of the `xs.len() / K` tokens (token-major int8);
    /// `tokens × M` results, token-major.
    fn matmul(&mut self, layer: usize, which: usize, xs: &[i8]) -> Result<Vec<i64>, Self::Error>;
    /// Append int8 keys and values (token-major, `head_dim` each) to the cache of
    /// `(layer, kv_head)`.
    fn kv_append(
        &mut self,
        layer: usize,
        kv_head: usize,
        keys: &[i8],
        values: &[i8],
    ) -> Result<(), Self::Error>;
    /// The integer attention engine's rows against the cache of `(layer, kv_head)`
    /// (`tern_hdl::streams::attention::schedule` says which keys each row sees).
    fn attention(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<RowOutput>, Self::Error>;

    /// Every attention call of one layer: `(KV head, queries)` each, all with the same
    /// first position and causality. The calls are independent, so a fabric with several
    /// attention engines may run them side by side; by default they run one by one.
    fn attention_layer(
        &mut self,
        layer: usize,
        calls: &[(usize, Vec<i8>)],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<Vec<RowOutput>>, Self::Error> {
        calls
            .iter()
            .map(|(kv_head, q)| self.attention(layer, *kv_head, q, first_position, causal))
            .collect()
    }
}

/// The greedy choice: the index of the largest logit (the first of equals).
pub fn greedy(logits: &[f32]) -> usize {
    (0..logits.len()).fold(0, |best, i| if logits[i] > logits[best] { i } else { best })
}

/// How far above the calibration tokens' largest values a layer's units reach: decoding
/// goes beyond what a prompt showed. Measured against transformers on random
/// 2B4T-layout checkpoints (BENCHMARKS.md): 1.25 gave the best worst-case cosine of 1,
/// 1.25 and 1.5.
pub const CALIBRATION_HEADROOM: f32 = 1.25;

/// The int8 units of the attention's operands: static per-tensor scales, the
/// `[attention.quant]` of the attention engine (its constants are built from them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionScales {
    pub q: f64,
    pub k: f64,
    pub v: f64,
    pub out: f64,
}

impl AttentionScales {
    pub fn of(cfg: &AttentionConfig) -> Self {
        let q = &cfg.attention.quant;
        AttentionScales {
            q: q.scale_q,
            k: q.scale_k,
            v: q.scale_v,
            out: q.scale_out,
        }
    }

    /// Scales whose int8 range covers `ranges` (one unit = absmax / 127).
    pub fn covering(ranges: &AttentionRanges) -> Self {
        let unit = |m: f32| f64::from(m.max(ABSMAX_FLOOR)) / 127.0;
        AttentionScales {
            q: unit(ranges.q),
            k: unit(ranges.k),
            v: unit(ranges.v),
            out: unit(ranges.out),
        }
    }

    /// Units per layer for `ck`, measured by the float reference over `tokens` (the
    /// prompt): each layer's largest `|q|`, `|k|`, `|v|` and `|output|` times
    /// [`CALIBRATION_HEADROOM`]. Run-time data of the one top's program (one record per
    /// layer); the Verilog does not change with them.
    pub fn calibrate(ck: &Checkpoint, tokens: &[usize]) -> Vec<AttentionScales> {
        let mut float = FloatReference::new(ck);
        tokens.iter().for_each(|&t| drop(float.step(t)));
        float
            .layer_ranges
            .iter()
            .map(|r| {
                AttentionScales::covering(&AttentionRanges {
                    q: r.q * CALIBRATION_HEADROOM,
                    k: r.k * CALIBRATION_HEADROOM,
                    v: r.v * CALIBRATION_HEADROOM,
                    out: r.out * CALIBRATION_HEADROOM,
                })
            })
            .collect()
    }
}

/// Per-token absmax int8 quantisation: the int8 vector and its scale `s` (a value is
/// `x_i / s`). transformers' `ActQuant` without the division back.
pub fn quantize_activations(x: &[f32]) -> (Vec<i8>, f32) {
    let s = 127.0 / absmax(x).max(ABSMAX_FLOOR);
    let q = x
        .iter()
        .map(|&v| (v * s).round_ties_even().clamp(-128.0, 127.0) as i8)
        .collect();
    (q, s)
}

/// Back from a BitLinear's integer result: `(acc / s) · weight_scale`.
fn dequantize(acc: i64, s: f32, weight_scale: f32) -> f32 {
    (acc as f64 / f64::from(s)) as f32 * weight_scale
}

/// A static-scale int8 value for the attention (round half to even, saturating).
fn to_unit(x: f32, unit: f64) -> i8 {
    (f64::from(x) / unit).round_ties_even().clamp(-128.0, 127.0) as i8
}

/// The integer contract, run token by token or a prompt at a time over a [`Fabric`].
pub struct IntegerModel<'a> {
    ck: &'a Checkpoint,
    scales: AttentionScales,
    position: usize,
}

/// Why a forward pass cannot start (checked before any fabric call).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("token {index} is id {id}, outside the vocabulary of {vocab}")]
    TokenOutOfVocabulary {
        index: usize,
        id: usize,
        vocab: usize,
    },
    #[error("{have} positions so far and {adding} more exceed the context of {max} tokens (model max_seq_len)")]
    ContextFull {
        have: usize,
        adding: usize,
        max: usize,
    },
    #[error("no tokens to run")]
    Empty,
}

/// Check a model's token ids against its vocabulary and context.
pub fn check_tokens(
    config: &ModelConfig,
    position: usize,
    tokens: &[usize],
) -> Result<(), InputError> {
    if tokens.is_empty() {
        return Err(InputError::Empty);
    }
    if let Some((index, &id)) = tokens.iter().enumerate().find(|(_, &t)| t >= config.vocab) {
        return Err(InputError::TokenOutOfVocabulary {
            index,
            id,
            vocab: config.vocab,
        });
    }
    if position + tokens.len() > config.max_seq_len {
        return Err(InputError::ContextFull {
            have: position,
            adding: tokens.len(),
            max: config.max_seq_len,
        });
    }
    Ok(())
}

impl<'a> IntegerModel<'a> {
    pub fn new(ck: &'a Checkpoint, scales: AttentionScales) -> Self {
        IntegerModel {
            ck,
            scales,
            position: 0,
        }
    }

    /// Tokens seen so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Run `tokens` at the next positions (a prompt in one pass: every matmul carries
    /// all of them, attention rows are causal); the logits after the last one.
    ///
    /// Decoding one token, the query heads of a KV head go to the fabric as one
    /// non-causal block (GQA); a prompt goes per query head as causal rows. Either way
    /// each row sees the keys up to its own position, so the logits do not depend on
    /// how a sequence is cut into passes.
    pub fn forward<F: Fabric>(
        &mut self,
        fabric: &mut F,
        tokens: &[usize],
    ) -> Result<Vec<f32>, ModelRunError<F::Error>> {
        let c = &self.ck.config;
        check_tokens(c, self.position, tokens).map_err(ModelRunError::Input)?;
        let (h, d, eps, t) = (c.hidden, c.head_dim, c.norm_eps, tokens.len());
        let p0 = self.position;
        let fab = ModelRunError::Fabric;
        // The residual stream, token-major.
        let mut x: Vec<f32> = tokens
            .iter()
            .flat_map(|&id| self.ck.embed_tokens[id * h..(id + 1) * h].iter().copied())
            .collect();
        for (l, layer) in self.ck.layers.iter().enumerate() {
            // BitLinear over every token: norm, quantise, fabric, dequantise.
            let linear = |fabric: &mut F,
                          input: &[f32],
                          gain: &[f32],
                          which: &[usize]|
             -> Result<Vec<Vec<f32>>, ModelRunError<F::Error>> {
                let width = gain.len();
                let mut xs = Vec::with_capacity(input.len());
                let mut s = Vec::with_capacity(t);
                for (token, row) in input.chunks(width).enumerate() {
                    // Quantisation would turn a NaN into 0 and hide it: stop here instead.
                    finite(row, || {
                        let names: Vec<&str> =
                            which.iter().map(|&w| c.layer_matmuls()[w].name).collect();
                        format!("layer {l}, token {token}: the input to {}", names.join("/"))
                    })?;
                    let (q, scale) = quantize_activations(&rmsnorm(row, gain, eps));
                    xs.extend(q);
                    s.push(scale);
                }
                which
                    .iter()
                    .map(|&w| {
                        let mat = &layer.matmuls[w];
                        let acc = fabric.matmul(l, w, &xs).map_err(fab)?;
                        Ok(acc
                            .chunks(mat.m)
                            .zip(&s)
                            .flat_map(|(row, &s)| {
                                row.iter().map(move |&a| dequantize(a, s, mat.scale))
                            })
                            .collect())
                    })
                    .collect()
            };
            let [q, k, v] = &mut linear(fabric, &x, &layer.input_layernorm, &[0, 1, 2])?[..] else {
                unreachable!()
            };
            for (i, (qt, kt)) in q.chunks_mut(h).zip(k.chunks_mut(c.kv_width())).enumerate() {
                qt.chunks_mut(d)
                    .for_each(|head| rope(head, p0 + i, c.rope_theta));
                kt.chunks_mut(d)
                    .for_each(|head| rope(head, p0 + i, c.rope_theta));
            }
            let unit = |v: &[f32], u: f64| v.iter().map(|&x| to_unit(x, u)).collect::<Vec<i8>>();
            let (qi, ki, vi) = (
                unit(q, self.scales.q),
                unit(k, self.scales.k),
                unit(v, self.scales.v),
            );
            let outs = attention_rows(c, fabric, l, p0, t, [&qi, &ki, &vi]).map_err(fab)?;
            let mut attn = vec![0f32; t * h];
            for (i, row) in outs.iter().enumerate() {
                for (o, &v) in attn[i * h..(i + 1) * h].iter_mut().zip(row) {
                    *o = (f64::from(v) * self.scales.out) as f32;
                }
            }
            let [o] = &linear(fabric, &attn, &layer.attn_sub_norm, &[3])?[..] else {
                unreachable!()
            };
            x.iter_mut().zip(o).for_each(|(x, o)| *x += o);
            let [gate, up] = &linear(fabric, &x, &layer.post_attention_layernorm, &[4, 5])?[..]
            else {
                unreachable!()
            };
            let act: Vec<f32> = gate
                .iter()
                .zip(up)
                .map(|(&g, &u)| g.max(0.0) * g.max(0.0) * u)
                .collect();
            let [down] = &linear(fabric, &act, &layer.ffn_sub_norm, &[6])?[..] else {
                unreachable!()
            };
            x.iter_mut().zip(down).for_each(|(x, d)| *x += d);
        }
        self.position += t;
        let logits = lm_head(self.ck, &x[(t - 1) * h..]);
        finite(&logits, || {
            format!("position {}: the logits", self.position - 1)
        })?;
        Ok(logits)
    }
}

/// How one layer's attention for `t` tokens splits into the engine's calls: per KV
/// head, the keys and values to append; then the calls (decoding one token, the query
/// heads of a KV head go as one non-causal block, GQA; a prompt goes per query head as
/// causal rows). `[q, k, v]` are int8 and token-major.
pub struct AttentionCalls {
    /// Per KV head: the pass's keys and values (token-major, `head_dim` each).
    pub appends: Vec<(Vec<i8>, Vec<i8>)>,
    /// Per call: its KV head and its queries (row-major, `head_dim` each).
    pub calls: Vec<(usize, Vec<i8>)>,
    /// Per call: the (query head, token) of each row.
    rows: Vec<Vec<(usize, usize)>>,
}

impl AttentionCalls {
    pub fn of(c: &ModelConfig, t: usize, [qi, ki, vi]: [&[i8]; 3]) -> AttentionCalls {
        let (h, d) = (c.hidden, c.head_dim);
        // Head `hd`'s slice of token `i` in a token-major matrix of `width` columns.
        let head_of = |m: &[i8], width: usize, i: usize, hd: usize| {
            m[i * width + hd * d..i * width + (hd + 1) * d].to_vec()
        };
        let mut plan = AttentionCalls {
            appends: vec![],
            calls: vec![],
            rows: vec![],
        };
        for kvh in 0..c.kv_heads {
            plan.appends.push((
                (0..t)
                    .flat_map(|i| head_of(ki, c.kv_width(), i, kvh))
                    .collect(),
                (0..t)
                    .flat_map(|i| head_of(vi, c.kv_width(), i, kvh))
                    .collect(),
            ));
            let heads = kvh * c.group()..(kvh + 1) * c.group();
            let rows_of: Vec<Vec<(usize, usize)>> = if t == 1 {
                vec![heads.map(|hd| (hd, 0)).collect()]
            } else {
                heads.map(|hd| (0..t).map(|i| (hd, i)).collect()).collect()
            };
            for rows in rows_of {
                let queries = rows
                    .iter()
                    .flat_map(|&(hd, i)| head_of(qi, h, i, hd))
                    .collect();
                plan.calls.push((kvh, queries));
                plan.rows.push(rows);
            }
        }
        plan
    }

    /// The calls' outputs (one per call, in order) back in token-major order: per
    /// token, every query head's `head_dim` outputs.
    pub fn gather(&self, c: &ModelConfig, t: usize, outs: &[Vec<RowOutput>]) -> Vec<Vec<i8>> {
        let d = c.head_dim;
        let mut attn = vec![vec![0i8; c.hidden]; t];
        for (rows, out) in self.rows.iter().zip(outs) {
            for (&(hd, i), row) in rows.iter().zip(out) {
                attn[i][hd * d..(hd + 1) * d].copy_from_slice(&row.values);
            }
        }
        attn
    }
}

/// One layer's attention on the fabric for `t` tokens at positions `p0..`: every KV
/// head's keys and values appended, then the layer's calls in one batch
/// ([`AttentionCalls`]). The result is token-major: per token, every query head's
/// `head_dim` outputs.
pub fn attention_rows<F: Fabric>(
    c: &ModelConfig,
    fabric: &mut F,
    l: usize,
    p0: usize,
    t: usize,
    qkv: [&[i8]; 3],
) -> Result<Vec<Vec<i8>>, F::Error> {
    let plan = AttentionCalls::of(c, t, qkv);
    for (kvh, (keys, values)) in plan.appends.iter().enumerate() {
        fabric.kv_append(l, kvh, keys, values)?;
    }
    let outs = fabric.attention_layer(l, &plan.calls, p0, t > 1)?;
    Ok(plan.gather(c, t, &outs))
}

/// `Err(NonFinite)` naming the first NaN or infinity of `values` (`what` says where).
fn finite<E>(values: &[f32], what: impl FnOnce() -> String) -> Result<(), ModelRunError<E>> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(ModelRunError::NonFinite {
            what: what(),
            index,
            value: values[index],
        }),
    }
}

/// A forward pass that did not finish.
#[derive(Debug, thiserror::Error)]
pub enum ModelRunError<E> {
    #[error(transparent)]
    Input(InputError),
    #[error("fabric: {0}")]
    Fabric(E),
    /// A NaN or an infinity where the contract needs a number: never a token.
    #[error("{what} holds {value} at index {index}: not a finite number")]
    NonFinite {
        what: String,
        index: usize,
        value: f32,
    },
}

/// The fabric in software: integer dot products over the checkpoint's ternary weights
/// and the streamed attention golden model over per-(layer, KV head) int8 caches.
pub struct GoldenFabric<'a> {
    ck: &'a Checkpoint,
    /// The attention engine's arithmetic, per layer (its units may differ by layer).
    attention: Vec<AttentionConfig>,
    /// Per (layer, KV head): keys and values so far, token-major.
    caches: Vec<(Vec<i8>, Vec<i8>)>,
}

impl<'a> GoldenFabric<'a> {
    /// `attention`: the engine whose arithmetic (tables, constants) attention follows;
    /// its head_dim must be the model's.
    pub fn new(ck: &'a Checkpoint, attention: &AttentionConfig) -> Self {
        Self::per_layer(ck, vec![attention.clone(); ck.config.layers])
    }

    /// One attention engine's arithmetic per layer (units calibrated layer by layer).
    pub fn per_layer(ck: &'a Checkpoint, attention: Vec<AttentionConfig>) -> Self {
        let c = &ck.config;
        assert_eq!(attention.len(), c.layers, "one attention config per layer");
        for a in &attention {
            assert_eq!(a.attention.head_dim, c.head_dim, "attention head_dim");
        }
        GoldenFabric {
            ck,
            attention,
            caches: vec![(vec![], vec![]); c.layers * c.kv_heads],
        }
    }
}

impl Fabric for GoldenFabric<'_> {
    type Error = std::convert::Infallible;

    fn matmul(&mut self, layer: usize, which: usize, xs: &[i8]) -> Result<Vec<i64>, Self::Error> {
        use rayon::prelude::*;
        let w = &self.ck.layers[layer].matmuls[which];
        // Rows in parallel: a 0.73B-shaped model is ~680M MACs a token.
        let y: Vec<Vec<i64>> = xs
            .chunks(w.k)
            .map(|x| {
                w.w.par_chunks(w.k)
                    .map(|row| {
                        row.iter()
                            .zip(x)
                            .map(|(&a, &b)| i64::from(a) * i64::from(b))
                            .sum::<i64>()
                    })
                    .collect()
            })
            .collect();
        Ok(y.concat())
    }

    fn kv_append(
        &mut self,
        layer: usize,
        kv_head: usize,
        keys: &[i8],
        values: &[i8],
    ) -> Result<(), Self::Error> {
        let cache = &mut self.caches[layer * self.ck.config.kv_heads + kv_head];
        cache.0.extend_from_slice(keys);
        cache.1.extend_from_slice(values);
        Ok(())
    }

    fn attention(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<RowOutput>, Self::Error> {
        let d = self.ck.config.head_dim;
        let (keys, values) = &self.caches[layer * self.ck.config.kv_heads + kv_head];
        let seq = keys.len() / d;
        let rows = schedule(
            first_position,
            queries.len() / d,
            seq,
            causal,
            self.attention[layer].attention.tile,
        );
        fn view(m: &[i8], n: usize, d: usize) -> ArrayView2<'_, i8> {
            ArrayView2::from_shape((n, d), m).expect("whole rows")
        }
        Ok(streamed_attention(
            &self.attention[layer],
            &rows,
            view(queries, queries.len() / d, d),
            view(keys, seq, d),
            view(values, seq, d),
        ))
    }
}
