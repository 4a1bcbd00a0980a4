"""transformers' own BitNet on a checkpoint directory: the yardstick for tern's models.

Loads DIR (config.json + model.safetensors in the Hugging Face BitNet layout, as
`tern model --write-random` writes it) with `AutoModelForCausalLM` in float32 on the
CPU, feeds the prompt, then decodes greedily, and writes for every step the token fed
and the logits after it:

    python3 bitnet_transformers.py DIR --prompt 1,2,3 --steps 32 --out logits.json

Output: {"fed": [token, ...], "logits": [[vocab floats], ...]}, one entry per step; the
token fed at step i > len(prompt) - 1 is the argmax of step i - 1's logits.
"""

import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--prompt", required=True, help="comma-separated token ids")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        sys.exit(f"bitnet_transformers.py needs torch and transformers: {e}")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.dir, dtype=torch.float32)
    # The unpacked ternary weights come out in bfloat16 (exact: -1, 0, 1) while the rest
    # is float32, which F.linear refuses; a quantised model refuses `.float()`, so cast
    # tensor by tensor.
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if p.dtype.is_floating_point and p.dtype != torch.float32:
                p.data = p.data.to(torch.float32)
        for name, b in list(module.named_buffers(recurse=False)):
            if b.dtype.is_floating_point and b.dtype != torch.float32:
                setattr(module, name, b.to(torch.float32))
    model.eval()
    prompt = [int(t) for t in a.prompt.split(",")]
    fed, logits = [], []
    nxt = None
    # The whole sequence again at every step (no cache: its API moves between
    # transformers versions, and a few dozen tokens of a small model cost nothing).
    with torch.no_grad():
        for i in range(a.steps):
            fed.append(prompt[i] if i < len(prompt) else nxt)
            out = model(input_ids=torch.tensor([fed]))
            row = out.logits[0, -1].to(torch.float32)
            logits.append(row.tolist())
            nxt = int(torch.argmax(row))
    with open(a.out, "w") as f:
        json.dump({"fed": fed, "logits": logits}, f)


if __name__ == "__main__":
    main()
