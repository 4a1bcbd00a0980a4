//! tern-sim: golden models, the Verilator bridge and the co-verification harness.

pub mod cosim;
pub mod fidelity;
pub mod golden;
pub mod mutation;
pub mod rust_hdl_sim;
pub mod top_model;
pub mod verilator;
