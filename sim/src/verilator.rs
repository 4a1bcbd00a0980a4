//! The Verilator bridge: build a cycle-accurate model of any generated design on
//! demand, cache it by content hash, load it and drive it from Rust.
//!
//! Build: `verilator --cc` turns the design into C++; the `cc` crate compiles that and
//! a generic C shim (`cpp/shim.cpp`) into a shared object, linked against Verilator's
//! runtime (compiled once per Verilator version). The crate `verilated` is not used:
//! it does not build against Verilator 5.

use libloading::Library;
use std::ffi::{c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tern_hdl::emit::{write_design, Design, StreamBits, WRAPPER_FILE, WRAPPER_MODULE};
use tern_hdl::streams::words_for;

const SHIM: &str = include_str!("../cpp/shim.cpp");
const SHIM_ABI: u32 = 2;
const RUNTIME_SOURCES: [&str; 3] = [
    "verilated.cpp",
    "verilated_threads.cpp",
    "verilated_vcd_c.cpp",
];
const DEFINES: [(&str, &str); 5] = [
    ("VM_COVERAGE", "0"),
    ("VM_SC", "0"),
    ("VM_TRACE", "1"),
    ("VM_TRACE_VCD", "1"),
    ("VM_TRACE_FST", "0"),
];

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("Verilator was not found on PATH ({0}); install it with `scripts/setup.sh` or `apt-get install verilator`")]
    VerilatorMissing(String),
    #[error("verilator failed on the design in {dir} (exit {status}):\n{log}")]
    VerilatorFailed {
        dir: String,
        status: String,
        log: String,
    },
    #[error("compiling the Verilated model in {dir} failed: {message}")]
    CompileFailed { dir: String, message: String },
    #[error("loading the model {path}: {message}")]
    Load { path: String, message: String },
    #[error("{context}: {cause}")]
    Io {
        context: String,
        cause: std::io::Error,
    },
    #[error("writing the design: {0}")]
    Emit(tern_hdl::emit::EmitError),
}

// By hand rather than `#[from]`, which would also make the inner error the `source`
// and `{:#}` print it twice (the message already carries it).
impl From<tern_hdl::emit::EmitError> for BridgeError {
    fn from(e: tern_hdl::emit::EmitError) -> Self {
        BridgeError::Emit(e)
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BridgeError {
    let context = context.into();
    move |cause| BridgeError::Io { context, cause }
}

/// Where built models live: `$TERN_CACHE_DIR`, else `~/.cache/tern`.
pub fn default_cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("TERN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("tern"),
        None => std::env::temp_dir().join("tern-cache"),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `verilator --version` and `VERILATOR_ROOT`.
pub fn verilator_info() -> Result<(String, PathBuf), BridgeError> {
    let run = |args: &[&str]| -> Result<String, BridgeError> {
        let out = Command::new("verilator")
            .args(args)
            .output()
            .map_err(|e| BridgeError::VerilatorMissing(e.to_string()))?;
        if !out.status.success() {
            return Err(BridgeError::VerilatorMissing(format!(
                "`verilator {}` exited with {}",
                args.join(" "),
                out.status
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let version = run(&["--version"])?;
    let root = PathBuf::from(run(&["--getenv", "VERILATOR_ROOT"])?);
    Ok((version, root))
}

fn cc_build(out_dir: &Path, root: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .target(env!("TERN_TARGET"))
        .host(env!("TERN_HOST"))
        .opt_level(1)
        .debug(false)
        .cargo_metadata(false)
        .warnings(false)
        .pic(true)
        .out_dir(out_dir)
        .flag("-std=gnu++17")
        .flag("-w")
        .include(root.join("include"))
        .include(root.join("include").join("vltstd"));
    for (k, v) in DEFINES {
        b.define(k, v);
    }
    b
}

/// Build `tmp` and move it to `dest`; if another process won the race, keep theirs.
fn publish(tmp: &Path, dest: &Path) -> Result<(), BridgeError> {
    match std::fs::rename(tmp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.exists() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => Err(io(format!(
            "moving {} to {}",
            tmp.display(),
            dest.display()
        ))(e)),
    }
}

fn unique_tmp(parent: &Path, name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Verilator's runtime library, compiled once per Verilator version.
fn runtime_library(cache: &Path, version: &str, root: &Path) -> Result<PathBuf, BridgeError> {
    let key: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = cache.join(format!("verilator-runtime-{key}"));
    let lib = dir.join("libternverilated.a");
    if lib.exists() {
        return Ok(lib);
    }
    std::fs::create_dir_all(cache).map_err(io(format!("creating {}", cache.display())))?;
    let tmp = unique_tmp(cache, "runtime");
    std::fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    let mut b = cc_build(&tmp, root);
    for src in RUNTIME_SOURCES {
        b.file(root.join("include").join(src));
    }
    b.try_compile("ternverilated")
        .map_err(|e| BridgeError::CompileFailed {
            dir: tmp.display().to_string(),
            message: e.to_string(),
        })?;
    publish(&tmp, &dir)?;
    Ok(lib)
}

/// Builds and caches models by the design's content hash.
#[derive(Debug, Clone)]
pub struct ModelCache {
    pub root: PathBuf,
}

impl Default for ModelCache {
    fn default() -> Self {
        ModelCache {
            root: default_cache_root(),
        }
    }
}

impl ModelCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModelCache { root: root.into() }
    }

    /// The directory a design's model lives in (whether built yet or not), keyed by
    /// the design and the shim it is compiled with.
    pub fn model_dir(&self, design: &Design) -> PathBuf {
        self.root
            .join("models")
            .join(format!("{}-abi{SHIM_ABI}", design.short_hash()))
    }

    /// Load the design's model, building it first if it is not cached.
    pub fn load(&self, design: &Design) -> Result<ModelLibrary, BridgeError> {
        let dir = self.model_dir(design);
        let so = dir.join("model.so");
        if !so.exists() {
            self.build(design, &dir)?;
        }
        ModelLibrary::open(&so, design.stream_bits())
    }

    fn build(&self, design: &Design, dir: &Path) -> Result<(), BridgeError> {
        self.verilate(
            design.short_hash(),
            dir,
            &|src| write_design(design, src).map(|_| ()),
            WRAPPER_MODULE,
            &[WRAPPER_FILE, tern_hdl::emit::DESIGN_FILE],
            SHIM,
        )
    }

    /// Verilate the sources `write_sources` puts in a directory (plus rust-hdl's
    /// waivers), compile them with `shim` into `dir/model.so`.
    pub(crate) fn verilate(
        &self,
        key: &str,
        dir: &Path,
        write_sources: &dyn Fn(&Path) -> Result<(), tern_hdl::emit::EmitError>,
        top_module: &str,
        files: &[&str],
        shim: &str,
    ) -> Result<(), BridgeError> {
        let (version, root) = verilator_info()?;
        let runtime = runtime_library(&self.root, &version, &root)?;
        let models = self.root.join("models");
        std::fs::create_dir_all(&models).map_err(io(format!("creating {}", models.display())))?;
        let tmp = unique_tmp(&models, key);
        let src = tmp.join("src");
        let obj = tmp.join("obj");
        write_sources(&src)?;
        tracing::info!(key, top_module, "verilating design");
        let out = Command::new("verilator")
            .current_dir(&src)
            .args([
                "--cc",
                "--trace",
                "-O3",
                "--x-assign",
                "fast",
                "--x-initial",
                "fast",
            ])
            .args(["--top-module", top_module, "--Mdir"])
            .arg(&obj)
            .arg(tern_hdl::emit::WAIVER_FILE)
            .args(files)
            .output()
            .map_err(|e| BridgeError::VerilatorMissing(e.to_string()))?;
        if !out.status.success() {
            return Err(BridgeError::VerilatorFailed {
                dir: tmp.display().to_string(),
                status: out.status.to_string(),
                log: tail(&String::from_utf8_lossy(&out.stderr), 30),
            });
        }
        let shim_path = tmp.join("shim.cpp");
        std::fs::write(&shim_path, shim).map_err(io(format!("writing {}", shim_path.display())))?;
        let mut b = cc_build(&obj, &root);
        b.include(&obj).file(&shim_path);
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&obj)
            .map_err(io(format!("reading {}", obj.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
            .collect();
        sources.sort();
        b.files(&sources);
        let compile_err = |message: String| BridgeError::CompileFailed {
            dir: tmp.display().to_string(),
            message,
        };
        b.try_compile("ternmodel")
            .map_err(|e| compile_err(e.to_string()))?;
        let mut link = b
            .try_get_compiler()
            .map_err(|e| compile_err(e.to_string()))?
            .to_command();
        let out = link
            .arg("-shared")
            .arg("-o")
            .arg(tmp.join("model.so"))
            .arg("-Wl,--whole-archive")
            .arg(obj.join("libternmodel.a"))
            .arg("-Wl,--no-whole-archive")
            .arg(&runtime)
            .arg("-pthread")
            .output()
            .map_err(io("running the C++ linker"))?;
        if !out.status.success() {
            return Err(compile_err(tail(&String::from_utf8_lossy(&out.stderr), 30)));
        }
        // Object files are large and not needed once linked.
        for entry in std::fs::read_dir(&obj).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "o" || x == "a") {
                let _ = std::fs::remove_file(p);
            }
        }
        publish(&tmp, dir)
    }
}

type NewFn = unsafe extern "C" fn(*const std::ffi::c_char) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type SetFn = unsafe extern "C" fn(*mut c_void, u32, u32, u32, *const u32, u32, *const u32, u32);
type EvalFn = unsafe extern "C" fn(*mut c_void) -> u32;
type ResultFn = unsafe extern "C" fn(*mut c_void, *mut u32);
type TickFn = unsafe extern "C" fn(*mut c_void);
type RunFreeFn = unsafe extern "C" fn(*mut c_void, u64);

#[derive(Clone, Copy)]
struct Api {
    new: NewFn,
    free: FreeFn,
    set: SetFn,
    eval: EvalFn,
    result: ResultFn,
    tick: TickFn,
    run_free: RunFreeFn,
}

/// Load a model library we built and check its shim's ABI version (`abi_symbol` is a
/// NUL-terminated `extern "C" fn() -> u32`).
pub(crate) fn open_shim_library(
    path: &Path,
    abi_symbol: &[u8],
    expected: u32,
) -> Result<Library, BridgeError> {
    let load_err = |message: String| BridgeError::Load {
        path: path.display().to_string(),
        message,
    };
    // SAFETY: the library is one we built from one of our shims; its initialisers only
    // set up Verilator's runtime.
    let lib = unsafe { Library::new(path) }.map_err(|e| load_err(e.to_string()))?;
    // SAFETY: every shim exports its ABI symbol with this signature.
    let abi = unsafe {
        *lib.get::<unsafe extern "C" fn() -> u32>(abi_symbol)
            .map_err(|e| load_err(e.to_string()))?
    };
    // SAFETY: calling the symbol just loaded, which takes no arguments.
    let found = unsafe { abi() };
    if found != expected {
        return Err(load_err(format!(
            "shim ABI {found} != expected {expected} (a stale cached model: remove it)"
        )));
    }
    Ok(lib)
}

/// The waveform path as the shims take it (`lib` names the library in the error).
pub(crate) fn waveform_path(
    lib: &Path,
    vcd: Option<&Path>,
) -> Result<Option<CString>, BridgeError> {
    vcd.map(|p| CString::new(p.as_os_str().as_encoded_bytes()))
        .transpose()
        .map_err(|e| BridgeError::Load {
            path: lib.display().to_string(),
            message: format!("waveform path: {e}"),
        })
}

/// A loaded model library; instantiate as many models from it as needed.
#[derive(Clone)]
pub struct ModelLibrary {
    _lib: Arc<Library>,
    api: Api,
    streams: StreamBits,
    pub path: PathBuf,
}

impl ModelLibrary {
    fn open(path: &Path, streams: StreamBits) -> Result<ModelLibrary, BridgeError> {
        let load_err = |message: String| BridgeError::Load {
            path: path.display().to_string(),
            message,
        };
        let lib = open_shim_library(path, b"tern_model_abi\0", SHIM_ABI)?;
        // SAFETY: the symbol types match the `extern "C"` declarations in the shim, whose
        // ABI version was checked.
        unsafe {
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .map_err(|e| load_err(e.to_string()))?
                };
            }
            let api = Api {
                new: sym!("tern_model_new"),
                free: sym!("tern_model_free"),
                set: sym!("tern_model_set_inputs"),
                eval: sym!("tern_model_eval"),
                result: sym!("tern_model_result"),
                tick: sym!("tern_model_tick"),
                run_free: sym!("tern_model_run_free"),
            };
            Ok(ModelLibrary {
                _lib: Arc::new(lib),
                api,
                streams,
                path: path.to_path_buf(),
            })
        }
    }

    /// A fresh model; `vcd` names a waveform file to write while it runs.
    pub fn instantiate(&self, vcd: Option<&Path>) -> Result<Model, BridgeError> {
        let path = waveform_path(&self.path, vcd)?;
        // SAFETY: `new` returns an owned model freed in `Drop`; the path outlives the call.
        let handle =
            unsafe { (self.api.new)(path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr())) };
        let bits = self.streams;
        Ok(Model {
            lib: self.clone(),
            handle,
            act_buf: vec![0; words_for(bits.act).max(2)],
            wgt_buf: vec![0; words_for(bits.wgt).max(2)],
            res_words: words_for(bits.res).max(2),
        })
    }
}

/// Handshake outputs after settling the combinational logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub act_ready: bool,
    pub wgt_ready: bool,
    pub res_valid: bool,
}

/// Inputs of one clock.
pub struct Inputs<'a> {
    pub reset: bool,
    pub act: Option<&'a [u32]>,
    /// `act_last`: the offered activation beat ends its token block.
    pub act_last: bool,
    pub wgt: Option<&'a [u32]>,
    pub res_ready: bool,
}

/// A clocked engine simulation the testbench can drive: the Verilator model or
/// rust-hdl's own simulator.
pub trait EngineSim {
    /// Drive the inputs (clock low) and settle; returns the handshake outputs.
    fn drive(&mut self, inputs: &Inputs) -> Handshake;
    /// The result bus (valid when `res_valid`).
    fn result(&self) -> Vec<u32>;
    /// A rising and a falling clock edge.
    fn tick(&mut self);
}

impl EngineSim for Model {
    fn drive(&mut self, inputs: &Inputs) -> Handshake {
        Model::drive(self, inputs)
    }
    fn result(&self) -> Vec<u32> {
        Model::result(self)
    }
    fn tick(&mut self) {
        Model::tick(self)
    }
}

/// One instance of the engine. Not `Send`: Verilator models stay on their thread.
pub struct Model {
    lib: ModelLibrary,
    handle: *mut c_void,
    act_buf: Vec<u32>,
    wgt_buf: Vec<u32>,
    res_words: usize,
}

impl Model {
    /// Drive the inputs (clock low) and settle; returns the handshake outputs.
    pub fn drive(&mut self, inputs: &Inputs) -> Handshake {
        fill(&mut self.act_buf, inputs.act);
        fill(&mut self.wgt_buf, inputs.wgt);
        // SAFETY: the buffers are at least two words and at least as wide as the ports
        // (the shim reads two words for ports of 33..=64 bits).
        let bits = unsafe {
            (self.lib.api.set)(
                self.handle,
                u32::from(inputs.reset),
                u32::from(inputs.act.is_some()),
                u32::from(inputs.act_last),
                self.act_buf.as_ptr(),
                u32::from(inputs.wgt.is_some()),
                self.wgt_buf.as_ptr(),
                u32::from(inputs.res_ready),
            );
            (self.lib.api.eval)(self.handle)
        };
        Handshake {
            act_ready: bits & 1 != 0,
            wgt_ready: bits & 2 != 0,
            res_valid: bits & 4 != 0,
        }
    }

    /// The result bus (valid when `res_valid`).
    pub fn result(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.res_words];
        // SAFETY: `out` holds at least the port's words.
        unsafe { (self.lib.api.result)(self.handle, out.as_mut_ptr()) };
        out.truncate(words_for(self.lib.streams.res));
        out
    }

    /// A rising and a falling clock edge.
    pub fn tick(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.tick)(self.handle) }
    }

    /// Clock `cycles` times with the current inputs, entirely in C++ (benchmark baseline).
    pub fn run_free(&mut self, cycles: u64) {
        // SAFETY: valid handle.
        unsafe { (self.lib.api.run_free)(self.handle, cycles) }
    }
}

fn fill(buf: &mut [u32], beat: Option<&[u32]>) {
    match beat {
        Some(b) => {
            let n = b.len().min(buf.len());
            buf[..n].copy_from_slice(&b[..n]);
            buf[n..].fill(0);
        }
        None => buf.fill(0),
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle came from `new` and is freed once; the library outlives it.
        unsafe { (self.lib.api.free)(self.handle) }
    }
}
