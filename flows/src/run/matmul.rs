//! `tern run` on a matmul top: a ternary layer on any board URI, checked against the
//! golden model.

use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

use tern_hdl::Config;
use tern_host::sim::SimBoard;
use tern_host::weights_file::TernaryMatrix;
use tern_host::Device;
use tern_sim::verilator::ModelCache;

use crate::files::create_out_dir;
use crate::memory::memory_model;
use crate::run::inputs::{golden, random_layer, read_activations, RunArgs};
use crate::run::report::{print_board, print_wall_and_bytes, write_i8, write_record, Resident};
use tern_dse::performance::bandwidth_bound;
use tern_host::npy::Dtype;

/// What `tern run --out` writes beside the arrays.
#[derive(serde::Serialize)]
struct RunRecord<'a> {
    format: &'static str,
    config: String,
    board_uri: &'a str,
    board: &'a str,
    design_id: String,
    m: usize,
    k: usize,
    tokens: usize,
    seed: u64,
    weights_from: Option<String>,
    activations_from: Option<String>,
    kernel_clocks: u64,
    batches: usize,
    streaming_model_clocks: u64,
    bandwidth_bound_clocks: u64,
    bytes_read: u64,
    bytes_written: u64,
    bit_exact: bool,
    first_difference: Option<usize>,
}

/// The layer to run: the user's weights and activations, or random ones of the config's
/// shape (`--tokens` tokens).
fn layer(a: &RunArgs, cfg: &Config) -> Result<(usize, Vec<i8>, Vec<i8>)> {
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let given_x = match &a.activations {
        Some(path) => Some(read_activations(path, k)?),
        None => None,
    };
    let tokens = match (&given_x, a.tokens) {
        (Some(x), Some(t)) if t != x.len() / k => bail!(
            "--tokens {t} disagrees with the {} tokens in {}",
            x.len() / k,
            a.activations.as_ref().expect("given").display()
        ),
        (Some(x), _) => x.len() / k,
        (None, t) => t.unwrap_or(cfg.workload.tokens),
    };
    if tokens == 0 {
        bail!("--tokens must be at least 1");
    }
    create_out_dir(a.out.as_deref())?;
    let given = match &a.weights {
        Some(path) => {
            let t = TernaryMatrix::read(path)?;
            if (t.m, t.k) != (m, k) {
                bail!(
                    "weights file {} holds a {}x{} matrix, but {} is built for M x K = {m}x{k}",
                    path.display(),
                    t.m,
                    t.k,
                    a.config.display()
                );
            }
            Some(t.w)
        }
        None => None,
    };
    let (w, random_x) = random_layer(cfg, tokens, a.seed, given);
    Ok((tokens, w, given_x.unwrap_or(random_x)))
}

pub fn run(a: &RunArgs, cfg: &Config) -> Result<()> {
    if a.keys.is_some() || a.values.is_some() {
        bail!(
            "--keys and --values are for attention configs; {} is a matmul layer",
            a.config.display()
        );
    }
    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let (tokens, w, x) = layer(a, cfg)?;
    let (memory, memory_text) = memory_model(cfg)?;
    let opts = a.access.open_options(memory, Duration::from_secs(60));
    let t_open = Instant::now();
    let mut dev =
        Device::open(&a.uri, cfg, &opts).with_context(|| format!("opening board {}", a.uri))?;
    let open_time = t_open.elapsed();
    let t_load = Instant::now();
    dev.load_weights(&w)?;
    let load_time = t_load.elapsed();
    let weight_bytes = dev.traffic.bytes_to_card;
    let run = dev.gemm(&x)?;
    let want = golden(cfg, &w, &x);
    let first_diff = (0..want.len()).find(|&i| run.y[i] != want[i]);

    let model = {
        let mut c = cfg.clone();
        c.workload.tokens = tokens;
        c.streaming_cycles()
    };
    print_board(&dev);
    println!(
        "layer      {m}x{k} ternary, {tokens} token(s), seed {}{}",
        a.seed,
        a.weights
            .as_ref()
            .map(|p| format!(", weights {}", p.display()))
            .unwrap_or_default()
    );
    let bound = bandwidth_bound(
        cfg.top.bus_bytes() as f64,
        (a.uri == "sim:").then_some(memory.bytes_per_clock),
        run.bytes_read,
        run.bytes_written,
    );
    if let Some(dir) = &a.out {
        write_i8(dir, "weights.npy", &[m, k], &w)?;
        write_i8(dir, "activations.npy", &[tokens, k], &x)?;
        tern_host::npy::write(&dir.join("results.npy"), Dtype::I64, &[tokens, m], &run.y)?;
        tern_host::npy::write(&dir.join("golden.npy"), Dtype::I64, &[tokens, m], &want)?;
        write_record(
            dir,
            &RunRecord {
                format: "tern-run/1",
                config: a.config.display().to_string(),
                board_uri: &a.uri,
                board: &dev.info().description,
                design_id: format!("{:08x}", dev.info().design_id),
                m,
                k,
                tokens,
                seed: a.seed,
                weights_from: a.weights.as_ref().map(|p| p.display().to_string()),
                activations_from: a.activations.as_ref().map(|p| p.display().to_string()),
                kernel_clocks: run.cycles,
                batches: run.batches,
                streaming_model_clocks: model,
                bandwidth_bound_clocks: bound,
                bytes_read: run.bytes_read,
                bytes_written: run.bytes_written,
                bit_exact: first_diff.is_none(),
                first_difference: first_diff,
            },
        )?;
    }
    println!(
        "kernel     {} clocks in {} batch(es) ({:.0} per token)",
        run.cycles,
        run.batches,
        run.cycles as f64 / tokens as f64,
    );
    println!(
        "bounds     engine streaming model {model} clocks ({:+.1}%), bandwidth bound {bound} clocks \
         ({} B read, {} B written; {:+.1}%): {} bound",
        100.0 * (run.cycles as f64 / model as f64 - 1.0),
        run.bytes_read,
        run.bytes_written,
        100.0 * (run.cycles as f64 / bound as f64 - 1.0),
        if bound > model { "bandwidth" } else { "compute" },
    );
    if a.uri == "sim:" {
        println!("memory     {memory_text}");
    }
    if let Some(dir) = &a.out {
        println!(
            "files      weights.npy, activations.npy, results.npy, golden.npy, run.json in {}",
            dir.display()
        );
    }
    print_wall_and_bytes(
        open_time,
        &Resident {
            action: "load weights",
            what: "weights",
            time: load_time,
            bytes: weight_bytes,
        },
        "activations",
        run.wall,
        &run.traffic,
    );
    match first_diff {
        None => {
            println!(
                "check      bit-exact: all {} outputs match the golden model",
                want.len()
            );
            Ok(())
        }
        Some(i) => {
            let mut msg = format!(
                "MISMATCH at token {}, row {}: board {} golden {} (seed {}, config {})",
                i / m,
                i % m,
                run.y[i],
                want[i],
                a.seed,
                a.config.display()
            );
            if a.uri == "sim:" {
                let vcd = std::env::temp_dir().join(format!("tern-run-{}.vcd", std::process::id()));
                let board = SimBoard::new(cfg, &ModelCache::default(), Some(&vcd), Some(memory))?;
                let mut again = Device::attach(Box::new(board), cfg, &opts)?;
                again.load_weights(&w)?;
                let _ = again.gemm(&x);
                drop(again); // closes the waveform
                msg.push_str(&format!("; waveform of the rerun: {}", vcd.display()));
            }
            bail!(msg)
        }
    }
}
