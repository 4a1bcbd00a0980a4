//! The dataset file: JSON lines, a header line then one row per sampled design.
//! Rows are appended one at a time (write + fsync), so a killed run loses at most the
//! row being written; a torn last line is dropped on reading and the run resumes.
//!
//! ```text
//! {"format":"tern-dataset","version":1,"space":"matmul","space_hash":"…","board":"kv260",…}
//! {"index":0,"name":"matmul-0","config_toml":"…","graph":{…},"status":"ok","targets":{…},…}
//! ```

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use tern_hdl::DesignGraph;

pub const FORMAT: &str = "tern-dataset";
/// Bumped whenever a row's meaning changes (graph schema, targets, cycle model).
pub const VERSION: u32 = 1;
/// Longest line accepted when reading (a row is a few kB; this bounds a corrupt file).
const MAX_LINE_BYTES: usize = 4 << 20;

/// What the block model predicts, in this order.
pub const BLOCK_TARGETS: [&str; 5] = ["luts", "ffs", "dsps", "brams", "lutram_luts"];
pub const BLOCK_TARGET_COUNT: usize = BLOCK_TARGETS.len();

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read dataset {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("cannot write dataset {path}: {cause}")]
    Write { path: String, cause: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Corrupt {
        path: String,
        line: usize,
        message: String,
    },
    #[error(
        "{path} is a version-{found} dataset; this tern reads version {VERSION} (rebuild it with `tern dataset`)"
    )]
    Version { path: String, found: u32 },
    #[error("{path} is being written by another run (its lock is held); wait for it or use another --out")]
    Busy { path: String },
    #[error("{path} was made for {what} {found}, not {wanted}; use another --out or the matching options")]
    Mismatch {
        path: String,
        what: &'static str,
        found: String,
        wanted: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub space: String,
    pub space_hash: String,
    pub board: String,
    pub family: String,
    pub seed: u32,
    /// Whether rows carry post-route Fmax.
    pub pnr: bool,
    /// Whether rows carry per-block labels (`Row::blocks`).
    #[serde(default)]
    pub blocks: bool,
    /// Whether rows are whole matmul tops (engine + shell), not engines.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_top: bool,
}

/// What the tools (and the cycle model) said about a design.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Targets {
    pub luts: f64,
    pub ffs: f64,
    pub dsps: f64,
    /// Block RAMs in the family's 36 kbit (or native) block units, plus URAMs.
    pub brams: f64,
    /// Clocks for the config's workload, from reset to the last result, from the exact
    /// cycle model; none for engines without one (attention).
    #[serde(default)]
    pub cycles: Option<f64>,
    /// Post-route Fmax, where the family has a router and it ran.
    #[serde(default)]
    pub fmax_mhz: Option<f64>,
    /// Of `luts`, those holding LUT-RAM (rows made before this field: none recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lutram_luts: Option<f64>,
}

/// One RTL block's cells from the kept-hierarchy synthesis (`hdl::graph::rtl_blocks`;
/// `glue` is the rest). Their sum is a little above the flattened design's `Targets`:
/// flattening optimises across the blocks' boundaries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct BlockTargets {
    pub luts: f64,
    pub lutram_luts: f64,
    pub ffs: f64,
    pub dsps: f64,
    pub brams: f64,
}

impl BlockTargets {
    /// The values in `BLOCK_TARGETS` order (LUT, FF, DSP, BRAM, LUT-RAM).
    pub fn values(&self) -> [f64; BLOCK_TARGET_COUNT] {
        [self.luts, self.ffs, self.dsps, self.brams, self.lutram_luts]
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Generation or a tool failed; `error` says which and why. Never a zero row.
    Failed,
    /// A tool ran past its time limit.
    TimedOut,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub index: u32,
    pub name: String,
    pub config_toml: String,
    pub held_out: bool,
    pub graph: DesignGraph,
    pub status: Status,
    #[serde(default)]
    pub error: Option<String>,
    /// Present only when `status` is `ok`.
    #[serde(default)]
    pub targets: Option<Targets>,
    pub yosys: String,
    #[serde(default)]
    pub nextpnr: Option<String>,
    /// Seconds the tools took when this row was first made.
    pub tool_seconds: f64,
    /// Per-block labels (`tern dataset --blocks`), keyed by RTL block name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<BTreeMap<String, BlockTargets>>,
}

/// A dataset read into memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    pub header: Header,
    pub rows: Vec<Row>,
    /// A torn last line (a killed writer) that was skipped.
    pub torn_tail: bool,
    /// SHA-256 of the file as read (a model records the dataset it was trained on).
    pub sha256: String,
}

impl Dataset {
    pub fn ok_rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.status == Status::Ok)
    }

    /// Read and check a dataset file.
    pub fn read(path: &Path) -> Result<Dataset, DatasetError> {
        Dataset::read_checking(path, true)
    }

    /// Rewrite the file's rows with graphs from `graph_of` (today's graph builder, after
    /// a fix to it that leaves the RTL, and so the labels, as they were), keeping all else.
    /// The file is replaced whole once every row has its graph (a temporary file renamed
    /// over it), so a failure leaves it as it was. Returns the rows whose graph changed.
    pub fn rewrite_graphs(
        path: &Path,
        graph_of: impl Fn(&Header, &Row) -> Result<DesignGraph, String>,
    ) -> Result<usize, DatasetError> {
        let mut d = Dataset::read_checking(path, false)?;
        let name = path.display().to_string();
        let mut changed = 0;
        for (i, row) in d.rows.iter_mut().enumerate() {
            let graph = graph_of(&d.header, row).map_err(|message| DatasetError::Corrupt {
                path: name.clone(),
                line: i + 2,
                message: format!("row {}: {message}", row.index),
            })?;
            if graph != row.graph {
                row.graph = graph;
                changed += 1;
            }
        }
        let write_err = |cause| DatasetError::Write {
            path: name.clone(),
            cause,
        };
        let mut text = json_line(&d.header);
        for (i, row) in d.rows.iter().enumerate() {
            if let Some(why) = row.inconsistency(true) {
                return Err(DatasetError::Corrupt {
                    path: name.clone(),
                    line: i + 2,
                    message: format!("after the new graphs: {why}"),
                });
            }
            text += &json_line(row);
        }
        let tmp = path.with_extension("jsonl.regraph");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)?;
        Ok(changed)
    }

    fn read_checking(path: &Path, labels_match_graphs: bool) -> Result<Dataset, DatasetError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|cause| DatasetError::Read {
            path: name.clone(),
            cause,
        })?;
        let mut reader = std::io::BufReader::new(file);
        let corrupt = |line: usize, message: String| DatasetError::Corrupt {
            path: name.clone(),
            line,
            message,
        };
        let mut lines = vec![];
        let mut buf = Vec::new();
        let mut digest = Sha256::new();
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|cause| DatasetError::Read {
                    path: name.clone(),
                    cause,
                })?;
            if n == 0 {
                break;
            }
            digest.update(&buf);
            if buf.len() > MAX_LINE_BYTES {
                return Err(corrupt(
                    lines.len() + 1,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                ));
            }
            let complete = buf.ends_with(b"\n");
            let text = String::from_utf8(buf.clone())
                .map_err(|_| corrupt(lines.len() + 1, "not UTF-8".into()))?;
            lines.push((text, complete));
        }
        let Some((first, _)) = lines.first() else {
            return Err(corrupt(1, "empty file (no header line)".into()));
        };
        let probe: serde_json::Value = serde_json::from_str(first)
            .map_err(|e| corrupt(1, format!("header is not JSON: {e}")))?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(corrupt(
                1,
                format!("not a {FORMAT} file (no \"format\":\"{FORMAT}\")"),
            ));
        }
        let found = probe.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if found != VERSION {
            return Err(DatasetError::Version { path: name, found });
        }
        let header: Header =
            serde_json::from_value(probe).map_err(|e| corrupt(1, format!("header: {e}")))?;
        let mut rows = Vec::with_capacity(lines.len());
        let mut torn_tail = false;
        let last = lines.len() - 1;
        for (i, (text, complete)) in lines.iter().enumerate().skip(1) {
            match serde_json::from_str::<Row>(text) {
                Ok(row) => {
                    if let Some(why) = row.inconsistency(labels_match_graphs) {
                        return Err(corrupt(i + 1, why));
                    }
                    rows.push(row)
                }
                // Only the last line may be torn, and only if it lacks its newline.
                Err(_) if i == last && !complete => torn_tail = true,
                Err(e) => return Err(corrupt(i + 1, format!("row: {e}"))),
            }
        }
        Ok(Dataset {
            path: path.to_path_buf(),
            header,
            rows,
            torn_tail,
            sha256: hex::encode(digest.finalize()),
        })
    }
}

impl Row {
    fn labels_against_graph(&self, blocks: &BTreeMap<String, BlockTargets>) -> Option<String> {
        let in_graph: std::collections::BTreeSet<&str> =
            self.graph.nodes.iter().map(|n| n.rtl.as_str()).collect();
        let unseen: Vec<&str> = blocks
            .keys()
            .map(String::as_str)
            .filter(|b| !in_graph.contains(b))
            .collect();
        let unpriced: Vec<&str> = in_graph
            .iter()
            .copied()
            .filter(|b| !blocks.contains_key(*b))
            .collect();
        if unseen.is_empty() && unpriced.is_empty() {
            return None;
        }
        Some(format!(
            "row {} ({}): its per-block labels do not match its graph: labelled but in no \
             node: [{}]; in a node but not labelled: [{}] (regenerate the graphs with \
             `tern regraph` if only the graph builder changed)",
            self.index,
            self.name,
            unseen.join(", "),
            unpriced.join(", ")
        ))
    }

    /// A row that breaks the format's promises (e.g. an ok row without targets).
    /// What makes the row unusable; with `labels`, also per-block labels that do not
    /// match the graph's RTL blocks (a block priced that no node is, or a node's block
    /// without a price): a model fitted on it would cost a block it never sees.
    fn inconsistency(&self, labels: bool) -> Option<String> {
        match (&self.status, &self.targets) {
            (Status::Ok, None) => Some(format!("row {} is ok but has no targets", self.index)),
            (Status::Ok, Some(t)) => {
                let all = [t.luts, t.ffs, t.dsps, t.brams];
                if all.iter().any(|v| !v.is_finite() || *v < 0.0)
                    || t.cycles.is_some_and(|c| !c.is_finite() || c <= 0.0)
                {
                    return Some(format!(
                        "row {} has a negative or non-finite target",
                        self.index
                    ));
                }
                if self.graph.nodes.is_empty() {
                    return Some(format!("row {} has an empty graph", self.index));
                }
                let nodes = self.graph.nodes.len();
                if let Some((a, b)) = self
                    .graph
                    .edges
                    .iter()
                    .find(|(a, b)| *a >= nodes || *b >= nodes)
                {
                    return Some(format!(
                        "row {} has an edge {a} → {b} beyond its {nodes} nodes",
                        self.index
                    ));
                }
                match &self.blocks {
                    Some(blocks) if labels => self.labels_against_graph(blocks),
                    _ => None,
                }
            }
            (_, Some(_)) => Some(format!("row {} failed but carries targets", self.index)),
            (_, None) => None,
        }
    }
}

/// One line of a dataset file: the header or a row, as JSON.
fn json_line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("headers and rows serialise") + "\n"
}

/// Appends rows to a dataset file, creating it with its header when new.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    file: std::fs::File,
}

impl Writer {
    /// Open `path` for appending after checking that an existing file was made with
    /// the same header; returns the writer and the rows already there.
    pub fn open(path: &Path, header: &Header) -> Result<(Writer, Vec<Row>), DatasetError> {
        let name = path.display().to_string();
        let write_err = |cause| DatasetError::Write {
            path: name.clone(),
            cause,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        // One writer at a time: two runs appending to one file would both start from
        // the rows they read and write each missing row twice.
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(write_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(DatasetError::Busy { path: name });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(write_err(e)),
        }
        let len = file.metadata().map_err(write_err)?.len();
        let existing = if len > 0 {
            let ds = Dataset::read(path)?;
            for (what, found, wanted) in [
                ("space", &ds.header.space, &header.space),
                (
                    "space file (hash)",
                    &ds.header.space_hash,
                    &header.space_hash,
                ),
                ("board", &ds.header.board, &header.board),
            ] {
                if found != wanted {
                    return Err(DatasetError::Mismatch {
                        path: name,
                        what,
                        found: found.clone(),
                        wanted: wanted.clone(),
                    });
                }
            }
            let flags = |h: &Header| (h.seed, h.pnr, h.blocks);
            if flags(&ds.header) != flags(header) {
                return Err(DatasetError::Mismatch {
                    path: name,
                    what: "seed, pnr and blocks",
                    found: format!("{:?}", flags(&ds.header)),
                    wanted: format!("{:?}", flags(header)),
                });
            }
            if ds.torn_tail {
                // Cut the torn line (the bytes after the last newline) in place, so
                // appends start on a fresh line and the locked file stays the file.
                let bytes = std::fs::read(path).map_err(write_err)?;
                let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                file.set_len(keep as u64).map_err(write_err)?;
            }
            Some(ds.rows)
        } else {
            None
        };
        let rows = match existing {
            Some(rows) => rows,
            None => {
                file.write_all(json_line(header).as_bytes())
                    .map_err(write_err)?;
                file.sync_data().map_err(write_err)?;
                vec![]
            }
        };
        Ok((
            Writer {
                path: path.to_path_buf(),
                file,
            },
            rows,
        ))
    }

    pub fn append(&mut self, row: &Row) -> Result<(), DatasetError> {
        let line = json_line(row);
        let path = self.path.display().to_string();
        let err = |cause| DatasetError::Write { path, cause };
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(err)
    }
}

/// Which part of an evaluation a row belongs to: rows in the space's held-out region
/// are never trained on; of the rest, a fixed 15 % (by a hash of the sample index, so
/// independent of row order and dataset size) is the random test set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
    HeldOutRegion,
    /// Rows of a separate dataset of larger designs (`tern eval --extrapolation`).
    Extrapolation,
}

pub const TEST_PERCENT: u64 = 15;

pub fn split(row: &Row) -> Split {
    if row.held_out {
        return Split::HeldOutRegion;
    }
    // splitmix64 of the index: a fixed, well-mixed choice.
    let mut z = u64::from(row.index).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if z % 100 < TEST_PERCENT {
        Split::Test
    } else {
        Split::Train
    }
}
