//! The RTL front-ends: Verilator lint and co-simulation against the golden model.

pub mod cosim;
pub mod lint;
