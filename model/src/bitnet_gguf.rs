//! A BitNet b1.58 checkpoint in a GGUF file (docs/files.md, "GGUF checkpoints"): the
//! metadata of architecture `bitnet-b1.58` (bitnet.cpp's name for bitnet-b1.58-2B-4T) as
//! a [`ModelConfig`], and the tensors under llama.cpp's names as a [`Checkpoint`].
//!
//! A ternary projection may be stored as
//! - `I2_S` (bitnet.cpp): codes `w + 1` in 2 bits, in blocks of 128 weights of the
//!   flattened matrix: weight `j` of a block sits in byte `j mod 32` of the block's 32,
//!   at bits `6 − 2·⌊j/32⌋`; after the `m·k/4` code bytes, one `f32` scale (in 32 bytes).
//!   The real weight is `code − 1` times the scale: the scale is the multiplier tern keeps.
//! - `TQ2_0` / `TQ1_0` (llama.cpp): blocks of 256 with an `f16` scale each; tern holds one
//!   scale per matrix, so every block's nonzero scale must be the same.
//! - `F32`, `F16`, `BF16`: values that are 0 or ±s for one s.

use std::path::Path;

use crate::checkpoint::{Checkpoint, CheckpointError, LayerWeights, TernaryMatrix};
use crate::gguf::{other_type_name, Gguf, TensorInfo, TensorType, Value, Writer};
use crate::ModelConfig;

/// The architecture tern computes (ReLU² FFN, sub-norms, RoPE in halves).
pub const ARCHITECTURE: &str = "bitnet-b1.58";
/// Weights a block of I2_S holds.
const I2S_BLOCK: usize = 128;

/// llama.cpp's name of layer `i`'s projection `name` (`layer_matmuls` order).
fn projection(i: usize, name: &str) -> String {
    let short = match name {
        "q_proj" => "attn_q",
        "k_proj" => "attn_k",
        "v_proj" => "attn_v",
        "o_proj" => "attn_output",
        "gate_proj" => "ffn_gate",
        "up_proj" => "ffn_up",
        "down_proj" => "ffn_down",
        other => other,
    };
    format!("blk.{i}.{short}.weight")
}

fn key(field: &str) -> String {
    format!("{ARCHITECTURE}.{field}")
}

/// The GGUF metadata key of a [`ModelConfig`] field.
fn gguf_key(field: &str) -> String {
    match field {
        "hidden" => key("embedding_length"),
        "layers" => key("block_count"),
        "heads" => key("attention.head_count"),
        "kv_heads" => key("attention.head_count_kv"),
        "head_dim" => key("attention.key_length"),
        "ffn" => key("feed_forward_length"),
        "vocab" => key("vocab_size"),
        "max_seq_len" => key("context_length"),
        "norm_eps" => key("attention.layer_norm_rms_epsilon"),
        "rope_theta" => key("rope.freq_base"),
        other => other.into(),
    }
}

pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1F);
    let frac = f32::from(h & 0x3FF);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Read a GGUF checkpoint from `bytes` (the file at `path`).
pub fn read(bytes: &[u8], path: &str) -> Result<Checkpoint, CheckpointError> {
    let bad = |message: String| CheckpointError::Gguf {
        path: path.into(),
        message,
    };
    let file = Gguf::parse(bytes).map_err(bad)?;
    let arch = file
        .metadata
        .get("general.architecture")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `general.architecture` string".into()))?;
    if arch != ARCHITECTURE {
        return Err(bad(format!(
            "`general.architecture` is `{arch}`; tern computes `{ARCHITECTURE}` \
             (bitnet-b1.58-2B-4T: ReLU² feed-forward with sub-norms)"
        )));
    }
    let count = |field: &str, default: Option<u64>| -> Result<usize, CheckpointError> {
        let k = gguf_key(field);
        match file.metadata.get(&k) {
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad(format!("`{k}` = {v:?} is not a count"))),
            None => default
                .map(|d| d as usize)
                .ok_or_else(|| bad(format!("metadata key `{k}` is missing"))),
        }
    };
    let real = |field: &str, default: f64| -> Result<f64, CheckpointError> {
        let k = gguf_key(field);
        match file.metadata.get(&k) {
            Some(v) => v
                .as_f64()
                .ok_or_else(|| bad(format!("`{k}` = {v:?} is not a number"))),
            None => Ok(default),
        }
    };
    let hidden = count("hidden", None)?;
    let heads = count("heads", None)?;
    let embedding = file
        .tensor("token_embd.weight")
        .ok_or_else(|| bad("tensor `token_embd.weight` is missing".into()))?;
    let vocab_default = embedding.dims.get(1).copied();
    let config = ModelConfig {
        name: file
            .metadata
            .get("general.name")
            .and_then(Value::as_str)
            .unwrap_or(ARCHITECTURE)
            .into(),
        description: String::new(),
        hidden,
        layers: count("layers", None)?,
        heads,
        kv_heads: count("kv_heads", Some(heads as u64))?,
        head_dim: count("head_dim", Some((hidden / heads.max(1)) as u64))?,
        ffn: count("ffn", None)?,
        vocab: count("vocab", vocab_default)?,
        rope_theta: real("rope_theta", 10000.0)?,
        norm_eps: real("norm_eps", 1e-6)?,
        max_seq_len: count("max_seq_len", Some(2048))?,
        tied_embeddings: file.tensor("output.weight").is_none(),
    };
    config.check("the GGUF metadata").map_err(|e| match e {
        crate::ModelError::Invalid {
            key, value, rule, ..
        } => bad(format!("`{}` = {value}: {rule}", gguf_key(key))),
        e => bad(e.to_string()),
    })?;
    let rope = key("rope.dimension_count");
    if let Some(v) = file.metadata.get(&rope) {
        if v.as_u64() != Some(config.head_dim as u64) {
            return Err(bad(format!(
                "`{rope}` = {v:?}: tern rotates whole heads of {} (no partial RoPE)",
                config.head_dim
            )));
        }
    }
    let reader = Reader {
        file: &file,
        bytes,
        path,
    };
    let (h, v) = (config.hidden, config.vocab);
    let mut layers = Vec::with_capacity(config.layers);
    for i in 0..config.layers {
        let norm = |name: &str, n: usize| reader.floats(&format!("blk.{i}.{name}.weight"), &[n]);
        let matmuls = config
            .layer_matmuls()
            .iter()
            .map(|mm| reader.ternary(&projection(i, mm.name), mm.m, mm.k))
            .collect::<Result<Vec<_>, _>>()?;
        layers.push(LayerWeights {
            input_layernorm: norm("attn_norm", h)?,
            matmuls,
            attn_sub_norm: norm("attn_sub_norm", h)?,
            post_attention_layernorm: norm("ffn_norm", h)?,
            ffn_sub_norm: norm("ffn_sub_norm", config.ffn)?,
        });
    }
    Ok(Checkpoint {
        embed_tokens: reader.floats("token_embd.weight", &[h, v])?,
        norm: reader.floats("output_norm.weight", &[h])?,
        lm_head: if config.tied_embeddings {
            None
        } else {
            Some(reader.floats("output.weight", &[h, v])?)
        },
        layers,
        config,
    })
}

struct Reader<'a> {
    file: &'a Gguf,
    bytes: &'a [u8],
    path: &'a str,
}

impl<'a> Reader<'a> {
    fn bad(&self, message: String) -> CheckpointError {
        CheckpointError::Gguf {
            path: self.path.into(),
            message,
        }
    }

    /// The tensor `name` with ggml dimensions `dims`, its type and bytes.
    fn view(&self, name: &str, dims: &[usize]) -> Result<(TensorType, &'a [u8]), CheckpointError> {
        let t: &TensorInfo = self.file.tensor(name).ok_or_else(|| {
            self.bad(format!(
                "tensor `{name}` is missing (the model the metadata describes has it)"
            ))
        })?;
        let want: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
        if t.dims != want {
            return Err(self.bad(format!(
                "tensor `{name}` has dimensions {:?}, but the metadata needs {want:?} \
                 (ggml order: a row's length first)",
                t.dims
            )));
        }
        let kind = t.kind.ok_or_else(|| {
            self.bad(format!(
                "tensor `{name}` is {}, which tern does not read (ternary projections: I2_S, \
                 TQ1_0, TQ2_0, F32, F16, BF16; other tensors: F32, F16, BF16)",
                other_type_name(t.type_id)
            ))
        })?;
        Ok((kind, &self.bytes[t.data.clone()]))
    }

    /// Float values of a plain float tensor, every one finite.
    fn floats(&self, name: &str, dims: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let (kind, data) = self.view(name, dims)?;
        let values = plain_floats(kind, data).ok_or_else(|| {
            self.bad(format!(
                "tensor `{name}` is {}; tern reads norms and embeddings as F32, F16 or BF16",
                kind.name()
            ))
        })?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            let row = dims[0];
            return Err(CheckpointError::NonFinite {
                path: self.path.into(),
                tensor: name.into(),
                index: if dims.len() == 1 {
                    vec![i]
                } else {
                    vec![i / row, i % row]
                },
                value: values[i],
            });
        }
        Ok(values)
    }

    /// An `m × k` ternary matrix and its one scale.
    fn ternary(&self, name: &str, m: usize, k: usize) -> Result<TernaryMatrix, CheckpointError> {
        let (kind, data) = self.view(name, &[k, m])?;
        let n = m * k;
        let not_ternary = |i: usize| CheckpointError::NotTernary {
            path: self.path.into(),
            tensor: name.into(),
            row: i / k,
            col: i % k,
        };
        let (w, scale) = match kind {
            TensorType::I2S => {
                if !n.is_multiple_of(I2S_BLOCK) {
                    return Err(self.bad(format!(
                        "tensor `{name}`: I2_S needs whole blocks of {I2S_BLOCK} weights, \
                         not {n}"
                    )));
                }
                let mut w = vec![0i8; n];
                for (i, x) in w.iter_mut().enumerate() {
                    let (block, j) = (i / I2S_BLOCK, i % I2S_BLOCK);
                    let byte = data[block * 32 + j % 32];
                    let code = (byte >> (6 - 2 * (j / 32))) & 3;
                    if code == 3 {
                        return Err(not_ternary(i));
                    }
                    *x = code as i8 - 1;
                }
                let s = &data[n / 4..n / 4 + 4];
                (w, f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            }
            TensorType::Tq2_0 | TensorType::Tq1_0 => {
                if !k.is_multiple_of(256) {
                    return Err(self.bad(format!(
                        "tensor `{name}`: {} blocks of 256 run along a row, but a row holds {k}",
                        kind.name()
                    )));
                }
                let (block_bytes, scale_at) = match kind {
                    TensorType::Tq2_0 => (66, 64),
                    _ => (54, 52),
                };
                let mut w = vec![0i8; n];
                let mut scale: Option<(usize, f32)> = None;
                for (b, block) in data.chunks_exact(block_bytes).enumerate() {
                    let d = f16_to_f32(u16::from_le_bytes([block[scale_at], block[scale_at + 1]]));
                    let out = &mut w[b * 256..(b + 1) * 256];
                    for (j, x) in out.iter_mut().enumerate() {
                        let code = match kind {
                            TensorType::Tq2_0 => {
                                (block[(j / 128) * 32 + j % 32] >> (2 * ((j % 128) / 32))) & 3
                            }
                            _ => tq1_trit(block, j),
                        };
                        if code == 3 {
                            return Err(not_ternary(b * 256 + j));
                        }
                        *x = code as i8 - 1;
                    }
                    if d == 0.0 {
                        // A block scaled by 0 holds zeros, whatever its codes.
                        out.fill(0);
                        continue;
                    }
                    match scale {
                        None => scale = Some((b, d)),
                        Some((first, s)) if s != d => {
                            return Err(self.bad(format!(
                                "tensor `{name}`: block {b} is scaled by {d}, block {first} by \
                                 {s}; tern holds one scale per matrix (a BitNet matrix has one)"
                            )))
                        }
                        Some(_) => {}
                    }
                }
                (w, scale.map_or(0.0, |(_, s)| s))
            }
            plain => {
                let values = plain_floats(plain, data).expect("a float type");
                let s = values.iter().fold(0f32, |a, v| a.max(v.abs()));
                let mut w = vec![0i8; n];
                for (i, (x, &v)) in w.iter_mut().zip(&values).enumerate() {
                    *x = if v == 0.0 {
                        0
                    } else if v == s {
                        1
                    } else if v == -s {
                        -1
                    } else {
                        return Err(self.bad(format!(
                            "tensor `{name}` row {}, column {} is {v}: a ternary matrix in {} \
                             holds only 0 and ±{s}",
                            i / k,
                            i % k,
                            plain.name()
                        )));
                    };
                }
                (w, s)
            }
        };
        if w.iter().all(|&x| x == 0) {
            return Err(CheckpointError::AllZero {
                path: self.path.into(),
                tensor: name.into(),
            });
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(CheckpointError::Scale {
                path: self.path.into(),
                tensor: format!("{name} (its scale)"),
                value: scale,
            });
        }
        Ok(TernaryMatrix { m, k, w, scale })
    }
}

/// TQ1_0's code of weight `j` of a block: 160 weights as 5 trits in each of 32 bytes,
/// 80 in 16 more, 16 as 4 trits in the 4 `qh` bytes; a byte holds its trits as a
/// fixed-point fraction, so digit `n` is `((byte·3ⁿ mod 256)·3) >> 8`.
fn tq1_trit(block: &[u8], j: usize) -> u8 {
    let (byte, n) = match j {
        0..160 => (block[j % 32], j / 32),
        160..240 => (block[32 + (j - 160) % 16], (j - 160) / 16),
        _ => (block[48 + (j - 240) % 4], (j - 240) / 4),
    };
    let shifted = byte.wrapping_mul(3u8.pow(n as u32));
    ((u16::from(shifted) * 3) >> 8) as u8
}

fn plain_floats(kind: TensorType, data: &[u8]) -> Option<Vec<f32>> {
    Some(match kind {
        TensorType::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        TensorType::F16 => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        TensorType::Bf16 => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        _ => return None,
    })
}

/// The checkpoint as a GGUF file: floats as F32 (exact), projections as I2_S, and
/// `extra` metadata (a vocabulary).
pub fn write(c: &Checkpoint, extra: &[(String, Value)]) -> Vec<u8> {
    let cfg = &c.config;
    let mut w = Writer::default();
    w.meta("general.architecture", Value::Str(ARCHITECTURE.into()));
    w.meta("general.name", Value::Str(cfg.name.clone()));
    for (k, v) in extra {
        w.meta(k, v.clone());
    }
    for (field, n) in [
        ("hidden", cfg.hidden),
        ("layers", cfg.layers),
        ("heads", cfg.heads),
        ("kv_heads", cfg.kv_heads),
        ("head_dim", cfg.head_dim),
        ("ffn", cfg.ffn),
        ("vocab", cfg.vocab),
        ("max_seq_len", cfg.max_seq_len),
    ] {
        w.meta(&gguf_key(field), Value::Uint(n as u64));
    }
    w.meta(
        &key("rope.dimension_count"),
        Value::Uint(cfg.head_dim as u64),
    );
    w.meta(&gguf_key("rope_theta"), Value::Float(cfg.rope_theta));
    w.meta(&gguf_key("norm_eps"), Value::Float(cfg.norm_eps));
    let floats = |w: &mut Writer, name: &str, dims: Vec<u64>, v: &[f32]| {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.tensor(name, dims, TensorType::F32, bytes);
    };
    let (h, v) = (cfg.hidden as u64, cfg.vocab as u64);
    floats(&mut w, "token_embd.weight", vec![h, v], &c.embed_tokens);
    floats(&mut w, "output_norm.weight", vec![h], &c.norm);
    if let Some(head) = &c.lm_head {
        floats(&mut w, "output.weight", vec![h, v], head);
    }
    for (i, l) in c.layers.iter().enumerate() {
        let p = |name: &str| format!("blk.{i}.{name}.weight");
        floats(&mut w, &p("attn_norm"), vec![h], &l.input_layernorm);
        floats(&mut w, &p("attn_sub_norm"), vec![h], &l.attn_sub_norm);
        floats(&mut w, &p("ffn_norm"), vec![h], &l.post_attention_layernorm);
        floats(
            &mut w,
            &p("ffn_sub_norm"),
            vec![cfg.ffn as u64],
            &l.ffn_sub_norm,
        );
        for (mm, t) in cfg.layer_matmuls().iter().zip(&l.matmuls) {
            w.tensor(
                &projection(i, mm.name),
                vec![t.k as u64, t.m as u64],
                TensorType::I2S,
                i2s_bytes(t),
            );
        }
    }
    w.to_bytes()
}

/// I2_S bytes of a ternary matrix (`m·k` a multiple of 128).
fn i2s_bytes(t: &TernaryMatrix) -> Vec<u8> {
    let n = t.m * t.k;
    let mut out = vec![0u8; n / 4 + 32];
    for (i, &x) in t.w.iter().enumerate() {
        let (block, j) = (i / I2S_BLOCK, i % I2S_BLOCK);
        out[block * 32 + j % 32] |= ((x + 1) as u8) << (6 - 2 * (j / 32));
    }
    out[n / 4..n / 4 + 4].copy_from_slice(&t.scale.to_le_bytes());
    out
}

impl Checkpoint {
    /// Write the checkpoint as one GGUF file (architecture `bitnet-b1.58`, floats as
    /// F32, projections as I2_S; docs/files.md), with `extra` metadata (a vocabulary:
    /// [`crate::text::byte_vocabulary_gguf`]).
    pub fn write_gguf(
        &self,
        path: &Path,
        extra: &[(String, crate::gguf::Value)],
    ) -> Result<(), CheckpointError> {
        let bytes = write(self, extra);
        std::fs::write(path, bytes).map_err(|cause| CheckpointError::Io {
            path: path.display().to_string(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_values_convert_exactly() {
        for (h, f) in [
            (0x3C00u16, 1.0f32),
            (0xC000, -2.0),
            (0x0001, 2f32.powi(-24)),
            (0x7BFF, 65504.0),
            (0x3555, 0.333_251_95),
        ] {
            assert_eq!(f16_to_f32(h), f, "{h:#06x}");
        }
        assert!(f16_to_f32(0x7C01).is_nan() && f16_to_f32(0xFC00) == f32::NEG_INFINITY);
    }

    fn tiny() -> Checkpoint {
        Checkpoint::random(&ModelConfig::preset("tiny").unwrap(), 2)
    }

    /// The tiny checkpoint's GGUF with one tensor's type and bytes replaced, or one
    /// metadata entry changed.
    fn edited(tensor: Option<(&str, TensorType, Vec<u8>)>, meta: Option<(&str, Value)>) -> Vec<u8> {
        let good = write(&tiny(), &[]);
        let g = Gguf::parse(&good).unwrap();
        let mut w = Writer::default();
        for (k, v) in &g.metadata {
            match &meta {
                Some((key, value)) if key == k => w.meta(k, value.clone()),
                _ => w.meta(k, v.clone()),
            }
        }
        if let Some((key, value)) = &meta {
            if !g.metadata.contains_key(*key) {
                w.meta(key, value.clone());
            }
        }
        for t in &g.tensors {
            match &tensor {
                Some((name, kind, bytes)) if *name == t.name => {
                    w.tensor(name, t.dims.clone(), *kind, bytes.clone())
                }
                _ => w.tensor(
                    &t.name,
                    t.dims.clone(),
                    t.kind.unwrap(),
                    good[t.data.clone()].to_vec(),
                ),
            }
        }
        w.to_bytes()
    }

    fn err(bytes: &[u8]) -> String {
        read(bytes, "m.gguf").unwrap_err().to_string()
    }

    /// Bad input is refused naming the tensor or the key: an architecture tern does not
    /// compute, metadata that disagrees with the tensors, a projection that is not
    /// ternary or is all zeros, TQ blocks with different scales.
    #[test]
    fn a_gguf_tern_cannot_run_is_refused_by_name() {
        assert_eq!(read(&write(&tiny(), &[]), "m.gguf").unwrap(), tiny());
        let e = err(&edited(
            None,
            Some(("general.architecture", Value::Str("bitnet".into()))),
        ));
        assert!(e.contains("`bitnet`") && e.contains("bitnet-b1.58"), "{e}");
        let e = err(&edited(
            None,
            Some(("bitnet-b1.58.feed_forward_length", Value::Uint(96))),
        ));
        assert!(
            e.contains("blk.0.ffn_gate.weight") && e.contains("[64, 96]"),
            "{e}"
        );
        let e = err(&edited(
            None,
            Some(("bitnet-b1.58.attention.head_count_kv", Value::Uint(3))),
        ));
        assert!(
            e.contains("`bitnet-b1.58.attention.head_count_kv` = 3"),
            "{e}"
        );
        let e = err(&edited(
            None,
            Some(("bitnet-b1.58.rope.dimension_count", Value::Uint(8))),
        ));
        assert!(e.contains("partial RoPE"), "{e}");
        // q_proj of layer 0 is 64 x 64.
        let q = "blk.0.attn_q.weight";
        let e = err(&edited(
            Some((q, TensorType::I2S, vec![0x55; 64 * 64 / 4 + 32])),
            None,
        ));
        assert!(e.contains(q) && e.contains("every weight is 0"), "{e}");
        let mut codes = vec![0x55u8; 64 * 64 / 4 + 32];
        codes[40] = 0b11_01_01_01;
        codes[1024..1028].copy_from_slice(&0.5f32.to_le_bytes());
        let e = err(&edited(Some((q, TensorType::I2S, codes.clone())), None));
        // Byte 40 is block 1's byte 8, bits 7–6: weight 128 + 8 = row 2, column 8.
        assert!(
            e.contains(q) && e.contains("row 2, column 8 holds code 0b11"),
            "{e}"
        );
        codes[40] = 0b10_01_01_01;
        assert!(read(
            &edited(Some((q, TensorType::I2S, codes.clone())), None),
            "m"
        )
        .is_ok());
        codes[1024..1028].copy_from_slice(&f32::NAN.to_le_bytes());
        let e = err(&edited(Some((q, TensorType::I2S, codes)), None));
        assert!(e.contains(q) && e.contains("NaN"), "{e}");
        let mut f = vec![0u8; 64 * 64 * 4];
        f[..4].copy_from_slice(&0.25f32.to_le_bytes());
        f[4..8].copy_from_slice(&(-0.25f32).to_le_bytes());
        f[8..12].copy_from_slice(&0.125f32.to_le_bytes());
        let e = err(&edited(Some((q, TensorType::F32, f)), None));
        assert!(e.contains("row 0, column 2 is 0.125"), "{e}");
        // A type tern does not read (Q4_K): the type field after the name and dims.
        let mut q4k = write(&tiny(), &[]);
        let at = q4k
            .windows(q.len())
            .position(|w| w == q.as_bytes())
            .unwrap()
            + q.len()
            + 4
            + 16;
        q4k[at..at + 4].copy_from_slice(&12u32.to_le_bytes());
        let e = err(&q4k);
        assert!(
            e.contains(q) && e.contains("Q4_K (type 12), which tern does not read"),
            "{e}"
        );
        let e = err(&edited(
            Some(("blk.1.ffn_norm.weight", TensorType::I2S, vec![0; 48])),
            None,
        ));
        assert!(
            e.contains("blk.1.ffn_norm.weight") && e.contains("I2_S"),
            "{e}"
        );
    }

    /// TQ blocks run along rows and share one scale.
    #[test]
    fn tq_blocks_must_fit_the_rows_and_share_a_scale() {
        let cfg = ModelConfig {
            hidden: 256,
            heads: 4,
            kv_heads: 2,
            head_dim: 64,
            ffn: 256,
            ..ModelConfig::preset("tiny").unwrap()
        };
        let c = Checkpoint::random(&cfg, 3);
        let bytes = write(&c, &[]);
        let g = Gguf::parse(&bytes).unwrap();
        let name = "blk.1.attn_output.weight";
        let t = &c.layers[1].matmuls[3];
        // TQ2_0 of the same weights, one block's scale halved.
        let half = |x: f32| {
            let b = x.to_bits();
            // f32 → f16 for a normal value that fits (the scales here do).
            let e = ((b >> 23) & 0xFF) as i32 - 127 + 15;
            (((b >> 16) & 0x8000) | ((e as u32) << 10) | ((b >> 13) & 0x3FF)) as u16
        };
        let mut tq = vec![];
        for (b, block) in t.w.chunks(256).enumerate() {
            let mut qs = [0u8; 64];
            for (j, &x) in block.iter().enumerate() {
                qs[(j / 128) * 32 + j % 32] |= ((x + 1) as u8) << (2 * ((j % 128) / 32));
            }
            tq.extend_from_slice(&qs);
            let s = if b == 5 { t.scale / 2.0 } else { t.scale };
            tq.extend_from_slice(&half(s).to_le_bytes());
        }
        let mut w = Writer::default();
        g.metadata.iter().for_each(|(k, v)| w.meta(k, v.clone()));
        for info in &g.tensors {
            if info.name == name {
                w.tensor(name, info.dims.clone(), TensorType::Tq2_0, tq.clone());
            } else {
                w.tensor(
                    &info.name,
                    info.dims.clone(),
                    info.kind.unwrap(),
                    bytes[info.data.clone()].to_vec(),
                );
            }
        }
        let e = err(&w.to_bytes());
        assert!(
            e.contains(name) && e.contains("block 5 is scaled by"),
            "{e}"
        );
    }

    /// The TQ1_0 digits of a byte written as llama.cpp writes them: 5 trits t as
    /// `ceil(Σ tᵢ·3^(4−i) · 256 / 243)`.
    #[test]
    fn tq1_trits_read_back_as_written() {
        for trits in 0..243u16 {
            let digits: Vec<u8> = (0..5)
                .map(|i| ((trits / 3u16.pow(4 - i)) % 3) as u8)
                .collect();
            let byte = (trits * 256).div_ceil(243) as u8;
            let mut block = [0u8; 54];
            block[0] = byte;
            let got: Vec<u8> = (0..5).map(|n| tq1_trit(&block, n * 32)).collect();
            assert_eq!(got, digits, "trits {trits}");
        }
    }
}
