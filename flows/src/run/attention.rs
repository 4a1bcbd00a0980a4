//! `tern run` on an attention config: fill the board's KV cache, run the workload's
//! query rows (decode, or causal prefill in blocks of `attention.query_block`), and check
//! every row against the golden model.

use anyhow::{bail, Context, Result};
use ndarray::{Array2, ArrayView2};
use std::time::{Duration, Instant};

use tern_hdl::config::AttentionMode;
use tern_hdl::streams::attention::{schedule, streamed_keys, RowOutput};
use tern_hdl::{AttentionConfig, DesignConfig};
use tern_host::sim::SimBoard;
use tern_host::Device;
use tern_sim::cosim::attention::{AttentionVectorKind, AttentionVectors};
use tern_sim::golden::attention::streamed_attention;
use tern_sim::verilator::ModelCache;

use crate::files::create_out_dir;
use crate::memory::memory_model_for;
use crate::run::inputs::{read_int8_rows, RunArgs};
use crate::run::report::{print_board, print_wall_and_bytes, write_i8, write_record, Resident};
use tern_dse::performance::bandwidth_bound;

/// What `tern run --out` writes for an attention run (docs/files.md).
#[derive(serde::Serialize)]
struct AttentionRecord<'a> {
    format: &'static str,
    config: String,
    board_uri: &'a str,
    board: &'a str,
    design_id: String,
    head_dim: usize,
    seq_len: usize,
    queries: usize,
    first_position: usize,
    causal: bool,
    query_block: usize,
    seed: u64,
    queries_from: Option<String>,
    keys_from: Option<String>,
    values_from: Option<String>,
    kernel_clocks: u64,
    ideal_clocks: u64,
    bandwidth_bound_clocks: u64,
    bytes_read: u64,
    bytes_written: u64,
    empty_rows: Vec<usize>,
    bit_exact: bool,
    /// (row, lane) of the first output that differs.
    first_difference: Option<(usize, usize)>,
}

fn first_difference(got: &[RowOutput], want: &[RowOutput]) -> Option<(usize, usize)> {
    got.iter().zip(want).enumerate().find_map(|(r, (g, w))| {
        if g == w {
            return None;
        }
        let lane = (0..w.values.len())
            .find(|&c| g.values[c] != w.values[c])
            .unwrap_or(0);
        Some((r, lane))
    })
}

fn flat(a: ArrayView2<i8>) -> Vec<i8> {
    a.iter().copied().collect()
}

/// The KV cache and the query rows: the user's, or random ones of the workload's shape
/// (Gaussian, as the co-simulation's).
struct Operands {
    keys: Vec<i8>,
    values: Vec<i8>,
    seq_len: usize,
    queries: Vec<i8>,
    rows: usize,
    first: usize,
}

fn operands(a: &RunArgs, cfg: &AttentionConfig, causal: bool) -> Result<Operands> {
    let d = cfg.attention.head_dim;
    let random = AttentionVectors::generate(cfg, AttentionVectorKind::Gaussian, a.seed);
    let (keys, values, seq_len) = match (&a.keys, &a.values) {
        (Some(kp), Some(vp)) => {
            let takes = "the KV cache takes (seq_len, head_dim";
            let k = read_int8_rows(kp, ("keys", "key"), takes, d)?;
            let v = read_int8_rows(vp, ("values", "value"), takes, d)?;
            if k.len() != v.len() {
                bail!(
                    "{} holds {} keys but {} holds {} values",
                    kp.display(),
                    k.len() / d,
                    vp.display(),
                    v.len() / d
                );
            }
            let n = k.len() / d;
            if n > cfg.attention.max_seq_len {
                bail!(
                    "{}: {n} keys, more than attention.max_seq_len = {}",
                    kp.display(),
                    cfg.attention.max_seq_len
                );
            }
            (k, v, n)
        }
        _ => (
            flat(random.k.view()),
            flat(random.v.view()),
            cfg.workload.seq_len,
        ),
    };
    let queries = match &a.activations {
        Some(path) => read_int8_rows(
            path,
            ("queries", "row"),
            "attention takes (queries, head_dim",
            d,
        )?,
        None => {
            let n = a.tokens.unwrap_or(cfg.workload.queries);
            if n == 0 {
                bail!("--tokens must be at least 1");
            }
            let mut q = flat(random.q.view());
            // More query rows than the workload's: repeat its queries.
            q = q.iter().copied().cycle().take(n * d).collect();
            q
        }
    };
    let rows = queries.len() / d;
    if let Some(t) = a.tokens {
        if t != rows {
            bail!("--tokens {t} disagrees with the {rows} query rows given");
        }
    }
    if causal && rows > seq_len {
        bail!("{rows} causal query rows need at least {rows} keys; the cache holds {seq_len}");
    }
    Ok(Operands {
        first: seq_len.saturating_sub(rows),
        keys,
        values,
        seq_len,
        queries,
        rows,
    })
}

pub fn run(a: &RunArgs, cfg: &AttentionConfig) -> Result<()> {
    if a.weights.is_some() {
        bail!(
            "--weights is for matmul layers; {} is an attention config (use --keys/--values)",
            a.config.display()
        );
    }
    let d = cfg.attention.head_dim;
    let causal = cfg.attention.mode == AttentionMode::Prefill && cfg.attention.causal;
    let Operands {
        keys,
        values,
        seq_len,
        queries,
        rows,
        first,
    } = operands(a, cfg, causal)?;
    create_out_dir(a.out.as_deref())?;
    let design = DesignConfig::Attention(cfg.clone());
    let (memory, memory_text) = memory_model_for(&design)?;
    let opts = a.access.open_options(memory, Duration::from_secs(60));
    let t_open = Instant::now();
    let mut dev = Device::open_design(&a.uri, &design, &opts)
        .with_context(|| format!("opening board {}", a.uri))?;
    let open_time = t_open.elapsed();
    let t_fill = Instant::now();
    dev.kv_append(&keys, &values)?;
    let fill_time = t_fill.elapsed();
    let cache_bytes = dev.traffic.bytes_to_card;
    let run = dev.attention(&queries, first, causal)?;

    let schedule = schedule(first, rows, seq_len, causal, cfg.attention.tile);
    let q = Array2::from_shape_vec((rows, d), queries.clone()).expect("whole rows");
    let k = Array2::from_shape_vec((seq_len, d), keys.clone()).expect("whole keys");
    let v = Array2::from_shape_vec((seq_len, d), values.clone()).expect("whole values");
    let want = streamed_attention(cfg, &schedule, q.view(), k.view(), v.view());
    let diff = first_difference(&run.rows, &want);
    let ideal: u64 = schedule
        .iter()
        .map(|r| cfg.ideal_row_cycles(r.kv_len).ceil() as u64)
        .sum();
    let bound = bandwidth_bound(
        cfg.top.bus_bytes() as f64,
        (a.uri == "sim:").then_some(memory.bytes_per_clock),
        run.bytes_read,
        run.bytes_written,
    );
    let block = cfg.attention.query_block;
    print_board(&dev);
    println!(
        "attention  {rows} {} row(s) at positions {first}.. against {seq_len} keys, head dim {d}, \
         blocks of {block} row(s), seed {}",
        if causal { "causal" } else { "non-causal" },
        a.seed
    );
    println!(
        "kernel     {} clocks ({:.0} per row)",
        run.cycles,
        run.cycles as f64 / rows as f64
    );
    println!(
        "bounds     engine ideal {ideal} clocks (every MAC busy; utilisation {:.3}), bandwidth bound \
         {bound} clocks ({} B read for {} keys streamed, {} B written)",
        ideal as f64 / run.cycles as f64,
        run.bytes_read,
        streamed_keys(&schedule, block),
        run.bytes_written
    );
    if a.uri == "sim:" {
        println!("memory     {memory_text}");
    }
    print_wall_and_bytes(
        open_time,
        &Resident {
            action: "fill KV cache",
            what: "KV cache",
            time: fill_time,
            bytes: cache_bytes,
        },
        "queries",
        run.wall,
        &run.traffic,
    );
    if let Some(dir) = &a.out {
        let outputs = |rows: &[RowOutput]| -> Vec<i8> {
            rows.iter().flat_map(|r| r.values.iter().copied()).collect()
        };
        write_i8(dir, "queries.npy", &[rows, d], &queries)?;
        write_i8(dir, "keys.npy", &[seq_len, d], &keys)?;
        write_i8(dir, "values.npy", &[seq_len, d], &values)?;
        write_i8(dir, "results.npy", &[rows, d], &outputs(&run.rows))?;
        write_i8(dir, "golden.npy", &[rows, d], &outputs(&want))?;
        let record = AttentionRecord {
            format: "tern-run-attention/1",
            config: a.config.display().to_string(),
            board_uri: &a.uri,
            board: &dev.info().description,
            design_id: format!("{:08x}", dev.info().design_id),
            head_dim: d,
            seq_len,
            queries: rows,
            first_position: first,
            causal,
            query_block: block,
            seed: a.seed,
            queries_from: a.activations.as_ref().map(|p| p.display().to_string()),
            keys_from: a.keys.as_ref().map(|p| p.display().to_string()),
            values_from: a.values.as_ref().map(|p| p.display().to_string()),
            kernel_clocks: run.cycles,
            ideal_clocks: ideal,
            bandwidth_bound_clocks: bound,
            bytes_read: run.bytes_read,
            bytes_written: run.bytes_written,
            empty_rows: (0..rows).filter(|&r| run.rows[r].empty).collect(),
            bit_exact: diff.is_none(),
            first_difference: diff,
        };
        write_record(dir, &record)?;
        println!(
            "files      queries.npy, keys.npy, values.npy, results.npy, golden.npy, run.json in {}",
            dir.display()
        );
    }
    match diff {
        None => {
            println!(
                "check      bit-exact: all {rows} rows ({} outputs) match the golden model",
                rows * d
            );
            Ok(())
        }
        Some((r, c)) => {
            let mut msg = format!(
                "MISMATCH at row {r} (position {}), lane {c}: board {} golden {} (empty {} / {}; seed {}, config {})",
                schedule[r].position,
                run.rows[r].values[c],
                want[r].values[c],
                run.rows[r].empty,
                want[r].empty,
                a.seed,
                a.config.display()
            );
            if a.uri == "sim:" {
                let vcd = std::env::temp_dir().join(format!("tern-run-{}.vcd", std::process::id()));
                let board = SimBoard::for_design(
                    &design,
                    &ModelCache::default(),
                    Some(&vcd),
                    Some(memory),
                )?;
                let mut again = Device::attach_design(Box::new(board), &design, &opts)?;
                again.kv_append(&keys, &values)?;
                let _ = again.attention(&queries, first, causal);
                drop(again); // closes the waveform
                msg.push_str(&format!("; waveform of the rerun: {}", vcd.display()));
            }
            bail!(msg)
        }
    }
}
