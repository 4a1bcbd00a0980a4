//! The wire protocol between a host and a board over a byte stream (a Unix or TCP
//! socket to `tern serve`, or a USB bulk endpoint pair). Little-endian, versioned.
//!
//! Every frame is a 32-byte header and a payload:
//!
//! | bytes | field | request | reply |
//! |---|---|---|---|
//! | 0..4 | magic `TERN` | | |
//! | 4..6 | version (1) | | |
//! | 6 | opcode | operation | operation \| 0x80 |
//! | 7 | status | 0 | [`Status`] |
//! | 8..12 | tag | chosen by the client | echoed |
//! | 12..16 | reserved, 0 | | |
//! | 16..24 | address | register offset, card address, or wait timeout in ms | 0 |
//! | 24..28 | count | write32 value, DMA read length, or IRQ mask | read32 value or IRQ lines |
//! | 28..32 | payload length | at most [`MAX_PAYLOAD`], checked before any allocation | |
//!
//! Error replies carry a UTF-8 message (at most [`MAX_MESSAGE`] bytes) as payload.
//! After a bad magic, a bad version or an oversize length the stream cannot be trusted:
//! the server sends the error reply and closes. An unknown opcode or a malformed request
//! with a sound header gets an error reply and the connection goes on.

use std::io::Read;

pub const MAGIC: [u8; 4] = *b"TERN";
pub const VERSION: u16 = 1;
pub const HEADER_BYTES: usize = 32;
/// Largest payload of one frame; longer DMAs are split by the client.
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Largest error message or info payload.
pub const MAX_MESSAGE: usize = 4096;
/// Set in the opcode of a reply.
pub const REPLY: u8 = 0x80;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    Info = 1,
    Read32 = 2,
    Write32 = 3,
    DmaWrite = 4,
    DmaRead = 5,
    WaitIrq = 6,
    Reset = 7,
    /// Challenge and proof of the shared token (`auth`): docs/wire.md, "Security".
    Auth = 8,
}

impl Opcode {
    pub fn from_u8(v: u8) -> Option<Opcode> {
        use Opcode::*;
        [
            Info, Read32, Write32, DmaWrite, DmaRead, WaitIrq, Reset, Auth,
        ]
        .into_iter()
        .find(|o| *o as u8 == v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    BadMagic = 1,
    BadVersion = 2,
    UnknownOpcode = 3,
    TooLarge = 4,
    Unaligned = 5,
    OutOfRange = 6,
    Timeout = 7,
    Busy = 8,
    BadRequest = 9,
    BoardError = 10,
    /// The board is held by another client; a waiting connection keeps its place.
    Held = 11,
    /// The server needs the shared token and this connection has not proved it (or
    /// proved it wrong); the connection is closed after this reply.
    Unauthorized = 12,
}

impl Status {
    pub fn from_u8(v: u8) -> Option<Status> {
        use Status::*;
        [
            Ok,
            BadMagic,
            BadVersion,
            UnknownOpcode,
            TooLarge,
            Unaligned,
            OutOfRange,
            Timeout,
            Busy,
            BadRequest,
            BoardError,
            Held,
            Unauthorized,
        ]
        .into_iter()
        .find(|s| *s as u8 == v)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub opcode: u8,
    pub status: u8,
    pub tag: u32,
    pub addr: u64,
    pub count: u32,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("bad magic {0:02x?} (expected \"TERN\")")]
    BadMagic([u8; 4]),
    #[error("protocol version {0} (this side speaks {VERSION})")]
    BadVersion(u16),
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(u32),
    #[error("reserved header bytes are not zero")]
    Reserved,
    #[error("frame truncated: {got} of {want} bytes")]
    Truncated { got: usize, want: usize },
    #[error("stream ended before a frame")]
    Closed,
    #[error("reading the stream: {0}")]
    Io(String),
}

impl WireError {
    /// The status an error reply to this carries.
    pub fn status(&self) -> Status {
        match self {
            WireError::BadMagic(_) => Status::BadMagic,
            WireError::BadVersion(_) => Status::BadVersion,
            WireError::TooLarge(_) => Status::TooLarge,
            _ => Status::BadRequest,
        }
    }
}

impl Header {
    pub fn request(opcode: Opcode, tag: u32, addr: u64, count: u32, len: usize) -> Header {
        Header {
            opcode: opcode as u8,
            status: 0,
            tag,
            addr,
            count,
            len: len as u32,
        }
    }

    /// The header of the reply to a request with `opcode` and `tag`.
    pub fn reply(opcode: u8, tag: u32, status: Status, count: u32, len: usize) -> Header {
        Header {
            opcode: opcode | REPLY,
            status: status as u8,
            tag,
            addr: 0,
            count,
            len: len as u32,
        }
    }

    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut b = [0u8; HEADER_BYTES];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6] = self.opcode;
        b[7] = self.status;
        b[8..12].copy_from_slice(&self.tag.to_le_bytes());
        b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        b[24..28].copy_from_slice(&self.count.to_le_bytes());
        b[28..32].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    /// Decode and validate a header. Never allocates.
    pub fn decode(b: &[u8; HEADER_BYTES]) -> Result<Header, WireError> {
        let magic = [b[0], b[1], b[2], b[3]];
        if magic != MAGIC {
            return Err(WireError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(WireError::BadVersion(version));
        }
        if b[12..16] != [0; 4] {
            return Err(WireError::Reserved);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let len = u32_at(28);
        if len as usize > MAX_PAYLOAD {
            return Err(WireError::TooLarge(len));
        }
        let mut addr = [0u8; 8];
        addr.copy_from_slice(&b[16..24]);
        Ok(Header {
            opcode: b[6],
            status: b[7],
            tag: u32_at(8),
            addr: u64::from_le_bytes(addr),
            count: u32_at(24),
            len,
        })
    }

    /// The tag of a header that failed to decode (for the error reply), if readable.
    pub fn raw_tag(b: &[u8; HEADER_BYTES]) -> u32 {
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }
}

/// A whole frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = self.header.encode().to_vec();
        v.extend_from_slice(&self.payload);
        v
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, WireError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(WireError::Io(e.to_string())),
        }
    }
    Ok(got)
}

/// Read one frame from a blocking reader. The payload is allocated only after its
/// length passed [`Header::decode`]'s bound.
pub fn read_frame(r: &mut impl Read) -> Result<Frame, WireError> {
    let mut h = [0u8; HEADER_BYTES];
    let got = read_full(r, &mut h)?;
    if got == 0 {
        return Err(WireError::Closed);
    }
    if got < HEADER_BYTES {
        return Err(WireError::Truncated {
            got,
            want: HEADER_BYTES,
        });
    }
    let header = Header::decode(&h)?;
    let mut payload = vec![0u8; header.len as usize];
    let got = read_full(r, &mut payload)?;
    if got < payload.len() {
        return Err(WireError::Truncated {
            got: HEADER_BYTES + got,
            want: HEADER_BYTES + payload.len(),
        });
    }
    Ok(Frame { header, payload })
}

/// An error reply's payload: `text` cut to at most [`MAX_MESSAGE`] bytes on a character
/// boundary.
pub(crate) fn message(text: &str) -> &[u8] {
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}

#[cfg(test)]
mod tests {

    /// The worked session in `docs/wire.md` is what this code sends and answers.
    #[test]
    fn the_documented_session_is_byte_exact() {
        let doc = include_str!("../../docs/wire.md");
        let session = &doc[doc.find("## A worked session").expect("section")..];
        // The frames of the first two code blocks, in order, as bytes.
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for block in session.split("```").skip(1).step_by(2).take(2) {
            for line in block.lines() {
                let line = line.trim();
                let (starts, hex) = match line.split_once(' ') {
                    Some((w, rest)) if w == "request" || w == "reply" => (true, rest),
                    _ => (false, line),
                };
                let bytes: Vec<u8> = hex
                    .split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                    .collect();
                if starts {
                    frames.push(bytes);
                } else if let Some(f) = frames.last_mut() {
                    f.extend(bytes);
                }
            }
        }
        let read = Header::request(Opcode::Read32, 1, 0x38, 0, 0);
        assert_eq!(frames[0], read.encode());
        let mut reply = read;
        reply.opcode |= REPLY;
        reply.addr = 0;
        reply.count = crate::regmap::HW_ID_VALUE;
        assert_eq!(frames[1], reply.encode());
        let write = Frame {
            header: Header::request(Opcode::DmaWrite, 2, 0x100, 4, 4),
            payload: vec![1, 2, 3, 4],
        };
        assert_eq!(frames[2], write.encode());
        let mut ok = Header::request(Opcode::DmaWrite, 2, 0, 0, 0);
        ok.opcode |= REPLY;
        assert_eq!(frames[3], ok.encode());
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_header_round_trips_and_its_layout_is_little_endian() {
        let h = Header::request(Opcode::DmaRead, 0xA1B2C3D4, 0x1122_3344_5566_7788, 64, 0);
        let b = h.encode();
        assert_eq!(&b[0..4], b"TERN");
        assert_eq!(b[4], 1);
        assert_eq!(b[6], 5);
        assert_eq!(&b[8..12], &[0xD4, 0xC3, 0xB2, 0xA1]);
        assert_eq!(b[16], 0x88);
        assert_eq!(Header::decode(&b), Ok(h));
    }

    #[test]
    fn each_malformed_header_is_named() {
        let good = Header::request(Opcode::Info, 7, 0, 0, 0).encode();
        let mut b = good;
        b[0] = b'X';
        assert!(matches!(Header::decode(&b), Err(WireError::BadMagic(_))));
        let mut b = good;
        b[4] = 9;
        assert_eq!(Header::decode(&b), Err(WireError::BadVersion(9)));
        let mut b = good;
        b[28..32].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Header::decode(&b), Err(WireError::TooLarge(u32::MAX)));
        let mut b = good;
        b[13] = 1;
        assert_eq!(Header::decode(&b), Err(WireError::Reserved));
        // A frame shorter than its header says.
        let mut f = Header::request(Opcode::DmaWrite, 1, 0, 8, 8)
            .encode()
            .to_vec();
        f.extend_from_slice(&[1, 2, 3]);
        assert_eq!(
            read_frame(&mut f.as_slice()),
            Err(WireError::Truncated { got: 35, want: 40 })
        );
        assert_eq!(read_frame(&mut &[][..]), Err(WireError::Closed));
        assert!(matches!(
            read_frame(&mut &good[..10]),
            Err(WireError::Truncated { got: 10, .. })
        ));
    }

    /// Arbitrary bytes; half of them start with a valid magic and version, and half of
    /// those also have a small payload length, so the decoder's later checks are reached.
    fn frame_like_bytes() -> impl Strategy<Value = Vec<u8>> {
        (proptest::collection::vec(any::<u8>(), 0..96), 0u8..4).prop_map(|(mut v, shape)| {
            if shape >= 2 && v.len() >= 6 {
                v[..4].copy_from_slice(&MAGIC);
                v[4..6].copy_from_slice(&VERSION.to_le_bytes());
                if shape == 3 && v.len() >= 32 {
                    v[12..16].fill(0);
                    v[28] %= 80;
                    v[29..32].fill(0);
                }
            }
            v
        })
    }

    proptest! {
        // The decoder's fuzz target: arbitrary bytes never panic, never allocate more
        // than the bytes at hand allow past the bound, and whatever decodes re-encodes
        // to the bytes it came from.
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_bytes_decode_to_a_frame_or_a_typed_error(bytes in frame_like_bytes()) {
            match read_frame(&mut bytes.as_slice()) {
                Ok(frame) => {
                    let again = frame.encode();
                    prop_assert_eq!(&again[..], &bytes[..again.len()]);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn valid_headers_with_arbitrary_fields_round_trip(op in any::<u8>(), st in any::<u8>(), tag in any::<u32>(),
                addr in any::<u64>(), count in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let frame = Frame { header: Header { opcode: op, status: st, tag, addr, count, len: payload.len() as u32 }, payload };
            let bytes = frame.encode();
            prop_assert_eq!(read_frame(&mut bytes.as_slice()), Ok(frame));
        }
    }
}
