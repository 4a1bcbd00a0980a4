//! The write side of the memory ports under Verilator on one port of the simulated
//! board's DDR (`cpp/ddr_model.h`): the write arbiter
//! (`tern_hdl::interconnect::write_arbiter_verilog`, `cpp/write_arbiter_shim.cpp`), the
//! testbench playing its masters; and the row writer (`row_writer_verilog`,
//! `cpp/row_writer_shim.cpp`), the testbench feeding its regions. The memory and the
//! responses say what they did.

use libloading::Library;

use tern_hdl::interconnect::{
    row_writer_verilog, write_arbiter_verilog, PORT_BEAT_BYTES, ROW_WRITER_FILE, ROW_WRITER_MODULE,
    WRITE_ARBITER_FILE, WRITE_ARBITER_MODULE,
};

use crate::top_model::{DramTiming, MemoryModel};
use crate::verilator::{BridgeError, ModelCache};

const SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/write_port_board.h"),
    include_str!("../../cpp/write_arbiter_shim.cpp")
);
const ROW_WRITER_SHIM: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/write_port_board.h"),
    include_str!("../../cpp/row_writer_shim.cpp")
);
const SHIM_ABI: u32 = 1;

/// Masters the testbench can play (the shim's `MASTERS`).
pub const MAX_MASTERS: usize = 4;

/// One burst a master writes: at `addr`, a beat of 16 bytes and its strobe (bit i:
/// byte i) per element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBurst {
    pub addr: u64,
    pub data: Vec<[u8; PORT_BEAT_BYTES]>,
    pub strobes: Vec<u16>,
}

/// What the masters saw (`WriteOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteArbiterOutcome {
    /// From the start to the last response; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// Per master: responses, those that were not OKAY, and responses beyond its bursts.
    pub responses: [u64; MAX_MASTERS],
    pub bad: [u64; MAX_MASTERS],
    pub extra: [u64; MAX_MASTERS],
    /// What the DRAM took: bytes, bursts, bursts across 4 KiB.
    pub bytes_written: u64,
    pub write_bursts: u64,
    pub crossings: u64,
}

type NewFn =
    unsafe extern "C" fn(u64, f64, u32, u32, u64, *const DramTiming) -> *mut std::ffi::c_void;
type WriteFn = unsafe extern "C" fn(*mut std::ffi::c_void, u64, *const u8, u64);
type ReadFn = unsafe extern "C" fn(*mut std::ffi::c_void, u64, *mut u8, u64);
#[allow(clippy::type_complexity)]
type RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *const *const u64,
    *const *const u32,
    *const *const u8,
    *const *const u16,
    *const u32,
    *mut WriteArbiterOutcome,
    u64,
    u64,
);
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);

/// The board around a Verilated block with one write port: its library, its handle and
/// the C functions every such shim has (`<name>_new/_write/_read/_free`), freed on drop.
struct WritePortBoard {
    lib: Library,
    handle: *mut std::ffi::c_void,
    write: WriteFn,
    read: ReadFn,
    free: FreeFn,
}

impl Drop for WritePortBoard {
    fn drop(&mut self) {
        // SAFETY: `handle` came from the library's `new` and is freed once.
        unsafe { (self.free)(self.handle) }
    }
}

impl WritePortBoard {
    /// Open the shim `name` in `lib` (built at `so`) on a fresh board of `memory`.
    fn open(
        lib: Library,
        so: &std::path::Path,
        name: &str,
        memory: &MemoryModel,
    ) -> Result<Self, BridgeError> {
        let load_err = |e: libloading::Error| BridgeError::Load {
            path: so.display().to_string(),
            message: e.to_string(),
        };
        let symbol = |suffix: &str| format!("{name}_{suffix}\0");
        // SAFETY: the types match the shim's `extern "C"` functions of this ABI; the
        // handle is freed once, in `Drop`.
        unsafe {
            let new: NewFn = *lib.get(symbol("new").as_bytes()).map_err(load_err)?;
            let write: WriteFn = *lib.get(symbol("write").as_bytes()).map_err(load_err)?;
            let read: ReadFn = *lib.get(symbol("read").as_bytes()).map_err(load_err)?;
            let free: FreeFn = *lib.get(symbol("free").as_bytes()).map_err(load_err)?;
            let handle = new(
                memory.bytes,
                memory.bytes_per_clock,
                memory.latency_clocks,
                memory.stall_percent,
                memory.seed,
                &memory.timing,
            );
            Ok(WritePortBoard {
                lib,
                handle,
                write,
                read,
                free,
            })
        }
    }

    /// The shim's `run`, of type `F`.
    fn run_fn<F: Copy>(&self, name: &str) -> Result<F, BridgeError> {
        // SAFETY: the caller names the type the shim's `run` has.
        unsafe {
            self.lib
                .get::<F>(format!("{name}_run\0").as_bytes())
                .map(|f| *f)
                .map_err(|e| BridgeError::Load {
                    path: name.into(),
                    message: e.to_string(),
                })
        }
    }

    fn put(&mut self, addr: u64, data: &[u8]) {
        // SAFETY: `data` covers the length passed.
        unsafe { (self.write)(self.handle, addr, data.as_ptr(), data.len() as u64) }
    }

    fn get(&self, addr: u64, n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        // SAFETY: `out` holds `n` bytes.
        unsafe { (self.read)(self.handle, addr, out.as_mut_ptr(), n as u64) };
        out
    }
}

/// A Verilated write arbiter of `masters` masters on a board's memory.
pub struct WriteArbiterModel {
    masters: usize,
    board: WritePortBoard,
    run: RunFn,
}

impl ModelCache {
    /// Build (or load) a write arbiter of `masters` (2..=4 here) masters and `in_flight`
    /// bursts outstanding, on a board whose memory is `memory` (one port).
    pub fn load_write_arbiter(
        &self,
        masters: usize,
        in_flight: usize,
        memory: &MemoryModel,
    ) -> Result<WriteArbiterModel, BridgeError> {
        let refuse = |message: String| BridgeError::Load {
            path: WRITE_ARBITER_FILE.into(),
            message,
        };
        if !(2..=MAX_MASTERS).contains(&masters) {
            return Err(refuse(format!(
                "the testbench plays 2..={MAX_MASTERS} masters, not {masters}"
            )));
        }
        let verilog = write_arbiter_verilog(masters, in_flight).map_err(refuse)?;
        let shim = format!("#define MASTERS {masters}\n{SHIM}");
        let (lib, so) = self.build_block(
            (
                WRITE_ARBITER_MODULE,
                WRITE_ARBITER_FILE,
                "tern_write_arbiter",
            ),
            &verilog,
            &shim,
            (b"tern_write_arbiter_abi\0", SHIM_ABI),
        )?;
        let board = WritePortBoard::open(lib, &so, "tern_write_arbiter", memory)?;
        let run = board.run_fn::<RunFn>("tern_write_arbiter")?;
        Ok(WriteArbiterModel {
            masters,
            board,
            run,
        })
    }
}

impl WriteArbiterModel {
    /// Put bytes into the board's memory (no clocks).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        self.board.put(addr, data)
    }

    /// `n` bytes of the board's memory at `addr` (no clocks).
    pub fn read(&self, addr: u64, n: usize) -> Vec<u8> {
        self.board.get(addr, n)
    }

    /// Every master's bursts at once (`bursts[i]`: master i's, in order; every burst
    /// 1..=256 beats), until every response is back; `stall_seed` 0: the masters never
    /// hold back, else they withhold 30 % of their valids and readies.
    pub fn run(&mut self, bursts: &[Vec<WriteBurst>], stall_seed: u64) -> WriteArbiterOutcome {
        assert_eq!(bursts.len(), self.masters, "one list of bursts a master");
        for b in bursts.iter().flatten() {
            assert!(
                (1..=256).contains(&b.data.len()) && b.strobes.len() == b.data.len(),
                "a burst of 1..=256 beats, a strobe a beat"
            );
        }
        let addrs: Vec<Vec<u64>> = bursts
            .iter()
            .map(|m| m.iter().map(|b| b.addr).collect())
            .collect();
        let beats: Vec<Vec<u32>> = bursts
            .iter()
            .map(|m| m.iter().map(|b| b.data.len() as u32).collect())
            .collect();
        let data: Vec<Vec<u8>> = bursts
            .iter()
            .map(|m| {
                m.iter()
                    .flat_map(|b| b.data.iter().flatten().copied())
                    .collect()
            })
            .collect();
        let strobes: Vec<Vec<u16>> = bursts
            .iter()
            .map(|m| m.iter().flat_map(|b| b.strobes.iter().copied()).collect())
            .collect();
        let counts: Vec<u32> = bursts.iter().map(|m| m.len() as u32).collect();
        let total_beats: u64 = beats.iter().flatten().map(|&b| u64::from(b)).sum();
        let limit = 10_000 + 60 * total_beats + 200 * u64::from(counts.iter().sum::<u32>());
        let a: Vec<*const u64> = addrs.iter().map(|v| v.as_ptr()).collect();
        let b: Vec<*const u32> = beats.iter().map(|v| v.as_ptr()).collect();
        let d: Vec<*const u8> = data.iter().map(|v| v.as_ptr()).collect();
        let s: Vec<*const u16> = strobes.iter().map(|v| v.as_ptr()).collect();
        let mut o = WriteArbiterOutcome::default();
        // SAFETY: one array a master, each covering its bursts' beats; the outcome is
        // the shim's struct.
        unsafe {
            (self.run)(
                self.board.handle,
                a.as_ptr(),
                b.as_ptr(),
                d.as_ptr(),
                s.as_ptr(),
                counts.as_ptr(),
                &mut o,
                limit,
                stall_seed,
            )
        };
        o
    }
}

/// What a row writer's regions did (`RowWriterOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RowWriterOutcome {
    /// From the first command to the last done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// Regions that ended with the error bit.
    pub errors: u64,
    /// Beats the writer took in, also after its last region (more than the regions'
    /// beats is a bug).
    pub beats_taken: u64,
    /// What the DRAM took: bytes, bursts, bursts across 4 KiB.
    pub bytes_written: u64,
    pub write_bursts: u64,
    pub crossings: u64,
}

#[allow(clippy::type_complexity)]
type RowRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *const u64,
    *const u32,
    u32,
    *const u8,
    *const u16,
    *mut RowWriterOutcome,
    u64,
    u64,
);

/// A Verilated row writer on a board's memory.
pub struct RowWriterModel {
    board: WritePortBoard,
    run: RowRunFn,
}

impl ModelCache {
    /// Build (or load) a row writer with a buffer of `depth` beats on a board whose
    /// memory is `memory` (one port).
    pub fn load_row_writer(
        &self,
        depth: usize,
        memory: &MemoryModel,
    ) -> Result<RowWriterModel, BridgeError> {
        let verilog = row_writer_verilog(depth).map_err(|message| BridgeError::Load {
            path: ROW_WRITER_FILE.into(),
            message,
        })?;
        let (lib, so) = self.build_block(
            (ROW_WRITER_MODULE, ROW_WRITER_FILE, "tern_row_writer"),
            &verilog,
            ROW_WRITER_SHIM,
            (b"tern_row_writer_abi\0", SHIM_ABI),
        )?;
        let board = WritePortBoard::open(lib, &so, "tern_row_writer", memory)?;
        let run = board.run_fn::<RowRunFn>("tern_row_writer")?;
        Ok(RowWriterModel { board, run })
    }
}

impl RowWriterModel {
    /// Put bytes into the board's memory (no clocks).
    pub fn write(&mut self, addr: u64, data: &[u8]) {
        self.board.put(addr, data)
    }

    /// `n` bytes of the board's memory at `addr` (no clocks).
    pub fn read(&self, addr: u64, n: usize) -> Vec<u8> {
        self.board.get(addr, n)
    }

    /// The regions one after another, each a `WriteBurst` of any length (the writer
    /// cuts its own bursts); `stall_seed` 0: the beats come as fast as the writer takes
    /// them, else 30 % of them are held back and the memory's own stalls apply.
    pub fn run(&mut self, regions: &[WriteBurst], stall_seed: u64) -> RowWriterOutcome {
        for r in regions {
            assert_eq!(r.strobes.len(), r.data.len(), "a strobe a beat");
        }
        let addrs: Vec<u64> = regions.iter().map(|r| r.addr).collect();
        let beats: Vec<u32> = regions.iter().map(|r| r.data.len() as u32).collect();
        let data: Vec<u8> = regions
            .iter()
            .flat_map(|r| r.data.iter().flatten().copied())
            .collect();
        let strobes: Vec<u16> = regions
            .iter()
            .flat_map(|r| r.strobes.iter().copied())
            .collect();
        let total: u64 = beats.iter().map(|&b| u64::from(b)).sum();
        let limit = 10_000 + 60 * total + 500 * regions.len() as u64;
        let mut o = RowWriterOutcome::default();
        // SAFETY: every array covers the regions' beats; the outcome is the shim's.
        unsafe {
            (self.run)(
                self.board.handle,
                addrs.as_ptr(),
                beats.as_ptr(),
                regions.len() as u32,
                data.as_ptr(),
                strobes.as_ptr(),
                &mut o,
                limit,
                stall_seed,
            )
        };
        o
    }
}
