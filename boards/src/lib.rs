//! tern-boards: FPGA boards as data. One TOML file per board in `boards/data/`,
//! compiled into the crate so the binary needs no data directory, and validated on load.

use serde::{Deserialize, Serialize};

/// The boards shipped with tern: (name, TOML text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("kv260", include_str!("../data/kv260.toml")),
    ("ulx3s", include_str!("../data/ulx3s.toml")),
    ("icebreaker", include_str!("../data/icebreaker.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Xilinx UltraScale+ (Yosys `synth_xilinx -family xcup`).
    Xcup,
    /// Xilinx 7-series (`synth_xilinx -family xc7`).
    Xc7,
    Ecp5,
    Ice40,
    Gowin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub luts: u64,
    pub ffs: u64,
    pub dsps: u64,
    pub bram_blocks: u64,
    pub bram_bits: u64,
    pub urams: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub part: String,
    pub family: Family,
    pub resources: Resources,
}

#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("unknown board `{name}`; known boards: {known}")]
    Unknown { name: String, known: String },
    #[error("board file {origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Board {
    pub fn from_toml(text: &str, origin: &str) -> Result<Board, BoardError> {
        let board: Board = toml::from_str(text).map_err(|e| BoardError::Invalid {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let r = &board.resources;
        for (key, value) in [("resources.luts", r.luts), ("resources.ffs", r.ffs)] {
            if value == 0 {
                return Err(BoardError::Invalid {
                    origin: origin.to_string(),
                    message: format!("`{key}` must be positive"),
                });
            }
        }
        Ok(board)
    }

    /// A shipped board by name.
    pub fn builtin(name: &str) -> Result<Board, BoardError> {
        match BUILTIN.iter().find(|(n, _)| *n == name) {
            Some((n, text)) => Board::from_toml(text, &format!("boards/data/{n}.toml")),
            None => Err(BoardError::Unknown {
                name: name.to_string(),
                known: BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    pub fn all() -> Result<Vec<Board>, BoardError> {
        BUILTIN.iter().map(|(n, _)| Board::builtin(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_board_loads_and_is_named_after_its_file() {
        for board in Board::all().unwrap() {
            assert!(BUILTIN.iter().any(|(n, _)| *n == board.name));
            assert!(board.resources.luts > 0 && board.resources.bram_bits > 0);
        }
    }

    #[test]
    fn unknown_board_lists_the_known_ones() {
        let err = Board::builtin("de10").unwrap_err().to_string();
        assert!(err.contains("de10") && err.contains("kv260"), "{err}");
    }

    #[test]
    fn negative_or_missing_resource_is_an_error() {
        let text = BUILTIN[0].1;
        let negative = text.replace("luts = 117120", "luts = -5");
        assert!(Board::from_toml(&negative, "x")
            .unwrap_err()
            .to_string()
            .contains("luts"));
        let missing = text.replace("dsps = 1248\n", "");
        assert!(Board::from_toml(&missing, "x")
            .unwrap_err()
            .to_string()
            .contains("dsps"));
        let zero = text.replace("luts = 117120", "luts = 0");
        assert!(Board::from_toml(&zero, "x").is_err());
    }
}
