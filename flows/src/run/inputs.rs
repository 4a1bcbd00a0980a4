//! What `tern run` puts on a board: weights, activations, keys and values, from files or
//! drawn from a seed, and the golden answer to compare against.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_hdl::Config;
use tern_sim::golden::tlmm::ternary_gemm;

/// The weights (`given`, or random) and `tokens` random activation vectors of a layer,
/// drawn in that order from `seed`: what `tern run` and the demo put on a board.
pub fn random_layer(
    cfg: &Config,
    tokens: usize,
    seed: u64,
    given: Option<Vec<i8>>,
) -> (Vec<i8>, Vec<i8>) {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w = given.unwrap_or_else(|| (0..m * k).map(|_| rng.gen_range(-1i8..=1)).collect());
    let x = (0..tokens * k).map(|_| rng.gen()).collect();
    (w, x)
}

/// The golden model's outputs for a layer, token-major (as `Device::gemm` returns them).
pub fn golden(cfg: &Config, w: &[i8], x: &[i8]) -> Vec<i64> {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let w = ndarray::ArrayView2::from_shape((m, k), w).expect("M x K weights");
    let xs = ndarray::ArrayView2::from_shape((x.len() / k, k), x).expect("whole tokens");
    ternary_gemm(w, xs).into_iter().collect()
}

pub struct RunArgs {
    pub uri: String,
    pub config: PathBuf,
    pub tokens: Option<usize>,
    pub seed: u64,
    pub weights: Option<PathBuf>,
    pub activations: Option<PathBuf>,
    /// Attention only: the KV cache's keys and values (.npy, (seq_len, head_dim)).
    pub keys: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub access: crate::access::BoardAccess,
}

pub(crate) fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// Activations from a `.npy` file: int8 values (any integer dtype within range), shape
/// `(tokens, K)` or `(K,)`; token-major.
pub fn read_activations(path: &Path, k: usize) -> Result<Vec<i8>> {
    read_int8_rows(
        path,
        ("activations", "token"),
        "the config's layer takes (tokens, K",
        k,
    )
}

/// Rows of `width` int8 values from a `.npy` file (any integer dtype within range), shape
/// `(rows, width)` or `(width,)`; row-major. `what` (the file, a row) and `takes` name
/// them in errors.
pub fn read_int8_rows(
    path: &Path,
    (what, unit): (&str, &str),
    takes: &str,
    width: usize,
) -> Result<Vec<i8>> {
    let k = width;
    let a = tern_host::npy::read(path)?;
    let tokens = match a.shape[..] {
        [kk] if kk == k => 1,
        [t, kk] if kk == k && t > 0 => t,
        _ => bail!(
            "{what} file {}: shape {:?}, but {takes} = {k}) or ({k},)",
            path.display(),
            a.shape
        ),
    };
    let mut x = Vec::with_capacity(tokens * k);
    for (i, &v) in a.values.iter().enumerate() {
        let Ok(byte) = i8::try_from(v) else {
            bail!(
                "{what} file {}: value {v} at {unit} {}, column {} is outside int8 (-128..=127)",
                path.display(),
                i / k,
                i % k
            );
        };
        x.push(byte);
    }
    Ok(x)
}
