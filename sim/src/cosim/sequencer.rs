//! The sequencer's RTL (`tern_hdl::sequencer`) under Verilator (`cpp/sequencer_shim.cpp`):
//! one pass over a memory image, with an AXI4 slave over the image and the units' side
//! of its dispatch port played by the testbench.

use std::path::Path;

use tern_hdl::program::COMMAND_BYTES;
use tern_hdl::sequencer::{sequencer_verilog, SequencerShape, SEQUENCER_FILE, SEQUENCER_MODULE};

use super::vector::BlockLib;
use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = include_str!("../../cpp/sequencer_shim.cpp");
const SHIM_ABI: u32 = 1;

/// What one pass did (`SequencerOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SequencerOutcome {
    /// From the start to idle; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0: the pass ended with a token (`tern_hdl::program::error_code`).
    pub error_code: u32,
    /// The command the error names; `u32::MAX`: none.
    pub error_command: u32,
    pub next_token: u32,
    pub commands_run: u32,
    /// Commands handed to the units.
    pub dispatched: u32,
    /// Write beats that reached beyond memory.
    pub bad_writes: u32,
}

/// A command as the units received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub record: [u8; COMMAND_BYTES],
    pub rows: u32,
    pub position: u32,
}

/// How the testbench's units answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Units {
    /// The token every LM head chooses.
    pub lm_next: u32,
    /// The command (by index) whose unit reports `fail_code`, if any.
    pub fail: Option<(u32, u8)>,
}

#[allow(clippy::type_complexity)]
type RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *mut u8,
    u64,
    u64,
    u32,
    *const u32,
    u32,
    u32,
    u32,
    u32,
    *mut u8,
    *mut u32,
    u32,
    *mut SequencerOutcome,
    u64,
    u64,
);

/// A Verilated sequencer of one shape.
pub struct SequencerModel {
    shape: SequencerShape,
    block: BlockLib,
    run: RunFn,
}

/// One pass's arguments.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub program_at: u64,
    pub position: u32,
    pub ids: &'a [u32],
}

impl ModelCache {
    /// Build (or load from the cache) the sequencer of `shape`.
    pub fn load_sequencer(&self, shape: &SequencerShape) -> Result<SequencerModel, BridgeError> {
        let verilog = sequencer_verilog(shape).map_err(|message| BridgeError::Load {
            path: SEQUENCER_FILE.into(),
            message,
        })?;
        let (block, run) = self.load_block(
            (SEQUENCER_MODULE, SEQUENCER_FILE, "tern_sequencer"),
            &verilog,
            SHIM,
            (b"tern_sequencer_abi\0", SHIM_ABI),
        )?;
        Ok(SequencerModel {
            shape: shape.clone(),
            block,
            run,
        })
    }
}

impl SequencerModel {
    pub fn shape(&self) -> &SequencerShape {
        &self.shape
    }

    /// Run one pass over `memory` (written in place): the outcome and the commands the
    /// units received, in order. `limit` bounds the clocks.
    pub fn run(
        &self,
        memory: &mut [u8],
        pass: Pass,
        units: Units,
        (limit, stall_seed): (u64, u64),
        vcd: Option<&Path>,
    ) -> Result<(SequencerOutcome, Vec<Dispatched>), BridgeError> {
        const ROOM: usize = 4096;
        let mut records = vec![0u8; ROOM * COMMAND_BYTES];
        let mut rows_pos = vec![0u32; 2 * ROOM];
        let mut out = SequencerOutcome::default();
        let (fail_at, fail_code) = units.fail.map_or((u32::MAX, 0), |(i, c)| (i, c));
        // SAFETY: memory, ids, records and rows_pos cover the lengths passed; `out` is one
        // outcome.
        self.block.with_instance(vcd, |p| unsafe {
            (self.run)(
                p,
                memory.as_mut_ptr(),
                memory.len() as u64,
                pass.program_at,
                pass.position,
                pass.ids.as_ptr(),
                pass.ids.len() as u32,
                units.lm_next,
                fail_at,
                u32::from(fail_code),
                records.as_mut_ptr(),
                rows_pos.as_mut_ptr(),
                ROOM as u32,
                &mut out,
                limit,
                stall_seed,
            )
        })?;
        let logged = (out.dispatched as usize).min(ROOM);
        let dispatched = (0..logged)
            .map(|i| Dispatched {
                record: records[i * COMMAND_BYTES..(i + 1) * COMMAND_BYTES]
                    .try_into()
                    .expect("64 bytes"),
                rows: rows_pos[2 * i],
                position: rows_pos[2 * i + 1],
            })
            .collect();
        Ok((out, dispatched))
    }
}
