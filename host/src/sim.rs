//! The in-process backend: the Verilator model of the accelerator top on a simulated
//! board (its DDR model behind the AXI4 master), driven directly. `tern serve` puts the
//! same board behind a socket.

use std::path::Path;
use std::time::{Duration, Instant};

use tern_hdl::top::{generate_top_any, regmap, TopDesign};
use tern_hdl::{Config, DesignConfig};
use tern_sim::top_model::{MemoryModel, MemoryTraffic, NoResponse, TopModel};
use tern_sim::verilator::ModelCache;

use crate::error::{HostError, Result};
use crate::transport::{check_dma, check_register, Info, Transport};

/// Clocks simulated between looks at the wall clock while waiting for an interrupt.
const RUN_BATCH: u64 = 1 << 16;
/// Clocks the simulated board runs on after an interrupt before the host looks: longer
/// than anything the engine can still have in flight.
const DRAIN_CLOCKS: u64 = 256;

pub struct SimBoard {
    model: TopModel,
    top: TopDesign,
    memory: MemoryModel,
}

fn no_response(e: NoResponse) -> HostError {
    HostError::Sim(e.to_string())
}

impl SimBoard {
    /// Generate the top for `cfg`, build (or load the cached) Verilator model and power
    /// it up with `memory` behind it (None: a memory of `top.memory_mib` that keeps up
    /// with any bus). `vcd` names a waveform file to record.
    pub fn new(
        cfg: &Config,
        cache: &ModelCache,
        vcd: Option<&Path>,
        memory: Option<MemoryModel>,
    ) -> Result<SimBoard> {
        SimBoard::for_design(&DesignConfig::Matmul(cfg.clone()), cache, vcd, memory)
    }

    /// As [`SimBoard::new`], for either engine's top.
    pub fn for_design(
        cfg: &DesignConfig,
        cache: &ModelCache,
        vcd: Option<&Path>,
        memory: Option<MemoryModel>,
    ) -> Result<SimBoard> {
        let top = generate_top_any(cfg).map_err(|e| HostError::Sim(e.to_string()))?;
        let memory = memory.unwrap_or(MemoryModel::ideal(top.layout.memory_bytes()));
        SimBoard::from_top(top, cache, vcd, memory)
    }

    /// A board carrying a given top (tests use it to carry a deliberately broken one).
    pub fn from_top(
        top: TopDesign,
        cache: &ModelCache,
        vcd: Option<&Path>,
        memory: MemoryModel,
    ) -> Result<SimBoard> {
        // A smaller memory than the top was built for is a board with a hole: bursts
        // into it get DECERR (tests use it); a larger one could never be addressed.
        if memory.bytes > top.layout.memory_bytes() {
            return Err(HostError::Sim(format!(
                "the memory model has {} bytes, more than the {} the top was generated for (top.memory_mib)",
                memory.bytes, top.layout.memory_bytes()
            )));
        }
        let lib = cache
            .load_top(&top)
            .map_err(|e| HostError::Sim(e.to_string()))?;
        let model = lib
            .instantiate(vcd, &memory)
            .map_err(|e| HostError::Sim(e.to_string()))?;
        Ok(SimBoard { model, top, memory })
    }

    pub fn top(&self) -> &TopDesign {
        &self.top
    }

    /// Clocks simulated so far.
    pub fn cycles(&self) -> u64 {
        self.model.cycles()
    }

    /// What the memory model has served so far.
    pub fn traffic(&self) -> MemoryTraffic {
        self.model.traffic()
    }

    fn check_idle(&self, what: &'static str, addr: u64, len: usize) -> Result<()> {
        check_dma(what, addr, len, self.model.memory_bytes())?;
        if self.model.busy() {
            return Err(HostError::Busy);
        }
        Ok(())
    }

    pub fn flush_waveform(&mut self) {
        self.model.flush_waveform();
    }
}

impl Transport for SimBoard {
    fn info(&mut self) -> Result<Info> {
        Ok(Info {
            description: format!(
                "sim: Verilator model of tern_top {} ({} engine, {}-bit AXI4 master, {} MiB DDR model)",
                self.top.short_hash(),
                self.top.engine.manifest.engine,
                self.top.layout.bus_bytes() * 8,
                self.memory.bytes >> 20
            ),
            hw_id: self.model.reg_read(regmap::HW_ID).map_err(no_response)?,
            design_id: self.model.reg_read(regmap::DESIGN_ID).map_err(no_response)?,
            // What the host can reach: the memory model, which may be smaller than the
            // MEMORY_MIB the kernel was built for.
            card_bytes: (u64::from(self.model.reg_read(regmap::MEMORY_MIB).map_err(no_response)?)
                << 20)
                .min(self.memory.bytes),
            memory_base: 0,
        })
    }

    fn read32(&mut self, offset: u64) -> Result<u32> {
        self.model
            .reg_read(check_register(offset)?)
            .map_err(no_response)
    }

    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.model
            .reg_write(check_register(offset)?, value)
            .map_err(no_response)
    }

    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        self.check_idle("DMA write", card_addr, data.len())?;
        self.model.dma_write(card_addr, data);
        Ok(())
    }

    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        self.check_idle("DMA read", card_addr, out.len())?;
        self.model.dma_read(card_addr, out);
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

/// A simulated board shared between a `Device` (which owns its transport) and the code
/// that reads the board's own counters (clocks, DDR traffic) around the device's calls:
/// benchmarks use it.
pub struct SharedBoard(pub std::rc::Rc<std::cell::RefCell<SimBoard>>);

impl Transport for SharedBoard {
    fn info(&mut self) -> Result<Info> {
        self.0.borrow_mut().info()
    }
    fn read32(&mut self, offset: u64) -> Result<u32> {
        self.0.borrow_mut().read32(offset)
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        self.0.borrow_mut().write32(offset, value)
    }
    fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        self.0.borrow_mut().dma_write(addr, data)
    }
    fn dma_read(&mut self, addr: u64, out: &mut [u8]) -> Result<()> {
        self.0.borrow_mut().dma_read(addr, out)
    }
    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        self.0.borrow_mut().wait_irq(mask, timeout)
    }
    fn reset(&mut self) -> Result<()> {
        self.0.borrow_mut().reset()
    }
}
