//! Model weights in the Hugging Face layout of `microsoft/bitnet-b1.58-2B-4T`: a
//! directory with `config.json` and `model.safetensors` (docs/files.md, "BitNet
//! checkpoints").
//!
//! Each BitLinear weight `model.layers.{i}.{self_attn,mlp}.{name}.weight` is `uint8` of
//! shape `(m/4, k)`: packed row `r` holds rows `r`, `r + m/4`, `r + m/2` and `r + 3m/4`
//! in its bit pairs 0–1, 2–3, 4–5 and 6–7 as `w + 1` (so `00` = −1, `01` = 0, `10` = +1;
//! `11` is not a ternary weight). Its `….weight_scale` (one value) scales the product.
//! transformers has two readings, chosen by `quantization_config.linear_class`:
//! `autobitlinear` (what the 2B4T checkpoint declares) multiplies, `y = (x_q/s_x · w) ·
//! weight_scale`; `bitlinear` divides, `y = (x_q · w) / (s_x · weight_scale)`. tern keeps
//! the multiplier either way ([`TernaryMatrix::scale`]). Norm gains, the embedding and an
//! untied LM head are `bfloat16` or `float32`.
//!
//! A checkpoint is checked as it is read: every shape against `config.json`, every
//! packed code ternary, no ternary tensor all zeros, every float finite and every scale
//! positive; a `quantization_config` asking for something tern does not compute (a norm
//! inside every BitLinear, weights quantised online, another quantisation method, a
//! projection left unquantised) is refused, not ignored. [`Checkpoint::open`] also
//! gives the SHA-256 of the weights file, the figure a model hub lists for it.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use crate::ModelConfig;

pub const CONFIG_JSON: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Ternary values packed per byte.
const PER_BYTE: usize = 4;
/// The first four bytes of a GGUF file (llama.cpp's and bitnet.cpp's container).
pub const GGUF_MAGIC: &[u8; 4] = crate::gguf::MAGIC;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    // The cause is in the message and not also a `source`: `{:#}` would print it twice.
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("{path}: not a readable safetensors file: {message}")]
    Format { path: String, message: String },
    #[error("{path}: tensor `{tensor}` is missing (the model that config.json describes has it)")]
    Missing { path: String, tensor: String },
    #[error("{path}: tensor `{tensor}` has shape {got:?}, but config.json needs {expected:?}")]
    Shape {
        path: String,
        tensor: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("{path}: tensor `{tensor}` is {got}, expected {expected}")]
    Dtype {
        path: String,
        tensor: String,
        got: String,
        expected: &'static str,
    },
    #[error("{path}: tensor `{tensor}` row {row}, column {col} holds code 0b11, which is not a ternary weight")]
    NotTernary {
        path: String,
        tensor: String,
        row: usize,
        col: usize,
    },
    #[error("{path}: tensor `{tensor}`: every weight is 0 (a damaged or badly converted checkpoint: re-uploads of bitnet-b1.58-2B-4T were published with all-zero MLP tensors)")]
    AllZero { path: String, tensor: String },
    #[error("{path}: {message}")]
    NotACheckpoint { path: String, message: String },
    #[error("{path}: {message}")]
    Gguf { path: String, message: String },
    #[error("{path}: the weights' SHA-256 is {got}, but --expect-sha256 asks for {expected}")]
    Sha256 {
        path: String,
        got: String,
        expected: String,
    },
    #[error("{path}: tensor `{tensor}` is {value}, not a finite scale > 0")]
    Scale {
        path: String,
        tensor: String,
        value: f32,
    },
    #[error("{path}: tensor `{tensor}` holds {value} at index {index:?}; weights, norms and embeddings must be finite")]
    NonFinite {
        path: String,
        tensor: String,
        /// The first non-finite element, one index per dimension.
        index: Vec<usize>,
        value: f32,
    },
}

/// A ternary weight matrix with its scale: the real weights are `w · scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct TernaryMatrix {
    pub m: usize,
    pub k: usize,
    /// Row-major, entries −1, 0, +1.
    pub w: Vec<i8>,
    pub scale: f32,
}

/// One transformer layer's weights (names as in the Hugging Face checkpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    pub input_layernorm: Vec<f32>,
    /// In the order of [`ModelConfig::layer_matmuls`]: q, k, v, o, gate, up, down.
    pub matmuls: Vec<TernaryMatrix>,
    pub attn_sub_norm: Vec<f32>,
    pub post_attention_layernorm: Vec<f32>,
    pub ffn_sub_norm: Vec<f32>,
}

/// A whole model's weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub config: ModelConfig,
    /// `vocab × hidden`, row-major.
    pub embed_tokens: Vec<f32>,
    pub layers: Vec<LayerWeights>,
    pub norm: Vec<f32>,
    /// `vocab × hidden`; `None` when tied to the embedding.
    pub lm_head: Option<Vec<f32>>,
}

/// What `config.json` says (the keys tern reads; the rest is ignored).
#[derive(Debug, Deserialize)]
struct HfConfig {
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    intermediate_size: usize,
    vocab_size: usize,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_positions")]
    max_position_embeddings: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    model_type: String,
    #[serde(default)]
    quantization_config: Option<HfQuantization>,
}

/// `quantization_config` (transformers' `BitNetQuantConfig`; its defaults).
#[derive(Debug, Deserialize)]
struct HfQuantization {
    #[serde(default)]
    quant_method: Option<String>,
    #[serde(default)]
    linear_class: Option<String>,
    #[serde(default)]
    quantization_mode: Option<String>,
    #[serde(default)]
    use_rms_norm: Option<bool>,
    #[serde(default)]
    modules_to_not_convert: Option<Vec<String>>,
}

fn default_theta() -> f64 {
    10000.0
}
fn default_eps() -> f64 {
    1e-6
}
fn default_positions() -> usize {
    2048
}

/// Tensor names of layer `i`'s BitLinear weights, in `layer_matmuls` order.
fn matmul_tensor(i: usize, name: &str) -> String {
    let block = if name.ends_with("_proj") && ["gate_proj", "up_proj", "down_proj"].contains(&name)
    {
        "mlp"
    } else {
        "self_attn"
    };
    format!("model.layers.{i}.{block}.{name}")
}

fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

fn f32_to_bf16(v: f32) -> u16 {
    // Round to nearest even (finite values).
    let bits = v.to_bits();
    let round = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

impl Checkpoint {
    /// Read `config.json` and `model.safetensors` from `dir`, every tensor checked (the
    /// module docs say how).
    pub fn read_hf(dir: &Path) -> Result<Checkpoint, CheckpointError> {
        Self::read_hf_digest(dir).map(|(c, _, _)| c)
    }

    pub(crate) fn read_hf_digest(
        dir: &Path,
    ) -> Result<(Checkpoint, PathBuf, [u8; 32]), CheckpointError> {
        let config_path = dir.join(CONFIG_JSON);
        let text = std::fs::read_to_string(&config_path).map_err(|cause| CheckpointError::Io {
            path: config_path.display().to_string(),
            cause,
        })?;
        let (config, divides) = config_from_hf(&text, &config_path)?;
        let path = dir.join(WEIGHTS_FILE);
        let bytes = std::fs::read(&path).map_err(|cause| CheckpointError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        let digest: [u8; 32] = Sha256::digest(&bytes).into();
        let file = SafeTensors::deserialize(&bytes).map_err(|e| CheckpointError::Format {
            path: path.display().to_string(),
            message: match bad_tensor(&bytes) {
                Some(why) => why,
                None => e.to_string(),
            },
        })?;
        let reader = Reader {
            path: &path,
            file,
            divides,
        };
        let (h, v) = (config.hidden, config.vocab);
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let norm =
                |name: &str, n| reader.floats(&format!("model.layers.{i}.{name}.weight"), &[n]);
            let matmuls = config
                .layer_matmuls()
                .iter()
                .map(|mm| reader.ternary(&matmul_tensor(i, mm.name), mm.m, mm.k))
                .collect::<Result<Vec<_>, _>>()?;
            layers.push(LayerWeights {
                input_layernorm: norm("input_layernorm", h)?,
                matmuls,
                attn_sub_norm: norm("self_attn.attn_sub_norm", h)?,
                post_attention_layernorm: norm("post_attention_layernorm", h)?,
                ffn_sub_norm: norm("mlp.ffn_sub_norm", config.ffn)?,
            });
        }
        let checkpoint = Checkpoint {
            embed_tokens: reader.floats("model.embed_tokens.weight", &[v, h])?,
            norm: reader.floats("model.norm.weight", &[h])?,
            lm_head: if config.tied_embeddings {
                None
            } else {
                Some(reader.floats("lm_head.weight", &[v, h])?)
            },
            layers,
            config,
        };
        Ok((checkpoint, path, digest))
    }

    /// Write the checkpoint in the same layout (floats as bfloat16), with a config.json
    /// holding the keys [`Checkpoint::read_hf`] reads.
    pub fn write_hf(&self, dir: &Path) -> Result<(), CheckpointError> {
        let io = |path: PathBuf| {
            move |cause| CheckpointError::Io {
                path: path.display().to_string(),
                cause,
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let c = &self.config;
        let json = serde_json::json!({
            "architectures": ["BitNetForCausalLM"],
            "model_type": "bitnet",
            "hidden_size": c.hidden,
            "num_hidden_layers": c.layers,
            "num_attention_heads": c.heads,
            "num_key_value_heads": c.kv_heads,
            "head_dim": c.head_dim,
            "intermediate_size": c.ffn,
            "vocab_size": c.vocab,
            "rope_theta": c.rope_theta,
            "rms_norm_eps": c.norm_eps,
            "max_position_embeddings": c.max_seq_len,
            "tie_word_embeddings": c.tied_embeddings,
            "hidden_act": "relu2",
            "quantization_config": {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "offline"},
        });
        let config_path = dir.join(CONFIG_JSON);
        std::fs::write(
            &config_path,
            serde_json::to_string_pretty(&json).expect("json") + "\n",
        )
        .map_err(io(config_path.clone()))?;
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![];
        let floats = |name: String, shape: Vec<usize>, v: &[f32]| {
            let data = v
                .iter()
                .flat_map(|&x| f32_to_bf16(x).to_le_bytes())
                .collect();
            (name, Dtype::BF16, shape, data)
        };
        let (h, v) = (c.hidden, c.vocab);
        tensors.push(floats(
            "model.embed_tokens.weight".into(),
            vec![v, h],
            &self.embed_tokens,
        ));
        tensors.push(floats("model.norm.weight".into(), vec![h], &self.norm));
        if let Some(head) = &self.lm_head {
            tensors.push(floats("lm_head.weight".into(), vec![v, h], head));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let p = |name: &str| format!("model.layers.{i}.{name}.weight");
            tensors.push(floats(
                p("input_layernorm"),
                vec![h],
                &layer.input_layernorm,
            ));
            tensors.push(floats(
                p("self_attn.attn_sub_norm"),
                vec![h],
                &layer.attn_sub_norm,
            ));
            tensors.push(floats(
                p("post_attention_layernorm"),
                vec![h],
                &layer.post_attention_layernorm,
            ));
            tensors.push(floats(
                p("mlp.ffn_sub_norm"),
                vec![c.ffn],
                &layer.ffn_sub_norm,
            ));
            for (mm, t) in c.layer_matmuls().iter().zip(&layer.matmuls) {
                let name = matmul_tensor(i, mm.name);
                tensors.push((
                    format!("{name}.weight"),
                    Dtype::U8,
                    vec![t.m / PER_BYTE, t.k],
                    pack(t),
                ));
                tensors.push(floats(format!("{name}.weight_scale"), vec![1], &[t.scale]));
            }
        }
        let views = tensors
            .iter()
            .map(|(name, dtype, shape, data)| {
                let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), data)
                    .expect("shapes and byte counts agree");
                (name.clone(), view)
            })
            .collect::<Vec<_>>();
        let bytes = safetensors::serialize(views, None).map_err(|e| CheckpointError::Format {
            path: dir.join(WEIGHTS_FILE).display().to_string(),
            message: e.to_string(),
        })?;
        let path = dir.join(WEIGHTS_FILE);
        std::fs::write(&path, bytes).map_err(io(path.clone()))
    }

    /// Random weights of `config`'s shapes from `seed`: ternary matrices with a third of
    /// each value and a scale near `√(1.5/K)` (so a BitLinear of a normalised input gives
    /// values of order 1 and attention logits of a few units, as in a trained model),
    /// gains near 1, an embedding of unit-variance rows.
    pub fn random(config: &ModelConfig, seed: u64) -> Checkpoint {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (h, v) = (config.hidden, config.vocab);
        let gains = |n: usize, rng: &mut ChaCha8Rng| -> Vec<f32> {
            (0..n).map(|_| rng.gen_range(0.8f32..1.2)).collect()
        };
        let mut layers = vec![];
        for _ in 0..config.layers {
            let matmuls = config
                .layer_matmuls()
                .iter()
                .map(|mm| TernaryMatrix {
                    m: mm.m,
                    k: mm.k,
                    w: (0..mm.m * mm.k).map(|_| rng.gen_range(-1i8..=1)).collect(),
                    scale: rng.gen_range(0.7f32..1.4) * (1.5 / mm.k as f32).sqrt(),
                })
                .collect();
            layers.push(LayerWeights {
                input_layernorm: gains(h, &mut rng),
                matmuls,
                attn_sub_norm: gains(h, &mut rng),
                post_attention_layernorm: gains(h, &mut rng),
                ffn_sub_norm: gains(config.ffn, &mut rng),
            });
        }
        let embed = (0..v * h).map(|_| rng.gen_range(-1.7f32..1.7)).collect();
        let norm = gains(h, &mut rng);
        let lm_head = (!config.tied_embeddings)
            .then(|| (0..v * h).map(|_| rng.gen_range(-0.1f32..0.1)).collect());
        Checkpoint {
            config: config.clone(),
            embed_tokens: embed,
            layers,
            norm,
            lm_head,
        }
    }
}

/// Pack a ternary matrix as `transformers.integrations.bitnet.pack_weights` does.
fn pack(t: &TernaryMatrix) -> Vec<u8> {
    let rows = t.m / PER_BYTE;
    let mut out = vec![0u8; rows * t.k];
    for r in 0..t.m {
        let (slot, packed_row) = (r / rows, r % rows);
        for c in 0..t.k {
            let code = (t.w[r * t.k + c] + 1) as u8;
            out[packed_row * t.k + c] |= code << (2 * slot);
        }
    }
    out
}

/// Unpack `m × k` ternary weights packed as [`pack`] does; `Err((row, col))` names the
/// first code 0b11.
fn unpack(packed: &[u8], m: usize, k: usize) -> Result<Vec<i8>, (usize, usize)> {
    let rows = m / PER_BYTE;
    let mut w = vec![0i8; m * k];
    for (i, &byte) in packed.iter().enumerate() {
        let (packed_row, c) = (i / k, i % k);
        for slot in 0..PER_BYTE {
            let code = (byte >> (2 * slot)) & 3;
            let r = slot * rows + packed_row;
            if code == 3 {
                return Err((r, c));
            }
            w[r * k + c] = code as i8 - 1;
        }
    }
    Ok(w)
}

/// The first tensor whose header entry does not describe its bytes (shape × dtype
/// against `data_offsets`), named: the safetensors crate says only "invalid shape, data
/// type, or offset for tensor". Entries are read as the crate's own `TensorInfo`, sized
/// by its `Dtype`. None when every entry is consistent or the header is not JSON (the
/// crate's own message says that well).
fn bad_tensor(bytes: &[u8]) -> Option<String> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let end = n.checked_add(8)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..end)?).ok()?;
    let data_bytes = bytes.len() - end;
    for (name, entry) in header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
    {
        let Ok(info) = serde_json::from_value::<safetensors::tensor::TensorInfo>(entry) else {
            return Some(format!(
                "tensor `{name}`: its header entry is not a known dtype, a shape and data_offsets [start, end]"
            ));
        };
        let (start, stop) = info.data_offsets;
        let want = info
            .shape
            .iter()
            .try_fold(info.dtype.bitsize(), |bits, &d| bits.checked_mul(d))
            .map(|bits| bits.div_ceil(8));
        if stop < start || Some(stop - start) != want || stop > data_bytes {
            let want = want.map_or("more than any file holds".into(), |w| w.to_string());
            return Some(format!(
                "tensor `{name}`: shape {:?} of {:?} needs {want} bytes, but its data_offsets [{start}, {stop}] span {} of the file's {data_bytes} data bytes",
                info.shape,
                info.dtype,
                stop.saturating_sub(start)
            ));
        }
    }
    None
}

/// The C-order index of flat element `i` of an array of `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        *slot = i % dim.max(1);
        i /= dim.max(1);
    }
    index
}

/// The model config, and whether `weight_scale` divides (`linear_class = "bitlinear"`).
fn config_from_hf(text: &str, path: &Path) -> Result<(ModelConfig, bool), CheckpointError> {
    let bad = |message: String| CheckpointError::Config {
        path: path.display().to_string(),
        message,
    };
    let hf: HfConfig = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Some(q) = &hf.quantization_config else {
        return Err(bad(
            "no `quantization_config`: not a BitNet b1.58 checkpoint with packed ternary weights \
             (tern reads quant_method \"bitnet\", quantization_mode \"offline\")"
                .into(),
        ));
    };
    if let Some(method) = q.quant_method.as_deref().filter(|m| *m != "bitnet") {
        return Err(bad(format!(
            "quantization_config.quant_method `{method}`: tern reads only \"bitnet\""
        )));
    }
    match q.quantization_mode.as_deref().unwrap_or("offline") {
        "offline" => {}
        "online" => {
            return Err(bad(
                "quantization_config.quantization_mode \"online\" (full-precision weights \
                 quantised at every forward pass) is not implemented: tern reads \"offline\" \
                 checkpoints, whose weights are packed ternary with a weight_scale"
                    .into(),
            ))
        }
        other => {
            return Err(bad(format!(
                "quantization_config.quantization_mode `{other}` is neither offline nor online"
            )))
        }
    }
    if q.use_rms_norm == Some(true) {
        return Err(bad(
            "quantization_config.use_rms_norm = true (an RMSNorm inside every BitLinear, \
             before its activations are quantised) is not implemented in tern"
                .into(),
        ));
    }
    if let Some(kept) = q
        .modules_to_not_convert
        .iter()
        .flatten()
        .find(|m| m.as_str() != "lm_head")
    {
        return Err(bad(format!(
            "quantization_config.modules_to_not_convert lists `{kept}`: tern runs every \
             projection of every layer as a ternary BitLinear (only lm_head may be listed)"
        )));
    }
    // transformers' default linear class is "bitlinear" (the divider).
    let class = q.linear_class.as_deref().unwrap_or("bitlinear");
    let divides = match class {
        "autobitlinear" => false,
        "bitlinear" => true,
        other => {
            return Err(bad(format!(
                "quantization_config.linear_class `{other}` is neither autobitlinear nor bitlinear"
            )))
        }
    };
    let heads = hf.num_attention_heads;
    let config = ModelConfig {
        name: if hf.model_type.is_empty() {
            "checkpoint".into()
        } else {
            hf.model_type
        },
        description: String::new(),
        hidden: hf.hidden_size,
        layers: hf.num_hidden_layers,
        heads,
        kv_heads: hf.num_key_value_heads.unwrap_or(heads),
        head_dim: hf.head_dim.unwrap_or(hf.hidden_size / heads.max(1)),
        ffn: hf.intermediate_size,
        vocab: hf.vocab_size,
        rope_theta: hf.rope_theta,
        norm_eps: hf.rms_norm_eps,
        max_seq_len: hf.max_position_embeddings,
        tied_embeddings: hf.tie_word_embeddings,
    };
    config.check("config.json").map_err(|e| match e {
        // Named by config.json's own keys; the path is the error's own.
        crate::ModelError::Invalid {
            key, value, rule, ..
        } => bad(format!("`{}` = {value}: {rule}", hf_key(key))),
        e => bad(e.to_string()),
    })?;
    for mm in config.layer_matmuls() {
        if !mm.m.is_multiple_of(PER_BYTE) {
            return Err(bad(format!(
                "{} has {} rows, not a multiple of {PER_BYTE} (the packed layout needs one)",
                mm.name, mm.m
            )));
        }
    }
    Ok((config, divides))
}

/// The `config.json` key of a [`ModelConfig`] field.
fn hf_key(field: &str) -> &str {
    match field {
        "hidden" => "hidden_size",
        "layers" => "num_hidden_layers",
        "heads" => "num_attention_heads",
        "kv_heads" => "num_key_value_heads",
        "ffn" => "intermediate_size",
        "vocab" => "vocab_size",
        "max_seq_len" => "max_position_embeddings",
        "norm_eps" => "rms_norm_eps",
        other => other,
    }
}

struct Reader<'a> {
    path: &'a Path,
    file: SafeTensors<'a>,
    /// `weight_scale` divides (transformers' `BitLinear`) instead of multiplying.
    divides: bool,
}

impl Reader<'_> {
    fn view(
        &self,
        tensor: &str,
        shape: &[usize],
    ) -> Result<safetensors::tensor::TensorView<'_>, CheckpointError> {
        let path = self.path.display().to_string();
        let view = self
            .file
            .tensor(tensor)
            .map_err(|_| CheckpointError::Missing {
                path: path.clone(),
                tensor: tensor.into(),
            })?;
        if view.shape() != shape {
            return Err(CheckpointError::Shape {
                path,
                tensor: tensor.into(),
                got: view.shape().to_vec(),
                expected: shape.to_vec(),
            });
        }
        Ok(view)
    }

    /// A float tensor, every value checked finite: a NaN or an infinity in a norm, the
    /// embedding or the LM head would reach the logits (a NaN logit still "argmaxes").
    fn floats(&self, tensor: &str, shape: &[usize]) -> Result<Vec<f32>, CheckpointError> {
        let view = self.view(tensor, shape)?;
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            other => {
                return Err(CheckpointError::Dtype {
                    path: self.path.display().to_string(),
                    tensor: tensor.into(),
                    got: format!("{other:?}"),
                    expected: "BF16 or F32",
                })
            }
        };
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(CheckpointError::NonFinite {
                path: self.path.display().to_string(),
                tensor: tensor.into(),
                index: unravel(i, shape),
                value: values[i],
            });
        }
        Ok(values)
    }

    fn ternary(&self, name: &str, m: usize, k: usize) -> Result<TernaryMatrix, CheckpointError> {
        let tensor = format!("{name}.weight");
        let rows = m / PER_BYTE;
        let view = self.view(&tensor, &[rows, k])?;
        if view.dtype() != Dtype::U8 {
            return Err(CheckpointError::Dtype {
                path: self.path.display().to_string(),
                tensor,
                got: format!("{:?}", view.dtype()),
                expected: "U8 (4 packed ternary weights per byte)",
            });
        }
        let w = unpack(view.data(), m, k).map_err(|(row, col)| CheckpointError::NotTernary {
            path: self.path.display().to_string(),
            tensor: tensor.clone(),
            row,
            col,
        })?;
        if w.iter().all(|&x| x == 0) {
            return Err(CheckpointError::AllZero {
                path: self.path.display().to_string(),
                tensor,
            });
        }
        let scale_name = format!("{name}.weight_scale");
        let scale = self.floats(&scale_name, &[1])?[0];
        if !(scale.is_finite() && scale > 0.0) {
            return Err(CheckpointError::Scale {
                path: self.path.display().to_string(),
                tensor: scale_name,
                value: scale,
            });
        }
        let scale = if self.divides { 1.0 / scale } else { scale };
        Ok(TernaryMatrix { m, k, w, scale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelConfig {
        ModelConfig::preset("tiny").unwrap()
    }

    /// Weights and gains rounded to bfloat16, as a written checkpoint holds them.
    fn as_written(mut c: Checkpoint) -> Checkpoint {
        let round = |v: &mut Vec<f32>| v.iter_mut().for_each(|x| *x = bf16_to_f32(f32_to_bf16(*x)));
        round(&mut c.embed_tokens);
        round(&mut c.norm);
        if let Some(h) = &mut c.lm_head {
            round(h);
        }
        for l in &mut c.layers {
            round(&mut l.input_layernorm);
            round(&mut l.attn_sub_norm);
            round(&mut l.post_attention_layernorm);
            round(&mut l.ffn_sub_norm);
            for t in &mut l.matmuls {
                t.scale = bf16_to_f32(f32_to_bf16(t.scale));
            }
        }
        c
    }

    #[test]
    fn a_written_checkpoint_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::random(&tiny(), 7);
        c.write_hf(dir.path()).unwrap();
        let back = Checkpoint::read_hf(dir.path()).unwrap();
        // config.json carries no preset name: the model type stands in for it.
        assert_eq!(back.config.name, "bitnet");
        let want = as_written(c);
        assert!(
            back.config
                == ModelConfig {
                    name: "bitnet".into(),
                    ..want.config.clone()
                },
            "config: {:?}",
            back.config
        );
        for (i, (got, want)) in back.layers.iter().zip(&want.layers).enumerate() {
            assert!(got == want, "layer {i} differs after a round trip (seed 7)");
        }
        assert!(back.embed_tokens == want.embed_tokens && back.norm == want.norm);
        assert!(back.lm_head == want.lm_head, "LM head (seed 7)");
    }

    #[test]
    fn packing_follows_the_transformers_layout() {
        // 8 rows: packed row 0 holds rows 0, 2, 4, 6 in bit pairs 0..8.
        let t = TernaryMatrix {
            m: 8,
            k: 1,
            w: vec![-1, 0, 0, 1, 1, -1, 1, 0],
            scale: 1.0,
        };
        // rows 0,2,4,6 = -1,0,1,1 -> codes 0,1,2,2; rows 1,3,5,7 = 0,1,-1,0 -> 1,2,0,1
        assert_eq!(pack(&t), vec![0b10_10_01_00, 0b01_00_10_01]);
    }

    /// The worked example in the docstring of `transformers.integrations.bitnet.unpack_weights`.
    #[test]
    fn unpacking_matches_the_transformers_docstring_example() {
        let packed = [0b1010_0001, 0b0001_1000, 0b1001_0000, 0b0000_1010];
        let want: [[i8; 2]; 8] = [
            [0, -1],
            [-1, 1],
            [-1, 1],
            [-1, 1],
            [1, 0],
            [0, -1],
            [1, -1],
            [1, -1],
        ];
        assert_eq!(unpack(&packed, 8, 2).unwrap(), want.concat());
        let t = TernaryMatrix {
            m: 8,
            k: 2,
            w: want.concat(),
            scale: 1.0,
        };
        assert_eq!(pack(&t), packed);
        assert_eq!(unpack(&[0b1100_0000], 4, 1), Err((3, 0)));
    }

    #[test]
    fn damaged_checkpoints_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::random(&tiny(), 3);
        c.write_hf(dir.path()).unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        let good = std::fs::read(&weights).unwrap();

        // Truncated.
        std::fs::write(&weights, &good[..good.len() / 2]).unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(matches!(err, CheckpointError::Format { .. }), "{err}");

        // A code 0b11 in a packed weight.
        let file = SafeTensors::deserialize(&good).unwrap();
        let name = "model.layers.1.mlp.down_proj.weight";
        let view = file.tensor(name).unwrap();
        let start = view.data().as_ptr() as usize - good.as_ptr() as usize;
        let mut bad = good.clone();
        bad[start + 5] = 0b11_00_00_00;
        std::fs::write(&weights, &bad).unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::NotTernary { tensor, col: 5, .. } if tensor == name),
            "{err}"
        );

        // Non-finite floats, named with their first bad index: NaN in a norm gain, an
        // infinity in the embedding.
        let poke = |name: &str, element: usize, bits: u16| {
            let view = file.tensor(name).unwrap();
            let at = view.data().as_ptr() as usize - good.as_ptr() as usize + 2 * element;
            let mut bad = good.clone();
            bad[at..at + 2].copy_from_slice(&bits.to_le_bytes());
            std::fs::write(&weights, &bad).unwrap();
            Checkpoint::read_hf(dir.path()).unwrap_err()
        };
        let err = poke("model.layers.1.post_attention_layernorm.weight", 3, 0x7FC0);
        assert!(
            matches!(&err, CheckpointError::NonFinite { tensor, index, value, .. }
                if tensor == "model.layers.1.post_attention_layernorm.weight" && index == &[3] && value.is_nan()),
            "{err}"
        );
        let h = tiny().hidden;
        let err = poke("model.embed_tokens.weight", 2 * h + 5, 0xFF80);
        assert!(
            matches!(&err, CheckpointError::NonFinite { index, value, .. }
                if index == &[2, 5] && *value == f32::NEG_INFINITY),
            "{err}"
        );
        assert!(err.to_string().contains("must be finite"), "{err}");

        // A header entry whose shape does not match its bytes is named.
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..8 + n]).unwrap();
        let entry = "\"model.norm.weight\":{\"dtype\":\"BF16\",\"shape\":[";
        let at = header.find(entry).expect("the norm's entry") + entry.len();
        // Same length: the first digit of the shape made a 9 (a larger tensor).
        assert!(!header[at..].starts_with('9'));
        let mut bad = good.clone();
        bad[8 + at] = b'9';
        std::fs::write(&weights, &bad).unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::Format { message, .. } if message.contains("`model.norm.weight`")),
            "{err}"
        );

        // A config that disagrees with the tensors.
        std::fs::write(&weights, &good).unwrap();
        let cfg = dir.path().join(CONFIG_JSON);
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(
            &cfg,
            text.replace("\"intermediate_size\": 128", "\"intermediate_size\": 256"),
        )
        .unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::Shape { tensor, .. } if tensor.contains("gate_proj")),
            "{err}"
        );
        std::fs::write(
            &cfg,
            text.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
        )
        .unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("`num_key_value_heads` = 3"),
            "{err}"
        );
        // The path once, not once per layer of the error.
        let path = cfg.display().to_string();
        assert_eq!(err.to_string().matches(&path).count(), 1, "{err}");
        // The same file read as transformers' `BitLinear` (weight_scale divides).
        std::fs::write(&cfg, text.replace("autobitlinear", "bitlinear")).unwrap();
        let inverted = Checkpoint::read_hf(dir.path()).unwrap();
        let first = |c: &Checkpoint| c.layers[0].matmuls[0].scale;
        let written = bf16_to_f32(f32_to_bf16(first(&c)));
        assert_eq!(first(&inverted), 1.0 / written);
        std::fs::write(&cfg, text.replace("autobitlinear", "fancylinear")).unwrap();
        let err = Checkpoint::read_hf(dir.path()).unwrap_err();
        assert!(err.to_string().contains("fancylinear"), "{err}");
        std::fs::write(&cfg, "{").unwrap();
        assert!(matches!(
            Checkpoint::read_hf(dir.path()),
            Err(CheckpointError::Config { .. })
        ));
    }

    /// What transformers' `BitNetQuantConfig` can ask for and tern does not compute is
    /// refused by its key, and its one default that matters (the divider) is followed.
    #[test]
    fn a_quantization_config_tern_does_not_compute_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::random(&tiny(), 4).write_hf(dir.path()).unwrap();
        let cfg = dir.path().join(CONFIG_JSON);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let quant = r#""quantization_config": {
    "linear_class": "autobitlinear",
    "quant_method": "bitnet",
    "quantization_mode": "offline"
  }"#;
        assert!(text.contains(quant), "write_hf's config changed:\n{text}");
        let with = |q: &str| {
            std::fs::write(&cfg, text.replace(quant, q)).unwrap();
            Checkpoint::read_hf(dir.path())
        };
        for (q, named) in [
            (
                r#""quantization_config": {"linear_class": "autobitlinear", "use_rms_norm": true}"#,
                "use_rms_norm",
            ),
            (
                r#""quantization_config": {"linear_class": "autobitlinear", "quantization_mode": "online"}"#,
                "quantization_mode \"online\"",
            ),
            (
                r#""quantization_config": {"quant_method": "gptq"}"#,
                "quant_method `gptq`",
            ),
            (
                r#""quantization_config": {"modules_to_not_convert": ["lm_head", "model.layers.0.mlp.down_proj"]}"#,
                "`model.layers.0.mlp.down_proj`",
            ),
            (
                r#""no_quantization_config": {}"#,
                "no `quantization_config`",
            ),
        ] {
            let err = with(q).unwrap_err();
            assert!(
                matches!(&err, CheckpointError::Config { message, .. } if message.contains(named)),
                "{q}: {err}"
            );
        }
        // Declared but off, or only lm_head kept: read as usual.
        let plain = with(quant).unwrap();
        let off = with(
            r#""quantization_config": {"linear_class": "autobitlinear", "use_rms_norm": false, "modules_to_not_convert": ["lm_head"]}"#,
        )
        .unwrap();
        assert!(plain == off);
        // No linear_class: transformers' default, bitlinear, divides by weight_scale.
        let default = with(r#""quantization_config": {"quant_method": "bitnet"}"#).unwrap();
        let first = |c: &Checkpoint| c.layers[0].matmuls[0].scale;
        assert_eq!(first(&default), 1.0 / first(&plain));
    }
}
