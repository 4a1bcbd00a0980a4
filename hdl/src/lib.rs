//! tern-hdl: the engine configuration, the ternary weight format and stream formats,
//! the rust-hdl RTL of the engine, and its Verilog emission.

pub mod accelerator;
pub mod attention;
pub mod bits;
pub mod config;
pub mod cost;
pub mod emit;
pub mod files;
pub mod graph;
pub mod interconnect;
pub mod memory;
pub mod netlist;
pub mod program;
pub mod sequencer;
pub mod streams;
pub mod timing;
pub mod tlmm;
pub mod top;
pub mod units;
pub mod vector;
pub mod weights;

pub use config::{AttentionConfig, Config, ConfigError, DesignConfig, EngineKind, Geometry};
pub use emit::{
    generate, generate_any, generate_attention, write_design, Design, Manifest, StreamBits,
};
pub use graph::{design_graph, BlockKind, DesignGraph};
