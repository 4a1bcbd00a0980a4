//! `tern serve`: the accelerator top's Verilator model as a board behind a socket.

use anyhow::Result;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tern_hdl::DesignConfig;
use tern_host::server::{serve, Listen, ServeOptions};
use tern_host::sim::SimBoard;
use tern_host::Transport;
use tern_sim::golden::bitnet::AttentionScales;
use tern_sim::verilator::ModelCache;

use crate::memory::memory_model_for;

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM ask the daemon to finish the current request and exit.
fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

pub fn serve_command(
    cfg: &DesignConfig,
    listen: &str,
    opts: &ServeOptions,
    waveform: Option<&Path>,
) -> Result<()> {
    let listen = listening(listen, opts)?;
    eprintln!("building the Verilator model of the accelerator top (cached after the first time)");
    let (memory, memory_text) = memory_model_for(cfg)?;
    eprintln!("memory: {memory_text}");
    let mut board = SimBoard::for_design(cfg, &ModelCache::default(), waveform, Some(memory))?;
    serve_board(&listen, &mut board, opts)?;
    board.flush_waveform();
    println!("{} clocks simulated", board.cycles());
    Ok(())
}

/// What `tern serve --one-top` builds.
pub struct OneTopServe<'a> {
    pub model: &'a str,
    pub accelerator: &'a Path,
    pub lanes: usize,
    pub max_ids: u32,
    pub memory_mib: Option<u64>,
}

/// `tern serve --one-top MODEL --accelerator A`: the one top's shell under Verilator on
/// the board's DDR model, behind a socket; a host loads the program and runs passes
/// through the registers (`tern generate --one-top --board-uri`).
pub fn serve_one_top(
    s: &OneTopServe,
    listen: &str,
    opts: &ServeOptions,
    waveform: Option<&Path>,
) -> Result<()> {
    use anyhow::Context;
    use tern_hdl::config::accelerator::Accelerator;
    use tern_host::one_top::ShellBoard;
    let listen = listening(listen, opts)?;
    let model = tern_model::ModelConfig::resolve(s.model)
        .with_context(|| format!("--one-top {}", s.model))?;
    let acc = Accelerator::from_path(s.accelerator)?;
    let board = tern_boards::Board::resolve(&acc.board)?;
    let mhz = acc.clock_mhz.unwrap_or(board.clock.default_mhz);
    let draft = crate::one_top::one_top(&model, &acc, s.lanes, 1 << 32, s.max_ids)?;
    let bytes = match s.memory_mib {
        Some(mib) if mib > 0 => mib << 20,
        Some(_) => anyhow::bail!("--memory-mib must be at least 1"),
        None => {
            eprintln!(
                "sizing the memory: the program of a random {} checkpoint",
                model.name
            );
            let ck = tern_model::checkpoint::Checkpoint::random(&model, 1);
            let image = crate::one_top::program(
                &ck,
                &acc.attention,
                &[AttentionScales::of(&acc.attention)],
                &acc,
                &draft,
                s.max_ids,
            )?;
            (image.memory.len() as u64).next_multiple_of(1 << 20)
        }
    };
    let mut shape = draft;
    shape.sequencer.memory_bytes = bytes;
    let (memory, _) = crate::memory::ported_memory_at(&board, mhz, bytes)?;
    eprintln!("building the one top's Verilator model (cached after the first time)");
    let description = format!(
        "the one top {} for {} on the simulated {} ({} MiB, {} lanes, {} ids a pass)",
        acc.name,
        model.name,
        board.name,
        bytes >> 20,
        s.lanes,
        s.max_ids
    );
    let mut shell = ShellBoard::new(
        &shape,
        &memory,
        &ModelCache::default(),
        waveform,
        description,
    )?;
    serve_board(&listen, &mut shell, opts)?;
    println!("{} clocks simulated", shell.cycles());
    Ok(())
}

/// `tern serve --board-uri URI`: a real board (a Kria board's own accelerator, a card)
/// behind the socket. The board has no reset a client could undo (the server's reset
/// after each client is refused and logged); its memory base reaches the client in
/// `info`.
pub fn serve_uri(uri: &str, listen: &str, opts: &ServeOptions) -> Result<()> {
    use anyhow::Context;
    let listen = listening(listen, opts)?;
    if uri == "sim:" {
        anyhow::bail!(
            "--board-uri sim: is the simulated board: give --config, or --accelerator with \
             --part or --one-top, instead"
        );
    }
    let mut board = tern_host::device::connect(uri, &tern_host::OpenOptions::default())
        .with_context(|| format!("--board-uri {uri}"))?;
    serve_board(&listen, board.as_mut(), opts)
}

/// The address to listen on, checked before any model is built (a refused address
/// should not cost a build).
fn listening(listen: &str, opts: &ServeOptions) -> Result<Listen> {
    let listen = Listen::parse(listen)?;
    tern_host::server::check_listen(&listen, opts)?;
    Ok(listen)
}

/// Serve `board` until a signal: one client at a time, the rest queued.
fn serve_board(listen: &Listen, board: &mut dyn Transport, opts: &ServeOptions) -> Result<()> {
    let info = board.info()?;
    install_signal_handlers();
    let t0 = Instant::now();
    let summary = serve(listen, board, opts, &SHUTDOWN, |bound| {
        println!(
            "serving {bound}: {} (design id {:08x}); one client at a time, up to {} waiting \
             (idle timeout {} s, hold limit {} s while others wait); {}; Ctrl-C to stop",
            info.description,
            info.design_id,
            opts.max_waiting,
            opts.idle_timeout.as_secs(),
            opts.max_hold.as_secs(),
            if opts.secret.is_some() {
                "clients must prove the token"
            } else {
                "no token asked"
            }
        );
    })?;
    println!(
        "stopped after {:.1} s: {} connections, {} requests",
        t0.elapsed().as_secs_f64(),
        summary.connections,
        summary.requests,
    );
    Ok(())
}
