//! The surrogate's life: build a dataset by real synthesis (`tern dataset`), train the
//! GNN ensemble or the block model on it (`tern train`), evaluate it against the linear
//! baseline (`tern eval`), and predict designs with it (`tern predict`, and the DSE).

pub mod dataset;
pub mod eval;
pub mod predict;
pub mod rows;
pub mod train;
