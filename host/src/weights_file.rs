//! A ternary weight matrix on disk (`.tw`): what `tern run --weights` reads.
//!
//! Little-endian: magic `TWTS`, u32 version (1), u32 rows M, u32 columns K, then M·K
//! weights, row-major, four to a byte, two bits each from the low bits up: `00` = 0,
//! `01` = +1, `11` = −1 (`10` is invalid). The file length must match exactly.

use std::path::Path;

use crate::error::{HostError, Result};

pub const MAGIC: [u8; 4] = *b"TWTS";
pub const VERSION: u32 = 1;
const HEADER: usize = 16;
/// Largest matrix read (entries): 2^30, a 256 MiB file.
pub const MAX_ENTRIES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TernaryMatrix {
    pub m: usize,
    pub k: usize,
    /// Row-major, each −1, 0 or +1.
    pub w: Vec<i8>,
}

fn bad(path: &Path, what: String) -> HostError {
    HostError::Shape(format!("weights file {}: {what}", path.display()))
}

impl TernaryMatrix {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&VERSION.to_le_bytes());
        v.extend_from_slice(&(self.m as u32).to_le_bytes());
        v.extend_from_slice(&(self.k as u32).to_le_bytes());
        for four in self.w.chunks(4) {
            let mut b = 0u8;
            for (i, &x) in four.iter().enumerate() {
                let code = match x {
                    0 => 0b00,
                    1 => 0b01,
                    _ => 0b11,
                };
                b |= code << (2 * i);
            }
            v.push(b);
        }
        v
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.encode()).map_err(crate::error::io(format!(
            "writing weights {}",
            path.display()
        )))
    }

    /// Decode `bytes` (named `path` in errors). Checks the header before allocating.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<TernaryMatrix> {
        if bytes.len() < HEADER {
            return Err(bad(
                path,
                format!("{} bytes is shorter than the 16-byte header", bytes.len()),
            ));
        }
        if bytes[0..4] != MAGIC {
            return Err(bad(
                path,
                format!("magic {:02x?} is not \"TWTS\"", &bytes[0..4]),
            ));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let version = u32_at(4);
        if version != VERSION {
            return Err(bad(
                path,
                format!("version {version}, this tern reads {VERSION}"),
            ));
        }
        let (m, k) = (u64::from(u32_at(8)), u64::from(u32_at(12)));
        let entries = m * k;
        if m == 0 || k == 0 || entries > MAX_ENTRIES {
            return Err(bad(
                path,
                format!("shape {m}x{k} is empty or beyond 2^30 entries"),
            ));
        }
        let want = HEADER as u64 + entries.div_ceil(4);
        if bytes.len() as u64 != want {
            return Err(bad(
                path,
                format!("{} bytes, but a {m}x{k} matrix takes {want}", bytes.len()),
            ));
        }
        let mut w = Vec::with_capacity(entries as usize);
        for (i, b) in bytes[HEADER..].iter().enumerate() {
            for j in 0..4 {
                let n = i * 4 + j;
                if n as u64 >= entries {
                    break;
                }
                w.push(match (b >> (2 * j)) & 3 {
                    0b00 => 0,
                    0b01 => 1,
                    0b11 => -1,
                    _ => {
                        return Err(bad(
                            path,
                            format!(
                                "weight {} (row {}, column {}) has the invalid code 0b10",
                                n,
                                n as u64 / k,
                                n as u64 % k
                            ),
                        ))
                    }
                });
            }
        }
        Ok(TernaryMatrix {
            m: m as usize,
            k: k as usize,
            w,
        })
    }

    pub fn read(path: &Path) -> Result<TernaryMatrix> {
        let bytes = std::fs::read(path).map_err(crate::error::io(format!(
            "reading weights {}",
            path.display()
        )))?;
        TernaryMatrix::decode(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matrices_round_trip(m in 1usize..9, k in 1usize..9, seed in any::<u64>()) {
            let w: Vec<i8> = (0..m * k).map(|i| ((seed >> (i % 60)) % 3) as i8 - 1).collect();
            let t = TernaryMatrix { m, k, w };
            prop_assert_eq!(TernaryMatrix::decode(&t.encode(), Path::new("x")).unwrap(), t);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = TernaryMatrix::decode(&bytes, Path::new("x"));
        }
    }

    #[test]
    fn damaged_files_name_the_problem() {
        let t = TernaryMatrix {
            m: 2,
            k: 3,
            w: vec![1, 0, -1, -1, 1, 0],
        };
        let good = t.encode();
        let p = Path::new("w.tw");
        let err = |b: &[u8]| TernaryMatrix::decode(b, p).unwrap_err().to_string();
        assert!(err(&good[..10]).contains("shorter than"));
        let mut b = good.clone();
        b[0] = b'X';
        assert!(err(&b).contains("magic"));
        let mut b = good.clone();
        b[4] = 2;
        assert!(err(&b).contains("version 2"));
        let mut b = good.clone();
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&b).contains("beyond 2^30"));
        let mut b = good.clone();
        b.push(0);
        assert!(err(&b).contains("takes 18"));
        let mut b = good.clone();
        b[16] = 0b10;
        assert!(err(&b).contains("row 0, column 0"));
        assert!(err(&good[..16]).contains("w.tw"));
    }
}
