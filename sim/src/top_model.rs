//! The Verilator model of the accelerator top (`tern_top`) on a simulated board: a host
//! on its AXI4-Lite port and a DDR model on its AXI4 master (`cpp/top_shim.cpp`). What
//! `tern serve` runs and what the in-process host backend drives. Built and cached like
//! engine models.

use libloading::Library;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tern_hdl::top::{write_top, TopDesign, TOP_MODULE};

use crate::verilator::{BridgeError, ModelCache};

/// The DDR model, then the top's shim around it.
const SHIM: &str = concat!(
    include_str!("../cpp/ddr_model.h"),
    include_str!("../cpp/top_shim.cpp")
);
const SHIM_ABI: u32 = 6;

type NewFn = unsafe extern "C" fn(
    *const std::ffi::c_char,
    u64,
    f64,
    u32,
    u32,
    u32,
    u64,
    *const DramTiming,
) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type ResetFn = unsafe extern "C" fn(*mut c_void, u32);
type RegWriteFn = unsafe extern "C" fn(*mut c_void, u32, u32, u32) -> u32;
type RegReadFn = unsafe extern "C" fn(*mut c_void, u32, *mut u32, u32) -> u32;
type DmaWriteFn = unsafe extern "C" fn(*mut c_void, u64, *const u8, u64);
type DmaReadFn = unsafe extern "C" fn(*mut c_void, u64, *mut u8, u64);
type TrafficFn = unsafe extern "C" fn(*mut c_void, *mut u64);
type RunFn = unsafe extern "C" fn(*mut c_void, u64) -> u64;
type IdleFn = unsafe extern "C" fn(*mut c_void, u64);
type GetFn = unsafe extern "C" fn(*mut c_void) -> u32;
type CyclesFn = unsafe extern "C" fn(*mut c_void) -> u64;

#[derive(Clone, Copy)]
struct Api {
    new: NewFn,
    free: FreeFn,
    reset: ResetFn,
    reg_write: RegWriteFn,
    reg_read: RegReadFn,
    dma_write: DmaWriteFn,
    dma_read: DmaReadFn,
    run: RunFn,
    idle: IdleFn,
    irq: GetFn,
    busy: GetFn,
    cycles: CyclesFn,
    traffic: TrafficFn,
    flush: FreeFn,
}

/// The simulated board's memory behind the top's AXI4 master (see `cpp/top_shim.cpp`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryModel {
    /// Size in bytes; bursts beyond it get DECERR.
    pub bytes: u64,
    /// DDR bandwidth at the kernel clock, shared by reads and writes.
    pub bytes_per_clock: f64,
    /// Clocks from a burst's address to its first data beat (or its write response).
    pub latency_clocks: u32,
    /// Read bursts the memory accepts before it has finished them.
    pub max_reads: u32,
    /// Percent of clocks each ready/valid the model drives is withheld (0: none).
    pub stall_percent: u32,
    /// Seed of the stalls.
    pub seed: u64,
    /// The DRAM's timing and the board's ports (all zero: none).
    pub timing: DramTiming,
}

/// What keeps the memory below `bytes_per_clock` (docs/top.md), in kernel clocks and in
/// bytes of data-bus time at that peak rate. Zero turns a part off. The layout is the
/// shim's `DramTiming`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DramTiming {
    /// Clocks from one refresh to the next (tREFI); 0: no refresh.
    pub refresh_interval_clocks: f64,
    /// Data-bus time a refresh takes (tRFC).
    pub refresh_bytes: f64,
    /// Bytes of a row; rows interleave over `banks`. 0: no rows.
    pub row_bytes: u64,
    pub banks: u64,
    /// Data-bus time of a row miss on the bank the previous burst used (tRP + tRCD).
    pub row_miss_bytes: f64,
    pub read_to_write_bytes: f64,
    pub write_to_read_bytes: f64,
    /// Bytes per clock the board's memory ports carry in each direction; 0: no limit.
    pub port_bytes_per_clock: f64,
}

impl MemoryModel {
    /// A memory of `bytes` that keeps up with any bus (for functional tests).
    pub fn ideal(bytes: u64) -> MemoryModel {
        MemoryModel {
            bytes,
            bytes_per_clock: 1e9,
            latency_clocks: 1,
            max_reads: 16,
            stall_percent: 0,
            seed: 1,
            timing: DramTiming::default(),
        }
    }
}

/// Bytes and bursts the memory served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryTraffic {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bursts: u64,
    pub write_bursts: u64,
    /// Refreshes, row misses and bus turnarounds the DRAM took meanwhile.
    pub refreshes: u64,
    pub row_misses: u64,
    pub turnarounds: u64,
}

/// The control port did not answer a register access in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the AXI4-Lite control port did not answer the access at 0x{offset:02x} within {clocks} clocks"
)]
pub struct NoResponse {
    pub offset: u32,
    pub clocks: u32,
}

/// Clocks a register access may take.
const ACCESS_CLOCKS: u32 = 64;

/// A loaded top model library.
#[derive(Clone)]
pub struct TopLibrary {
    _lib: Arc<Library>,
    api: Api,
    pub path: PathBuf,
}

impl ModelCache {
    /// The directory a top's model lives in (the shim's ABI is part of the key: bump it
    /// whenever `cpp/top_shim.cpp` changes).
    pub fn top_dir(&self, top: &TopDesign) -> PathBuf {
        self.root
            .join("models")
            .join(format!("top-{}-abi{SHIM_ABI}", top.short_hash()))
    }

    /// Load the top's model, building it first if it is not cached.
    pub fn load_top(&self, top: &TopDesign) -> Result<TopLibrary, BridgeError> {
        let dir = self.top_dir(top);
        let so = dir.join("model.so");
        if !so.exists() {
            let [core, wrapper, top_file] = TopDesign::sources();
            self.verilate(
                &format!("top-{}", top.short_hash()),
                &dir,
                &|src| write_top(top, src).map(|_| ()),
                TOP_MODULE,
                &[core, wrapper, top_file],
                SHIM,
            )?;
        }
        // A second board of the same design in this process gets a private copy of the
        // library: two instances of one Verilator library (shared statics) deadlock
        // when one is freed (Verilator 5.006, seen with two attention tops).
        static LOADED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
        static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let first = {
            let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
            let first = !loaded.contains(&so);
            if first {
                loaded.push(so.clone());
            }
            first
        };
        if first {
            return TopLibrary::open(&so);
        }
        let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = dir.join(format!("model-copy-{}-{n}.so", std::process::id()));
        std::fs::copy(&so, &copy).map_err(|e| BridgeError::Load {
            path: copy.display().to_string(),
            message: format!("copying {}: {e}", so.display()),
        })?;
        let lib = TopLibrary::open(&copy);
        // The mapping stays after the file is gone.
        let _ = std::fs::remove_file(&copy);
        lib
    }
}

impl TopLibrary {
    fn open(path: &Path) -> Result<TopLibrary, BridgeError> {
        let load_err = |message: String| BridgeError::Load {
            path: path.display().to_string(),
            message,
        };
        let lib = crate::verilator::open_shim_library(path, b"tern_top_abi\0", SHIM_ABI)?;
        // SAFETY: the symbol types match the shim's `extern "C"` declarations, whose ABI
        // version was checked.
        unsafe {
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| load_err(e.to_string()))?
                };
            }
            let api = Api {
                new: sym!("tern_top_new"),
                free: sym!("tern_top_free"),
                reset: sym!("tern_top_reset"),
                reg_write: sym!("tern_top_reg_write"),
                reg_read: sym!("tern_top_reg_read"),
                dma_write: sym!("tern_top_dma_write"),
                dma_read: sym!("tern_top_dma_read"),
                run: sym!("tern_top_run"),
                idle: sym!("tern_top_idle"),
                irq: sym!("tern_top_irq"),
                busy: sym!("tern_top_busy"),
                cycles: sym!("tern_top_cycles"),
                traffic: sym!("tern_top_traffic"),
                flush: sym!("tern_top_flush"),
            };
            Ok(TopLibrary {
                _lib: Arc::new(lib),
                api,
                path: path.to_path_buf(),
            })
        }
    }

    /// A fresh top on a board with `memory`, held in reset for a few clocks; `vcd` names
    /// a waveform to write.
    pub fn instantiate(
        &self,
        vcd: Option<&Path>,
        memory: &MemoryModel,
    ) -> Result<TopModel, BridgeError> {
        let path = crate::verilator::waveform_path(&self.path, vcd)?;
        // SAFETY: `new` returns an owned model freed in `Drop`; the path outlives the call.
        let handle = unsafe {
            (self.api.new)(
                path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                memory.bytes,
                memory.bytes_per_clock,
                memory.latency_clocks,
                memory.max_reads,
                memory.stall_percent,
                memory.seed,
                &memory.timing,
            )
        };
        let mut model = TopModel {
            lib: self.clone(),
            handle,
            memory_bytes: memory.bytes,
        };
        model.reset();
        Ok(model)
    }
}

/// One accelerator top and its memory. DMA ranges must lie inside the memory: the
/// methods panic on a range outside it, so callers (the host's sim backend) check first
/// and return a typed error. Not `Send`: a Verilator model stays on its thread.
pub struct TopModel {
    lib: TopLibrary,
    handle: *mut c_void,
    memory_bytes: u64,
}

/// Clocks the reset is held for.
pub const RESET_CLOCKS: u32 = 4;

impl TopModel {
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    fn check(&self, addr: u64, n: usize) {
        assert!(
            addr.checked_add(n as u64)
                .is_some_and(|end| end <= self.memory_bytes),
            "memory access [0x{addr:x}, +{n}) beyond {} bytes",
            self.memory_bytes
        );
    }

    /// Reset the kernel; the memory keeps its contents.
    pub fn reset(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.reset)(self.handle, RESET_CLOCKS) }
    }

    /// One AXI4-Lite register write (a few clocks).
    pub fn reg_write(&mut self, offset: u32, value: u32) -> Result<(), NoResponse> {
        // SAFETY: valid handle.
        match unsafe { (self.lib.api.reg_write)(self.handle, offset, value, ACCESS_CLOCKS) } {
            0 => Ok(()),
            _ => Err(NoResponse {
                offset,
                clocks: ACCESS_CLOCKS,
            }),
        }
    }

    /// One AXI4-Lite register read (a few clocks; reading CONTROL clears ap_done).
    pub fn reg_read(&mut self, offset: u32) -> Result<u32, NoResponse> {
        let mut value = 0u32;
        // SAFETY: valid handle; the shim writes one u32.
        match unsafe { (self.lib.api.reg_read)(self.handle, offset, &mut value, ACCESS_CLOCKS) } {
            0 => Ok(value),
            _ => Err(NoResponse {
                offset,
                clocks: ACCESS_CLOCKS,
            }),
        }
    }

    /// Write bytes into the memory model directly, as the board shell's DMA engine
    /// does (no clocks).
    pub fn dma_write(&mut self, addr: u64, data: &[u8]) {
        self.check(addr, data.len());
        // SAFETY: the range was checked; the shim reads `data.len()` bytes of `data`.
        unsafe { (self.lib.api.dma_write)(self.handle, addr, data.as_ptr(), data.len() as u64) }
    }

    /// Read the memory model directly (no clocks).
    pub fn dma_read(&mut self, addr: u64, out: &mut [u8]) {
        self.check(addr, out.len());
        // SAFETY: the range was checked; the shim writes `out.len()` bytes of `out`.
        unsafe { (self.lib.api.dma_read)(self.handle, addr, out.as_mut_ptr(), out.len() as u64) }
    }

    /// Bytes and bursts the memory has served since the model was made.
    pub fn traffic(&self) -> MemoryTraffic {
        let mut out = [0u64; 7];
        // SAFETY: valid handle; the shim writes seven u64.
        unsafe { (self.lib.api.traffic)(self.handle, out.as_mut_ptr()) };
        MemoryTraffic {
            bytes_read: out[0],
            bytes_written: out[1],
            read_bursts: out[2],
            write_bursts: out[3],
            refreshes: out[4],
            row_misses: out[5],
            turnarounds: out[6],
        }
    }

    /// Clock until the interrupt line is high or `max_clocks` have passed; clocks run.
    pub fn run_until_irq(&mut self, max_clocks: u64) -> u64 {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.run)(self.handle, max_clocks) }
    }

    /// Clock `clocks` times with the bus idle, whatever the interrupt does.
    pub fn idle(&mut self, clocks: u64) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.idle)(self.handle, clocks) }
    }

    pub fn irq(&self) -> bool {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.irq)(self.handle) != 0 }
    }

    /// A run is in progress (the controller owns card memory). Read without a bus
    /// access, so it has no side effects.
    pub fn busy(&self) -> bool {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.busy)(self.handle) != 0 }
    }

    /// Clocks since the model was created.
    pub fn cycles(&self) -> u64 {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.cycles)(self.handle) }
    }

    /// Flush the waveform file, if one is being written.
    pub fn flush_waveform(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.flush)(self.handle) }
    }
}

impl Drop for TopModel {
    fn drop(&mut self) {
        // SAFETY: the handle came from `new` and is freed once; the library outlives it.
        unsafe { (self.lib.api.free)(self.handle) }
    }
}
