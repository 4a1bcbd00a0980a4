//! The sequencer's golden twin: runs a program (`tern_hdl::program`, docs/program.md)
//! over a memory image for one pass — a decoded token or a prompt — as the one-top
//! accelerator will: the header read and checked, the pass's token ids written, then
//! command after command until `End`, every vector in memory, the vector unit's
//! arithmetic from [`super::vector`] and the ternary matmuls and attention on a
//! [`Fabric`]. Attention keeps its KV caches in memory, where the program's per-layer
//! records say, with the layer's units from its record. Every read must lie inside
//! memory and every write inside the program's scratch region (an `Attention`'s appends
//! inside its KV caches' region); a command that does not is refused with its index,
//! before it writes.

use ndarray::ArrayView2;
use tern_hdl::program::{
    int8_row_bytes, result_row_bytes, vector_row_bytes, AttentionRecord, Command, HeadFormat,
    Header, Int4Head, Int8Head, KvCacheFormat, ProgramError, Scale, ATTENTION_RECORD_BYTES,
    COMMAND_BYTES, FACTOR_BYTES, HEADER_BYTES,
};
use tern_hdl::streams::attention::{schedule, RowSchedule};
use tern_hdl::AttentionConfig;
use tern_model::ModelConfig;

use super::attention::{streamed_attention, streamed_row};
use super::bitnet::{check_tokens, AttentionCalls, Fabric, InputError};
use super::vector::{
    argmax, dequant, embed, factor, head4_scores, head_scores, norm_quant, relu2_mul, rope,
    to_int8, Quantised, Saturations,
};

/// Why a pass did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError<E> {
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error(transparent)]
    Input(InputError),
    #[error("the pass has {tokens} tokens; the program holds at most {max}")]
    TooManyTokens { tokens: usize, max: usize },
    #[error("the fabric failed: {0}")]
    Fabric(E),
}

impl<E> SequencerError<E> {
    /// The sequencer's error code (`tern_hdl::program::error_code`), as the RTL's
    /// status gives it.
    pub fn code(&self) -> u8 {
        use tern_hdl::program::error_code::*;
        match self {
            SequencerError::Program(e) => e.code(),
            SequencerError::Input(InputError::TokenOutOfVocabulary { .. }) => TOKEN_ID,
            SequencerError::Input(InputError::ContextFull { .. }) => CONTEXT,
            SequencerError::Input(InputError::Empty) => NO_TOKENS,
            SequencerError::TooManyTokens { .. } => TOO_MANY_TOKENS,
            SequencerError::Fabric(_) => DATA,
        }
    }

    /// The command the error names, if any.
    pub fn command(&self) -> Option<usize> {
        match self {
            SequencerError::Program(e) => e.command(),
            _ => None,
        }
    }
}

/// What a pass leaves: the next token, and every row's score when the program asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassOutput {
    pub next: usize,
    pub scores: Option<Vec<i64>>,
    pub commands_run: usize,
    pub saturations: u64,
}

/// Where an access must lie.
#[derive(Clone, Copy)]
enum Region {
    /// Reads: anywhere in memory.
    Memory,
    /// Commands' writes.
    Scratch,
    /// An `Attention`'s appends.
    KvCaches,
}

/// A memory image and the program's regions: bounds checks name the command.
struct Bus<'m> {
    mem: &'m mut [u8],
    scratch: (u64, u64),
    kv: (u64, u64),
    command: usize,
    op: &'static str,
}

impl Bus<'_> {
    fn span(
        &self,
        access: &'static str,
        at: u64,
        len: u64,
        region: Region,
    ) -> Result<std::ops::Range<usize>, ProgramError> {
        let end = at.saturating_add(len);
        let (region, lo, hi) = match region {
            Region::Memory => ("memory", 0, self.mem.len() as u64),
            Region::Scratch => ("scratch", self.scratch.0, self.scratch.1),
            Region::KvCaches => ("the KV caches", self.kv.0, self.kv.1),
        };
        if at < lo || end > hi {
            return Err(ProgramError::OutOfRegion {
                command: self.command,
                op: self.op,
                access,
                start: at,
                end,
                region,
                region_start: lo,
                region_end: hi,
            });
        }
        Ok(at as usize..end as usize)
    }
    fn read(&self, access: &'static str, at: u64, len: u64) -> Result<&[u8], ProgramError> {
        let r = self.span(access, at, len, Region::Memory)?;
        Ok(&self.mem[r])
    }
    fn write(&mut self, access: &'static str, at: u64, data: &[u8]) -> Result<(), ProgramError> {
        self.write_in(Region::Scratch, access, at, data)
    }
    fn write_in(
        &mut self,
        region: Region,
        access: &'static str,
        at: u64,
        data: &[u8],
    ) -> Result<(), ProgramError> {
        let r = self.span(access, at, data.len() as u64, region)?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }
    /// Row `row` of an `i32` vector: its fractional bits and elements.
    fn vector(
        &self,
        access: &'static str,
        at: u64,
        row: usize,
        n: usize,
    ) -> Result<(Vec<i32>, i32), ProgramError> {
        let b = self.read(
            access,
            row_at(at, row, vector_row_bytes(n)),
            vector_row_bytes(n),
        )?;
        let frac = i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")) as usize;
        if len != n {
            return Err(ProgramError::Field {
                command: Some(self.command),
                field: "length",
                why: format!("{access} holds vectors of {len}, the command says {n}"),
            });
        }
        Ok((i32s(&b[16..16 + 4 * n]), frac))
    }
    fn write_vector(
        &mut self,
        access: &'static str,
        at: u64,
        row: usize,
        v: &[i32],
        frac: i32,
    ) -> Result<(), ProgramError> {
        let mut b = frac.to_le_bytes().to_vec();
        b.extend((v.len() as u32).to_le_bytes());
        b.resize(16, 0);
        b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
        b.resize(vector_row_bytes(v.len()) as usize, 0);
        self.write(access, row_at(at, row, vector_row_bytes(v.len())), &b)
    }
    fn int8(
        &self,
        access: &'static str,
        at: u64,
        row: usize,
        n: usize,
    ) -> Result<Vec<i8>, ProgramError> {
        let b = self.read(access, row_at(at, row, int8_row_bytes(n)), n as u64)?;
        Ok(b.iter().map(|&x| x as i8).collect())
    }
    fn write_int8(
        &mut self,
        access: &'static str,
        at: u64,
        row: usize,
        q: &[i8],
    ) -> Result<(), ProgramError> {
        let mut b: Vec<u8> = q.iter().map(|&x| x as u8).collect();
        b.resize(int8_row_bytes(q.len()) as usize, 0);
        self.write(access, row_at(at, row, int8_row_bytes(q.len())), &b)
    }
}

/// The engine with a layer's units from its record.
fn layer_engine(engine: &AttentionConfig, r: &AttentionRecord) -> AttentionConfig {
    let mut layer = engine.clone();
    layer.constants = engine.constants.for_units(
        i64::from(r.threshold),
        u64::from(r.index_offset),
        r.output_numerator,
    );
    layer
}

/// One layer's attention over KV caches in memory: every KV head's keys and values
/// appended at the pass's positions, then the layer's calls, each reading its head's
/// cache back from memory.
fn attention_in_memory(
    bus: &mut Bus,
    model: &ModelConfig,
    layer: &AttentionConfig,
    record: &AttentionRecord,
    cache: KvCacheFormat,
    position: usize,
    qkv: [&[i8]; 3],
) -> Result<Vec<Vec<i8>>, ProgramError> {
    let d = model.head_dim;
    let t = qkv[0].len() / model.hidden;
    let head_at = |kvh: usize| head_cache_at(record, kvh);
    let plan = AttentionCalls::of(model, t, qkv);
    for (kvh, (keys, values)) in plan.appends.iter().enumerate() {
        for (j, (key, value)) in keys.chunks(d).zip(values.chunks(d)).enumerate() {
            let i = position + j;
            let bytes = |x: &[i8]| x.iter().map(|&b| b as u8).collect::<Vec<u8>>();
            let at = head_at(kvh);
            bus.write_in(
                Region::KvCaches,
                "a key",
                at.saturating_add(cache.key_offset(i)),
                &bytes(key),
            )?;
            bus.write_in(
                Region::KvCaches,
                "a value",
                at.saturating_add(cache.value_offset(i)),
                &bytes(value),
            )?;
        }
    }
    let calls = call_operands(
        &|access, at, len| bus.read(access, at, len).map(<[u8]>::to_vec),
        model,
        record,
        cache,
        position,
        &plan,
        t,
    )?;
    let outs: Vec<_> = calls
        .iter()
        .map(|c| streamed_attention(layer, &c.rows, c.view(0), c.view(1), c.view(2)))
        .collect();
    Ok(plan.gather(model, t, &outs))
}

/// Where KV head `kvh`'s cache starts (an address past the address space saturates and
/// is then refused as outside memory).
fn head_cache_at(record: &AttentionRecord, kvh: usize) -> u64 {
    record
        .cache_at
        .saturating_add((kvh as u64).saturating_mul(record.head_stride))
}

/// One engine call's operands as the engine streams them: its KV head, its rows, the
/// rows' queries and the head's keys and values up to the pass's end (each row-major,
/// `head_dim` a row).
struct CallOperands {
    kv_head: usize,
    rows: Vec<RowSchedule>,
    /// Queries, keys, values.
    operands: [Vec<i8>; 3],
    head_dim: usize,
}

impl CallOperands {
    fn view(&self, which: usize) -> ArrayView2<'_, i8> {
        let m = &self.operands[which];
        ArrayView2::from_shape((m.len() / self.head_dim, self.head_dim), m).expect("whole rows")
    }
}

/// The layer's calls (`plan`) with their keys and values read back from the caches
/// through `read(access, at, len)`.
fn call_operands(
    read: &dyn Fn(&'static str, u64, u64) -> Result<Vec<u8>, ProgramError>,
    model: &ModelConfig,
    record: &AttentionRecord,
    cache: KvCacheFormat,
    position: usize,
    plan: &AttentionCalls,
    t: usize,
) -> Result<Vec<CallOperands>, ProgramError> {
    let d = model.head_dim;
    let seq = position + t;
    let as_i8 = |b: Vec<u8>| b.into_iter().map(|x| x as i8).collect::<Vec<i8>>();
    let mut calls = vec![];
    for (kvh, queries) in &plan.calls {
        let at = head_cache_at(record, *kvh);
        let (mut keys, mut values) = (Vec::with_capacity(seq * d), Vec::with_capacity(seq * d));
        for i in 0..seq {
            keys.extend(read(
                "a key",
                at.saturating_add(cache.key_offset(i)),
                d as u64,
            )?);
            values.extend(read(
                "a value",
                at.saturating_add(cache.value_offset(i)),
                d as u64,
            )?);
        }
        calls.push(CallOperands {
            kv_head: *kvh,
            rows: schedule(position, queries.len() / d, seq, t > 1, cache.tile),
            operands: [queries.clone(), as_i8(keys), as_i8(values)],
            head_dim: d,
        });
    }
    Ok(calls)
}

/// One engine call of an `Attention` command as the engine runs it: its KV head, its
/// rows, and per row how many of its tiles raised the running maximum by a nonzero
/// rescale index (the data decides it; each costs the engine a rescale in its cycle
/// model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionCallWork {
    pub kv_head: usize,
    pub rows: Vec<RowSchedule>,
    pub rescaled_tiles: Vec<usize>,
}

/// The engine calls of `command` (an `Attention`) in a pass of `t` rows from
/// `position`, in the order the unit makes them, read from `mem` as the command left it:
/// the caches then hold the pass's keys and values, the queries are where the command
/// reads them. `attention` is the accelerator's engine; the layer's units (which decide
/// the rescales) come from its record.
pub fn attention_work(
    model: &ModelConfig,
    attention: &AttentionConfig,
    mem: &[u8],
    header: &Header,
    command: &Command,
    position: usize,
    t: usize,
) -> Result<Vec<AttentionCallWork>, ProgramError> {
    let Command::Attention { layer, q, .. } = *command else {
        return Err(ProgramError::Field {
            command: None,
            field: "opcode",
            why: format!("{command:?} is not an Attention"),
        });
    };
    let read = |access: &'static str, at: u64, len: u64| -> Result<Vec<u8>, ProgramError> {
        at.checked_add(len)
            .and_then(|end| mem.get(at as usize..end as usize))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| ProgramError::Truncated {
                what: format!("{access} at 0x{at:x}"),
                need: len,
                have: (mem.len() as u64).saturating_sub(at),
            })
    };
    let record = AttentionRecord::decode(&read(
        "the attention record",
        row_at(
            header.attention_at,
            layer as usize,
            ATTENTION_RECORD_BYTES as u64,
        ),
        ATTENTION_RECORD_BYTES as u64,
    )?);
    let mut queries = Vec::with_capacity(t * model.hidden);
    for j in 0..t {
        let row = read(
            "the queries",
            row_at(q, j, int8_row_bytes(model.hidden)),
            model.hidden as u64,
        )?;
        queries.extend(row.into_iter().map(|b| b as i8));
    }
    // Only the queries matter here: the keys and values are read from the caches.
    let none = vec![0i8; t * model.kv_width()];
    let plan = AttentionCalls::of(model, t, [&queries, &none, &none]);
    let cache = KvCacheFormat {
        tile: attention.attention.tile,
        head_dim: model.head_dim,
    };
    let layer = layer_engine(attention, &record);
    let calls = call_operands(&read, model, &record, cache, position, &plan, t)?;
    Ok(calls
        .iter()
        .map(|c| AttentionCallWork {
            kv_head: c.kv_head,
            rescaled_tiles: c
                .rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    streamed_row(&layer, row, c.view(0).row(i), c.view(1), c.view(2)).rescaled_tiles
                })
                .collect(),
            rows: c.rows.clone(),
        })
        .collect())
}

/// Where row `row` of `bytes` each starts after `at`; an address past the end of the
/// address space saturates (and is then refused as outside memory).
fn row_at(at: u64, row: usize, bytes: u64) -> u64 {
    at.saturating_add((row as u64).saturating_mul(bytes))
}

fn i32s(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Run one pass of the program at `program_at`: `ids` at positions `position..`.
/// `attention` is the accelerator's attention engine: its tile (the KV caches' layout),
/// tables and output shift; each layer's units come from the program's records.
#[allow(clippy::too_many_arguments)]
pub fn run_pass<F: Fabric>(
    model: &ModelConfig,
    attention: &AttentionConfig,
    mem: &mut [u8],
    program_at: u64,
    design: u32,
    position: usize,
    ids: &[usize],
    fabric: &mut F,
) -> Result<PassOutput, SequencerError<F::Error>> {
    if !program_at.is_multiple_of(tern_hdl::program::PROGRAM_ALIGN) {
        return Err(ProgramError::Field {
            command: None,
            field: "program_at",
            why: format!(
                "0x{program_at:x} is not a multiple of {}",
                tern_hdl::program::PROGRAM_ALIGN
            ),
        }
        .into());
    }
    let header_bytes = mem
        .get(program_at as usize..)
        .ok_or(ProgramError::Truncated {
            what: "the header".into(),
            need: HEADER_BYTES as u64,
            have: 0,
        })?;
    let h = Header::decode(header_bytes)?;
    if h.design != design {
        return Err(ProgramError::Design {
            program: h.design,
            accelerator: design,
        }
        .into());
    }
    if h.hidden as usize != model.hidden || h.vocab as usize != model.vocab {
        return Err(ProgramError::Field {
            command: None,
            field: "hidden/vocab",
            why: format!(
                "the program is for hidden {} and vocab {}, the fabric holds {} and {}",
                h.hidden, h.vocab, model.hidden, model.vocab
            ),
        }
        .into());
    }
    if ids.len() > h.max_tokens as usize {
        return Err(SequencerError::TooManyTokens {
            tokens: ids.len(),
            max: h.max_tokens as usize,
        });
    }
    let limits = ModelConfig {
        max_seq_len: model.max_seq_len.min(h.max_seq_len as usize),
        ..model.clone()
    };
    check_tokens(&limits, position, ids).map_err(SequencerError::Input)?;
    let scratch_end = h.scratch_at.saturating_add(h.scratch_bytes);
    let mut bus = Bus {
        mem,
        scratch: (h.scratch_at, scratch_end),
        kv: (h.kv_at, h.kv_at.saturating_add(h.kv_bytes)),
        command: 0,
        op: "ids",
    };
    let id_bytes: Vec<u8> = ids.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect();
    bus.write("the token ids", h.ids_at, &id_bytes)?;
    let t = ids.len();
    let fx = h.residual_frac;
    let mut sat = Saturations::default();
    let fab = SequencerError::Fabric;
    let mut out: Option<(usize, Option<Vec<i64>>)> = None;
    for index in 0..h.commands as usize {
        let at = row_at(h.commands_at, index, COMMAND_BYTES as u64);
        bus.command = index;
        bus.op = "fetch";
        let record = bus.read("its record", at, COMMAND_BYTES as u64)?.to_vec();
        let command = Command::decode(index, &record)?;
        check_sizes(index, &command)?;
        match command {
            Command::End => {
                let Some((next, scores)) = out.take() else {
                    return Err(ProgramError::Field {
                        command: Some(index),
                        field: "End",
                        why: "the pass ended before an LM head chose a token".into(),
                    }
                    .into());
                };
                return Ok(PassOutput {
                    next,
                    scores,
                    commands_run: index + 1,
                    saturations: sat.0,
                });
            }
            Command::Embed { table, dst, n } => {
                bus.op = "Embed";
                let n = n as usize;
                for (j, &id) in ids.iter().enumerate() {
                    let row = bus.read(
                        "the embedding row",
                        row_at(table, id, 2 * n as u64),
                        2 * n as u64,
                    )?;
                    let bits: Vec<u16> = row
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    let x = embed(&bits, fx, &mut sat);
                    bus.write_vector("the vector", dst, j, &x, fx)?;
                }
            }
            Command::NormQuant {
                src,
                gain,
                dst,
                factors,
                n,
                int8_unit,
            } => {
                bus.op = "NormQuant";
                let n = n as usize;
                let g = read_gain(&bus, gain, n)?;
                for j in 0..t {
                    let (v, frac) = match int8_unit {
                        Some(Scale { m, e }) => (
                            bus.int8("the int8 input", src, j, n)?
                                .iter()
                                .map(|&o| i32::from(o) * m as i32)
                                .collect(),
                            -e,
                        ),
                        None => bus.vector("the input", src, j, n)?,
                    };
                    let q = norm_quant(&v, frac, &g, h.eps);
                    bus.write_int8("the int8 output", dst, j, &q.q)?;
                    let mut f = q.max.to_le_bytes().to_vec();
                    f.extend(q.rms.to_le_bytes());
                    f.extend(q.gain_frac.to_le_bytes());
                    f.resize(FACTOR_BYTES as usize, 0);
                    bus.write("the factors", row_at(factors, j, FACTOR_BYTES), &f)?;
                }
            }
            // The golden twin reads the fabric's copy of the matrix, not `weights`.
            Command::Matmul {
                layer,
                which,
                src,
                dst,
                m,
                k,
                ..
            } => {
                bus.op = "Matmul";
                let (l, w) = (layer as usize, which as usize);
                let shapes = model.layer_matmuls();
                let Some(shape) = shapes.get(w).filter(|_| l < model.layers) else {
                    return Err(ProgramError::Field {
                        command: Some(index),
                        field: "layer/which",
                        why: format!(
                            "matrix ({l}, {w}) is not one of the model's {} layers × {}",
                            model.layers,
                            shapes.len()
                        ),
                    }
                    .into());
                };
                if (shape.m, shape.k) != (m as usize, k as usize) {
                    return Err(ProgramError::Field {
                        command: Some(index),
                        field: "m/k",
                        why: format!("{m}×{k}, but matrix ({l}, {w}) is {}×{}", shape.m, shape.k),
                    }
                    .into());
                }
                let mut xs = Vec::with_capacity(t * k as usize);
                for j in 0..t {
                    xs.extend(bus.int8("the int8 input", src, j, k as usize)?);
                }
                let acc = fabric.matmul(l, w, &xs).map_err(fab)?;
                for (j, row) in acc.chunks(m as usize).enumerate() {
                    let mut b: Vec<u8> = row
                        .iter()
                        .flat_map(|&a| {
                            (a.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32).to_le_bytes()
                        })
                        .collect();
                    b.resize(result_row_bytes(m as usize) as usize, 0);
                    bus.write(
                        "the results",
                        row_at(dst, j, result_row_bytes(m as usize)),
                        &b,
                    )?;
                }
            }
            Command::Dequant {
                src,
                factors,
                dst,
                m,
                scale,
                add,
            } => {
                bus.op = "Dequant";
                let m = m as usize;
                for j in 0..t {
                    let acc: Vec<i64> = i32s(bus.read(
                        "the results",
                        row_at(src, j, result_row_bytes(m)),
                        4 * m as u64,
                    )?)
                    .into_iter()
                    .map(i64::from)
                    .collect();
                    let f = bus.read(
                        "the factors",
                        row_at(factors, j, FACTOR_BYTES),
                        FACTOR_BYTES,
                    )?;
                    let q = Quantised {
                        q: vec![],
                        max: u64_at(f, 0),
                        rms: u64_at(f, 8),
                        gain_frac: i32::from_le_bytes(f[16..20].try_into().expect("4 bytes")),
                    };
                    // What NormQuant writes; anything else has no factor (rms 0 under a
                    // non-zero max would divide by zero).
                    if q.max >= 1 << 47
                        || q.rms >= 1 << 51
                        || !(0..=15).contains(&q.gain_frac)
                        || (q.rms == 0 && q.max != 0)
                    {
                        return Err(ProgramError::Field {
                            command: Some(index),
                            field: "factors",
                            why: format!(
                                "row {j}: max {}, rms {}, gain shift {}: not norm factors \
                                 (max < 2^47, rms < 2^51 and not 0 unless max is, shift 0..=15)",
                                q.max, q.rms, q.gain_frac
                            ),
                        }
                        .into());
                    }
                    let mut y = dequant(&acc, factor(&q, scale, fx), &mut sat);
                    if add {
                        let (x, frac) = bus.vector("the residual", dst, j, m)?;
                        if frac != fx {
                            return Err(ProgramError::Field {
                                command: Some(index),
                                field: "dst",
                                why: format!("adds into a vector of {frac} fractional bits, not the residual's {fx}"),
                            }
                            .into());
                        }
                        y = x
                            .iter()
                            .zip(&y)
                            .map(|(&a, &b)| sat.i32(i128::from(a) + i128::from(b)))
                            .collect();
                    }
                    bus.write_vector("the output", dst, j, &y, fx)?;
                }
            }
            Command::Rope {
                vec,
                table,
                heads,
                head_dim,
            } => {
                bus.op = "Rope";
                let (d, n) = (head_dim as usize, (heads * head_dim) as usize);
                let row_bytes = (d / 2 * 4) as u64;
                for j in 0..t {
                    let b = bus.read(
                        "the table row",
                        row_at(table, position + j, row_bytes),
                        row_bytes,
                    )?;
                    let row: Vec<(i16, i16)> = b
                        .chunks_exact(4)
                        .map(|c| {
                            (
                                i16::from_le_bytes([c[0], c[1]]),
                                i16::from_le_bytes([c[2], c[3]]),
                            )
                        })
                        .collect();
                    let (mut v, frac) = bus.vector("the vector", vec, j, n)?;
                    v.chunks_mut(d).for_each(|head| rope(head, &row, &mut sat));
                    bus.write_vector("the vector", vec, j, &v, frac)?;
                }
            }
            Command::ToInt8 {
                src,
                dst,
                n,
                inv_unit,
            } => {
                bus.op = "ToInt8";
                for j in 0..t {
                    let (v, frac) = bus.vector("the input", src, j, n as usize)?;
                    let q = to_int8(&v, frac, inv_unit);
                    bus.write_int8("the int8 output", dst, j, &q)?;
                }
            }
            Command::Attention {
                layer,
                q,
                k,
                v,
                dst,
            } => {
                bus.op = "Attention";
                let l = layer as usize;
                if l >= model.layers {
                    return Err(ProgramError::Field {
                        command: Some(index),
                        field: "layer",
                        why: format!("{l} is not one of the model's {} layers", model.layers),
                    }
                    .into());
                }
                let gather = |at: u64, n: usize, what| -> Result<Vec<i8>, ProgramError> {
                    let mut all = Vec::with_capacity(t * n);
                    for j in 0..t {
                        all.extend(bus.int8(what, at, j, n)?);
                    }
                    Ok(all)
                };
                let (qi, ki, vi) = (
                    gather(q, model.hidden, "the queries")?,
                    gather(k, model.kv_width(), "the keys")?,
                    gather(v, model.kv_width(), "the values")?,
                );
                let record = AttentionRecord::decode(bus.read(
                    "its attention record",
                    row_at(h.attention_at, l, ATTENTION_RECORD_BYTES as u64),
                    ATTENTION_RECORD_BYTES as u64,
                )?);
                let cache = KvCacheFormat {
                    tile: attention.attention.tile,
                    head_dim: model.head_dim,
                };
                record
                    .check(
                        cache.bytes(h.max_seq_len as usize),
                        attention.constants.max_output_numerator(),
                    )
                    .map_err(|(field, why)| ProgramError::Field {
                        command: Some(index),
                        field,
                        why: format!("layer {l}'s attention record: {why}"),
                    })?;
                let outs = attention_in_memory(
                    &mut bus,
                    model,
                    &layer_engine(attention, &record),
                    &record,
                    cache,
                    position,
                    [&qi, &ki, &vi],
                )?;
                for (j, o) in outs.iter().enumerate() {
                    bus.write_int8("the outputs", dst, j, o)?;
                }
            }
            Command::Relu2Mul { gate, up, dst, n } => {
                bus.op = "Relu2Mul";
                for j in 0..t {
                    let (g, gf) = bus.vector("the gate", gate, j, n as usize)?;
                    let (u, uf) = bus.vector("the up", up, j, n as usize)?;
                    if gf != uf {
                        return Err(ProgramError::Field {
                            command: Some(index),
                            field: "gate/up",
                            why: format!("{gf} and {uf} fractional bits differ"),
                        }
                        .into());
                    }
                    let (a, frac) = relu2_mul(&g, &u, gf);
                    bus.write_vector("the output", dst, j, &a, frac)?;
                }
            }
            Command::LmHead {
                src,
                weights,
                mantissas,
                rows,
                width,
                scores,
                format,
            } => {
                bus.op = "LmHead";
                let (rows, width) = (rows as usize, width as usize);
                let q = bus.int8("the int8 input", src, t - 1, width)?;
                let mantissas_of = |count: usize| -> Result<Vec<u16>, ProgramError> {
                    Ok(bus
                        .read("the mantissas", mantissas, 2 * count as u64)?
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect())
                };
                let s = match format {
                    HeadFormat::Int8 => {
                        let w: Vec<i8> = bus
                            .read("the weights", weights, (rows * width) as u64)?
                            .iter()
                            .map(|&x| x as i8)
                            .collect();
                        let head = Int8Head {
                            rows,
                            width,
                            w,
                            row_m: mantissas_of(rows)?,
                            exp: 0,
                        };
                        head_scores(&head, &q)
                    }
                    HeadFormat::Int4 { group } => {
                        let group = group as usize;
                        // Two weights a byte, the first in the low nibble, sign-extended.
                        let w: Vec<i8> = bus
                            .read("the 4-bit weights", weights, (rows * width / 2) as u64)?
                            .iter()
                            .flat_map(|&b| [((b << 4) as i8) >> 4, (b as i8) >> 4])
                            .collect();
                        let head = Int4Head {
                            rows,
                            width,
                            group,
                            w,
                            group_m: mantissas_of(rows * width / group)?,
                            exp: 0,
                        };
                        head4_scores(&head, &q)
                    }
                };
                let next = argmax(&s);
                let mut b = (next as u32).to_le_bytes().to_vec();
                b.extend((u32::from(scores)).to_le_bytes());
                b.extend((rows as u64).to_le_bytes());
                if scores {
                    b.extend(s.iter().flat_map(|x| x.to_le_bytes()));
                }
                bus.write("the output", h.output_at, &b)?;
                out = Some((next, scores.then_some(s)));
            }
        }
    }
    Err(ProgramError::NoEnd(h.commands).into())
}

/// Sizes a command may carry: at least one element, at most 2^20 per row (2^24 rows of
/// an LM head), an even head dimension; anything else is a broken program.
fn check_sizes(index: usize, c: &Command) -> Result<(), ProgramError> {
    let in_range = |field: &'static str, v: u32, max: u32| {
        if (1..=max).contains(&v) {
            Ok(())
        } else {
            Err(ProgramError::Field {
                command: Some(index),
                field,
                why: format!("{v} is outside 1..={max}"),
            })
        }
    };
    const ROW: u32 = 1 << 20;
    match *c {
        Command::Embed { n, .. }
        | Command::NormQuant { n, .. }
        | Command::ToInt8 { n, .. }
        | Command::Relu2Mul { n, .. } => in_range("n", n, ROW),
        Command::Matmul { m, k, .. } => in_range("m", m, ROW).and(in_range("k", k, ROW)),
        Command::Dequant { m, .. } => in_range("m", m, ROW),
        Command::Rope {
            heads, head_dim, ..
        } => {
            in_range("heads", heads, 1 << 10)?;
            in_range("head_dim", head_dim, 1 << 12)?;
            if head_dim % 2 != 0 {
                return Err(ProgramError::Field {
                    command: Some(index),
                    field: "head_dim",
                    why: format!("{head_dim} is odd: RoPE rotates pairs"),
                });
            }
            Ok(())
        }
        Command::LmHead {
            rows,
            width,
            format,
            ..
        } => {
            in_range("rows", rows, 1 << 24).and(in_range("width", width, ROW))?;
            if let HeadFormat::Int4 { group } = format {
                // Whole bytes, whole groups: what the 4-bit engine's beats hold.
                if group < 2 || !group.is_power_of_two() || width % group != 0 {
                    return Err(ProgramError::Field {
                        command: Some(index),
                        field: "count",
                        why: format!(
                            "a 4-bit head's group of {group} is not a power of two of at least 2 dividing the width {width}"
                        ),
                    });
                }
            }
            Ok(())
        }
        Command::Attention { .. } | Command::End => Ok(()),
    }
}

fn read_gain(bus: &Bus, at: u64, n: usize) -> Result<tern_hdl::program::Gain, ProgramError> {
    let b = bus.read("the gain", at, 16 + 2 * n as u64)?;
    let frac = i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    if !(0..=15).contains(&frac) {
        return Err(ProgramError::Field {
            command: Some(bus.command),
            field: "gain",
            why: format!("its shift {frac} is outside 0..=15"),
        });
    }
    Ok(tern_hdl::program::Gain {
        frac,
        g: b[16..]
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect(),
    })
}
