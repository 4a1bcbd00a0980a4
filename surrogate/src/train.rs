//! Training an ensemble of GNNs on a dataset, predicting with it, and the weights file.
//!
//! Weights file (`*.tgnn`), little-endian:
//! ```text
//! 8 bytes   magic "TERNGNN\0"
//! u32       file version (WEIGHTS_VERSION)
//! u32       header length H (≤ 1 MiB)
//! H bytes   header, JSON (`ModelHeader`: shape, feature sizes, target names and scaling,
//!           space, board, dataset digest, training options, parameter count per member)
//! then      members × parameters f32 values, in `Gnn::parameters` order
//! ```

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;

use crate::features::{
    EncodedGraph, GLOBAL_FEATURES, NODE_FEATURES, QUANTUM, TARGETS, TARGET_COUNT,
};
use crate::model::{self, Batch, Gnn, Shape, Trainer};

const MAGIC: &[u8; 8] = b"TERNGNN\0";
pub const WEIGHTS_VERSION: u32 = 1;
const MAX_HEADER: usize = 1 << 20;
const MAX_PARAMETERS: usize = 1 << 26;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read weights {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("cannot write weights {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("nothing to train on: {0}")]
    NoData(String),
    #[error("training options: {0}")]
    Options(String),
    #[error("training row {row}: {message}")]
    BadExample { row: usize, message: String },
}

impl TrainOptions {
    /// Options a training can run with, in bounds that keep it to a sane size.
    pub fn check(&self) -> Result<(), String> {
        self.shape.check()?;
        if !(1..=32).contains(&self.members) {
            return Err(format!(
                "{} ensemble members is outside 1..=32",
                self.members
            ));
        }
        // Zero epochs would save an untrained ensemble whose validation loss is no number.
        if !(1..=100_000).contains(&self.max_epochs) {
            return Err(format!("{} epochs is outside 1..=100000", self.max_epochs));
        }
        if self.batch == 0 {
            return Err("batch size 0".into());
        }
        if !(self.validation > 0.0 && self.validation < 1.0) {
            return Err(format!(
                "validation fraction {} is outside (0, 1)",
                self.validation
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(format!(
                "learning rate {} must be positive",
                self.learning_rate
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!("weight decay {} must be >= 0", self.weight_decay));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub shape: Shape,
    /// Ensemble members (their spread is the stated uncertainty).
    pub members: usize,
    pub max_epochs: usize,
    /// Stop a member after this many epochs without a better validation loss.
    pub patience: usize,
    pub batch: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Fraction of the training rows kept aside for validation (early stopping).
    pub validation: f64,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            shape: Shape {
                hidden: 64,
                layers: 3,
            },
            members: 3,
            max_epochs: 150,
            patience: 20,
            batch: 32,
            learning_rate: 3e-3,
            weight_decay: 1e-5,
            validation: 0.1,
            seed: 42,
        }
    }
}

/// A training example: a graph and its (optional) targets in natural units.
#[derive(Debug, Clone)]
pub struct Example {
    pub graph: EncodedGraph,
    pub targets: [Option<f64>; TARGET_COUNT],
}

/// `log(1 + t)` standardised; targets never seen in training are not predicted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Scaling {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Training rows that had each target.
    pub count: Vec<usize>,
}

impl Scaling {
    fn fit(examples: &[&Example]) -> Scaling {
        let mut s = Scaling {
            mean: vec![0.0; TARGET_COUNT],
            std: vec![1.0; TARGET_COUNT],
            count: vec![0; TARGET_COUNT],
        };
        for t in 0..TARGET_COUNT {
            let ys: Vec<f64> = examples
                .iter()
                .filter_map(|e| e.targets[t])
                .map(f64::ln_1p)
                .collect();
            s.count[t] = ys.len();
            if ys.is_empty() {
                continue;
            }
            let mean = ys.iter().sum::<f64>() / ys.len() as f64;
            let var = ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64;
            s.mean[t] = mean;
            // A constant target (e.g. no DSPs anywhere) has std 0: it is predicted as
            // that constant, not learnt.
            s.std[t] = if var.sqrt() > 1e-6 { var.sqrt() } else { 0.0 };
        }
        s
    }

    /// A scaling table a weights file may carry: one finite entry per target, log-domain
    /// means and spreads in the range real designs give (so decoding cannot overflow).
    fn check(&self) -> Result<(), String> {
        for (name, len) in [
            ("mean", self.mean.len()),
            ("std", self.std.len()),
            ("count", self.count.len()),
        ] {
            if len != TARGET_COUNT {
                return Err(format!(
                    "scaling table `{name}` has {len} entries, expected {TARGET_COUNT}"
                ));
            }
        }
        for ((target, &m), &s) in TARGETS.iter().zip(&self.mean).zip(&self.std) {
            if !(m.is_finite() && m.abs() <= 50.0 && s.is_finite() && (0.0..=50.0).contains(&s)) {
                return Err(format!(
                    "scaling of target {target} (mean {m}, std {s}) is not finite or out of range"
                ));
            }
        }
        Ok(())
    }

    fn encode(&self, t: usize, value: f64) -> f32 {
        if self.std[t] == 0.0 {
            return 0.0;
        }
        ((value.ln_1p() - self.mean[t]) / self.std[t]) as f32
    }

    fn decode(&self, t: usize, z: f64) -> f64 {
        (z * self.std[t] + self.mean[t]).exp_m1().max(0.0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelHeader {
    pub format: String,
    pub shape: Shape,
    pub node_features: usize,
    pub global_features: usize,
    pub targets: Vec<String>,
    pub scaling: Scaling,
    pub members: usize,
    pub parameters_per_member: usize,
    /// The space and board the training rows came from (predictions outside the space
    /// are flagged as extrapolation).
    pub space: String,
    pub space_hash: String,
    pub board: String,
    pub family: String,
    pub dataset_sha256: String,
    pub trained_rows: usize,
    pub options: TrainOptions,
    /// Per member: epochs run and best validation loss.
    pub epochs: Vec<usize>,
    pub validation_loss: Vec<f64>,
    /// The matmul datapath version the training designs had (`hdl::graph::
    /// MATMUL_DATAPATH_VERSION`); models saved before it was recorded saw version 1.
    #[serde(default = "first_datapath")]
    pub datapath: u32,
}

fn first_datapath() -> u32 {
    1
}

/// An ensemble ready to predict.
pub struct Surrogate {
    pub header: ModelHeader,
    members: Vec<Gnn>,
}

/// A prediction in natural units: ensemble mean and spread (standard deviation of the
/// members, as a fraction of the mean); `None` for targets the model never saw.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prediction {
    pub value: Vec<Option<f64>>,
    pub spread: Vec<Option<f64>>,
}

/// Where training the ensemble is, for progress bars.
pub trait Progress: Sync {
    fn epoch(&self, member: usize, epoch: usize, train_loss: f64, validation_loss: f64);
}

impl Progress for () {
    fn epoch(&self, _: usize, _: usize, _: f64, _: f64) {}
}

/// What the dataset and its origin were, recorded in the header.
pub struct Provenance {
    pub space: String,
    pub space_hash: String,
    pub board: String,
    pub family: String,
    pub dataset_sha256: String,
    /// The matmul datapath version of the training designs (`hdl::graph`).
    pub datapath: u32,
}

impl Surrogate {
    pub fn train(
        examples: &[Example],
        options: TrainOptions,
        provenance: Provenance,
        progress: &dyn Progress,
    ) -> Result<Surrogate, ModelError> {
        options.check().map_err(ModelError::Options)?;
        for (row, e) in examples.iter().enumerate() {
            e.graph
                .check()
                .map_err(|message| ModelError::BadExample { row, message })?;
        }
        if examples.len() < 10 {
            return Err(ModelError::NoData(format!(
                "{} usable rows; at least 10 are needed",
                examples.len()
            )));
        }
        let mut order: Vec<usize> = (0..examples.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(options.seed));
        let n_val = ((examples.len() as f64 * options.validation).round() as usize)
            .clamp(1, examples.len() - 1);
        let (val_idx, train_idx) = order.split_at(n_val);
        let train: Vec<&Example> = train_idx.iter().map(|&i| &examples[i]).collect();
        let val: Vec<&Example> = val_idx.iter().map(|&i| &examples[i]).collect();
        let scaling = Scaling::fit(&train);

        let mut members = vec![];
        let mut epochs = vec![];
        let mut losses = vec![];
        for m in 0..options.members.max(1) {
            let (params, ran, loss) = train_member(&train, &val, &scaling, options, m, progress);
            let gnn = Gnn::new(options.shape, &model::device(false))
                .with_parameters(&params)
                .expect("same shape");
            members.push(gnn);
            epochs.push(ran);
            losses.push(loss);
        }
        if let Some(m) = losses.iter().position(|l| !l.is_finite()) {
            return Err(ModelError::Options(format!(
                "member {m} ended with validation loss {} after {} epochs (diverged): lower --learning-rate",
                losses[m], epochs[m]
            )));
        }
        let parameters_per_member = members[0].parameters().len();
        Ok(Surrogate {
            header: ModelHeader {
                format: "tern-gnn".into(),
                shape: options.shape,
                node_features: NODE_FEATURES,
                global_features: GLOBAL_FEATURES,
                targets: TARGETS.iter().map(|s| s.to_string()).collect(),
                scaling,
                members: members.len(),
                parameters_per_member,
                space: provenance.space,
                space_hash: provenance.space_hash,
                board: provenance.board,
                family: provenance.family,
                dataset_sha256: provenance.dataset_sha256,
                datapath: provenance.datapath,
                trained_rows: train.len(),
                options,
                epochs,
                validation_loss: losses,
            },
            members,
        })
    }

    /// Predict many graphs (batched; cost grows with the total node count).
    pub fn predict(&self, graphs: &[&EncodedGraph]) -> Vec<Prediction> {
        let device = model::device(false);
        let mut out = Vec::with_capacity(graphs.len());
        for chunk in graphs.chunks(512) {
            let batch = Batch::new(chunk, &device);
            let per_member: Vec<Vec<f32>> = self
                .members
                .iter()
                .map(|m| model::to_vec(m.forward(&batch)))
                .collect();
            for g in 0..chunk.len() {
                let mut value = vec![None; TARGET_COUNT];
                let mut spread = vec![None; TARGET_COUNT];
                for t in 0..TARGET_COUNT {
                    if self.header.scaling.count[t] == 0 {
                        continue;
                    }
                    let vals: Vec<f64> = per_member
                        .iter()
                        .map(|p| {
                            self.header
                                .scaling
                                .decode(t, p[g * TARGET_COUNT + t] as f64)
                        })
                        .collect();
                    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
                    let sd = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / vals.len() as f64)
                        .sqrt();
                    if !(mean.is_finite() && sd.is_finite()) {
                        // No answer rather than `inf ± NaN`.
                        continue;
                    }
                    // Rounded to the target's quantum (whole LUTs, half BRAMs).
                    let q = QUANTUM[t];
                    value[t] = Some(if q > 0.0 {
                        (mean / q).round() * q
                    } else {
                        mean
                    });
                    spread[t] = Some(if mean > 0.0 { sd / mean } else { 0.0 });
                }
                out.push(Prediction { value, spread });
            }
        }
        out
    }

    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let err = |cause| ModelError::Write {
            path: path.display().to_string(),
            cause,
        };
        let header = serde_json::to_vec(&self.header).expect("header serialises");
        let mut bytes = Vec::with_capacity(16 + header.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&WEIGHTS_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&header);
        for m in &self.members {
            for v in m.parameters() {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)
    }

    pub fn load(path: &Path) -> Result<Surrogate, ModelError> {
        let name = path.display().to_string();
        let corrupt = |message: String| ModelError::Corrupt {
            path: name.clone(),
            message,
        };
        let mut f = std::fs::File::open(path).map_err(|cause| ModelError::Read {
            path: name.clone(),
            cause,
        })?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        let mut fixed = [0u8; 16];
        f.read_exact(&mut fixed)
            .map_err(|_| corrupt(format!("{size} bytes: too short for a weights file")))?;
        if &fixed[..8] != MAGIC {
            return Err(corrupt("not a tern weights file (bad magic)".into()));
        }
        let version = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes"));
        if version != WEIGHTS_VERSION {
            return Err(corrupt(format!(
                "weights file version {version}; this tern reads version {WEIGHTS_VERSION} (retrain with `tern train`)"
            )));
        }
        let hlen = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes")) as usize;
        if hlen > MAX_HEADER || 16 + hlen > size {
            return Err(corrupt(format!(
                "header length {hlen} does not fit the file ({size} bytes)"
            )));
        }
        let mut header = vec![0u8; hlen];
        f.read_exact(&mut header)
            .map_err(|e| corrupt(format!("reading the header: {e}")))?;
        let header: ModelHeader =
            serde_json::from_slice(&header).map_err(|e| corrupt(format!("header: {e}")))?;
        if header.format != "tern-gnn" {
            return Err(corrupt(format!(
                "format `{}`, expected `tern-gnn`",
                header.format
            )));
        }
        if header.validation_loss.iter().any(|l| !l.is_finite())
            || header.validation_loss.len() != header.members
            || header.epochs.len() != header.members
        {
            return Err(corrupt(
                "the members' epochs and validation losses are missing or not finite".into(),
            ));
        }
        if header.node_features != NODE_FEATURES || header.global_features != GLOBAL_FEATURES {
            return Err(corrupt(format!(
                "trained on {} node / {} global features; this tern makes {NODE_FEATURES} / {GLOBAL_FEATURES} (retrain)",
                header.node_features, header.global_features
            )));
        }
        // Checked before any network is built: a damaged shape would allocate or fail
        // inside burn, a short or absurd scaling table would fail at prediction.
        header.shape.check().map_err(&corrupt)?;
        header.scaling.check().map_err(&corrupt)?;
        if header.targets != TARGETS {
            return Err(corrupt(format!(
                "targets {:?}, expected {TARGETS:?}",
                header.targets
            )));
        }
        let expected_len = Gnn::new(header.shape, &model::device(false))
            .parameters()
            .len();
        let total = header.members.saturating_mul(header.parameters_per_member);
        if header.parameters_per_member != expected_len
            || header.members == 0
            || total > MAX_PARAMETERS
            || 16 + hlen + 4 * total != size
        {
            return Err(corrupt(format!(
                "{} members × {} parameters do not match the network ({expected_len} each) or the file size ({size} bytes)",
                header.members, header.parameters_per_member
            )));
        }
        let mut raw = vec![0u8; 4 * total];
        f.read_exact(&mut raw)
            .map_err(|e| corrupt(format!("reading the weights: {e}")))?;
        let values: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(corrupt("non-finite weights".into()));
        }
        let device = model::device(false);
        let members = values
            .chunks_exact(header.parameters_per_member)
            .map(|chunk| Gnn::new(header.shape, &device).with_parameters(chunk))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(Surrogate { header, members })
    }
}

fn targets_of(examples: &[&Example], scaling: &Scaling) -> (Vec<f32>, Vec<f32>) {
    let mut y = Vec::with_capacity(examples.len() * TARGET_COUNT);
    let mut mask = Vec::with_capacity(examples.len() * TARGET_COUNT);
    for e in examples {
        for t in 0..TARGET_COUNT {
            match e.targets[t] {
                Some(v) => {
                    y.push(scaling.encode(t, v));
                    mask.push(1.0);
                }
                None => {
                    y.push(0.0);
                    mask.push(0.0);
                }
            }
        }
    }
    (y, mask)
}

/// Train one member; returns its best parameters, epochs run and best validation loss.
fn train_member(
    train: &[&Example],
    val: &[&Example],
    scaling: &Scaling,
    options: TrainOptions,
    member: usize,
    progress: &dyn Progress,
) -> (Vec<f32>, usize, f64) {
    let seed = options.seed.wrapping_add(1000 * member as u64);
    let device = model::device(true);
    device.seed(seed);
    let mut trainer = Trainer::new(Gnn::new(options.shape, &device), options.weight_decay);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let val_graphs: Vec<&EncodedGraph> = val.iter().map(|e| &e.graph).collect();
    let val_batch = Batch::new(&val_graphs, &device);
    let (vy, vm) = targets_of(val, scaling);
    let val_y = model::matrix(vy, val.len(), TARGET_COUNT, &device);
    let val_mask = model::matrix(vm, val.len(), TARGET_COUNT, &device);

    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut best = (f64::INFINITY, trainer.model.parameters(), 0usize);
    let mut ran = 0;
    for epoch in 0..options.max_epochs {
        ran = epoch + 1;
        order.shuffle(&mut rng);
        // Cosine decay from the base rate to a tenth of it.
        let phase = epoch as f64 / options.max_epochs as f64;
        let lr = options.learning_rate
            * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * phase).cos()));
        let mut total = 0.0;
        let mut batches = 0;
        for chunk in order.chunks(options.batch.max(1)) {
            let examples: Vec<&Example> = chunk.iter().map(|&i| train[i]).collect();
            let graphs: Vec<&EncodedGraph> = examples.iter().map(|e| &e.graph).collect();
            let batch = Batch::new(&graphs, &device);
            let (y, m) = targets_of(&examples, scaling);
            let y = model::matrix(y, examples.len(), TARGET_COUNT, &device);
            let m = model::matrix(m, examples.len(), TARGET_COUNT, &device);
            total += trainer.step(&batch, y, m, lr);
            batches += 1;
        }
        let val_loss = trainer.validation_loss(&val_batch, val_y.clone(), val_mask.clone());
        progress.epoch(member, epoch, total / batches.max(1) as f64, val_loss);
        if val_loss < best.0 {
            best = (val_loss, trainer.model.parameters(), epoch);
        } else if epoch - best.2 >= options.patience {
            break;
        }
    }
    (best.1, ran, best.0)
}
