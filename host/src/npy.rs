//! NumPy `.npy` arrays (format 1.0), the files `tern run` takes activations from and
//! writes its inputs and results to, so any run can be checked with NumPy or another
//! tool. Only what tern needs: C-order arrays of `int8` (`|i1`), `int32` (`<i4`) or
//! `int64` (`<i8`), read with every length checked before anything is allocated.
//!
//! Layout: magic `\x93NUMPY`, version 1.0, u16 little-endian header length, an ASCII
//! Python dict `{'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and a newline so the data starts on a multiple of 64 bytes, then the data.

use std::io::Read;
use std::path::Path;

use crate::error::{HostError, Result};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Largest header read (the format's 1.0 limit is 65,535 bytes).
const MAX_HEADER: usize = 1 << 16;
/// Largest array read: 1 GiB of data.
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// Element types tern reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    I8,
    I32,
    I64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::I8 => "|i1",
            Dtype::I32 => "<i4",
            Dtype::I64 => "<i8",
        }
    }
    fn bytes(self) -> usize {
        match self {
            Dtype::I8 => 1,
            Dtype::I32 => 4,
            Dtype::I64 => 8,
        }
    }
    fn parse(descr: &str) -> Option<Dtype> {
        match descr {
            "|i1" | "<i1" | "i1" => Some(Dtype::I8),
            "<i4" => Some(Dtype::I32),
            "<i8" => Some(Dtype::I64),
            _ => None,
        }
    }
}

/// An integer array: its shape and its values widened to i64, C order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub values: Vec<i64>,
}

/// The bytes of a `.npy` file holding `values` (which must fit `dtype`) with `shape`.
pub fn encode(dtype: Dtype, shape: &[usize], values: &[i64]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        values.len(),
        "shape and data disagree"
    );
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        match dtype {
            Dtype::I8 => out.push(v as i8 as u8),
            Dtype::I32 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            Dtype::I64 => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// Write an array to `path` (temporary name, then renamed: a crash leaves no half file).
pub fn write(path: &Path, dtype: Dtype, shape: &[usize], values: &[i64]) -> Result<()> {
    let tmp = path.with_extension("npy.tmp");
    let ctx = |what: &str| crate::error::io(format!("{what} {}", path.display()));
    std::fs::write(&tmp, encode(dtype, shape, values)).map_err(ctx("writing"))?;
    std::fs::rename(&tmp, path).map_err(ctx("renaming into"))?;
    Ok(())
}

fn bad(origin: &str, what: impl std::fmt::Display) -> HostError {
    HostError::Shape(format!("{origin}: not a .npy array tern can read: {what}"))
}

/// The value of `'key':` in a header dict, up to the next top-level comma or brace.
fn field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))?;
    let rest = header[at + key.len() + 2..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some(tuple) = rest.strip_prefix('(') {
        return Some(&tuple[..tuple.find(')')?]);
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

/// Parse a `.npy` file's bytes; `origin` names it in errors.
pub fn decode(bytes: &[u8], origin: &str) -> Result<Array> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(origin, "no NUMPY magic"));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(origin, format!("format version {v}"))),
    };
    if header_len > MAX_HEADER || header_start + header_len > bytes.len() {
        return Err(bad(origin, format!("header of {header_len} bytes")));
    }
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len])
        .map_err(|_| bad(origin, "header is not text"))?;
    let descr = field(header, "descr")
        .map(|d| d.trim_matches(['\'', '"']))
        .ok_or_else(|| bad(origin, "no 'descr'"))?;
    let dtype = Dtype::parse(descr).ok_or_else(|| {
        bad(
            origin,
            format!("element type '{descr}' (tern reads int8, little-endian int32 and int64)"),
        )
    })?;
    match field(header, "fortran_order") {
        Some("False") => {}
        Some("True") => return Err(bad(origin, "Fortran order (write it in C order)")),
        _ => return Err(bad(origin, "no 'fortran_order'")),
    }
    let shape_text = field(header, "shape").ok_or_else(|| bad(origin, "no 'shape'"))?;
    let mut shape = vec![];
    for dim in shape_text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        shape.push(
            dim.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad(origin, format!("shape entry `{dim}`")))?,
        );
    }
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n.saturating_mul(dtype.bytes() as u64) <= MAX_DATA_BYTES)
        .ok_or_else(|| {
            bad(
                origin,
                format!("shape {shape:?} is larger than {MAX_DATA_BYTES} bytes"),
            )
        })? as usize;
    let data = &bytes[header_start + header_len..];
    if data.len() != count * dtype.bytes() {
        return Err(bad(
            origin,
            format!(
                "shape {shape:?} of {descr} needs {} data bytes, the file has {}",
                count * dtype.bytes(),
                data.len()
            ),
        ));
    }
    let values = match dtype {
        Dtype::I8 => data.iter().map(|&b| i64::from(b as i8)).collect(),
        Dtype::I32 => data
            .chunks_exact(4)
            .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    Ok(Array {
        dtype,
        shape,
        values,
    })
}

/// Read a `.npy` file (at most [`MAX_DATA_BYTES`] of data plus a header).
pub fn read(path: &Path) -> Result<Array> {
    let origin = path.display().to_string();
    let file = std::fs::File::open(path).map_err(crate::error::io(format!("opening {origin}")))?;
    let limit = MAX_DATA_BYTES + MAX_HEADER as u64 + 16;
    let mut bytes = vec![];
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(crate::error::io(format!("reading {origin}")))?;
    if bytes.len() as u64 > limit {
        return Err(bad(&origin, format!("larger than {limit} bytes")));
    }
    decode(&bytes, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_with_64_byte_aligned_data() {
        for (dtype, shape, values) in [
            (Dtype::I8, vec![2, 3], vec![-128, -1, 0, 1, 2, 127]),
            (
                Dtype::I32,
                vec![4],
                vec![i64::from(i32::MIN), -5, 0, i64::from(i32::MAX)],
            ),
            (Dtype::I64, vec![1, 2, 2], vec![i64::MIN, -1, 7, i64::MAX]),
        ] {
            let bytes = encode(dtype, &shape, &values);
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            let back = decode(&bytes, "test").unwrap();
            assert_eq!(
                (back.dtype, back.shape, back.values),
                (dtype, shape, values)
            );
        }
    }

    #[test]
    fn numpy_written_headers_parse() {
        // As numpy 1.26 writes `np.save(f, np.zeros((2, 3), np.int8))`, and a 1-D shape.
        let mut bytes = MAGIC.to_vec();
        let header = "{'descr': '|i1', 'fortran_order': False, 'shape': (2, 3), }";
        let padded = format!("{header:<117}\n");
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(padded.len() as u16).to_le_bytes());
        bytes.extend_from_slice(padded.as_bytes());
        bytes.extend_from_slice(&[0; 6]);
        assert_eq!(decode(&bytes, "t").unwrap().shape, vec![2, 3]);
        let one_d = encode(Dtype::I64, &[5], &[1, 2, 3, 4, 5]);
        assert!(String::from_utf8_lossy(&one_d).contains("'shape': (5,)"));
        assert_eq!(decode(&one_d, "t").unwrap().shape, vec![5]);
    }

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn damaged_or_foreign_files_are_refused_with_the_reason() {
        let good = encode(Dtype::I8, &[2, 2], &[1, 2, 3, 4]);
        let dict = |descr: &str, fortran: &str, shape: &str| {
            format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n")
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04".to_vec(), "magic"),
            (good[..good.len() - 1].to_vec(), "needs 4 data bytes"),
            ([good.clone(), vec![0]].concat(), "needs 4 data bytes"),
            (file(&dict("<f4", "False", "(1,)"), &[0; 4]), "element type"),
            (file(&dict("|i1", "True", "(2, 2)"), &[0; 4]), "Fortran"),
            (
                file(&dict("<i8", "False", "(99999999999, 99999999999)"), &[]),
                "larger than",
            ),
            (file(&dict("|i1", "False", "(2, x)"), &[]), "shape entry"),
            (file("{'descr': '|i1', ", &[]), "fortran_order"),
        ];
        for (bytes, reason) in cases {
            let err = decode(&bytes, "x.npy").unwrap_err().to_string();
            assert!(
                err.contains("x.npy") && err.contains(reason),
                "{reason}: {err}"
            );
        }
    }

    /// A valid file damaged in one of a few ways: a byte flipped, cut short, a digit of
    /// the header changed or lengthened, or bytes appended.
    fn damaged_npy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        (0usize..4, any::<u64>(), any::<u8>(), 1usize..40).prop_map(|(how, at, byte, n)| {
            let mut v = encode(Dtype::I32, &[3, 2], &[1, -2, 3, -4, 5, -6]);
            let i = (at % v.len() as u64) as usize;
            match how {
                0 => v[i] ^= byte | 1,
                1 => v.truncate(i),
                2 => {
                    let digits: Vec<usize> = (10..64).filter(|&j| v[j].is_ascii_digit()).collect();
                    let j = digits[i % digits.len()];
                    v.splice(j..j, std::iter::repeat_n(b'9', n));
                }
                _ => v.extend(std::iter::repeat_n(byte, n)),
            }
            v
        })
    }

    proptest::proptest! {
        // The reader's fuzz target, kept in CI: damaged files decode to an array whose
        // shape accounts for every value, or to an error naming the file; never a panic
        // and never an allocation beyond the bytes at hand.
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2048, ..Default::default() })]
        #[test]
        fn damaged_files_decode_or_are_refused_by_name(bytes in damaged_npy()) {
            match decode(&bytes, "fuzz.npy") {
                Ok(a) => {
                    proptest::prop_assert_eq!(a.shape.iter().product::<usize>(), a.values.len());
                    proptest::prop_assert!(a.values.len() <= bytes.len());
                }
                Err(e) => proptest::prop_assert!(e.to_string().contains("fuzz.npy")),
            }
        }
    }
}
