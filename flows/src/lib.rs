//! tern-flows: the flows behind the `tern` command, one module per job:
//!
//! - [`access`]: how a flow reaches a board (timeouts, queueing, token);
//! - [`cli`]: parse the command line and dispatch (one module per command);
//! - [`rtl`]: Verilator lint and co-simulation against the golden model;
//! - [`experiments`]: synthesis, place and route, sweeps, the area study;
//! - [`surrogate`]: datasets, training, evaluation and prediction of the surrogate;
//! - [`dse`]: design-space exploration with the surrogate;
//! - [`project`]: a whole model's speed projected from an engine's cycle model;
//! - [`memory`], [`serve`], [`run`], [`generate`]: the simulated board's memory, the board
//!   daemon, one layer on a board, a whole model on boards;
//! - [`one_top`]: a whole model on the one top (`tern generate --one-top`);
//! - [`demo`]: the README's main job.

pub mod access;
pub mod cli;
pub mod demo;
pub mod dse;
pub mod experiments;
pub mod files;
pub mod generate;
pub mod memory;
pub mod one_top;
pub mod plot;
pub mod program;
pub mod project;
pub mod rtl;
pub mod run;
pub mod serve;
pub mod surrogate;
pub mod text;
pub mod weights;
