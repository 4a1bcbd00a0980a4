//! Build experiments: synthesis and place-and-route runs, sweeps, and the TLMM vs
//! adder-tree area study.

pub mod area;
pub mod synthesis;
