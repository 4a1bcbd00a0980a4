"""An independent float reference of a BitNet b1.58 checkpoint in NumPy (float64),
written from transformers' BitNet model (modeling_bitnet.py, integrations/bitnet.py):
it parses config.json and model.safetensors itself (no Rust, no safetensors package),
runs the given tokens one at a time, and compares its logits with a JSON file of logits
from tern's Rust reference (tern_sim::golden::bitnet).

    python3 sim/reference/bitnet_numpy.py --checkpoint DIR --logits RUST.json

Exit status 0 when every position's logits agree within --tolerance (relative to the
largest logit magnitude at that position)."""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np


def read_safetensors(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        raw = data[base + start : base + end]
        dtype, shape = info["dtype"], info["shape"]
        if dtype == "U8":
            tensors[name] = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
        elif dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            tensors[name] = bits.view(np.float32).astype(np.float64).reshape(shape)
        elif dtype == "F32":
            tensors[name] = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(shape)
        else:
            raise SystemExit(f"{path}: unexpected dtype {dtype} for {name}")
    return tensors


def unpack(packed):
    """transformers' unpack_weights: packed row r, bit pair i -> row i*rows + r, value code-1."""
    rows = packed.shape[0]
    out = np.zeros((4 * rows, packed.shape[1]), dtype=np.float64)
    for i in range(4):
        out[i * rows : (i + 1) * rows] = ((packed >> (2 * i)) & 3).astype(np.float64) - 1
    return out


def rmsnorm(x, g, eps):
    return x / np.sqrt(np.mean(x * x) + eps) * g


def act_quant(x):
    s = 127.0 / max(np.max(np.abs(x)), 1e-5)
    return np.clip(np.round(x * s), -128, 127) / s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--logits", required=True, type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    cfg = json.loads((a.checkpoint / "config.json").read_text())
    t = read_safetensors(a.checkpoint / "model.safetensors")
    h, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    d = cfg.get("head_dim", h // heads)
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    # transformers' BitNetQuantConfig defaults linear_class to "bitlinear" (the divider).
    divides = cfg["quantization_config"].get("linear_class", "bitlinear") == "bitlinear"

    def linear(name, x):
        w = unpack(t[f"{name}.weight"])
        s = float(t[f"{name}.weight_scale"][0])
        y = w @ act_quant(x)
        return y / s if divides else y * s

    def rope(x, p):
        half = d // 2
        inv = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)
        ang = p * inv
        cos, sin = np.cos(ang), np.sin(ang)
        a, b = x[:half], x[half:]
        return np.concatenate([a * cos - b * sin, b * cos + a * sin])

    rust = json.loads(a.logits.read_text())
    keys = [[] for _ in range(layers)]
    values = [[] for _ in range(layers)]
    worst = 0.0
    for p, token in enumerate(rust["tokens"]):
        x = t["model.embed_tokens.weight"][token].copy()
        for l in range(layers):
            pre = f"model.layers.{l}"
            hn = rmsnorm(x, t[f"{pre}.input_layernorm.weight"], eps)
            q = linear(f"{pre}.self_attn.q_proj", hn).reshape(heads, d)
            k = linear(f"{pre}.self_attn.k_proj", hn).reshape(kv_heads, d)
            v = linear(f"{pre}.self_attn.v_proj", hn).reshape(kv_heads, d)
            q = np.stack([rope(row, p) for row in q])
            k = np.stack([rope(row, p) for row in k])
            keys[l].append(k)
            values[l].append(v)
            K, V = np.stack(keys[l]), np.stack(values[l])  # (positions, kv_heads, d)
            out = np.zeros((heads, d))
            for i in range(heads):
                g = i // (heads // kv_heads)
                s = K[:, g, :] @ q[i] / np.sqrt(d)
                e = np.exp(s - s.max())
                out[i] = (e / e.sum()) @ V[:, g, :]
            attn = rmsnorm(out.reshape(-1), t[f"{pre}.self_attn.attn_sub_norm.weight"], eps)
            x = x + linear(f"{pre}.self_attn.o_proj", attn)
            hn = rmsnorm(x, t[f"{pre}.post_attention_layernorm.weight"], eps)
            gate = linear(f"{pre}.mlp.gate_proj", hn)
            up = linear(f"{pre}.mlp.up_proj", hn)
            act = rmsnorm(np.maximum(gate, 0) ** 2 * up, t[f"{pre}.mlp.ffn_sub_norm.weight"], eps)
            x = x + linear(f"{pre}.mlp.down_proj", act)
        head = t.get("lm_head.weight", t["model.embed_tokens.weight"])
        logits = head @ rmsnorm(x, t["model.norm.weight"], eps)
        theirs = np.array(rust["logits"][p], dtype=np.float64)
        err = np.max(np.abs(logits - theirs)) / max(np.max(np.abs(logits)), 1e-9)
        worst = max(worst, err)
        if err > a.tolerance:
            i = int(np.argmax(np.abs(logits - theirs)))
            print(f"position {p} (token {token}): relative error {err:.3e} at logit {i}: numpy {logits[i]:.6f}, rust {theirs[i]:.6f}")
            sys.exit(1)
    print(f"agree: {len(rust['tokens'])} positions, worst relative error {worst:.3e}")


if __name__ == "__main__":
    main()
