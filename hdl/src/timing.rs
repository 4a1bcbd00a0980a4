//! The matmul engine's cycle model: its control, clock by clock, with streams that never
//! stall (every activation and weight beat offered as soon as it may be taken, every
//! result taken at once).
//!
//! This is a second description of `tlmm::TlmmEngine`'s schedule: the same flags and
//! counters (activation banks, table build, table banks, held beat), none of the data.
//! Streaming, the datapath never stalls, so a beat's result leaves a fixed
//! [`pipeline_latency`] after it is served. `sim/tests/tlmm.rs` asserts that Verilator
//! counts exactly these clocks on every streaming co-simulation, so the two descriptions
//! cannot drift apart unnoticed. Counting matches the co-simulation harness: from the
//! first clock after reset to the clock that accepts the last result, inclusive.

use crate::config::attention::RECIPROCAL_NUMERATOR_BITS;
use crate::config::{AttentionConfig, Config, Geometry};
use crate::streams::attention::RowSchedule;
use crate::streams::token_blocks;

/// Clocks from the clock a beat serves a token in s1 to the clock its result is on the
/// result stream: the tree's pipeline registers, the root register, the output register.
pub fn pipeline_latency(geo: &Geometry) -> usize {
    geo.tree_registers() + 2
}

/// Clocks for `tokens` tokens streamed through the engine of `cfg` (its M and K),
/// grouped into blocks of `token_block` tokens as the host groups them.
pub fn streaming_cycles(cfg: &Config, tokens: usize) -> u64 {
    Schedule::run(&cfg.geometry, tokens).cycles
}

/// Attention: clocks of a run of query rows on a streaming engine (every beat offered
/// at once, every result taken), counted as the co-simulation harness counts, in blocks
/// of `query_block` rows as the stream groups them (`streams::attention`).
/// `rescaled_tiles[i]` is how many of row `i`'s tiles raised its running maximum by a
/// nonzero rescale index: the data decides it, so a projection bounds it by 0 and the
/// row's tile count (each costs `C = d/macs` clocks). `sim/tests/attention.rs` checks
/// this against Verilator on every streaming co-simulation.
impl Config {
    /// Clocks for the whole workload with streams that never stall, counted as the
    /// co-simulation harness counts them (from the first clock after reset to the clock
    /// that accepts the last result, inclusive). See [`crate::timing`]; checked against
    /// Verilator in `sim/tests/tlmm.rs`.
    pub fn streaming_cycles(&self) -> u64 {
        streaming_cycles(self, self.workload.tokens)
    }
}

pub fn attention_cycles(
    cfg: &AttentionConfig,
    rows: &[RowSchedule],
    rescaled_tiles: &[usize],
) -> u64 {
    let block = cfg.attention.query_block.max(1);
    rows.chunks(block)
        .zip(rescaled_tiles.chunks(block))
        .map(|(rows, rescaled)| attention_block_cycles(cfg, rows, rescaled))
        .sum()
}

/// One block (`attention::AttentionEngine`'s control, phase by phase): per row a header
/// beat and `C` query beats; per tile of the block's longest row and per row of the
/// block (a pass) a tile start, and where the row still has `n` keys: `n·C` key beats,
/// the tile maximum, the optional `C`-clock rescale, one clock to fetch the first weight
/// and `n·C` value beats. A block of several rows also restores each row's state before
/// its pass and saves it after (one clock each, and one fetch before the first pass),
/// and reads it back per row for the output. Then per row: a clock to start the divide,
/// its `RECIPROCAL_NUMERATOR_BITS` steps (none when no key is visible), and per result
/// beat a load, `macs` requantising clocks and the beat.
fn attention_block_cycles(cfg: &AttentionConfig, rows: &[RowSchedule], rescaled: &[usize]) -> u64 {
    let c = cfg.chunks() as u64;
    let macs = cfg.attention.macs as u64;
    let bc = cfg.attention.tile;
    let alone = rows.len() == 1;
    let block_kv = rows.iter().map(|r| r.kv_len).max().unwrap_or(0);
    let input = rows.len() as u64 * (1 + c);
    let mut tiles = 0u64;
    if block_kv > 0 && !alone {
        tiles += 1; // the first pass's fetch
    }
    for (base, _) in crate::streams::attention::tiles(block_kv, bc) {
        for row in rows {
            let keys = row.kv_len.saturating_sub(base).min(bc) as u64;
            let pass = if keys > 0 { 3 + 2 * keys * c } else { 1 };
            // RowSelect before and RowSave after each pass when rows share the engine.
            tiles += pass + if alone { 0 } else { 2 };
        }
    }
    let rescales = rescaled.iter().sum::<usize>() as u64 * c;
    let output: u64 = rows
        .iter()
        .map(|row| {
            let divide = if row.visible > 0 {
                u64::from(RECIPROCAL_NUMERATOR_BITS)
            } else {
                0
            };
            let restore = if alone { 0 } else { 2 };
            restore + 1 + divide + c * (macs + 2)
        })
        .sum();
    input + tiles + rescales + output
}

/// Clocks per token in steady state when every block is one token (decode).
pub fn decode_cycles_per_token(geo: &Geometry) -> usize {
    let once = Schedule::run_blocks(geo, &[1, 1]).cycles;
    let twice = Schedule::run_blocks(geo, &[1, 1, 1]).cycles;
    (twice - once) as usize
}

/// Clocks per token in steady state when every block is full (prefill).
pub fn prefill_cycles_per_token(geo: &Geometry) -> f64 {
    let t = geo.token_block;
    let once = Schedule::run_blocks(geo, &[t, t]).cycles;
    let twice = Schedule::run_blocks(geo, &[t, t, t]).cycles;
    (twice - once) as f64 / t as f64
}

/// The outcome of a streamed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Clocks until the last result is accepted, inclusive.
    pub cycles: u64,
    /// Clocks on which a weight beat served a token (useful work).
    pub busy: u64,
}

impl Schedule {
    pub fn run(geo: &Geometry, tokens: usize) -> Schedule {
        Schedule::run_blocks(geo, &token_blocks(tokens, geo.token_block))
    }

    /// Run blocks of the given token counts (each ≤ T_b).
    pub fn run_blocks(geo: &Geometry, blocks: &[usize]) -> Schedule {
        Control::new(geo, blocks).run()
    }
}

/// The engine's control state (names as in `tlmm::TlmmEngine`).
struct Control<'a> {
    geo: &'a Geometry,
    /// Activation beats to offer: (is the block's last beat).
    act: Vec<bool>,
    next_act: usize,
    weights_left: usize,
    results_left: usize,
    // activation buffer
    aw_bank: usize,
    aw_token: usize,
    aw_chunk: usize,
    afill: [bool; 2],
    an: [usize; 2],
    ar_bank: usize,
    r_chunk: usize,
    r_token: usize,
    rd_valid: bool,
    rd_token: usize,
    rd_token_last: bool,
    rd_n: usize,
    // table build
    busy: bool,
    step: usize,
    tw_bank: usize,
    w_token_last: bool,
    w_n: usize,
    tfill: [bool; 2],
    tn: [usize; 2],
    // weights
    fifo_count: usize,
    i_bank: usize,
    i_chunk: usize,
    i_block: usize,
    gap: bool,
    s1_valid: bool,
    s1_bank: usize,
    s1_token: usize,
    s1_token_last: usize,
    s1_last: bool,
}

impl<'a> Control<'a> {
    fn new(geo: &'a Geometry, blocks: &[usize]) -> Control<'a> {
        let mut act = vec![];
        for &n in blocks {
            assert!(n >= 1 && n <= geo.token_block, "block of {n} tokens");
            for t in 0..n {
                for c in 0..geo.chunks {
                    act.push(t == n - 1 && c == geo.chunks - 1);
                }
            }
        }
        let tokens: usize = blocks.iter().sum();
        Control {
            geo,
            act,
            next_act: 0,
            weights_left: blocks.len() * geo.weight_beats_per_token(),
            results_left: tokens * geo.row_blocks,
            aw_bank: 0,
            aw_token: 0,
            aw_chunk: 0,
            afill: [false; 2],
            an: [0; 2],
            ar_bank: 0,
            r_chunk: 0,
            r_token: 0,
            rd_valid: false,
            rd_token: 0,
            rd_token_last: false,
            rd_n: 0,
            busy: false,
            step: 0,
            tw_bank: 0,
            w_token_last: false,
            w_n: 0,
            tfill: [false; 2],
            tn: [0; 2],
            fifo_count: 0,
            i_bank: 0,
            i_chunk: 0,
            i_block: 0,
            gap: false,
            s1_valid: false,
            s1_bank: 0,
            s1_token: 0,
            s1_token_last: 0,
            s1_last: false,
        }
    }

    fn run(mut self) -> Schedule {
        let latency = pipeline_latency(self.geo) as u64;
        let mut busy = 0;
        let mut last_result = 0;
        let mut cycle: u64 = 0;
        // Generous: every beat, every table entry, the pipeline, many times over.
        let bound = 16
            * (self.act.len() as u64 * (self.geo.build_clocks as u64 + 2)
                + self.weights_left as u64 * self.geo.token_block as u64
                + 1000);
        while self.results_left > 0 {
            assert!(cycle < bound, "cycle model stuck after {cycle} clocks");
            if self.s1_valid {
                busy += 1;
                if self.s1_last {
                    self.results_left -= 1;
                    last_result = cycle + latency;
                }
            }
            self.clock();
            cycle += 1;
        }
        Schedule {
            cycles: last_result + 1,
            busy,
        }
    }

    /// One clock: the RTL's combinational signals, then its register updates in the
    /// RTL's order.
    fn clock(&mut self) {
        let g = self.geo;
        let sequential = g.build_clocks > 1;
        let two_banks = g.table_banks == 2;
        let last_step = self.busy && self.step == g.build_clocks - 1;
        // 1. activation buffer, write side
        let act_valid = self.next_act < self.act.len();
        let act_fire = act_valid && !self.afill[self.aw_bank];
        // 2. table build
        let builder_free = !self.busy || last_step;
        let completing = sequential && self.busy && last_step && self.w_token_last;
        let new_bank = if completing && two_banks {
            1 - self.tw_bank
        } else {
            self.tw_bank
        };
        // Not filled, not read by the held beat, not being completed this clock.
        let bank_free = |b: usize| {
            let filled = self.tfill[b];
            let read = self.s1_valid && self.s1_bank == b;
            let completed = completing && self.tw_bank == b;
            !(filled || read || completed)
        };
        let take = self.rd_valid && builder_free && (self.rd_token != 0 || bank_free(new_bank));
        let act_n = self.an[self.ar_bank];
        let can_read = self.afill[self.ar_bank] && (!self.rd_valid || take);
        let table_done = completing || (!sequential && take && self.rd_token_last);
        // 3. weights
        let stay = self.s1_valid && self.s1_token != self.s1_token_last;
        let load_ok = !stay && self.tfill[self.i_bank] && !self.gap;
        let has_fifo = g.weight_buffer_depth > 0;
        let wgt_valid = self.weights_left > 0;
        let (wgt_ready, beat_valid) = if has_fifo {
            (
                self.fifo_count != g.weight_buffer_depth,
                self.fifo_count != 0,
            )
        } else {
            (load_ok, wgt_valid)
        };
        let wgt_fire = wgt_valid && wgt_ready;
        let beat_take = load_ok && beat_valid;
        let i_n = self.tn[self.i_bank];

        // Register updates (from the values before this clock's edge).
        let (rd_token_last, rd_n, w_n) = (self.rd_token_last, self.rd_n, self.w_n);
        if act_fire {
            let block_end = self.act[self.next_act] || self.aw_token == g.token_block - 1;
            self.next_act += 1;
            if self.aw_chunk == g.chunks - 1 {
                self.aw_chunk = 0;
                if block_end {
                    self.afill[self.aw_bank] = true;
                    self.an[self.aw_bank] = self.aw_token + 1;
                    self.aw_bank = 1 - self.aw_bank;
                    self.aw_token = 0;
                } else {
                    self.aw_token += 1;
                }
            } else {
                self.aw_chunk += 1;
            }
        }
        if can_read {
            self.rd_valid = true;
            self.rd_token = self.r_token;
            self.rd_token_last = self.r_token == act_n - 1;
            self.rd_n = act_n;
            if self.r_token == act_n - 1 {
                self.r_token = 0;
                if self.r_chunk == g.chunks - 1 {
                    self.r_chunk = 0;
                    self.afill[self.ar_bank] = false;
                    self.ar_bank = 1 - self.ar_bank;
                } else {
                    self.r_chunk += 1;
                }
            } else {
                self.r_token += 1;
            }
        } else if take {
            self.rd_valid = false;
        }
        if sequential {
            if take {
                self.busy = true;
                self.step = 0;
            } else if self.busy {
                if self.step == g.build_clocks - 1 {
                    self.busy = false;
                }
                self.step += 1;
            }
        }
        if take {
            self.w_token_last = rd_token_last;
            self.w_n = rd_n;
        }
        if table_done {
            self.tfill[self.tw_bank] = true;
            self.tn[self.tw_bank] = if sequential { w_n } else { rd_n };
            if two_banks {
                self.tw_bank = 1 - self.tw_bank;
            }
        }
        if has_fifo {
            if wgt_fire {
                self.weights_left -= 1;
            }
            self.fifo_count = self.fifo_count + usize::from(wgt_fire) - usize::from(beat_take);
        } else if beat_take {
            self.weights_left -= 1;
        }
        if stay {
            self.s1_token += 1;
        } else if beat_take {
            self.s1_valid = true;
            self.s1_bank = self.i_bank;
            self.s1_token = 0;
            self.s1_token_last = i_n - 1;
            self.s1_last = self.i_chunk == g.chunks - 1;
            if self.i_block == g.row_blocks - 1 {
                self.i_block = 0;
                self.tfill[self.i_bank] = false;
                if two_banks {
                    self.i_bank = 1 - self.i_bank;
                }
                self.i_chunk = if self.i_chunk == g.chunks - 1 {
                    0
                } else {
                    self.i_chunk + 1
                };
            } else {
                self.i_block += 1;
            }
        } else {
            self.s1_valid = false;
        }
        self.gap = beat_take && g.row_blocks == 1 && i_n == 1;
    }
}
