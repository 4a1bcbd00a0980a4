//! The stripe reader (`tern_hdl::interconnect`) under Verilator on the simulated
//! board's DDR (`cpp/ddr_model.h`, one `DdrPort` per memory port;
//! `cpp/stripe_reader_shim.cpp`): regions read through the ports, their bytes out in
//! order.

use std::path::Path;

use tern_hdl::interconnect::{
    any_port_reader_verilog, stripe_reader_verilog, StripeShape, PORT_BEAT_BYTES,
    STRIPE_READER_FILE, STRIPE_READER_MODULE,
};

use libloading::Library;

use crate::top_model::{DramTiming, MemoryModel};
use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/read_ports.h"),
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
        self.load_reader(shape, false, memory, vcd)
    }

    /// The same for the reader whose bursts go to any free port
    /// (`any_port_reader_verilog`, half its bursts in flight while reading ahead): a run
    /// with a stall seed also makes other units want its ports at random (`port_busy`)
    /// and flips `reading_ahead` at random.
    pub fn load_any_port_reader(
        &self,
        shape: StripeShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<StripeReaderModel, BridgeError> {
        self.load_reader(shape, true, memory, vcd)
    }

    fn load_reader(
        &self,
        shape: StripeShape,
        any_port: bool,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<StripeReaderModel, BridgeError> {
        let verilog = if any_port {
            any_port_reader_verilog(shape, shape.outstanding.div_ceil(2), STRIPE_READER_MODULE)
        } else {
            stripe_reader_verilog(shape)
        }
        .map_err(|message| BridgeError::Load {
            path: STRIPE_READER_FILE.into(),
            message,
        })?;
        let any = if any_port { "#define ANY_PORT 1\n" } else { "" };
        let shim = format!("#define PORTS {}\n{any}{SHIM}", shape.ports);
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

    /// The DRAM's traffic so far: bytes read, read bursts, refreshes, row misses,
    /// bursts across a 4 KiB boundary (which AXI forbids).
    pub fn traffic(&self) -> [u64; 5] {
        let mut t = [0u64; 5];
        // SAFETY: five counters.
        unsafe { (self.traffic)(self.handle, t.as_mut_ptr()) };
        t
    }
}

const READ_PORTS_SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/read_ports.h"),
    include_str!("../../cpp/read_ports_shim.cpp")
);

/// What two readers sharing the ports did (`SharedOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SharedOutcome {
    /// Per reader: from the start to its last region's done; `u64::MAX`: never.
    pub clocks: [u64; 2],
    pub beats: [u64; 2],
    /// Words with `out_last`: one per region.
    pub lasts: [u64; 2],
    pub errors: [u64; 2],
}

type SharedNewFn =
    unsafe extern "C" fn(u64, f64, u32, u32, u32, u64, *const DramTiming) -> *mut std::ffi::c_void;
#[allow(clippy::type_complexity)]
type SharedRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *const *const u64,
    *const *const u32,
    *const u32,
    *const *mut u8,
    *const u64,
    *mut SharedOutcome,
    u64,
    u64,
);

/// Two stripe readers sharing a board's ports through read arbiters
/// (`tern_hdl::interconnect::read_ports_verilog`), on the board's memory.
pub struct ReadPortsModel {
    _lib: Library,
    handle: *mut std::ffi::c_void,
    write: WriteFn,
    run: SharedRunFn,
    free: FreeFn,
}

impl Drop for ReadPortsModel {
    fn drop(&mut self) {
        // SAFETY: `handle` came from the library's `new` and is freed once.
        unsafe { (self.free)(self.handle) }
    }
}

impl ModelCache {
    /// Build (or load) two stripe readers of `shape` sharing its ports (arbiters with
    /// `in_flight` bursts outstanding) on a board whose memory is `memory`.
    pub fn load_read_ports(
        &self,
        shape: StripeShape,
        in_flight: usize,
        memory: &MemoryModel,
    ) -> Result<ReadPortsModel, BridgeError> {
        use tern_hdl::interconnect::{read_ports_verilog, READ_PORTS_FILE, READ_PORTS_MODULE};
        let verilog =
            read_ports_verilog(2, shape, in_flight).map_err(|message| BridgeError::Load {
                path: READ_PORTS_FILE.into(),
                message,
            })?;
        let shim = format!("#define PORTS {}\n{READ_PORTS_SHIM}", shape.ports);
        let (lib, so) = self.build_block(
            (READ_PORTS_MODULE, READ_PORTS_FILE, "tern_read_ports"),
            &verilog,
            &shim,
            (b"tern_read_ports_abi\0", SHIM_ABI),
        )?;
        let load_err = |e: libloading::Error| BridgeError::Load {
            path: so.display().to_string(),
            message: e.to_string(),
        };
        // SAFETY: the types match the shim's `extern "C"` functions of this ABI; the
        // handle is freed once, in `Drop`.
        unsafe {
            let new: SharedNewFn = *lib.get(b"tern_read_ports_new\0").map_err(load_err)?;
            let write: WriteFn = *lib.get(b"tern_read_ports_write\0").map_err(load_err)?;
            let run: SharedRunFn = *lib.get(b"tern_read_ports_run\0").map_err(load_err)?;
            let free: FreeFn = *lib.get(b"tern_read_ports_free\0").map_err(load_err)?;
            let handle = new(
                memory.bytes,
                memory.bytes_per_clock,
                memory.latency_clocks,
                memory.max_reads,
                memory.stall_percent,
                memory.seed,
                &memory.timing,
            );
            Ok(ReadPortsModel {
                _lib: lib,
                handle,
                write,
                run,
                free,
            })
        }
    }
}

impl ReadPortsModel {
    /// Put bytes into the board's memory (no clocks).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: `data` covers the length passed.
        unsafe { (self.write)(self.handle, addr, data.as_ptr(), data.len() as u64) }
    }

    /// Both readers at once, each through its list of (address, beats) regions back to
    /// back: each reader's bytes (its regions concatenated) and the outcome.
    pub fn read(
        &mut self,
        regions: [&[(u64, u32)]; 2],
        stall_seed: u64,
    ) -> ([Vec<u8>; 2], SharedOutcome) {
        let addrs: [Vec<u64>; 2] = regions.map(|r| r.iter().map(|x| x.0).collect());
        let beats: [Vec<u32>; 2] = regions.map(|r| r.iter().map(|x| x.1).collect());
        let total: [u64; 2] = regions.map(|r| r.iter().map(|x| u64::from(x.1)).sum());
        let mut out: [Vec<u8>; 2] = total.map(|b| vec![0u8; b as usize * PORT_BEAT_BYTES]);
        let counts = [regions[0].len() as u32, regions[1].len() as u32];
        let mut o = SharedOutcome::default();
        let limit = 5000 + 40 * (total[0] + total[1]) + 200 * u64::from(counts[0] + counts[1]);
        let a = [addrs[0].as_ptr(), addrs[1].as_ptr()];
        let b = [beats[0].as_ptr(), beats[1].as_ptr()];
        let outs = [out[0].as_mut_ptr(), out[1].as_mut_ptr()];
        // SAFETY: every array covers the lengths passed; `out[r]` holds `total[r]` beats.
        unsafe {
            (self.run)(
                self.handle,
                a.as_ptr(),
                b.as_ptr(),
                counts.as_ptr(),
                outs.as_ptr(),
                total.as_ptr(),
                &mut o,
                limit,
                stall_seed,
            )
        };
        (out, o)
    }
}
