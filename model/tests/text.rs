//! tern's tokenizers against PyPI's `tokenizers` (the Hugging Face library itself) and
//! `gguf` (llama.cpp's writer): a byte-level BPE trained in the test with Llama 3's
//! pre-tokenizer, read from its tokenizer.json and from the vocabulary of a GGUF, must
//! give the library's own ids for every text, round-trip back to the text, and apply
//! the chat template both files carry.
//!
//! Needs python3 with `tokenizers` and `gguf` (scripts/setup.sh installs them); without
//! them this test fails, saying so.

use std::path::Path;
use std::process::Command;

use tern_model::text::{TextCodec, TextStream};

const TEXTS: [&str; 6] = [
    "Hello, FPGA world",
    "A ternary weight is minus one, zero or plus one.",
    "tokens per second: 71.8 at 250 MHz!",
    "  leading spaces\nand lines\n\n",
    "ünïcode ✓ and 日本語",
    "isn't it? they'll see",
];

#[test]
fn tokenizer_json_and_gguf_vocabularies_encode_as_the_library_does() {
    let probe = Command::new("python3")
        .args(["-c", "import tokenizers, gguf"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "python3 with tokenizers and gguf is needed for this test (run scripts/setup.sh): {probe:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tokenizer_reference.py");
    let o = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .args(TEXTS)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tokenizer_reference.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let want: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vocab = want["vocab"].as_u64().unwrap() as usize;
    let json = TextCodec::from_tokenizer_json(&dir.path().join("tokenizer.json"), vocab).unwrap();
    let gguf = TextCodec::of_checkpoint(&dir.path().join("vocab.gguf"), vocab)
        .unwrap()
        .expect("the GGUF carries a vocabulary");
    for (i, text) in TEXTS.iter().enumerate() {
        let ids: Vec<usize> = want["ids"][i]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        // No BOS in either (the trained tokenizer has no post-processor; the GGUF does
        // not ask for one), so raw text encodes to the library's ids.
        assert_eq!(
            json.encode(text, false).unwrap(),
            ids,
            "tokenizer.json: {text:?}"
        );
        assert_eq!(gguf.encode(text, false).unwrap(), ids, "GGUF: {text:?}");
        assert_eq!(json.decode(&ids).unwrap(), *text);
        assert_eq!(gguf.decode(&ids).unwrap(), *text);
        let mut stream = TextStream::new(&gguf);
        let streamed: String = ids.iter().map(|&id| stream.push(id).unwrap()).collect();
        assert_eq!(streamed, *text);
    }
    // The chat template: BOS, the user marker, the text, the assistant marker.
    let id = |t: &str| json.encode(t, false).unwrap();
    for codec in [&json, &gguf] {
        assert!(codec.has_chat_template());
        let chat = codec.encode(TEXTS[0], true).unwrap();
        let want: Vec<usize> = [
            id("<|begin_of_text|>"),
            id("<|user|>"),
            id(TEXTS[0]),
            id("<|assistant|>"),
        ]
        .concat();
        assert_eq!(chat, want, "{}", codec.origin);
        assert_eq!(chat.len(), id(TEXTS[0]).len() + 3, "three special tokens");
    }
    // A model whose vocabulary is smaller than the tokenizer's is not its model.
    let err = TextCodec::from_tokenizer_json(&dir.path().join("tokenizer.json"), 256)
        .unwrap_err()
        .to_string();
    assert!(err.contains("vocabulary is 256"), "{err}");
}
