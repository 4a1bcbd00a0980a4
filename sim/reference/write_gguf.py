"""Write a Hugging Face BitNet checkpoint as GGUF with PyPI's `gguf` package, as
llama.cpp's and bitnet.cpp's converters lay it out: an independent writer for tern's
GGUF reader (sim/tests/bitnet_reference.rs).

The container, TQ1_0, TQ2_0, F16 and BF16 are gguf-py's own; I2_S (bitnet.cpp's type 36,
which gguf-py does not know) is packed here from its documented layout: codes w + 1 in
blocks of 128 weights of the flattened matrix, weight j of a block in byte j mod 32 at
bits 6 - 2*(j // 32), then one f32 scale in a 32-byte tail.

usage: write_gguf.py CHECKPOINT_DIR OUT.gguf PROJECTIONS EMBEDDING
  PROJECTIONS: I2_S, TQ1_0, TQ2_0, F16 or F32;  EMBEDDING: F32, F16 or BF16
"""

import json
import sys
from pathlib import Path

import gguf
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bitnet_numpy import read_safetensors, unpack  # noqa: E402 (the NumPy reference's reader)

ARCH = "bitnet-b1.58"
I2_S = 36
NAMES = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}


def i2_s(w, scale):
    q = (w.reshape(-1) + 1).astype(np.uint8).reshape(-1, 4, 32)
    packed = (q[:, 0] << 6) | (q[:, 1] << 4) | (q[:, 2] << 2) | q[:, 3]
    tail = np.zeros(32, dtype=np.uint8)
    tail[:4] = np.frombuffer(np.float32(scale).tobytes(), dtype=np.uint8)
    return np.concatenate([packed.reshape(-1), tail])


def floats(writer, name, x, kind):
    x = x.astype(np.float32)
    if kind == "F32":
        writer.add_tensor(name, x)
    elif kind == "F16":
        h = x.astype(np.float16)
        assert np.array_equal(h.astype(np.float32), x), f"{name} is not exact in F16"
        writer.add_tensor(name, h)
    else:
        q = gguf.quants.quantize(x, gguf.GGMLQuantizationType.BF16)
        # Quantised arrays are bytes; gguf-py takes their byte shape.
        writer.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.BF16)


def main():
    src, out, projections, embedding = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    cfg = json.loads((src / "config.json").read_text())
    t = read_safetensors(src / "model.safetensors")
    f32 = {k: v.astype(np.float32) for k, v in t.items() if v.dtype != np.uint8}
    w = gguf.GGUFWriter(out, ARCH)
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim", cfg["hidden_size"] // heads)
    w.add_name("written-by-gguf-py")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(40 if projections == "I2_S" else 1)

    floats(w, "token_embd.weight", f32["model.embed_tokens.weight"], embedding)
    w.add_tensor("output_norm.weight", f32["model.norm.weight"])
    if not cfg.get("tie_word_embeddings", False):
        floats(w, "output.weight", f32["lm_head.weight"], embedding)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        w.add_tensor(f"blk.{i}.attn_norm.weight", f32[f"{p}.input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_sub_norm.weight", f32[f"{p}.self_attn.attn_sub_norm.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", f32[f"{p}.post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_sub_norm.weight", f32[f"{p}.mlp.ffn_sub_norm.weight"])
        for hf, short in NAMES.items():
            block = "mlp" if hf in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            name = f"{p}.{block}.{hf}"
            tern = unpack(t[f"{name}.weight"]).astype(np.int8)
            scale = np.float32(f32[f"{name}.weight_scale"].reshape(-1)[0])
            out_name = f"blk.{i}.{short}.weight"
            if projections == "I2_S":
                w.add_tensor(out_name, i2_s(tern, scale).view(np.int8), raw_shape=tern.shape, raw_dtype=I2_S)
            elif projections in ("TQ1_0", "TQ2_0"):
                kind = getattr(gguf.GGMLQuantizationType, projections)
                q = gguf.quants.quantize(tern.astype(np.float32) * scale, kind)
                w.add_tensor(out_name, q, raw_dtype=kind)
            else:
                floats(w, out_name, tern.astype(np.float32) * scale, projections)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
