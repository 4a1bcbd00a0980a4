//! Opening a checkpoint from disk, whichever its format (a Hugging Face directory or a
//! GGUF file), with the SHA-256 of its weights file: the figure a model hub lists, and
//! what `--expect-sha256` pins.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::checkpoint::{Checkpoint, CheckpointError, CONFIG_JSON, GGUF_MAGIC, WEIGHTS_FILE};

/// A checkpoint as read from disk, with the SHA-256 of its weights file.
#[derive(Debug, Clone)]
pub struct Opened {
    pub checkpoint: Checkpoint,
    /// The file the weights came from.
    pub weights_path: PathBuf,
    /// Lower-case hex, as `sha256sum` prints it.
    pub sha256: String,
}

impl Opened {
    /// Refuse weights whose SHA-256 is not `expected` (hex, either case).
    pub fn expect_sha256(&self, expected: &str) -> Result<(), CheckpointError> {
        let expected = expected.trim().to_ascii_lowercase();
        if expected != self.sha256 {
            return Err(CheckpointError::Sha256 {
                path: self.weights_path.display().to_string(),
                got: self.sha256.clone(),
                expected,
            });
        }
        Ok(())
    }
}

impl Checkpoint {
    /// Read the checkpoint at `path`: a Hugging Face directory (`config.json` and
    /// `model.safetensors`) or a GGUF file. Anything else is named with what it is.
    pub fn open(path: &Path) -> Result<Opened, CheckpointError> {
        let not = |message: String| CheckpointError::NotACheckpoint {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|cause| CheckpointError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        if !meta.is_dir() {
            let mut head = [0u8; 4];
            let is_gguf = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
                && &head == GGUF_MAGIC;
            if !is_gguf {
                return Err(not(format!(
                    "neither a GGUF file nor a directory: a checkpoint is a GGUF file or a \
                     directory holding {CONFIG_JSON} and {WEIGHTS_FILE} (the layout of \
                     microsoft/bitnet-b1.58-2B-4T)"
                )));
            }
            let io = |cause| CheckpointError::Io {
                path: path.display().to_string(),
                cause,
            };
            let bytes = std::fs::read(path).map_err(io)?;
            let digest: [u8; 32] = Sha256::digest(&bytes).into();
            let checkpoint = crate::bitnet_gguf::read(&bytes, &path.display().to_string())?;
            return Ok(Opened {
                checkpoint,
                weights_path: path.to_path_buf(),
                sha256: hex::encode(digest),
            });
        }
        let (checkpoint, weights_path, digest) = Self::read_hf_digest(path)?;
        Ok(Opened {
            checkpoint,
            weights_path,
            sha256: hex::encode(digest),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;

    fn tiny() -> crate::ModelConfig {
        crate::ModelConfig::preset("tiny").unwrap()
    }

    /// The same weights as safetensors and as GGUF read back equal, and the GGUF's
    /// hash is the file's.
    #[test]
    fn a_gguf_holds_what_the_safetensors_hold() {
        let dir = tempfile::tempdir().unwrap();
        for (seed, tied) in [(8, true), (9, false)] {
            let mut cfg = tiny();
            cfg.tied_embeddings = tied;
            Checkpoint::random(&cfg, seed).write_hf(dir.path()).unwrap();
            let hf = Checkpoint::read_hf(dir.path()).unwrap();
            let path = dir.path().join("m.gguf");
            hf.write_gguf(&path, &[]).unwrap();
            let opened = Checkpoint::open(&path).unwrap();
            assert!(opened.checkpoint == hf, "seed {seed}, tied {tied}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(opened.sha256, hex::encode(Sha256::digest(&bytes)));
        }
    }

    /// `open` names what a path is when it is not a checkpoint directory, refuses a
    /// ternary tensor of zeros by name, and gives the weights file's SHA-256.
    #[test]
    fn open_checks_the_path_the_zeros_and_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::random(&tiny(), 5);
        c.write_hf(dir.path()).unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        let opened = Checkpoint::open(dir.path()).unwrap();
        assert!(opened.checkpoint == Checkpoint::read_hf(dir.path()).unwrap());
        let bytes = std::fs::read(&weights).unwrap();
        let want = hex::encode(Sha256::digest(&bytes));
        assert_eq!(opened.sha256, want);
        opened.expect_sha256(&want.to_uppercase()).unwrap();
        let mut other = want.clone().into_bytes();
        other[0] = if other[0] == b'0' { b'1' } else { b'0' };
        let other = String::from_utf8(other).unwrap();
        let err = opened.expect_sha256(&other).unwrap_err();
        assert!(
            err.to_string().contains(&want) && err.to_string().contains(&other),
            "{err}"
        );

        // A GGUF file, any other file, nothing at all.
        let gguf = dir.path().join("model.gguf");
        std::fs::write(&gguf, b"GGUF\x03\0\0\0").unwrap();
        let err = Checkpoint::open(&gguf).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::Gguf { message, .. } if message.contains("the tensor count")),
            "{err}"
        );
        let err = Checkpoint::open(&weights).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a GGUF file nor a directory"),
            "{err}"
        );
        let err = Checkpoint::open(&dir.path().join("nowhere")).unwrap_err();
        assert!(matches!(err, CheckpointError::Io { .. }), "{err}");

        // An MLP tensor of zeros (codes 0b01), as in the damaged re-uploads.
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let name = "model.layers.1.mlp.up_proj.weight";
        let view = file.tensor(name).unwrap();
        let start = view.data().as_ptr() as usize - bytes.as_ptr() as usize;
        let mut zeros = bytes.clone();
        zeros[start..start + view.data().len()].fill(0b01_01_01_01);
        std::fs::write(&weights, &zeros).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, CheckpointError::AllZero { tensor, .. } if tensor == name),
            "{err}"
        );
    }
}
