//! The in-process backend: the Verilator model of the accelerator top, driven directly.
//! `tern serve` puts the same board behind a socket.

use std::path::Path;
use std::time::{Duration, Instant};

use tern_hdl::top::{generate_top, regmap, TopDesign};
use tern_hdl::Config;
use tern_sim::top_model::TopModel;
use tern_sim::verilator::ModelCache;

use crate::error::{HostError, Result};
use crate::transport::{bytes_into, check_dma, check_register, words_of, Info, Transport};

/// Clocks simulated between looks at the wall clock while waiting for an interrupt.
const RUN_BATCH: u64 = 1 << 16;
/// Clocks the simulated board runs on after an interrupt before the host looks: longer
/// than anything the engine can still have in flight.
const DRAIN_CLOCKS: u64 = 256;

pub struct SimBoard {
    model: TopModel,
    top: TopDesign,
}

impl SimBoard {
    /// Generate the top for `cfg`, build (or load the cached) Verilator model and power
    /// it up. `vcd` names a waveform file to record.
    pub fn new(cfg: &Config, cache: &ModelCache, vcd: Option<&Path>) -> Result<SimBoard> {
        let top = generate_top(cfg).map_err(|e| HostError::Sim(e.to_string()))?;
        SimBoard::from_top(top, cache, vcd)
    }

    /// A board carrying a given top (tests use it to carry a deliberately broken one).
    pub fn from_top(top: TopDesign, cache: &ModelCache, vcd: Option<&Path>) -> Result<SimBoard> {
        let lib = cache
            .load_top(&top)
            .map_err(|e| HostError::Sim(e.to_string()))?;
        let model = lib
            .instantiate(vcd)
            .map_err(|e| HostError::Sim(e.to_string()))?;
        Ok(SimBoard { model, top })
    }

    pub fn top(&self) -> &TopDesign {
        &self.top
    }

    /// Clocks simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }

    /// The top's own host memory port (one clock per word), for checking it against the
    /// DMA path.
    pub fn port_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        let word = self.check_idle("port write", card_addr, data.len())?;
        self.model.port_write(word, &words_of(data));
        Ok(())
    }

    pub fn port_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        let word = self.check_idle("port read", card_addr, out.len())?;
        let mut words = vec![0u32; out.len() / 4];
        self.model.port_read(word, &mut words);
        bytes_into(&words, out);
        Ok(())
    }

    fn check_idle(&self, what: &'static str, addr: u64, len: usize) -> Result<usize> {
        let word = check_dma(what, addr, len, self.top.layout.card_bytes() as u64)?;
        if self.model.busy() {
            return Err(HostError::Busy);
        }
        Ok(word)
    }

    pub fn flush_waveform(&mut self) {
        self.model.flush_waveform();
    }
}

impl Transport for SimBoard {
    fn info(&mut self) -> Result<Info> {
        Ok(Info {
            description: format!(
                "sim: Verilator model of tern_top {} ({} engine, {} KiB card memory)",
                self.top.short_hash(),
                self.top.engine.manifest.engine,
                self.top.layout.card_bytes() / 1024
            ),
            hw_id: self.model.reg_read(regmap::HW_ID),
            design_id: self.model.reg_read(regmap::DESIGN_ID),
            card_bytes: u64::from(self.model.reg_read(regmap::CARD_BYTES)),
        })
    }

    fn read32(&mut self, offset: u64) -> Result<u32> {
        Ok(self.model.reg_read(check_register(offset)?))
    }

    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.model.reg_write(check_register(offset)?, value);
        Ok(())
    }

    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        let word = self.check_idle("DMA write", card_addr, data.len())?;
        self.model.dma_write(word, data);
        Ok(())
    }

    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        let word = self.check_idle("DMA read", card_addr, out.len())?;
        self.model.dma_read(word, out);
        Ok(())
    }

    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        let deadline = Instant::now() + timeout;
        // The top has one interrupt line, bit 0.
        loop {
            if mask & 1 != 0 && self.model.irq() {
                // Time passes on a board after the interrupt too: an engine that sends
                // more result beats than the run expects is caught by the top (ERROR bit
                // 3) before the host reads ERROR.
                self.model.idle(DRAIN_CLOCKS);
                return Ok(1);
            }
            if Instant::now() >= deadline {
                return Err(HostError::Timeout {
                    what: format!("interrupt (mask 0x{mask:x})"),
                    timeout,
                });
            }
            if mask & 1 != 0 {
                self.model.run_until_irq(RUN_BATCH);
            } else {
                // Nothing can fire: let the clock run out the timeout.
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
        }
    }

    fn reset(&mut self) -> Result<()> {
        self.model.reset();
        Ok(())
    }
}
