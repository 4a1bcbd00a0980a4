//! What `tern serve` is told: time limits, queue length, the token and who may connect
//! (docs/wire.md). Read by the server and by its lobby.

use std::time::Duration;

use crate::auth::Secret;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Disconnect a client that sends nothing for this long.
    pub idle_timeout: Duration,
    /// Time allowed for the rest of a frame once its first byte arrived.
    pub frame_timeout: Duration,
    /// A holder that has had the board this long gives it up at its next request, but
    /// only while another client waits.
    pub max_hold: Duration,
    /// Connections waiting behind the holder; more stay in the listen backlog.
    pub max_waiting: usize,
    /// The shared token every connection must prove before anything else
    /// (docs/wire.md, "Security"); None: no token asked.
    pub secret: Option<Secret>,
    /// Listen on a TCP address other hosts can reach. Refused without it, and refused
    /// without a `secret` even with it: whoever connects can read and write the whole
    /// board memory.
    pub allow_remote: bool,
    /// A Unix socket is created owner-only (0600); with a group id, 0660 and that group.
    pub socket_group: Option<u32>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            idle_timeout: Duration::from_secs(30),
            frame_timeout: Duration::from_secs(10),
            max_hold: Duration::from_secs(300),
            max_waiting: 16,
            secret: None,
            allow_remote: false,
            socket_group: None,
        }
    }
}
