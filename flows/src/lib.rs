//! tern-flows: the flows behind the `tern` command (gen, lint, cosim, demo, boards, synth, pnr, sweep, area).

pub mod area;
pub mod attention_run;
pub mod board;
pub mod cli;
pub mod cosim;
pub mod dataset;
pub mod demo;
pub mod dse;
pub mod dse_attention;
pub mod generate;
pub mod lint;
pub mod plot;
pub mod project;
pub mod surrogate;
pub mod synthesis;
