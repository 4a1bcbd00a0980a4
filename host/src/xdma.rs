//! PCIe through the Xilinx XDMA driver (`dma_ip_drivers`): the card's character devices.
//!
//! - `{prefix}_user`: the register BAR; 4-byte `pread`/`pwrite` at the register offset;
//! - `{prefix}_h2c_N` / `{prefix}_c2h_N`: DMA channel N; `pwrite`/`pread` at the card
//!   address moves the bytes;
//! - `{prefix}_events_M`: user interrupt M; a 4-byte read blocks until it fires and
//!   returns the event count (the driver supports `poll`, used for the timeout).
//!
//! The driver answers a misaligned access with `EPROTO`; that becomes
//! [`HostError::Unaligned`]. The prefix is configurable (`xdma:/dev/xdma0`), so tests
//! point it at a FUSE directory that mimics the driver.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tern_hdl::top::regmap;

use crate::error::{HostError, Result};
use crate::transport::{check_dma, check_register, wait_readable, Info, Transport};

pub struct XdmaTransport {
    prefix: PathBuf,
    user: File,
    h2c: File,
    c2h: File,
    events: File,
    card_bytes: u64,
}

fn device_path(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl XdmaTransport {
    /// Open the devices of `prefix` with DMA channel and user interrupt `channel`.
    pub fn open(prefix: &Path, channel: u32) -> Result<XdmaTransport> {
        let open = |suffix: String, write: bool| {
            let path = device_path(prefix, &suffix);
            OpenOptions::new()
                .read(true)
                .write(write)
                .open(&path)
                .map_err(|cause| HostError::Io {
                    context: format!(
                        "opening {} (is the XDMA driver loaded and the card present?)",
                        path.display()
                    ),
                    cause,
                })
        };
        let mut t = XdmaTransport {
            prefix: prefix.to_path_buf(),
            user: open("_user".into(), true)?,
            h2c: open(format!("_h2c_{channel}"), true)?,
            c2h: open(format!("_c2h_{channel}"), false)?,
            events: open(format!("_events_{channel}"), false)?,
            card_bytes: 0,
        };
        t.card_bytes = u64::from(t.read32(regmap::MEMORY_MIB.into())?) << 20;
        Ok(t)
    }

    fn map(&self, what: &'static str, addr: u64, len: usize, e: std::io::Error) -> HostError {
        match e.raw_os_error() {
            Some(libc::EPROTO) => HostError::Unaligned { what, addr, len },
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::ENXIO) => HostError::OutOfRange {
                what,
                addr,
                len,
                limit: self.card_bytes,
            },
            _ => HostError::Io {
                context: format!("{what} at 0x{addr:x} on {}", self.prefix.display()),
                cause: e,
            },
        }
    }
}

impl Transport for XdmaTransport {
    fn info(&mut self) -> Result<Info> {
        Ok(Info {
            description: format!("xdma:{}", self.prefix.display()),
            hw_id: self.read32(regmap::HW_ID.into())?,
            design_id: self.read32(regmap::DESIGN_ID.into())?,
            card_bytes: self.card_bytes,
            memory_base: 0,
        })
    }

    fn read32(&mut self, offset: u64) -> Result<u32> {
        check_register(offset)?;
        let mut b = [0u8; 4];
        self.user
            .read_exact_at(&mut b, offset)
            .map_err(|e| self.map("register read", offset, 4, e))?;
        Ok(u32::from_le_bytes(b))
    }

    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        check_register(offset)?;
        self.user
            .write_all_at(&value.to_le_bytes(), offset)
            .map_err(|e| self.map("register write", offset, 4, e))
    }

    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        check_dma("DMA write", card_addr, data.len(), self.card_bytes)?;
        self.h2c
            .write_all_at(data, card_addr)
            .map_err(|e| self.map("DMA write", card_addr, data.len(), e))
    }

    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        check_dma("DMA read", card_addr, out.len(), self.card_bytes)?;
        let len = out.len();
        self.c2h
            .read_exact_at(out, card_addr)
            .map_err(|e| self.map("DMA read", card_addr, len, e))
    }

    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        let deadline = Instant::now() + timeout;
        let timed_out = || HostError::Timeout {
            what: format!("interrupt on {}_events", self.prefix.display()),
            timeout,
        };
        if mask & 1 == 0 {
            std::thread::sleep(timeout);
            return Err(timed_out());
        }
        loop {
            if !wait_readable(&self.events, deadline, "the events device")? {
                return Err(timed_out());
            }
            let mut b = [0u8; 4];
            self.events
                .read_exact_at(&mut b, 0)
                .map_err(|e| self.map("events read", 0, 4, e))?;
            // The count of interrupts since the last read; zero means none yet.
            if u32::from_le_bytes(b) > 0 {
                return Ok(1);
            }
        }
    }

    fn reset(&mut self) -> Result<()> {
        Err(HostError::Unsupported(
            "the XDMA devices have no reset; reset the card (e.g. a PCIe hot reset) and reopen"
                .into(),
        ))
    }
}
