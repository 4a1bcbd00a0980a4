//! Bounded fuzzing of the checkpoint readers, kept in CI: a tiny checkpoint's
//! `model.safetensors` and `config.json` damaged at random (bytes flipped, files cut,
//! numbers of the headers changed or lengthened, keys renamed) read back as a checkpoint
//! that holds together, or as an error naming the damaged file; never a panic, a hang
//! or an allocation beyond what the files hold. The same for a GGUF file (bytes flipped,
//! the file cut, header fields set to random or huge numbers).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_model::checkpoint::{Checkpoint, CONFIG_JSON, WEIGHTS_FILE};
use tern_model::ModelConfig;

const SEED: u64 = 0x63_6B_70_74;
const CASES: usize = 2000;

/// One random damage to `good`; `text_end` bounds where numbers and names are edited
/// (the JSON part of the file).
fn damage(rng: &mut ChaCha8Rng, good: &[u8], text: std::ops::Range<usize>) -> Vec<u8> {
    let mut bad = good.to_vec();
    match rng.gen_range(0..5) {
        0 => {
            let i = rng.gen_range(0..bad.len());
            bad[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => bad.truncate(rng.gen_range(0..bad.len())),
        2 | 3 => {
            let digits: Vec<usize> = text.clone().filter(|&i| bad[i].is_ascii_digit()).collect();
            let i = digits[rng.gen_range(0..digits.len())];
            if rng.gen_bool(0.5) {
                bad[i] = b'0' + rng.gen_range(0..10);
            } else {
                let n = rng.gen_range(1..12);
                bad.splice(i..i, std::iter::repeat_n(b'9', n));
            }
        }
        _ => {
            let letters: Vec<usize> = text
                .clone()
                .filter(|&i| bad[i].is_ascii_lowercase())
                .collect();
            let i = letters[rng.gen_range(0..letters.len())];
            bad[i] = b'a' + rng.gen_range(0..26);
        }
    }
    bad
}

/// A checkpoint that read back must hold together: every tensor the shape its config
/// says, every weight ternary, every float finite.
fn holds_together(c: &Checkpoint) -> Result<(), String> {
    let cfg = &c.config;
    let floats = c
        .embed_tokens
        .iter()
        .chain(&c.norm)
        .chain(c.lm_head.iter().flatten());
    if floats.clone().any(|v| !v.is_finite()) {
        return Err("a non-finite float".into());
    }
    if c.embed_tokens.len() != cfg.vocab * cfg.hidden || c.layers.len() != cfg.layers {
        return Err("shapes disagree with the config".into());
    }
    for l in &c.layers {
        for (t, mm) in l.matmuls.iter().zip(cfg.layer_matmuls()) {
            if t.w.len() != mm.m * mm.k || t.w.iter().any(|w| !(-1..=1).contains(w)) {
                return Err(format!("matmul {} is not ternary of its shape", mm.name));
            }
            if !(t.scale.is_finite() && t.scale > 0.0) {
                return Err(format!("matmul {} has scale {}", mm.name, t.scale));
            }
        }
    }
    Ok(())
}

#[test]
fn damaged_checkpoints_read_back_whole_or_are_refused_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::preset("tiny").unwrap();
    Checkpoint::random(&config, 11)
        .write_hf(dir.path())
        .unwrap();
    let weights = dir.path().join(WEIGHTS_FILE);
    let cfg = dir.path().join(CONFIG_JSON);
    let (good_w, good_c) = (
        std::fs::read(&weights).unwrap(),
        std::fs::read(&cfg).unwrap(),
    );
    let header_end = 8 + u64::from_le_bytes(good_w[..8].try_into().unwrap()) as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let (mut read, mut refused) = (0, 0);
    for case in 0..CASES {
        // Half the cases damage the weights, half the config.
        let (path, bad) = if case % 2 == 0 {
            (&weights, damage(&mut rng, &good_w, 8..header_end))
        } else {
            (&cfg, damage(&mut rng, &good_c, 0..good_c.len()))
        };
        std::fs::write(path, &bad).unwrap();
        match Checkpoint::read_hf(dir.path()) {
            Ok(c) => {
                read += 1;
                if let Err(why) = holds_together(&c) {
                    panic!("seed {SEED:#x}, case {case}: read back, but {why}");
                }
            }
            Err(e) => {
                refused += 1;
                // Damage to one file may show as a disagreement with the other (a
                // config that claims another shape is caught at the tensor): the error
                // names a file of the checkpoint either way.
                let e = e.to_string();
                assert!(
                    e.contains(CONFIG_JSON) || e.contains(WEIGHTS_FILE),
                    "seed {SEED:#x}, case {case} ({}): the error names no file: {e}",
                    path.display()
                );
            }
        }
        std::fs::write(&weights, &good_w).unwrap();
        std::fs::write(&cfg, &good_c).unwrap();
    }
    // Both outcomes happen: the damage reaches the checks, and harmless damage (a digit
    // of a value left equal, a weight byte still ternary) reads back.
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
    eprintln!(
        "seed {SEED:#x}: {CASES} damaged checkpoints, {read} read back whole, {refused} refused"
    );
}

/// Damage to a GGUF file: bytes flipped, the file cut, or a count, a length, a
/// dimension or an offset of its header set to a random or huge number. It reads back
/// whole or is refused naming the file; the allocation the reader makes is bounded by
/// the file's size, so a length of 2⁶⁰ is an error, not an abort.
fn damage_gguf(rng: &mut ChaCha8Rng, good: &[u8], header: usize) -> Vec<u8> {
    let mut bad = good.to_vec();
    match rng.gen_range(0..4) {
        0 => {
            let i = rng.gen_range(0..bad.len());
            bad[i] ^= 1 << rng.gen_range(0..8);
        }
        1 => bad.truncate(rng.gen_range(0..bad.len())),
        _ => {
            // An 8-byte little-endian field somewhere in the header (counts, lengths,
            // dimensions and offsets are u64).
            let at = rng.gen_range(8..header - 8);
            let v: u64 = match rng.gen_range(0..3) {
                0 => rng.gen_range(0..1024),
                1 => 1 << rng.gen_range(20..63),
                _ => u64::MAX - rng.gen_range(0..4),
            };
            bad[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    bad
}

#[test]
fn damaged_gguf_files_read_back_whole_or_are_refused_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = ModelConfig::preset("tiny").unwrap();
    let path = dir.path().join("tiny.gguf");
    Checkpoint::random(&config, 12)
        .write_gguf(&path, &[])
        .unwrap();
    let good = std::fs::read(&path).unwrap();
    let header = tern_model::gguf::Gguf::parse(&good).unwrap().tensors[0]
        .data
        .start;
    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);
    let (mut read, mut refused) = (0, 0);
    for case in 0..CASES {
        std::fs::write(&path, damage_gguf(&mut rng, &good, header)).unwrap();
        match Checkpoint::open(&path) {
            Ok(o) => {
                read += 1;
                if let Err(why) = holds_together(&o.checkpoint) {
                    panic!("seed {:#x}, case {case}: read back, but {why}", SEED + 1);
                }
            }
            Err(e) => {
                refused += 1;
                let e = e.to_string();
                assert!(
                    e.contains(&path.display().to_string()),
                    "seed {:#x}, case {case}: the error names no file: {e}",
                    SEED + 1
                );
            }
        }
    }
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
    eprintln!(
        "seed {:#x}: {CASES} damaged GGUF files, {read} read back whole, {refused} refused",
        SEED + 1
    );
}
