//! `LaneTables`: where the current chunk's tables live and how each lane gets its value
//! (level 0 of the row trees). Lane `k = p·L + l` (row `p`, lane group `l`) reads entry
//! `index[k]` of lane group `l`'s table for the token the held weight beat is serving.
//!
//! - **lane-lutram**: every lane has its own copy of its group's table in LUT RAM,
//!   read asynchronously at `{bank, token, index}`. All copies of a group are written
//!   by one broadcast write (`write_index` is the entry index). The copies of a lane
//!   group are clustered into memories with one write and up to 7 read ports, the shape
//!   of a RAM32M16/RAM64M8 (8 ports, one of them the write port); with one bank the
//!   write port's address also serves an 8th lane, since no lane reads while a table
//!   is written. Entry 0 is written as 0, so a lane needs no zero test.
//! - **registers / distributed / block**: one copy of each lane group's table per
//!   (bank, token), a word of all stored entries, read (registered) at
//!   `{read_bank, read_token}`; a multiplexer per lane selects the entry. For the adder
//!   tree the word is the activations and a lane's value is its activation: the row
//!   trees' lane register zeroes it for a zero weight.
//!
//! The sign is not applied here: the row trees fold it into their adders.

use rust_hdl::prelude::*;
use std::fmt::Write as _;

use super::text::{address_bits, field, sext};
use crate::bits::ceil_log2;
use crate::config::{Geometry, TableStorage};
use crate::memory::signals;

#[derive(LogicBlock)]
pub struct LaneTables<const IW: usize> {
    pub clock: Signal<In, Clock>,
    pub write_enable: Signal<In, Bit>,
    pub write_bank: Signal<In, Bit>,
    pub write_token: Signal<In, Bits<8>>,
    /// lane-lutram: the entry index being written.
    pub write_index: Signal<In, Bits<8>>,
    /// From the table builder (see `TableBuilder::entry`).
    pub entry: Vec<Signal<In, Bits<16>>>,
    /// Shared storages: registered read of the table word at `{read_bank, read_token}`.
    pub read_enable: Signal<In, Bit>,
    pub read_bank: Signal<In, Bit>,
    pub read_token: Signal<In, Bits<8>>,
    /// lane-lutram: the bank and token the lanes read.
    pub lane_bank: Signal<In, Bit>,
    pub lane_token: Signal<In, Bits<8>>,
    pub index: Vec<Signal<In, Bits<IW>>>,
    /// Lane values, sign-extended to 16 bits.
    pub lane: Vec<Signal<Out, Bits<16>>>,
    _geo: Geometry,
    /// lane-lutram: `[lane group][address]`; shared: `[address][l·(E−1) + i − 1]`.
    _mem: Vec<Vec<i64>>,
    /// Shared storages: the registered word.
    _word: Vec<i64>,
}

impl<const IW: usize> LaneTables<IW> {
    pub fn new(geo: &Geometry) -> Self {
        assert_eq!(IW, geo.index_bits);
        let per_lane = geo.storage == TableStorage::LaneLutram;
        let inputs = if per_lane {
            geo.lanes_per_row
        } else {
            geo.lanes_per_row * geo.stored_entries()
        };
        let mem = if per_lane {
            vec![vec![0; geo.lane_table_depth()]; geo.lanes_per_row]
        } else {
            vec![vec![0; inputs]; geo.table_banks << token_bits(geo)]
        };
        LaneTables {
            clock: Default::default(),
            write_enable: Default::default(),
            write_bank: Default::default(),
            write_token: Default::default(),
            write_index: Default::default(),
            entry: signals(inputs),
            read_enable: Default::default(),
            read_bank: Default::default(),
            read_token: Default::default(),
            lane_bank: Default::default(),
            lane_token: Default::default(),
            index: signals(geo.lanes()),
            lane: signals(geo.lanes()),
            _word: vec![0; if per_lane { 0 } else { inputs }],
            _mem: mem,
            _geo: *geo,
        }
    }

    fn per_lane(&self) -> bool {
        self._geo.storage == TableStorage::LaneLutram
    }

    /// Lanes sharing one LUT-RAM memory (its read ports).
    pub fn cluster_size(geo: &Geometry) -> usize {
        if geo.table_banks == 1 {
            8
        } else {
            7
        }
    }

    /// `{bank, token}` (the bank bit only with two banks, token bits only for T_b > 1).
    fn upper_address(&self, bank: &str, token: &str) -> String {
        let tb = token_bits(&self._geo);
        let mut parts = vec![];
        if self._geo.table_banks == 2 {
            parts.push(bank.to_string());
        }
        if tb > 0 {
            parts.push(format!("{token}[{}:0]", tb - 1));
        }
        parts.join(", ")
    }

    fn lane_lutram_verilog(&self) -> String {
        let geo = &self._geo;
        let sw = geo.entry_bits;
        let depth = geo.lane_table_depth();
        let ab = address_bits(depth);
        let upper = |bank: &str, token: &str| {
            let u = self.upper_address(bank, token);
            if u.is_empty() {
                String::new()
            } else {
                format!("{u}, ")
            }
        };
        let mut v = String::new();
        writeln!(
            v,
            "// Per-lane table copies: {} lanes, {depth} x {sw} bits each, clusters of {}.",
            geo.lanes(),
            Self::cluster_size(geo)
        )
        .unwrap();
        writeln!(
            v,
            "wire [{}:0] waddr = {{{}write_index[{}:0]}};",
            ab - 1,
            upper("write_bank", "write_token"),
            IW - 1
        )
        .unwrap();
        let cluster = Self::cluster_size(geo);
        for l in 0..geo.lanes_per_row {
            for (c, rows) in (0..geo.rows)
                .collect::<Vec<_>>()
                .chunks(cluster)
                .enumerate()
            {
                let mem = format!("t{l}_{c}");
                writeln!(
                    v,
                    "(* ram_style = \"distributed\" *) reg [{}:0] {mem} [0:{}];",
                    sw - 1,
                    depth - 1
                )
                .unwrap();
                // Lane 8 of a one-bank cluster reads through the write port's address.
                let shared = rows.len() == 8;
                let wa = if shared {
                    let p = rows[7];
                    let k = p * geo.lanes_per_row + l;
                    writeln!(
                        v,
                        "wire [{}:0] {mem}_a7 = write_enable ? waddr : {{{}index${k}}};",
                        ab - 1,
                        upper("lane_bank", "lane_token")
                    )
                    .unwrap();
                    format!("{mem}_a7")
                } else {
                    "waddr".into()
                };
                writeln!(
                    v,
                    "always @(posedge clock) begin\n    if (write_enable) {mem}[{wa}] <= entry${l}[{}:0];\nend",
                    sw - 1
                )
                .unwrap();
                for (n, &p) in rows.iter().enumerate() {
                    let k = p * geo.lanes_per_row + l;
                    let addr = if shared && n == 7 {
                        wa.clone()
                    } else {
                        format!("{{{}index${k}}}", upper("lane_bank", "lane_token"))
                    };
                    writeln!(v, "wire [{}:0] v{k} = {mem}[{addr}];", sw - 1).unwrap();
                    writeln!(v, "assign lane${k} = {};", sext(&format!("v{k}"), sw, 16)).unwrap();
                }
            }
        }
        v
    }

    fn shared_verilog(&self) -> String {
        let geo = &self._geo;
        let sw = geo.entry_bits;
        let stored = geo.stored_entries();
        let width = geo.lanes_per_row * stored * sw;
        let depth = geo.table_banks << token_bits(geo);
        let mut v = String::new();
        writeln!(
            v,
            "// Shared tables: {depth} words of {} lane groups x {stored} entries x {sw} bits.",
            geo.lanes_per_row
        )
        .unwrap();
        let concat = (0..self.entry.len())
            .rev()
            .map(|i| format!("entry${i}[{}:0]", sw - 1))
            .collect::<Vec<_>>()
            .join(", ");
        let addr = |bank: &str, token: &str| {
            let u = self.upper_address(bank, token);
            if u.is_empty() {
                "1'b0".to_string()
            } else {
                format!("{{{u}}}")
            }
        };
        let depth_last = depth - 1;
        writeln!(
            v,
            "(* ram_style = \"{}\" *) reg [{}:0] words [0:{depth_last}];\nreg [{}:0] word;\n\
             always @(posedge clock) begin\n    if (write_enable) words[{}] <= {{{concat}}};\n    \
             if (read_enable) word <= words[{}];\nend",
            geo.storage.ram_style(),
            width - 1,
            width - 1,
            addr("write_bank", "write_token"),
            addr("read_bank", "read_token"),
        )
        .unwrap();
        for k in 0..geo.lanes() {
            let l = k % geo.lanes_per_row;
            let entry = |i: usize| format!("word{}", field(l * stored + i - 1, sw));
            if stored == 1 {
                // Adder tree: the activation itself; the row trees' lane register zeroes it
                // for a zero weight (its synchronous reset, no LUT per bit).
                writeln!(v, "wire [{}:0] v{k} = {};", sw - 1, entry(1)).unwrap();
            } else {
                writeln!(
                    v,
                    "reg [{}:0] v{k};\nalways @(*) begin\n    case (index${k})",
                    sw - 1
                )
                .unwrap();
                for i in 1..=stored {
                    writeln!(v, "        {IW}'d{i}: v{k} = {};", entry(i)).unwrap();
                }
                writeln!(v, "        default: v{k} = {sw}'d0;\n    endcase\nend").unwrap();
            }
            writeln!(v, "assign lane${k} = {};", sext(&format!("v{k}"), sw, 16)).unwrap();
        }
        v
    }

    fn lane_address(&self, bank: bool, token: usize, index: usize) -> usize {
        let geo = &self._geo;
        let tb = token_bits(geo);
        let bank = if geo.table_banks == 2 {
            usize::from(bank)
        } else {
            0
        };
        ((bank << tb | (token & ((1 << tb) - 1))) << IW) | index
    }

    fn word_address(&self, bank: bool, token: usize) -> usize {
        let geo = &self._geo;
        let tb = token_bits(geo);
        let bank = if geo.table_banks == 2 {
            usize::from(bank)
        } else {
            0
        };
        bank << tb | (token & ((1 << tb) - 1))
    }
}

/// Address bits of the token within a bank.
pub fn token_bits(geo: &Geometry) -> usize {
    ceil_log2(geo.token_block)
}

fn sext16(value: u64, bits: usize) -> i64 {
    crate::streams::sign_extend(value, bits)
}

impl<const IW: usize> Logic for LaneTables<IW> {
    fn update(&mut self) {
        let geo = self._geo;
        let sw = geo.entry_bits;
        if self.clock.pos_edge() {
            // Read-first: a registered read sees the word before this edge's write.
            if !self.per_lane() && self.read_enable.val() {
                let a = self.word_address(self.read_bank.val(), self.read_token.val().index());
                self._word = self._mem[a].clone();
            }
            if self.write_enable.val() {
                let (bank, token) = (self.write_bank.val(), self.write_token.val().index());
                if self.per_lane() {
                    let a = self.lane_address(bank, token, self.write_index.val().index());
                    for l in 0..geo.lanes_per_row {
                        self._mem[l][a] = sext16(self.entry[l].val().to_u64(), sw);
                    }
                } else {
                    let a = self.word_address(bank, token);
                    for (i, e) in self.entry.iter().enumerate() {
                        self._mem[a][i] = sext16(e.val().to_u64(), sw);
                    }
                }
            }
        }
        let stored = geo.stored_entries();
        for k in 0..geo.lanes() {
            let l = k % geo.lanes_per_row;
            let index = self.index[k].val().index();
            let value = if self.per_lane() {
                let a =
                    self.lane_address(self.lane_bank.val(), self.lane_token.val().index(), index);
                self._mem[l][a]
            } else if stored == 1 {
                // Adder tree: unmasked (see `RowTrees::nonzero`).
                self._word[l]
            } else if (1..=stored).contains(&index) {
                self._word[l * stored + index - 1]
            } else {
                0
            };
            self.lane[k].next = Bits::from((value as u64) & 0xFFFF);
        }
    }

    fn connect(&mut self) {
        for l in &mut self.lane {
            l.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(if self.per_lane() {
            self.lane_lutram_verilog()
        } else {
            self.shared_verilog()
        })
    }
}
