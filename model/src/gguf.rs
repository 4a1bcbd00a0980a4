//! The GGUF container (versions 2 and 3), as llama.cpp and bitnet.cpp write it
//! (docs/files.md, "GGUF checkpoints"): a header, typed metadata, tensor descriptions,
//! then the tensors' bytes, each at an offset aligned to `general.alignment`.
//!
//! Reading is bounded by the file: every count and length is checked against the bytes
//! that are left before anything is allocated for it, so a damaged file is an error
//! naming the key or tensor, never a panic or an allocation beyond the file's size.
//! The tensor types tern reads, and what a ternary matrix means in each, are in
//! [`crate::checkpoint`].

use std::collections::BTreeMap;

/// The first four bytes.
pub const MAGIC: &[u8; 4] = b"GGUF";
/// `general.alignment` when a file does not set it.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of arrays read (llama.cpp writes arrays of scalars or strings).
const MAX_ARRAY_DEPTH: usize = 2;
/// Most dimensions a tensor has in ggml.
const MAX_DIMS: usize = 4;

/// ggml tensor types tern reads (ids as in ggml.h; I2_S is bitnet.cpp's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    Bf16,
    /// llama.cpp: 256 weights in 54 bytes, 5 trits a byte, an f16 scale per block.
    Tq1_0,
    /// llama.cpp: 256 weights in 66 bytes, 2 bits each, an f16 scale per block.
    Tq2_0,
    /// bitnet.cpp: 2 bits a weight in blocks of 128, then one f32 scale (32 bytes).
    I2S,
}

impl TensorType {
    pub fn id(self) -> u32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Bf16 => 30,
            TensorType::Tq1_0 => 34,
            TensorType::Tq2_0 => 35,
            TensorType::I2S => 36,
        }
    }

    fn of(id: u32) -> Option<TensorType> {
        [
            TensorType::F32,
            TensorType::F16,
            TensorType::Bf16,
            TensorType::Tq1_0,
            TensorType::Tq2_0,
            TensorType::I2S,
        ]
        .into_iter()
        .find(|t| t.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            TensorType::F32 => "F32",
            TensorType::F16 => "F16",
            TensorType::Bf16 => "BF16",
            TensorType::Tq1_0 => "TQ1_0",
            TensorType::Tq2_0 => "TQ2_0",
            TensorType::I2S => "I2_S",
        }
    }

    /// Bytes of `n` elements; None when `n` does not fill whole blocks.
    pub fn bytes(self, n: u64) -> Option<u64> {
        match self {
            TensorType::F32 => n.checked_mul(4),
            TensorType::F16 | TensorType::Bf16 => n.checked_mul(2),
            TensorType::Tq1_0 => n.is_multiple_of(256).then_some(n / 256 * 54),
            TensorType::Tq2_0 => n.is_multiple_of(256).then_some(n / 256 * 66),
            TensorType::I2S => n.is_multiple_of(4).then_some(n / 4 + 32),
        }
    }
}

/// The name of a ggml type tern does not read, for errors.
pub fn other_type_name(id: u32) -> String {
    const NAMES: [&str; 30] = [
        "F32", "F16", "Q4_0", "Q4_1", "type 4", "type 5", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
        "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL",
        "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
    ];
    match NAMES.get(id as usize) {
        Some(n) => format!("{n} (type {id})"),
        None => format!("type {id}"),
    }
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Uint(u64),
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Value>),
}

impl Value {
    /// A non-negative integer, whatever its stored width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::Float(v) => Some(v),
            Value::Uint(v) => Some(v as f64),
            Value::Int(v) => Some(v as f64),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's description. `dims` are ggml's: the innermost (a row's length) first.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    /// None: a type tern does not read (`type_id` names it).
    pub kind: Option<TensorType>,
    pub type_id: u32,
    /// The tensor's bytes within the file (checked to lie inside it).
    pub data: std::ops::Range<usize>,
}

impl TensorInfo {
    pub fn elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file over its bytes.
#[derive(Debug)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
}

impl Gguf {
    /// The metadata alone, from the start of a file (a vocabulary is read without the
    /// tensors' bytes).
    pub fn parse_metadata(bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
        let mut r = Cursor { bytes, at: 0 };
        Ok(Gguf::header(&mut r)?.1)
    }

    /// The header and metadata; the cursor left at the tensor descriptions, whose count
    /// is returned.
    fn header(r: &mut Cursor<'_>) -> Result<(u32, BTreeMap<String, Value>, u64), String> {
        if r.take(4, "the magic")? != MAGIC {
            return Err("does not start with GGUF".into());
        }
        let version = r.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(format!(
                "GGUF version {version}; tern reads versions 2 and 3"
            ));
        }
        let tensor_count = r.u64("the tensor count")?;
        let kv_count = r.u64("the metadata count")?;
        // Each metadata entry takes at least 13 bytes, each tensor description 24.
        r.fits(kv_count, 13, "metadata entries")?;
        r.fits(tensor_count, 24, "tensor descriptions")?;
        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            let key = r.string(&format!("metadata entry {i}'s key"))?;
            let ty = r.u32(&format!("`{key}`'s type"))?;
            let value = r.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(format!("metadata key `{key}` appears twice"));
            }
        }
        Ok((version, metadata, tensor_count))
    }

    /// Parse `bytes`; the error says what is wrong and where (a key, a tensor, an offset).
    pub fn parse(bytes: &[u8]) -> Result<Gguf, String> {
        let mut r = Cursor { bytes, at: 0 };
        let (version, metadata, tensor_count) = Gguf::header(&mut r)?;
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_u64() {
                Some(a) if a.is_power_of_two() && a <= 1 << 16 => a,
                _ => return Err(format!("`general.alignment` = {v:?}: not a power of two")),
            },
        };
        let mut raw = Vec::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            let name = r.string(&format!("tensor {i}'s name"))?;
            let n_dims = r.u32(&format!("tensor `{name}`'s dimension count"))? as usize;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(format!(
                    "tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS})"
                ));
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(r.u64(&format!("tensor `{name}`'s dimensions"))?);
            }
            let type_id = r.u32(&format!("tensor `{name}`'s type"))?;
            let offset = r.u64(&format!("tensor `{name}`'s offset"))?;
            raw.push((name, dims, type_id, offset));
        }
        let start = (r.at as u64).next_multiple_of(alignment);
        let data_len = (bytes.len() as u64).saturating_sub(start);
        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(raw.len());
        for (name, dims, type_id, offset) in raw {
            if tensors.iter().any(|t| t.name == name) {
                return Err(format!("tensor `{name}` appears twice"));
            }
            if !offset.is_multiple_of(alignment) {
                return Err(format!(
                    "tensor `{name}`: offset {offset} is not a multiple of the alignment {alignment}"
                ));
            }
            let elements = dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(d))
                .ok_or_else(|| format!("tensor `{name}`: dimensions {dims:?} overflow"))?;
            let kind = TensorType::of(type_id);
            // A type tern does not read is sized 0 here: it is refused by name where used.
            let size = match kind {
                Some(k) => k.bytes(elements).ok_or_else(|| {
                    format!(
                        "tensor `{name}`: {elements} elements do not fill whole {} blocks",
                        k.name()
                    )
                })?,
                None => 0,
            };
            let end = offset.checked_add(size).filter(|&e| e <= data_len);
            let Some(end) = end else {
                return Err(format!(
                    "tensor `{name}` ({} of {dims:?}) needs bytes {offset}..{} of the data, \
                     but the file holds {data_len} (truncated?)",
                    kind.map_or_else(|| other_type_name(type_id), |k| k.name().into()),
                    offset.saturating_add(size)
                ));
            };
            tensors.push(TensorInfo {
                name,
                dims,
                kind,
                type_id,
                data: (start + offset) as usize..(start + end) as usize,
            });
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!(
                "{what} at byte {} runs past the end of the file ({} bytes)",
                self.at,
                self.bytes.len()
            ));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    /// `count` items of at least `min_bytes` each must fit in what is left.
    fn fits(&self, count: u64, min_bytes: u64, what: &str) -> Result<(), String> {
        if count.saturating_mul(min_bytes) > self.left() as u64 {
            return Err(format!(
                "{count} {what} cannot fit in the {} bytes left at byte {}",
                self.left(),
                self.at
            ));
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.left())
            .ok_or_else(|| format!("{what}: a string of {n} bytes runs past the end"))?;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value, String> {
        let what = format!("`{key}`");
        Ok(match ty {
            0 => Value::Uint(u64::from(self.array::<1>(&what)?[0])),
            1 => Value::Int(i64::from(self.array::<1>(&what)?[0] as i8)),
            2 => Value::Uint(u64::from(u16::from_le_bytes(self.array(&what)?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.array(&what)?))),
            4 => Value::Uint(u64::from(self.u32(&what)?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.array(&what)?))),
            // An f32 is read as the shortest decimal that gives it back (`1e-5`, not
            // 9.99999974e-6): the value the writer meant, as config.json would hold it.
            6 => {
                let f = f32::from_le_bytes(self.array(&what)?);
                Value::Float(f.to_string().parse().unwrap_or(f64::from(f)))
            }
            7 => match self.array::<1>(&what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{what}: bool byte {b} is neither 0 nor 1")),
            },
            8 => Value::Str(self.string(&what)?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(format!(
                        "{what}: arrays nested deeper than {MAX_ARRAY_DEPTH}"
                    ));
                }
                let inner = self.u32(&what)?;
                let n = self.u64(&what)?;
                // Every element takes at least one byte (a string 8, an array 12).
                let min = match inner {
                    8 => 8,
                    9 => 12,
                    10..=12 => 8,
                    4..=6 => 4,
                    2 | 3 => 2,
                    _ => 1,
                };
                self.fits(n, min, &format!("elements of {what}"))?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(inner, key, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::Uint(self.u64(&what)?),
            11 => Value::Int(i64::from_le_bytes(self.array(&what)?)),
            12 => Value::Float(f64::from_le_bytes(self.array(&what)?)),
            t => {
                return Err(format!(
                    "{what} has value type {t}, which GGUF does not define"
                ))
            }
        })
    }
}

/// Writes a GGUF v3 file: metadata, then tensors (their types and bytes given).
#[derive(Default)]
pub struct Writer {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, TensorType, Vec<u8>)>,
}

impl Writer {
    pub fn meta(&mut self, key: &str, value: Value) {
        self.metadata.push((key.into(), value));
    }

    /// `dims` in ggml's order (a row's length first).
    pub fn tensor(&mut self, name: &str, dims: Vec<u64>, kind: TensorType, bytes: Vec<u8>) {
        debug_assert_eq!(kind.bytes(dims.iter().product()), Some(bytes.len() as u64));
        self.tensors.push((name.into(), dims, kind, bytes));
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        for (key, value) in &self.metadata {
            string(&mut out, key);
            write_value(&mut out, value, true);
        }
        let mut offset = 0u64;
        for (name, dims, kind, bytes) in &self.tensors {
            string(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            dims.iter()
                .for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
            out.extend_from_slice(&kind.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + bytes.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT);
        }
        for (_, _, _, bytes) in &self.tensors {
            out.resize(
                (out.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT) as usize,
                0,
            );
            out.extend_from_slice(bytes);
        }
        out
    }
}

/// A value with its type tag (when `tagged`; array elements share the array's).
fn write_value(out: &mut Vec<u8>, value: &Value, tagged: bool) {
    let tag = |out: &mut Vec<u8>, t: u32| {
        if tagged {
            out.extend_from_slice(&t.to_le_bytes())
        }
    };
    match value {
        Value::Uint(v) => {
            tag(out, 4);
            out.extend_from_slice(&(*v as u32).to_le_bytes());
        }
        Value::Int(v) => {
            tag(out, 5);
            out.extend_from_slice(&(*v as i32).to_le_bytes());
        }
        Value::Float(v) => {
            tag(out, 6);
            out.extend_from_slice(&(*v as f32).to_le_bytes());
        }
        Value::Bool(v) => {
            tag(out, 7);
            out.push(u8::from(*v));
        }
        Value::Str(s) => {
            tag(out, 8);
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Array(items) => {
            tag(out, 9);
            let inner = match items.first() {
                Some(Value::Uint(_)) | None => 4u32,
                Some(Value::Int(_)) => 5,
                Some(Value::Float(_)) => 6,
                Some(Value::Bool(_)) => 7,
                Some(Value::Str(_)) => 8,
                Some(Value::Array(_)) => 9,
            };
            out.extend_from_slice(&inner.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for v in items {
                write_value(out, v, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_parses_back() {
        let mut w = Writer::default();
        w.meta("general.architecture", Value::Str("bitnet-b1.58".into()));
        w.meta("x.count", Value::Uint(7));
        w.meta("x.eps", Value::Float(1e-5));
        w.meta(
            "x.tokens",
            Value::Array(vec![Value::Str("a".into()), Value::Str("bc".into())]),
        );
        w.tensor("t", vec![3, 2], TensorType::F32, vec![1; 24]);
        w.tensor("q", vec![128], TensorType::I2S, vec![2; 64]);
        let bytes = w.to_bytes();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(g.metadata["x.count"], Value::Uint(7));
        assert_eq!(g.metadata["x.eps"].as_f64(), Some(1e-5));
        assert_eq!(
            g.metadata["x.tokens"],
            Value::Array(vec![Value::Str("a".into()), Value::Str("bc".into())])
        );
        let t = g.tensor("t").unwrap();
        assert_eq!(
            (t.dims.clone(), t.kind),
            (vec![3, 2], Some(TensorType::F32))
        );
        assert_eq!(&bytes[t.data.clone()], &[1; 24]);
        let q = g.tensor("q").unwrap();
        assert_eq!(q.data.start % 32, 0);
        assert_eq!(&bytes[q.data.clone()], &[2; 64]);
    }

    #[test]
    fn counts_and_lengths_beyond_the_file_are_refused_before_allocating() {
        let mut w = Writer::default();
        w.meta("k", Value::Str("v".into()));
        w.tensor("t", vec![4], TensorType::F32, vec![0; 16]);
        let good = w.to_bytes();
        // The metadata count, then the key's length, made huge.
        let mut bad = good.clone();
        bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Gguf::parse(&bad).unwrap_err().contains("cannot fit"));
        let mut bad = good.clone();
        bad[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(Gguf::parse(&bad).unwrap_err().contains("runs past the end"));
        // Truncated data.
        let err = Gguf::parse(&good[..good.len() - 4]).unwrap_err();
        assert!(
            err.contains("tensor `t`") && err.contains("truncated"),
            "{err}"
        );
        let err = Gguf::parse(b"GGML\x03\0\0\0").unwrap_err();
        assert!(err.contains("GGUF"), "{err}");
    }
}
