//! Text in and out of a model: the checkpoint's tokenizer and chat template
//! (docs/files.md, "Tokenizers").
//!
//! A Hugging Face checkpoint carries `tokenizer.json` (and, in `tokenizer_config.json`,
//! its chat template); a GGUF file carries its vocabulary as `tokenizer.ggml.*` metadata,
//! which is turned into the same tokenizer.json form and read by the same library
//! (Hugging Face `tokenizers`), so both paths encode alike. A random checkpoint gets a
//! byte-level tokenizer: the 256 byte tokens, then reserved tokens up to the vocabulary.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value as Json};

use crate::gguf::Value;

pub const TOKENIZER_JSON: &str = "tokenizer.json";
pub const TOKENIZER_CONFIG_JSON: &str = "tokenizer_config.json";
/// Largest tokenizer file read (the 2B-4T tokenizer.json is 9 MB).
const MAX_TOKENIZER_BYTES: u64 = 64 << 20;
/// Llama 3's pre-tokenizer (bitnet-b1.58-2B-4T's, GGUF `tokenizer.ggml.pre = llama-bpe`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("{origin}: {message}")]
    Tokenizer { origin: String, message: String },
    #[error("{origin}: {message}")]
    Template { origin: String, message: String },
    #[error("{message}")]
    Text { message: String },
}

/// A model's tokenizer, with its chat template when it has one.
pub struct TextCodec {
    tokenizer: tokenizers::Tokenizer,
    chat_template: Option<String>,
    bos_token: String,
    eos_token: String,
    /// Where it came from, for messages.
    pub origin: String,
}

impl std::fmt::Debug for TextCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextCodec")
            .field("origin", &self.origin)
            .field("chat_template", &self.chat_template.is_some())
            .finish()
    }
}

/// GPT-2's byte-to-character map of byte-level BPE: printable bytes stand for
/// themselves, the others for characters from U+0100 on.
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).expect("below U+0200")
}

impl TextCodec {
    /// The tokenizer a checkpoint carries: `tokenizer.json` beside a Hugging Face
    /// checkpoint's files, or the vocabulary in a GGUF's metadata. None when it has none.
    pub fn of_checkpoint(path: &Path, vocab: usize) -> Result<Option<TextCodec>, TextError> {
        if path.is_dir() {
            let file = path.join(TOKENIZER_JSON);
            if !file.exists() {
                return Ok(None);
            }
            return TextCodec::from_tokenizer_json(&file, vocab).map(Some);
        }
        // The metadata comes first: read as far as a vocabulary can reach, not the
        // tensors' gigabytes.
        use std::io::Read;
        let origin = path.display().to_string();
        let mut bytes = vec![];
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TOKENIZER_BYTES).read_to_end(&mut bytes))
            .map_err(|e| TextError::Tokenizer {
                origin: origin.clone(),
                message: e.to_string(),
            })?;
        let metadata =
            crate::gguf::Gguf::parse_metadata(&bytes).map_err(|message| TextError::Tokenizer {
                origin: origin.clone(),
                message,
            })?;
        TextCodec::from_gguf(&metadata, vocab, &origin)
    }

    /// `tokenizer.json`, and its chat template and BOS/EOS from `tokenizer_config.json`
    /// beside it when there is one.
    pub fn from_tokenizer_json(file: &Path, vocab: usize) -> Result<TextCodec, TextError> {
        let origin = file.display().to_string();
        let text = read_bounded(file)?;
        let mut codec = TextCodec::parse(&text, vocab, &origin)?;
        let config = file.with_file_name(TOKENIZER_CONFIG_JSON);
        if config.exists() {
            let c: Json = serde_json::from_str(&read_bounded(&config)?).map_err(|e| {
                TextError::Tokenizer {
                    origin: config.display().to_string(),
                    message: format!("not JSON: {e}"),
                }
            })?;
            let token = |key: &str| match &c[key] {
                Json::String(s) => Some(s.clone()),
                Json::Object(o) => o.get("content").and_then(|v| v.as_str()).map(String::from),
                _ => None,
            };
            codec.bos_token = token("bos_token").unwrap_or_default();
            codec.eos_token = token("eos_token").unwrap_or_default();
            codec.chat_template = match &c["chat_template"] {
                Json::String(s) => Some(s.clone()),
                // A list of named templates: the default one.
                Json::Array(list) => list
                    .iter()
                    .find(|t| t["name"] == "default")
                    .and_then(|t| t["template"].as_str())
                    .map(String::from),
                _ => None,
            };
        }
        Ok(codec)
    }

    fn parse(text: &str, vocab: usize, origin: &str) -> Result<TextCodec, TextError> {
        let tokenizer: tokenizers::Tokenizer = text.parse().map_err(|e| TextError::Tokenizer {
            origin: origin.into(),
            message: format!("not a tokenizer.json the tokenizers library reads: {e}"),
        })?;
        let size = tokenizer.get_vocab_size(true);
        // The largest id, not the count: added tokens may sit anywhere.
        let largest = tokenizer
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1);
        if largest > vocab {
            return Err(TextError::Tokenizer {
                origin: origin.into(),
                message: format!(
                    "holds ids up to {} ({size} tokens), but the model's vocabulary is {vocab}: \
                     not this model's tokenizer",
                    largest - 1
                ),
            });
        }
        Ok(TextCodec {
            tokenizer,
            chat_template: None,
            bos_token: String::new(),
            eos_token: String::new(),
            origin: origin.into(),
        })
    }

    /// The vocabulary of a GGUF (`tokenizer.ggml.model = gpt2`: byte-level BPE).
    pub fn from_gguf(
        meta: &BTreeMap<String, Value>,
        vocab: usize,
        origin: &str,
    ) -> Result<Option<TextCodec>, TextError> {
        let bad = |message: String| TextError::Tokenizer {
            origin: origin.into(),
            message,
        };
        let Some(model) = meta.get("tokenizer.ggml.model") else {
            return Ok(None);
        };
        let model = model.as_str().unwrap_or_default();
        if model != "gpt2" {
            return Err(bad(format!(
                "`tokenizer.ggml.model` is `{model}`; tern reads byte-level BPE (`gpt2`, as \
                 bitnet-b1.58-2B-4T's) — give token ids instead"
            )));
        }
        let strings = |key: &str| -> Result<Vec<String>, TextError> {
            match meta.get(key) {
                None => Ok(vec![]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(String::from))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("`{key}` is not an array of strings"))),
                Some(_) => Err(bad(format!("`{key}` is not an array"))),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        if tokens.is_empty() {
            return Err(bad("`tokenizer.ggml.tokens` is missing or empty".into()));
        }
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<u64> = match meta.get("tokenizer.ggml.token_type") {
            Some(Value::Array(items)) => items.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
            _ => vec![],
        };
        let id = |key: &str| meta.get(key).and_then(Value::as_u64).map(|i| i as usize);
        let token_at = |i: Option<usize>| i.and_then(|i| tokens.get(i)).cloned();
        let pre = meta
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let pre_tokenizer = match pre {
            "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
            ]}),
            "default" | "gpt2" => {
                json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
            }
            other => {
                return Err(bad(format!(
                    "`tokenizer.ggml.pre` is `{other}`; tern knows `llama-bpe` and `gpt2`"
                )))
            }
        };
        // Control (3) and user-defined (4) tokens are matched whole, before BPE; they
        // stay in the model's vocabulary too, so they keep their ids.
        let mut added = vec![];
        let mut bpe_vocab = serde_json::Map::new();
        for (i, t) in tokens.iter().enumerate() {
            if matches!(types.get(i), Some(3 | 4)) {
                added.push(json!({"id": i, "content": t, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false, "special": true}));
            }
            bpe_vocab.insert(t.clone(), json!(i));
        }
        let bos = token_at(id("tokenizer.ggml.bos_token_id"));
        let add_bos = matches!(
            meta.get("tokenizer.ggml.add_bos_token"),
            Some(Value::Bool(true))
        );
        let post = match (&bos, add_bos) {
            (Some(b), true) => json!({"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b.clone(): {"id": b, "ids": [id("tokenizer.ggml.bos_token_id")], "tokens": [b]}}}),
            _ => Json::Null,
        };
        let tokenizer = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": added, "normalizer": null,
            "pre_tokenizer": pre_tokenizer, "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
                "byte_fallback": false, "ignore_merges": false, "vocab": bpe_vocab, "merges": merges},
        });
        let mut codec = TextCodec::parse(&tokenizer.to_string(), vocab, origin)?;
        codec.chat_template = meta
            .get("tokenizer.chat_template")
            .and_then(Value::as_str)
            .map(String::from);
        codec.bos_token = bos.unwrap_or_default();
        codec.eos_token = token_at(id("tokenizer.ggml.eos_token_id")).unwrap_or_default();
        Ok(Some(codec))
    }

    /// A byte-level tokenizer for a random model (`vocab` ≥ 256): the 256 bytes, then
    /// `<|reserved_i|>` tokens up to the vocabulary, the first two as BOS and EOS.
    pub fn bytes(vocab: usize) -> Result<TextCodec, TextError> {
        TextCodec::parse(
            &byte_tokenizer_json(vocab)?,
            vocab,
            "the byte-level tokenizer",
        )
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// `text` as token ids: through the chat template as one user message when `chat`
    /// (and the tokenizer has one), else with the tokenizer's own special tokens (BOS).
    pub fn encode(&self, text: &str, chat: bool) -> Result<Vec<usize>, TextError> {
        let (input, special) = match (&self.chat_template, chat) {
            (Some(t), true) => (self.render(t, text)?, false),
            _ => (text.to_string(), true),
        };
        let e = self
            .tokenizer
            .encode(input.as_str(), special)
            .map_err(|e| TextError::Text {
                message: format!("{}: cannot tokenise the prompt: {e}", self.origin),
            })?;
        Ok(e.get_ids().iter().map(|&i| i as usize).collect())
    }

    fn render(&self, template: &str, text: &str) -> Result<String, TextError> {
        let bad = |e: minijinja::Error| TextError::Template {
            origin: format!("{} (chat template)", self.origin),
            message: format!("{e:#}"),
        };
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |m: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    m,
                ))
            },
        );
        env.add_template("chat", template).map_err(bad)?;
        env.get_template("chat")
            .map_err(bad)?
            .render(minijinja::context! {
                messages => vec![minijinja::context! { role => "user", content => text }],
                add_generation_prompt => true,
                bos_token => self.bos_token.as_str(),
                eos_token => self.eos_token.as_str(),
            })
            .map_err(bad)
    }

    /// The text of `ids` (special tokens shown as written).
    pub fn decode(&self, ids: &[usize]) -> Result<String, TextError> {
        let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
        self.tokenizer
            .decode(&ids, false)
            .map_err(|e| TextError::Text {
                message: format!("{}: cannot decode {ids:?}: {e}", self.origin),
            })
    }
}

/// Generated text as it arrives: each id's new text, held back while it ends inside a
/// character (a multi-byte character split over tokens), as llama.cpp's CLI prints.
pub struct TextStream<'a> {
    codec: &'a TextCodec,
    ids: Vec<usize>,
    shown: usize,
}

impl<'a> TextStream<'a> {
    pub fn new(codec: &'a TextCodec) -> Self {
        TextStream {
            codec,
            ids: vec![],
            shown: 0,
        }
    }

    /// The text `id` adds to what was shown.
    pub fn push(&mut self, id: usize) -> Result<String, TextError> {
        self.ids.push(id);
        let text = self.codec.decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') || text.len() < self.shown {
            return Ok(String::new());
        }
        let new = text[self.shown..].to_string();
        self.shown = text.len();
        Ok(new)
    }

    /// All the text so far.
    pub fn text(&self) -> Result<String, TextError> {
        self.codec.decode(&self.ids)
    }
}

fn read_bounded(path: &Path) -> Result<String, TextError> {
    use std::io::Read;
    let bad = |message: String| TextError::Tokenizer {
        origin: path.display().to_string(),
        message,
    };
    let mut bytes = vec![];
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKENIZER_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_TOKENIZER_BYTES {
        return Err(bad(format!(
            "larger than {} MiB; not a tokenizer file",
            MAX_TOKENIZER_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))
}

/// Write [`TextCodec::bytes`]'s tokenizer.json into a checkpoint directory.
pub fn write_byte_tokenizer(dir: &Path, vocab: usize) -> Result<(), TextError> {
    let file = dir.join(TOKENIZER_JSON);
    std::fs::write(&file, byte_tokenizer_json(vocab)?).map_err(|e| TextError::Tokenizer {
        origin: file.display().to_string(),
        message: e.to_string(),
    })
}

/// [`TextCodec::bytes`]'s vocabulary as GGUF metadata (`tokenizer.ggml.*`).
pub fn byte_vocabulary_gguf(vocab: usize) -> Result<Vec<(String, Value)>, TextError> {
    byte_tokenizer_json(vocab)?;
    let tokens = (0..vocab)
        .map(|i| match u8::try_from(i) {
            Ok(b) => byte_char(b).to_string(),
            Err(_) => format!("<|reserved_{}|>", i - 256),
        })
        .map(Value::Str)
        .collect();
    let types = (0..vocab)
        .map(|i| Value::Int(if i < 256 { 1 } else { 3 }))
        .collect();
    Ok(vec![
        ("tokenizer.ggml.model".into(), Value::Str("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::Str("gpt2".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
    ])
}

/// tokenizer.json of [`TextCodec::bytes`].
pub fn byte_tokenizer_json(vocab: usize) -> Result<String, TextError> {
    if vocab < 256 {
        return Err(TextError::Text {
            message: format!(
                "a vocabulary of {vocab} cannot hold the 256 byte tokens: give token ids"
            ),
        });
    }
    let mut bpe_vocab = serde_json::Map::new();
    for b in 0..=255u8 {
        bpe_vocab.insert(byte_char(b).to_string(), json!(b));
    }
    let added: Vec<Json> = (256..vocab)
        .map(|i| {
            let token = format!("<|reserved_{}|>", i - 256);
            bpe_vocab.insert(token.clone(), json!(i));
            json!({"id": i, "content": token, "single_word": false,
                "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added, "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": bpe_vocab, "merges": []},
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_map_is_gpt2s() {
        // GPT-2's table: '!' is itself, the space is U+0120 ('Ġ'), newline U+010A ('Ċ').
        assert_eq!(byte_char(b'!'), '!');
        assert_eq!(byte_char(b' '), 'Ġ');
        assert_eq!(byte_char(b'\n'), 'Ċ');
        assert_eq!(byte_char(0xAD), '\u{0143}');
        let all: std::collections::BTreeSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn the_byte_tokenizer_round_trips_any_text_and_streams_whole_characters() {
        let codec = TextCodec::bytes(300).unwrap();
        for text in ["hello, world", "héllo ünïcode ✓ 日本", "tabs\tand\nlines  "] {
            let ids = codec.encode(text, true).unwrap();
            assert_eq!(ids.len(), text.len(), "one token a byte: {text:?}");
            assert_eq!(codec.decode(&ids).unwrap(), text);
            // Streamed: "✓" is three tokens, shown once whole.
            let mut stream = TextStream::new(&codec);
            let pieces: Vec<String> = ids.iter().map(|&i| stream.push(i).unwrap()).collect();
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
        }
        assert_eq!(codec.decode(&[256, 104]).unwrap(), "<|reserved_0|>h");
        assert!(TextCodec::bytes(255).is_err());
        // The same vocabulary through GGUF metadata encodes alike.
        let meta: BTreeMap<String, Value> =
            byte_vocabulary_gguf(300).unwrap().into_iter().collect();
        let gguf = TextCodec::from_gguf(&meta, 300, "m.gguf").unwrap().unwrap();
        for text in ["hello, world", "日本 <|reserved_3|> x"] {
            assert_eq!(
                gguf.encode(text, true).unwrap(),
                codec.encode(text, true).unwrap()
            );
        }
    }

    #[test]
    fn a_tokenizer_larger_than_the_model_is_refused() {
        let json = byte_tokenizer_json(300).unwrap();
        let err = TextCodec::parse(&json, 256, "t.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ids up to 299") && err.contains("vocabulary is 256"),
            "{err}"
        );
        let err = TextCodec::parse("{", 256, "t.json")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.json: not a tokenizer.json"), "{err}");
    }
}
