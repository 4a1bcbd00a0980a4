//! `tern model`: describe a BitNet b1.58 model: shapes, the ternary matmuls of a layer, weights,
//! packed bytes and KV-cache bytes (a preset: tiny, bitnet-0.73b, bitnet-2b, small; or a
//! model TOML file).

use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Preset name, model TOML file, or (with --checkpoint) ignored.
    #[arg(default_value = "bitnet-0.73b")]
    pub model: String,
    /// Print the model config as TOML (to start a file of your own from a preset).
    #[arg(long)]
    pub toml: bool,
    /// Read a BitNet checkpoint: a Hugging Face directory (config.json and
    /// model.safetensors) or a GGUF file; check every weight, and describe it.
    #[arg(long, conflicts_with = "write_random")]
    pub checkpoint: Option<PathBuf>,
    /// Refuse the checkpoint unless its weights file has this SHA-256 (hex; the figure
    /// `sha256sum model.safetensors` prints and a model hub lists).
    #[arg(long, requires = "checkpoint")]
    pub expect_sha256: Option<String>,
    /// Write a checkpoint of the model with random ternary weights here: a directory in
    /// the layout of microsoft/bitnet-b1.58-2B-4T, or, for a path ending in .gguf, one
    /// GGUF file (I2_S projections; docs/files.md).
    #[arg(long)]
    pub write_random: Option<PathBuf>,
    /// Seed of --write-random.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        model,
        toml,
        checkpoint,
        expect_sha256,
        write_random,
        seed,
    } = a;
    let m = match &checkpoint {
        Some(dir) => {
            let w = crate::weights::model_weights(&model, Some(dir), expect_sha256.as_deref(), 1)?;
            println!(
                "checkpoint {}: every tensor present with its shape, {} ternary weights decoded \
                 and checked",
                dir.display(),
                w.checkpoint.config.ternary_weights()
            );
            let file = w.file.as_ref().expect("read from disk");
            println!(
                "sha256     {}  {}{}",
                file.sha256,
                file.path.display(),
                if expect_sha256.is_some() {
                    " (as expected)"
                } else {
                    ""
                }
            );
            w.checkpoint.config
        }
        None => tern_model::ModelConfig::resolve(&model)?,
    };
    if let Some(dir) = &write_random {
        let random = tern_model::checkpoint::Checkpoint::random(&m, seed);
        // A byte-level vocabulary when the model has room for the 256 bytes, so text
        // goes in and out (random weights make gibberish of it).
        let bytes = m.vocab >= 256;
        if dir
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            let vocabulary = if bytes {
                tern_model::text::byte_vocabulary_gguf(m.vocab)?
            } else {
                vec![]
            };
            random.write_gguf(dir, &vocabulary)?;
            println!(
                "wrote      {} (GGUF, random weights, seed {seed})",
                dir.display()
            );
        } else {
            random.write_hf(dir)?;
            if bytes {
                tern_model::text::write_byte_tokenizer(dir, m.vocab)?;
            }
            println!(
                "wrote      {} and {}{} in {} (random weights, seed {seed})",
                tern_model::checkpoint::CONFIG_JSON,
                tern_model::checkpoint::WEIGHTS_FILE,
                if bytes {
                    " and a byte-level tokenizer.json"
                } else {
                    ""
                },
                dir.display()
            );
        }
    }
    if toml {
        print!("{}", m.to_toml());
        return Ok(());
    }
    println!(
        "model      {}: hidden {}, {} layers, {} query / {} KV heads of {}, FFN {}, vocab {}, \
         RoPE theta {}, norm eps {:e}, up to {} tokens",
        m.name,
        m.hidden,
        m.layers,
        m.heads,
        m.kv_heads,
        m.head_dim,
        m.ffn,
        m.vocab,
        m.rope_theta,
        m.norm_eps,
        m.max_seq_len
    );
    println!("per layer  ternary matmuls (m x k):");
    for mm in m.layer_matmuls() {
        println!("           {:<10} {:>6} x {}", mm.name, mm.m, mm.k);
    }
    let ternary = m.ternary_weights();
    println!(
        "weights    {:.3} B ternary ({:.1} MB packed at 5 bits per 3 weights, {:.1} MB at 2 bits), \
         {:.3} B full precision (embedding{}, norms)",
        ternary as f64 / 1e9,
        ternary as f64 * 5.0 / 3.0 / 8.0 / 1e6,
        ternary as f64 * 2.0 / 8.0 / 1e6,
        m.float_weights() as f64 / 1e9,
        if m.tied_embeddings { " = LM head" } else { ", LM head" }
    );
    println!(
        "KV cache   {} bytes per token (int8 K and V, all layers); {:.1} MB at {} tokens",
        m.kv_bytes_per_token_per_layer() * m.layers as u64,
        (m.kv_bytes_per_token_per_layer() * (m.layers * m.max_seq_len) as u64) as f64 / 1e6,
        m.max_seq_len
    );
    Ok(())
}
