//! The vector unit's RTL under Verilator (`cpp/vector_shim.cpp`), checked against its
//! golden model (`golden::vector`): one `norm_quant` command at a time.

use std::path::{Path, PathBuf};

use libloading::Library;
use tern_hdl::emit::{content_hash, EmitError, WAIVER_FILE};
use tern_hdl::program::{Gain, Scale};
use tern_hdl::vector::{
    dequant_verilog, embed_verilog, norm_quant_verilog, relu2_mul_verilog, rope_verilog,
    to_int8_verilog, NormQuantShape, DEQUANT_FILE, DEQUANT_MODULE, EMBED_FILE, EMBED_MODULE,
    NORM_QUANT_FILE, NORM_QUANT_MODULE, RELU2_MUL_FILE, RELU2_MUL_MODULE, ROPE_FILE, ROPE_MODULE,
    TO_INT8_FILE, TO_INT8_MODULE,
};

use crate::golden::vector::{
    dequant, embed, factor, norm_quant, relu2_mul, rope, to_int8, Factor, Quantised, Saturations,
};
use crate::verilator::{open_shim_library, waveform_path, BridgeError, ModelCache};

mod lm_head;
pub use lm_head::{Head, LmHeadCommand, LmHeadModel, LmHeadOutcome};

const PORTS: &str = include_str!("../../cpp/vector_ports.h");
const SHIM: &str = include_str!("../../cpp/vector_shim.cpp");
const DEQUANT_SHIM: &str = include_str!("../../cpp/dequant_shim.cpp");
const TO_INT8_SHIM: &str = include_str!("../../cpp/to_int8_shim.cpp");
const ROPE_SHIM: &str = include_str!("../../cpp/rope_shim.cpp");
const RELU2_MUL_SHIM: &str = include_str!("../../cpp/relu2_mul_shim.cpp");
const EMBED_SHIM: &str = include_str!("../../cpp/embed_shim.cpp");
const SHIM_ABI: u32 = 1;

type NewFn = unsafe extern "C" fn(*const std::ffi::c_char) -> *mut std::ffi::c_void;
type FreeFn = unsafe extern "C" fn(*mut std::ffi::c_void);
#[allow(clippy::type_complexity)]
type RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    i32,
    u32,
    i32,
    *const i32,
    *const i16,
    *mut i8,
    *mut u32,
    *mut u64,
    *mut u64,
    u64,
    u64,
) -> u64;

/// A Verilated `norm_quant` of one shape.
pub struct NormQuantModel {
    shape: NormQuantShape,
    block: BlockLib,
    run: RunFn,
}

/// One `norm_quant` command's operands.
#[derive(Debug, Clone, Copy)]
pub struct NormQuantInput<'a> {
    pub v: &'a [i32],
    pub v_frac: i32,
    pub gain: &'a Gain,
    pub eps: Scale,
}

/// What the RTL returned for one command, as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRun {
    pub q: Vec<i8>,
    /// Outputs that arrived (more than `q` holds means extra beats).
    pub outputs: u32,
    pub max: u64,
    pub rms: u64,
    /// `u64::MAX`: no done within the limit.
    pub clocks: u64,
}

/// What one command gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormQuantRun {
    pub out: Quantised,
    pub clocks: u64,
}

/// Why a command's result is not the golden model's.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("vector unit ({lanes} lanes) seed {seed}, n {n}: {what}; waveform {waveform}")]
    Mismatch {
        lanes: usize,
        seed: u64,
        n: usize,
        what: String,
        waveform: String,
    },
}

/// What is wrong with a command that did not finish or did not hand over exactly `n`
/// outputs (`clocks` is `u64::MAX` when no done came within the limit).
fn unfinished(clocks: u64, outputs: u32, n: usize) -> Option<String> {
    if clocks == u64::MAX {
        Some(format!(
            "no done within the clock limit ({outputs} of {n} outputs)"
        ))
    } else if outputs as usize != n {
        Some(format!("{outputs} outputs for {n} inputs"))
    } else {
        None
    }
}

/// A loaded block: its library, and a fresh instance per command.
pub(crate) struct BlockLib {
    _lib: Library,
    new: NewFn,
    free: FreeFn,
    flush: FreeFn,
    path: PathBuf,
}

impl BlockLib {
    /// Run `f` on a fresh instance (tracing to `vcd` if given), flushed and freed after.
    pub(crate) fn with_instance<T>(
        &self,
        vcd: Option<&Path>,
        f: impl FnOnce(*mut std::ffi::c_void) -> T,
    ) -> Result<T, BridgeError> {
        let path = waveform_path(&self.path, vcd)?;
        // SAFETY: `new` returns an owned instance, freed here after `f`; the path
        // outlives the call.
        unsafe {
            let m = (self.new)(path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()));
            let out = f(m);
            (self.flush)(m);
            (self.free)(m);
            Ok(out)
        }
    }

    /// Write the waveform of a failing command and name it in the error.
    pub(crate) fn mismatch(
        &self,
        rerun: impl FnOnce(&Path),
        waveforms: &Path,
        what: String,
        (block, lanes, seed, n): (&str, usize, u64, usize),
    ) -> VectorError {
        std::fs::create_dir_all(waveforms).ok();
        let vcd = waveforms.join(format!("{block}-{lanes}-seed{seed}.vcd"));
        rerun(&vcd);
        VectorError::Mismatch {
            lanes,
            seed,
            n,
            what,
            waveform: vcd.display().to_string(),
        }
    }
}

impl ModelCache {
    /// Build (or load from the cache) one vector-unit block: its Verilog, top module,
    /// file and shim for `lanes` lanes; `name` prefixes its C symbols.
    fn load_vector_block<R: Copy>(
        &self,
        names: (&str, &str, &str),
        verilog: Result<String, tern_hdl::vector::ShapeError>,
        shim: &str,
        lanes: usize,
    ) -> Result<(BlockLib, R), BridgeError> {
        let verilog = verilog.map_err(|e| BridgeError::Load {
            path: names.1.into(),
            message: e.to_string(),
        })?;
        let shim = format!("{PORTS}\n#define LANES {lanes}\n{shim}");
        self.load_block(names, &verilog, &shim, (b"tern_vector_abi\0", SHIM_ABI))
    }

    /// Verilate a block with its shim (or find it in the cache) and open its library,
    /// checking the shim's ABI symbol and version: the library and its path.
    pub(crate) fn build_block(
        &self,
        (module, file, name): (&str, &str, &str),
        verilog: &str,
        shim: &str,
        abi: (&[u8], u32),
    ) -> Result<(Library, PathBuf), BridgeError> {
        self.build_files(
            (module, name),
            &[(file, verilog)],
            "`verilator_config\n",
            shim,
            abi,
        )
    }

    /// The same for a design of several files (`(name, text)`, top module `module` in
    /// one of them) with Verilator's configuration file `waivers`.
    pub(crate) fn build_files(
        &self,
        (module, name): (&str, &str),
        files: &[(&str, &str)],
        waivers: &str,
        shim: &str,
        (abi_symbol, abi): (&[u8], u32),
    ) -> Result<(Library, PathBuf), BridgeError> {
        let mut hash_input = waivers.to_string();
        for (file, text) in files {
            hash_input.push_str(file);
            hash_input.push_str(text);
        }
        let key = content_hash(&hash_input, shim)[..16].to_string();
        let dir = self
            .root
            .join("models")
            .join(format!("{name}-{key}-abi{abi}"));
        let so = dir.join("model.so");
        if !so.exists() {
            let names: Vec<&str> = files.iter().map(|(file, _)| *file).collect();
            self.verilate(
                &format!("{name}-{key}"),
                &dir,
                &|src| {
                    let write = |name: &str, text: &str| {
                        std::fs::create_dir_all(src)
                            .and_then(|_| std::fs::write(src.join(name), text))
                            .map_err(|cause| EmitError::Write {
                                path: src.join(name).display().to_string(),
                                cause,
                            })
                    };
                    for (file, text) in files {
                        write(file, text)?;
                    }
                    write(WAIVER_FILE, waivers)
                },
                module,
                &names,
                shim,
            )?;
        }
        let lib = open_shim_library(&so, abi_symbol, abi)?;
        Ok((lib, so))
    }

    /// Build (or load from the cache) one Verilated block with its own shim: top module
    /// `module` in `file`, C symbols `<name>_new/_free/_flush/_run`, and the shim's ABI
    /// symbol and version.
    pub(crate) fn load_block<R: Copy>(
        &self,
        names: (&str, &str, &str),
        verilog: &str,
        shim: &str,
        abi: (&[u8], u32),
    ) -> Result<(BlockLib, R), BridgeError> {
        let (lib, so) = self.build_block(names, verilog, shim, abi)?;
        let name = names.2;
        let load_err = |e: libloading::Error| BridgeError::Load {
            path: so.display().to_string(),
            message: e.to_string(),
        };
        let symbol = |suffix: &str| format!("{name}_{suffix}\0");
        // SAFETY: the symbol types match the shim's `extern "C"` declarations (`new`,
        // `free`, `flush` and the block's run function), whose ABI version was checked.
        unsafe {
            let new: NewFn = *lib.get(symbol("new").as_bytes()).map_err(load_err)?;
            let free: FreeFn = *lib.get(symbol("free").as_bytes()).map_err(load_err)?;
            let flush: FreeFn = *lib.get(symbol("flush").as_bytes()).map_err(load_err)?;
            let run: R = *lib.get(symbol("run").as_bytes()).map_err(load_err)?;
            Ok((
                BlockLib {
                    _lib: lib,
                    new,
                    free,
                    flush,
                    path: so,
                },
                run,
            ))
        }
    }

    /// Build (or load from the cache) the `norm_quant` block of `shape`.
    pub fn load_norm_quant(&self, shape: NormQuantShape) -> Result<NormQuantModel, BridgeError> {
        let (block, run) = self.load_vector_block(
            (NORM_QUANT_MODULE, NORM_QUANT_FILE, "tern_norm_quant"),
            norm_quant_verilog(shape),
            SHIM,
            shape.lanes,
        )?;
        Ok(NormQuantModel { shape, block, run })
    }

    /// Build (or load from the cache) the `to_int8` block of `lanes` lanes.
    pub fn load_to_int8(&self, lanes: usize) -> Result<ToInt8Model, BridgeError> {
        let (block, run) = self.load_vector_block(
            (TO_INT8_MODULE, TO_INT8_FILE, "tern_to_int8"),
            to_int8_verilog(lanes),
            TO_INT8_SHIM,
            lanes,
        )?;
        Ok(ToInt8Model { lanes, block, run })
    }

    /// Build (or load from the cache) the `rope` block of `lanes` lanes for heads of up
    /// to `max_head_dim`.
    pub fn load_rope(&self, lanes: usize, max_head_dim: usize) -> Result<RopeModel, BridgeError> {
        let (block, run) = self.load_vector_block(
            (ROPE_MODULE, ROPE_FILE, "tern_rope"),
            rope_verilog(lanes, max_head_dim),
            ROPE_SHIM,
            lanes,
        )?;
        Ok(RopeModel {
            lanes,
            max_head_dim,
            block,
            run,
        })
    }

    /// Build (or load from the cache) the `relu2_mul` block of `shape`.
    pub fn load_relu2_mul(&self, shape: NormQuantShape) -> Result<Relu2MulModel, BridgeError> {
        let (block, run) = self.load_vector_block(
            (RELU2_MUL_MODULE, RELU2_MUL_FILE, "tern_relu2_mul"),
            relu2_mul_verilog(shape),
            RELU2_MUL_SHIM,
            shape.lanes,
        )?;
        Ok(Relu2MulModel { shape, block, run })
    }

    /// Build (or load from the cache) the `embed` block of `lanes` lanes.
    pub fn load_embed(&self, lanes: usize) -> Result<EmbedModel, BridgeError> {
        let (block, run) = self.load_vector_block(
            (EMBED_MODULE, EMBED_FILE, "tern_embed"),
            embed_verilog(lanes),
            EMBED_SHIM,
            lanes,
        )?;
        Ok(EmbedModel { lanes, block, run })
    }

    /// Build (or load from the cache) the `dequant` block of `lanes` lanes.
    pub fn load_dequant(&self, lanes: usize) -> Result<DequantModel, BridgeError> {
        let (block, run) = self.load_vector_block(
            (DEQUANT_MODULE, DEQUANT_FILE, "tern_dequant"),
            dequant_verilog(lanes),
            DEQUANT_SHIM,
            lanes,
        )?;
        Ok(DequantModel { lanes, block, run })
    }
}

impl NormQuantModel {
    pub fn shape(&self) -> NormQuantShape {
        self.shape
    }

    /// Run one command on a fresh instance (`vcd`: a waveform to write; `stall_seed`
    /// non-zero: random stalls on both handshakes).
    pub fn run(
        &self,
        input: &NormQuantInput,
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<RawRun, BridgeError> {
        let NormQuantInput {
            v,
            v_frac,
            gain,
            eps,
        } = *input;
        let n = v.len();
        assert!(
            n > 0
                && n <= self.shape.max_n
                && n.is_multiple_of(self.shape.lanes)
                && gain.g.len() == n,
            "a vector of {n} does not fit {:?}",
            self.shape
        );
        let mut q = vec![0i8; n];
        let (mut got, mut max, mut rms) = (0u32, 0u64, 0u64);
        // SAFETY: every pointer covers what the shim reads or writes (n elements, one
        // count, two u64).
        let clocks = self.block.with_instance(vcd, |m| unsafe {
            let limit = 400 + 20 * n as u64;
            (self.run)(
                m,
                n as u32,
                v_frac,
                eps.m,
                eps.e,
                v.as_ptr(),
                gain.g.as_ptr(),
                q.as_mut_ptr(),
                &mut got,
                &mut max,
                &mut rms,
                limit,
                stall_seed,
            )
        })?;
        Ok(RawRun {
            q,
            outputs: got,
            max,
            rms,
            clocks,
        })
    }

    /// One command against the golden model: the int8 vector, `M` and `r` bit for bit,
    /// exactly `n` outputs, within the clock limit; on a mismatch the waveform is written
    /// to `waveforms/` and named.
    pub fn check(
        &self,
        input: &NormQuantInput,
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<NormQuantRun, VectorError> {
        let (v, gain) = (input.v, input.gain);
        let want = norm_quant(v, input.v_frac, gain, input.eps);
        let RawRun {
            q,
            outputs: got,
            max,
            rms,
            clocks,
        } = self.run(input, stall_seed, None)?;
        let what = if let Some(what) = unfinished(clocks, got, v.len()) {
            Some(what)
        } else if let Some(i) = (0..q.len()).find(|&i| q[i] != want.q[i]) {
            Some(format!(
                "first differing output q[{i}] = {} (golden {}; v {}, g {})",
                q[i], want.q[i], v[i], gain.g[i]
            ))
        } else if (max, rms) != (want.max, want.rms) {
            Some(format!(
                "M {max} r {rms} (golden M {} r {})",
                want.max, want.rms
            ))
        } else {
            None
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.run(input, stall_seed, Some(vcd)));
            let at = ("norm_quant", self.shape.lanes, seed, v.len());
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(NormQuantRun {
            out: Quantised {
                q,
                max,
                rms,
                gain_frac: gain.frac,
            },
            clocks,
        })
    }
}

/// The shim's `DequantCommand`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct DequantCommand {
    max: u64,
    rms: u64,
    gain_frac: u32,
    w_m: u32,
    w_e: i32,
    out_frac: i32,
    n: u32,
    add: u32,
}

/// The shim's `DequantResult`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct DequantResult {
    clocks: u64,
    outputs: u32,
    saturated: u32,
    k: u32,
    t: i32,
}

type DequantRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    *const DequantCommand,
    *const i32,
    *const i32,
    *mut i32,
    u64,
    u64,
    *mut DequantResult,
);

/// A Verilated `dequant` of one lane count.
pub struct DequantModel {
    lanes: usize,
    block: BlockLib,
    run: DequantRunFn,
}

/// One `dequant` command's operands: a token's factors (from its `norm_quant`), the
/// weight scale, the output's fractional bits, the results and, to add to, the residual.
#[derive(Debug, Clone)]
pub struct DequantInput<'a> {
    pub norm: &'a Quantised,
    pub weight_scale: Scale,
    pub out_frac: i32,
    pub acc: &'a [i32],
    pub residual: Option<&'a [i32]>,
}

/// What the RTL gave for one `dequant` command, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DequantRun {
    pub y: Vec<i32>,
    pub factor: Factor,
    pub saturated: bool,
    pub clocks: u64,
}

impl DequantModel {
    fn raw(
        &self,
        input: &DequantInput,
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i32>, DequantResult), BridgeError> {
        let n = input.acc.len();
        assert!(
            n > 0 && n.is_multiple_of(self.lanes) && input.residual.is_none_or(|x| x.len() == n),
            "{n} results on {} lanes",
            self.lanes
        );
        let cmd = DequantCommand {
            max: input.norm.max,
            rms: input.norm.rms,
            gain_frac: input.norm.gain_frac as u32,
            w_m: input.weight_scale.m,
            w_e: input.weight_scale.e,
            out_frac: input.out_frac,
            n: n as u32,
            add: u32::from(input.residual.is_some()),
        };
        let zeros = vec![0i32; n];
        let x = input.residual.unwrap_or(&zeros);
        let mut y = vec![0i32; n];
        let mut r = DequantResult::default();
        // SAFETY: the pointers cover n elements each, one command and one result.
        self.block.with_instance(vcd, |m| unsafe {
            (self.run)(
                m,
                &cmd,
                input.acc.as_ptr(),
                x.as_ptr(),
                y.as_mut_ptr(),
                200 + 12 * n as u64,
                stall_seed,
                &mut r,
            )
        })?;
        Ok((y, r))
    }

    /// One command against the golden model: the factor, every output and the
    /// saturation flag bit for bit, exactly n outputs; a mismatch writes a waveform.
    pub fn check(
        &self,
        input: &DequantInput,
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<DequantRun, VectorError> {
        let want_factor = factor(input.norm, input.weight_scale, input.out_frac);
        let mut sat = Saturations::default();
        let acc: Vec<i64> = input.acc.iter().map(|&a| i64::from(a)).collect();
        let mut want = dequant(&acc, want_factor, &mut sat);
        if let Some(x) = input.residual {
            want = x
                .iter()
                .zip(&want)
                .map(|(&a, &b)| sat.i32(i128::from(a) + i128::from(b)))
                .collect();
        }
        let (y, r) = self.raw(input, stall_seed, None)?;
        let n = input.acc.len();
        let got_factor = Factor {
            k: u64::from(r.k),
            t: r.t,
        };
        let what = if let Some(what) = unfinished(r.clocks, r.outputs, n) {
            Some(what)
        } else if got_factor != want_factor {
            Some(format!("factor {got_factor:?} (golden {want_factor:?})"))
        } else if let Some(i) = (0..n).find(|&i| y[i] != want[i]) {
            Some(format!(
                "first differing output y[{i}] = {} (golden {}; acc {})",
                y[i], want[i], input.acc[i]
            ))
        } else if (r.saturated != 0) != (sat.0 > 0) {
            Some(format!(
                "saturated flag {} (golden {} saturations)",
                r.saturated, sat.0
            ))
        } else {
            None
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.raw(input, stall_seed, Some(vcd)));
            let at = ("dequant", self.lanes, seed, n);
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(DequantRun {
            y,
            factor: got_factor,
            saturated: r.saturated != 0,
            clocks: r.clocks,
        })
    }
}

#[allow(clippy::type_complexity)]
type ToInt8RunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    i32,
    u32,
    i32,
    *const i32,
    *mut i8,
    *mut u32,
    u64,
    u64,
) -> u64;

/// A Verilated `to_int8` of one lane count.
pub struct ToInt8Model {
    lanes: usize,
    block: BlockLib,
    run: ToInt8RunFn,
}

impl ToInt8Model {
    fn raw(
        &self,
        y: &[i32],
        y_frac: i32,
        inv_unit: Scale,
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i8>, u32, u64), BridgeError> {
        let n = y.len();
        assert!(
            n > 0 && n.is_multiple_of(self.lanes),
            "{n} values on {} lanes",
            self.lanes
        );
        let mut q = vec![0i8; n];
        let mut got = 0u32;
        // SAFETY: the pointers cover n elements and a count.
        let clocks = self.block.with_instance(vcd, |m| unsafe {
            (self.run)(
                m,
                n as u32,
                y_frac,
                inv_unit.m,
                inv_unit.e,
                y.as_ptr(),
                q.as_mut_ptr(),
                &mut got,
                100 + 8 * n as u64,
                stall_seed,
            )
        })?;
        Ok((q, got, clocks))
    }

    /// One command against the golden `to_int8`, bit for bit, exactly n outputs; the
    /// clocks on success. A mismatch writes a waveform.
    pub fn check(
        &self,
        y: &[i32],
        y_frac: i32,
        inv_unit: Scale,
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<u64, VectorError> {
        let want = to_int8(y, y_frac, inv_unit);
        let (q, got, clocks) = self.raw(y, y_frac, inv_unit, stall_seed, None)?;
        let n = y.len();
        let what = if let Some(what) = unfinished(clocks, got, n) {
            Some(what)
        } else {
            (0..n).find(|&i| q[i] != want[i]).map(|i| {
                format!(
                    "first differing output q[{i}] = {} (golden {}; y {})",
                    q[i], want[i], y[i]
                )
            })
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.raw(y, y_frac, inv_unit, stall_seed, Some(vcd)));
            let at = ("to_int8", self.lanes, seed, n);
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(clocks)
    }
}

#[allow(clippy::type_complexity)]
type RopeRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    u32,
    *const i16,
    *const i32,
    *mut i32,
    *mut u32,
    *mut u32,
    u64,
    u64,
) -> u64;

/// A Verilated `rope` of one lane count.
pub struct RopeModel {
    lanes: usize,
    max_head_dim: usize,
    block: BlockLib,
    run: RopeRunFn,
}

impl RopeModel {
    fn raw(
        &self,
        y: &[i32],
        head_dim: usize,
        row: &[(i16, i16)],
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i32>, u32, bool, u64), BridgeError> {
        assert!(
            head_dim <= self.max_head_dim
                && head_dim.is_multiple_of(2 * self.lanes)
                && y.len().is_multiple_of(head_dim)
                && row.len() == head_dim / 2,
            "heads of {head_dim} on {} lanes",
            self.lanes
        );
        let cs: Vec<i16> = row.iter().flat_map(|&(c, s)| [c, s]).collect();
        let mut out = vec![0i32; y.len()];
        let (mut got, mut sat) = (0u32, 0u32);
        // SAFETY: the pointers cover the table row, the vector, the output and two counts.
        let clocks = self.block.with_instance(vcd, |m| unsafe {
            (self.run)(
                m,
                (y.len() / head_dim) as u32,
                head_dim as u32,
                cs.as_ptr(),
                y.as_ptr(),
                out.as_mut_ptr(),
                &mut got,
                &mut sat,
                200 + 8 * y.len() as u64,
                stall_seed,
            )
        })?;
        Ok((out, got, sat != 0, clocks))
    }

    /// One command against the golden `rope` over every head, bit for bit, with the
    /// saturation flag and exactly as many outputs as inputs; the clocks on success.
    pub fn check(
        &self,
        y: &[i32],
        head_dim: usize,
        row: &[(i16, i16)],
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<u64, VectorError> {
        let mut want = y.to_vec();
        let mut sat = Saturations::default();
        want.chunks_mut(head_dim)
            .for_each(|head| rope(head, row, &mut sat));
        let (got_y, got, saturated, clocks) = self.raw(y, head_dim, row, stall_seed, None)?;
        let n = y.len();
        let what = if let Some(what) = unfinished(clocks, got, n) {
            Some(what)
        } else if let Some(i) = (0..n).find(|&i| got_y[i] != want[i]) {
            Some(format!(
                "first differing output y[{i}] = {} (golden {}; head {}, element {})",
                got_y[i],
                want[i],
                i / head_dim,
                i % head_dim
            ))
        } else if saturated != (sat.0 > 0) {
            Some(format!(
                "saturated flag {saturated} (golden {} saturations)",
                sat.0
            ))
        } else {
            None
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.raw(y, head_dim, row, stall_seed, Some(vcd)));
            let at = ("rope", self.lanes, seed, n);
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(clocks)
    }
}

#[allow(clippy::type_complexity)]
type Relu2MulRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    i32,
    *const i32,
    *const i32,
    *mut i32,
    *mut u32,
    *mut i32,
    u64,
    u64,
) -> u64;

/// A Verilated `relu2_mul` of one shape.
pub struct Relu2MulModel {
    shape: NormQuantShape,
    block: BlockLib,
    run: Relu2MulRunFn,
}

impl Relu2MulModel {
    fn raw(
        &self,
        g: &[i32],
        u: &[i32],
        frac: i32,
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i32>, u32, i32, u64), BridgeError> {
        let n = g.len();
        assert!(
            n > 0 && n <= self.shape.max_n && n.is_multiple_of(self.shape.lanes) && u.len() == n,
            "{n} pairs on {:?}",
            self.shape
        );
        let mut y = vec![0i32; n];
        let (mut got, mut frac_out) = (0u32, 0i32);
        // SAFETY: the pointers cover n elements each and two counts.
        let clocks = self.block.with_instance(vcd, |m| unsafe {
            (self.run)(
                m,
                n as u32,
                frac,
                g.as_ptr(),
                u.as_ptr(),
                y.as_mut_ptr(),
                &mut got,
                &mut frac_out,
                200 + 8 * n as u64,
                stall_seed,
            )
        })?;
        Ok((y, got, frac_out, clocks))
    }

    /// One command against the golden `relu2_mul`: the block and its fractional bits bit
    /// for bit, exactly n outputs; the clocks on success.
    pub fn check(
        &self,
        g: &[i32],
        u: &[i32],
        frac: i32,
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<u64, VectorError> {
        let (want, want_frac) = relu2_mul(g, u, frac);
        let (y, got, got_frac, clocks) = self.raw(g, u, frac, stall_seed, None)?;
        let n = g.len();
        let what = if let Some(what) = unfinished(clocks, got, n) {
            Some(what)
        } else if got_frac != want_frac {
            Some(format!("{got_frac} fractional bits (golden {want_frac})"))
        } else {
            (0..n).find(|&i| y[i] != want[i]).map(|i| {
                format!(
                    "first differing output y[{i}] = {} (golden {}; g {}, u {})",
                    y[i], want[i], g[i], u[i]
                )
            })
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.raw(g, u, frac, stall_seed, Some(vcd)));
            let at = ("relu2_mul", self.shape.lanes, seed, n);
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(clocks)
    }
}

#[allow(clippy::type_complexity)]
type EmbedRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    i32,
    *const u16,
    *mut i32,
    *mut u32,
    *mut u32,
    u64,
    u64,
) -> u64;

/// A Verilated `embed` of one lane count.
pub struct EmbedModel {
    lanes: usize,
    block: BlockLib,
    run: EmbedRunFn,
}

impl EmbedModel {
    fn raw(
        &self,
        bits: &[u16],
        frac: i32,
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i32>, u32, bool, u64), BridgeError> {
        let n = bits.len();
        assert!(
            n > 0 && n.is_multiple_of(self.lanes),
            "{n} values on {} lanes",
            self.lanes
        );
        let mut x = vec![0i32; n];
        let (mut got, mut sat) = (0u32, 0u32);
        // SAFETY: the pointers cover n elements each and two counts.
        let clocks = self.block.with_instance(vcd, |m| unsafe {
            (self.run)(
                m,
                n as u32,
                frac,
                bits.as_ptr(),
                x.as_mut_ptr(),
                &mut got,
                &mut sat,
                100 + 8 * n as u64,
                stall_seed,
            )
        })?;
        Ok((x, got, sat != 0, clocks))
    }

    /// One command against the golden `embed`: every value and the saturation flag bit
    /// for bit, exactly n outputs; the clocks on success.
    pub fn check(
        &self,
        bits: &[u16],
        frac: i32,
        seed: u64,
        stall_seed: u64,
        waveforms: &Path,
    ) -> Result<u64, VectorError> {
        let mut sat = Saturations::default();
        let want = embed(bits, frac, &mut sat);
        let (x, got, saturated, clocks) = self.raw(bits, frac, stall_seed, None)?;
        let n = bits.len();
        let what = if let Some(what) = unfinished(clocks, got, n) {
            Some(what)
        } else if let Some(i) = (0..n).find(|&i| x[i] != want[i]) {
            Some(format!(
                "first differing output x[{i}] = {} (golden {}; bf16 0x{:04x})",
                x[i], want[i], bits[i]
            ))
        } else if saturated != (sat.0 > 0) {
            Some(format!(
                "saturated flag {saturated} (golden {} saturations)",
                sat.0
            ))
        } else {
            None
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| drop(self.raw(bits, frac, stall_seed, Some(vcd)));
            let at = ("embed", self.lanes, seed, n);
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(clocks)
    }
}
