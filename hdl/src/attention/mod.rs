//! The streaming integer attention engine (IntAttention-style IndexSoftmax, streamed
//! over KV tiles with an online-softmax rescale).
//!
//! One query row at a time (stream formats: `streams::attention`):
//! 1. header and query beats → query memory (`d/macs` words);
//! 2. per tile of up to `Bc` keys:
//!    - key beats: `ScoreDot` (`macs` int8 MACs per clock) accumulates `s = q·k` over
//!      `d/macs` beats per key → score memory (one tile), tracking the tile's maximum
//!      over visible keys;
//!    - if the tile's maximum exceeds the running maximum by Δ: every output
//!      accumulator and the running sum are scaled by `rescale_table[R·min(Δ,thr)/thr]`
//!      (`d/macs` clocks), then the running maximum moves up;
//!    - value beats: for each key `e = exp_table[E·min(max − s, thr)/thr]` (0 for a
//!      masked key), `sum += e`, `acc += e·v` on `macs` lanes per clock;
//! 3. `r = floor(K/sum)` by a 48-step restoring divider (one per row), then
//!    `out = sat8((acc·r + 2^(S−1)) >> S)` one lane per clock → result beats. A row with
//!    no visible key (`sum = 0`) is flagged `empty`.
//!
//! Scores are compared as signed numbers by flipping their sign bits (offset binary).
//! The buffers are LUT RAM with combinational reads, so a read-modify-write of an
//! accumulator word takes one clock.

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
    TileStart,
    Score,
    TileMax,
    Rescale,
    Prime,
    Value,
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

    query_memory: WordMemory<BUS>,
    score_memory: WordMemory<32>,
    accumulator_memory: WordMemory<ACCW>,
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
    fresh: DFF<Bit>,
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
    tile: Constant<Bits<16>>,
    last_lane: Constant<Bits<8>>,
    last_divider_step: Constant<Bits<8>>,
    output_numerator: Constant<Bits<48>>,
    sign_bit: Constant<Bits<32>>,
    top_byte: Constant<Bits<16>>,

    act_fire: Signal<Local, Bit>,
    wgt_fire: Signal<Local, Bit>,
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
            query_memory: WordMemory::new(1, chunks, false, "distributed"),
            score_memory: WordMemory::new(1, a.tile, false, "distributed"),
            accumulator_memory: WordMemory::new(1, chunks, false, "distributed"),
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
            fresh: Default::default(),
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
            tile: u16c(a.tile),
            last_lane: Constant::new(Bits::from((a.macs - 1) as u64)),
            last_divider_step: Constant::new(Bits::from(u64::from(RECIPROCAL_NUMERATOR_BITS) - 1)),
            output_numerator: Constant::new(Bits::from(k.output_numerator)),
            sign_bit: Constant::new(Bits::from(1u64 << 31)),
            top_byte: u16c(BUS - 8),
            act_fire: Default::default(),
            wgt_fire: Default::default(),
            score: Default::default(),
            key_visible: Default::default(),
            next_visible: Default::default(),
            remaining: Default::default(),
            shifted_remainder: Default::default(),
        }
    }

    /// On-chip storage: (query, score, accumulator) memory bits.
    pub fn memory_bits(&self) -> (usize, usize, usize) {
        (
            self.query_memory.bits(),
            self.score_memory.bits(),
            self.accumulator_memory.bits(),
        )
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
            fresh,
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

        // Defaults: nothing accepted, nothing written.
        self.act_ready.next = false;
        self.wgt_ready.next = false;
        self.query_memory.write_enable.next = false;
        self.score_memory.write_enable.next = false;
        self.accumulator_memory.write_enable.next = false;
        self.query_memory.read_enable.next = true;
        self.score_memory.read_enable.next = true;
        self.accumulator_memory.read_enable.next = true;
        self.query_memory.write_address.next = self.chunk.q.val();
        self.query_memory.read_address.next = self.chunk.q.val();
        self.accumulator_memory.write_address.next = self.chunk.q.val();
        self.accumulator_memory.read_address.next = self.chunk.q.val();
        self.score_memory.write_address.next = self.key.q.val();
        self.score_memory.read_address.next = self.key.q.val() + 1;
        for i in 0..self.query_memory.write_data.len() {
            self.query_memory.write_data[i].next = self.act_data.val();
            self.score_dot.q.next = self.query_memory.read_data[i].val();
        }
        for i in 0..self.accumulator_memory.write_data.len() {
            self.value_lanes.acc_in.next = self.accumulator_memory.read_data[i].val();
            self.accumulator_memory.write_data[i].next = self.value_lanes.acc_out.val();
            self.out_source.d.next = self.accumulator_memory.read_data[i].val();
        }
        self.score_dot.k.next = self.wgt_data.val();
        self.score.next = self.partial.q.val() + self.score_dot.dot.val();
        for i in 0..self.score_memory.write_data.len() {
            self.score_memory.write_data[i].next = self.score.val();
            self.softmax_index.delta.next =
                self.running_max.q.val() - self.score_memory.read_data[i].val();
        }
        self.value_lanes.v.next = self.wgt_data.val();
        self.value_lanes.e.next = self.weight.q.val();
        self.value_lanes.factor.next = self.factor.q.val();
        self.value_lanes.rescale.next = false;
        self.value_lanes.clear.next = self.fresh.q.val() & (self.key.q.val() == 0);
        self.value_lanes.sum_in.next = self.sum.q.val();
        self.exp_table.index.next = self.softmax_index.exp_index.val();
        self.rescale_table.index.next = self.softmax_index.rescale_index.val();
        self.output_requant.acc.next = self.out_source.q.val().get_bits::<32>(0);
        self.output_requant.reciprocal.next = self.divider_quotient.q.val().get_bits::<40>(0);
        self.act_fire.next = false;
        self.wgt_fire.next = false;
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
                    self.kv_len.d.next = self.act_data.val().get_bits::<16>(16);
                    self.chunk.d.next = 0.into();
                    self.tile_base.d.next = 0.into();
                    self.has_max.d.next = false;
                    self.sum.d.next = 0.into();
                    self.fresh.d.next = true;
                    self.state.d.next = Phase::Query;
                }
            }
            Phase::Query => {
                self.act_ready.next = true;
                self.act_fire.next = self.act_valid.val();
                if self.act_fire.val() {
                    self.query_memory.write_enable.next = true;
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.chunk.d.next = 0.into();
                        if self.kv_len.q.val() == 0 {
                            self.state.d.next = Phase::Finish;
                        } else {
                            self.state.d.next = Phase::TileStart;
                        }
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                    }
                }
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
                self.state.d.next = Phase::Score;
            }
            Phase::Score => {
                self.wgt_ready.next = true;
                self.wgt_fire.next = self.wgt_valid.val();
                if self.wgt_fire.val() {
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
                self.wgt_ready.next = true;
                self.wgt_fire.next = self.wgt_valid.val();
                if self.wgt_fire.val() {
                    self.accumulator_memory.write_enable.next = true;
                    if self.chunk.q.val() == 0 {
                        self.sum.d.next = self.sum.q.val() + bit_cast::<32, 8>(self.weight.q.val());
                    }
                    if self.chunk.q.val() == self.last_chunk.val() {
                        self.chunk.d.next = 0.into();
                        self.fresh.d.next = false;
                        // Weight of the next key (the score memory reads `key + 1`).
                        self.weight.d.next = 0.into();
                        if self.next_visible.val() {
                            self.weight.d.next = self.exp_table.value.val();
                        }
                        if self.key.q.val() + 1 == self.tile_len.q.val() {
                            self.key.d.next = 0.into();
                            self.tile_base.d.next = self.tile_base.q.val() + self.tile_len.q.val();
                            if self.tile_len.q.val() == self.remaining.val() {
                                self.state.d.next = Phase::Finish;
                            } else {
                                self.state.d.next = Phase::TileStart;
                            }
                        } else {
                            self.key.d.next = self.key.q.val() + 1;
                        }
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                    }
                }
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
                        self.state.d.next = Phase::Header;
                    } else {
                        self.chunk.d.next = self.chunk.q.val() + 1;
                        self.state.d.next = Phase::LoadOut;
                    }
                }
            }
        }

        if self.reset.val() {
            self.state.d.next = Phase::Header;
            self.out_valid.d.next = false;
            self.act_ready.next = false;
            self.wgt_ready.next = false;
        }
    }
}
