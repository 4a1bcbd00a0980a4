//! One error type for every transport and the device API above them.

use std::time::Duration;

use crate::wire::Status;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("bad board URI `{uri}`: {reason}")]
    BadUri { uri: String, reason: String },
    #[error("{what} at 0x{addr:x} (length {len}) is not 4-byte aligned")]
    Unaligned {
        what: &'static str,
        addr: u64,
        len: usize,
    },
    #[error("{what} [0x{addr:x}, +{len}) is outside the {limit} bytes available")]
    OutOfRange {
        what: &'static str,
        addr: u64,
        len: usize,
        limit: u64,
    },
    #[error("{what}: no answer within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("the board is running a kernel; its buffers belong to it until ap_idle")]
    Busy,
    /// `tern serve` gave the board to another client; the message says whom and since when.
    #[error("{0}")]
    Held(String),
    /// A daemon set up so that strangers could use the board (refused).
    #[error("refusing to serve: {0}")]
    Insecure(String),
    /// The shared token: missing, refused by the server, or unusable here.
    #[error("authentication: {0}")]
    Auth(String),
    #[error("the connection to the board closed: {0}")]
    Disconnected(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the board answered {status:?}: {message}")]
    Remote { status: Status, message: String },
    #[error("the device is not a tern accelerator: HW_ID reads 0x{0:08x}")]
    NotTern(u32),
    #[error("the board carries design {board:08x}, but the config generates {config:08x}; run `tern serve` (or load the bitstream) for this config")]
    WrongDesign { board: u32, config: u32 },
    #[error("the kernel reports ERROR = 0b{0:08b}: {}", error_names(*.0))]
    Refused(u32),
    #[error("memory layout: {0}")]
    Regions(tern_hdl::top::RegionError),
    #[error("{0}")]
    Shape(String),
    #[error("KV cache: {0}")]
    KvCache(String),
    #[error("this board carries the {carried} engine; {call} needs the {needed} engine")]
    WrongEngine {
        carried: &'static str,
        needed: &'static str,
        call: &'static str,
    },
    // The cause is in the message and not also a `source`: `{:#}` would print it twice.
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    /// What a board's own devices say (sysfs, device files) does not make a board.
    #[error("board set-up: {0}")]
    BoardSetup(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("the simulated board: {0}")]
    Sim(String),
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HostError {
    let context = context.into();
    move |cause| HostError::Io { context, cause }
}

/// The ERROR register's set bits, by the names and meanings of the register map.
fn error_names(error: u32) -> String {
    let fields = tern_hdl::top::regmap::register_at(tern_hdl::top::regmap::ERROR)
        .map(|r| r.fields)
        .unwrap_or(&[]);
    let set: Vec<String> = fields
        .iter()
        .filter(|f| error >> f.bit & 1 != 0)
        .map(|f| format!("{} ({})", f.name, f.doc))
        .collect();
    if set.is_empty() {
        "no known bit".into()
    } else {
        set.join("; ")
    }
}

// By hand rather than `#[from]`, which would also make the inner error the `source`
// and `{:#}` print it twice (the message already carries it).
impl From<tern_hdl::top::RegionError> for HostError {
    fn from(e: tern_hdl::top::RegionError) -> Self {
        HostError::Regions(e)
    }
}
