//! The accelerator description: what a user builds, as one file (as LiteX's targets are
//! to its platforms). It names the board, the clock, the matmul top and the attention
//! tops with their count; each top's engine stays in its own config file, which the
//! description points to (paths relative to the description). Read and validated once;
//! `tern generate`, `tern project`, `tern dse` and the model bench take it with
//! `--accelerator` (docs/files.md, "Accelerator description").
//!
//! ```toml
//! name = "kv260-bitnet-0.73b"
//! board = "kv260"
//! clock_mhz = 300              # optional: the board's default clock
//! ports = 2                    # optional: the one top's memory ports (default: the board's)
//! [matmul]
//! config = "matmul.toml"
//! window_beats = 4096          # optional: the weight window's engine beats (default 4096)
//! window_ram = "ultra"         # optional: "ultra" or "block" (default: ultra where the board has it)
//! [attention]
//! config = "attention.toml"
//! engines = 1                  # attention tops side by side
//! [lm_head]                    # optional: the one top's LM head (default int8)
//! format = "int4"              # "int8" (a scale a row) or "int4" (a scale a group)
//! group = 64                   # int4 only: weights a scale
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::config::attention::AttentionConfig;
use crate::config::{Config, ConfigError, TopConfig};
use crate::program::HeadFormat;
use crate::units::{WeightWindow, WindowRam};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceleratorFile {
    pub name: String,
    pub board: String,
    #[serde(default)]
    pub clock_mhz: Option<f64>,
    /// The one top's memory ports: at most the board's 128-bit ones.
    #[serde(default)]
    pub ports: Option<usize>,
    pub matmul: MatmulPart,
    pub attention: AttentionPart,
    #[serde(default)]
    pub lm_head: Option<LmHeadPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmHeadPart {
    /// "int8" or "int4".
    pub format: String,
    /// Weights a scale, for "int4".
    #[serde(default)]
    pub group: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatmulPart {
    /// The matmul top's config file, relative to the description.
    pub config: PathBuf,
    /// The one top's weight window, in engine beats.
    #[serde(default)]
    pub window_beats: Option<usize>,
    /// The memory the window is built in; `None`: UltraRAM where the board has it.
    #[serde(default)]
    pub window_ram: Option<WindowRam>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttentionPart {
    /// The attention top's config file, relative to the description.
    pub config: PathBuf,
    /// Attention tops side by side (KV head `h` on top `h mod engines`).
    #[serde(default = "one")]
    pub engines: usize,
}

fn one() -> usize {
    1
}

/// Most attention tops a description may ask for.
pub const MAX_ATTENTION_ENGINES: usize = 64;

/// A validated accelerator: its tops' configs read, every part on the named board.
#[derive(Debug, Clone)]
pub struct Accelerator {
    pub name: String,
    pub board: String,
    /// The clock asked for; `None`: the board's default.
    pub clock_mhz: Option<f64>,
    /// The one top's memory ports asked for (1, 2 or 4); `None`: as many as the board has.
    pub ports: Option<usize>,
    pub matmul: Config,
    pub attention: AttentionConfig,
    pub attention_engines: usize,
    /// The one top's weight window, in engine beats.
    pub window_beats: usize,
    /// The window's memory asked for; `None`: UltraRAM where the board has it.
    pub window_ram: Option<WindowRam>,
    /// The LM head's format in memory, which the one top's LM-head unit is built for.
    pub head_format: HeadFormat,
    /// Where the description and its tops' configs were read.
    pub origin: PathBuf,
    pub matmul_path: PathBuf,
    pub attention_path: PathBuf,
}

/// One memory port of the accelerator: each top has its own AXI4 master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPort {
    pub name: String,
    pub bits: usize,
}

impl Accelerator {
    pub fn from_path(path: &Path) -> Result<Accelerator, ConfigError> {
        crate::config::from_path(path, |text, origin| {
            Accelerator::from_toml(text, origin, path)
        })
    }

    /// Parse and validate a description read from `path` (its tops' configs are read
    /// relative to it).
    pub fn from_toml(text: &str, origin: &str, path: &Path) -> Result<Accelerator, ConfigError> {
        let origin = origin.to_string();
        let file: AcceleratorFile = crate::config::parse_toml(text, &origin)?;
        let invalid = |message: String| ConfigError::Parse {
            origin: origin.clone(),
            message,
        };
        if file.name.trim().is_empty() {
            return Err(invalid("`name` is empty".into()));
        }
        if let Some(mhz) = file.clock_mhz {
            if !(mhz > 0.0 && mhz < 2000.0) {
                return Err(invalid(format!(
                    "`clock_mhz` = {mhz} is out of range: a clock in MHz, 0..2000"
                )));
            }
        }
        if let Some(p) = file.ports.filter(|p| ![1, 2, 4].contains(p)) {
            return Err(invalid(format!("`ports` = {p}: allowed 1, 2 or 4")));
        }
        let engines = file.attention.engines;
        if !(1..=MAX_ATTENTION_ENGINES).contains(&engines) {
            return Err(invalid(format!(
                "`attention.engines` = {engines} is out of range: allowed 1..={MAX_ATTENTION_ENGINES}"
            )));
        }
        let head_format = match &file.lm_head {
            None => HeadFormat::Int8,
            Some(LmHeadPart { format, group }) => {
                match (format.as_str(), *group) {
                    ("int8", None) => HeadFormat::Int8,
                    ("int8", Some(_)) => return Err(invalid(
                        "`lm_head.group` is for an \"int4\" head; an int8 head has a scale a row"
                            .into(),
                    )),
                    ("int4", Some(g)) if g >= 2 && g.is_power_of_two() && g <= 1 << 16 => {
                        HeadFormat::Int4 { group: g }
                    }
                    ("int4", g) => {
                        let given = g.map_or("absent".to_string(), |g| g.to_string());
                        return Err(invalid(format!(
                        "`lm_head.group` = {given}: an \"int4\" head needs a group of weights a scale, a power of two in 2..=65536"
                    )));
                    }
                    (f, _) => {
                        return Err(invalid(format!(
                            "`lm_head.format` = \"{f}\": allowed \"int8\" or \"int4\""
                        )))
                    }
                }
            }
        };
        let window_beats = file
            .matmul
            .window_beats
            .unwrap_or(WeightWindow::DEFAULT_BEATS);
        WeightWindow::check_beats(window_beats)
            .map_err(|e| invalid(format!("`matmul.window_beats` = {window_beats}: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let matmul_path = dir.join(&file.matmul.config);
        let attention_path = dir.join(&file.attention.config);
        let matmul = Config::from_path(&matmul_path)?;
        let attention = AttentionConfig::from_path(&attention_path)?;
        for (part, board) in [
            ("matmul", matmul.board.as_deref()),
            ("attention", attention.board.as_deref()),
        ] {
            if let Some(b) = board.filter(|b| *b != file.board) {
                return Err(invalid(format!(
                    "the {part} top's config names board `{b}`, the accelerator `{}`: one \
                     accelerator is built for one board",
                    file.board
                )));
            }
        }
        let mut matmul = matmul;
        matmul.board = Some(file.board.clone());
        let mut attention = attention;
        attention.board = Some(file.board.clone());
        Ok(Accelerator {
            name: file.name,
            board: file.board,
            clock_mhz: file.clock_mhz,
            ports: file.ports,
            matmul,
            attention,
            attention_engines: engines,
            window_beats,
            window_ram: file.matmul.window_ram,
            head_format,
            origin: path.to_path_buf(),
            matmul_path,
            attention_path,
        })
    }

    /// The memory ports: the matmul top's and one per attention top.
    pub fn memory_ports(&self) -> Vec<MemoryPort> {
        let port = |name: String, top: &TopConfig| MemoryPort {
            name,
            bits: top.bus_bits,
        };
        let mut ports = vec![port("matmul".into(), &self.matmul.top)];
        for i in 0..self.attention_engines {
            ports.push(port(format!("attention{i}"), &self.attention.top));
        }
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model/kv260/accelerator.toml")
    }

    #[test]
    fn the_shipped_kv260_accelerator_reads_its_tops() {
        let a = Accelerator::from_path(&shipped()).unwrap();
        assert_eq!(a.board, "kv260");
        assert_eq!(a.matmul.geometry.weights_per_clock(), 1536);
        assert_eq!(a.attention.attention.head_dim, 96);
        let ports = a.memory_ports();
        assert_eq!(ports.len(), 1 + a.attention_engines);
        assert_eq!(ports[0].bits, 512);
    }

    #[test]
    fn a_bad_description_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/model/kv260");
        let mm = kv.join("matmul.toml").display().to_string();
        let at = kv.join("attention.toml").display().to_string();
        let good = format!(
            "name = \"x\"\nboard = \"kv260\"\n[matmul]\nconfig = \"{mm}\"\n[attention]\nconfig = \"{at}\"\n"
        );
        let ok = Accelerator::from_path(&write(dir.path(), "ok.toml", &good)).unwrap();
        assert_eq!(ok.head_format, HeadFormat::Int8);
        let four = format!("{good}[lm_head]\nformat = \"int4\"\ngroup = 64\n");
        let four = Accelerator::from_path(&write(dir.path(), "four.toml", &four)).unwrap();
        assert_eq!(four.head_format, HeadFormat::Int4 { group: 64 });
        assert_eq!((ok.window_beats, ok.window_ram), (4096, None));
        let window = good.replace(
            "[attention]",
            "window_beats = 256\nwindow_ram = \"block\"\n[attention]",
        );
        let window = Accelerator::from_path(&write(dir.path(), "window.toml", &window)).unwrap();
        assert_eq!(
            (window.window_beats, window.window_ram),
            (256, Some(WindowRam::Block))
        );
        for (text, expect) in [
            (
                good.replace("board = \"kv260\"", "board = \"ulx3s\""),
                "one board",
            ),
            (
                good.replace("[attention]\n", "[attention]\nengines = 0\n"),
                "attention.engines",
            ),
            (
                good.replace("board = ", "clock_mhz = -1\nboard = "),
                "clock_mhz",
            ),
            (good.replace("board = ", "ports = 3\nboard = "), "`ports`"),
            (
                good.replace("name = \"x\"", "name = \"x\"\nspeed = 1"),
                "unknown field",
            ),
            (good.replace(&mm, "missing.toml"), "missing.toml"),
            (
                good.replace("[attention]", "window_beats = 100\n[attention]"),
                "`matmul.window_beats` = 100",
            ),
            (
                good.replace("[attention]", "window_ram = \"lut\"\n[attention]"),
                "window_ram",
            ),
            (
                format!("{good}[lm_head]\nformat = \"int3\"\n"),
                "lm_head.format",
            ),
            (
                format!("{good}[lm_head]\nformat = \"int4\"\ngroup = 24\n"),
                "`lm_head.group` = 24:",
            ),
            (
                format!("{good}[lm_head]\nformat = \"int4\"\n"),
                "`lm_head.group` = absent:",
            ),
            (
                format!("{good}[lm_head]\nformat = \"int8\"\ngroup = 32\n"),
                "lm_head.group",
            ),
        ] {
            let path = write(dir.path(), "bad.toml", &text);
            let err = Accelerator::from_path(&path).unwrap_err().to_string();
            assert!(
                err.contains(expect) && (err.contains("bad.toml") || err.contains("missing")),
                "{expect}: {err}"
            );
        }
    }
}
