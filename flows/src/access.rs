//! How a flow reaches a board: the limits on its calls, how long to queue behind another
//! client of `tern serve`, and the token such a board asks for. `tern run`, `tern generate`
//! and the demo open their boards through here.

use std::time::Duration;

use tern_host::auth::Secret;
use tern_host::OpenOptions;
use tern_sim::top_model::MemoryModel;

#[derive(Debug, Clone)]
pub struct BoardAccess {
    /// Bound on every board call.
    pub timeout: Duration,
    /// How long to wait in `tern serve`'s queue while another client holds the board.
    pub board_wait: Duration,
    /// The token of a `tern serve --token-file` board.
    pub token: Option<Secret>,
}

impl BoardAccess {
    /// Open options for a board whose runs may take up to `longest_run` (at least the call
    /// timeout), with `memory` behind it when it is the simulated board.
    pub fn open_options(&self, memory: MemoryModel, longest_run: Duration) -> OpenOptions {
        OpenOptions {
            timeout: self.timeout,
            run_timeout: self.timeout.max(longest_run),
            board_wait: self.board_wait,
            memory: Some(memory),
            token: self.token.clone(),
            ..OpenOptions::default()
        }
    }
}
