//! `tern run`: one layer (a matmul top) or one attention call (an attention top) on any
//! board URI, checked against the golden model.

pub mod attention;
pub mod inputs;
pub mod matmul;
pub mod report;

use anyhow::Result;

use tern_hdl::DesignConfig;

/// Run `a.config`'s top, whichever kind it is.
pub fn run(a: &inputs::RunArgs) -> Result<()> {
    match DesignConfig::from_path(&a.config)? {
        DesignConfig::Matmul(cfg) => matmul::run(a, &cfg),
        DesignConfig::Attention(cfg) => attention::run(a, &cfg),
    }
}
