//! Text in and out of `tern generate`: a prompt given as token ids or as text, and the
//! generated text as it arrives (docs/files.md, "Tokenizers").
//!
//! With a text prompt the decoded text streams on stdout (the prompt, then each token's
//! text as it arrives, as llama.cpp's CLI prints it) and the run's report goes to stderr,
//! so `tern generate --prompt "…" > out.txt` keeps the text alone.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use tern_model::text::{TextCodec, TextStream};

/// What `--prompt` says: comma-separated token ids, or text.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Ids(Vec<usize>),
    Text(String),
}

impl Prompt {
    /// Comma-separated integers are ids; anything else is text.
    pub fn parse(s: &str) -> Prompt {
        let ids: Option<Vec<usize>> = s.split(',').map(|p| p.trim().parse().ok()).collect();
        match ids {
            Some(ids) if !s.trim().is_empty() => Prompt::Ids(ids),
            _ => Prompt::Text(s.to_string()),
        }
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Prompt::Text(_))
    }
}

impl From<Vec<usize>> for Prompt {
    fn from(ids: Vec<usize>) -> Prompt {
        Prompt::Ids(ids)
    }
}

/// The tokenizer of a run: the checkpoint's (`tokenizer.json` beside it, or a GGUF's
/// vocabulary), or for random weights the byte-level one when the vocabulary holds the
/// 256 bytes. None when there is none.
pub fn codec_for(checkpoint: Option<&Path>, vocab: usize) -> Result<Option<TextCodec>> {
    Ok(match checkpoint {
        Some(path) => TextCodec::of_checkpoint(path, vocab)?,
        None if vocab >= 256 => Some(TextCodec::bytes(vocab)?),
        None => None,
    })
}

/// The prompt's ids: as given, or `text` tokenised (through the chat template as one
/// user message when `chat` and the tokenizer has one).
pub fn prompt_ids(
    prompt: &Prompt,
    codec: Option<&TextCodec>,
    chat: bool,
    checkpoint: Option<&Path>,
) -> Result<Vec<usize>> {
    match prompt {
        Prompt::Ids(ids) => Ok(ids.clone()),
        Prompt::Text(text) => {
            let Some(codec) = codec else {
                bail!(
                    "--prompt is text, but {} carries no tokenizer (tokenizer.json beside its \
                     files, or tokenizer.ggml.* in a GGUF): give comma-separated token ids",
                    checkpoint.map_or("the model".into(), |p| p.display().to_string())
                );
            };
            let ids = codec.encode(text, chat)?;
            if ids.is_empty() {
                bail!("--prompt {text:?} tokenises to no token");
            }
            Ok(ids)
        }
    }
}

/// The prompt's text for reports: as given, or its ids decoded; None without a tokenizer.
pub fn prompt_text(
    prompt: &Prompt,
    codec: Option<&TextCodec>,
    ids: &[usize],
) -> Result<Option<String>> {
    Ok(match (prompt, codec) {
        (Prompt::Text(t), _) => Some(t.clone()),
        (_, Some(c)) => Some(c.decode(ids)?),
        _ => None,
    })
}

/// Generated text: streamed on stdout when the prompt was text, else only gathered.
pub struct TextOut<'a> {
    stream: TextStream<'a>,
    live: bool,
}

impl<'a> TextOut<'a> {
    /// Shows the prompt's text first when `live`.
    pub fn new(codec: &'a TextCodec, prompt: &[usize], live: bool) -> Result<Self> {
        if live {
            let mut out = std::io::stdout().lock();
            write!(out, "{}", codec.decode(prompt)?)?;
            out.flush()?;
        }
        Ok(TextOut {
            stream: TextStream::new(codec),
            live,
        })
    }

    pub fn push(&mut self, id: usize) -> Result<()> {
        let piece = self.stream.push(id)?;
        if self.live && !piece.is_empty() {
            let mut out = std::io::stdout().lock();
            write!(out, "{piece}").context("writing the text")?;
            out.flush()?;
        }
        Ok(())
    }

    /// The generated text (ends the streamed line).
    pub fn finish(self) -> Result<String> {
        if self.live {
            println!();
        }
        Ok(self.stream.text()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_ids_when_they_are_numbers_and_text_otherwise() {
        assert_eq!(Prompt::parse("1,20, 44"), Prompt::Ids(vec![1, 20, 44]));
        assert_eq!(Prompt::parse("7"), Prompt::Ids(vec![7]));
        for text in ["hello", "1, 2 and 3", "", "-1,2", "1,,2"] {
            assert_eq!(Prompt::parse(text), Prompt::Text(text.into()), "{text:?}");
        }
    }
}
