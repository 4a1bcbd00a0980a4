//! `tern train`: fit the GNN ensemble or the block model on a dataset's training split.

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tern_surrogate::blocks::BlockModel;
use tern_surrogate::dataset::{Dataset, Split};
use tern_surrogate::train::{Example, Progress, Provenance, Surrogate, TrainOptions};

use super::rows::load;

struct Bar(ProgressBar, usize);

impl Progress for Bar {
    fn epoch(&self, member: usize, epoch: usize, train_loss: f64, validation_loss: f64) {
        self.0.set_message(format!(
            "member {}/{} epoch {epoch}: train {train_loss:.4}, validation {validation_loss:.4}",
            member + 1,
            self.1
        ));
        self.0.inc(1);
    }
}

/// Train on the dataset's training split and save the ensemble.
pub fn train(dataset: &Path, out: &Path, options: TrainOptions) -> Result<Surrogate> {
    let loaded = load(dataset)?;
    let h = &loaded.dataset.header;
    let examples: Vec<Example> = loaded
        .items
        .iter()
        .filter(|i| i.split == Split::Train)
        .map(|i| i.example.clone())
        .collect();
    println!(
        "training on {} of {} rows of {} ({} failed rows not used; {} test, {} in the held-out region)",
        examples.len(),
        loaded.dataset.rows.len(),
        dataset.display(),
        loaded.dataset.rows.len() - loaded.items.len(),
        loaded.items.iter().filter(|i| i.split == Split::Test).count(),
        loaded.items.iter().filter(|i| i.split == Split::HeldOutRegion).count(),
    );
    let progress = Bar(
        tern_build::sweep::progress_bar((options.members * options.max_epochs) as u64),
        options.members,
    );
    let start = Instant::now();
    let model = Surrogate::train(
        &examples,
        options,
        Provenance {
            space: h.space.clone(),
            space_hash: h.space_hash.clone(),
            board: h.board.clone(),
            family: h.family.clone(),
            dataset_sha256: loaded.dataset.sha256.clone(),
            datapath: loaded
                .dataset
                .rows
                .iter()
                .map(|r| r.graph.datapath)
                .max()
                .unwrap_or(tern_hdl::graph::MATMUL_DATAPATH_VERSION),
        },
        &progress,
    )?;
    progress.0.finish_and_clear();
    model.save(out)?;
    println!(
        "wrote {}: {} members × {} parameters, epochs {:?}, validation loss {:?}, {:.0} s",
        out.display(),
        model.header.members,
        model.header.parameters_per_member,
        model.header.epochs,
        model
            .header
            .validation_loss
            .iter()
            .map(|l| format!("{l:.4}"))
            .collect::<Vec<_>>(),
        start.elapsed().as_secs_f64()
    );
    Ok(model)
}

/// Fit the per-block cost model on the dataset's training split and save it.
pub fn train_blocks(dataset: &Path, also: &[PathBuf], out: &Path) -> Result<BlockModel> {
    let data = Dataset::read(dataset)?;
    let more = also
        .iter()
        .map(|p| Dataset::read(p).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<&Dataset> = std::iter::once(&data).chain(&more).collect();
    let start = Instant::now();
    let model = BlockModel::fit_many(&all)?;
    let seconds = start.elapsed().as_secs_f64();
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    model.save(out)?;
    println!(
        "wrote {}: {} RTL blocks fitted on {} training rows of {} in {:.3} s",
        out.display(),
        model.blocks.len(),
        model.trained_rows,
        std::iter::once(dataset)
            .chain(also.iter().map(|p| p.as_path()))
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        seconds
    );
    for (t, name) in tern_surrogate::blocks::BLOCK_TARGETS.iter().enumerate() {
        println!(
            "  {name:<12} flattening factor {:.3}, {}",
            model.flatten[t],
            match model.band[t] {
                Some(_) => format!(
                    "band {} (out-of-fold p90)",
                    tern_surrogate::blocks::band_text(model.band[t])
                ),
                None => tern_surrogate::blocks::band_text(None),
            }
        );
    }
    Ok(model)
}
