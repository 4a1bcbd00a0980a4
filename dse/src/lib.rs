//! tern-dse: what design-space exploration reads and ranks, apart from the models that
//! predict a design's cost (tern-surrogate) and the flows that synthesise it.
//!
//! - [`space`]: declared design spaces and their Sobol sampling;
//! - [`workload`]: what a model asks per token (matmuls, attention heads);
//! - [`performance`]: the one performance model (clocks and bytes to seconds on a board);
//! - [`pareto`]: fronts, hypervolume and the picks made from a front.

pub mod pareto;
pub mod performance;
pub mod space;
pub mod workload;
