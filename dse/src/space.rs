//! Design spaces: a TOML file that names config keys and the values each may take,
//! sampled with an Owen-scrambled Sobol sequence (fixed seed, extensible: the first
//! N samples of a larger run are the N samples of a smaller one).
//!
//! ```toml
//! name = "matmul"
//! [fixed]                      # keys every sample carries
//! "engine.activation_bits" = 8
//! [dimensions]                 # one Sobol dimension per key, in file order
//! "engine.group_size" = [2, 3, 4, 5]
//! [limits]                     # samples beyond these are skipped (too slow to synthesise)
//! max_weights_per_clock = 64
//! [holdout]                    # a region kept out of training, to test extrapolation
//! "engine.rows_parallel" = [8]
//! ```
//!
//! `whole_top = true` makes every sample a whole matmul top (engine + shell, `tern verilog
//! --top`): synthesised as such, described by `hdl::graph::top_graph`; `top.*` keys
//! (bus width, burst, reads in flight) may then be dimensions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

use tern_hdl::config::TableStorage;
use tern_hdl::DesignConfig;

#[derive(Debug, thiserror::Error)]
pub enum SpaceError {
    #[error("cannot read space file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// A declared design space.
#[derive(Debug, Clone)]
pub struct Space {
    pub name: String,
    pub description: String,
    /// (dotted key, value) set on every sample.
    pub fixed: Vec<(String, toml::Value)>,
    /// (dotted key, choices) in file order; dimension `d` of the sequence picks key `d`.
    pub dimensions: Vec<(String, Vec<toml::Value>)>,
    pub limits: Limits,
    /// (dotted key, values): a sample is in the held-out region when any key takes one
    /// of its listed values.
    pub holdout: Vec<(String, Vec<toml::Value>)>,
    /// Samples are whole matmul tops, not engines.
    pub whole_top: bool,
    /// SHA-256 of the file text; a dataset records it.
    pub hash: String,
}

/// Bounds that keep a sweep's tool time finite. Zero means no bound.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// P·Q·G of a matmul engine.
    #[serde(default)]
    pub max_weights_per_clock: usize,
    /// At least this P·Q·G (an extrapolation set of large engines only).
    #[serde(default)]
    pub min_weights_per_clock: usize,
    /// Table bits of a matmul engine whose tables are flip-flops.
    #[serde(default)]
    pub max_register_table_bits: usize,
    /// Table bits of any matmul engine.
    #[serde(default)]
    pub max_table_bits: usize,
    /// Lanes × stored table entries: the total width of the lanes' selects, which is
    /// what makes large-G engines slow to synthesise.
    #[serde(default)]
    pub max_lookup_inputs: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    fixed: toml::Table,
    dimensions: toml::Table,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    holdout: toml::Table,
    #[serde(default)]
    whole_top: bool,
}

/// One sampled point.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index in the Sobol sequence (stable across runs of any size).
    pub index: u32,
    pub config: DesignConfig,
    /// The chosen value of every dimension, as TOML text.
    pub choices: Vec<(String, String)>,
    pub held_out: bool,
}

/// Why a point of the sequence did not become a sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejections {
    /// Rejected by config validation (e.g. an accumulator too narrow for K).
    pub invalid: usize,
    /// Beyond the space's limits.
    pub over_limits: usize,
    /// Each distinct reason a point was invalid or over the limits (the config's error,
    /// which names the key), and how many points it rejected; the first
    /// `MAX_REASONS` reasons, the rest counted under "other reasons".
    #[serde(default)]
    pub reasons: BTreeMap<String, usize>,
}

/// Distinct rejection reasons kept (a space's mistakes are few; its points are many).
const MAX_REASONS: usize = 64;

impl Rejections {
    fn add(&mut self, why: &PointRejected) {
        let reason = match why {
            PointRejected::Invalid(r) => {
                self.invalid += 1;
                r
            }
            PointRejected::OverLimits(r) => {
                self.over_limits += 1;
                r
            }
        };
        let key = if self.reasons.len() < MAX_REASONS || self.reasons.contains_key(reason) {
            reason.clone()
        } else {
            "other reasons".into()
        };
        *self.reasons.entry(key).or_default() += 1;
    }

    /// The most frequent reasons, most frequent first: what to fix in the space file.
    pub fn summary(&self, most: usize) -> String {
        let mut by_count: Vec<(&String, &usize)> = self.reasons.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        by_count
            .iter()
            .take(most)
            .map(|(why, n)| format!("{n}× {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const MAX_DIMENSIONS: usize = sobol_burley::NUM_DIMENSIONS as usize;

impl Space {
    pub fn from_path(path: &Path) -> Result<Space, SpaceError> {
        let text = tern_hdl::files::read_text(path).map_err(|cause| SpaceError::Read {
            path: path.display().to_string(),
            cause,
        })?;
        Space::from_toml(&text, &path.display().to_string())
    }

    /// A space shipped with tern (`spaces/<name>.toml`), or a file.
    pub fn resolve(name_or_path: &str) -> Result<Space, SpaceError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Space::from_toml(text, &format!("built-in space {name_or_path}"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(SpaceError::Invalid {
                origin: name_or_path.into(),
                message: format!(
                    "no such space file, and not a built-in space (built-in: {})",
                    BUILTIN
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Space::from_path(path)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Space, SpaceError> {
        let invalid = |message: String| SpaceError::Invalid {
            origin: origin.into(),
            message,
        };
        let file: SpaceFile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        let mut dimensions = vec![];
        for (key, value) in file.dimensions {
            let choices = match value {
                toml::Value::Array(a) if !a.is_empty() => a,
                _ => {
                    return Err(invalid(format!(
                        "dimensions.\"{key}\" must be a non-empty list of values"
                    )))
                }
            };
            check_key(&key).map_err(|m| invalid(format!("dimensions.\"{key}\": {m}")))?;
            dimensions.push((key, choices));
        }
        if dimensions.is_empty() {
            return Err(invalid("[dimensions] is empty".into()));
        }
        if dimensions.len() > MAX_DIMENSIONS {
            return Err(invalid(format!(
                "{} dimensions; the Sobol sequence has {MAX_DIMENSIONS}",
                dimensions.len()
            )));
        }
        let mut fixed = vec![];
        for (key, value) in file.fixed {
            check_key(&key).map_err(|m| invalid(format!("fixed.\"{key}\": {m}")))?;
            if dimensions.iter().any(|(k, _)| *k == key) {
                return Err(invalid(format!("\"{key}\" is both fixed and a dimension")));
            }
            fixed.push((key, value));
        }
        let mut holdout = vec![];
        for (key, value) in file.holdout {
            let Some((_, choices)) = dimensions.iter().find(|(k, _)| *k == key) else {
                return Err(invalid(format!("holdout.\"{key}\" is not a dimension")));
            };
            let values = match value {
                toml::Value::Array(a) => a,
                other => vec![other],
            };
            for v in &values {
                if !choices.contains(v) {
                    return Err(invalid(format!(
                        "holdout.\"{key}\" = {v} is not one of the dimension's values"
                    )));
                }
            }
            holdout.push((key, values));
        }
        Ok(Space {
            name: file.name,
            description: file.description,
            fixed,
            dimensions,
            limits: file.limits,
            holdout,
            whole_top: file.whole_top,
            hash: hex::encode(Sha256::digest(text.as_bytes())),
        })
    }

    /// The config with the fixed keys and value `picks[d]` of each dimension `d`, if it
    /// is valid and within the limits.
    fn config_of(&self, picks: &[usize], origin: &str) -> Result<DesignConfig, PointRejected> {
        let mut doc = toml::Table::new();
        for (key, value) in &self.fixed {
            set(&mut doc, key, value.clone());
        }
        for ((key, values), &pick) in self.dimensions.iter().zip(picks) {
            set(&mut doc, key, values[pick].clone());
        }
        let text = toml::to_string(&doc).map_err(|e| PointRejected::Invalid(e.to_string()))?;
        // The error without its origin (each point's own), so that one mistake in the
        // space file is one reason however many points it rejects.
        // A parse error points into a document the space made, not a file: its last line
        // says what is wrong (e.g. a field neither fixed nor a dimension).
        let config = DesignConfig::from_toml(&text, origin).map_err(|e| {
            let e = e.to_string();
            let e = e.strip_prefix(&format!("{origin}: ")).unwrap_or(&e);
            PointRejected::Invalid(match e.lines().rfind(|l| !l.trim().is_empty()) {
                Some(last) if e.contains('\n') => format!("the configs it makes: {last}"),
                _ => e.to_string(),
            })
        })?;
        if self.whole_top && config.matmul().is_none() {
            return Err(PointRejected::Invalid(
                "whole tops are matmul tops (the attention top has no graph)".into(),
            ));
        }
        match self.limits.exceeded(&config) {
            Some(why) => Err(PointRejected::OverLimits(why)),
            None => Ok(config),
        }
    }

    /// The design graph of a sample: the engine's, or the whole top's.
    pub fn graph_of(&self, config: &DesignConfig) -> tern_hdl::DesignGraph {
        tern_hdl::graph::unit_graph(config, self.whole_top)
    }

    /// Point `index` of the sequence as a config, or why it is not a sample.
    pub fn point(&self, index: u32, seed: u32) -> Result<Sample, PointRejected> {
        let picks: Vec<usize> = self
            .dimensions
            .iter()
            .enumerate()
            .map(|(d, (_, values))| {
                let u = sobol_burley::sample(index, d as u32, seed) as f64;
                ((u * values.len() as f64) as usize).min(values.len() - 1)
            })
            .collect();
        let config = self.config_of(&picks, &format!("{} sample {index}", self.name))?;
        let chosen = || {
            self.dimensions
                .iter()
                .zip(&picks)
                .map(|((key, values), &pick)| (key, &values[pick]))
        };
        let held_out = chosen().any(|(key, value)| {
            self.holdout
                .iter()
                .any(|(k, vs)| k == key && vs.contains(value))
        });
        Ok(Sample {
            index,
            config,
            choices: chosen()
                .map(|(key, value)| (key.clone(), value.to_string()))
                .collect(),
            held_out,
        })
    }

    /// The first `n` valid points from `seed`'s sequence, and how many were rejected.
    /// Fails when too few points of the sequence are valid (a space that is almost
    /// entirely invalid is a mistake in the space file).
    pub fn sample(&self, n: usize, seed: u32) -> Result<(Vec<Sample>, Rejections), SpaceError> {
        let mut out = Vec::with_capacity(n);
        let mut rejected = Rejections::default();
        let budget = (n as u64 * 20 + 1000).min(u32::MAX as u64) as u32;
        let mut index = 0u32;
        while out.len() < n {
            if index >= budget {
                return Err(SpaceError::Invalid {
                    origin: format!("space {}", self.name),
                    message: format!(
                        "only {} valid samples among the first {budget} points \
                         ({} invalid configs, {} over the limits); most often: {}",
                        out.len(),
                        rejected.invalid,
                        rejected.over_limits,
                        rejected.summary(3)
                    ),
                });
            }
            match self.point(index, seed) {
                Ok(s) => out.push(s),
                Err(why) => rejected.add(&why),
            }
            index += 1;
        }
        Ok((out, rejected))
    }

    /// Every point of a fully discrete space (for exhaustive comparisons), in
    /// lexicographic order of the dimensions; fails beyond `max` points.
    pub fn enumerate(&self, max: usize) -> Result<(Vec<DesignConfig>, Rejections), SpaceError> {
        let total: usize = self.dimensions.iter().map(|(_, v)| v.len()).product();
        if total > max {
            return Err(SpaceError::Invalid {
                origin: format!("space {}", self.name),
                message: format!("{total} points; exhaustive enumeration is capped at {max}"),
            });
        }
        let mut out = vec![];
        let mut rejected = Rejections::default();
        for flat in 0..total {
            // Mixed radix, the last dimension varying fastest.
            let mut picks = vec![0; self.dimensions.len()];
            let mut rest = flat;
            for (pick, (_, values)) in picks.iter_mut().zip(&self.dimensions).rev() {
                *pick = rest % values.len();
                rest /= values.len();
            }
            match self.config_of(&picks, &self.name) {
                Ok(c) => out.push(c),
                Err(why) => rejected.add(&why),
            }
        }
        Ok((out, rejected))
    }

    /// Where a config sits relative to the space: the keys whose value is not one of the
    /// space's choices (empty = inside). Used to flag extrapolation.
    pub fn outside(&self, config: &DesignConfig) -> Vec<String> {
        let text = config.to_toml();
        let Ok(doc) = text.parse::<toml::Table>() else {
            return vec!["(config does not serialise)".into()];
        };
        let mut out = vec![];
        for (key, values) in &self.dimensions {
            match get(&doc, key) {
                Some(v) if values.contains(v) => {}
                Some(v) => out.push(format!("{key} = {v}")),
                None => out.push(format!("{key} (absent)")),
            }
        }
        for (key, value) in &self.fixed {
            match get(&doc, key) {
                Some(v) if v == value => {}
                Some(v) => out.push(format!("{key} = {v} (space fixes {value})")),
                None => out.push(format!("{key} (absent)")),
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub enum PointRejected {
    Invalid(String),
    OverLimits(String),
}

impl Limits {
    /// Which limit a config exceeds, if any.
    pub fn exceeded(&self, config: &DesignConfig) -> Option<String> {
        let cfg = config.matmul()?;
        let geo = &cfg.geometry;
        let per_clock = geo.lanes() * geo.lane_group;
        if self.max_weights_per_clock > 0 && per_clock > self.max_weights_per_clock {
            return Some(format!(
                "{per_clock} weights/clock > {}",
                self.max_weights_per_clock
            ));
        }
        if per_clock < self.min_weights_per_clock {
            return Some(format!(
                "{per_clock} weights/clock < {}",
                self.min_weights_per_clock
            ));
        }
        let lookup = geo.lanes() * (geo.table_entries - 1);
        if self.max_lookup_inputs > 0 && lookup > self.max_lookup_inputs {
            return Some(format!(
                "{lookup} lookup inputs > {}",
                self.max_lookup_inputs
            ));
        }
        let table_bits = geo.table_memory_bits();
        if self.max_table_bits > 0 && table_bits > self.max_table_bits {
            return Some(format!("{table_bits} table bits > {}", self.max_table_bits));
        }
        if self.max_register_table_bits > 0
            && cfg.engine.storage() == TableStorage::Registers
            && table_bits > self.max_register_table_bits
        {
            return Some(format!(
                "{table_bits} register table bits > {}",
                self.max_register_table_bits
            ));
        }
        None
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err("a key is dotted names, e.g. \"engine.group_size\"".into());
    }
    Ok(())
}

fn set(doc: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("checked non-empty");
    let mut table = doc;
    for p in parts {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        table = entry.as_table_mut().expect("just made a table");
    }
    table.insert(last.to_string(), value);
}

fn get<'a>(doc: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.').peekable();
    let mut table = doc;
    while let Some(p) = parts.next() {
        let v = table.get(p)?;
        if parts.peek().is_none() {
            return Some(v);
        }
        table = v.as_table()?;
    }
    None
}

/// Spaces shipped with tern.
pub const BUILTIN: &[(&str, &str)] = &[
    ("matmul", include_str!("../../spaces/matmul.toml")),
    ("matmul-edge", include_str!("../../spaces/matmul-edge.toml")),
    (
        "matmul-small",
        include_str!("../../spaces/matmul-small.toml"),
    ),
    ("tlmm", include_str!("../../spaces/tlmm.toml")),
    (
        "tlmm-extrapolation",
        include_str!("../../spaces/tlmm-extrapolation.toml"),
    ),
    (
        "tlmm-accelerator",
        include_str!("../../spaces/tlmm-accelerator.toml"),
    ),
    ("tlmm-top", include_str!("../../spaces/tlmm-top.toml")),
    (
        "tlmm-top-wide",
        include_str!("../../spaces/tlmm-top-wide.toml"),
    ),
    (
        "tlmm-top-extrapolation",
        include_str!("../../spaces/tlmm-top-extrapolation.toml"),
    ),
    ("attention", include_str!("../../spaces/attention.toml")),
    (
        "attention-accelerator",
        include_str!("../../spaces/attention-accelerator.toml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A space whose points are all impossible says which key makes them so, once per
    /// reason however many points it rejects, most frequent first; a field neither fixed
    /// nor varied is named without the parse error's picture of a generated document.
    #[test]
    fn a_space_of_impossible_points_names_the_key() {
        let space = |dimensions: &str| {
            Space::from_toml(
                &format!(
                    "name = \"bad\"\ndescription = \"\"\n[fixed]\n\"engine.activation_bits\" = 8\n\
                     [dimensions]\n\"engine.kind\" = [\"tlmm\"]\n\"engine.rows_parallel\" = [1, 2]\n\
                     \"engine.groups_per_cycle\" = [1]\n\"workload.m\" = [256]\n\"workload.k\" = [256]\n\
                     \"workload.tokens\" = [1]\n{dimensions}"
                ),
                "test",
            )
            .unwrap()
        };
        let complete =
            "\"engine.accumulator_bits\" = [24]\n\"engine.table_storage\" = [\"lane-lutram\"]\n\
                        \"engine.token_block\" = [1]\n\"engine.weight_buffer_depth\" = [16]\n";
        let s = space(&format!("{complete}\"engine.group_size\" = [1, 0, 0]\n"));
        let err = s.sample(4, 1).unwrap_err().to_string();
        assert!(
            err.contains("only 0 valid samples")
                && err.contains("most often: ")
                && err.contains("`engine.group_size` = 0 is out of range")
                && err.contains("`engine.group_size` = 1 is out of range"),
            "{err}"
        );
        let (none, rejected) = s.enumerate(100).unwrap();
        assert!(none.is_empty());
        assert_eq!(rejected.invalid, 6);
        assert_eq!(rejected.reasons.len(), 2, "{:?}", rejected.reasons);
        // Two thirds of the points carry G = 0: the first reason named.
        assert!(
            rejected
                .summary(1)
                .starts_with("4× `engine.group_size` = 0"),
            "{}",
            rejected.summary(1)
        );

        let err = space("\"engine.group_size\" = [2, 3]\n")
            .sample(4, 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the configs it makes: missing field `accumulator_bits`")
                && !err.contains("^^^"),
            "{err}"
        );
    }

    #[test]
    fn samples_are_valid_deterministic_and_extensible() {
        let space = Space::resolve("matmul").unwrap();
        let (a, _) = space.sample(40, 7).unwrap();
        let (b, _) = space.sample(60, 7).unwrap();
        assert_eq!(a.len(), 40);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.index, y.index);
            assert_eq!(x.config, y.config);
        }
        let (c, _) = space.sample(40, 8).unwrap();
        assert!(a.iter().zip(&c).any(|(x, y)| x.config != y.config));
    }

    #[test]
    fn every_choice_of_a_dimension_is_visited() {
        let space = Space::resolve("matmul").unwrap();
        let (samples, _) = space.sample(200, 1).unwrap();
        for (d, (key, values)) in space.dimensions.iter().enumerate() {
            for v in values {
                let text = v.to_string();
                let seen = samples.iter().filter(|s| s.choices[d].1 == text).count();
                // Rejections can thin a value out, never remove it from 200 samples.
                assert!(seen > 0, "{key} = {text} never sampled");
            }
        }
    }

    #[test]
    fn bad_space_files_name_the_problem() {
        for (text, needle) in [
            ("name = \"x\"\n[dimensions]\n", "[dimensions] is empty"),
            (
                "name = \"x\"\n[dimensions]\n\"engine.group_size\" = 3\n",
                "non-empty list",
            ),
            (
                "name = \"x\"\n[dimensions]\n\"engine.group_size\" = [2]\n[holdout]\n\"engine.group_size\" = [4]\n",
                "not one of the dimension's values",
            ),
            (
                "name = \"x\"\n[dimensions]\n\"engine.group_size\" = [2]\n[limits]\nmax_luts = 3\n",
                "max_luts",
            ),
        ] {
            let err = Space::from_toml(text, "t.toml").unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
            assert!(err.starts_with("t.toml"), "{err}");
        }
    }

    #[test]
    fn configs_off_the_grid_are_reported_as_outside() {
        let space = Space::resolve("matmul").unwrap();
        let (samples, _) = space.sample(1, 3).unwrap();
        assert!(space.outside(&samples[0].config).is_empty());
        let mut cfg = samples[0].config.matmul().unwrap().clone();
        cfg.engine.rows_parallel = 3;
        let cfg = tern_hdl::Config::from_toml(&cfg.to_toml(), "t").unwrap();
        let out = space.outside(&DesignConfig::Matmul(cfg));
        assert_eq!(out, vec!["engine.rows_parallel = 3".to_string()]);
    }

    /// A whole-top space varies the top's keys and describes its samples with the
    /// shell; an attention engine cannot be a whole top (its top has no graph).
    #[test]
    fn whole_top_spaces_vary_the_top_and_graph_the_shell() {
        let space = Space::resolve("tlmm-top").unwrap();
        assert!(space.whole_top);
        let (samples, _) = space.sample(6, 1).unwrap();
        let buses: std::collections::BTreeSet<usize> = samples
            .iter()
            .map(|s| s.config.matmul().unwrap().top.bus_bits)
            .collect();
        assert!(buses.len() > 1, "{buses:?}");
        let g = space.graph_of(&samples[0].config);
        assert!(g.nodes.iter().any(|n| n.rtl == tern_hdl::graph::SHELL));
        let engines = Space::resolve("tlmm").unwrap();
        let g = engines.graph_of(&samples[0].config);
        assert!(!g.nodes.iter().any(|n| n.rtl == tern_hdl::graph::SHELL));
        let text = include_str!("../../spaces/attention.toml")
            .replace("[fixed]", "whole_top = true\n[fixed]");
        let bad = Space::from_toml(&text, "x.toml").unwrap();
        match bad.point(0, 1) {
            Err(PointRejected::Invalid(why)) => assert!(why.contains("whole tops"), "{why}"),
            other => panic!("an attention whole top was not rejected: {other:?}"),
        }
    }
}
