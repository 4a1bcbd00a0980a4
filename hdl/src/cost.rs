//! A floor on what a matmul engine costs in LUTs, from its structure alone, so that an
//! engine that cannot fit a board is refused before any tool runs (a Yosys run on a
//! design that large would take hours and answer "does not fit").
//!
//! Every term is a lower bound on what synthesis must spend on one structure, counted as
//! a vendor counts (a LUT-RAM primitive occupies its LUTs):
//! - per-lane table copies: the LUT-RAM primitives a cluster of lanes needs — one
//!   RAM32M16 (8 LUTs) holds 2 bits of a ≤ 32-deep table for 7 read ports, one RAM64M8
//!   (8 LUTs) 1 bit of a ≤ 64-deep one; deeper tables take several;
//! - shared tables: a select of `E − 1` entries per lane and bit (a LUT6 selects among 4);
//! - adders: one LUT per bit of every row-tree adder and accumulator add/subtract (carry
//!   chains take one LUT per bit, nothing cheaper exists).
//!
//! Control, FIFOs and glue are left out, so the real figure is always higher. The
//! measured ratio to Yosys is in `docs/area/`.

use serde::Serialize;

use crate::config::{Config, TableStorage};
use crate::tlmm::LaneTables;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LutFloor {
    /// LUTs holding the lanes' tables (LUT RAM), or selecting from shared tables.
    pub tables: u64,
    /// LUTs of the row trees' adders.
    pub trees: u64,
    /// LUTs of the accumulators' add/subtract.
    pub accumulators: u64,
}

impl LutFloor {
    pub fn total(&self) -> u64 {
        self.tables + self.trees + self.accumulators
    }
}

/// The LUT floor of a matmul engine.
pub fn lut_floor(cfg: &Config) -> LutFloor {
    let geo = &cfg.geometry;
    let sw = geo.entry_bits as u64;
    let tables = match geo.storage {
        TableStorage::LaneLutram => {
            let depth = geo.lane_table_depth() as u64;
            let cluster = LaneTables::<1>::cluster_size(geo);
            let clusters = (geo.rows.div_ceil(cluster) * geo.lanes_per_row) as u64;
            let per_cluster = if depth <= 32 {
                8 * sw.div_ceil(2)
            } else {
                8 * sw * depth.div_ceil(64)
            };
            clusters * per_cluster
        }
        _ => {
            // Adder tree: the select is a mask merged into the first adder; no floor.
            let stored = geo.stored_entries() as u64;
            if stored > 1 {
                geo.lanes() as u64 * sw * stored.div_ceil(4)
            } else {
                0
            }
        }
    };
    // Adders of one row tree: every pairing level, exact widths.
    let mut nodes: Vec<usize> = vec![1; geo.lanes_per_row];
    let mut tree_bits = 0u64;
    while nodes.len() > 1 {
        let mut next = vec![];
        for pair in nodes.chunks(2) {
            if let [a, b] = pair {
                tree_bits += geo.node_bits(a + b) as u64;
                next.push(a + b);
            } else {
                next.push(pair[0]);
            }
        }
        nodes = next;
    }
    LutFloor {
        tables,
        trees: tree_bits * geo.rows as u64,
        accumulators: (geo.rows * geo.accumulator_internal_bits) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigBuilder;

    #[test]
    fn the_floor_grows_with_the_engine_and_counts_lane_ram_by_depth() {
        let small = lut_floor(
            &ConfigBuilder::tlmm(3, 7, 4)
                .workload(64, 256, 1)
                .build()
                .unwrap(),
        );
        let big = lut_floor(
            &ConfigBuilder::tlmm(3, 14, 4)
                .workload(64, 256, 1)
                .build()
                .unwrap(),
        );
        assert_eq!(big.tables, 2 * small.tables);
        assert_eq!(big.trees, 2 * small.trees);
        // G = 3, two banks: 32 deep, 10-bit entries: 5 RAM32M16 per 7 lanes of a group.
        assert_eq!(small.tables, 4 * 5 * 8);
        // One row of 4 lanes: adders of 11 + 11 + 12 bits (3, 3, 6 weights → 6, 6, 12).
        assert_eq!(small.trees, 7 * (11 + 11 + 12));
        // G = 4 with two banks is 128 deep: twice the RAM64M8s of one bank.
        let g4 = |banks| {
            lut_floor(
                &ConfigBuilder::tlmm(4, 7, 2)
                    .table_banks(banks)
                    .workload(64, 256, 1)
                    .build()
                    .unwrap(),
            )
            .tables
        };
        assert_eq!(g4(2), 2 * 8 * 10 * 2);
        // One bank: 8 lanes per cluster, so 7 rows still take one cluster per group.
        assert_eq!(g4(1), 2 * 8 * 10);
    }
}
