//! A whole model on the one top (docs/accelerator.md): `tern generate --one-top`. The
//! checkpoint's program is written into the simulated board's memory once; every pass —
//! the prompt, then one decoded token after another — is one start of the accelerator
//! through its AXI4-Lite registers (a decoded token one write to `STEP`), ended by its
//! interrupt, under Verilator on the board's DDR model. Each pass is checked against the
//! golden sequencer running the same program over its own copy of the memory: the next
//! token and every score of the LM head (and, for memories up to 64 MiB, every byte).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::program::{Banks, ProgramImage};
use tern_hdl::accelerator::AcceleratorShape;
use tern_hdl::config::accelerator::Accelerator;
use tern_hdl::units::{
    AttentionUnitShape, LmHeadUnitShape, MatmulUnitShape, VectorUnitShape, WeightWindow, WindowRam,
};
use tern_hdl::AttentionConfig;
use tern_host::one_top::{OneTop, ShellBoard};
use tern_host::Transport;
use tern_model::checkpoint::Checkpoint;
use tern_model::text::TextCodec;
use tern_model::ModelConfig;
use tern_sim::cosim::units::DdrCounts;
use tern_sim::golden::bitnet::{AttentionScales, GoldenFabric, CALIBRATION_HEADROOM};
use tern_sim::golden::fixed_point::RESIDUAL_FRAC;
use tern_sim::golden::sequencer::run_pass;
use tern_sim::verilator::{default_cache_root, ModelCache};

/// Memories up to this size are compared byte for byte after every pass.
const WHOLE_MEMORY_CHECK: usize = 64 << 20;

/// The one top for `model` on the accelerator description `acc`: its board's 128-bit
/// memory ports (as many of them as the LM-head unit takes for the model's rows: at most
/// the board's, a power of two), its matmul and attention engines, the vector unit at
/// `lanes`, the sequencer for `design` on `memory_bytes` with room for `max_ids` ids.
pub fn one_top_shape(
    model: &ModelConfig,
    acc: &Accelerator,
    lanes: usize,
    design: u32,
    memory_bytes: u64,
    max_ids: u32,
) -> Result<AcceleratorShape> {
    let board = tern_boards::Board::resolve(&acc.board)
        .with_context(|| format!("{}: `board`", acc.origin.display()))?;
    let board_ports = board.memory.ports.iter().filter(|p| p.bits == 128).count();
    if let Some(p) = acc.ports.filter(|&p| p > board_ports) {
        bail!(
            "{}: `ports` = {p}, but {} has {board_ports} 128-bit memory ports",
            acc.origin.display(),
            board.name
        );
    }
    let board_ports = acc.ports.unwrap_or(board_ports);
    if board_ports == 0 {
        bail!(
            "{}: the one top takes the board's 128-bit memory ports, and {} lists none ([[memory.ports]] in its board file)",
            acc.origin.display(),
            board.name
        );
    }
    if model.head_dim != acc.attention.attention.head_dim {
        bail!(
            "{}: heads of {}, the attention engine of {} takes heads of {}",
            model.name,
            model.head_dim,
            acc.attention_path.display(),
            acc.attention.attention.head_dim
        );
    }
    let mut refusals = Vec::new();
    let ports = [4usize, 2, 1]
        .into_iter()
        .filter(|&p| p <= board_ports)
        .find(|&p| {
            let unit = LmHeadUnitShape {
                ports: p,
                max_width: model.hidden,
                format: acc.head_format,
            };
            unit.check().map_err(|e| refusals.push(e)).is_ok()
        })
        .ok_or_else(|| {
            anyhow!(
                "{}: no LM-head unit takes rows of {} on the board's ports ({}: {})",
                model.name,
                model.hidden,
                acc.origin.display(),
                refusals.join("; ")
            )
        })?;
    Ok(AcceleratorShape {
        sequencer: crate::program::sequencer_shape(model, design, memory_bytes, max_ids),
        matmul: MatmulUnitShape {
            ports,
            engine: acc.matmul.clone(),
            // By default 4,096 engine beats: 1.25 MiB with the KV260's engine (320-byte
            // beats), 36 UltraRAMs, which nothing else in the top uses.
            window: Some(WeightWindow {
                beats: acc.window_beats,
                address_bits: tern_hdl::interconnect::memory_address_bits(memory_bytes),
                ram: acc.window_ram.unwrap_or(if board.resources.urams > 0 {
                    WindowRam::Ultra
                } else {
                    WindowRam::Block
                }),
            }),
        },
        lm_head: LmHeadUnitShape {
            ports,
            max_width: model.hidden,
            format: acc.head_format,
        },
        vector: VectorUnitShape {
            lanes,
            max_n: model.ffn.max(model.hidden),
            max_head_dim: model.head_dim,
            // Its second reader on a port of its own where the board has one.
            ports: ports.min(2),
        },
        attention: AttentionUnitShape {
            engine: acc.attention.clone(),
            heads: model.heads,
            kv_heads: model.kv_heads,
            // A 32-MAC engine takes two memory beats a clock: its KV caches on two ports.
            ports: if acc.attention.attention.macs == 32 && ports >= 2 {
                2
            } else {
                1
            },
        },
    })
}

/// The one top of [`one_top_shape`] carrying its own design id
/// (`tern_hdl::accelerator::design_id`, a hash of its Verilog): what `tern generate
/// --one-top` and `tern serve --one-top` build, so that both agree on it.
pub fn one_top(
    model: &ModelConfig,
    acc: &Accelerator,
    lanes: usize,
    memory_bytes: u64,
    max_ids: u32,
) -> Result<AcceleratorShape> {
    let mut shape = one_top_shape(model, acc, lanes, 0, memory_bytes, max_ids)?;
    shape.sequencer.design = tern_hdl::accelerator::design_id(&shape)?;
    Ok(shape)
}

/// The program of `ck` for the one top `draft` of `acc` (its design id, its matmul
/// unit's tile layout, the description's head format), the attention engine `attention`'s
/// units in every layer, scratch for `max_ids` ids a pass on the banks of the
/// description's board.
pub fn program(
    ck: &Checkpoint,
    attention: &AttentionConfig,
    units: &[AttentionScales],
    acc: &Accelerator,
    draft: &AcceleratorShape,
    max_ids: u32,
) -> Result<ProgramImage> {
    crate::program::build(
        ck,
        attention,
        units,
        RESIDUAL_FRAC,
        max_ids as usize,
        draft.sequencer.design,
        acc.head_format,
        Some(&draft.matmul),
        Banks::of(
            &tern_boards::Board::resolve(&acc.board)
                .with_context(|| format!("{}: `board`", acc.origin.display()))?,
        ),
    )
}

/// What `tern generate --one-top` takes.
pub struct OneTopArgs {
    /// The weights, the prompt and how many tokens.
    pub inputs: crate::weights::RunInputs,
    pub accelerator: PathBuf,
    pub lanes: usize,
    pub calibrate: bool,
    pub out: Option<PathBuf>,
    pub verbose: bool,
    /// The board: `sim:` (the one top built in-process), `tern serve --one-top` at
    /// `unix:PATH` / `tcp:HOST:PORT`, a card, or the Kria board this runs on (`kria:`).
    pub device: String,
    /// How the board is reached (timeouts, `tern serve`'s token).
    pub open: tern_host::OpenOptions,
    /// The one top's room for ids a pass (part of its design: a served top must have
    /// been built with the same).
    pub max_ids: u32,
    /// Bound on one pass's wall time.
    pub pass_timeout: std::time::Duration,
}

/// One pass on the one top.
#[derive(Debug, Clone, Serialize)]
pub struct OneTopStep {
    pub fed: usize,
    pub position: usize,
    pub token: usize,
    /// The accelerator's own counters (clocks of the pass and of each unit while it ran).
    pub clocks: u64,
    pub matmul_clocks: u64,
    pub attention_clocks: u64,
    pub vector_clocks: u64,
    pub lm_head_clocks: u64,
    /// The pass's clocks outside the units: the sequencer fetching and dispatching.
    pub sequencer_clocks: u64,
    pub kernel_starts: u32,
    /// AXI4-Lite accesses of the pass, as the simulated host made them.
    pub register_accesses: u32,
    /// The DRAM's bytes in the pass, where the board counts them (the simulated one
    /// in-process; none through `tern serve` or a card).
    pub ddr_bytes_read: Option<u64>,
    pub ddr_bytes_written: Option<u64>,
    /// The LM head's largest scores (id, score), largest first.
    pub top_scores: Vec<(usize, i64)>,
    /// Next token and every score equal the golden sequencer's (and the whole memory,
    /// when `memory_checked`).
    pub bit_exact: bool,
    pub memory_checked: bool,
    /// Wall time of the simulation of this pass on this machine.
    pub simulation_s: f64,
}

/// Everything `tern generate --one-top` measured (`--out DIR/generate.json`,
/// docs/files.md).
#[derive(Debug, Clone, Serialize)]
pub struct OneTopReport {
    pub format: &'static str,
    pub model: ModelConfig,
    /// The checkpoint's weights file's SHA-256; null for random weights.
    pub checkpoint_sha256: Option<String>,
    pub accelerator: String,
    pub board: String,
    pub clock_mhz: f64,
    pub ports: usize,
    pub seed: u64,
    pub prompt: Vec<usize>,
    /// The prompt's and the generated ids' text, when the model has a tokenizer.
    pub prompt_text: Option<String>,
    pub generated_text: Option<String>,
    pub generated: Vec<usize>,
    pub steps: Vec<OneTopStep>,
    pub time_to_first_token_s: f64,
    /// Over the decoded tokens (none: 0).
    pub decode_tokens_per_s: f64,
    pub bit_exact: bool,
    /// Whether the attention's units were calibrated on the prompt.
    pub calibrated: bool,
    /// Per layer, the attention's int8 units `[q, k, v, out]` the program carries.
    pub attention_units: Vec<[f64; 4]>,
}

/// Run a model on the one top; prints a line per pass unless quiet.
pub fn generate_one_top(a: &OneTopArgs) -> Result<OneTopReport> {
    // On stderr when the text streams on stdout.
    let live_text = a.inputs.prompt.is_text();
    macro_rules! say {
        ($($t:tt)*) => {
            if a.verbose && live_text {
                eprintln!($($t)*)
            } else if a.verbose {
                println!($($t)*)
            }
        };
    }
    let acc = Accelerator::from_path(&a.accelerator)?;
    let crate::weights::Generation {
        weights,
        prompt,
        codec,
    } = a.inputs.generation()?;
    let ck = weights.checkpoint;
    let model = ck.config.clone();
    crate::generate::check_fit(&model, &acc.attention, prompt.len(), a.inputs.tokens)?;
    // The attention's units are run-time data of the program, one record per layer: the
    // Verilog is the same whatever they are.
    let units = if a.calibrate {
        let units = AttentionScales::calibrate(&ck, &prompt);
        say!(
            "calibrated the attention's int8 units of {} layers on the prompt (float reference, headroom {CALIBRATION_HEADROOM}); layer 0: q {:.6}, k {:.6}, v {:.6}, out {:.6}",
            units.len(),
            units[0].q,
            units[0].k,
            units[0].v,
            units[0].out
        );
        units
    } else {
        vec![AttentionScales::of(&acc.attention); model.layers]
    };
    let attention = &acc.attention;
    crate::files::create_out_dir(a.out.as_deref())?;
    let board = tern_boards::Board::resolve(&acc.board)?;
    let mhz = acc.clock_mhz.unwrap_or(board.clock.default_mhz);
    if prompt.len() > a.max_ids as usize {
        bail!(
            "--prompt: {} ids, the one top takes at most --max-ids {} a pass",
            prompt.len(),
            a.max_ids
        );
    }
    // The design id (a hash of the top's Verilog) does not depend on the memory: the
    // program is built for it and the shape's matmul unit, then the memory is sized.
    let draft = one_top(&model, &acc, a.lanes, 1 << 32, a.max_ids)?;
    let design = draft.sequencer.design;
    let image = program(&ck, attention, &units, &acc, &draft, a.max_ids)?;
    let bytes = (image.memory.len() as u64).next_multiple_of(1 << 20);
    let shape = one_top_shape(&model, &acc, a.lanes, design, bytes, a.max_ids)?;
    say!(
        "model      {} ({} layers, hidden {}, {}/{} heads of {}, FFN {}, vocab {}), {}",
        model.name,
        model.layers,
        model.hidden,
        model.heads,
        model.kv_heads,
        model.head_dim,
        model.ffn,
        model.vocab,
        weights.origin
    );
    say!(
        "one top    {} on {} at {mhz} MHz: {} memory ports, the matmul engine of {}, the attention engine of {}, the vector unit at {} lanes, the LM head {:?}, design {design:08x}; program {} MiB",
        acc.name,
        board.name,
        shape.ports(),
        acc.matmul_path.display(),
        acc.attention_path.display(),
        a.lanes,
        acc.head_format,
        bytes >> 20
    );
    let run = Run {
        a,
        model: &model,
        attention,
        image: &image,
        mhz,
        design,
        prompt: &prompt,
        codec: codec.as_ref(),
        live_text: live_text && a.verbose,
    };
    let (steps, generated, generated_text) = if a.device == "sim:" {
        let spinner = ProgressBar::new_spinner();
        spinner.set_message("building the one top's Verilator model (cached after the first time)");
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        let (memory, _) = crate::memory::ported_memory_at(&board, mhz, bytes)?;
        let description = format!(
            "sim: the one top {} on the simulated {}",
            acc.name, board.name
        );
        let shell = ShellBoard::new(
            &shape,
            &memory,
            &ModelCache::new(default_cache_root()),
            None,
            description,
        )?;
        spinner.finish_and_clear();
        run.steps(shell, &ck, |b| Some(b.ddr()))?
    } else {
        let t = tern_host::device::connect(&a.device, &a.open)
            .with_context(|| format!("--board-uri {}", a.device))?;
        run.steps(t, &ck, |_| None)?
    };
    let ttft = steps[0].clocks as f64 / (mhz * 1e6);
    let decode: Vec<u64> = steps.iter().skip(1).map(|s| s.clocks).collect();
    let decode_tokens_per_s = if decode.is_empty() {
        0.0
    } else {
        mhz * 1e6 * decode.len() as f64 / decode.iter().sum::<u64>() as f64
    };
    let report = OneTopReport {
        format: "tern-generate-one-top",
        model,
        checkpoint_sha256: weights.file.map(|f| f.sha256),
        accelerator: a.accelerator.display().to_string(),
        board: board.name.clone(),
        clock_mhz: mhz,
        ports: shape.ports(),
        seed: a.inputs.seed,
        prompt_text: crate::text::prompt_text(&a.inputs.prompt, codec.as_ref(), &prompt)?,
        generated_text,
        prompt: prompt.clone(),
        generated,
        steps,
        time_to_first_token_s: ttft,
        decode_tokens_per_s,
        bit_exact: true,
        calibrated: a.calibrate,
        attention_units: units.iter().map(|u| [u.q, u.k, u.v, u.out]).collect(),
    };
    say!(
        "generated  {:?}: every pass bit-exact against the golden sequencer; time to first token {:.3} ms, decode {:.1} tokens/s at {mhz} MHz (the accelerator's clocks, one start a pass)",
        report.generated,
        ttft * 1e3,
        decode_tokens_per_s
    );
    if let (Some(t), false) = (&report.generated_text, live_text) {
        say!("text       {t:?}");
    }
    if let Some(dir) = &a.out {
        let path = write_report(dir, &report)?;
        say!("wrote      {}", path.display());
    }
    Ok(report)
}

/// What the passes of `tern generate --one-top` share, whatever the board.
struct Run<'a> {
    a: &'a OneTopArgs,
    model: &'a ModelConfig,
    attention: &'a AttentionConfig,
    image: &'a ProgramImage,
    mhz: f64,
    design: u32,
    prompt: &'a [usize],
    /// The tokenizer (text out), and whether the text streams on stdout.
    codec: Option<&'a TextCodec>,
    live_text: bool,
}

impl Run<'_> {
    /// Load the program into the board behind `transport` through the one top's driver,
    /// then run the prompt and one decoded token after another, each checked against
    /// the golden sequencer over its own copy of the memory. `ddr` tells the board's DRAM
    /// counters where the board has them (the simulated one in-process).
    fn steps<T: Transport>(
        &self,
        transport: T,
        ck: &Checkpoint,
        ddr: impl Fn(&mut T) -> Option<DdrCounts>,
    ) -> Result<(Vec<OneTopStep>, Vec<usize>, Option<String>)> {
        let (a, model, image) = (self.a, self.model, self.image);
        let mut top = OneTop::open(transport, Some(self.design))
            .with_context(|| format!("the board at {}", a.device))?;
        let card = top.info().card_bytes;
        if card < image.memory.len() as u64 {
            bail!(
                "the board at {} has {card} bytes of memory; the program needs {}",
                a.device,
                image.memory.len()
            );
        }
        top.write_memory(0, &image.memory)
            .context("writing the program into the board's memory")?;
        let mut golden = image.memory.clone();
        let mut fabric = GoldenFabric::new(ck, self.attention);
        let out_at = image.header.output_at as usize;
        let out_len = 16 + 8 * model.vocab;
        let bar = ProgressBar::new(a.inputs.tokens as u64).with_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} tokens {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix("generate");
        let (mut steps, mut generated) = (vec![], vec![]);
        let mut feed = self.prompt.to_vec();
        let mut text = match self.codec {
            Some(c) => Some(crate::text::TextOut::new(c, self.prompt, self.live_text)?),
            None => None,
        };
        let mut position = 0usize;
        for step in 0..a.inputs.tokens {
            let want = run_pass(
                model,
                self.attention,
                &mut golden,
                0,
                self.design,
                position,
                &feed,
                &mut fabric,
            )
            .map_err(|e| anyhow!("step {step}: the golden sequencer: {e}"))?;
            let ids: Vec<u32> = feed.iter().map(|&i| i as u32).collect();
            let before = ddr(top.transport_mut());
            let t0 = Instant::now();
            let o = top
                .pass(0, position as u32, &ids, a.pass_timeout)
                .with_context(|| format!("step {step} (position {position})"))?;
            let simulation_s = t0.elapsed().as_secs_f64();
            let after = ddr(top.transport_mut());
            if o.error_code != 0 {
                bail!(
                    "step {step}: the one top stopped with code {} at command {}",
                    o.error_code,
                    o.error_command
                );
            }
            let memory_checked = golden.len() <= WHOLE_MEMORY_CHECK;
            let (got_out, got_all) = if memory_checked {
                let all = top.read_memory(0, golden.len())?;
                (all[out_at..out_at + out_len].to_vec(), Some(all))
            } else {
                (top.read_memory(out_at as u64, out_len)?, None)
            };
            let bit_exact = o.next_token as usize == want.next
                && got_out == golden[out_at..out_at + out_len]
                && got_all.is_none_or(|m| m == golden);
            let scores = want.scores.clone().unwrap_or_default();
            let mut top_scores: Vec<(usize, i64)> = scores.iter().copied().enumerate().collect();
            top_scores.sort_by_key(|&(i, s)| (std::cmp::Reverse(s), i));
            top_scores.truncate(8);
            let units = o.matmul_clocks + o.attention_clocks + o.vector_clocks + o.lm_head_clocks;
            let moved = before.zip(after).map(|(b, a)| {
                (
                    a.bytes_read - b.bytes_read,
                    a.bytes_written - b.bytes_written,
                )
            });
            let s = OneTopStep {
                fed: feed.len(),
                position,
                token: o.next_token as usize,
                clocks: o.clocks,
                matmul_clocks: o.matmul_clocks,
                attention_clocks: o.attention_clocks,
                vector_clocks: o.vector_clocks,
                lm_head_clocks: o.lm_head_clocks,
                sequencer_clocks: o.clocks.saturating_sub(units),
                kernel_starts: o.kernel_starts,
                register_accesses: o.register_accesses,
                ddr_bytes_read: moved.map(|m| m.0),
                ddr_bytes_written: moved.map(|m| m.1),
                top_scores,
                bit_exact,
                memory_checked,
                simulation_s,
            };
            bar.suspend(|| {
                if a.verbose {
                    let line = format!(
                        "step {step:>3}  fed {:>3} at {:>4}  -> {:>6}  {} clocks = {:.3} ms (matmul {}, attention {}, vector {}, LM head {}, sequencer {}), {} start, {} register accesses  {}",
                        s.fed,
                        s.position,
                        s.token,
                        s.clocks,
                        s.clocks as f64 / self.mhz / 1e3,
                        s.matmul_clocks,
                        s.attention_clocks,
                        s.vector_clocks,
                        s.lm_head_clocks,
                        s.sequencer_clocks,
                        s.kernel_starts,
                        s.register_accesses,
                        if bit_exact { "bit-exact" } else { "MISMATCH" }
                    );
                    if self.live_text {
                        eprintln!("{line}")
                    } else {
                        println!("{line}")
                    }
                }
            });
            bar.inc(1);
            if !bit_exact {
                bar.abandon();
                bail!(
                    "step {step} (position {position}): the one top's next token {} or scores differ from the golden sequencer's (next {}); seed {}",
                    o.next_token,
                    want.next,
                    a.inputs.seed
                );
            }
            position += feed.len();
            generated.push(s.token);
            if let Some(t) = &mut text {
                bar.suspend(|| t.push(s.token))?;
            }
            feed = vec![s.token];
            steps.push(s);
        }
        bar.finish_and_clear();
        let text = text.map(|t| t.finish()).transpose()?;
        Ok((steps, generated, text))
    }
}

fn write_report(dir: &Path, report: &OneTopReport) -> Result<PathBuf> {
    let path = dir.join("generate.json");
    let text = serde_json::to_string_pretty(report).expect("the report serialises");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
