"""A small byte-level BPE trained with PyPI's `tokenizers` (Llama 3's pre-tokenizer, as
bitnet-b1.58-2B-4T's), saved as tokenizer.json + tokenizer_config.json (with a chat
template), and its vocabulary written into a GGUF by PyPI's `gguf` as llama.cpp's
converter writes it (tokenizer.ggml.*). Prints the library's own ids of each text given,
as JSON, for model/tests/text.rs to compare tern's encodings with.

usage: tokenizer_reference.py OUT_DIR TEXT...
"""

import json
import sys
from pathlib import Path

import gguf
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CORPUS = [
    "A ternary weight is minus one, zero or plus one.",
    "The table-lookup engine adds activations where a weight is one.",
    "Tokens per second and time to first token, measured on the board.",
    "FPGA accelerators stream weights from DDR through four HP ports.",
] * 20
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|user|>", "<|assistant|>"]
TEMPLATE = "{{ bos_token }}{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"


def main():
    out, texts = Path(sys.argv[1]), sys.argv[2:]
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "chat_template": TEMPLATE,
    }))

    spec = json.loads((out / "tokenizer.json").read_text())
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens))), "ids are not dense"
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    w = gguf.GGUFWriter(str(out / "vocab.gguf"), "bitnet-b1.58")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|begin_of_text|>"])
    w.add_eos_token_id(vocab["<|end_of_text|>"])
    w.add_chat_template(TEMPLATE)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    print(json.dumps({
        "vocab": len(tokens),
        "ids": [tok.encode(t, add_special_tokens=False).ids for t in texts],
    }))


if __name__ == "__main__":
    main()
