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
        let (m, k, want) = Self::header(bytes, path)?;
        if bytes.len() as u64 != want {
            return Err(wrong_size(path, bytes.len() as u64, m, k, want));
        }
        let entries = m * k;
        let mut w = Vec::with_capacity(entries as usize);
        for (i, b) in bytes[HEADER..].iter().enumerate() {
            for j in 0..4 {
                let n = i * 4 + j;
                let code = (b >> (2 * j)) & 3;
                if n as u64 >= entries {
                    if code != 0 {
                        return Err(bad(
                            path,
                            format!("the padding bits after weight {} must be zero", entries - 1),
                        ));
                    }
                    continue;
                }
                w.push(match code {
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

    /// The header's shape and the file length it implies: (M, K, bytes).
    fn header(bytes: &[u8], path: &Path) -> Result<(u64, u64, u64)> {
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
        Ok((m, k, HEADER as u64 + entries.div_ceil(4)))
    }

    /// Read and decode a `.tw` file. The header is read and checked first, and the file
    /// is read only as far as the shape it declares (plus one byte, to see a longer
    /// file): a damaged header costs nothing, a device like /dev/zero cannot run on.
    pub fn read(path: &Path) -> Result<TernaryMatrix> {
        use std::io::Read;
        let io = || crate::error::io(format!("reading weights {}", path.display()));
        let file = std::fs::File::open(path).map_err(io())?;
        let mut bytes = Vec::with_capacity(HEADER);
        (&file)
            .take(HEADER as u64)
            .read_to_end(&mut bytes)
            .map_err(io())?;
        let (m, k, want) = Self::header(&bytes, path)?;
        if let Ok(meta) = file.metadata() {
            if meta.is_file() && meta.len() != want {
                return Err(wrong_size(path, meta.len(), m, k, want));
            }
        }
        (&file)
            .take(want + 1 - HEADER as u64)
            .read_to_end(&mut bytes)
            .map_err(io())?;
        TernaryMatrix::decode(&bytes, path)
    }
}

fn wrong_size(path: &Path, len: u64, m: u64, k: u64, want: u64) -> HostError {
    bad(
        path,
        format!("{len} bytes, but a {m}x{k} matrix takes {want}"),
    )
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
        // 6 weights in 2 bytes: the last byte's upper 4 bits are padding.
        let mut b = good.clone();
        b[17] |= 0b10 << 6;
        assert!(err(&b).contains("padding bits"), "{}", err(&b));
        assert!(err(&good[..16]).contains("w.tw"));
    }

    #[test]
    fn reading_stops_at_the_declared_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tw");
        // A header claiming 2^30 entries on a short file: refused from its size alone.
        let mut b = TernaryMatrix {
            m: 1,
            k: 4,
            w: vec![0; 4],
        }
        .encode();
        b[8..12].copy_from_slice(&(1u32 << 15).to_le_bytes());
        b[12..16].copy_from_slice(&(1u32 << 15).to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let e = TernaryMatrix::read(&path).unwrap_err().to_string();
        assert!(e.contains("takes"), "{e}");
        // /dev/zero has no magic: refused after 16 bytes.
        let e = TernaryMatrix::read(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic"), "{e}");
    }
}
