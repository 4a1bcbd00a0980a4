//! What the DSE prices a unit by: the block model's prediction as the one resource count
//! (`tern_boards::Resources`).

pub use tern_boards::Resources;

/// A block model's composed totals (`blocks::BLOCK_TARGETS` order).
pub fn predicted(p: &tern_surrogate::blocks::BlockPrediction) -> Resources {
    Resources {
        luts: p.total[0],
        ffs: p.total[1],
        dsps: p.total[2],
        brams: p.total[3],
    }
}
