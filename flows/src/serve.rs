//! `tern serve`: the accelerator top's Verilator model as a board behind a socket.

use anyhow::Result;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tern_hdl::DesignConfig;
use tern_host::server::{serve, Listen, ServeOptions};
use tern_host::sim::SimBoard;
use tern_host::Transport;
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
    let listen = Listen::parse(listen)?;
    // Before the model is built: a refused address should not cost a build.
    tern_host::server::check_listen(&listen, opts)?;
    eprintln!("building the Verilator model of the accelerator top (cached after the first time)");
    let (memory, memory_text) = memory_model_for(cfg)?;
    eprintln!("memory: {memory_text}");
    let mut board = SimBoard::for_design(cfg, &ModelCache::default(), waveform, Some(memory))?;
    let info = board.info()?;
    install_signal_handlers();
    let t0 = Instant::now();
    let summary = serve(&listen, &mut board, opts, &SHUTDOWN, |bound| {
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
    board.flush_waveform();
    println!(
        "stopped after {:.1} s: {} connections, {} requests, {} clocks simulated",
        t0.elapsed().as_secs_f64(),
        summary.connections,
        summary.requests,
        board.cycles()
    );
    Ok(())
}
