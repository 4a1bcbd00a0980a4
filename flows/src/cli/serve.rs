//! `tern serve`: run the accelerator top's Verilator model as a board behind a socket.

use anyhow::Result;
use std::path::PathBuf;

use super::options::read_token;
use tern_hdl::config::accelerator::Accelerator;
use tern_hdl::DesignConfig;

/// Which top of an accelerator description to serve.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Part {
    Matmul,
    Attention,
}

#[derive(clap::Args)]
pub struct Args {
    /// The top to serve: its config (tern.toml).
    #[arg(
        long,
        required_unless_present_any = ["accelerator", "board_uri"],
        conflicts_with_all = ["accelerator", "board_uri"]
    )]
    pub config: Option<PathBuf>,
    /// An accelerator description (docs/files.md) with --part or --one-top (one daemon a
    /// top; run one per attention engine).
    #[arg(long, conflicts_with = "board_uri")]
    pub accelerator: Option<PathBuf>,
    /// Serve a real board instead of a simulated one: the Kria board this runs on
    /// (`kria:`, docs/kria.md) or a card (`xdma:PREFIX`), so that a host elsewhere drives
    /// it over the socket.
    #[arg(long, value_name = "URI", conflicts_with = "waveform")]
    pub board_uri: Option<String>,
    /// Which of the accelerator's tops to serve.
    #[arg(long, value_enum, requires = "accelerator", conflicts_with = "one_top")]
    pub part: Option<Part>,
    /// Serve the accelerator's one top for this model (a preset or a model TOML;
    /// docs/accelerator.md): `tern generate --one-top --board-uri` drives it.
    #[arg(long, value_name = "MODEL", requires = "accelerator")]
    pub one_top: Option<String>,
    /// With --one-top: the vector unit's lanes.
    #[arg(long, default_value_t = 2, requires = "one_top")]
    pub lanes: usize,
    /// With --one-top: the top's room for ids a pass.
    #[arg(long, default_value_t = 128, requires = "one_top")]
    pub max_ids: u32,
    /// With --one-top: the board's memory in MiB (default: what the model's program
    /// takes).
    #[arg(long, requires = "one_top")]
    pub memory_mib: Option<u64>,
    /// unix:PATH or tcp:IP:PORT (port 0 picks a free one and prints it).
    #[arg(long)]
    pub listen: String,
    /// Disconnect a client silent for this many seconds.
    #[arg(long, default_value_t = 30)]
    pub idle_timeout: u64,
    /// A client that has held the board this many seconds gives it up at its next
    /// request, if another client is waiting.
    #[arg(long, default_value_t = 300)]
    pub max_hold: u64,
    /// Clients that may wait for the board (more stay in the listen backlog).
    #[arg(long, default_value_t = 16)]
    pub max_waiting: usize,
    /// Record the whole session's waveform (VCD) here.
    #[arg(long)]
    pub waveform: Option<PathBuf>,
    /// A shared secret every client must prove before any request (a file of one
    /// line, mode 0600; `tern token --out FILE` writes one). docs/wire.md, Security.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Listen on a TCP address other hosts can reach (needs --token-file): whoever
    /// connects can read and write the whole board memory.
    #[arg(long)]
    pub allow_remote: bool,
    /// Open the Unix socket to this group (mode 0660); it is owner-only otherwise.
    #[arg(long)]
    pub socket_group: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    let Args {
        config,
        accelerator,
        board_uri,
        part,
        one_top,
        lanes,
        max_ids,
        memory_mib,
        listen,
        idle_timeout,
        max_hold,
        max_waiting,
        waveform,
        token_file,
        allow_remote,
        socket_group,
    } = a;
    if idle_timeout == 0 || max_waiting == 0 {
        anyhow::bail!("--idle-timeout and --max-waiting must be at least 1");
    }
    let socket_group = socket_group
        .as_deref()
        .map(tern_host::server::group_id)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--socket-group: {e}"))?;
    let opts = tern_host::server::ServeOptions {
        idle_timeout: std::time::Duration::from_secs(idle_timeout),
        max_hold: std::time::Duration::from_secs(max_hold),
        max_waiting,
        secret: read_token(token_file.as_deref())?,
        allow_remote,
        socket_group,
        ..tern_host::server::ServeOptions::default()
    };
    if let Some(uri) = &board_uri {
        return crate::serve::serve_uri(uri, &listen, &opts);
    }
    if let (Some(model), Some(path)) = (&one_top, &accelerator) {
        return crate::serve::serve_one_top(
            &crate::serve::OneTopServe {
                model,
                accelerator: path,
                lanes,
                max_ids,
                memory_mib,
            },
            &listen,
            &opts,
            waveform.as_deref(),
        );
    }
    let design = match (config, accelerator, part) {
        (Some(path), _, _) => DesignConfig::from_path(&path)?,
        (None, Some(path), Some(part)) => {
            let acc = Accelerator::from_path(&path)?;
            match part {
                Part::Matmul => DesignConfig::Matmul(acc.matmul),
                Part::Attention => DesignConfig::Attention(acc.attention),
            }
        }
        _ => anyhow::bail!("give --config, or --accelerator with --part or --one-top"),
    };
    crate::serve::serve_command(&design, &listen, &opts, waveform.as_deref())?;
    Ok(())
}
