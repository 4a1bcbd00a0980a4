//! The ternary matmul engine (TLMM, and the adder-tree baseline as `lane_group = 1`).
//!
//! Dataflow per token (output-stationary):
//! 1. activation beats (one chunk of Q·G int8 each) → `TableBuilder` → table memory,
//!    bank `wbank`. Two banks: the next token's tables are built while the lanes read
//!    the current token's, so in steady state the lanes never wait on precompute.
//! 2. weight beats (P×L codes, row block outer, chunk inner) → weight FIFO.
//! 3. issue: FIFO head + table read of bank `rbank` (block RAM style, one clock).
//! 4. stage 1: `LookupArray` (select, negate, row adder tree) → accumulate per row;
//!    the last chunk of a row block writes the output register.
//! 5. result beats: P accumulators. A full output register stalls stages 3–4.
//!
//! Steady state: one weight beat per clock. Pipeline latency from a weight beat
//! accepted (into an empty FIFO) to its result valid: [`PIPELINE_LATENCY`] clocks.

pub mod lookup;
pub mod table_builder;

use rust_hdl::prelude::*;

use crate::config::Config;
use crate::memory::{signals, WordMemory};
pub use lookup::LookupArray;
pub use table_builder::TableBuilder;

/// Clocks from the edge that accepts the last weight beat of a row block (FIFO empty
/// before it) to the first clock with `res_valid` high: FIFO write, issue, stage 1.
pub const PIPELINE_LATENCY: usize = 3;

#[derive(LogicBlock)]
pub struct TlmmEngine<const SW: usize, const LW: usize, const IW: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset of the control state (memories are not cleared).
    pub reset: Signal<In, Bit>,
    pub act_valid: Signal<In, Bit>,
    pub act_ready: Signal<Out, Bit>,
    pub act_data: Vec<Signal<In, Bits<8>>>,
    pub wgt_valid: Signal<In, Bit>,
    pub wgt_ready: Signal<Out, Bit>,
    pub wgt_sign: Vec<Signal<In, Bits<1>>>,
    pub wgt_index: Vec<Signal<In, Bits<IW>>>,
    pub res_valid: Signal<Out, Bit>,
    pub res_ready: Signal<In, Bit>,
    pub res_data: Vec<Signal<Out, Bits<ACC>>>,

    builder: TableBuilder<SW>,
    tables: WordMemory<SW>,
    fifo_sign: WordMemory<1>,
    fifo_index: WordMemory<IW>,
    lookup: LookupArray<SW, LW, IW, ACC>,

    // table precompute (write side)
    wbank: DFF<Bit>,
    wchunk: DFF<Bits<16>>,
    filled0: DFF<Bit>,
    filled1: DFF<Bit>,
    // weight FIFO
    fifo_head: DFF<Bits<16>>,
    fifo_tail: DFF<Bits<16>>,
    fifo_count: DFF<Bits<16>>,
    // issue (read side)
    rbank: DFF<Bit>,
    rchunk: DFF<Bits<16>>,
    rblock: DFF<Bits<16>>,
    // stage 1
    s1_valid: DFF<Bit>,
    s1_first: DFF<Bit>,
    s1_last: DFF<Bit>,
    s1_sign: Vec<DFF<Bits<1>>>,
    s1_index: Vec<DFF<Bits<IW>>>,
    acc: Vec<DFF<Bits<ACC>>>,
    // output register
    out_valid: DFF<Bit>,
    out: Vec<DFF<Bits<ACC>>>,

    n_chunks: Constant<Bits<16>>,
    last_chunk: Constant<Bits<16>>,
    last_block: Constant<Bits<16>>,
    fifo_depth: Constant<Bits<16>>,
    fifo_last: Constant<Bits<16>>,

    write_bank_free: Signal<Local, Bit>,
    read_bank_filled: Signal<Local, Bit>,
    act_fire: Signal<Local, Bit>,
    wgt_fire: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    advance: Signal<Local, Bit>,
}

fn dffs<T: Synth>(n: usize) -> Vec<DFF<T>> {
    (0..n).map(|_| DFF::default()).collect()
}

fn constant(v: usize) -> Constant<Bits<16>> {
    Constant::new(Bits::from(v as u64))
}

impl<const SW: usize, const LW: usize, const IW: usize, const ACC: usize>
    TlmmEngine<SW, LW, IW, ACC>
{
    pub fn new(cfg: &Config) -> Self {
        let geo = &cfg.geometry;
        assert_eq!(
            (SW, IW, ACC),
            (geo.entry_bits, geo.index_bits, geo.accumulator_bits)
        );
        let lanes = geo.lanes();
        let depth = cfg.engine.weight_buffer_depth;
        let stored = geo.stored_entries_per_chunk();
        TlmmEngine {
            clock: Default::default(),
            reset: Default::default(),
            act_valid: Default::default(),
            act_ready: Default::default(),
            act_data: signals(geo.chunk_activations),
            wgt_valid: Default::default(),
            wgt_ready: Default::default(),
            wgt_sign: signals(lanes),
            wgt_index: signals(lanes),
            res_valid: Default::default(),
            res_ready: Default::default(),
            res_data: signals(geo.rows),
            builder: TableBuilder::new(geo.lanes_per_row, geo.lane_group),
            tables: WordMemory::new(
                stored,
                2 * geo.chunks,
                true,
                cfg.engine.table_storage.ram_style(),
            ),
            fifo_sign: WordMemory::new(lanes, depth, false, "distributed"),
            fifo_index: WordMemory::new(lanes, depth, false, "distributed"),
            lookup: LookupArray::new(geo.rows, geo.lanes_per_row, geo.table_entries),
            wbank: DFF::default(),
            wchunk: DFF::default(),
            filled0: DFF::default(),
            filled1: DFF::default(),
            fifo_head: DFF::default(),
            fifo_tail: DFF::default(),
            fifo_count: DFF::default(),
            rbank: DFF::default(),
            rchunk: DFF::default(),
            rblock: DFF::default(),
            s1_valid: DFF::default(),
            s1_first: DFF::default(),
            s1_last: DFF::default(),
            s1_sign: dffs(lanes),
            s1_index: dffs(lanes),
            acc: dffs(geo.rows),
            out_valid: DFF::default(),
            out: dffs(geo.rows),
            n_chunks: constant(geo.chunks),
            last_chunk: constant(geo.chunks - 1),
            last_block: constant(geo.row_blocks - 1),
            fifo_depth: constant(depth),
            fifo_last: constant(depth - 1),
            write_bank_free: Default::default(),
            read_bank_filled: Default::default(),
            act_fire: Default::default(),
            wgt_fire: Default::default(),
            issue: Default::default(),
            advance: Default::default(),
        }
    }

    /// Bits held in the table memory and the weight FIFO.
    pub fn memory_bits(&self) -> (usize, usize) {
        (
            self.tables.bits(),
            self.fifo_sign.bits() + self.fifo_index.bits(),
        )
    }
}

impl<const SW: usize, const LW: usize, const IW: usize, const ACC: usize> Logic
    for TlmmEngine<SW, LW, IW, ACC>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, wbank, wchunk, filled0, filled1, fifo_head, fifo_tail, fifo_count, rbank,
            rchunk, rblock, s1_valid, s1_first, s1_last, out_valid
        );
        for k in 0..self.s1_sign.len() {
            self.s1_sign[k].clock.next = self.clock.val();
            self.s1_sign[k].d.next = self.s1_sign[k].q.val();
            self.s1_index[k].clock.next = self.clock.val();
            self.s1_index[k].d.next = self.s1_index[k].q.val();
        }
        for p in 0..self.acc.len() {
            self.acc[p].clock.next = self.clock.val();
            self.acc[p].d.next = self.acc[p].q.val();
            self.out[p].clock.next = self.clock.val();
            self.out[p].d.next = self.out[p].q.val();
        }
        self.tables.clock.next = self.clock.val();
        self.fifo_sign.clock.next = self.clock.val();
        self.fifo_index.clock.next = self.clock.val();

        // 1. Table precompute into bank `wbank`, while that bank is free.
        self.write_bank_free.next = (!self.wbank.q.val() & !self.filled0.q.val())
            | (self.wbank.q.val() & !self.filled1.q.val());
        self.act_ready.next = self.write_bank_free.val() & !self.reset.val();
        self.act_fire.next = self.act_valid.val() & self.act_ready.val();
        for a in 0..self.act_data.len() {
            self.builder.activation[a].next = self.act_data[a].val();
        }
        for e in 0..self.builder.entry.len() {
            self.tables.write_data[e].next = self.builder.entry[e].val();
        }
        self.tables.write_enable.next = self.act_fire.val();
        if self.wbank.q.val() {
            self.tables.write_address.next = self.wchunk.q.val() + self.n_chunks.val();
        } else {
            self.tables.write_address.next = self.wchunk.q.val();
        }
        if self.act_fire.val() {
            if self.wchunk.q.val() == self.last_chunk.val() {
                self.wchunk.d.next = 0.into();
                self.wbank.d.next = !self.wbank.q.val();
                if self.wbank.q.val() {
                    self.filled1.d.next = true;
                } else {
                    self.filled0.d.next = true;
                }
            } else {
                self.wchunk.d.next = self.wchunk.q.val() + 1;
            }
        }

        // 2. Weight FIFO (combinational read of the head).
        self.wgt_ready.next =
            (self.fifo_count.q.val() != self.fifo_depth.val()) & !self.reset.val();
        self.wgt_fire.next = self.wgt_valid.val() & self.wgt_ready.val();
        for k in 0..self.wgt_sign.len() {
            self.fifo_sign.write_data[k].next = self.wgt_sign[k].val();
            self.fifo_index.write_data[k].next = self.wgt_index[k].val();
        }
        self.fifo_sign.write_enable.next = self.wgt_fire.val();
        self.fifo_index.write_enable.next = self.wgt_fire.val();
        self.fifo_sign.write_address.next = self.fifo_tail.q.val();
        self.fifo_index.write_address.next = self.fifo_tail.q.val();
        self.fifo_sign.read_address.next = self.fifo_head.q.val();
        self.fifo_index.read_address.next = self.fifo_head.q.val();
        self.fifo_sign.read_enable.next = true;
        self.fifo_index.read_enable.next = true;
        if self.wgt_fire.val() {
            if self.fifo_tail.q.val() == self.fifo_last.val() {
                self.fifo_tail.d.next = 0.into();
            } else {
                self.fifo_tail.d.next = self.fifo_tail.q.val() + 1;
            }
        }

        // 3. Issue: one weight beat and its chunk's tables per clock.
        self.read_bank_filled.next = (!self.rbank.q.val() & self.filled0.q.val())
            | (self.rbank.q.val() & self.filled1.q.val());
        self.advance.next = !self.out_valid.q.val() | self.res_ready.val();
        self.issue.next = (self.fifo_count.q.val() != 0)
            & self.read_bank_filled.val()
            & self.advance.val()
            & !self.reset.val();
        self.tables.read_enable.next = self.issue.val();
        if self.rbank.q.val() {
            self.tables.read_address.next = self.rchunk.q.val() + self.n_chunks.val();
        } else {
            self.tables.read_address.next = self.rchunk.q.val();
        }
        if self.issue.val() {
            if self.fifo_head.q.val() == self.fifo_last.val() {
                self.fifo_head.d.next = 0.into();
            } else {
                self.fifo_head.d.next = self.fifo_head.q.val() + 1;
            }
            for k in 0..self.s1_sign.len() {
                self.s1_sign[k].d.next = self.fifo_sign.read_data[k].val();
                self.s1_index[k].d.next = self.fifo_index.read_data[k].val();
            }
            self.s1_valid.d.next = true;
            self.s1_first.d.next = self.rchunk.q.val() == 0;
            self.s1_last.d.next = self.rchunk.q.val() == self.last_chunk.val();
            if self.rchunk.q.val() == self.last_chunk.val() {
                self.rchunk.d.next = 0.into();
                if self.rblock.q.val() == self.last_block.val() {
                    // Last read of this bank has been issued: hand it back to precompute.
                    self.rblock.d.next = 0.into();
                    self.rbank.d.next = !self.rbank.q.val();
                    if self.rbank.q.val() {
                        self.filled1.d.next = false;
                    } else {
                        self.filled0.d.next = false;
                    }
                } else {
                    self.rblock.d.next = self.rblock.q.val() + 1;
                }
            } else {
                self.rchunk.d.next = self.rchunk.q.val() + 1;
            }
        } else if self.advance.val() {
            self.s1_valid.d.next = false;
        }
        if self.wgt_fire.val() & !self.issue.val() {
            self.fifo_count.d.next = self.fifo_count.q.val() + 1;
        }
        if !self.wgt_fire.val() & self.issue.val() {
            self.fifo_count.d.next = self.fifo_count.q.val() - 1;
        }

        // 4. Stage 1: lookup, row sums, accumulate.
        for e in 0..self.lookup.table.len() {
            self.lookup.table[e].next = self.tables.read_data[e].val();
        }
        for k in 0..self.s1_sign.len() {
            self.lookup.sign[k].next = self.s1_sign[k].q.val();
            self.lookup.index[k].next = self.s1_index[k].q.val();
        }
        if self.s1_valid.q.val() & self.advance.val() {
            for p in 0..self.acc.len() {
                if self.s1_first.q.val() {
                    if self.s1_last.q.val() {
                        self.out[p].d.next = self.lookup.row_sum[p].val();
                    } else {
                        self.acc[p].d.next = self.lookup.row_sum[p].val();
                    }
                } else if self.s1_last.q.val() {
                    self.out[p].d.next = self.acc[p].q.val() + self.lookup.row_sum[p].val();
                } else {
                    self.acc[p].d.next = self.acc[p].q.val() + self.lookup.row_sum[p].val();
                }
            }
        }

        // 5. Output register.
        self.res_valid.next = self.out_valid.q.val();
        for p in 0..self.out.len() {
            self.res_data[p].next = self.out[p].q.val();
        }
        if self.out_valid.q.val() & self.res_ready.val() {
            self.out_valid.d.next = false;
        }
        if self.s1_valid.q.val() & self.advance.val() & self.s1_last.q.val() {
            self.out_valid.d.next = true;
        }

        if self.reset.val() {
            self.wbank.d.next = false;
            self.wchunk.d.next = 0.into();
            self.filled0.d.next = false;
            self.filled1.d.next = false;
            self.fifo_head.d.next = 0.into();
            self.fifo_tail.d.next = 0.into();
            self.fifo_count.d.next = 0.into();
            self.rbank.d.next = false;
            self.rchunk.d.next = 0.into();
            self.rblock.d.next = 0.into();
            self.s1_valid.d.next = false;
            self.out_valid.d.next = false;
        }
    }
}
