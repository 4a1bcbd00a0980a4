//! A whole BitNet token with every operation in the fabric's arithmetic: the golden twin
//! of the one-top accelerator. The ternary matmuls and the attention run on a [`Fabric`]
//! (as in [`super::bitnet::IntegerModel`]); everything else — embedding, norms,
//! quantisation, dequantisation, RoPE, residuals, ReLU²·up, the final norm, an int8 LM
//! head and the greedy argmax — in the vector unit's integers ([`super::vector`],
//! docs/vector.md), never in floating point. The host's only floating point is
//! converting the checkpoint once ([`VectorProgram::build`]) and reporting logits.

use tern_hdl::program::bf16_bits;
use tern_model::checkpoint::Checkpoint;

use super::bitnet::{attention_rows, check_tokens, AttentionScales, Fabric, ModelRunError};
use super::vector::{
    dequant, embed, factor, norm_quant, relu2_mul, rope, rope_table, to_int8, Gain, Int8Head,
    Quantised, Saturations, Scale, ScaleError,
};

/// Fractional bits of the residual stream unless a program says otherwise.
pub const RESIDUAL_FRAC: i32 = 16;

/// One layer's data for the vector unit.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerProgram {
    pub input_norm: Gain,
    pub attn_sub_norm: Gain,
    pub post_attention_norm: Gain,
    pub ffn_sub_norm: Gain,
    /// Per matmul (q, k, v, o, gate, up, down): the weight scale.
    pub weight_scales: Vec<Scale>,
    /// `1/unit` of the attention's int8 q, k and v.
    pub inv_units: [Scale; 3],
    /// The unit of the attention's int8 output.
    pub unit_out: Scale,
}

/// What the host writes once per model for the vector unit: the checkpoint's norms,
/// scales, RoPE table and LM head in the fabric's formats (docs/vector.md).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorProgram {
    pub residual_frac: i32,
    pub eps: Scale,
    pub layers: Vec<LayerProgram>,
    pub final_norm: Gain,
    /// Per position, `head_dim / 2` (cos, sin) pairs in Q1.14.
    pub rope: Vec<(i16, i16)>,
    pub head: Int8Head,
}

impl VectorProgram {
    /// `scales`: the attention's units, one for every layer or one per layer.
    pub fn build(
        ck: &Checkpoint,
        scales: &[AttentionScales],
        residual_frac: i32,
    ) -> Result<VectorProgram, ScaleError> {
        let c = &ck.config;
        assert!(
            scales.len() == 1 || scales.len() == c.layers,
            "attention units for every layer or one per layer"
        );
        let inv = |unit: f64| Scale::of(1.0 / unit);
        let layers = ck
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let scales = scales[i.min(scales.len() - 1)];
                Ok(LayerProgram {
                    input_norm: Gain::of(&l.input_layernorm),
                    attn_sub_norm: Gain::of(&l.attn_sub_norm),
                    post_attention_norm: Gain::of(&l.post_attention_layernorm),
                    ffn_sub_norm: Gain::of(&l.ffn_sub_norm),
                    weight_scales: l
                        .matmuls
                        .iter()
                        .map(|m| Scale::of(f64::from(m.scale)))
                        .collect::<Result<_, _>>()?,
                    inv_units: [inv(scales.q)?, inv(scales.k)?, inv(scales.v)?],
                    unit_out: Scale::of(scales.out)?,
                })
            })
            .collect::<Result<_, ScaleError>>()?;
        let head = ck.lm_head.as_ref().unwrap_or(&ck.embed_tokens);
        Ok(VectorProgram {
            residual_frac,
            eps: Scale::of(c.norm_eps)?,
            layers,
            final_norm: Gain::of(&ck.norm),
            rope: rope_table(c.head_dim, c.max_seq_len, c.rope_theta),
            head: Int8Head::of(head, c.vocab, c.hidden),
        })
    }
}

/// What one forward pass gives: the fabric's next token and, for reporting, the logits
/// the int8 head's scores stand for (real units, computed on the host).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOut {
    pub next: usize,
    /// The int8 head's scores (`acc_r · m_r`), what the argmax compared.
    pub scores: Vec<i64>,
    pub logits: Vec<f32>,
    /// The last token's final norm: what every LM head format reads.
    pub last: Quantised,
}

/// The fixed-point model, run token by token or a prompt at a time over a [`Fabric`].
pub struct FixedPointModel<'a> {
    ck: &'a Checkpoint,
    program: &'a VectorProgram,
    position: usize,
    /// Narrowings that saturated so far (the fabric's sticky flag; 0 on a sound program).
    pub saturations: Saturations,
}

impl<'a> FixedPointModel<'a> {
    pub fn new(ck: &'a Checkpoint, program: &'a VectorProgram) -> Self {
        FixedPointModel {
            ck,
            program,
            position: 0,
            saturations: Saturations::default(),
        }
    }

    pub fn position(&self) -> usize {
        self.position
    }

    /// Run `tokens` at the next positions; the next token after the last one.
    pub fn forward<F: Fabric>(
        &mut self,
        fabric: &mut F,
        tokens: &[usize],
    ) -> Result<TokenOut, ModelRunError<F::Error>> {
        let c = &self.ck.config;
        check_tokens(c, self.position, tokens).map_err(ModelRunError::Input)?;
        let (h, d, t) = (c.hidden, c.head_dim, tokens.len());
        let (pg, p0, fx) = (self.program, self.position, self.program.residual_frac);
        let sat = &mut self.saturations;
        let fab = ModelRunError::Fabric;
        let mut x: Vec<Vec<i32>> = tokens
            .iter()
            .map(|&id| {
                let row: Vec<u16> = self.ck.embed_tokens[id * h..(id + 1) * h]
                    .iter()
                    .map(|&v| bf16_bits(v))
                    .collect();
                embed(&row, fx, sat)
            })
            .collect();
        for (l, lp) in pg.layers.iter().enumerate() {
            // BitLinear over every token: norm and quantise, fabric, dequantise.
            let linear = |fabric: &mut F,
                          sat: &mut Saturations,
                          inputs: &[(Vec<i32>, i32)],
                          gain: &Gain,
                          which: &[usize]|
             -> Result<Vec<Vec<Vec<i32>>>, ModelRunError<F::Error>> {
                let quantised: Vec<Quantised> = inputs
                    .iter()
                    .map(|(v, frac)| norm_quant(v, *frac, gain, pg.eps))
                    .collect();
                let xs: Vec<i8> = quantised.iter().flat_map(|q| q.q.iter().copied()).collect();
                which
                    .iter()
                    .map(|&w| {
                        let m = self.ck.layers[l].matmuls[w].m;
                        let acc = fabric.matmul(l, w, &xs).map_err(fab)?;
                        Ok(acc
                            .chunks(m)
                            .zip(&quantised)
                            .map(|(row, q)| dequant(row, factor(q, lp.weight_scales[w], fx), sat))
                            .collect())
                    })
                    .collect()
            };
            let residual: Vec<(Vec<i32>, i32)> = x.iter().map(|v| (v.clone(), fx)).collect();
            let [q, k, v] = &mut linear(fabric, sat, &residual, &lp.input_norm, &[0, 1, 2])?[..]
            else {
                unreachable!()
            };
            let half = d / 2;
            for (i, (qt, kt)) in q.iter_mut().zip(k.iter_mut()).enumerate() {
                let row = &pg.rope[(p0 + i) * half..(p0 + i + 1) * half];
                qt.chunks_mut(d).for_each(|head| rope(head, row, sat));
                kt.chunks_mut(d).for_each(|head| rope(head, row, sat));
            }
            let int8 = |m: &[Vec<i32>], inv: Scale| -> Vec<i8> {
                m.iter().flat_map(|v| to_int8(v, fx, inv)).collect()
            };
            let (qi, ki, vi) = (
                int8(q, lp.inv_units[0]),
                int8(k, lp.inv_units[1]),
                int8(v, lp.inv_units[2]),
            );
            let outs = attention_rows(c, fabric, l, p0, t, [&qi, &ki, &vi]).map_err(fab)?;
            // The int8 output times its unit's mantissa is exact; the exponent becomes
            // the vector's fractional bits.
            let attn: Vec<(Vec<i32>, i32)> = outs
                .iter()
                .map(|o| {
                    let m = lp.unit_out.m as i32;
                    (
                        o.iter().map(|&v| i32::from(v) * m).collect(),
                        -lp.unit_out.e,
                    )
                })
                .collect();
            let [o] = &linear(fabric, sat, &attn, &lp.attn_sub_norm, &[3])?[..] else {
                unreachable!()
            };
            add(&mut x, o, sat);
            let residual: Vec<(Vec<i32>, i32)> = x.iter().map(|v| (v.clone(), fx)).collect();
            let [gate, up] = &linear(fabric, sat, &residual, &lp.post_attention_norm, &[4, 5])?[..]
            else {
                unreachable!()
            };
            let act: Vec<(Vec<i32>, i32)> = gate
                .iter()
                .zip(up)
                .map(|(g, u)| relu2_mul(g, u, fx))
                .collect();
            let [down] = &linear(fabric, sat, &act, &lp.ffn_sub_norm, &[6])?[..] else {
                unreachable!()
            };
            add(&mut x, down, sat);
        }
        self.position += t;
        let last = norm_quant(&x[t - 1], fx, &pg.final_norm, pg.eps);
        let scores = super::vector::head_scores(&pg.head, &last.q);
        let next = super::vector::argmax(&scores);
        let unit = 2f64.powi(pg.head.exp) * last.max as f64
            / (127.0 * last.rms as f64 * 2f64.powi(last.gain_frac));
        let logits = scores.iter().map(|&s| (s as f64 * unit) as f32).collect();
        Ok(TokenOut {
            next,
            scores,
            logits,
            last,
        })
    }
}

/// Residual add, saturating.
fn add(x: &mut [Vec<i32>], y: &[Vec<i32>], sat: &mut Saturations) {
    for (xt, yt) in x.iter_mut().zip(y) {
        for (a, &b) in xt.iter_mut().zip(yt) {
            *a = sat.i32(i128::from(*a) + i128::from(b));
        }
    }
}
