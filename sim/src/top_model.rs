//! The Verilator model of the accelerator top (`tern_top`): what `tern serve` runs and
//! what the in-process host backend drives. Built and cached like engine models, from
//! its own C shim (`cpp/top_shim.cpp`).

use libloading::Library;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tern_hdl::top::{write_top, TopDesign, TOP_MODULE};

use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = include_str!("../cpp/top_shim.cpp");
const SHIM_ABI: u32 = 3;

type NewFn = unsafe extern "C" fn(*const std::ffi::c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type ResetFn = unsafe extern "C" fn(*mut c_void, u32);
type RegWriteFn = unsafe extern "C" fn(*mut c_void, u32, u32);
type RegReadFn = unsafe extern "C" fn(*mut c_void, u32) -> u32;
type MemWriteFn = unsafe extern "C" fn(*mut c_void, u32, *const u32, u32);
type MemReadFn = unsafe extern "C" fn(*mut c_void, u32, *mut u32, u32);
type DmaWriteFn = unsafe extern "C" fn(*mut c_void, u32, *const u8, u32);
type DmaReadFn = unsafe extern "C" fn(*mut c_void, u32, *mut u8, u32);
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
    mem_write: MemWriteFn,
    mem_read: MemReadFn,
    dma_write: DmaWriteFn,
    dma_read: DmaReadFn,
    run: RunFn,
    idle: IdleFn,
    irq: GetFn,
    busy: GetFn,
    cycles: CyclesFn,
    flush: FreeFn,
}

/// A loaded top model library.
#[derive(Clone)]
pub struct TopLibrary {
    _lib: Arc<Library>,
    api: Api,
    card_words: usize,
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
        TopLibrary::open(&so, top.layout.card_words)
    }
}

impl TopLibrary {
    fn open(path: &Path, card_words: usize) -> Result<TopLibrary, BridgeError> {
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
                mem_write: sym!("tern_top_mem_write"),
                mem_read: sym!("tern_top_mem_read"),
                dma_write: sym!("tern_top_dma_write"),
                dma_read: sym!("tern_top_dma_read"),
                run: sym!("tern_top_run"),
                idle: sym!("tern_top_idle"),
                irq: sym!("tern_top_irq"),
                busy: sym!("tern_top_busy"),
                cycles: sym!("tern_top_cycles"),
                flush: sym!("tern_top_flush"),
            };
            Ok(TopLibrary {
                _lib: Arc::new(lib),
                api,
                card_words,
                path: path.to_path_buf(),
            })
        }
    }

    /// A fresh top, held in reset for a few clocks; `vcd` names a waveform to write.
    pub fn instantiate(&self, vcd: Option<&Path>) -> Result<TopModel, BridgeError> {
        let path = crate::verilator::waveform_path(&self.path, vcd)?;
        // SAFETY: `new` returns an owned model freed in `Drop`; the path outlives the call.
        let handle =
            unsafe { (self.api.new)(path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr())) };
        let mut model = TopModel {
            lib: self.clone(),
            handle,
        };
        model.reset();
        Ok(model)
    }
}

/// One accelerator top. Word ranges must lie inside card memory: the methods panic on a
/// range outside it, so callers (the host's sim backend) check first and return a typed
/// error. Not `Send`: a Verilator model stays on its thread.
pub struct TopModel {
    lib: TopLibrary,
    handle: *mut c_void,
}

/// Clocks the reset is held for.
pub const RESET_CLOCKS: u32 = 4;

impl TopModel {
    pub fn card_words(&self) -> usize {
        self.lib.card_words
    }

    fn check(&self, word: usize, n: usize) {
        assert!(
            word.checked_add(n)
                .is_some_and(|end| end <= self.lib.card_words),
            "card memory access [{word}, +{n}) beyond {} words",
            self.lib.card_words
        );
    }

    pub fn reset(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.reset)(self.handle, RESET_CLOCKS) }
    }

    /// One register write (one clock).
    pub fn reg_write(&mut self, offset: u32, value: u32) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.reg_write)(self.handle, offset, value) }
    }

    /// One register read (one clock; reading CONTROL clears ap_done).
    pub fn reg_read(&mut self, offset: u32) -> u32 {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.reg_read)(self.handle, offset) }
    }

    /// Write words through the top's host memory port (one clock per word).
    pub fn port_write(&mut self, word: usize, data: &[u32]) {
        self.check(word, data.len());
        // SAFETY: the range was checked against card memory; `data` outlives the call.
        unsafe {
            (self.lib.api.mem_write)(self.handle, word as u32, data.as_ptr(), data.len() as u32)
        }
    }

    /// Read words through the top's host memory port (one clock per word).
    pub fn port_read(&mut self, word: usize, out: &mut [u32]) {
        self.check(word, out.len());
        // SAFETY: as above.
        unsafe {
            (self.lib.api.mem_read)(self.handle, word as u32, out.as_mut_ptr(), out.len() as u32)
        }
    }

    /// Write little-endian bytes (whole words) into card memory directly, as the board
    /// shell's DMA engine does (no clocks).
    pub fn dma_write(&mut self, word: usize, data: &[u8]) {
        assert!(data.len().is_multiple_of(4), "DMA of a partial word");
        let n = data.len() / 4;
        self.check(word, n);
        // SAFETY: the range was checked; the shim reads 4·n bytes of `data`.
        unsafe { (self.lib.api.dma_write)(self.handle, word as u32, data.as_ptr(), n as u32) }
    }

    /// Read card memory directly into little-endian bytes (no clocks).
    pub fn dma_read(&mut self, word: usize, out: &mut [u8]) {
        assert!(out.len().is_multiple_of(4), "DMA of a partial word");
        let n = out.len() / 4;
        self.check(word, n);
        // SAFETY: the range was checked; the shim writes 4·n bytes of `out`.
        unsafe { (self.lib.api.dma_read)(self.handle, word as u32, out.as_mut_ptr(), n as u32) }
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
