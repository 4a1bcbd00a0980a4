//! A dataset read for the models: its ok rows as examples.

use anyhow::Result;
use std::path::Path;

use tern_hdl::DesignConfig;
use tern_surrogate::baseline::raw_parameters;
use tern_surrogate::dataset::{split, Dataset, Split};
use tern_surrogate::features::{encode, target_vector};
use tern_surrogate::train::Example;

/// A dataset row ready for the model.
pub struct Item {
    pub index: u32,
    pub graph: tern_hdl::DesignGraph,
    pub blocks: Option<std::collections::BTreeMap<String, tern_surrogate::dataset::BlockTargets>>,
    pub config: DesignConfig,
    pub example: Example,
    pub raw: Vec<f64>,
    pub split: Split,
    pub tool_seconds: f64,
}

pub struct Loaded {
    pub dataset: Dataset,
    pub items: Vec<Item>,
}

/// Read a dataset and turn its ok rows into examples (failed rows are counted, never
/// trained on).
pub fn load(path: &Path) -> Result<Loaded> {
    let dataset = Dataset::read(path)?;
    let mut items = vec![];
    for row in dataset.ok_rows() {
        let config = DesignConfig::from_toml(
            &row.config_toml,
            &format!("{} row {}", path.display(), row.index),
        )?;
        let targets = row.targets.as_ref().expect("ok rows carry targets");
        items.push(Item {
            index: row.index,
            graph: row.graph.clone(),
            blocks: row.blocks.clone(),
            example: Example {
                graph: encode(&row.graph, &config),
                targets: target_vector(targets),
            },
            raw: raw_parameters(&config),
            split: split(row),
            tool_seconds: row.tool_seconds,
            config,
        });
    }
    Ok(Loaded { dataset, items })
}
