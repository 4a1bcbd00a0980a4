//! Golden models: bit-exact references the RTL is compared with, and (`bitnet`) the
//! float reference of a whole model.

pub mod attention;
pub mod bitnet;
pub mod fixed_point;
pub mod sequencer;
pub mod tlmm;
pub mod vector;
