//! Golden models: bit-exact references the RTL is compared with.

pub mod attention;
pub mod tlmm;
