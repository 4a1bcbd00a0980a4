//! The host's side of the one-top accelerator's program (docs/program.md): a checkpoint
//! converted once into the memory image the sequencer runs — header, commands, the
//! vector unit's data (embedding, gains, RoPE table, the LM head in int8 or 4 bits) and a scratch region
//! for the pass's vectors. Given the matmul unit's shape, every ternary matrix too, in
//! its tile layout (the `Matmul` commands' `weights`); without it the ternary weights
//! are the fabric's. Each layer's KV caches and attention units (its record) too.

use anyhow::{bail, Result};

use tern_hdl::program::{
    bf16_bits, int8_row_bytes, result_row_bytes, rope_table, vector_row_bytes, AttentionRecord,
    Command, Gain, HeadFormat, Header, Int4Head, Int8Head, KvCacheFormat, Scale, ALIGN,
    ATTENTION_RECORD_BYTES, COMMAND_BYTES, FACTOR_BYTES, HEADER_BYTES,
};
use tern_hdl::units::{matmul_weight_image, MatmulUnitShape};
use tern_hdl::AttentionConfig;
use tern_model::checkpoint::Checkpoint;
use tern_sim::golden::bitnet::AttentionScales;

/// A built program: the memory image (program at 0) and where its parts lie.
#[derive(Debug, Clone)]
pub struct ProgramImage {
    pub memory: Vec<u8>,
    pub header: Header,
    pub commands: Vec<Command>,
    /// Where the last pass's final-norm factors lie (to turn scores into logits).
    pub final_factors: u64,
    pub head_exp: i32,
}

/// How the board's DRAM maps addresses (row-bank-column, its `[memory.dram]`): rows of
/// `row_bytes` go to `banks` banks in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banks {
    pub row_bytes: u64,
    pub banks: u64,
}

impl Banks {
    /// The board's, if its file gives the DRAM's timing.
    pub fn of(board: &tern_boards::Board) -> Option<Banks> {
        board.memory.dram.as_ref().map(|d| Banks {
            row_bytes: d.row_bytes,
            banks: d.banks as u64,
        })
    }
}

/// Lays regions out one after another, each on [`ALIGN`]; scratch vectors each from a
/// row of a bank chosen for it (with [`Banks`]).
struct Layout {
    next: u64,
    banks: Option<Banks>,
}

impl Layout {
    fn take(&mut self, bytes: u64) -> u64 {
        self.take_on(bytes, ALIGN)
    }
    fn take_on(&mut self, bytes: u64, align: u64) -> u64 {
        let at = self.next.next_multiple_of(align);
        self.next = at + bytes;
        at
    }
    /// A scratch vector's region, from the start of a row of bank `bank` (modulo the
    /// banks there are): a command's input and output rows then lie in different banks,
    /// and the DRAM keeps both rows open instead of closing one at every burst (a row
    /// miss, `docs/memory_ports.md`).
    fn take_banked(&mut self, bytes: u64, bank: u64) -> u64 {
        let Some(Banks { row_bytes, banks }) = self.banks else {
            return self.take(bytes);
        };
        let mut at = self.next.next_multiple_of(row_bytes.max(ALIGN));
        while (at / row_bytes) % banks != bank % banks {
            at += row_bytes;
        }
        self.next = at + bytes;
        at
    }
}

/// The program for `ck` on the attention engine `attention` with the attention's units
/// (`scales`: one for every layer or one per layer), passes of up to `max_tokens`, the
/// LM head in `head_format`, the ternary matrices laid out for `matmul_unit` (or
/// left to the fabric: `None`), and the scratch vectors on the DRAM's `banks` in turn
/// (`None`: one after another).
#[allow(clippy::too_many_arguments)]
pub fn build(
    ck: &Checkpoint,
    attention: &AttentionConfig,
    scales: &[AttentionScales],
    residual_frac: i32,
    max_tokens: usize,
    design: u32,
    head_format: HeadFormat,
    matmul_unit: Option<&MatmulUnitShape>,
    banks: Option<Banks>,
) -> Result<ProgramImage> {
    let c = &ck.config;
    let (h, kvw, ffn, d) = (c.hidden, c.kv_width(), c.ffn, c.head_dim);
    if max_tokens == 0 {
        bail!("a program needs room for at least one token a pass");
    }
    if let HeadFormat::Int4 { group } = head_format {
        let group = group as usize;
        if group < 2 || !group.is_power_of_two() || !h.is_multiple_of(group) {
            bail!(
                "a 4-bit LM head's group of {group} is not a power of two of at least 2 dividing the hidden size {h}"
            );
        }
    }
    if scales.len() != 1 && scales.len() != c.layers {
        bail!(
            "attention units for {} layers, the model has {}",
            scales.len(),
            c.layers
        );
    }
    let mut data: Vec<(u64, Vec<u8>)> = vec![];
    let mut lay = Layout { next: 0, banks };
    // The header, then the commands: the embedding, 25 per layer, the final norm, the
    // LM head and End.
    let n_commands = 1 + 25 * c.layers + 3;
    lay.take(HEADER_BYTES as u64);
    let commands_at = lay.take((n_commands * COMMAND_BYTES) as u64);
    let mut put = |lay: &mut Layout, bytes: Vec<u8>| -> u64 {
        let at = lay.take(bytes.len() as u64);
        data.push((at, bytes));
        at
    };
    let embedding = put(
        &mut lay,
        ck.embed_tokens
            .iter()
            .flat_map(|&v| bf16_bits(v).to_le_bytes())
            .collect(),
    );
    let gain = |lay: &mut Layout, put: &mut dyn FnMut(&mut Layout, Vec<u8>) -> u64, g: &[f32]| {
        put(lay, Gain::of(g).bytes())
    };
    let mut layer_gains = vec![];
    for l in &ck.layers {
        layer_gains.push([
            gain(&mut lay, &mut put, &l.input_layernorm),
            gain(&mut lay, &mut put, &l.attn_sub_norm),
            gain(&mut lay, &mut put, &l.post_attention_layernorm),
            gain(&mut lay, &mut put, &l.ffn_sub_norm),
        ]);
    }
    let final_gain = gain(&mut lay, &mut put, &ck.norm);
    let rope = put(
        &mut lay,
        rope_table(d, c.max_seq_len, c.rope_theta)
            .iter()
            .flat_map(|&(cs, sn)| [cs.to_le_bytes(), sn.to_le_bytes()].concat())
            .collect(),
    );
    let head = ck.lm_head.as_ref().unwrap_or(&ck.embed_tokens);
    let (weights, mantissas, head_exp) = match head_format {
        HeadFormat::Int8 => {
            let head = Int8Head::of(head, c.vocab, h);
            let w = head.w.iter().map(|&w| w as u8).collect();
            (w, head.row_m, head.exp)
        }
        HeadFormat::Int4 { group } => {
            let head = Int4Head::of(head, c.vocab, h, group as usize);
            (head.packed(), head.group_m, head.exp)
        }
    };
    let head_weights = put(&mut lay, weights);
    let head_mantissas = put(
        &mut lay,
        mantissas.iter().flat_map(|m| m.to_le_bytes()).collect(),
    );
    // Every layer's matrices in the matmul unit's tile layout: [layer][which].
    let mut matrices = vec![[0u64; 7]; c.layers];
    if let Some(shape) = matmul_unit {
        shape
            .check()
            .map_err(|e| anyhow::anyhow!("the program's matmul unit: {e}"))?;
        for (l, layer) in ck.layers.iter().enumerate() {
            for (which, mat) in layer.matmuls.iter().enumerate() {
                let image = matmul_weight_image(shape, &mat.w, mat.m, mat.k)
                    .map_err(|e| anyhow::anyhow!("layer {l}, matrix {which}: {e}"))?;
                matrices[l][which] = put(&mut lay, image);
            }
        }
    }
    // Per layer: its attention record, and its KV heads' caches for the whole context.
    let cache = KvCacheFormat {
        tile: attention.attention.tile,
        head_dim: d,
    };
    if attention.attention.head_dim != d {
        bail!(
            "the attention engine's head_dim is {}, the model's {d}",
            attention.attention.head_dim
        );
    }
    let cache_bytes = cache.bytes(c.max_seq_len);
    let layer_kv_bytes = c.kv_heads as u64 * cache_bytes;
    let attention_at = lay.take_on(
        (c.layers * ATTENTION_RECORD_BYTES) as u64,
        ATTENTION_RECORD_BYTES as u64,
    );
    let kv_at = lay.take(c.layers as u64 * layer_kv_bytes);
    for l in 0..c.layers {
        let s = scales[l.min(scales.len() - 1)];
        let units = attention
            .with_scales(
                [s.q, s.k, s.v, s.out],
                &format!("layer {l}'s attention units"),
            )?
            .constants;
        let record = AttentionRecord {
            cache_at: kv_at + l as u64 * layer_kv_bytes,
            head_stride: cache_bytes,
            threshold: units.threshold as u32,
            index_offset: units.index_offset as u32,
            output_numerator: units.output_numerator,
        };
        data.push((
            attention_at + (l * ATTENTION_RECORD_BYTES) as u64,
            record.encode().to_vec(),
        ));
    }
    // Scratch: the pass's ids, the output, and the vectors (reused by every layer).
    let t = max_tokens as u64;
    let scratch_at = lay.take(0);
    let ids_at = lay.take(4 * t);
    let output_at = lay.take(16 + 8 * c.vocab as u64);
    // Each vector on a bank of its own among those a command streams together (5 banks
    // suffice; with fewer some share): the results 0 and the vectors made of them 1,
    // the factors 2, x 0, xq 1, the attention's q, k, v and output 0, 2, 3, 4, the
    // attention's projection's results 3, down's 1; gate, up, their product and its
    // int8 1, 3, 0, 3.
    let vec_of = |lay: &mut Layout, n: usize, bank| lay.take_banked(t * vector_row_bytes(n), bank);
    let int8_of = |lay: &mut Layout, n: usize, bank| lay.take_banked(t * int8_row_bytes(n), bank);
    let results_of =
        |lay: &mut Layout, m: usize, bank| lay.take_banked(t * result_row_bytes(m), bank);
    let x = vec_of(&mut lay, h, 0);
    let xq = int8_of(&mut lay, h, 1);
    let factors = lay.take_banked(t * FACTOR_BYTES, 2);
    let (rq, rk, rv, ro) = (
        results_of(&mut lay, h, 0),
        results_of(&mut lay, kvw, 0),
        results_of(&mut lay, kvw, 0),
        results_of(&mut lay, h, 3),
    );
    let (vq, vk, vv) = (
        vec_of(&mut lay, h, 1),
        vec_of(&mut lay, kvw, 1),
        vec_of(&mut lay, kvw, 1),
    );
    let (qi, ki, vi, ao) = (
        int8_of(&mut lay, h, 0),
        int8_of(&mut lay, kvw, 2),
        int8_of(&mut lay, kvw, 3),
        int8_of(&mut lay, h, 4),
    );
    let (rg, ru, rd) = (
        results_of(&mut lay, ffn, 0),
        results_of(&mut lay, ffn, 0),
        results_of(&mut lay, h, 1),
    );
    let (vg, vu, va) = (
        vec_of(&mut lay, ffn, 1),
        vec_of(&mut lay, ffn, 3),
        vec_of(&mut lay, ffn, 0),
    );
    let aq = int8_of(&mut lay, ffn, 3);
    let scratch_bytes = lay.take(0) - scratch_at;

    let inv = |x: f64| Scale::of(1.0 / x);
    let mut cmds = vec![Command::Embed {
        table: embedding,
        dst: x,
        n: h as u32,
    }];
    let (h32, kvw32, ffn32) = (h as u32, kvw as u32, ffn as u32);
    for (l, layer) in ck.layers.iter().enumerate() {
        let ws: Vec<Scale> = layer
            .matmuls
            .iter()
            .map(|m| Scale::of(f64::from(m.scale)))
            .collect::<Result<_, _>>()?;
        let l16 = l as u16;
        let s = scales[l.min(scales.len() - 1)];
        let (inv_q, inv_k, inv_v, unit_out) = (inv(s.q)?, inv(s.k)?, inv(s.v)?, Scale::of(s.out)?);
        let [g_in, g_attn, g_post, g_ffn] = layer_gains[l];
        let matmul = |which: u16, src, dst, m, k| Command::Matmul {
            layer: l16,
            which,
            src,
            weights: matrices[l][which as usize],
            dst,
            m,
            k,
        };
        let dq = |src, dst, m, which: usize, add| Command::Dequant {
            src,
            factors,
            dst,
            m,
            scale: ws[which],
            add,
        };
        let nq = |src, gain, dst, n, int8_unit| Command::NormQuant {
            src,
            gain,
            dst,
            factors,
            n,
            int8_unit,
        };
        cmds.extend([
            nq(x, g_in, xq, h32, None),
            matmul(0, xq, rq, h32, h32),
            matmul(1, xq, rk, kvw32, h32),
            matmul(2, xq, rv, kvw32, h32),
            dq(rq, vq, h32, 0, false),
            dq(rk, vk, kvw32, 1, false),
            dq(rv, vv, kvw32, 2, false),
            Command::Rope {
                vec: vq,
                table: rope,
                heads: c.heads as u32,
                head_dim: d as u32,
            },
            Command::Rope {
                vec: vk,
                table: rope,
                heads: c.kv_heads as u32,
                head_dim: d as u32,
            },
            Command::ToInt8 {
                src: vq,
                dst: qi,
                n: h32,
                inv_unit: inv_q,
            },
            Command::ToInt8 {
                src: vk,
                dst: ki,
                n: kvw32,
                inv_unit: inv_k,
            },
            Command::ToInt8 {
                src: vv,
                dst: vi,
                n: kvw32,
                inv_unit: inv_v,
            },
            Command::Attention {
                layer: l16,
                q: qi,
                k: ki,
                v: vi,
                dst: ao,
            },
            nq(ao, g_attn, xq, h32, Some(unit_out)),
            matmul(3, xq, ro, h32, h32),
            dq(ro, x, h32, 3, true),
        ]);
        cmds.extend([
            nq(x, g_post, xq, h32, None),
            matmul(4, xq, rg, ffn32, h32),
            matmul(5, xq, ru, ffn32, h32),
            dq(rg, vg, ffn32, 4, false),
            dq(ru, vu, ffn32, 5, false),
            Command::Relu2Mul {
                gate: vg,
                up: vu,
                dst: va,
                n: ffn32,
            },
            nq(va, g_ffn, aq, ffn32, None),
            matmul(6, aq, rd, h32, ffn32),
            dq(rd, x, h32, 6, true),
        ]);
    }
    cmds.extend([
        Command::NormQuant {
            src: x,
            gain: final_gain,
            dst: xq,
            factors,
            n: h32,
            int8_unit: None,
        },
        Command::LmHead {
            src: xq,
            weights: head_weights,
            mantissas: head_mantissas,
            rows: c.vocab as u32,
            width: h32,
            scores: true,
            format: head_format,
        },
        Command::End,
    ]);
    assert_eq!(cmds.len(), n_commands, "the room reserved for the commands");
    let header = Header {
        design,
        commands: cmds.len() as u32,
        commands_at,
        scratch_at,
        scratch_bytes,
        ids_at,
        output_at,
        residual_frac,
        eps: Scale::of(c.norm_eps)?,
        hidden: h as u32,
        vocab: c.vocab as u32,
        max_tokens: max_tokens as u32,
        max_seq_len: c.max_seq_len as u32,
        kv_at,
        kv_bytes: c.layers as u64 * layer_kv_bytes,
        attention_at,
    };
    let mut memory = vec![0u8; lay.take(0) as usize];
    memory[..HEADER_BYTES].copy_from_slice(&header.encode());
    for (i, cmd) in cmds.iter().enumerate() {
        let at = commands_at as usize + i * COMMAND_BYTES;
        memory[at..at + COMMAND_BYTES].copy_from_slice(&cmd.encode());
    }
    for (at, bytes) in data {
        memory[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(ProgramImage {
        memory,
        header,
        commands: cmds,
        final_factors: factors,
        head_exp,
    })
}

/// The sequencer RTL's shape for a model: its hidden size, vocabulary, layers, context
/// and matrices, for `design` on `memory_bytes` of memory with room for `max_ids` ids a
/// pass.
pub fn sequencer_shape(
    c: &tern_model::ModelConfig,
    design: u32,
    memory_bytes: u64,
    max_ids: u32,
) -> tern_hdl::sequencer::SequencerShape {
    let shapes = c.layer_matmuls();
    tern_hdl::sequencer::SequencerShape {
        design,
        memory_bytes,
        hidden: c.hidden as u32,
        vocab: c.vocab as u32,
        layers: c.layers as u32,
        max_seq_len: c.max_seq_len as u32,
        matrices: std::array::from_fn(|i| (shapes[i].m as u32, shapes[i].k as u32)),
        max_ids,
    }
}
