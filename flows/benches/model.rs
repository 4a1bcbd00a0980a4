//! A whole BitNet model on the simulated KV260: prefill of a prompt and greedy decode
//! steps through `tern generate`'s board fabric (the TLMM top holding every weight tile,
//! the attention top every KV cache, both on the KV260's DDR model), each step's logits
//! checked bit for bit against the golden fabric. Prints the measured kernel clocks per
//! step and the tokens/s and time to first token they give.
//!
//! `cargo bench -p tern-flows --bench model -- [--model bitnet-0.73b] [--layers N]
//!  [--prompts 64,128] [--decode 3] [--accelerator F] [--matmul F --attention F]
//!  [--attention-engines N]` (the accelerator description defaults to
//! docs/model/kv260/accelerator.toml; --matmul, --attention and --attention-engines
//! override its parts; output committed in `docs/bench/model_*.txt`; `--quick`: 2 layers,
//! prompt 8). Beside the measured clocks it prints what the performance model
//! (`tern_dse::performance`, as `tern project --accelerator` prints it) expects.
//!
//! What is measured is the two tops' kernel clocks (CYCLES), run one after the other
//! as the host calls them. What is not: the host's share on the board's CPU. The
//! projection adds (1) the LM head, the one large host operation (vocab × hidden bf16
//! weights read from the same DDR per token), at what the DDR sustains, a lower bound
//! on its time; (2) the host's cost of starting each kernel call, assumed
//! `CALL_OVERHEAD_US` (a polled AXI4-Lite start: ~10 register accesses of ~100 ns); not
//! a measured figure. Norms, RoPE and quantisation are O(hidden) per token and left out.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use tern_dse::performance::lm_head_s;
use tern_dse::workload::ModelWorkload;
use tern_flows::generate::{BoardFabric, TilePlan};
use tern_flows::memory::memory_model_for;
use tern_flows::project::project_accelerator;
use tern_hdl::config::accelerator::Accelerator;
use tern_hdl::{AttentionConfig, Config, DesignConfig};
use tern_host::{Device, OpenOptions};
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{greedy, AttentionScales, GoldenFabric, IntegerModel};

/// Assumed host time per kernel call (µs): program the pointers, start, poll for done.
const CALL_OVERHEAD_US: f64 = 1.0;

struct Args {
    model: String,
    layers: Option<usize>,
    prompts: Vec<usize>,
    decode: usize,
    accelerator: String,
    matmul: Option<String>,
    attention: Option<String>,
    attention_engines: Option<usize>,
}

fn parse() -> Args {
    let mut a = Args {
        model: "bitnet-0.73b".into(),
        layers: None,
        prompts: vec![64, 128],
        decode: 3,
        accelerator: "docs/model/kv260/accelerator.toml".into(),
        matmul: None,
        attention: None,
        attention_engines: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = value(),
            "--layers" => a.layers = Some(value().parse().expect("--layers N")),
            "--prompts" => {
                a.prompts = value()
                    .split(',')
                    .map(|p| p.parse().expect("--prompts 64,128"))
                    .collect()
            }
            "--decode" => a.decode = value().parse().expect("--decode N"),
            "--accelerator" => a.accelerator = value(),
            "--matmul" => a.matmul = Some(value()),
            "--attention" => a.attention = Some(value()),
            "--attention-engines" => {
                a.attention_engines = Some(value().parse().expect("--attention-engines N"))
            }
            "--quick" => {
                a.layers = Some(2);
                a.prompts = vec![8];
                a.decode = 2;
            }
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn repo(path: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(path)
}

/// The accelerator description with the parts given on the command line instead.
fn accelerator(a: &Args) -> Accelerator {
    let mut acc = Accelerator::from_path(&repo(&a.accelerator)).unwrap();
    if let Some(m) = &a.matmul {
        acc.matmul = Config::from_path(&repo(m)).unwrap();
        acc.matmul_path = m.into();
    }
    if let Some(t) = &a.attention {
        acc.attention = AttentionConfig::from_path(&repo(t)).unwrap();
        acc.attention_path = t.into();
    }
    if let Some(n) = a.attention_engines {
        acc.attention_engines = n;
    }
    acc
}

fn main() {
    let a = parse();
    let mut model = ModelConfig::resolve(&a.model).unwrap();
    let all_layers = model.layers;
    if let Some(n) = a.layers {
        model.layers = n.min(all_layers);
    }
    let acc = accelerator(&a);
    let (matmul, attention) = (acc.matmul.clone(), acc.attention.clone());
    let t0 = Instant::now();
    let ck = Checkpoint::random(&model, 1);
    eprintln!("random checkpoint: {:.1} s", t0.elapsed().as_secs_f64());
    let opts = |d: &DesignConfig| OpenOptions {
        memory: Some(memory_model_for(d).unwrap().0),
        run_timeout: std::time::Duration::from_secs(3600),
        ..OpenOptions::default()
    };
    let open = |d: DesignConfig| Device::open_design("sim:", &d, &opts(&d)).unwrap();
    let t0 = Instant::now();
    let bar = ProgressBar::new(0);
    let mut board = BoardFabric::load(
        &ck,
        &matmul,
        open(DesignConfig::Matmul(matmul.clone())),
        (0..acc.attention_engines)
            .map(|_| open(DesignConfig::Attention(attention.clone())))
            .collect(),
        &bar,
    )
    .unwrap();
    bar.finish_and_clear();
    let plan = TilePlan::new(&model, &matmul);
    let board_info = tern_boards::Board::resolve(&acc.board).unwrap();
    // The simulated board's DDR model runs at the board's clock.
    let mhz = board_info.clock.default_mhz;
    // The host's LM head reads at what the DDR sustains (its peak less refresh).
    let ddr = board_info.memory.sustained_gbyte_per_s();
    let peak = board_info.memory.gbyte_per_s;
    eprintln!(
        "boards built and loaded: {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    println!(
        "# {} on the simulated {} ({} of {} layers simulated; random ternary weights, seed 1)",
        model.name, board_info.name, model.layers, all_layers
    );
    println!(
        "# accelerator {} ({}); matmul top {} ({} w/clk, token block {}, {}-bit bus), tiles of {}x{}, {} per layer, padding x{:.3}",
        acc.name,
        a.accelerator,
        acc.matmul_path.display(),
        matmul.engine.weights_per_clock(),
        matmul.geometry.token_block,
        matmul.top.bus_bits,
        plan.tile_m,
        plan.tile_k,
        plan.per_layer,
        plan.padding_factor(&model)
    );
    println!(
        "# attention top {} x{} side by side ({} MACs, tile {}, query block {}, {}-bit bus); DDR model {peak} GB/s peak ({ddr:.2} sustained) at {mhz} MHz",
        acc.attention_path.display(),
        acc.attention_engines,
        attention.attention.macs,
        attention.attention.tile,
        attention.attention.query_block,
        attention.top.bus_bits
    );
    println!(
        "| prompt | step | tokens fed | matmul clocks | matmul calls | weight+act bytes read | attention clocks | attention calls | clocks | ms at {mhz} MHz | bit-exact | sim wall s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let scales = AttentionScales::of(&attention);
    let mut summary = vec![];
    for &p in &a.prompts {
        board.reset().unwrap();
        let mut on_board = IntegerModel::new(&ck, scales);
        let mut golden = IntegerModel::new(&ck, scales);
        let mut golden_fabric = GoldenFabric::new(&ck, &attention);
        let mut feed: Vec<usize> = (0..p).map(|i| (i * 7919 + 13) % model.vocab).collect();
        let mut prefill = 0u64;
        let mut decode = vec![];
        // Kernel calls of the prompt and of one decode step.
        let mut calls = (0u64, 0u64);
        for step in 0..=a.decode {
            let before = board.tally.clone();
            let t = Instant::now();
            let logits = on_board.forward(&mut board, &feed).unwrap();
            let wall = t.elapsed().as_secs_f64();
            let want = golden.forward(&mut golden_fabric, &feed).unwrap();
            let exact = logits.len() == want.len()
                && logits
                    .iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
            let s = board.tally.since(&before);
            let clocks = s.matmul_clocks + s.attention_clocks;
            println!(
                "| {p} | {} | {} | {} | {} | {} | {} | {} | {clocks} | {:.3} | {} | {wall:.1} |",
                if step == 0 {
                    "prefill".into()
                } else {
                    format!("decode {step}")
                },
                feed.len(),
                s.matmul_clocks,
                s.matmul_calls,
                s.matmul_bytes_read,
                s.attention_clocks,
                s.attention_calls,
                clocks as f64 / (mhz * 1e3),
                if exact { "yes" } else { "NO" },
            );
            assert!(
                exact,
                "prompt {p}, step {step}: logits not bit-exact (seed 1)"
            );
            let n = s.matmul_calls + s.attention_calls;
            if step == 0 {
                prefill = clocks;
                calls.0 = n;
            } else {
                decode.push(clocks);
                calls.1 = n;
            }
            feed = vec![greedy(&logits)];
        }
        summary.push((p, prefill, decode, calls));
    }

    // Whole-model projection: layers are identical, so the clocks scale with the layer
    // count; the LM head's DDR time is added per token.
    let scale = all_layers as f64 / model.layers as f64;
    let head_bytes = (model.vocab * model.hidden * 2) as f64;
    let head_ms = lm_head_s(model.vocab, model.hidden, ddr) * 1e3;
    println!();
    println!(
        "## Projection to all {all_layers} layers (measured clocks x {scale:.2}); LM head on the host: {:.1} MB of bf16 per token at {ddr:.2} GB/s (sustained) = {head_ms:.2} ms (lower bound)",
        head_bytes / 1e6
    );
    println!(
        "Host per token (not measured): LM head {head_ms:.2} ms (DDR-bound lower bound) + {CALL_OVERHEAD_US} µs per kernel call (assumed)."
    );
    println!(
        "| prompt | TTFT kernel ms | TTFT with host ms | decode clocks/token (mean of {}) | kernel calls/token | decode kernel tokens/s | decode tokens/s with host | same at 250 MHz |",
        a.decode
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut measured = vec![];
    for (p, prefill, decode, calls) in summary {
        let ttft = prefill as f64 * scale / (mhz * 1e3);
        let per_token = decode.iter().sum::<u64>() as f64 / decode.len().max(1) as f64 * scale;
        let (prefill_calls, token_calls) = (calls.0 as f64 * scale, calls.1 as f64 * scale);
        let host_ms = head_ms + token_calls * CALL_OVERHEAD_US / 1e3;
        let kernel_ms = per_token / (mhz * 1e3);
        let at250 = per_token / 250e3;
        println!(
            "| {p} | {ttft:.1} | {:.1} | {per_token:.0} | {token_calls:.0} | {:.1} | {:.1} | {:.1} |",
            ttft + head_ms + prefill_calls * CALL_OVERHEAD_US / 1e3,
            1e3 / kernel_ms,
            1e3 / (kernel_ms + host_ms),
            1e3 / (at250 + host_ms),
        );
        measured.push((p, ttft, 1e3 / kernel_ms));
    }

    // The performance model on the whole model (every layer), as `tern project
    // --accelerator` computes it.
    let mut whole = ModelConfig::resolve(&a.model).unwrap();
    whole.layers = all_layers;
    let workload = ModelWorkload::from_model(&whole);
    let prompts: Vec<usize> = measured.iter().map(|m| m.0).collect();
    let projected = project_accelerator(&acc, &workload, &board_info, mhz, &prompts).unwrap();
    println!();
    println!("## The performance model (`tern project --accelerator`; attention at its upper bound) against the measured kernels");
    println!("| prompt | TTFT model ms | TTFT measured ms | ratio | decode model tokens/s | decode measured tokens/s | ratio |");
    println!("|---|---|---|---|---|---|---|");
    let token = &projected.accelerator.as_ref().unwrap().prompts;
    for ((p, ttft, rate), x) in measured.iter().zip(token) {
        println!(
            "| {p} | {:.1} | {ttft:.1} | {:.3} | {:.1} | {rate:.1} | {:.3} |",
            x.token.ttft_s * 1e3,
            x.token.ttft_s * 1e3 / ttft,
            x.token.decode_tokens_per_s,
            x.token.decode_tokens_per_s / rate,
        );
    }
}
