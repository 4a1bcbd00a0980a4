//! tern-flows: the flows behind the `tern` command (gen, lint, cosim, demo, boards).

pub mod cli;
pub mod cosim;
pub mod demo;
pub mod lint;
