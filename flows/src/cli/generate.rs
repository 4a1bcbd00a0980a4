//! `tern generate`: run a BitNet model on the accelerator: prefill a prompt, decode greedily, every
//! step's logits checked bit for bit against the golden model; kernel clocks per
//! step (matmul, attention) and host time.

use anyhow::{bail, Result};
use std::path::PathBuf;
use tern_hdl::config::accelerator::Accelerator;

use super::options::AccessArgs;

#[derive(clap::Args)]
pub struct Args {
    /// An accelerator description (docs/files.md): its matmul top, attention top and
    /// attention engine count; --matmul-config, --attention-config and
    /// --attention-engines override its parts.
    #[arg(long)]
    pub accelerator: Option<PathBuf>,
    /// sim:, unix:PATH, tcp:HOST:PORT, ...: the board with the matmul top.
    #[arg(long, default_value = "sim:")]
    pub board_uri: String,
    /// The board(s) with the attention top, comma-separated for several engines
    /// side by side (default: sim: when --board-uri is sim:).
    #[arg(long, value_delimiter = ',')]
    pub attention_uri: Vec<String>,
    /// Attention engines side by side on sim: (KV head h on engine h mod N; default: the
    /// accelerator's, else 1).
    #[arg(long)]
    pub attention_engines: Option<usize>,
    /// Preset (tiny, bitnet-0.73b, bitnet-2b, small) or model TOML; random ternary weights
    /// from --seed.
    #[arg(long, default_value = "tiny")]
    pub model: String,
    /// A BitNet checkpoint instead of random weights: a Hugging Face directory
    /// (config.json and model.safetensors) or a GGUF file (docs/files.md).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Refuse the checkpoint unless its weights file has this SHA-256 (hex; the figure
    /// `sha256sum model.safetensors` prints and a model hub lists).
    #[arg(long, requires = "checkpoint")]
    pub expect_sha256: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The matmul top's config (its workload.m × workload.k is the tile shape);
    /// default: examples/bitnet_tiny_matmul.toml.
    #[arg(long)]
    pub matmul_config: Option<PathBuf>,
    /// The attention top's config; default: examples/bitnet_tiny_attention.toml.
    #[arg(long)]
    pub attention_config: Option<PathBuf>,
    /// The prompt: comma-separated token ids, or text, tokenised with the checkpoint's
    /// tokenizer (tokenizer.json beside its files, or a GGUF's vocabulary; random
    /// weights: bytes). With text, the generated text streams on stdout and the report
    /// goes to stderr. Default: the ids 1,20,44,4,5,60,7,8.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Text goes to the model as written, not through the tokenizer's chat template.
    #[arg(long)]
    pub raw: bool,
    /// Tokens to generate.
    #[arg(long, default_value_t = 8)]
    pub tokens: usize,
    /// Measure the attention scales with the float reference on the prompt (they
    /// change the attention engine: a served attention board must carry them). On the
    /// one top the units are program data, one set per layer, and are calibrated by
    /// default whenever --checkpoint is given.
    #[arg(long)]
    pub calibrate: bool,
    /// With --one-top and --checkpoint: keep the accelerator description's attention
    /// units instead of calibrating them on the prompt.
    #[arg(long, conflicts_with = "calibrate", requires = "one_top")]
    pub no_calibrate: bool,
    /// Write generate.json (tokens, per-step clocks, logits; docs/files.md) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run on the one top instead (docs/accelerator.md): every pass one start of the
    /// accelerator through its registers, on --board-uri (sim: builds the one top of the
    /// accelerator description, default examples/bitnet_tiny_one_top.toml, under
    /// Verilator; unix:/tcp: reach `tern serve --one-top`); the top configs do not apply.
    #[arg(long, conflicts_with_all = ["attention_uri", "attention_engines", "matmul_config", "attention_config"])]
    pub one_top: bool,
    /// With --one-top: the vector unit's lanes.
    #[arg(long, default_value_t = 2, requires = "one_top")]
    pub lanes: usize,
    /// With --one-top: the top's room for ids a pass (the longest prompt; a served top
    /// must be built with the same, `tern serve --one-top --max-ids`).
    #[arg(long, default_value_t = 128, requires = "one_top")]
    pub max_ids: u32,
    /// With --one-top: seconds one pass may take on the board (a simulated 0.73B
    /// prompt of 128 takes tens of minutes of Verilator).
    #[arg(long, default_value_t = 7200, requires = "one_top")]
    pub pass_timeout: u64,
    #[command(flatten)]
    pub access: AccessArgs,
}

pub fn run(a: Args) -> Result<()> {
    let prompt = match &a.prompt {
        Some(p) => crate::text::Prompt::parse(p),
        None => crate::text::Prompt::Ids(crate::generate::DEFAULT_PROMPT.to_vec()),
    };
    let inputs = crate::weights::RunInputs {
        model: a.model,
        checkpoint: a.checkpoint,
        expect_sha256: a.expect_sha256,
        seed: a.seed,
        prompt,
        chat: !a.raw,
        tokens: a.tokens,
    };
    if a.one_top {
        let access = a.access.access()?;
        let accelerator = a.accelerator.unwrap_or_else(|| {
            crate::files::find_in_repo(std::path::Path::new("examples/bitnet_tiny_one_top.toml"))
        });
        let calibrate = a.calibrate || (inputs.checkpoint.is_some() && !a.no_calibrate);
        crate::one_top::generate_one_top(&crate::one_top::OneTopArgs {
            inputs,
            accelerator,
            lanes: a.lanes,
            calibrate,
            out: a.out,
            verbose: true,
            device: a.board_uri,
            open: tern_host::OpenOptions {
                timeout: access.timeout,
                board_wait: access.board_wait,
                token: access.token,
                ..tern_host::OpenOptions::default()
            },
            max_ids: a.max_ids,
            pass_timeout: std::time::Duration::from_secs(a.pass_timeout),
        })?;
        return Ok(());
    }
    let acc = match &a.accelerator {
        Some(path) => Some(Accelerator::from_path(path)?),
        None => None,
    };
    if let Some(acc) = &acc {
        let board = tern_boards::Board::resolve(&acc.board)?;
        if let Some(mhz) = acc.clock_mhz.filter(|&f| f != board.clock.default_mhz) {
            bail!(
                "{}: clock_mhz = {mhz}, but the simulated {} runs its DDR model at the board's \
                 {} MHz; tern project --accelerator projects other clocks",
                acc.origin.display(),
                board.name,
                board.clock.default_mhz
            );
        }
    }
    crate::generate::generate(&crate::generate::GenerateArgs {
        inputs,
        matmul_config: a
            .matmul_config
            .or(acc.as_ref().map(|x| x.matmul_path.clone())),
        attention_config: a
            .attention_config
            .or(acc.as_ref().map(|x| x.attention_path.clone())),
        board_uri: a.board_uri,
        attention_uris: a.attention_uri,
        attention_engines: a
            .attention_engines
            .or(acc.as_ref().map(|x| x.attention_engines))
            .unwrap_or(1),
        calibrate: a.calibrate,
        out: a.out,
        access: a.access.access()?,
        verbose: true,
    })?;
    Ok(())
}
