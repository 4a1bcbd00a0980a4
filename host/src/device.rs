//! The device API: open a board by URI; on a matmul top load a ternary weight matrix and
//! run GEMV/GEMM, on an attention top append to the KV cache and run attention.
//!
//! Memory layout chosen here (within the layout rules of `tern_hdl::top`): `slots`
//! resident regions from 0, each on a 4 KiB boundary, each holding one matrix's packed
//! weight beats (or one KV cache, room for `attention.max_seq_len` tokens), then one
//! batch of activations (queries) at the next 4 KiB boundary, then that batch's results
//! at the next. A GEMM with more tokens than fit runs as several batches; the weights
//! stay loaded. One slot is the default; a whole model keeps every weight tile (every
//! layer's KV caches) resident in its own slot ([`Device::set_slots`]).

#[cfg(feature = "sim")]
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tern_hdl::streams::attention::{schedule, unpack_row, RowOutput};
use tern_hdl::streams::{pack_activations, pack_weights, unpack_results, Beat};
use tern_hdl::top::{design_id, regmap, KvCacheLayout, MemoryLayout, TopLayout};
use tern_hdl::{AttentionConfig, Config, DesignConfig};
#[cfg(feature = "sim")]
use tern_sim::top_model::MemoryModel;
#[cfg(feature = "sim")]
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
    #[cfg(feature = "sim")]
    pub cache: PathBuf,
    /// How long to wait in `tern serve`'s queue while another client holds the board.
    pub board_wait: Duration,
    /// The memory behind `sim:`'s top (None: one that keeps up with any bus).
    #[cfg(feature = "sim")]
    pub memory: Option<MemoryModel>,
    /// The token `tern serve` asks for (unix: and tcp: boards; docs/wire.md, "Security").
    pub token: Option<crate::auth::Secret>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            timeout: Duration::from_secs(10),
            run_timeout: Duration::from_secs(60),
            #[cfg(feature = "sim")]
            cache: tern_sim::verilator::default_cache_root(),
            board_wait: Duration::from_secs(10),
            #[cfg(feature = "sim")]
            memory: None,
            token: None,
        }
    }
}

/// Open the transport a URI names (no checks of what is behind it; `sim:` builds the
/// top for `cfg`).
pub fn open_transport(
    uri: &str,
    cfg: &DesignConfig,
    opts: &OpenOptions,
) -> Result<Box<dyn Transport>> {
    match BoardUri::parse(uri)? {
        #[cfg(feature = "sim")]
        BoardUri::Sim => Ok(Box::new(crate::sim::SimBoard::for_design(
            cfg,
            &ModelCache::new(&opts.cache),
            None,
            opts.memory,
        )?)),
        #[cfg(not(feature = "sim"))]
        BoardUri::Sim => {
            let _ = cfg;
            Err(HostError::BadUri {
                uri: uri.to_string(),
                reason: "this build of tern-host has no simulated board (build it with \
                         the `sim` feature, as the `tern` command is)"
                    .into(),
            })
        }
        _ => connect(uri, opts),
    }
}

/// Connect to the board a URI names that is not `sim:` (whose board the caller builds):
/// `tern serve` over `unix:` or `tcp:`, a PCIe card over XDMA, a USB device, the Kria
/// board this program runs on.
pub fn connect(uri: &str, opts: &OpenOptions) -> Result<Box<dyn Transport>> {
    let connect_err = |what: String| {
        move |cause| HostError::Io {
            context: format!("connecting to {what} (is `tern serve` running?)"),
            cause,
        }
    };
    Ok(match BoardUri::parse(uri)? {
        BoardUri::Sim => {
            return Err(HostError::BadUri {
                uri: uri.to_string(),
                reason: "`sim:` is built in-process from a design, not connected to".into(),
            })
        }
        BoardUri::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(&path)
                .map_err(connect_err(path.display().to_string()))?;
            Box::new(FramedTransport::connect_waiting(
                StreamPipe::new(s),
                uri,
                opts.timeout,
                opts.board_wait,
                opts.token.as_ref(),
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
                opts.token.as_ref(),
            )?)
        }
        BoardUri::Xdma(prefix) => Box::new(crate::xdma::XdmaTransport::open(&prefix, 0)?),
        BoardUri::Usb { vid, pid } => Box::new(crate::usb::open(vid, pid, opts.timeout)?),
        BoardUri::Kria { uio, buffer } => {
            Box::new(crate::kria::KriaTransport::open(&uio, &buffer)?)
        }
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

/// What one attention call did.
#[derive(Debug, Clone)]
pub struct AttentionReport {
    /// One output per query row.
    pub rows: Vec<RowOutput>,
    /// Kernel clocks (the top's CYCLES register).
    pub cycles: u64,
    /// Bytes the kernel read (queries, each row's keys and values) and wrote.
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub wall: Duration,
    pub traffic: Traffic,
}

/// The engine behind the board, and what the host keeps of its state.
enum Engine {
    Matmul {
        cfg: Box<Config>,
        layout: MemoryLayout,
        /// Per slot: whether weights were loaded into it.
        weights_loaded: Vec<bool>,
    },
    Attention {
        cfg: Box<AttentionConfig>,
        layout: KvCacheLayout,
        /// Per slot: tokens appended to its KV cache.
        kv_len: Vec<usize>,
    },
}

pub struct Device {
    transport: Box<dyn Transport>,
    engine: Engine,
    info: Info,
    run_timeout: Duration,
    pub traffic: Traffic,
}

impl Device {
    /// Open the board at `uri` and check that it carries the engine `cfg` generates.
    pub fn open(uri: &str, cfg: &Config, opts: &OpenOptions) -> Result<Device> {
        Device::open_design(uri, &DesignConfig::Matmul(cfg.clone()), opts)
    }

    /// Open the board at `uri` carrying either engine's top.
    pub fn open_design(uri: &str, cfg: &DesignConfig, opts: &OpenOptions) -> Result<Device> {
        let transport = open_transport(uri, cfg, opts)?;
        Device::attach_design(transport, cfg, opts)
    }

    /// Use an already open transport.
    pub fn attach(
        transport: Box<dyn Transport>,
        cfg: &Config,
        opts: &OpenOptions,
    ) -> Result<Device> {
        Device::attach_design(transport, &DesignConfig::Matmul(cfg.clone()), opts)
    }

    /// Use an already open transport to a board carrying either engine's top.
    pub fn attach_design(
        mut transport: Box<dyn Transport>,
        cfg: &DesignConfig,
        opts: &OpenOptions,
    ) -> Result<Device> {
        let info = transport.info()?;
        if info.hw_id != regmap::HW_ID_VALUE {
            return Err(HostError::NotTern(info.hw_id));
        }
        let engine = tern_hdl::generate_any(cfg).map_err(|e| HostError::Sim(e.to_string()))?;
        let expected = design_id(&engine);
        if info.design_id != expected {
            return Err(HostError::WrongDesign {
                board: info.design_id,
                config: expected,
            });
        }
        let (engine, resident) = match cfg {
            DesignConfig::Matmul(c) => {
                let layout = MemoryLayout::of(c);
                let engine = Engine::Matmul {
                    cfg: Box::new(c.clone()),
                    layout,
                    weights_loaded: vec![false],
                };
                let bytes = layout.weight_region_bytes() as u64;
                (engine, ("weights", bytes))
            }
            DesignConfig::Attention(c) => {
                let layout = KvCacheLayout::of(c).map_err(|e| HostError::Shape(e.to_string()))?;
                let engine = Engine::Attention {
                    cfg: Box::new(c.clone()),
                    layout,
                    kv_len: vec![0],
                };
                let bytes = layout.cache_bytes(layout.max_seq_len);
                (engine, ("KV cache", bytes))
            }
        };
        if info.card_bytes < resident.1 {
            return Err(HostError::Shape(format!(
                "a memory of {} bytes cannot hold the {}-byte {}",
                info.card_bytes, resident.1, resident.0
            )));
        }
        Ok(Device {
            transport,
            engine,
            info,
            run_timeout: opts.run_timeout,
            traffic: Traffic::default(),
        })
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport.as_mut()
    }

    /// The memory layout of the board's top.
    pub fn layout(&self) -> TopLayout {
        match &self.engine {
            Engine::Matmul { layout, .. } => TopLayout::Matmul(*layout),
            Engine::Attention { layout, .. } => TopLayout::Attention(*layout),
        }
    }

    fn matmul(&self, call: &'static str) -> Result<(&Config, &MemoryLayout)> {
        match &self.engine {
            Engine::Matmul { cfg, layout, .. } => Ok((cfg, layout)),
            Engine::Attention { .. } => Err(HostError::WrongEngine {
                carried: "attention",
                needed: "matmul",
                call,
            }),
        }
    }

    fn attention_engine(
        &self,
        call: &'static str,
        slot: usize,
    ) -> Result<(&AttentionConfig, &KvCacheLayout, usize)> {
        match &self.engine {
            Engine::Attention {
                cfg,
                layout,
                kv_len,
            } => match kv_len.get(slot) {
                Some(&len) => Ok((cfg, layout, len)),
                None => Err(no_slot(slot, kv_len.len())),
            },
            Engine::Matmul { .. } => Err(HostError::WrongEngine {
                carried: "matmul",
                needed: "attention",
                call,
            }),
        }
    }

    /// Bytes one slot's weights or KV cache take, rounded up to 4 KiB.
    fn slot_bytes(&self) -> u64 {
        match &self.engine {
            Engine::Matmul { layout, .. } => layout.weight_region_bytes() as u64,
            Engine::Attention { layout, .. } => layout.cache_bytes(layout.max_seq_len),
        }
        .next_multiple_of(PAGE)
    }

    fn slots(&self) -> usize {
        match &self.engine {
            Engine::Matmul { weights_loaded, .. } => weights_loaded.len(),
            Engine::Attention { kv_len, .. } => kv_len.len(),
        }
    }

    /// Where slot `slot`'s weights or KV cache start.
    fn slot_at(&self, slot: usize) -> u64 {
        slot as u64 * self.slot_bytes()
    }

    /// Bytes at the start of memory that hold the weights or the KV caches.
    fn resident_bytes(&self) -> u64 {
        self.slots() as u64 * self.slot_bytes()
    }

    /// Keep `slots` weight matrices (KV caches) resident side by side, each in its own
    /// 4 KiB-aligned region. Forgets what every slot held (weights must be loaded again,
    /// caches start empty). Refused when the memory cannot hold them and a one-token
    /// batch.
    pub fn set_slots(&mut self, slots: usize) -> Result<()> {
        if slots == 0 {
            return Err(HostError::Shape("a device needs at least one slot".into()));
        }
        let need = (slots as u64)
            .checked_mul(self.slot_bytes())
            .and_then(|b| b.checked_add(2 * PAGE))
            .unwrap_or(u64::MAX);
        if need > self.info.card_bytes {
            return Err(HostError::Shape(format!(
                "{slots} slots of {} bytes do not fit a memory of {} bytes",
                self.slot_bytes(),
                self.info.card_bytes
            )));
        }
        match &mut self.engine {
            Engine::Matmul { weights_loaded, .. } => *weights_loaded = vec![false; slots],
            Engine::Attention { kv_len, .. } => *kv_len = vec![0; slots],
        }
        if self.batch_tokens() == 0 {
            self.set_slots(1)?;
            return Err(HostError::Shape(format!(
                "{slots} slots leave no room for a batch of one token"
            )));
        }
        Ok(())
    }

    /// Where a batch's activations (queries) start: the first 4 KiB boundary after the
    /// weights (KV cache).
    fn activations_at(&self) -> u64 {
        self.resident_bytes().next_multiple_of(PAGE)
    }

    /// Bytes per token (query row) of activations and of results.
    fn strides(&self) -> (usize, usize) {
        match &self.engine {
            Engine::Matmul { layout, .. } => (layout.activation_stride(), layout.result_stride()),
            Engine::Attention { layout, .. } => (layout.query_stride(), layout.result_stride()),
        }
    }

    /// Where a batch of `tokens` tokens' results start.
    fn results_at(&self, tokens: usize) -> u64 {
        self.activations_at() + ((tokens * self.strides().0) as u64).next_multiple_of(PAGE)
    }

    /// Tokens (query rows) one batch can hold beside the weights or the KV cache (at
    /// most [`MAX_BATCH_TOKENS`]).
    pub fn batch_tokens(&self) -> usize {
        let free = self
            .info
            .card_bytes
            .saturating_sub(self.activations_at() + 2 * PAGE);
        let (act, res) = self.strides();
        (free / (act + res) as u64).min(MAX_BATCH_TOKENS as u64) as usize
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
        self.load_weights_into(0, w)
    }

    /// [`Device::load_weights`] into slot `slot`.
    pub fn load_weights_into(&mut self, slot: usize, w: &[i8]) -> Result<()> {
        let (cfg, layout) = self.matmul("load_weights")?;
        if slot >= self.slots() {
            return Err(no_slot(slot, self.slots()));
        }
        let (m, k) = (cfg.workload.m, cfg.workload.k);
        let beats = pack_weights(&cfg.geometry, w, m, k)
            .map_err(|e| HostError::Shape(format!("weights: {e}")))?;
        let (all, bytes) = (beats.len(), layout.weight_bytes());
        self.dma_write(self.slot_at(slot), &beats, all, bytes)?;
        if let Engine::Matmul { weights_loaded, .. } = &mut self.engine {
            weights_loaded[slot] = true;
        }
        Ok(())
    }

    /// `y = W·x` for each of the `xs.len() / K` tokens in `xs` (token-major int8).
    pub fn gemm(&mut self, xs: &[i8]) -> Result<RunReport> {
        self.gemm_with(0, xs)
    }

    /// [`Device::gemm`] with the weights in slot `slot`.
    pub fn gemm_with(&mut self, slot: usize, xs: &[i8]) -> Result<RunReport> {
        let (cfg, layout) = self.matmul("gemm")?;
        let (cfg, layout) = (cfg.clone(), *layout);
        let (m, k) = (cfg.workload.m, cfg.workload.k);
        let loaded = match &self.engine {
            Engine::Matmul { weights_loaded, .. } => weights_loaded.get(slot).copied(),
            Engine::Attention { .. } => None,
        };
        match loaded {
            None => return Err(no_slot(slot, self.slots())),
            Some(false) => {
                return Err(HostError::Shape(format!(
                    "no weights loaded in slot {slot} (call load_weights first)"
                )))
            }
            Some(true) => {}
        }
        let weights_at = self.slot_at(slot);
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
            let mut beats = Vec::with_capacity(n * layout.chunks);
            for x in batch.chunks(k) {
                beats.extend(
                    pack_activations(&cfg.geometry, x, k)
                        .map_err(|e| HostError::Shape(format!("activations: {e}")))?,
                );
            }
            layout.check_regions(weights_at, act_base, res_base, n as u64)?;
            let (chunks, stride) = (layout.chunks, layout.activation_stride());
            self.dma_write(act_base, &beats, chunks, stride)?;
            report.cycles += self.start_and_wait(weights_at, act_base, res_base, n, None)?;
            report.bytes_read += layout.bytes_read(n);
            report.bytes_written += layout.bytes_written(n);
            let mut bytes = vec![0u8; n * layout.result_stride()];
            self.transport.dma_read(res_base, &mut bytes)?;
            self.traffic.bytes_from_card += bytes.len() as u64;
            for token in bytes.chunks(layout.result_stride()) {
                let beats = result_beats(token, layout.result_beat_stride(), layout.result_words);
                report.y.extend(unpack_results(&cfg.geometry, &beats, m));
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

    /// Tokens in the KV cache.
    pub fn kv_len(&self) -> Result<usize> {
        self.kv_len_of(0)
    }

    /// Tokens in slot `slot`'s KV cache.
    pub fn kv_len_of(&self, slot: usize) -> Result<usize> {
        Ok(self.attention_engine("kv_len", slot)?.2)
    }

    /// Forget every KV cache (the next appends start at position 0).
    pub fn kv_clear(&mut self) -> Result<()> {
        self.attention_engine("kv_clear", 0)?;
        if let Engine::Attention { kv_len, .. } = &mut self.engine {
            kv_len.iter_mut().for_each(|l| *l = 0);
        }
        Ok(())
    }

    /// Append tokens to the KV cache: `keys` and `values` hold the same number of
    /// `head_dim`-element int8 vectors, token-major. Each token is two DMA writes of
    /// `head_dim` bytes into its tile (`docs/top.md`, "Attention").
    pub fn kv_append(&mut self, keys: &[i8], values: &[i8]) -> Result<()> {
        self.kv_append_to(0, keys, values)
    }

    /// [`Device::kv_append`] to slot `slot`'s KV cache.
    pub fn kv_append_to(&mut self, slot: usize, keys: &[i8], values: &[i8]) -> Result<()> {
        let (cfg, layout, len) = self.attention_engine("kv_append", slot)?;
        let (d, max) = (cfg.attention.head_dim, cfg.attention.max_seq_len);
        let layout = *layout;
        if keys.len() != values.len() || !keys.len().is_multiple_of(d) {
            return Err(HostError::KvCache(format!(
                "{} keys and {} values are not the same whole number of head_dim = {d} vectors",
                keys.len(),
                values.len()
            )));
        }
        let adding = keys.len() / d;
        if len + adding > max {
            return Err(HostError::KvCache(format!(
                "appending {adding} tokens to {len} would hold {} tokens, more than attention.max_seq_len = {max}",
                len + adding
            )));
        }
        let bytes = |v: &[i8]| v.iter().map(|&x| x as u8).collect::<Vec<u8>>();
        let base = self.slot_at(slot);
        // Runs of consecutive keys within one tile are one write each.
        let mut i = 0;
        while i < adding {
            let at = len + i;
            let run = (layout.tile - at % layout.tile).min(adding - i);
            let span = i * d..(i + run) * d;
            self.transport
                .dma_write(base + layout.key_offset(at), &bytes(&keys[span.clone()]))?;
            self.transport
                .dma_write(base + layout.value_offset(at), &bytes(&values[span]))?;
            self.traffic.bytes_to_card += (2 * run * d) as u64;
            i += run;
        }
        if let Engine::Attention { kv_len, .. } = &mut self.engine {
            kv_len[slot] = len + adding;
        }
        Ok(())
    }

    /// Attention of query rows at positions `first_position..` against the KV cache:
    /// `queries` holds whole `head_dim`-element int8 vectors, row-major. Causal rows see
    /// the keys up to their own position (which must be inside the cache); otherwise
    /// every row sees every key.
    pub fn attention(
        &mut self,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<AttentionReport> {
        self.attention_on(0, queries, first_position, causal)
    }

    /// [`Device::attention`] against slot `slot`'s KV cache.
    pub fn attention_on(
        &mut self,
        slot: usize,
        queries: &[i8],
        first_position: usize,
        causal: bool,
    ) -> Result<AttentionReport> {
        let (cfg, layout, seq_len) = self.attention_engine("attention", slot)?;
        let (cfg, layout) = (cfg.clone(), *layout);
        let d = cfg.attention.head_dim;
        if queries.is_empty() || !queries.len().is_multiple_of(d) {
            return Err(HostError::Shape(format!(
                "queries: {} values is not a whole number of head_dim = {d} rows",
                queries.len()
            )));
        }
        let rows = queries.len() / d;
        if seq_len == 0 {
            return Err(HostError::KvCache(
                "the cache is empty (append first)".into(),
            ));
        }
        if causal && first_position + rows > seq_len {
            return Err(HostError::KvCache(format!(
                "causal rows at positions {first_position}..{} need keys the cache (of {seq_len} tokens) does not hold yet",
                first_position + rows
            )));
        }
        if rows > self.batch_tokens() {
            return Err(HostError::Shape(format!(
                "{rows} query rows do not fit beside the KV cache (at most {})",
                self.batch_tokens()
            )));
        }
        let t0 = Instant::now();
        let before = self.traffic.clone();
        let (q_base, res_base) = (self.activations_at(), self.results_at(rows));
        let cache_at = self.slot_at(slot);
        layout.check_regions(cache_at, seq_len as u64, q_base, res_base, rows as u64)?;
        let bytes: Vec<u8> = queries.iter().map(|&x| x as u8).collect();
        self.transport.dma_write(q_base, &bytes)?;
        self.traffic.bytes_to_card += bytes.len() as u64;
        let position = (first_position, seq_len, causal);
        let cycles = self.start_and_wait(cache_at, q_base, res_base, rows, Some(position))?;
        let mut out = vec![0u8; rows * layout.result_stride()];
        self.transport.dma_read(res_base, &mut out)?;
        self.traffic.bytes_from_card += out.len() as u64;
        let rows_out = out
            .chunks(layout.result_stride())
            .map(|row| {
                unpack_row(
                    &cfg,
                    &result_beats(row, layout.result_beat_stride(), layout.result_words),
                )
            })
            .collect();
        let schedule = schedule(first_position, rows, seq_len, causal, layout.tile);
        Ok(AttentionReport {
            rows: rows_out,
            cycles,
            bytes_read: layout.bytes_read(&schedule),
            bytes_written: layout.bytes_written(rows),
            wall: t0.elapsed(),
            traffic: Traffic {
                bytes_to_card: self.traffic.bytes_to_card - before.bytes_to_card,
                bytes_from_card: self.traffic.bytes_from_card - before.bytes_from_card,
            },
        })
    }

    /// Program the arguments (for attention also SEQ_LEN, FIRST_POSITION and CAUSAL from
    /// `position`), start, wait for the done interrupt, acknowledge it; returns the
    /// run's clocks.
    fn start_and_wait(
        &mut self,
        resident: u64,
        act: u64,
        res: u64,
        tokens: usize,
        position: Option<(usize, usize, bool)>,
    ) -> Result<u64> {
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
            (regmap::WEIGHTS, resident),
            (regmap::ACTIVATIONS, act),
            (regmap::RESULTS, res),
        ] {
            t.write32(offset.into(), address as u32)?;
            t.write32((offset + 4).into(), (address >> 32) as u32)?;
        }
        t.write32(regmap::TOKENS.into(), tokens as u32)?;
        if let Some((first, seq_len, causal)) = position {
            t.write32(regmap::SEQ_LEN.into(), seq_len as u32)?;
            t.write32(regmap::FIRST_POSITION.into(), first as u32)?;
            t.write32(regmap::CAUSAL.into(), u32::from(causal))?;
        }
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

fn no_slot(slot: usize, slots: usize) -> HostError {
    HostError::Shape(format!(
        "slot {slot} does not exist (the device has {slots}; see set_slots)"
    ))
}

/// The beats of one token's (row's) results: each starts a `stride`-byte slot and is
/// `words` 32-bit words long.
fn result_beats(bytes: &[u8], stride: usize, words: usize) -> Vec<Beat> {
    bytes
        .chunks(stride)
        .map(|beat| {
            beat[..4 * words]
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        })
        .collect()
}
