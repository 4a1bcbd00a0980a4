//! The `tern` binary: a thin shell over `tern_flows::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match tern_flows::cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
