//! The float reference of a BitNet b1.58 transformer: the network as transformers runs
//! a checkpoint (`AutoBitLinear`, offline weights), in `f32` with `f64` reductions, one
//! token at a time with a KV cache. It is the fidelity yardstick for the accelerator's
//! integer contract (issue 17), not bit-exact with anything.
//!
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

use tern_model::checkpoint::{Checkpoint, TernaryMatrix};

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

/// A checkpoint running token by token.
pub struct FloatReference<'a> {
    ck: &'a Checkpoint,
    /// Per layer: keys and values of every position so far (`kv_width` each).
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    position: usize,
}

impl<'a> FloatReference<'a> {
    pub fn new(ck: &'a Checkpoint) -> Self {
        let layers = ck.config.layers;
        FloatReference {
            ck,
            keys: vec![vec![]; layers],
            values: vec![vec![]; layers],
            position: 0,
        }
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
            let v = bitlinear(&a, wv);
            q.chunks_mut(d).for_each(|head| rope(head, p, c.rope_theta));
            k.chunks_mut(d).for_each(|head| rope(head, p, c.rope_theta));
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
        let xf = rmsnorm(&x, &self.ck.norm, eps);
        let head = self.ck.lm_head.as_ref().unwrap_or(&self.ck.embed_tokens);
        self.position += 1;
        (0..c.vocab)
            .map(|t| {
                head[t * h..(t + 1) * h]
                    .iter()
                    .zip(&xf)
                    .map(|(&w, &v)| f64::from(w) * f64::from(v))
                    .sum::<f64>() as f32
            })
            .collect()
    }
}
