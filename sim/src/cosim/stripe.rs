//! The stripe reader (`tern_hdl::interconnect`) under Verilator on the simulated
//! board's DDR (`cpp/ddr_model.h`, one `DdrPort` per memory port;
//! `cpp/stripe_reader_shim.cpp`): regions read through the ports, their bytes out in
//! order.

use std::path::Path;

use tern_hdl::interconnect::{
    stripe_reader_verilog, StripeShape, PORT_BEAT_BYTES, STRIPE_READER_FILE, STRIPE_READER_MODULE,
};

use libloading::Library;

use crate::top_model::{DramTiming, MemoryModel};
use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/stripe_reader_shim.cpp")
);
const SHIM_ABI: u32 = 1;

/// What one region's read did (`StripeOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StripeOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// Beats out, including any after done.
    pub beats: u64,
    pub words: u64,
    /// Words out with `out_last`, and which word (from 0) carried the last one.
    pub lasts: u64,
    pub last_at: u64,
    /// The error bit at done.
    pub error: u32,
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
type WriteFn = unsafe extern "C" fn(*mut std::ffi::c_void, u64, *const u8, u64);
type RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u64,
    u32,
    *mut u8,
    u64,
    *mut StripeOutcome,
    u64,
    u64,
);
type TrafficFn = unsafe extern "C" fn(*mut std::ffi::c_void, *mut u64);
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);

/// A Verilated stripe reader of one shape, with a board's memory around it.
pub struct StripeReaderModel {
    shape: StripeShape,
    _lib: Library,
    handle: *mut std::ffi::c_void,
    write: WriteFn,
    run: RunFn,
    traffic: TrafficFn,
    free: FreeFn,
}

impl Drop for StripeReaderModel {
    fn drop(&mut self) {
        // SAFETY: `handle` came from the library's `new` and is freed once.
        unsafe { (self.free)(self.handle) }
    }
}

impl ModelCache {
    /// Build (or load from the cache) the stripe reader of `shape` and put it on a
    /// board whose memory is `memory` (each of its ports one `DdrPort`; `timing`'s port
    /// rate is each port's), tracing to `vcd` if given.
    pub fn load_stripe_reader(
        &self,
        shape: StripeShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<StripeReaderModel, BridgeError> {
        let verilog = stripe_reader_verilog(shape).map_err(|message| BridgeError::Load {
            path: STRIPE_READER_FILE.into(),
            message,
        })?;
        let shim = format!("#define PORTS {}\n{SHIM}", shape.ports);
        let (lib, so) = self.build_block(
            (
                STRIPE_READER_MODULE,
                STRIPE_READER_FILE,
                "tern_stripe_reader",
            ),
            &verilog,
            &shim,
            (b"tern_stripe_reader_abi\0", SHIM_ABI),
        )?;
        let load_err = |e: libloading::Error| BridgeError::Load {
            path: so.display().to_string(),
            message: e.to_string(),
        };
        // SAFETY: the types match the shim's `extern "C"` functions of this ABI; the
        // handle is freed once, in `Drop`.
        unsafe {
            let new: NewFn = *lib.get(b"tern_stripe_reader_new\0").map_err(load_err)?;
            let write: WriteFn = *lib.get(b"tern_stripe_reader_write\0").map_err(load_err)?;
            let run: RunFn = *lib.get(b"tern_stripe_reader_run\0").map_err(load_err)?;
            let traffic: TrafficFn = *lib.get(b"tern_stripe_reader_traffic\0").map_err(load_err)?;
            let free: FreeFn = *lib.get(b"tern_stripe_reader_free\0").map_err(load_err)?;
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
            Ok(StripeReaderModel {
                shape,
                _lib: lib,
                handle,
                write,
                run,
                traffic,
                free,
            })
        }
    }
}

impl StripeReaderModel {
    pub fn shape(&self) -> StripeShape {
        self.shape
    }

    /// Put bytes into the board's memory (no clocks: the host's copy).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: `data` covers the length passed.
        unsafe { (self.write)(self.handle, addr, data.as_ptr(), data.len() as u64) }
    }

    /// Read `beats` beats at `addr` (a multiple of 16): the bytes that came out (room
    /// for the region; more beats are counted, not kept) and the outcome.
    pub fn read(&mut self, addr: u64, beats: u32, stall_seed: u64) -> (Vec<u8>, StripeOutcome) {
        let mut out = vec![0u8; beats as usize * PORT_BEAT_BYTES];
        let mut o = StripeOutcome::default();
        let limit = 2000 + 40 * u64::from(beats);
        // SAFETY: `out` holds `beats` beats, `o` one outcome.
        unsafe {
            (self.run)(
                self.handle,
                addr,
                beats,
                out.as_mut_ptr(),
                u64::from(beats),
                &mut o,
                limit,
                stall_seed,
            )
        };
        (out, o)
    }

    /// The DRAM's traffic so far: bytes read, read bursts, refreshes, row misses.
    pub fn traffic(&self) -> [u64; 4] {
        let mut t = [0u64; 4];
        // SAFETY: four counters.
        unsafe { (self.traffic)(self.handle, t.as_mut_ptr()) };
        t
    }
}
