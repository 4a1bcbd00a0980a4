//! The call-based transport every backend implements, and the checks they share.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

use tern_hdl::top::regmap;

use crate::error::{HostError, Result};

/// What a board says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Human-readable: backend and what it runs.
    pub description: String,
    pub hw_id: u32,
    pub design_id: u32,
    pub card_bytes: u64,
    /// Where card memory starts on the accelerator's bus ([`Transport::memory_base`]):
    /// what `tern serve` tells a client of a board whose memory is a lent buffer.
    #[serde(default)]
    pub memory_base: u64,
}

/// A connection to one accelerator: its registers, its card memory and its interrupt.
/// Calls are blocking; every one either completes or returns a typed error.
pub trait Transport {
    fn info(&mut self) -> Result<Info>;
    /// Read the 32-bit register at a byte offset of the register window.
    fn read32(&mut self, offset: u64) -> Result<u32>;
    fn write32(&mut self, offset: u64, value: u32) -> Result<()>;
    /// Copy host bytes into card memory (host to card).
    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()>;
    /// Copy card memory into host bytes (card to host).
    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()>;
    /// Wait until one of the interrupt lines in `mask` is raised; returns the lines seen.
    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32>;
    /// Reset the accelerator (registers and controller; card memory is kept).
    fn reset(&mut self) -> Result<()>;
    /// Where card memory starts on the accelerator's bus: 0 for a card's own memory, the
    /// buffer's physical address where the host lends it memory (a Kria board).
    fn memory_base(&self) -> u64 {
        0
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn info(&mut self) -> Result<Info> {
        (**self).info()
    }
    fn read32(&mut self, offset: u64) -> Result<u32> {
        (**self).read32(offset)
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        (**self).write32(offset, value)
    }
    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        (**self).dma_write(card_addr, data)
    }
    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        (**self).dma_read(card_addr, out)
    }
    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        (**self).wait_irq(mask, timeout)
    }
    fn reset(&mut self) -> Result<()> {
        (**self).reset()
    }
    fn memory_base(&self) -> u64 {
        (**self).memory_base()
    }
}

/// Wait until `file` (an interrupt's device file) is readable, at most until `deadline`:
/// `Ok(false)` when the deadline passed first. `what` names it in an error.
pub(crate) fn wait_readable(file: &std::fs::File, deadline: Instant, what: &str) -> Result<bool> {
    use std::os::fd::AsRawFd;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut fds = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fds, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(HostError::Io {
                context: format!("polling {what}"),
                cause: e,
            });
        }
        return Ok(n > 0);
    }
}

/// A register offset must be word aligned and inside the register window.
pub fn check_register(offset: u64) -> Result<u32> {
    if !offset.is_multiple_of(4) {
        return Err(HostError::Unaligned {
            what: "register",
            addr: offset,
            len: 4,
        });
    }
    if offset >= u64::from(regmap::WINDOW_BYTES) {
        return Err(HostError::OutOfRange {
            what: "register",
            addr: offset,
            len: 4,
            limit: u64::from(regmap::WINDOW_BYTES),
        });
    }
    Ok(offset as u32)
}

/// A DMA must move whole words inside card memory; returns the first word.
pub fn check_dma(what: &'static str, addr: u64, len: usize, card_bytes: u64) -> Result<usize> {
    if !addr.is_multiple_of(4) || !len.is_multiple_of(4) {
        return Err(HostError::Unaligned { what, addr, len });
    }
    let end = addr.checked_add(len as u64);
    if end.is_none_or(|end| end > card_bytes) {
        return Err(HostError::OutOfRange {
            what,
            addr,
            len,
            limit: card_bytes,
        });
    }
    Ok((addr / 4) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_and_dma_checks_name_the_problem() {
        assert!(check_register(0x10).is_ok());
        assert!(matches!(
            check_register(0x11),
            Err(HostError::Unaligned { .. })
        ));
        assert!(matches!(
            check_register(0x100),
            Err(HostError::OutOfRange { .. })
        ));
        assert_eq!(check_dma("dma", 8, 16, 64).unwrap(), 2);
        assert!(matches!(
            check_dma("dma", 2, 4, 64),
            Err(HostError::Unaligned { .. })
        ));
        assert!(matches!(
            check_dma("dma", 0, 6, 64),
            Err(HostError::Unaligned { .. })
        ));
        assert!(matches!(
            check_dma("dma", 60, 8, 64),
            Err(HostError::OutOfRange { .. })
        ));
        assert!(matches!(
            check_dma("dma", u64::MAX - 3, 4, 64),
            Err(HostError::OutOfRange { .. })
        ));
    }
}
