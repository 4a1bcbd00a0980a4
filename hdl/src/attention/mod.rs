//! The streaming integer attention engine (IntAttention-style IndexSoftmax, streamed
//! over KV tiles with an online-softmax rescale).
//!
//! A block of up to `query_block` query rows at a time (stream formats:
//! `streams::attention`):
//! 1. each row's header and query beats → the row's state (visible keys, streamed keys,
//!    running maximum and sum, in per-row memories) and query memory (`d/macs` words);
//!    the accumulators are cleared as the query arrives;
//! 2. per tile of up to `Bc` keys (the block's longest row decides how many tiles come),
//!    per row of the block that streams this tile (the row with the most keys first:
//!    it takes the tile from the `wgt` stream and keeps it in the tile buffer; the
//!    others replay it from there):
//!    - key beats: `ScoreDot` (`macs` int8 MACs per clock) accumulates `s = q·k` over
//!      `d/macs` beats per key → score memory (one tile), tracking the tile's maximum
//!      over visible keys;
//!    - if the tile's maximum exceeds the running maximum by Δ: every output
//!      accumulator and the running sum are scaled by `rescale_table[R·min(Δ,thr)/thr]`
//!      (`d/macs` clocks), then the running maximum moves up;
//!    - value beats: for each key `e = exp_table[E·min(max − s, thr)/thr]` (0 for a
//!      masked key), `sum += e`, `acc += e·v` on `macs` lanes per clock;
//! 3. per row: `r = floor(K/sum)` by a 48-step restoring divider, then
//!    `out = sat8((acc·r + 2^(S−1)) >> S)` one lane per clock → result beats. A row with
//!    no visible key (`sum = 0`) is flagged `empty`.
//!
//! Each row sees its tiles in order with the arithmetic of a row alone, so a block
//! changes when K/V is read, never a result. Scores are compared as signed numbers by
//! flipping their sign bits (offset binary). The buffers are LUT RAM with combinational
//! reads, so a read-modify-write of an accumulator word takes one clock.

pub mod datapath;

use rust_hdl::prelude::*;

use crate::config::attention::RECIPROCAL_NUMERATOR_BITS;
use crate::config::AttentionConfig;
use crate::memory::WordMemory;
pub use datapath::{ExpTable, OutputRequant, RescaleTable, ScoreDot, SoftmaxIndex, ValueLanes};

/// Control states (one query row walks through them in order; see the module docs).
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum Phase {
    Header,
    Query,
    RowFetch,
    RowSelect,
    TileStart,
    Score,
    TileMax,
    Rescale,
    Prime,
    Value,
    RowSave,
    OutFetch,
    OutSelect,
    Finish,
    Divide,
    LoadOut,
    Requant,
    Emit,
}

#[derive(LogicBlock)]
pub struct AttentionEngine<const BUS: usize, const ACCW: usize> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset of the control state (memories are not cleared).
    pub reset: Signal<In, Bit>,
    pub act_valid: Signal<In, Bit>,
    pub act_ready: Signal<Out, Bit>,
    /// The shell's block marker; attention streams are framed by their header beats,
    /// so it is unused here.
    pub act_last: Signal<In, Bit>,
    pub act_data: Signal<In, Bits<BUS>>,
    pub wgt_valid: Signal<In, Bit>,
    pub wgt_ready: Signal<Out, Bit>,
    pub wgt_data: Signal<In, Bits<BUS>>,
    pub res_valid: Signal<Out, Bit>,
    pub res_ready: Signal<In, Bit>,
    pub res_data: Signal<Out, Bits<BUS>>,
    pub res_empty: Signal<Out, Bit>,
    /// The layer's units (docs/attention.md), run-time data held steady while rows run:
    /// the clip threshold in score units, its reciprocal for the engine's shift
    /// (`config::attention::threshold_shift`), the index offset and the output
    /// numerator `K`. A standalone engine's wrapper ties them to its config's constants.
    pub threshold: Signal<In, Bits<32>>,
    pub threshold_reciprocal: Signal<In, Bits<64>>,
    pub index_offset: Signal<In, Bits<32>>,
    pub output_numerator: Signal<In, Bits<48>>,

    query_memory: WordMemory<BUS>,
    score_memory: WordMemory<32>,
    accumulator_memory: WordMemory<ACCW>,
    /// The streamed tile's key beats, then its value beats, for the block's other rows.
    tile_buffer: WordMemory<BUS>,
    /// Per row of the block: running maximum, running sum, `visible | kv_len << 16`,
    /// `row_base | has_max << 16`.
    row_max_memory: WordMemory<32>,
    row_sum_memory: WordMemory<32>,
    row_span_memory: WordMemory<32>,
    row_base_memory: WordMemory<32>,
    score_dot: ScoreDot<BUS>,
    value_lanes: ValueLanes<BUS, ACCW>,
    softmax_index: SoftmaxIndex,
    exp_table: ExpTable,
    rescale_table: RescaleTable,
    output_requant: OutputRequant,

    state: DFF<Phase>,
    visible: DFF<Bits<16>>,
    kv_len: DFF<Bits<16>>,
    chunk: DFF<Bits<16>>,
    key: DFF<Bits<16>>,
    tile_base: DFF<Bits<16>>,
    tile_len: DFF<Bits<16>>,
    partial: DFF<Bits<32>>,
    tile_max: DFF<Bits<32>>,
    tile_any: DFF<Bit>,
    running_max: DFF<Bits<32>>,
    has_max: DFF<Bit>,
    sum: DFF<Bits<32>>,
    factor: DFF<Bits<16>>,
    weight: DFF<Bits<8>>,
    row: DFF<Bits<16>>,
    row_base: DFF<Bits<16>>,
    rows_in_block: DFF<Bits<16>>,
    order: DFF<Bits<16>>,
    block_kv: DFF<Bits<16>>,
    stream_row: DFF<Bits<16>>,
    streaming: DFF<Bit>,
    tile_address: DFF<Bits<16>>,
    last_in_block: DFF<Bit>,
    divider_numerator: DFF<Bits<48>>,
    divider_remainder: DFF<Bits<48>>,
    divider_quotient: DFF<Bits<48>>,
    divider_step: DFF<Bits<8>>,
    out_lane: DFF<Bits<8>>,
    out_word: DFF<Bits<BUS>>,
    out_source: DFF<Bits<ACCW>>,
    out_valid: DFF<Bit>,
    empty: DFF<Bit>,

    last_chunk: Constant<Bits<16>>,
    chunks: Constant<Bits<16>>,
    tile: Constant<Bits<16>>,
    value_base: Constant<Bits<16>>,
    query_block: Constant<Bits<16>>,
    last_lane: Constant<Bits<8>>,
    last_divider_step: Constant<Bits<8>>,
    sign_bit: Constant<Bits<32>>,
    top_byte: Constant<Bits<16>>,

    act_fire: Signal<Local, Bit>,
    wgt_fire: Signal<Local, Bit>,
    kv_fire: Signal<Local, Bit>,
    kv_word: Signal<Local, Bits<BUS>>,
    fetch_order: Signal<Local, Bits<16>>,
    order_row: Signal<Local, Bits<16>>,
    saved_max: Signal<Local, Bits<32>>,
    saved_sum: Signal<Local, Bits<32>>,
    saved_span: Signal<Local, Bits<32>>,
    saved_base: Signal<Local, Bits<32>>,
    header_kv_len: Signal<Local, Bits<16>>,
    score: Signal<Local, Bits<32>>,
    key_visible: Signal<Local, Bit>,
    next_visible: Signal<Local, Bit>,
    remaining: Signal<Local, Bits<16>>,
    shifted_remainder: Signal<Local, Bits<48>>,
}

impl<const BUS: usize, const ACCW: usize> AttentionEngine<BUS, ACCW> {
    pub fn new(cfg: &AttentionConfig) -> Self {
        let a = &cfg.attention;
        let k = &cfg.constants;
        assert_eq!((BUS, ACCW), (8 * a.macs, 32 * a.macs), "bus widths");
        let chunks = cfg.chunks();
        let block = a.query_block;
        // One row per block needs no replay: a one-word buffer. Synthesis keeps it (it is
        // written and read; nothing tells it the row alone always streams).
        let buffer_depth = if block > 1 { 2 * a.tile * chunks } else { 1 };
        let u16c = |v: usize| Constant::new(Bits::<16>::from(v as u64));
        AttentionEngine {
            clock: Default::default(),
            reset: Default::default(),
            act_valid: Default::default(),
            act_ready: Default::default(),
            act_last: Default::default(),
            act_data: Default::default(),
            wgt_valid: Default::default(),
            wgt_ready: Default::default(),
            wgt_data: Default::default(),
            res_valid: Default::default(),
            res_ready: Default::default(),
            res_data: Default::default(),
            res_empty: Default::default(),
            threshold: Default::default(),
            threshold_reciprocal: Default::default(),
            index_offset: Default::default(),
            output_numerator: Default::default(),
            query_memory: WordMemory::new(1, block * chunks, false, "distributed"),
            score_memory: WordMemory::new(1, a.tile, false, "distributed"),
            accumulator_memory: WordMemory::new(1, block * chunks, false, "distributed"),
            tile_buffer: WordMemory::new(1, buffer_depth, false, "distributed"),
            row_max_memory: WordMemory::new(1, block, true, "distributed"),
            row_sum_memory: WordMemory::new(1, block, true, "distributed"),
            row_span_memory: WordMemory::new(1, block, true, "distributed"),
            row_base_memory: WordMemory::new(1, block, true, "distributed"),
            score_dot: Default::default(),
            value_lanes: Default::default(),
            softmax_index: SoftmaxIndex::new(k),
            exp_table: ExpTable::new(k.exp_table.iter().map(|&v| u64::from(v)).collect()),
            rescale_table: RescaleTable::new(
                k.rescale_table.iter().map(|&v| u64::from(v)).collect(),
            ),
            output_requant: OutputRequant::new(k),
            state: Default::default(),
            visible: Default::default(),
            kv_len: Default::default(),
            chunk: Default::default(),
            key: Default::default(),
            tile_base: Default::default(),
            tile_len: Default::default(),
            partial: Default::default(),
            tile_max: Default::default(),
            tile_any: Default::default(),
            running_max: Default::default(),
            has_max: Default::default(),
            sum: Default::default(),
            factor: Default::default(),
            weight: Default::default(),
            row: Default::default(),
            row_base: Default::default(),
            rows_in_block: Default::default(),
            order: Default::default(),
            block_kv: Default::default(),
            stream_row: Default::default(),
            streaming: Default::default(),
            tile_address: Default::default(),
            last_in_block: Default::default(),
            divider_numerator: Default::default(),
            divider_remainder: Default::default(),
            divider_quotient: Default::default(),
            divider_step: Default::default(),
            out_lane: Default::default(),
            out_word: Default::default(),
            out_source: Default::default(),
            out_valid: Default::default(),
            empty: Default::default(),
            last_chunk: u16c(chunks - 1),
            chunks: u16c(chunks),
            tile: u16c(a.tile),
            value_base: u16c(a.tile * chunks),
            query_block: u16c(block),
            last_lane: Constant::new(Bits::from((a.macs - 1) as u64)),
            last_divider_step: Constant::new(Bits::from(u64::from(RECIPROCAL_NUMERATOR_BITS) - 1)),
            sign_bit: Constant::new(Bits::from(1u64 << 31)),
            top_byte: u16c(BUS - 8),
            act_fire: Default::default(),
            wgt_fire: Default::default(),
            kv_fire: Default::default(),
            kv_word: Default::default(),
            fetch_order: Default::default(),
            order_row: Default::default(),
            saved_max: Default::default(),
            saved_sum: Default::default(),
            saved_span: Default::default(),
            saved_base: Default::default(),
            header_kv_len: Default::default(),
            score: Default::default(),
            key_visible: Default::default(),
            next_visible: Default::default(),
            remaining: Default::default(),
            shifted_remainder: Default::default(),
        }
    }

    /// On-chip storage: (query, score, accumulator, tile buffer, row state) memory bits.
    pub fn memory_bits(&self) -> [usize; 5] {
        [
            self.query_memory.bits(),
            self.score_memory.bits(),
            self.accumulator_memory.bits(),
            self.tile_buffer.bits(),
            self.row_max_memory.bits()
                + self.row_sum_memory.bits()
                + self.row_span_memory.bits()
                + self.row_base_memory.bits(),
        ]
    }
}

impl<const BUS: usize, const ACCW: usize> Logic for AttentionEngine<BUS, ACCW> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            visible,
            kv_len,
            chunk,
            key,
            tile_base,
            tile_len,
            partial,
            tile_max,
            tile_any,
            running_max,
            has_max,
            sum,
            factor,
            weight,
            row,
            row_base,
            rows_in_block,
            order,
            block_kv,
            stream_row,
            streaming,
            tile_address,
            last_in_block,
            divider_numerator,
            divider_remainder,
            divider_quotient,
            divider_step,
            out_lane,
            out_word,
            out_source,
            out_valid,
            empty
        );
        self.query_memory.clock.next = self.clock.val();
        self.score_memory.clock.next = self.clock.val();
        self.accumulator_memory.clock.next = self.clock.val();
        self.tile_buffer.clock.next = self.clock.val();
        self.row_max_memory.clock.next = self.clock.val();
        self.row_sum_memory.clock.next = self.clock.val();
        self.row_span_memory.clock.next = self.clock.val();
        self.row_base_memory.clock.next = self.clock.val();

        // Defaults: nothing accepted, nothing written.
        self.act_ready.next = false;
        self.wgt_ready.next = false;
        self.query_memory.write_enable.next = false;
        self.score_memory.write_enable.next = false;
        self.accumulator_memory.write_enable.next = false;
        self.tile_buffer.write_enable.next = false;
        self.row_max_memory.write_enable.next = false;
        self.row_sum_memory.write_enable.next = false;
        self.row_span_memory.write_enable.next = false;
        self.row_base_memory.write_enable.next = false;
        self.query_memory.read_enable.next = true;
        self.score_memory.read_enable.next = true;
        self.accumulator_memory.read_enable.next = true;
        self.tile_buffer.read_enable.next = true;
        self.row_max_memory.read_enable.next = true;
        self.row_sum_memory.read_enable.next = true;
        self.row_span_memory.read_enable.next = true;
        self.row_base_memory.read_enable.next = true;
        self.query_memory.write_address.next = self.row_base.q.val() + self.chunk.q.val();
        self.query_memory.read_address.next = self.row_base.q.val() + self.chunk.q.val();
        self.accumulator_memory.write_address.next = self.row_base.q.val() + self.chunk.q.val();
        self.accumulator_memory.read_address.next = self.row_base.q.val() + self.chunk.q.val();
        self.score_memory.write_address.next = self.key.q.val();
        self.score_memory.read_address.next = self.key.q.val() + 1;
        self.tile_buffer.write_address.next = self.tile_address.q.val();
        self.tile_buffer.read_address.next = self.tile_address.q.val();
        // The pass whose row the row memories read: this one, or while a row's state is
        // saved, the next (registered reads: its state is there the clock after).
        self.fetch_order.next = self.order.q.val();
        if self.state.q.val() == Phase::RowSave {
            self.fetch_order.next = self.order.q.val() + 1;
            if self.order.q.val() + 1 == self.rows_in_block.q.val() {
                self.fetch_order.next = 0.into();
            }
        }
        // The row a tile pass serves: the streaming row first, then the others in order.
        self.order_row.next = self.fetch_order.val();
        if self.fetch_order.val() == 0 {
            self.order_row.next = self.stream_row.q.val();
        } else if self.fetch_order.val() <= self.stream_row.q.val() {
            self.order_row.next = self.fetch_order.val() - 1;
        }
        // Rows leave in order: the output phases read row `order`.
        if (self.state.q.val() == Phase::OutFetch) | (self.state.q.val() == Phase::OutSelect) {
            self.order_row.next = self.order.q.val();
        }
        self.row_max_memory.read_address.next = self.order_row.val();
        self.row_sum_memory.read_address.next = self.order_row.val();
        self.row_span_memory.read_address.next = self.order_row.val();
        self.row_base_memory.read_address.next = self.order_row.val();
        self.row_max_memory.write_address.next = self.row.q.val();
        self.row_sum_memory.write_address.next = self.row.q.val();
        self.row_span_memory.write_address.next = self.row.q.val();
        self.row_base_memory.write_address.next = self.row.q.val();
        for i in 0..self.row_max_memory.write_data.len() {
            self.row_max_memory.write_data[i].next = self.running_max.q.val();
            self.saved_max.next = self.row_max_memory.read_data[i].val();
        }
        for i in 0..self.row_sum_memory.write_data.len() {
            self.row_sum_memory.write_data[i].next = self.sum.q.val();
            self.saved_sum.next = self.row_sum_memory.read_data[i].val();
        }
        for i in 0..self.row_span_memory.write_data.len() {
            self.row_span_memory.write_data[i].next = bit_cast::<32, 16>(self.visible.q.val())
                | (bit_cast::<32, 16>(self.kv_len.q.val()) << 16);
            self.saved_span.next = self.row_span_memory.read_data[i].val();
        }
        for i in 0..self.row_base_memory.write_data.len() {
            self.row_base_memory.write_data[i].next = bit_cast::<32, 16>(self.row_base.q.val());
            if self.has_max.q.val() {
                self.row_base_memory.write_data[i].next =
                    bit_cast::<32, 16>(self.row_base.q.val()) | 0x1_0000;
            }
            self.saved_base.next = self.row_base_memory.read_data[i].val();
        }
        for i in 0..self.query_memory.write_data.len() {
            self.query_memory.write_data[i].next = self.act_data.val();
            self.score_dot.q.next = self.query_memory.read_data[i].val();
        }
        for i in 0..self.tile_buffer.write_data.len() {
            self.tile_buffer.write_data[i].next = self.wgt_data.val();
            self.kv_word.next = self.tile_buffer.read_data[i].val();
        }
        // The streaming row takes beats from the stream; the others from the buffer.
        self.kv_fire.next = true;
        if self.streaming.q.val() {
            self.kv_word.next = self.wgt_data.val();
            self.kv_fire.next = self.wgt_valid.val();
        }
        for i in 0..self.accumulator_memory.write_data.len() {
            self.value_lanes.acc_in.next = self.accumulator_memory.read_data[i].val();
            self.accumulator_memory.write_data[i].next = self.value_lanes.acc_out.val();
            self.out_source.d.next = self.accumulator_memory.read_data[i].val();
        }
        self.score_dot.k.next = self.kv_word.val();
        self.score.next = self.partial.q.val() + self.score_dot.dot.val();
        for i in 0..self.score_memory.write_data.len() {
            self.score_memory.write_data[i].next = self.score.val();
            self.softmax_index.delta.next =
                self.running_max.q.val() - self.score_memory.read_data[i].val();
        }
        self.value_lanes.v.next = self.kv_word.val();
        self.value_lanes.e.next = self.weight.q.val();
        self.value_lanes.factor.next = self.factor.q.val();
        self.value_lanes.rescale.next = false;
        self.value_lanes.clear.next = false;
        self.value_lanes.sum_in.next = self.sum.q.val();
        self.softmax_index.threshold.next = self.threshold.val();
        self.softmax_index.reciprocal.next = self.threshold_reciprocal.val();
        self.softmax_index.offset.next = self.index_offset.val();
        self.exp_table.index.next = self.softmax_index.exp_index.val();
        self.rescale_table.index.next = self.softmax_index.rescale_index.val();
        self.output_requant.acc.next = self.out_source.q.val().get_bits::<32>(0);
        self.output_requant.reciprocal.next = self.divider_quotient.q.val().get_bits::<40>(0);
        self.act_fire.next = false;
        self.wgt_fire.next = false;
        self.header_kv_len.next = bit_cast::<16, 15>(self.act_data.val().get_bits::<15>(16));
        self.key_visible.next = (self.tile_base.q.val() + self.key.q.val()) < self.visible.q.val();
        self.next_visible.next =
            (self.tile_base.q.val() + self.key.q.val() + 1) < self.visible.q.val();
        self.remaining.next = self.kv_len.q.val() - self.tile_base.q.val();
        self.shifted_remainder.next = self.divider_remainder.q.val() << 1;
        if self.divider_numerator.q.val().get_bit(47) {
            self.shifted_remainder.next = (self.divider_remainder.q.val() << 1) + 1;
        }
        self.res_valid.next = self.out_valid.q.val();
        self.res_data.next = self.out_word.q.val();
        self.res_empty.next = self.empty.q.val();

        match self.state.q.val() {
            Phase::Header => {
                self.act_ready.next = true;
                self.act_fire.next = self.act_valid.val();
                if self.act_fire.val() {
                    self.visible.d.next = self.act_data.val().get_bits::<16>(0);
                    self.kv_len.d.next = self.header_kv_len.val();
                    self.last_in_block.d.next = self.act_data.val().get_bit(31);
                    self.chunk.d.next = 0.into();
                    self.has_max.d.next = false;
                    self.sum.d.next = 0.into();
                    // The block's longest row streams the tiles.
                    if (self.row.q.val() == 0) | (self.header_kv_len.val() > self.block_kv.q.val())
                    {
                        self.block_kv.d.next = self.header_kv_len.val();
                        self.stream_row.d.next = self.row.q.val();
                    }
                    self.state.d.next = Phase::Query;
                }
            }
            Phase::Query => {
                self.act_ready.next = true;
                self.act_fire.next = self.act_valid.val();
                if self.act_fire.val() {
                    self.query_memory.write_enable.next = true;
                    // The row's accumulators start at zero.
                    self.value_lanes.clear.next = true;
                    self.accumulator_memory.write_enable.next = true;
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.chunk.d.next = 0.into();
                        self.row_max_memory.write_enable.next = true;
                        self.row_sum_memory.write_enable.next = true;
                        self.row_span_memory.write_enable.next = true;
                        self.row_base_memory.write_enable.next = true;
                        self.order.d.next = 0.into();
                        self.tile_base.d.next = 0.into();
                        if self.last_in_block.q.val()
                            | (self.row.q.val() + 1 == self.query_block.val())
                        {
                            self.rows_in_block.d.next = self.row.q.val() + 1;
                            if self.row.q.val() == 0 {
                                // A row alone keeps its state in the registers: no
                                // fetch, select or save around its tiles.
                                self.streaming.d.next = true;
                                if self.block_kv.q.val() == 0 {
                                    self.state.d.next = Phase::Finish;
                                } else {
                                    self.state.d.next = Phase::TileStart;
                                }
                            } else if self.block_kv.q.val() == 0 {
                                self.state.d.next = Phase::OutFetch;
                            } else {
                                self.state.d.next = Phase::RowFetch;
                            }
                        } else {
                            self.row.d.next = self.row.q.val() + 1;
                            self.row_base.d.next = self.row_base.q.val() + self.chunks.val();
                            self.state.d.next = Phase::Header;
                        }
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                    }
                }
            }
            Phase::RowFetch => {
                // The row memories read the row `order` names (registered reads).
                self.state.d.next = Phase::RowSelect;
            }
            Phase::RowSelect => {
                self.row.d.next = self.order_row.val();
                self.running_max.d.next = self.saved_max.val();
                self.sum.d.next = self.saved_sum.val();
                self.visible.d.next = self.saved_span.val().get_bits::<16>(0);
                self.kv_len.d.next = self.saved_span.val().get_bits::<16>(16);
                self.row_base.d.next = self.saved_base.val().get_bits::<16>(0);
                self.has_max.d.next = self.saved_base.val().get_bit(16);
                self.streaming.d.next = self.order.q.val() == 0;
                self.state.d.next = Phase::TileStart;
            }
            Phase::TileStart => {
                if self.remaining.val() > self.tile.val() {
                    self.tile_len.d.next = self.tile.val();
                } else {
                    self.tile_len.d.next = self.remaining.val();
                }
                self.key.d.next = 0.into();
                self.chunk.d.next = 0.into();
                self.partial.d.next = 0.into();
                self.tile_any.d.next = false;
                self.tile_address.d.next = 0.into();
                if self.kv_len.q.val() > self.tile_base.q.val() {
                    self.state.d.next = Phase::Score;
                } else {
                    // This row's keys ended before this tile.
                    self.state.d.next = Phase::RowSave;
                }
            }
            Phase::Score => {
                self.wgt_ready.next = self.streaming.q.val();
                self.wgt_fire.next = self.streaming.q.val() & self.wgt_valid.val();
                if self.kv_fire.val() {
                    self.tile_buffer.write_enable.next = self.streaming.q.val();
                    self.tile_address.d.next = self.tile_address.q.val() + 1;
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.score_memory.write_enable.next = true;
                        self.partial.d.next = 0.into();
                        self.chunk.d.next = 0.into();
                        if self.key_visible.val()
                            & (!self.tile_any.q.val()
                                | ((self.score.val() ^ self.sign_bit.val())
                                    > (self.tile_max.q.val() ^ self.sign_bit.val())))
                        {
                            self.tile_max.d.next = self.score.val();
                            self.tile_any.d.next = true;
                        }
                        if self.key.q.val() + 1 == self.tile_len.q.val() {
                            self.key.d.next = 0.into();
                            self.state.d.next = Phase::TileMax;
                        } else {
                            self.key.d.next = self.key.q.val() + 1;
                        }
                    } else {
                        self.partial.d.next = self.score.val();
                        self.chunk.d.next = self.chunk.q.val() + 1;
                    }
                }
            }
            Phase::TileMax => {
                self.softmax_index.delta.next = self.tile_max.q.val() - self.running_max.q.val();
                self.factor.d.next = self.rescale_table.value.val();
                self.chunk.d.next = 0.into();
                self.tile_address.d.next = self.value_base.val();
                self.score_memory.read_address.next = 0.into();
                self.state.d.next = Phase::Prime;
                if self.tile_any.q.val() {
                    if !self.has_max.q.val() {
                        self.running_max.d.next = self.tile_max.q.val();
                        self.has_max.d.next = true;
                    } else if (self.tile_max.q.val() ^ self.sign_bit.val())
                        > (self.running_max.q.val() ^ self.sign_bit.val())
                    {
                        self.running_max.d.next = self.tile_max.q.val();
                        if self.softmax_index.rescale_index.val() != 0 {
                            self.state.d.next = Phase::Rescale;
                        }
                    }
                }
            }
            Phase::Rescale => {
                self.value_lanes.rescale.next = true;
                self.accumulator_memory.write_enable.next = true;
                if self.chunk.q.val() == 0 {
                    self.sum.d.next = self.value_lanes.sum_scaled.val();
                }
                if self.chunk.q.val() == self.last_chunk.val() {
                    self.chunk.d.next = 0.into();
                    self.state.d.next = Phase::Prime;
                } else {
                    self.chunk.d.next = self.chunk.q.val() + 1;
                }
            }
            Phase::Prime => {
                // Weight of key 0 of the tile (the score memory reads address 0).
                self.score_memory.read_address.next = 0.into();
                self.weight.d.next = 0.into();
                if self.key_visible.val() {
                    self.weight.d.next = self.exp_table.value.val();
                }
                self.state.d.next = Phase::Value;
            }
            Phase::Value => {
                self.wgt_ready.next = self.streaming.q.val();
                self.wgt_fire.next = self.streaming.q.val() & self.wgt_valid.val();
                if self.kv_fire.val() {
                    self.tile_buffer.write_enable.next = self.streaming.q.val();
                    self.tile_address.d.next = self.tile_address.q.val() + 1;
                    self.accumulator_memory.write_enable.next = true;
                    if self.chunk.q.val() == 0 {
                        self.sum.d.next = self.sum.q.val() + bit_cast::<32, 8>(self.weight.q.val());
                    }
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.chunk.d.next = 0.into();
                        // Weight of the next key (the score memory reads `key + 1`).
                        self.weight.d.next = 0.into();
                        if self.next_visible.val() {
                            self.weight.d.next = self.exp_table.value.val();
                        }
                        if self.key.q.val() + 1 == self.tile_len.q.val() {
                            self.key.d.next = 0.into();
                            if self.rows_in_block.q.val() == 1 {
                                self.tile_base.d.next = self.tile_base.q.val() + self.tile.val();
                                if self.tile_len.q.val() == self.remaining.val() {
                                    self.state.d.next = Phase::Finish;
                                } else {
                                    self.state.d.next = Phase::TileStart;
                                }
                            } else {
                                self.state.d.next = Phase::RowSave;
                            }
                        } else {
                            self.key.d.next = self.key.q.val() + 1;
                        }
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                    }
                }
            }
            Phase::RowSave => {
                self.row_max_memory.write_enable.next = true;
                self.row_sum_memory.write_enable.next = true;
                self.row_span_memory.write_enable.next = true;
                self.row_base_memory.write_enable.next = true;
                self.streaming.d.next = false;
                // The next pass's row is read this clock (see `fetch_order`).
                self.state.d.next = Phase::RowSelect;
                if self.order.q.val() + 1 == self.rows_in_block.q.val() {
                    self.order.d.next = 0.into();
                    self.tile_base.d.next = self.tile_base.q.val() + self.tile.val();
                    if self.tile_base.q.val() + self.tile.val() >= self.block_kv.q.val() {
                        self.state.d.next = Phase::OutFetch;
                    }
                } else {
                    self.order.d.next = self.order.q.val() + 1;
                }
            }
            Phase::OutFetch => {
                self.state.d.next = Phase::OutSelect;
            }
            Phase::OutSelect => {
                self.sum.d.next = self.saved_sum.val();
                self.row_base.d.next = self.saved_base.val().get_bits::<16>(0);
                self.state.d.next = Phase::Finish;
            }
            Phase::Finish => {
                self.divider_numerator.d.next = self.output_numerator.val();
                self.divider_remainder.d.next = 0.into();
                self.divider_quotient.d.next = 0.into();
                self.divider_step.d.next = 0.into();
                self.chunk.d.next = 0.into();
                self.empty.d.next = self.sum.q.val() == 0;
                if self.sum.q.val() == 0 {
                    self.state.d.next = Phase::LoadOut;
                } else {
                    self.state.d.next = Phase::Divide;
                }
            }
            Phase::Divide => {
                // Restoring division, one quotient bit per clock.
                self.divider_numerator.d.next = self.divider_numerator.q.val() << 1;
                if self.shifted_remainder.val() >= bit_cast::<48, 32>(self.sum.q.val()) {
                    self.divider_remainder.d.next =
                        self.shifted_remainder.val() - bit_cast::<48, 32>(self.sum.q.val());
                    self.divider_quotient.d.next = (self.divider_quotient.q.val() << 1) + 1;
                } else {
                    self.divider_remainder.d.next = self.shifted_remainder.val();
                    self.divider_quotient.d.next = self.divider_quotient.q.val() << 1;
                }
                self.divider_step.d.next = self.divider_step.q.val() + 1;
                if self.divider_step.q.val() == self.last_divider_step.val() {
                    self.state.d.next = Phase::LoadOut;
                }
            }
            Phase::LoadOut => {
                // `out_source` takes the accumulator word (default assignment above).
                self.out_lane.d.next = 0.into();
                self.state.d.next = Phase::Requant;
            }
            Phase::Requant => {
                self.out_source.d.next = self.out_source.q.val() >> 32;
                self.out_word.d.next = (self.out_word.q.val() >> 8)
                    | (bit_cast::<BUS, 8>(self.output_requant.value.val()) << self.top_byte.val());
                self.out_lane.d.next = self.out_lane.q.val() + 1;
                if self.out_lane.q.val() == self.last_lane.val() {
                    self.out_valid.d.next = true;
                    self.state.d.next = Phase::Emit;
                }
            }
            Phase::Emit => {
                if self.res_ready.val() {
                    self.out_valid.d.next = false;
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.chunk.d.next = 0.into();
                        if self.order.q.val() + 1 == self.rows_in_block.q.val() {
                            self.order.d.next = 0.into();
                            self.row.d.next = 0.into();
                            self.row_base.d.next = 0.into();
                            self.state.d.next = Phase::Header;
                        } else {
                            self.order.d.next = self.order.q.val() + 1;
                            self.state.d.next = Phase::OutFetch;
                        }
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                        self.state.d.next = Phase::LoadOut;
                    }
                }
            }
        }

        if self.reset.val() {
            self.state.d.next = Phase::Header;
            self.row.d.next = 0.into();
            self.row_base.d.next = 0.into();
            self.order.d.next = 0.into();
            self.out_valid.d.next = false;
            self.act_ready.next = false;
            self.wgt_ready.next = false;
        }
    }
}
