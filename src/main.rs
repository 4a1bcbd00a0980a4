//! The `tern` binary: a thin shell over `tern_flows::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a closed stdout (`tern model | head -1`) made every
    // println! panic. Take the Unix default back: the process ends quietly, as `cat`
    // does. Sockets are not affected: the host's pipes send with MSG_NOSIGNAL and get
    // EPIPE as an error (tern_host::pipe).
    // SAFETY: setting a signal's disposition to the default, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match tern_flows::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
