//! tern-surrogate: predicts what synthesis and simulation would say about a design from
//! its graph, fast enough to search a design space before anything is synthesised.
//!
//! - [`dataset`]: the dataset file (graph + targets + tool versions per design);
//! - [`features`]: a design graph as the numbers the network reads;
//! - [`model`]: the GNN (all burn code lives there);
//! - [`train`]: ensemble training, prediction and the weights file;
//! - [`blocks`]: the per-block cost model, composed into a design's cost;
//! - [`baseline`] and [`metrics`]: the linear baseline and the error measures.

pub mod baseline;
pub mod blocks;
pub mod dataset;
pub mod features;
pub mod metrics;
pub mod model;
pub mod train;
