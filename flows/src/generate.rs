//! `tern generate`: a whole BitNet model on the accelerator. Prefill of a prompt, then
//! greedy decoding, with the host doing its share of the integer contract
//! (`tern_sim::golden::bitnet::IntegerModel`) and the boards doing every ternary matmul
//! (a TLMM top) and the attention (an attention top). Every step's logits are compared
//! bit for bit with the same contract over the software golden fabric.
//!
//! The matmul top has a fixed tile shape (its config's `workload.m × workload.k`): every
//! BitLinear is cut into tiles of that shape, zero-padded at the edges, each tile's
//! packed weights resident in its own slot of the board's memory; the partial sums of a
//! row's K tiles are added on the host (int64). Each (layer, KV head) has its own KV
//! cache slot on the attention board.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use tern_hdl::streams::attention::RowOutput;
use tern_hdl::{AttentionConfig, Config, DesignConfig};
use tern_host::{Device, HostError};
use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;
use tern_sim::golden::bitnet::{
    greedy, AttentionScales, Fabric, FloatReference, GoldenFabric, IntegerModel, ModelRunError,
};

use crate::memory::memory_model_for;

/// The prompt `tern generate` and the demo use when none is given (token ids).
pub const DEFAULT_PROMPT: [usize; 8] = [1, 20, 44, 4, 5, 60, 7, 8];

/// The tiny model's engines, used when no config is given.
pub const TINY_MATMUL: &str = include_str!("../../examples/bitnet_tiny_matmul.toml");
pub const TINY_ATTENTION: &str = include_str!("../../examples/bitnet_tiny_attention.toml");

/// How every BitLinear of a model is cut into the matmul top's tiles, and which slot of
/// the board's memory each tile lives in.
#[derive(Debug, Clone)]
pub struct TilePlan {
    pub tile_m: usize,
    pub tile_k: usize,
    /// Per matmul of a layer (q, k, v, o, gate, up, down): (m tiles, k tiles).
    pub tiles: [(usize, usize); 7],
    /// Tiles per layer.
    pub per_layer: usize,
    pub layers: usize,
}

impl TilePlan {
    pub fn new(model: &ModelConfig, matmul: &Config) -> TilePlan {
        let (tile_m, tile_k) = (matmul.workload.m, matmul.workload.k);
        let tiles = model.layer_matmuls().map(|mm| matmul.tiles_for(mm.m, mm.k));
        TilePlan {
            tile_m,
            tile_k,
            tiles,
            per_layer: tiles.iter().map(|(m, k)| m * k).sum(),
            layers: model.layers,
        }
    }

    pub fn slots(&self) -> usize {
        self.per_layer * self.layers
    }

    /// The slot of tile (`mt`, `kt`) of matmul `which` of layer `layer`.
    pub fn slot(&self, layer: usize, which: usize, mt: usize, kt: usize) -> usize {
        let before: usize = self.tiles[..which].iter().map(|(m, k)| m * k).sum();
        layer * self.per_layer + before + mt * self.tiles[which].1 + kt
    }

    /// Weights the tiles hold, padding included, over weights the model has.
    pub fn padding_factor(&self, model: &ModelConfig) -> f64 {
        let held = (self.per_layer * self.tile_m * self.tile_k) as f64;
        let real: usize = model.layer_matmuls().iter().map(|mm| mm.m * mm.k).sum();
        held / real as f64
    }
}

/// Kernel clocks and calls the fabric spent, and the wall time of its calls.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FabricTally {
    pub matmul_clocks: u64,
    pub matmul_calls: u64,
    pub matmul_bytes_read: u64,
    pub attention_clocks: u64,
    pub attention_calls: u64,
    pub attention_bytes_read: u64,
    #[serde(skip)]
    pub wall: Duration,
}

impl FabricTally {
    /// What was spent since `before` (an earlier copy of this tally).
    pub fn since(&self, before: &FabricTally) -> FabricTally {
        FabricTally {
            matmul_clocks: self.matmul_clocks - before.matmul_clocks,
            matmul_calls: self.matmul_calls - before.matmul_calls,
            matmul_bytes_read: self.matmul_bytes_read - before.matmul_bytes_read,
            attention_clocks: self.attention_clocks - before.attention_clocks,
            attention_calls: self.attention_calls - before.attention_calls,
            attention_bytes_read: self.attention_bytes_read - before.attention_bytes_read,
            wall: self.wall - before.wall,
        }
    }
}

/// The fabric on boards: a matmul top holding every weight tile, and one or more
/// attention tops holding the KV caches (KV head `h` on engine `h mod engines`).
///
/// With several attention engines a layer's attention calls run side by side: the
/// layer's attention clocks are the largest of the engines' sums, not their total.
/// (Each engine is simulated on its own board with its own DDR model, so sharing one
/// DDR is not modelled; attention reads little: K/V once per block of query rows.)
pub struct BoardFabric {
    pub matmul: Device,
    pub attention: Vec<Device>,
    plan: TilePlan,
    /// Per matmul of a layer: (m, k).
    shapes: [(usize, usize); 7],
    kv_heads: usize,
    pub tally: FabricTally,
}

impl BoardFabric {
    /// Give every tile and every cache a slot and load the checkpoint's weights, tile
    /// by tile (`progress` counts tiles).
    pub fn load(
        ck: &Checkpoint,
        matmul_cfg: &Config,
        mut matmul: Device,
        mut attention: Vec<Device>,
        progress: &ProgressBar,
    ) -> Result<BoardFabric> {
        let c = &ck.config;
        let plan = TilePlan::new(c, matmul_cfg);
        matmul
            .set_slots(plan.slots())
            .context("the matmul board's memory cannot hold every weight tile")?;
        if attention.is_empty() {
            bail!("no attention engine");
        }
        let per_engine = c.kv_heads.div_ceil(attention.len());
        for (e, dev) in attention.iter_mut().enumerate() {
            dev.set_slots(c.layers * per_engine).with_context(|| {
                format!("attention board {e}'s memory cannot hold a KV cache per layer and KV head")
            })?;
        }
        progress.set_length(plan.slots() as u64);
        let (tm, tk) = (plan.tile_m, plan.tile_k);
        let mut tile = vec![0i8; tm * tk];
        for (l, layer) in ck.layers.iter().enumerate() {
            for (which, w) in layer.matmuls.iter().enumerate() {
                let (mts, kts) = plan.tiles[which];
                for mt in 0..mts {
                    for kt in 0..kts {
                        tile.fill(0);
                        for r in 0..tm.min(w.m - mt * tm) {
                            let cols = tk.min(w.k - kt * tk);
                            let src = (mt * tm + r) * w.k + kt * tk;
                            tile[r * tk..r * tk + cols].copy_from_slice(&w.w[src..src + cols]);
                        }
                        matmul
                            .load_weights_into(plan.slot(l, which, mt, kt), &tile)
                            .with_context(|| {
                                format!("loading layer {l} matmul {which} tile ({mt}, {kt})")
                            })?;
                        progress.inc(1);
                    }
                }
            }
        }
        Ok(BoardFabric {
            matmul,
            attention,
            shapes: c.layer_matmuls().map(|mm| (mm.m, mm.k)),
            plan,
            kv_heads: c.kv_heads,
            tally: FabricTally::default(),
        })
    }

    /// Forget every KV cache (a new sequence).
    pub fn reset(&mut self) -> Result<(), HostError> {
        self.attention.iter_mut().try_for_each(|d| d.kv_clear())
    }

    /// The engine and slot of `(layer, kv_head)`'s KV cache.
    fn cache_of(&self, layer: usize, kv_head: usize) -> (usize, usize) {
        let engines = self.attention.len();
        let per_engine = self.kv_heads.div_ceil(engines);
        (kv_head % engines, layer * per_engine + kv_head / engines)
    }

    /// One attention call on its engine; (rows, clocks).
    fn attention_call(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<(Vec<RowOutput>, usize, u64), HostError> {
        let (engine, slot) = self.cache_of(layer, kv_head);
        let run = self.attention[engine].attention_on(slot, queries, first_position, causal)?;
        self.tally.attention_calls += 1;
        self.tally.attention_bytes_read += run.bytes_read;
        Ok((run.rows, engine, run.cycles))
    }
}

impl Fabric for BoardFabric {
    type Error = HostError;

    fn matmul(&mut self, layer: usize, which: usize, xs: &[i8]) -> Result<Vec<i64>, HostError> {
        let t0 = Instant::now();
        let (m, k) = self.shapes[which];
        let (tm, tk) = (self.plan.tile_m, self.plan.tile_k);
        let (mts, kts) = self.plan.tiles[which];
        let tokens = xs.len() / k;
        let mut y = vec![0i64; tokens * m];
        let mut part = vec![0i8; tokens * tk];
        for kt in 0..kts {
            let cols = tk.min(k - kt * tk);
            part.fill(0);
            for t in 0..tokens {
                let src = t * k + kt * tk;
                part[t * tk..t * tk + cols].copy_from_slice(&xs[src..src + cols]);
            }
            for mt in 0..mts {
                let run = self
                    .matmul
                    .gemm_with(self.plan.slot(layer, which, mt, kt), &part)?;
                self.tally.matmul_clocks += run.cycles;
                self.tally.matmul_calls += 1;
                self.tally.matmul_bytes_read += run.bytes_read;
                let rows = tm.min(m - mt * tm);
                for t in 0..tokens {
                    for r in 0..rows {
                        y[t * m + mt * tm + r] += run.y[t * tm + r];
                    }
                }
            }
        }
        self.tally.wall += t0.elapsed();
        Ok(y)
    }

    fn kv_append(
        &mut self,
        layer: usize,
        kv_head: usize,
        keys: &[i8],
        values: &[i8],
    ) -> Result<(), HostError> {
        let t0 = Instant::now();
        let (engine, slot) = self.cache_of(layer, kv_head);
        let r = self.attention[engine].kv_append_to(slot, keys, values);
        self.tally.wall += t0.elapsed();
        r
    }

    fn attention(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<RowOutput>, HostError> {
        let t0 = Instant::now();
        let (rows, _, cycles) =
            self.attention_call(layer, kv_head, queries, first_position, causal)?;
        self.tally.attention_clocks += cycles;
        self.tally.wall += t0.elapsed();
        Ok(rows)
    }

    fn attention_layer(
        &mut self,
        layer: usize,
        calls: &[(usize, Vec<i8>)],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<Vec<RowOutput>>, HostError> {
        let t0 = Instant::now();
        let mut busy = vec![0u64; self.attention.len()];
        let mut out = Vec::with_capacity(calls.len());
        for (kv_head, queries) in calls {
            let (rows, engine, cycles) =
                self.attention_call(layer, *kv_head, queries, first_position, causal)?;
            busy[engine] += cycles;
            out.push(rows);
        }
        // The engines run side by side: the layer waits for the busiest.
        self.tally.attention_clocks += busy.iter().max().copied().unwrap_or(0);
        self.tally.wall += t0.elapsed();
        Ok(out)
    }
}

/// The board fabric with the golden fabric beside it: every call runs on both, the
/// board's results go on, and the first call whose results differ is remembered (so a
/// mismatch in the logits names the layer, the matmul or KV head, the token and the
/// output where it began).
pub struct Shadowed<'a> {
    pub board: BoardFabric,
    golden: GoldenFabric<'a>,
    names: [&'static str; 7],
    pub first_difference: Option<String>,
}

impl<'a> Shadowed<'a> {
    pub fn new(board: BoardFabric, ck: &'a Checkpoint, attention: &AttentionConfig) -> Self {
        Shadowed {
            board,
            golden: GoldenFabric::new(ck, attention),
            names: ck.config.layer_matmuls().map(|mm| mm.name),
            first_difference: None,
        }
    }

    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.first_difference.is_none() {
            self.first_difference = Some(what());
        }
    }

    /// Run one attention call on the golden fabric and note the first row that differs.
    fn check_attention(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
        rows: &[RowOutput],
    ) {
        let Ok(want) = self
            .golden
            .attention(layer, kv_head, queries, first_position, causal);
        if let Some(r) = (0..want.len()).find(|&r| rows.get(r) != Some(&want[r])) {
            self.note(|| {
                format!(
                    "layer {layer} attention, KV head {kv_head}, row {r} of a call at position {first_position}: \
                     board {:?}, golden {:?}",
                    rows.get(r).map(|o| &o.values),
                    want[r].values
                )
            });
        }
    }
}

impl Fabric for Shadowed<'_> {
    type Error = HostError;

    fn matmul(&mut self, layer: usize, which: usize, xs: &[i8]) -> Result<Vec<i64>, HostError> {
        let y = self.board.matmul(layer, which, xs)?;
        let Ok(want) = self.golden.matmul(layer, which, xs);
        if let Some(i) = (0..want.len()).find(|&i| y.get(i) != Some(&want[i])) {
            let m = self.board.shapes[which].0;
            let name = self.names[which];
            self.note(|| {
                format!(
                    "layer {layer} {name}, token {} row {}: board {:?}, golden {}",
                    i / m,
                    i % m,
                    y.get(i),
                    want[i]
                )
            });
        }
        Ok(y)
    }

    fn kv_append(
        &mut self,
        layer: usize,
        kv_head: usize,
        keys: &[i8],
        values: &[i8],
    ) -> Result<(), HostError> {
        self.board.kv_append(layer, kv_head, keys, values)?;
        let Ok(()) = self.golden.kv_append(layer, kv_head, keys, values);
        Ok(())
    }

    fn attention(
        &mut self,
        layer: usize,
        kv_head: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<RowOutput>, HostError> {
        let rows = self
            .board
            .attention(layer, kv_head, queries, first_position, causal)?;
        self.check_attention(layer, kv_head, queries, first_position, causal, &rows);
        Ok(rows)
    }

    fn attention_layer(
        &mut self,
        layer: usize,
        calls: &[(usize, Vec<i8>)],
        first_position: usize,
        causal: bool,
    ) -> Result<Vec<Vec<RowOutput>>, HostError> {
        let outs = self
            .board
            .attention_layer(layer, calls, first_position, causal)?;
        for ((kv_head, queries), rows) in calls.iter().zip(&outs) {
            self.check_attention(layer, *kv_head, queries, first_position, causal, rows);
        }
        Ok(outs)
    }
}

/// What `tern generate` is asked to do.
#[derive(Debug, Clone)]
pub struct GenerateArgs {
    /// The weights, the prompt and how many tokens.
    pub inputs: crate::weights::RunInputs,
    pub matmul_config: Option<PathBuf>,
    pub attention_config: Option<PathBuf>,
    pub board_uri: String,
    /// The attention tops' boards, one per attention engine (default: `engines` times
    /// `sim:` when `board_uri` is `sim:`).
    pub attention_uris: Vec<String>,
    /// Attention engines working side by side (on `sim:`; remote: one per URI).
    pub attention_engines: usize,
    /// Replace the attention config's scales with ones measured by the float reference
    /// on the prompt.
    pub calibrate: bool,
    pub out: Option<PathBuf>,
    pub access: crate::access::BoardAccess,
    /// Print a line per step and a summary.
    pub verbose: bool,
}

/// One forward pass on the board.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Tokens fed (the prompt, then one generated token per step).
    pub fed: usize,
    pub position: usize,
    /// The greedy choice after this pass.
    pub token: usize,
    #[serde(flatten)]
    pub fabric: FabricTally,
    /// Wall time outside fabric calls on this machine: the host's share, in ms.
    pub host_ms: f64,
    pub bit_exact: bool,
}

/// Everything `tern generate` measured (`--out DIR/generate.json`, docs/files.md).
#[derive(Debug, Clone, Serialize)]
pub struct GenerateReport {
    pub format: &'static str,
    pub model: ModelConfig,
    /// The checkpoint's weights file's SHA-256; null for random weights.
    pub checkpoint_sha256: Option<String>,
    pub matmul_config: String,
    pub attention_config: String,
    pub board_uri: String,
    pub attention_uris: Vec<String>,
    pub seed: u64,
    pub prompt: Vec<usize>,
    pub generated: Vec<usize>,
    /// The prompt's and the generated ids' text, when the model has a tokenizer.
    pub prompt_text: Option<String>,
    pub generated_text: Option<String>,
    pub steps: Vec<Step>,
    pub tile_m: usize,
    pub tile_k: usize,
    pub tiles: usize,
    pub padding_factor: f64,
    pub board_clock_mhz: f64,
    /// The first step is the prompt (time to first token), the rest decode.
    pub prefill_clocks: u64,
    pub decode_clocks_per_token: f64,
    pub decode_tokens_per_s: f64,
    pub time_to_first_token_s: f64,
    pub bit_exact: bool,
    /// Logits of every step (vocab each).
    pub logits: Vec<Vec<f32>>,
}

fn read_text(path: &Option<PathBuf>, builtin: &str, what: &str) -> Result<(String, String)> {
    match path {
        Some(p) => Ok((
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the {what} config {}", p.display()))?,
            p.display().to_string(),
        )),
        None => Ok((builtin.to_string(), format!("built-in tiny {what} engine"))),
    }
}

/// Check that the model fits the accelerator before anything runs.
pub fn check_fit(
    model: &ModelConfig,
    attention: &AttentionConfig,
    prompt: usize,
    tokens: usize,
) -> Result<()> {
    if attention.attention.head_dim != model.head_dim {
        bail!(
            "the model's heads are {} wide but the attention engine's attention.head_dim is {}",
            model.head_dim,
            attention.attention.head_dim
        );
    }
    // The last generated token is not fed back.
    let context = prompt + tokens.saturating_sub(1);
    if context > attention.attention.max_seq_len {
        bail!(
            "a prompt of {prompt} tokens and {tokens} generated need a KV cache of {context} tokens; \
             the attention engine's attention.max_seq_len is {}",
            attention.attention.max_seq_len
        );
    }
    Ok(())
}

/// Load, check, run, compare; prints a line per step.
/// What a run needs before any board is opened: the checkpoint, both tops' configs (the
/// attention's scales calibrated when asked), the attention boards; every input checked.
struct Setup {
    ck: Checkpoint,
    /// Where the weights came from, and their hash when read from disk.
    weights_origin: String,
    sha256: Option<String>,
    model: ModelConfig,
    matmul_cfg: Config,
    mm_origin: String,
    attention_cfg: AttentionConfig,
    at_origin: String,
    attention_uris: Vec<String>,
    /// The prompt's ids, and the tokenizer for text out.
    prompt: Vec<usize>,
    codec: Option<tern_model::text::TextCodec>,
}

fn setup(a: &GenerateArgs) -> Result<Setup> {
    let crate::weights::Generation {
        weights,
        prompt,
        codec,
    } = a.inputs.generation()?;
    let ck = weights.checkpoint;
    let model = ck.config.clone();
    let (mm_text, mm_origin) = read_text(&a.matmul_config, TINY_MATMUL, "matmul")?;
    let (at_text, at_origin) = read_text(&a.attention_config, TINY_ATTENTION, "attention")?;
    let matmul_cfg = Config::from_toml(&mm_text, &mm_origin)?;
    let mut attention_cfg = AttentionConfig::from_toml(&at_text, &at_origin)?;
    check_fit(&model, &attention_cfg, prompt.len(), a.inputs.tokens)?;
    if a.calibrate {
        let mut float = FloatReference::new(&ck);
        prompt.iter().for_each(|&t| drop(float.step(t)));
        let s = AttentionScales::covering(&float.ranges);
        attention_cfg = attention_cfg
            .with_scales([s.q, s.k, s.v, s.out], "calibrated scales")
            .context("the calibrated scales do not make a valid attention engine")?;
        if a.verbose {
            eprintln!(
                "calibrated scale_q = {:.6}, scale_k = {:.6}, scale_v = {:.6}, scale_out = {:.6} \
                 (float reference over the prompt)",
                s.q, s.k, s.v, s.out
            );
        }
    }
    let attention_uris = if !a.attention_uris.is_empty() {
        a.attention_uris.clone()
    } else if a.board_uri == "sim:" {
        if a.attention_engines == 0 {
            bail!("--attention-engines must be at least 1");
        }
        vec!["sim:".to_string(); a.attention_engines]
    } else {
        bail!(
            "the attention top runs on its own board: give --attention-uri (a `tern serve` of the attention config; several, comma-separated, for engines side by side)"
        )
    };
    crate::files::create_out_dir(a.out.as_deref())?;
    Ok(Setup {
        ck,
        weights_origin: weights.origin,
        sha256: weights.file.map(|f| f.sha256),
        model,
        matmul_cfg,
        mm_origin,
        attention_cfg,
        at_origin,
        attention_uris,
        prompt,
        codec,
    })
}

pub fn generate(a: &GenerateArgs) -> Result<GenerateReport> {
    // Per-step and summary lines unless quiet (the demo prints its own summary); on
    // stderr when the text streams on stdout.
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
    let Setup {
        ck,
        weights_origin,
        sha256,
        model,
        matmul_cfg,
        mm_origin,
        attention_cfg,
        at_origin,
        attention_uris,
        prompt,
        codec,
    } = setup(a)?;
    let scales = AttentionScales::of(&attention_cfg);

    let open = |uri: &str, design: DesignConfig| -> Result<Device> {
        let (memory, _) = memory_model_for(&design)?;
        let opts = a.access.open_options(memory, Duration::from_secs(600));
        Device::open_design(uri, &design, &opts).with_context(|| format!("opening board {uri}"))
    };
    let matmul_dev = open(&a.board_uri, DesignConfig::Matmul(matmul_cfg.clone()))?;
    let attention_devs = attention_uris
        .iter()
        .map(|uri| open(uri, DesignConfig::Attention(attention_cfg.clone())))
        .collect::<Result<Vec<_>>>()?;
    let plan = TilePlan::new(&model, &matmul_cfg);
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
        weights_origin
    );
    say!(
        "matmul     {} on {}, tiles of {}x{}, {} per layer ({:.3}x the weights with padding)",
        mm_origin,
        a.board_uri,
        plan.tile_m,
        plan.tile_k,
        plan.per_layer,
        plan.padding_factor(&model)
    );
    say!(
        "attention  {} on {}, {} KV caches of {} tokens",
        at_origin,
        attention_uris.join(" and "),
        model.layers * model.kv_heads,
        attention_cfg.attention.max_seq_len
    );
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("weights");
    bar.set_message("tiles loaded");
    let mut board = BoardFabric::load(&ck, &matmul_cfg, matmul_dev, attention_devs, &bar)?;
    bar.finish_and_clear();
    board.reset()?;
    let mut board = Shadowed::new(board, &ck, &attention_cfg);
    let mut golden_fabric = GoldenFabric::new(&ck, &attention_cfg);
    let mut on_board = IntegerModel::new(&ck, scales);
    let mut golden = IntegerModel::new(&ck, scales);

    let mhz = tern_boards::Board::resolve(matmul_cfg.board.as_deref().unwrap_or("kv260"))?
        .clock
        .default_mhz;
    let mut steps: Vec<Step> = vec![];
    let mut logits_all = vec![];
    let mut generated = vec![];
    let mut feed = prompt.clone();
    let mut text = match &codec {
        Some(c) => Some(crate::text::TextOut::new(
            c,
            &prompt,
            live_text && a.verbose,
        )?),
        None => None,
    };
    let bar = ProgressBar::new(a.inputs.tokens as u64).with_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} tokens {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix("generate");
    let mut mismatch = None;
    for step in 0..a.inputs.tokens {
        let position = on_board.position();
        let before = board.board.tally.clone();
        let t0 = Instant::now();
        let logits = on_board.forward(&mut board, &feed).map_err(|e| match e {
            ModelRunError::Input(e) => anyhow!(e),
            ModelRunError::Fabric(e) => anyhow!(e).context(format!("step {step} on the board")),
            e @ ModelRunError::NonFinite { .. } => {
                anyhow!("step {step} on the board: {e} (the checkpoint's weights are finite: their scales or the activations overflow)")
            }
        })?;
        let wall = t0.elapsed();
        let want = golden
            .forward(&mut golden_fabric, &feed)
            .map_err(|e| anyhow!("step {step} in the golden model: {e}"))?;
        let fabric = board.board.tally.since(&before);
        let bit_exact = logits.len() == want.len()
            && logits
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !bit_exact && mismatch.is_none() {
            let i = (0..want.len())
                .find(|&i| logits.get(i).map(|v| v.to_bits()) != Some(want[i].to_bits()))
                .unwrap_or(0);
            mismatch = Some(format!(
                "step {step} (position {position}): logit {i} is {:?} on the board, {} in the golden model; \
                 first differing fabric call: {} (model {}, seed {}, matmul {mm_origin}, attention {at_origin})",
                logits.get(i),
                want[i],
                board.first_difference.as_deref().unwrap_or("none (the host's share differs?)"),
                model.name,
                a.inputs.seed
            ));
        }
        let token = greedy(&logits);
        let record = Step {
            fed: feed.len(),
            position,
            token,
            host_ms: (wall.saturating_sub(fabric.wall)).as_secs_f64() * 1e3,
            fabric,
            bit_exact,
        };
        bar.suspend(|| {
            say!(
                "step {step:>3}  {:>4} token(s) at {position:>4} -> {token:>6}   matmul {:>10} clk ({} calls)  attention {:>9} clk ({} calls)  host {:>7.2} ms  {}",
                record.fed,
                record.fabric.matmul_clocks,
                record.fabric.matmul_calls,
                record.fabric.attention_clocks,
                record.fabric.attention_calls,
                record.host_ms,
                if bit_exact { "bit-exact" } else { "MISMATCH" }
            )
        });
        bar.inc(1);
        steps.push(record);
        logits_all.push(logits);
        generated.push(token);
        if let Some(t) = &mut text {
            bar.suspend(|| t.push(token))?;
        }
        feed = vec![token];
    }
    bar.finish_and_clear();
    let generated_text = text.map(|t| t.finish()).transpose()?;
    let clocks = |s: &Step| s.fabric.matmul_clocks + s.fabric.attention_clocks;
    let prefill_clocks = clocks(&steps[0]);
    let decode: Vec<u64> = steps[1..].iter().map(clocks).collect();
    let decode_clocks_per_token = if decode.is_empty() {
        f64::NAN
    } else {
        decode.iter().sum::<u64>() as f64 / decode.len() as f64
    };
    let report = GenerateReport {
        format: "tern-generate/1",
        model: model.clone(),
        checkpoint_sha256: sha256,
        matmul_config: matmul_cfg.to_toml(),
        attention_config: attention_cfg.to_toml(),
        board_uri: a.board_uri.clone(),
        attention_uris,
        seed: a.inputs.seed,
        prompt_text: crate::text::prompt_text(&a.inputs.prompt, codec.as_ref(), &prompt)?,
        generated_text,
        prompt: prompt.clone(),
        generated: generated.clone(),
        tile_m: plan.tile_m,
        tile_k: plan.tile_k,
        tiles: plan.slots(),
        padding_factor: plan.padding_factor(&model),
        board_clock_mhz: mhz,
        prefill_clocks,
        decode_clocks_per_token,
        decode_tokens_per_s: mhz * 1e6 / decode_clocks_per_token,
        time_to_first_token_s: prefill_clocks as f64 / (mhz * 1e6),
        bit_exact: mismatch.is_none(),
        steps,
        logits: logits_all,
    };
    say!("generated  {generated:?}");
    if let (Some(t), false) = (&report.generated_text, live_text) {
        say!("text       {t:?}");
    }
    let decode = if decode.is_empty() {
        "no decode step (--tokens 1)".to_string()
    } else {
        format!(
            "decode {:.0} clocks/token = {:.1} tokens/s",
            report.decode_clocks_per_token, report.decode_tokens_per_s
        )
    };
    say!(
        "kernel     prefill of {} tokens {} clocks = {:.3} ms at {mhz} MHz; {decode} \
         (kernel time only: the two tops run one after the other, the host's share is not counted)",
        prompt.len(),
        report.prefill_clocks,
        report.time_to_first_token_s * 1e3,
    );
    if let Some(dir) = &a.out {
        write_report(dir, &report)?;
        say!("wrote      {}", dir.join("generate.json").display());
    }
    if let Some(m) = mismatch {
        bail!("not bit-exact: {m}");
    }
    say!("check      every step's logits bit-exact against the golden model");
    Ok(report)
}

fn write_report(dir: &Path, report: &GenerateReport) -> Result<()> {
    let path = dir.join("generate.json");
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
