//! The one top's host driver (docs/accelerator.md, "Shell"; docs/program.md): the program
//! is written into the board's memory once, then each pass is one start through the
//! AXI4-Lite registers and ends at the interrupt with the next token in `NEXT_TOKEN`.
//! [`OneTop`] runs over any [`Transport`], so the code a host runs against the simulated
//! board in-process ([`ShellBoard`], `sim:`), against `tern serve` (`unix:`, `tcp:`) and
//! against a card is the same.

use std::time::Duration;

use serde::Serialize;
use tern_hdl::accelerator::shell::{
    ATTENTION_CLOCKS, CLEAR, CLOCKS, CLOCKS_HI, COMMANDS_RUN, CONTROL, DESIGN_ID, ERROR_CODE,
    ERROR_COMMAND, GIE, HW_ID, HW_ID_VALUE, IER, ISR, LM_HEAD_CLOCKS, MATMUL_CLOCKS, MEMORY_BASE,
    MEMORY_BASE_HI, NEXT_TOKEN, POSITION, PROGRAM, PROGRAM_HI, STEP, STEP_POSITION_BITS,
    STEP_TOKEN_BITS, TOKEN, VECTOR_CLOCKS,
};

use crate::error::{HostError, Result};
use crate::transport::{Info, Transport};

/// What one pass did, as the accelerator's registers tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OneTopPass {
    /// The greedy next token (when `error_code` is 0).
    pub next_token: u32,
    /// 0: the pass ended with a token; else the sequencer's code (docs/program.md).
    pub error_code: u32,
    pub error_command: u32,
    pub commands_run: u32,
    /// The pass's clocks, and each unit's while it ran (the core's counters).
    pub clocks: u64,
    pub matmul_clocks: u64,
    pub attention_clocks: u64,
    pub vector_clocks: u64,
    pub lm_head_clocks: u64,
    /// What the host did for the pass: starts of the accelerator and register accesses
    /// (the start, the wait's acknowledgement, the result and the counters read back).
    pub kernel_starts: u32,
    pub register_accesses: u32,
}

/// The driver: a transport to a board carrying the one top.
pub struct OneTop<T: Transport> {
    transport: T,
    info: Info,
    /// The pass's register accesses and starts so far.
    accesses: u32,
    starts: u32,
}

impl<T: Transport> OneTop<T> {
    /// Open the board behind `transport`: it must be a tern accelerator (`HW_ID`), and,
    /// when `design` is given, carry that design (`DESIGN_ID`), and be idle: a pass a
    /// previous host started still owns the memory ([`HostError::Busy`]; open again once
    /// it ends). Its memory is placed at the transport's [`Transport::memory_base`], and
    /// an interrupt a previous host left raised is acknowledged, so the first wait is
    /// for this host's pass.
    pub fn open(mut transport: T, design: Option<u32>) -> Result<OneTop<T>> {
        let info = transport.info()?;
        let hw = transport.read32(u64::from(HW_ID))?;
        if hw != HW_ID_VALUE {
            return Err(HostError::NotTern(hw));
        }
        let board = transport.read32(u64::from(DESIGN_ID))?;
        if let Some(config) = design.filter(|&d| d != board) {
            return Err(HostError::WrongDesign { board, config });
        }
        // CONTROL bit 2: ap_idle. Reading it also clears a stale ap_done.
        if transport.read32(u64::from(CONTROL))? & 1 << 2 == 0 {
            return Err(HostError::Busy);
        }
        let mut top = OneTop {
            transport,
            info,
            accesses: 0,
            starts: 0,
        };
        top.set_memory_base(top.transport.memory_base())?;
        if top.transport.read32(u64::from(ISR))? & 1 != 0 {
            top.transport.write32(u64::from(ISR), 1)?;
        }
        Ok(top)
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Tell the accelerator where its memory starts on the bus (`MEMORY_BASE`); `open`
    /// gives it the transport's base (a Kria board's buffer's physical address, 0 for a
    /// card's own memory). Card addresses, the program's and the driver's, stay offsets
    /// from it.
    pub fn set_memory_base(&mut self, base: u64) -> Result<()> {
        self.transport
            .write32(u64::from(MEMORY_BASE), base as u32)?;
        self.transport
            .write32(u64::from(MEMORY_BASE_HI), (base >> 32) as u32)
    }

    /// Write bytes into the board's memory (the program, once; docs/program.md).
    pub fn write_memory(&mut self, at: u64, bytes: &[u8]) -> Result<()> {
        self.transport.dma_write(at, bytes)
    }

    /// Read `len` bytes of the board's memory.
    pub fn read_memory(&mut self, at: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.transport.dma_read(at, &mut out)?;
        Ok(out)
    }

    fn write(&mut self, reg: u32, value: u32) -> Result<()> {
        self.accesses += 1;
        self.transport.write32(u64::from(reg), value)
    }

    fn read(&mut self, reg: u32) -> Result<u32> {
        self.accesses += 1;
        self.transport.read32(u64::from(reg))
    }

    /// One pass of the program at `program_at`: `ids` at positions `position..`. A
    /// decoded token (one id, both fitting `STEP`'s fields) is one write to `STEP`; a
    /// prompt is its ids written to `TOKEN`, the position, then `ap_start`. Waits at
    /// most `timeout` for the interrupt.
    pub fn pass(
        &mut self,
        program_at: u64,
        position: u32,
        ids: &[u32],
        timeout: Duration,
    ) -> Result<OneTopPass> {
        if ids.is_empty() {
            return Err(HostError::Shape(
                "a pass needs at least one token id".into(),
            ));
        }
        (self.accesses, self.starts) = (0, 0);
        self.write(GIE, 1)?;
        self.write(IER, 1)?;
        self.write(PROGRAM, program_at as u32)?;
        self.write(PROGRAM_HI, (program_at >> 32) as u32)?;
        let step =
            ids.len() == 1 && ids[0] < 1 << STEP_TOKEN_BITS && position < 1 << STEP_POSITION_BITS;
        if step {
            self.write(STEP, ids[0] | position << STEP_TOKEN_BITS)?;
        } else {
            self.write(CLEAR, 0)?;
            for &id in ids {
                self.write(TOKEN, id)?;
            }
            self.write(POSITION, position)?;
            self.write(CONTROL, 1)?;
        }
        self.starts += 1;
        self.transport.wait_irq(1, timeout)?;
        let mut o = OneTopPass {
            next_token: self.read(NEXT_TOKEN)?,
            error_code: self.read(ERROR_CODE)?,
            error_command: self.read(ERROR_COMMAND)?,
            commands_run: self.read(COMMANDS_RUN)?,
            clocks: u64::from(self.read(CLOCKS)?) | u64::from(self.read(CLOCKS_HI)?) << 32,
            matmul_clocks: u64::from(self.read(MATMUL_CLOCKS)?),
            attention_clocks: u64::from(self.read(ATTENTION_CLOCKS)?),
            vector_clocks: u64::from(self.read(VECTOR_CLOCKS)?),
            lm_head_clocks: u64::from(self.read(LM_HEAD_CLOCKS)?),
            kernel_starts: 0,
            register_accesses: 0,
        };
        // Acknowledge: the interrupt's status toggled off, ap_done cleared by the read.
        self.write(ISR, 1)?;
        self.read(CONTROL)?;
        (o.register_accesses, o.kernel_starts) = (self.accesses, self.starts);
        Ok(o)
    }
}

#[cfg(feature = "sim")]
pub use sim_board::ShellBoard;

#[cfg(feature = "sim")]
mod sim_board {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use tern_hdl::accelerator::AcceleratorShape;
    use tern_sim::cosim::units::{AcceleratorShellModel, DdrCounts};
    use tern_sim::top_model::MemoryModel;
    use tern_sim::verilator::ModelCache;

    use crate::error::{HostError, Result};
    use crate::transport::{check_dma, check_register, Info, Transport};

    /// Clocks simulated between looks at the wall clock while waiting for the interrupt.
    const RUN_BATCH: u64 = 1 << 20;

    /// The one top's shell (`tern_accelerator`) under Verilator on the simulated board's
    /// memory: what `sim:` and `tern serve --one-top` carry.
    pub struct ShellBoard {
        model: AcceleratorShellModel,
        /// Read once when made: asking again costs no clocks, so a board's history (and
        /// its DRAM's refresh phase) does not depend on who asked. Its `memory_base` is
        /// where the memory was placed.
        info: Info,
    }

    impl ShellBoard {
        /// Build (or load the cached) Verilator model of the one top of `shape` on a board
        /// whose memory is `memory`, tracing to `vcd` if given.
        pub fn new(
            shape: &AcceleratorShape,
            memory: &MemoryModel,
            cache: &ModelCache,
            vcd: Option<&Path>,
            description: String,
        ) -> Result<ShellBoard> {
            use tern_hdl::accelerator::shell::{DESIGN_ID, HW_ID};
            let mut model = cache
                .load_accelerator_shell(shape, memory, vcd)
                .map_err(|e| HostError::Sim(format!("the one top's Verilator model: {e}")))?;
            let info = Info {
                description,
                hw_id: model.read32(HW_ID).data,
                design_id: model.read32(DESIGN_ID).data,
                card_bytes: memory.bytes,
                memory_base: 0,
            };
            Ok(ShellBoard { model, info })
        }

        /// Put the board's memory at `base` on the accelerator's bus, as a host's buffer
        /// sits at a physical address; the transport's card addresses stay 0-based, and
        /// [`Transport::memory_base`] tells the driver the base.
        pub fn place_memory_at(&mut self, base: u64) {
            self.model.set_memory_window(base);
            self.info.memory_base = base;
        }

        /// What the DRAM did since the board was made.
        pub fn ddr(&mut self) -> DdrCounts {
            self.model.peek().ddr
        }

        /// The board's clocks since it was made.
        pub fn cycles(&mut self) -> u64 {
            self.model.peek().cycles
        }
    }

    impl Transport for ShellBoard {
        fn info(&mut self) -> Result<Info> {
            Ok(self.info.clone())
        }

        fn read32(&mut self, offset: u64) -> Result<u32> {
            let at = check_register(offset)?;
            Ok(self.model.read32(at).data)
        }

        fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
            let at = check_register(offset)?;
            self.model.write32(at, value);
            Ok(())
        }

        fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
            check_dma("DMA write", card_addr, data.len(), self.info.card_bytes)?;
            self.model.write(card_addr, data);
            Ok(())
        }

        fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
            check_dma("DMA read", card_addr, out.len(), self.info.card_bytes)?;
            out.copy_from_slice(&self.model.read(card_addr, out.len()));
            Ok(())
        }

        fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
            let deadline = Instant::now() + timeout;
            // The shell has one interrupt line, bit 0.
            loop {
                if mask & 1 != 0 && self.model.wait_interrupt(RUN_BATCH).clocks != u64::MAX {
                    return Ok(1);
                }
                if Instant::now() >= deadline {
                    return Err(HostError::Timeout {
                        what: format!("interrupt (mask 0x{mask:x})"),
                        timeout,
                    });
                }
                if mask & 1 == 0 {
                    // Nothing can fire: let the clock run out the timeout.
                    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                }
            }
        }

        fn reset(&mut self) -> Result<()> {
            self.model.reset();
            Ok(())
        }

        fn memory_base(&self) -> u64 {
            self.info.memory_base
        }
    }
}
