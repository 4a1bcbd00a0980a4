//! The one top's units under Verilator on the simulated board's DDR
//! (`cpp/ddr_model.h`): the LM-head unit (`tern_hdl::units`, `cpp/lm_head_unit_shim.cpp`)
//! runs an `LmHead` command over a memory image.

use std::path::Path;

use libloading::Library;
use tern_hdl::units::{
    lm_head_unit_verilog, LmHeadUnitShape, LM_HEAD_UNIT_FILE, LM_HEAD_UNIT_MODULE,
};

use crate::top_model::{DramTiming, MemoryModel};
use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/lm_head_unit_shim.cpp")
);
const SHIM_ABI: u32 = 1;

/// One `LmHead` command's fields (docs/program.md) with the pass's rows and output.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadUnitCommand {
    pub src: u64,
    pub weights: u64,
    pub mantissas: u64,
    pub output_at: u64,
    pub rows: u32,
    pub width: u32,
    pub pass_rows: u32,
    pub scores: u32,
}

/// What the unit did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadUnitOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0 none, 1 a shape the unit is not built for, 2 an error response.
    pub error: u32,
    pub next: u32,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bursts: u64,
    pub write_bursts: u64,
    pub refreshes: u64,
    pub row_misses: u64,
}

type NewFn = unsafe extern "C" fn(
    *const std::ffi::c_char,
    u64,
    f64,
    u32,
    u32,
    u32,
    u64,
    *const DramTiming,
) -> *mut std::ffi::c_void;
type CopyFn = unsafe extern "C" fn(*mut std::ffi::c_void, u64, *mut u8, u64);
type RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *const LmHeadUnitCommand,
    *mut LmHeadUnitOutcome,
    u64,
);
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);

/// A Verilated LM-head unit on a board's memory.
pub struct LmHeadUnitModel {
    shape: LmHeadUnitShape,
    _lib: Library,
    handle: *mut std::ffi::c_void,
    write: CopyFn,
    read: CopyFn,
    run: RunFn,
    free: FreeFn,
}

impl Drop for LmHeadUnitModel {
    fn drop(&mut self) {
        // SAFETY: `handle` came from the library's `new` and is freed once.
        unsafe { (self.free)(self.handle) }
    }
}

impl ModelCache {
    /// Build (or load) the LM-head unit of `shape` on a board whose memory is `memory`
    /// (each port one `DdrPort`), tracing to `vcd` if given.
    pub fn load_lm_head_unit(
        &self,
        shape: LmHeadUnitShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<LmHeadUnitModel, BridgeError> {
        let verilog = lm_head_unit_verilog(shape).map_err(|message| BridgeError::Load {
            path: LM_HEAD_UNIT_FILE.into(),
            message,
        })?;
        let shim = format!("#define PORTS {}\n{SHIM}", shape.ports);
        let (lib, so) = self.build_block(
            (LM_HEAD_UNIT_MODULE, LM_HEAD_UNIT_FILE, "tern_lm_head_unit"),
            &verilog,
            &shim,
            (b"tern_lm_head_unit_abi\0", SHIM_ABI),
        )?;
        let load_err = |e: libloading::Error| BridgeError::Load {
            path: so.display().to_string(),
            message: e.to_string(),
        };
        // SAFETY: the types match the shim's `extern "C"` functions of this ABI; the
        // handle is freed once, in `Drop`.
        unsafe {
            let new: NewFn = *lib.get(b"tern_lm_head_unit_new\0").map_err(load_err)?;
            let write: CopyFn = *lib.get(b"tern_lm_head_unit_write\0").map_err(load_err)?;
            let read: CopyFn = *lib.get(b"tern_lm_head_unit_read\0").map_err(load_err)?;
            let run: RunFn = *lib.get(b"tern_lm_head_unit_run\0").map_err(load_err)?;
            let free: FreeFn = *lib.get(b"tern_lm_head_unit_free\0").map_err(load_err)?;
            let path = crate::verilator::waveform_path(&so, vcd)?;
            let handle = new(
                path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                memory.bytes,
                memory.bytes_per_clock,
                memory.latency_clocks,
                memory.max_reads,
                memory.stall_percent,
                memory.seed,
                &memory.timing,
            );
            Ok(LmHeadUnitModel {
                shape,
                _lib: lib,
                handle,
                write,
                read,
                run,
                free,
            })
        }
    }
}

impl LmHeadUnitModel {
    pub fn shape(&self) -> LmHeadUnitShape {
        self.shape
    }

    /// Put bytes into the board's memory (no clocks).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: `data` covers the length passed; the shim only reads it.
        unsafe {
            (self.write)(
                self.handle,
                addr,
                data.as_ptr().cast_mut(),
                data.len() as u64,
            )
        }
    }

    /// Take `n` bytes out of the board's memory (no clocks).
    pub fn read(&mut self, addr: u64, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        // SAFETY: `out` holds n bytes.
        unsafe { (self.read)(self.handle, addr, out.as_mut_ptr(), n as u64) };
        out
    }

    /// Run one command; `limit` bounds the clocks.
    pub fn run(&mut self, cmd: &LmHeadUnitCommand, limit: u64) -> LmHeadUnitOutcome {
        let mut o = LmHeadUnitOutcome::default();
        // SAFETY: one command in, one outcome out.
        unsafe { (self.run)(self.handle, cmd, &mut o, limit) };
        o
    }
}
