//! The ternary matmul engine (TLMM, and the adder-tree baseline as `lane_group = 1`).
//!
//! Dataflow (weights chunk-major, outputs accumulated in memory between chunks):
//!
//! ```text
//! act beats ─► activation buffer (2 banks × T_b tokens × C chunks)
//!                 │ chunk c, token t
//!                 ▼
//!           TableBuilder ─► LaneTables (2 banks × T_b tokens of chunk c's tables)
//! wgt beats ─► [FIFO] ─► s1: held beat (serves each token of the block in turn) ─┘
//!                          LaneTables: lane values ─► RowTrees (sign-folded, pipelined)
//!                          ─► Accumulators (root register, memory of (row block, token)
//!                             partial sums, output register) ─► res beats
//! ```
//!
//! Loop order per token block of `n ≤ T_b` tokens: for each chunk `c`, for each row
//! block `b`, one weight beat, held for `n` clocks (token `t` on clock `t`). The tables
//! of chunk `c+1` are built into the other bank while chunk `c` is read; the next
//! block's activations arrive in the other activation bank meanwhile. A block ends
//! after `T_b` tokens or at an activation beat with `act_last` set (sampled on the last
//! chunk of a token), so one engine serves decode (n = 1) and prefill (n = T_b).
//!
//! Results leave during the last chunk, in (row block, token) order. `advance =
//! !out_valid | res_ready` is the one stall signal: every pipeline register moves on it.
//! Clock counts: [`crate::timing`].

pub mod accumulators;
pub mod lane_tables;
pub mod row_trees;
pub mod table_builder;
pub(crate) mod text;

use rust_hdl::prelude::*;

use crate::config::{Config, TableStorage};
use crate::memory::{signals, WordMemory};
pub use accumulators::Accumulators;
pub use lane_tables::LaneTables;
pub use row_trees::RowTrees;
pub use table_builder::TableBuilder;
pub use text::buffer_style;

/// Bits of each named on-chip memory of a matmul engine.
pub type MemoryBits = [(&'static str, usize); 4];

#[derive(LogicBlock)]
pub struct TlmmEngine<const IW: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset of the control state (memories are not cleared).
    pub reset: Signal<In, Bit>,
    pub act_valid: Signal<In, Bit>,
    pub act_ready: Signal<Out, Bit>,
    /// Ends the token block at this token (sampled on a token's last chunk).
    pub act_last: Signal<In, Bit>,
    pub act_data: Vec<Signal<In, Bits<8>>>,
    pub wgt_valid: Signal<In, Bit>,
    pub wgt_ready: Signal<Out, Bit>,
    pub wgt_sign: Vec<Signal<In, Bits<1>>>,
    pub wgt_index: Vec<Signal<In, Bits<IW>>>,
    pub res_valid: Signal<Out, Bit>,
    pub res_ready: Signal<In, Bit>,
    pub res_data: Vec<Signal<Out, Bits<ACC>>>,

    act_buffer: WordMemory<8>,
    fifo_sign: WordMemory<1>,
    fifo_index: WordMemory<IW>,
    builder: TableBuilder,
    tables: LaneTables<IW>,
    trees: RowTrees,
    accumulators: Accumulators<ACC>,

    // activation buffer, write side
    aw_bank: DFF<Bit>,
    aw_token: DFF<Bits<8>>,
    aw_chunk: DFF<Bits<16>>,
    aw_addr: DFF<Bits<16>>,
    afill0: DFF<Bit>,
    afill1: DFF<Bit>,
    an0: DFF<Bits<8>>,
    an1: DFF<Bits<8>>,
    // activation buffer, read side (feeds the table builder)
    ar_bank: DFF<Bit>,
    r_chunk: DFF<Bits<16>>,
    r_token: DFF<Bits<8>>,
    r_base: DFF<Bits<16>>,
    r_addr: DFF<Bits<16>>,
    rd_valid: DFF<Bit>,
    rd_token: DFF<Bits<8>>,
    rd_token_last: DFF<Bit>,
    rd_n: DFF<Bits<8>>,
    // table build, write side
    tw_bank: DFF<Bit>,
    w_token: DFF<Bits<8>>,
    w_token_last: DFF<Bit>,
    w_n: DFF<Bits<8>>,
    tfill0: DFF<Bit>,
    tfill1: DFF<Bit>,
    tn0: DFF<Bits<8>>,
    tn1: DFF<Bits<8>>,
    // weight FIFO
    fifo_head: DFF<Bits<16>>,
    fifo_tail: DFF<Bits<16>>,
    fifo_count: DFF<Bits<16>>,
    // issue: the next beat's position
    i_bank: DFF<Bit>,
    i_chunk: DFF<Bits<16>>,
    i_block: DFF<Bits<16>>,
    gap: DFF<Bit>,
    // s1: the held weight beat and the token it serves this clock
    s1_valid: DFF<Bit>,
    s1_bank: DFF<Bit>,
    s1_token: DFF<Bits<8>>,
    s1_token_last: DFF<Bits<8>>,
    s1_first: DFF<Bit>,
    s1_last: DFF<Bit>,
    s1_acc_addr: DFF<Bits<16>>,
    s1_sign: Vec<DFF<Bits<1>>>,
    s1_index: Vec<DFF<Bits<IW>>>,

    last_chunk: Constant<Bits<16>>,
    last_block: Constant<Bits<16>>,
    last_block_token: Constant<Bits<8>>,
    act_bank1_base: Constant<Bits<16>>,
    act_stride: Constant<Bits<16>>,
    fifo_depth: Constant<Bits<16>>,
    fifo_last: Constant<Bits<16>>,
    has_fifo: Constant<Bit>,
    two_banks: Constant<Bit>,
    sequential: Constant<Bit>,
    single_block: Constant<Bit>,

    advance: Signal<Local, Bit>,
    act_fire: Signal<Local, Bit>,
    act_bank_free: Signal<Local, Bit>,
    act_filled: Signal<Local, Bit>,
    act_n: Signal<Local, Bits<8>>,
    can_read: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    builder_free: Signal<Local, Bit>,
    completing: Signal<Local, Bit>,
    new_bank: Signal<Local, Bit>,
    bank_free0: Signal<Local, Bit>,
    bank_free1: Signal<Local, Bit>,
    target_free: Signal<Local, Bit>,
    table_done: Signal<Local, Bit>,
    wgt_fire: Signal<Local, Bit>,
    beat_valid: Signal<Local, Bit>,
    beat_take: Signal<Local, Bit>,
    stay: Signal<Local, Bit>,
    load_ok: Signal<Local, Bit>,
    read_bank_filled: Signal<Local, Bit>,
    i_n: Signal<Local, Bits<8>>,
}

fn dffs<T: Synth>(n: usize) -> Vec<DFF<T>> {
    (0..n).map(|_| DFF::default()).collect()
}

fn constant(v: usize) -> Constant<Bits<16>> {
    Constant::new(Bits::from(v as u64))
}

fn flag(v: bool) -> Constant<Bit> {
    Constant::new(v)
}

impl<const IW: usize, const ACC: usize> TlmmEngine<IW, ACC> {
    pub fn new(cfg: &Config) -> Self {
        let geo = &cfg.geometry;
        assert_eq!((IW, ACC), (geo.index_bits, geo.accumulator_bits));
        let lanes = geo.lanes();
        // A FIFO memory always exists so the struct has one shape; without a FIFO it
        // is never written and synthesis removes it.
        let depth = geo.weight_buffer_depth.max(2);
        let sequential = geo.storage == TableStorage::LaneLutram;
        let act_depth = geo.activation_buffer_depth();
        TlmmEngine {
            clock: Default::default(),
            reset: Default::default(),
            act_valid: Default::default(),
            act_ready: Default::default(),
            act_last: Default::default(),
            act_data: signals(geo.chunk_activations),
            wgt_valid: Default::default(),
            wgt_ready: Default::default(),
            wgt_sign: signals(lanes),
            wgt_index: signals(lanes),
            res_valid: Default::default(),
            res_ready: Default::default(),
            res_data: signals(geo.rows),
            act_buffer: WordMemory::new(
                geo.chunk_activations,
                act_depth,
                true,
                text::buffer_style(act_depth),
            ),
            fifo_sign: WordMemory::new(lanes, depth, false, "distributed"),
            fifo_index: WordMemory::new(lanes, depth, false, "distributed"),
            builder: TableBuilder::new(geo.lanes_per_row, geo.lane_group, sequential),
            tables: LaneTables::new(geo),
            trees: RowTrees::new(geo),
            accumulators: Accumulators::new(geo),
            aw_bank: Default::default(),
            aw_token: Default::default(),
            aw_chunk: Default::default(),
            aw_addr: Default::default(),
            afill0: Default::default(),
            afill1: Default::default(),
            an0: Default::default(),
            an1: Default::default(),
            ar_bank: Default::default(),
            r_chunk: Default::default(),
            r_token: Default::default(),
            r_base: Default::default(),
            r_addr: Default::default(),
            rd_valid: Default::default(),
            rd_token: Default::default(),
            rd_token_last: Default::default(),
            rd_n: Default::default(),
            tw_bank: Default::default(),
            w_token: Default::default(),
            w_token_last: Default::default(),
            w_n: Default::default(),
            tfill0: Default::default(),
            tfill1: Default::default(),
            tn0: Default::default(),
            tn1: Default::default(),
            fifo_head: Default::default(),
            fifo_tail: Default::default(),
            fifo_count: Default::default(),
            i_bank: Default::default(),
            i_chunk: Default::default(),
            i_block: Default::default(),
            gap: Default::default(),
            s1_valid: Default::default(),
            s1_bank: Default::default(),
            s1_token: Default::default(),
            s1_token_last: Default::default(),
            s1_first: Default::default(),
            s1_last: Default::default(),
            s1_acc_addr: Default::default(),
            s1_sign: dffs(lanes),
            s1_index: dffs(lanes),
            last_chunk: constant(geo.chunks - 1),
            last_block: constant(geo.row_blocks - 1),
            last_block_token: Constant::new(Bits::from((geo.token_block - 1) as u64)),
            act_bank1_base: constant(geo.token_block * geo.chunks),
            act_stride: constant(geo.chunks),
            fifo_depth: constant(depth),
            fifo_last: constant(depth - 1),
            has_fifo: flag(geo.weight_buffer_depth > 0),
            two_banks: flag(geo.table_banks == 2),
            sequential: flag(sequential),
            single_block: flag(geo.row_blocks == 1),
            advance: Default::default(),
            act_fire: Default::default(),
            act_bank_free: Default::default(),
            act_filled: Default::default(),
            act_n: Default::default(),
            can_read: Default::default(),
            take: Default::default(),
            builder_free: Default::default(),
            completing: Default::default(),
            new_bank: Default::default(),
            bank_free0: Default::default(),
            bank_free1: Default::default(),
            target_free: Default::default(),
            table_done: Default::default(),
            wgt_fire: Default::default(),
            beat_valid: Default::default(),
            beat_take: Default::default(),
            stay: Default::default(),
            load_ok: Default::default(),
            read_bank_filled: Default::default(),
            i_n: Default::default(),
        }
    }

    /// Bits held in each on-chip memory: activation buffer, tables, weight FIFO,
    /// accumulators.
    pub fn memory_bits(&self, cfg: &Config) -> MemoryBits {
        let geo = &cfg.geometry;
        let fifo = if geo.weight_buffer_depth > 0 {
            self.fifo_sign.bits() + self.fifo_index.bits()
        } else {
            0
        };
        [
            ("activation_buffer", self.act_buffer.bits()),
            ("tables", geo.table_memory_bits()),
            ("weight_fifo", fifo),
            ("accumulators", self.accumulators.memory_bits()),
        ]
    }
}

impl<const IW: usize, const ACC: usize> Logic for TlmmEngine<IW, ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            aw_bank,
            aw_token,
            aw_chunk,
            aw_addr,
            afill0,
            afill1,
            an0,
            an1,
            ar_bank,
            r_chunk,
            r_token,
            r_base,
            r_addr,
            rd_valid,
            rd_token,
            rd_token_last,
            rd_n,
            tw_bank,
            w_token,
            w_token_last,
            w_n,
            tfill0,
            tfill1,
            tn0,
            tn1,
            fifo_head,
            fifo_tail,
            fifo_count,
            i_bank,
            i_chunk,
            i_block,
            gap,
            s1_valid,
            s1_bank,
            s1_token,
            s1_token_last,
            s1_first,
            s1_last,
            s1_acc_addr
        );
        for k in 0..self.s1_sign.len() {
            self.s1_sign[k].clock.next = self.clock.val();
            self.s1_sign[k].d.next = self.s1_sign[k].q.val();
            self.s1_index[k].clock.next = self.clock.val();
            self.s1_index[k].d.next = self.s1_index[k].q.val();
        }
        self.act_buffer.clock.next = self.clock.val();
        self.fifo_sign.clock.next = self.clock.val();
        self.fifo_index.clock.next = self.clock.val();
        self.builder.clock.next = self.clock.val();
        self.builder.reset.next = self.reset.val();
        self.tables.clock.next = self.clock.val();
        self.trees.clock.next = self.clock.val();
        self.trees.reset.next = self.reset.val();
        self.accumulators.clock.next = self.clock.val();
        self.accumulators.reset.next = self.reset.val();

        // 0. The one stall signal.
        self.advance.next = !self.accumulators.out_valid.val() | self.res_ready.val();

        // 1. Activation buffer, write side: blocks of up to T_b tokens, token-major.
        self.act_bank_free.next = (!self.aw_bank.q.val() & !self.afill0.q.val())
            | (self.aw_bank.q.val() & !self.afill1.q.val());
        self.act_ready.next = self.act_bank_free.val() & !self.reset.val();
        self.act_fire.next = self.act_valid.val() & self.act_ready.val();
        self.act_buffer.write_enable.next = self.act_fire.val();
        self.act_buffer.write_address.next = self.aw_addr.q.val();
        for a in 0..self.act_data.len() {
            self.act_buffer.write_data[a].next = self.act_data[a].val();
        }
        if self.act_fire.val() {
            self.aw_addr.d.next = self.aw_addr.q.val() + 1;
            if self.aw_chunk.q.val() == self.last_chunk.val() {
                self.aw_chunk.d.next = 0.into();
                if self.act_last.val() | (self.aw_token.q.val() == self.last_block_token.val()) {
                    if self.aw_bank.q.val() {
                        self.afill1.d.next = true;
                        self.an1.d.next = self.aw_token.q.val() + 1;
                        self.aw_addr.d.next = 0.into();
                    } else {
                        self.afill0.d.next = true;
                        self.an0.d.next = self.aw_token.q.val() + 1;
                        self.aw_addr.d.next = self.act_bank1_base.val();
                    }
                    self.aw_bank.d.next = !self.aw_bank.q.val();
                    self.aw_token.d.next = 0.into();
                } else {
                    self.aw_token.d.next = self.aw_token.q.val() + 1;
                }
            } else {
                self.aw_chunk.d.next = self.aw_chunk.q.val() + 1;
            }
        }

        // 2. Table build: read the activation buffer chunk by chunk (token inner) and
        //    write each token's table into bank `tw_bank`.
        if self.ar_bank.q.val() {
            self.act_n.next = self.an1.q.val();
            self.act_filled.next = self.afill1.q.val();
        } else {
            self.act_n.next = self.an0.q.val();
            self.act_filled.next = self.afill0.q.val();
        }
        self.builder_free.next = !self.builder.busy.val() | self.builder.last.val();
        self.completing.next = self.sequential.val()
            & self.builder.busy.val()
            & self.builder.last.val()
            & self.w_token_last.q.val();
        if self.completing.val() & self.two_banks.val() {
            self.new_bank.next = !self.tw_bank.q.val();
        } else {
            self.new_bank.next = self.tw_bank.q.val();
        }
        self.bank_free0.next = !self.tfill0.q.val()
            & !(self.s1_valid.q.val() & !self.s1_bank.q.val())
            & !(self.completing.val() & !self.tw_bank.q.val());
        self.bank_free1.next = !self.tfill1.q.val()
            & !(self.s1_valid.q.val() & self.s1_bank.q.val())
            & !(self.completing.val() & self.tw_bank.q.val());
        if self.new_bank.val() {
            self.target_free.next = self.bank_free1.val();
        } else {
            self.target_free.next = self.bank_free0.val();
        }
        self.take.next = self.rd_valid.q.val()
            & self.builder_free.val()
            & ((self.rd_token.q.val() != 0) | self.target_free.val())
            & !self.reset.val();
        self.can_read.next =
            self.act_filled.val() & (!self.rd_valid.q.val() | self.take.val()) & !self.reset.val();
        self.act_buffer.read_enable.next = self.can_read.val();
        self.act_buffer.read_address.next = self.r_addr.q.val();
        if self.can_read.val() {
            self.rd_valid.d.next = true;
            self.rd_token.d.next = self.r_token.q.val();
            self.rd_token_last.d.next = self.r_token.q.val() == self.act_n.val() - 1;
            self.rd_n.d.next = self.act_n.val();
            if self.r_token.q.val() == self.act_n.val() - 1 {
                self.r_token.d.next = 0.into();
                if self.r_chunk.q.val() == self.last_chunk.val() {
                    // The block's last read: its activation bank is free again.
                    self.r_chunk.d.next = 0.into();
                    if self.ar_bank.q.val() {
                        self.afill1.d.next = false;
                        self.r_base.d.next = 0.into();
                        self.r_addr.d.next = 0.into();
                    } else {
                        self.afill0.d.next = false;
                        self.r_base.d.next = self.act_bank1_base.val();
                        self.r_addr.d.next = self.act_bank1_base.val();
                    }
                    self.ar_bank.d.next = !self.ar_bank.q.val();
                } else {
                    self.r_chunk.d.next = self.r_chunk.q.val() + 1;
                    self.r_base.d.next = self.r_base.q.val() + 1;
                    self.r_addr.d.next = self.r_base.q.val() + 1;
                }
            } else {
                self.r_token.d.next = self.r_token.q.val() + 1;
                self.r_addr.d.next = self.r_addr.q.val() + self.act_stride.val();
            }
        } else if self.take.val() {
            self.rd_valid.d.next = false;
        }
        self.builder.load.next = self.take.val() & self.sequential.val();
        for a in 0..self.act_data.len() {
            self.builder.activation[a].next = self.act_buffer.read_data[a].val();
        }
        if self.take.val() {
            self.w_token.d.next = self.rd_token.q.val();
            self.w_token_last.d.next = self.rd_token_last.q.val();
            self.w_n.d.next = self.rd_n.q.val();
        }
        for e in 0..self.builder.entry.len() {
            self.tables.entry[e].next = self.builder.entry[e].val();
        }
        self.tables.write_bank.next = self.tw_bank.q.val();
        self.tables.write_index.next = self.builder.write_index.val();
        if self.sequential.val() {
            self.tables.write_enable.next = self.builder.busy.val();
            self.tables.write_token.next = self.w_token.q.val();
        } else {
            self.tables.write_enable.next = self.take.val();
            self.tables.write_token.next = self.rd_token.q.val();
        }
        // A chunk's tables are complete: the last token's last entry is written.
        self.table_done.next = self.completing.val()
            | (!self.sequential.val() & self.take.val() & self.rd_token_last.q.val());
        if self.table_done.val() {
            if self.tw_bank.q.val() {
                self.tfill1.d.next = true;
                if self.sequential.val() {
                    self.tn1.d.next = self.w_n.q.val();
                } else {
                    self.tn1.d.next = self.rd_n.q.val();
                }
            } else {
                self.tfill0.d.next = true;
                if self.sequential.val() {
                    self.tn0.d.next = self.w_n.q.val();
                } else {
                    self.tn0.d.next = self.rd_n.q.val();
                }
            }
            if self.two_banks.val() {
                self.tw_bank.d.next = !self.tw_bank.q.val();
            }
        }

        // 3. Weight beats: through the FIFO, or straight into s1.
        if self.i_bank.q.val() {
            self.read_bank_filled.next = self.tfill1.q.val();
            self.i_n.next = self.tn1.q.val();
        } else {
            self.read_bank_filled.next = self.tfill0.q.val();
            self.i_n.next = self.tn0.q.val();
        }
        self.stay.next =
            self.s1_valid.q.val() & (self.s1_token.q.val() != self.s1_token_last.q.val());
        self.load_ok.next = self.advance.val()
            & !self.stay.val()
            & self.read_bank_filled.val()
            & !self.gap.q.val()
            & !self.reset.val();
        if self.has_fifo.val() {
            self.wgt_ready.next =
                (self.fifo_count.q.val() != self.fifo_depth.val()) & !self.reset.val();
            self.beat_valid.next = self.fifo_count.q.val() != 0;
        } else {
            self.wgt_ready.next = self.load_ok.val();
            self.beat_valid.next = self.wgt_valid.val();
        }
        self.wgt_fire.next = self.wgt_valid.val() & self.wgt_ready.val();
        self.beat_take.next = self.load_ok.val() & self.beat_valid.val();
        for k in 0..self.wgt_sign.len() {
            self.fifo_sign.write_data[k].next = self.wgt_sign[k].val();
            self.fifo_index.write_data[k].next = self.wgt_index[k].val();
        }
        self.fifo_sign.write_enable.next = self.wgt_fire.val() & self.has_fifo.val();
        self.fifo_index.write_enable.next = self.wgt_fire.val() & self.has_fifo.val();
        self.fifo_sign.write_address.next = self.fifo_tail.q.val();
        self.fifo_index.write_address.next = self.fifo_tail.q.val();
        self.fifo_sign.read_address.next = self.fifo_head.q.val();
        self.fifo_index.read_address.next = self.fifo_head.q.val();
        self.fifo_sign.read_enable.next = true;
        self.fifo_index.read_enable.next = true;
        if self.has_fifo.val() {
            if self.wgt_fire.val() {
                if self.fifo_tail.q.val() == self.fifo_last.val() {
                    self.fifo_tail.d.next = 0.into();
                } else {
                    self.fifo_tail.d.next = self.fifo_tail.q.val() + 1;
                }
            }
            if self.beat_take.val() {
                if self.fifo_head.q.val() == self.fifo_last.val() {
                    self.fifo_head.d.next = 0.into();
                } else {
                    self.fifo_head.d.next = self.fifo_head.q.val() + 1;
                }
            }
            if self.wgt_fire.val() & !self.beat_take.val() {
                self.fifo_count.d.next = self.fifo_count.q.val() + 1;
            }
            if !self.wgt_fire.val() & self.beat_take.val() {
                self.fifo_count.d.next = self.fifo_count.q.val() - 1;
            }
        }

        // 4. s1: the held beat serves token after token; then the next beat loads.
        if self.advance.val() {
            if self.stay.val() {
                self.s1_token.d.next = self.s1_token.q.val() + 1;
                self.s1_acc_addr.d.next = self.s1_acc_addr.q.val() + 1;
            } else if self.beat_take.val() {
                self.s1_valid.d.next = true;
                self.s1_bank.d.next = self.i_bank.q.val();
                self.s1_token.d.next = 0.into();
                self.s1_token_last.d.next = self.i_n.val() - 1;
                self.s1_first.d.next = self.i_chunk.q.val() == 0;
                self.s1_last.d.next = self.i_chunk.q.val() == self.last_chunk.val();
                if self.i_block.q.val() == 0 {
                    self.s1_acc_addr.d.next = 0.into();
                } else {
                    self.s1_acc_addr.d.next = self.s1_acc_addr.q.val() + 1;
                }
                if self.has_fifo.val() {
                    for k in 0..self.s1_sign.len() {
                        self.s1_sign[k].d.next = self.fifo_sign.read_data[k].val();
                        self.s1_index[k].d.next = self.fifo_index.read_data[k].val();
                    }
                } else {
                    for k in 0..self.s1_sign.len() {
                        self.s1_sign[k].d.next = self.wgt_sign[k].val();
                        self.s1_index[k].d.next = self.wgt_index[k].val();
                    }
                }
                if self.i_block.q.val() == self.last_block.val() {
                    // The chunk's last beat: its tables are done once it leaves s1.
                    self.i_block.d.next = 0.into();
                    if self.i_bank.q.val() {
                        self.tfill1.d.next = false;
                    } else {
                        self.tfill0.d.next = false;
                    }
                    if self.two_banks.val() {
                        self.i_bank.d.next = !self.i_bank.q.val();
                    }
                    if self.i_chunk.q.val() == self.last_chunk.val() {
                        self.i_chunk.d.next = 0.into();
                    } else {
                        self.i_chunk.d.next = self.i_chunk.q.val() + 1;
                    }
                } else {
                    self.i_block.d.next = self.i_block.q.val() + 1;
                }
            } else {
                self.s1_valid.d.next = false;
            }
            // Two beats of one accumulator word must be two clocks apart: with one row
            // block and one token, idle a clock after each beat.
            self.gap.d.next =
                self.beat_take.val() & self.single_block.val() & (self.i_n.val() == 1);
        }

        // 5. Datapath.
        self.tables.read_enable.next = self.advance.val();
        if self.stay.val() {
            self.tables.read_bank.next = self.s1_bank.q.val();
            self.tables.read_token.next = self.s1_token.q.val() + 1;
        } else {
            self.tables.read_bank.next = self.i_bank.q.val();
            self.tables.read_token.next = 0.into();
        }
        self.tables.lane_bank.next = self.s1_bank.q.val();
        self.tables.lane_token.next = self.s1_token.q.val();
        for k in 0..self.s1_index.len() {
            self.tables.index[k].next = self.s1_index[k].q.val();
            self.trees.lane[k].next = self.tables.lane[k].val();
            self.trees.sign[k].next = self.s1_sign[k].q.val();
            self.trees.nonzero[k].next = self.s1_index[k].q.val().any();
        }
        self.trees.advance.next = self.advance.val();
        self.trees.valid.next = self.s1_valid.q.val();
        self.trees.first.next = self.s1_first.q.val();
        self.trees.last.next = self.s1_last.q.val();
        self.trees.acc_addr.next = self.s1_acc_addr.q.val();
        for p in 0..self.res_data.len() {
            self.accumulators.root[p].next = self.trees.root[p].val();
            self.accumulators.root_sign[p].next = self.trees.root_sign[p].val();
            self.res_data[p].next = self.accumulators.result[p].val();
        }
        self.accumulators.advance.next = self.advance.val();
        self.accumulators.res_ready.next = self.res_ready.val();
        self.accumulators.valid.next = self.trees.out_valid.val();
        self.accumulators.first.next = self.trees.out_first.val();
        self.accumulators.last.next = self.trees.out_last.val();
        self.accumulators.acc_addr.next = self.trees.out_acc_addr.val();
        self.res_valid.next = self.accumulators.out_valid.val();

        if self.reset.val() {
            self.aw_bank.d.next = false;
            self.aw_token.d.next = 0.into();
            self.aw_chunk.d.next = 0.into();
            self.aw_addr.d.next = 0.into();
            self.afill0.d.next = false;
            self.afill1.d.next = false;
            self.ar_bank.d.next = false;
            self.r_chunk.d.next = 0.into();
            self.r_token.d.next = 0.into();
            self.r_base.d.next = 0.into();
            self.r_addr.d.next = 0.into();
            self.rd_valid.d.next = false;
            self.tw_bank.d.next = false;
            self.tfill0.d.next = false;
            self.tfill1.d.next = false;
            self.fifo_head.d.next = 0.into();
            self.fifo_tail.d.next = 0.into();
            self.fifo_count.d.next = 0.into();
            self.i_bank.d.next = false;
            self.i_chunk.d.next = 0.into();
            self.i_block.d.next = 0.into();
            self.gap.d.next = false;
            self.s1_valid.d.next = false;
        }
    }
}
