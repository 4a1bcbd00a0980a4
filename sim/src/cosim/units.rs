//! The one top's units under Verilator on the simulated board's DDR
//! (`cpp/ddr_model.h`, the board around a unit `cpp/unit_board.h`): the LM-head unit
//! (`cpp/lm_head_unit_shim.cpp`) runs an `LmHead` command, the matmul unit
//! (`cpp/matmul_unit_shim.cpp`) a `Matmul` command, the vector unit
//! (`cpp/vector_unit_shim.cpp`) an element-wise command and the attention unit
//! (`cpp/attention_unit_shim.cpp`) an `Attention` command over a memory image; the one
//! top's core (`cpp/accelerator_shim.cpp`) runs whole passes of the program.

use std::path::Path;

use libloading::Library;
use tern_hdl::accelerator::shell::{SHELL_FILE, SHELL_MODULE};
use tern_hdl::accelerator::{accelerator_verilog, AcceleratorShape, ACCELERATOR_CORE_MODULE};
use tern_hdl::emit::{waivers, DESIGN_FILE};
use tern_hdl::program::Command;
use tern_hdl::units::{
    attention_unit_verilog, lm_head_unit_verilog, matmul_unit_verilog, vector_unit_verilog,
    AttentionUnitShape, LmHeadUnitShape, MatmulUnitShape, VectorUnitShape, ATTENTION_UNIT_FILE,
    ATTENTION_UNIT_MODULE, LM_HEAD_UNIT_FILE, LM_HEAD_UNIT_MODULE, MATMUL_UNIT_FILE,
    MATMUL_UNIT_MODULE, VECTOR_UNIT_FILE, VECTOR_UNIT_MODULE,
};

use crate::top_model::{DramTiming, MemoryModel};
use crate::verilator::{BridgeError, ModelCache};

const BOARD: &str = concat!(
    include_str!("../../cpp/ddr_model.h"),
    include_str!("../../cpp/read_ports.h"),
    include_str!("../../cpp/unit_board.h")
);
const LM_HEAD_SHIM: &str = include_str!("../../cpp/lm_head_unit_shim.cpp");
const MATMUL_SHIM: &str = include_str!("../../cpp/matmul_unit_shim.cpp");
const VECTOR_SHIM: &str = include_str!("../../cpp/vector_unit_shim.cpp");
const ATTENTION_SHIM: &str = include_str!("../../cpp/attention_unit_shim.cpp");
const ACCELERATOR_SHIM: &str = include_str!("../../cpp/accelerator_shim.cpp");
const SHELL_SHIM: &str = include_str!("../../cpp/accelerator_shell_shim.cpp");
/// The board's names for the shell's ports (`cpp/unit_board.h`).
const SHELL_NAMES: &str = "#define WRITE_PORT(sig) m0_##sig\n#define UNIT_IDLE_INPUTS(t) (t)->s_axi_control_awvalid = 0\n#define UNIT_CLOCK ap_clk\n#define UNIT_RESET(t, on) (t)->ap_rst_n = !(on)\n";
const SHIM_ABI: u32 = 1;
/// The one top's core and shell (their commands changed).
const ONE_TOP_SHIM_ABI: u32 = 4;
/// The LM-head unit's (its command grew a group).
const LM_HEAD_SHIM_ABI: u32 = 2;

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
    /// A 4-bit head's group; 0 for an int8 head.
    pub group: u32,
    pub pad: u32,
}

/// What the DRAM did during one command.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DdrCounts {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bursts: u64,
    pub write_bursts: u64,
    pub refreshes: u64,
    pub row_misses: u64,
}

/// What the LM-head unit did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadUnitOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0 none, 1 a shape the unit is not built for, 2 an error response.
    pub error: u32,
    pub next: u32,
    pub ddr: DdrCounts,
}

/// One `Matmul` command's fields (docs/program.md) with the pass's rows; `weights` is
/// the matrix's image (`tern_hdl::units::matmul_weight_image`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatmulUnitCommand {
    pub src: u64,
    pub weights: u64,
    pub dst: u64,
    pub m: u32,
    pub k: u32,
    pub pass_rows: u32,
    pub zero: u32,
}

/// What the matmul unit did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MatmulUnitOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0 none, 1 a size out of range, 2 an error response.
    pub error: u32,
    pub zero: u32,
    pub ddr: DdrCounts,
}

/// One element-wise command as the vector unit takes it: its opcode and fields
/// (docs/program.md), the pass's rows and the program's residual fractional bits.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VectorUnitCommand {
    pub a: u64,
    pub b: u64,
    pub c: u64,
    pub d: u64,
    pub op: u32,
    pub n: u32,
    pub count: u32,
    pub k: u32,
    pub position: u32,
    pub scale_m: u32,
    pub scale_e: i32,
    pub add: u32,
    pub pass_rows: u32,
    pub frac: i32,
    pub eps_m: u32,
    pub eps_e: i32,
}

/// What the vector unit takes from the pass besides a command: its rows, its first
/// position, and from the program's header the residual's fractional bits, where the
/// sequencer wrote the pass's token ids (`ids_at`) and the norms' ε.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorPass {
    pub rows: u32,
    pub position: u32,
    pub residual_frac: i32,
    pub ids_at: u64,
    pub eps: tern_hdl::program::Scale,
}

impl VectorUnitCommand {
    /// The unit's view of `command` (an element-wise one: `Embed`, `NormQuant`,
    /// `Dequant`, `ToInt8`, `Relu2Mul`, `Rope`; `None` for another) in `pass`.
    pub fn of(command: &Command, pass: &VectorPass) -> Option<Self> {
        let base = VectorUnitCommand {
            op: u32::from(command.opcode()),
            pass_rows: pass.rows,
            position: pass.position,
            frac: pass.residual_frac,
            eps_m: pass.eps.m,
            eps_e: pass.eps.e,
            ..Default::default()
        };
        match *command {
            Command::NormQuant {
                src,
                gain,
                dst,
                factors,
                n,
                int8_unit,
            } => Some(VectorUnitCommand {
                a: src,
                b: gain,
                c: dst,
                d: factors,
                n,
                // The int8 input's flag and scale.
                add: u32::from(int8_unit.is_some()),
                scale_m: int8_unit.map_or(0, |u| u.m),
                scale_e: int8_unit.map_or(0, |u| u.e),
                ..base
            }),
            Command::Embed { table, dst, n } => Some(VectorUnitCommand {
                a: table,
                c: dst,
                d: pass.ids_at,
                n,
                ..base
            }),
            Command::Dequant {
                src,
                factors,
                dst,
                m,
                scale,
                add,
            } => Some(VectorUnitCommand {
                a: src,
                c: dst,
                d: factors,
                n: m,
                scale_m: scale.m,
                scale_e: scale.e,
                add: u32::from(add),
                ..base
            }),
            Command::Rope {
                vec,
                table,
                heads,
                head_dim,
            } => Some(VectorUnitCommand {
                a: vec,
                b: table,
                c: vec,
                n: heads.saturating_mul(head_dim),
                count: heads,
                k: head_dim,
                ..base
            }),
            Command::Relu2Mul { gate, up, dst, n } => Some(VectorUnitCommand {
                a: gate,
                b: up,
                c: dst,
                n,
                ..base
            }),
            Command::ToInt8 {
                src,
                dst,
                n,
                inv_unit,
            } => Some(VectorUnitCommand {
                a: src,
                c: dst,
                n,
                scale_m: inv_unit.m,
                scale_e: inv_unit.e,
                ..base
            }),
            _ => None,
        }
    }
}

/// What the vector unit did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VectorUnitOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0 none, 1 not run (another opcode, a size out of range), 2 an error response,
    /// 3 the data (factors, or an input's head); `error_row` the row it stopped at.
    pub error: u32,
    pub error_row: u32,
    /// Whether an output saturated.
    pub saturated: u32,
    pub zero: u32,
    pub ddr: DdrCounts,
}

/// One `Attention` command's fields (docs/program.md) with the pass's rows and first
/// position, and from the program's header where the attention records lie and the
/// context its caches hold.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttentionUnitCommand {
    pub q: u64,
    pub k: u64,
    pub v: u64,
    pub dst: u64,
    pub attention_at: u64,
    pub layer: u32,
    pub rows: u32,
    pub position: u32,
    pub max_seq_len: u32,
}

impl AttentionUnitCommand {
    /// The unit's command for `cmd` in a pass of `rows` rows from `position` under
    /// `header`; `None` for another command.
    pub fn of(
        cmd: &Command,
        header: &tern_hdl::program::Header,
        rows: u32,
        position: u32,
    ) -> Option<Self> {
        match *cmd {
            Command::Attention {
                layer,
                q,
                k,
                v,
                dst,
            } => Some(AttentionUnitCommand {
                q,
                k,
                v,
                dst,
                attention_at: header.attention_at,
                layer: u32::from(layer),
                rows,
                position,
                max_seq_len: header.max_seq_len,
            }),
            _ => None,
        }
    }
}

/// What the attention unit did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttentionUnitOutcome {
    /// From the command to done; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0 none, 1 not run (no rows, positions beyond the engine's context), 2 an error
    /// response, 3 the layer's record.
    pub error: u32,
    pub zero: u32,
    pub ddr: DdrCounts,
}

/// One pass on the one top: the program's address, the first position and the token
/// ids (held by the caller for the call). Made by [`AcceleratorModel::pass`].
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassCommand {
    program_at: u64,
    ids: *const u32,
    n_ids: u32,
    position: u32,
}

impl Default for PassCommand {
    fn default() -> Self {
        PassCommand {
            program_at: 0,
            ids: std::ptr::null(),
            n_ids: 0,
            position: 0,
        }
    }
}

/// What a pass did on the one top.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassOutcome {
    /// From the start to the end of the pass; `u64::MAX`: not within the limit.
    pub clocks: u64,
    /// 0: the pass ended with a token; else the sequencer's code (docs/program.md).
    pub error_code: u32,
    pub error_command: u32,
    pub next_token: u32,
    pub commands_run: u32,
    /// The core's own counters: the pass's clocks, and each unit's while it ran.
    pub clocks_pass: u64,
    pub clocks_matmul: u64,
    pub clocks_lm_head: u64,
    pub clocks_vector: u64,
    pub clocks_attention: u64,
    pub ddr: DdrCounts,
    /// Bytes the DRAM read while each unit ran ([`PASS_UNITS`]' order) and in the
    /// sequencer's own clocks: with the weight window reading ahead, not only the
    /// running unit's own reads.
    pub read_while: [u64; 5],
}

/// The parts of a pass [`PassOutcome::read_while`] and [`PassOutcome::part_clocks`]
/// count, in their order.
pub const PASS_UNITS: [&str; 5] = ["matmul", "LM head", "vector", "attention", "sequencer"];

impl PassOutcome {
    /// Each part's clocks in [`PASS_UNITS`]' order: the units' own counters, and the
    /// sequencer's own, the pass's clocks no unit counted.
    pub fn part_clocks(&self) -> [u64; 5] {
        let units = [
            self.clocks_matmul,
            self.clocks_lm_head,
            self.clocks_vector,
            self.clocks_attention,
        ];
        let own = self.clocks_pass - units.iter().sum::<u64>();
        [units[0], units[1], units[2], units[3], own]
    }
}

/// What a host does to the one top's shell (`tern_accelerator`): one AXI4-Lite access,
/// a wait for the interrupt, or a reset (docs/accelerator.md, "Shell"). Made by
/// [`AcceleratorShellModel`]'s methods; tern-host's one-top driver makes passes of them.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShellOp {
    op: u32,
    addr: u32,
    data: u32,
    pad: u32,
}

const OP_WRITE32: u32 = 0;
const OP_READ32: u32 = 1;
const OP_WAIT_INTERRUPT: u32 = 2;
const OP_RESET: u32 = 3;
const OP_PEEK: u32 = 4;
const OP_WINDOW: u32 = 5;

/// What a [`ShellOp`] did.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShellOutcome {
    /// The operation's clocks; a wait for the interrupt: `u64::MAX` if none came within
    /// the limit.
    pub clocks: u64,
    /// A read's value.
    pub data: u32,
    /// The interrupt line afterwards.
    pub interrupt: u32,
    /// What the DRAM did since the board was made.
    pub ddr: DdrCounts,
    /// The board's clocks since it was made.
    pub cycles: u64,
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
type RunFn<C, O> = unsafe extern "C" fn(*mut std::ffi::c_void, *const C, *mut O, u64);
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);

/// A Verilated unit of shape `S` on a board's memory, running commands `C` with
/// outcomes `O`.
pub struct UnitModel<S, C, O> {
    shape: S,
    _lib: Library,
    handle: *mut std::ffi::c_void,
    write: CopyFn,
    read: CopyFn,
    run: RunFn<C, O>,
    free: FreeFn,
}

pub type LmHeadUnitModel = UnitModel<LmHeadUnitShape, LmHeadUnitCommand, LmHeadUnitOutcome>;
pub type MatmulUnitModel = UnitModel<MatmulUnitShape, MatmulUnitCommand, MatmulUnitOutcome>;
pub type VectorUnitModel = UnitModel<VectorUnitShape, VectorUnitCommand, VectorUnitOutcome>;
pub type AttentionUnitModel =
    UnitModel<AttentionUnitShape, AttentionUnitCommand, AttentionUnitOutcome>;
pub type AcceleratorModel = UnitModel<AcceleratorShape, PassCommand, PassOutcome>;
pub type AcceleratorShellModel = UnitModel<AcceleratorShape, ShellOp, ShellOutcome>;

impl AcceleratorShellModel {
    /// One AXI4-Lite write to the register at byte offset `addr`.
    pub fn write32(&mut self, addr: u32, data: u32) -> ShellOutcome {
        let op = ShellOp {
            op: OP_WRITE32,
            addr,
            data,
            pad: 0,
        };
        self.run(&op, 0)
    }

    /// One AXI4-Lite read.
    pub fn read32(&mut self, addr: u32) -> ShellOutcome {
        let op = ShellOp {
            op: OP_READ32,
            addr,
            ..ShellOp::default()
        };
        self.run(&op, 0)
    }

    /// Clock the board until its interrupt line is high, at most `limit` clocks.
    pub fn wait_interrupt(&mut self, limit: u64) -> ShellOutcome {
        let op = ShellOp {
            op: OP_WAIT_INTERRUPT,
            ..ShellOp::default()
        };
        self.run(&op, limit)
    }

    /// The board's counters (DRAM, clocks, the interrupt line), without a clock.
    pub fn peek(&mut self) -> ShellOutcome {
        let op = ShellOp {
            op: OP_PEEK,
            ..ShellOp::default()
        };
        self.run(&op, 0)
    }

    /// Put the board's DDR at `base` on the memory ports' bus (as a host's buffer sits
    /// at a physical address): a port's address is taken from there, one below it is
    /// answered with DECERR. The host's own accesses stay at 0.. (no clock).
    pub fn set_memory_window(&mut self, base: u64) -> ShellOutcome {
        let op = ShellOp {
            op: OP_WINDOW,
            addr: base as u32,
            data: (base >> 32) as u32,
            ..ShellOp::default()
        };
        self.run(&op, 0)
    }

    /// Hold the shell in reset (`ap_rst_n` low) for 4 clocks; the memory is kept.
    pub fn reset(&mut self) -> ShellOutcome {
        let op = ShellOp {
            op: OP_RESET,
            ..ShellOp::default()
        };
        self.run(&op, 0)
    }
}

impl AcceleratorModel {
    /// Run one pass: `ids` at positions `position..` of the program at `program_at`;
    /// `limit` bounds its clocks.
    pub fn pass(&mut self, program_at: u64, position: u32, ids: &[u32], limit: u64) -> PassOutcome {
        let cmd = PassCommand {
            program_at,
            ids: ids.as_ptr(),
            n_ids: ids.len() as u32,
            position,
        };
        // `ids` outlives the call; the shim reads `n_ids` of them.
        self.run(&cmd, limit)
    }
}

impl<S, C, O> Drop for UnitModel<S, C, O> {
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
        let shim = format!("#define PORTS {}\n{BOARD}{LM_HEAD_SHIM}", shape.ports);
        let (lib, so) = self.build_block(
            (LM_HEAD_UNIT_MODULE, LM_HEAD_UNIT_FILE, "tern_lm_head_unit"),
            &verilog,
            &shim,
            (b"tern_lm_head_unit_abi\0", LM_HEAD_SHIM_ABI),
        )?;
        open_unit(shape, lib, &so, "tern_lm_head_unit", memory, vcd)
    }

    /// Build (or load) the matmul unit of `shape` on a board whose memory is `memory`,
    /// tracing to `vcd` if given.
    pub fn load_matmul_unit(
        &self,
        shape: &MatmulUnitShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<MatmulUnitModel, BridgeError> {
        let verilog = matmul_unit_verilog(shape).map_err(|e| BridgeError::Load {
            path: MATMUL_UNIT_FILE.into(),
            message: e.to_string(),
        })?;
        let shim = format!("#define PORTS {}\n{BOARD}{MATMUL_SHIM}", shape.ports);
        let (lib, so) = self.build_files(
            (MATMUL_UNIT_MODULE, "tern_matmul_unit"),
            &[
                (MATMUL_UNIT_FILE, &verilog.unit),
                (DESIGN_FILE, &verilog.core),
            ],
            &waivers(),
            &shim,
            (b"tern_matmul_unit_abi\0", SHIM_ABI),
        )?;
        open_unit(shape.clone(), lib, &so, "tern_matmul_unit", memory, vcd)
    }

    /// Build (or load) the vector unit of `shape` on a board whose memory is `memory`
    /// (its ports one `DdrPort` each), tracing to `vcd` if given.
    pub fn load_vector_unit(
        &self,
        shape: VectorUnitShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<VectorUnitModel, BridgeError> {
        let verilog = vector_unit_verilog(shape).map_err(|message| BridgeError::Load {
            path: VECTOR_UNIT_FILE.into(),
            message,
        })?;
        let shim = format!("#define PORTS {}\n{BOARD}{VECTOR_SHIM}", shape.ports);
        let (lib, so) = self.build_block(
            (VECTOR_UNIT_MODULE, VECTOR_UNIT_FILE, "tern_vector_unit"),
            &verilog,
            &shim,
            (b"tern_vector_unit_abi\0", SHIM_ABI),
        )?;
        open_unit(shape, lib, &so, "tern_vector_unit", memory, vcd)
    }

    /// Build (or load) the attention unit of `shape` on a board whose memory is `memory`
    /// (one port), tracing to `vcd` if given.
    pub fn load_attention_unit(
        &self,
        shape: &AttentionUnitShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<AttentionUnitModel, BridgeError> {
        let verilog = attention_unit_verilog(shape).map_err(|e| BridgeError::Load {
            path: ATTENTION_UNIT_FILE.into(),
            message: e.to_string(),
        })?;
        let shim = format!("#define PORTS {}\n{BOARD}{ATTENTION_SHIM}", shape.ports);
        let (lib, so) = self.build_files(
            (ATTENTION_UNIT_MODULE, "tern_attention_unit"),
            &[
                (ATTENTION_UNIT_FILE, &verilog.unit),
                (DESIGN_FILE, &verilog.core),
            ],
            &waivers(),
            &shim,
            (b"tern_attention_unit_abi\0", SHIM_ABI),
        )?;
        open_unit(shape.clone(), lib, &so, "tern_attention_unit", memory, vcd)
    }

    /// Build (or load) the one top's core of `shape` on a board whose memory is `memory`
    /// (its ports one `DdrPort` each), tracing to `vcd` if given.
    pub fn load_accelerator(
        &self,
        shape: &AcceleratorShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<AcceleratorModel, BridgeError> {
        self.load_one_top(
            shape,
            (ACCELERATOR_CORE_MODULE, "tern_accelerator"),
            &format!("#define PORTS {}\n{BOARD}{ACCELERATOR_SHIM}", shape.ports()),
            memory,
            vcd,
        )
    }

    /// The same behind its shell (`tern_accelerator`): a board a host drives through
    /// the AXI4-Lite registers and the interrupt.
    pub fn load_accelerator_shell(
        &self,
        shape: &AcceleratorShape,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<AcceleratorShellModel, BridgeError> {
        self.load_one_top(
            shape,
            (SHELL_MODULE, "tern_accelerator_shell"),
            &format!(
                "#define PORTS {}\n{SHELL_NAMES}{BOARD}{SHELL_SHIM}",
                shape.ports()
            ),
            memory,
            vcd,
        )
    }

    /// The one top's files with `shim`, top module `module`, C symbols `name_*`.
    fn load_one_top<C, O>(
        &self,
        shape: &AcceleratorShape,
        (module, name): (&str, &str),
        shim: &str,
        memory: &MemoryModel,
        vcd: Option<&Path>,
    ) -> Result<UnitModel<AcceleratorShape, C, O>, BridgeError> {
        let verilog = accelerator_verilog(shape).map_err(|e| BridgeError::Load {
            path: SHELL_FILE.into(),
            message: e.to_string(),
        })?;
        let files: Vec<(&str, &str)> = verilog
            .files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let abi = format!("{name}_abi\0");
        let (lib, so) = self.build_files(
            (module, name),
            &files,
            &waivers(),
            shim,
            (abi.as_bytes(), ONE_TOP_SHIM_ABI),
        )?;
        open_unit(shape.clone(), lib, &so, name, memory, vcd)
    }
}

/// Open a unit's library: its C symbols `<name>_new/_write/_read/_run/_free`, a board
/// of `memory` around it.
fn open_unit<S, C, O>(
    shape: S,
    lib: Library,
    so: &Path,
    name: &str,
    memory: &MemoryModel,
    vcd: Option<&Path>,
) -> Result<UnitModel<S, C, O>, BridgeError> {
    let load_err = |e: libloading::Error| BridgeError::Load {
        path: so.display().to_string(),
        message: e.to_string(),
    };
    let symbol = |suffix: &str| format!("{name}_{suffix}\0");
    // SAFETY: the types match the shim's `extern "C"` functions of this ABI (checked by
    // the build); the handle is freed once, in `Drop`.
    unsafe {
        let new: NewFn = *lib.get(symbol("new").as_bytes()).map_err(load_err)?;
        let write: CopyFn = *lib.get(symbol("write").as_bytes()).map_err(load_err)?;
        let read: CopyFn = *lib.get(symbol("read").as_bytes()).map_err(load_err)?;
        let run: RunFn<C, O> = *lib.get(symbol("run").as_bytes()).map_err(load_err)?;
        let free: FreeFn = *lib.get(symbol("free").as_bytes()).map_err(load_err)?;
        let path = crate::verilator::waveform_path(so, vcd)?;
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
        Ok(UnitModel {
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

impl<S, C: Default, O: Default> UnitModel<S, C, O> {
    pub fn shape(&self) -> &S {
        &self.shape
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
    pub fn run(&mut self, cmd: &C, limit: u64) -> O {
        let mut o = O::default();
        // SAFETY: one command in, one outcome out, of the types the shim declares.
        unsafe { (self.run)(self.handle, cmd, &mut o, limit) };
        o
    }
}
