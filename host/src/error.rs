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
    #[error("the board is running a kernel; card memory belongs to it until ap_idle")]
    Busy,
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
    #[error("the kernel reports ERROR = 0b{0:04b} (bits 0–2: the start was refused: misaligned, out of range, no tokens; bit 3: the engine sent a result beat the run did not expect)")]
    Refused(u32),
    #[error("{0}")]
    Shape(String),
    #[error("{context}: {cause}")]
    Io {
        context: String,
        #[source]
        cause: std::io::Error,
    },
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
