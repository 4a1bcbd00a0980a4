//! tern-host: drive a tern accelerator from a host program.
//!
//! - [`Transport`]: the call-based interface every backend implements (registers, card
//!   memory DMA, interrupt, reset);
//! - backends: `sim::SimBoard` (the Verilator model in-process; only with the `sim`
//!   feature, so a driver for a real card builds without the Verilator bridge),
//!   [`framed::FramedTransport`] over a socket to `tern serve` or over USB bulk
//!   endpoints ([`usb`]), [`xdma::XdmaTransport`] for PCIe cards and
//!   [`kria::KriaTransport`] for a Kria board's own ARM cores (UIO and u-dma-buf);
//! - [`wire`]: the framed protocol, and [`server`] its board side (`tern serve`);
//! - [`Device`]: open by URI, load ternary weights, run GEMV/GEMM;
//! - [`one_top::OneTop`]: the one top's driver (a program once, then a start a pass), and
//!   `one_top::ShellBoard`, its simulated board.

pub mod auth;
pub mod device;
pub mod error;
pub mod framed;
pub mod kria;
mod lobby;
pub mod npy;
pub mod one_top;
pub mod pipe;
mod serve_options;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "stand-in")]
pub mod stand_in;
pub mod transport;
pub mod uri;
pub mod usb;
pub mod weights_file;
pub mod wire;
pub mod xdma;

pub use device::{AttentionReport, Device, OpenOptions, RunReport, Traffic};
pub use error::{HostError, Result};
pub use tern_hdl::top::regmap;
pub use transport::{Info, Transport};
pub use uri::BoardUri;
