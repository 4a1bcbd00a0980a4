//! The device API: open a board by URI, load a ternary weight matrix, run GEMV/GEMM.
//!
//! Memory layout chosen here (within the layout rules of `tern_hdl::top`): the packed
//! weight beats at 0, then one batch of activations at the next 4 KiB boundary, then
//! that batch's results at the next. A GEMM with more tokens than fit runs as several
//! batches; the weights stay loaded.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tern_hdl::streams::{pack_activations, pack_weights, unpack_results, Beat};
use tern_hdl::top::{design_id, regmap, MemoryLayout};
use tern_hdl::Config;
use tern_sim::top_model::MemoryModel;
use tern_sim::verilator::ModelCache;

use crate::error::{HostError, Result};
use crate::framed::FramedTransport;
use crate::pipe::StreamPipe;
use crate::transport::{Info, Transport};
use crate::uri::BoardUri;

/// Regions of a batch start on 4 KiB boundaries.
const PAGE: u64 = 4096;
/// Most tokens one batch carries (host buffers stay bounded).
pub const MAX_BATCH_TOKENS: usize = 1 << 16;

#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Bound on every transport call.
    pub timeout: Duration,
    /// Bound on one run (start to interrupt).
    pub run_timeout: Duration,
    /// Where `sim:` builds and caches its Verilator model.
    pub cache: PathBuf,
    /// How long to wait in `tern serve`'s queue while another client holds the board.
    pub board_wait: Duration,
    /// The memory behind `sim:`'s top (None: one that keeps up with any bus).
    pub memory: Option<MemoryModel>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            timeout: Duration::from_secs(10),
            run_timeout: Duration::from_secs(60),
            cache: tern_sim::verilator::default_cache_root(),
            board_wait: Duration::from_secs(10),
            memory: None,
        }
    }
}

/// Open the transport a URI names (no checks of what is behind it).
pub fn open_transport(uri: &str, cfg: &Config, opts: &OpenOptions) -> Result<Box<dyn Transport>> {
    let connect_err = |what: String| {
        move |cause| HostError::Io {
            context: format!("connecting to {what} (is `tern serve` running?)"),
            cause,
        }
    };
    Ok(match BoardUri::parse(uri)? {
        BoardUri::Sim => Box::new(crate::sim::SimBoard::new(
            cfg,
            &ModelCache::new(&opts.cache),
            None,
            opts.memory,
        )?),
        BoardUri::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(&path)
                .map_err(connect_err(path.display().to_string()))?;
            Box::new(FramedTransport::connect_waiting(
                StreamPipe::new(s),
                uri,
                opts.timeout,
                opts.board_wait,
            )?)
        }
        BoardUri::Tcp(addr) => {
            use std::net::ToSocketAddrs;
            let addrs: Vec<_> = addr
                .to_socket_addrs()
                .map_err(connect_err(addr.clone()))?
                .collect();
            let first = addrs.first().ok_or_else(|| HostError::BadUri {
                uri: uri.to_string(),
                reason: "the host resolves to no address".into(),
            })?;
            let s = std::net::TcpStream::connect_timeout(first, opts.timeout)
                .map_err(connect_err(addr.clone()))?;
            s.set_nodelay(true).map_err(connect_err(addr.clone()))?;
            Box::new(FramedTransport::connect_waiting(
                StreamPipe::new(s),
                uri,
                opts.timeout,
                opts.board_wait,
            )?)
        }
        BoardUri::Xdma(prefix) => Box::new(crate::xdma::XdmaTransport::open(&prefix, 0)?),
        BoardUri::Usb { vid, pid } => Box::new(crate::usb::open(vid, pid, opts.timeout)?),
    })
}

/// Bytes moved and time spent, summed over a device's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_to_card: u64,
    pub bytes_from_card: u64,
}

/// What one GEMM run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `tokens × M` results, token-major.
    pub y: Vec<i64>,
    /// Kernel clocks, summed over batches (the top's CYCLES register).
    pub cycles: u64,
    pub batches: usize,
    /// Bytes the kernel read from and wrote to its memory (by the layout: activations
    /// once, the weights once per token block, results).
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub wall: Duration,
    pub traffic: Traffic,
}

pub struct Device {
    transport: Box<dyn Transport>,
    cfg: Config,
    layout: MemoryLayout,
    info: Info,
    run_timeout: Duration,
    weights_loaded: bool,
    pub traffic: Traffic,
}

impl Device {
    /// Open the board at `uri` and check that it carries the engine `cfg` generates.
    pub fn open(uri: &str, cfg: &Config, opts: &OpenOptions) -> Result<Device> {
        let transport = open_transport(uri, cfg, opts)?;
        Device::attach(transport, cfg, opts)
    }

    /// Use an already open transport.
    pub fn attach(
        mut transport: Box<dyn Transport>,
        cfg: &Config,
        opts: &OpenOptions,
    ) -> Result<Device> {
        let info = transport.info()?;
        if info.hw_id != regmap::HW_ID_VALUE {
            return Err(HostError::NotTern(info.hw_id));
        }
        let engine = tern_hdl::generate(cfg).map_err(|e| HostError::Sim(e.to_string()))?;
        let expected = design_id(&engine);
        if info.design_id != expected {
            return Err(HostError::WrongDesign {
                board: info.design_id,
                config: expected,
            });
        }
        let layout = MemoryLayout::of(cfg);
        if info.card_bytes < layout.weight_region_bytes() as u64 {
            return Err(HostError::Shape(format!(
                "a memory of {} bytes cannot hold the {}-byte weights",
                info.card_bytes,
                layout.weight_region_bytes()
            )));
        }
        Ok(Device {
            transport,
            cfg: cfg.clone(),
            layout,
            info,
            run_timeout: opts.run_timeout,
            weights_loaded: false,
            traffic: Traffic::default(),
        })
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport.as_mut()
    }

    pub fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    /// Where a batch's activations start: the first 4 KiB boundary after the weights.
    fn activations_at(&self) -> u64 {
        (self.layout.weight_region_bytes() as u64).next_multiple_of(PAGE)
    }

    /// Where a batch of `tokens` tokens' results start.
    fn results_at(&self, tokens: usize) -> u64 {
        self.activations_at()
            + ((tokens * self.layout.activation_stride()) as u64).next_multiple_of(PAGE)
    }

    /// Tokens one batch can hold beside the weights (at most [`MAX_BATCH_TOKENS`]).
    pub fn batch_tokens(&self) -> usize {
        let free = self
            .info
            .card_bytes
            .saturating_sub(self.activations_at() + 2 * PAGE);
        let per_token = (self.layout.activation_stride() + self.layout.result_stride()) as u64;
        (free / per_token).min(MAX_BATCH_TOKENS as u64) as usize
    }

    /// Write beats back to back, `stride` bytes per group of `per_group` beats (the rest
    /// of a group's stride is zero padding).
    fn dma_write(
        &mut self,
        addr: u64,
        beats: &[Beat],
        per_group: usize,
        stride: usize,
    ) -> Result<()> {
        let groups = beats.len().div_ceil(per_group);
        let mut bytes = Vec::with_capacity(groups * stride);
        for group in beats.chunks(per_group) {
            let start = bytes.len();
            for w in group.iter().flatten() {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
            bytes.resize(start + stride, 0);
        }
        self.transport.dma_write(addr, &bytes)?;
        self.traffic.bytes_to_card += bytes.len() as u64;
        Ok(())
    }

    /// Pack a row-major ternary matrix (M×K, entries −1, 0, +1) and load it.
    pub fn load_weights(&mut self, w: &[i8]) -> Result<()> {
        let (m, k) = (self.cfg.workload.m, self.cfg.workload.k);
        let beats = pack_weights(&self.cfg.geometry, w, m, k)
            .map_err(|e| HostError::Shape(format!("weights: {e}")))?;
        let (all, bytes) = (beats.len(), self.layout.weight_bytes());
        self.dma_write(0, &beats, all, bytes)?;
        self.weights_loaded = true;
        Ok(())
    }

    /// `y = W·x` for each of the `xs.len() / K` tokens in `xs` (token-major int8).
    pub fn gemm(&mut self, xs: &[i8]) -> Result<RunReport> {
        let (m, k) = (self.cfg.workload.m, self.cfg.workload.k);
        if !self.weights_loaded {
            return Err(HostError::Shape(
                "no weights loaded (call load_weights first)".into(),
            ));
        }
        if xs.is_empty() || !xs.len().is_multiple_of(k) {
            return Err(HostError::Shape(format!(
                "activations: {} values is not a whole number of K = {k} tokens",
                xs.len()
            )));
        }
        let tokens = xs.len() / k;
        let per_batch = self.batch_tokens();
        if per_batch == 0 {
            return Err(HostError::Shape(
                "memory has no room for a token beside the weights".into(),
            ));
        }
        let t0 = Instant::now();
        let before = self.traffic.clone();
        let mut report = RunReport {
            y: Vec::with_capacity(tokens * m),
            cycles: 0,
            batches: 0,
            bytes_read: 0,
            bytes_written: 0,
            wall: Duration::ZERO,
            traffic: Traffic::default(),
        };
        for batch in xs.chunks(per_batch * k) {
            let n = batch.len() / k;
            let act_base = self.activations_at();
            let res_base = self.results_at(n);
            let mut beats = Vec::with_capacity(n * self.layout.chunks);
            for x in batch.chunks(k) {
                beats.extend(
                    pack_activations(&self.cfg.geometry, x, k)
                        .map_err(|e| HostError::Shape(format!("activations: {e}")))?,
                );
            }
            self.layout.check_regions(0, act_base, res_base, n as u64)?;
            let (chunks, stride) = (self.layout.chunks, self.layout.activation_stride());
            self.dma_write(act_base, &beats, chunks, stride)?;
            report.cycles += self.start_and_wait(act_base, res_base, n)?;
            report.bytes_read += self.layout.bytes_read(n);
            report.bytes_written += self.layout.bytes_written(n);
            let mut bytes = vec![0u8; n * self.layout.result_stride()];
            self.transport.dma_read(res_base, &mut bytes)?;
            self.traffic.bytes_from_card += bytes.len() as u64;
            let beat_stride = self.layout.result_beat_stride();
            let result_words = self.layout.result_words;
            for token in bytes.chunks(self.layout.result_stride()) {
                let beats: Vec<Beat> = token
                    .chunks(beat_stride)
                    .map(|beat| {
                        beat[..4 * result_words]
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect()
                    })
                    .collect();
                report
                    .y
                    .extend(unpack_results(&self.cfg.geometry, &beats, m));
            }
            report.batches += 1;
        }
        report.wall = t0.elapsed();
        report.traffic = Traffic {
            bytes_to_card: self.traffic.bytes_to_card - before.bytes_to_card,
            bytes_from_card: self.traffic.bytes_from_card - before.bytes_from_card,
        };
        Ok(report)
    }

    /// Program the arguments, start, wait for the done interrupt, acknowledge it;
    /// returns the run's clocks.
    fn start_and_wait(&mut self, act: u64, res: u64, tokens: usize) -> Result<u64> {
        let t = self.transport.as_mut();
        // A kernel still running was started by someone else (or a run this process
        // abandoned): starting over it would mix two runs.
        let control = t.read32(regmap::CONTROL.into())?;
        if control & regmap::AP_IDLE == 0 {
            return Err(HostError::Busy);
        }
        // A done interrupt left pending by an earlier run would end this one's wait at once.
        let stale = t.read32(regmap::ISR.into())?;
        if stale != 0 {
            t.write32(regmap::ISR.into(), stale)?;
        }
        for (offset, address) in [
            (regmap::WEIGHTS, 0u64),
            (regmap::ACTIVATIONS, act),
            (regmap::RESULTS, res),
        ] {
            t.write32(offset.into(), address as u32)?;
            t.write32((offset + 4).into(), (address >> 32) as u32)?;
        }
        t.write32(regmap::TOKENS.into(), tokens as u32)?;
        t.write32(regmap::IER.into(), regmap::IRQ_DONE)?;
        t.write32(regmap::GIE.into(), 1)?;
        t.write32(regmap::CONTROL.into(), regmap::AP_START)?;
        t.wait_irq(1, self.run_timeout)?;
        let isr = t.read32(regmap::ISR.into())?;
        t.write32(regmap::ISR.into(), isr)?; // toggle-on-write clears what was pending
        let control = t.read32(regmap::CONTROL.into())?;
        let error = t.read32(regmap::ERROR.into())?;
        if error != 0 {
            return Err(HostError::Refused(error));
        }
        if control & regmap::AP_DONE == 0 || control & regmap::AP_IDLE == 0 {
            return Err(HostError::Protocol(format!(
                "interrupt without a finished run: CONTROL = 0x{control:x}, ISR = 0x{isr:x}"
            )));
        }
        Ok(u64::from(t.read32(regmap::CYCLES.into())?))
    }
}
