//! The XDMA backend against a FUSE stand-in for the `dma_ip_drivers` character devices.
//!
//! The stand-in mounts a directory holding `xdma0_user`, `xdma0_h2c_0`, `xdma0_c2h_0`
//! and `xdma0_events_0` and gives them the driver's semantics: 4-byte register access
//! at the BAR offset, DMA at the card address, a blocking 4-byte events read, and
//! `EPROTO` for a misaligned access. Behind it is the same Verilator model of the top
//! the other backends run. Needs `/dev/fuse` and `fusermount3` (Debian's fuse3).

mod common;

use common::*;
use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use fuser::{
    Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyWrite, Request,
};
use tern_host::sim::SimBoard;
use tern_host::stand_in::{file_attr, list_files};
use tern_host::xdma::XdmaTransport;
use tern_host::{Device, HostError, Transport};

const TTL: Duration = Duration::from_secs(1);
const FILES: [&str; 4] = ["xdma0_user", "xdma0_h2c_0", "xdma0_c2h_0", "xdma0_events_0"];
const USER: u64 = 2;
const H2C: u64 = 3;
const C2H: u64 = 4;
const EVENTS: u64 = 5;
/// How long one events read blocks before answering "no events yet" (0).
const EVENTS_WAIT: Duration = Duration::from_millis(500);

struct XdmaStandIn {
    board: SimBoard,
}

/// The driver's errno for a board error.
fn errno(e: &HostError) -> i32 {
    match e {
        HostError::Unaligned { .. } => libc::EPROTO,
        HostError::OutOfRange { .. } => libc::ENXIO,
        HostError::Busy => libc::EBUSY,
        HostError::Timeout { .. } => libc::ETIMEDOUT,
        _ => libc::EIO,
    }
}

impl Filesystem for XdmaStandIn {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match FILES.iter().position(|f| OsStr::new(f) == name) {
            Some(i) if parent == fuser::FUSE_ROOT_ID => {
                reply.entry(&TTL, &file_attr(i as u64 + 2, 0), 0)
            }
            _ => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        if ino == fuser::FUSE_ROOT_ID || (USER..=EVENTS).contains(&ino) {
            reply.attr(&TTL, &file_attr(ino, 0));
        } else {
            reply.error(libc::ENOENT);
        }
    }

    fn open(&mut self, _req: &Request<'_>, _ino: u64, _flags: i32, reply: ReplyOpen) {
        // Direct I/O: every pread/pwrite reaches the "driver" with its offset and size.
        reply.opened(0, fuser::consts::FOPEN_DIRECT_IO);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        offset: i64,
        reply: ReplyDirectory,
    ) {
        let files: Vec<(u64, &str)> = (USER..).zip(FILES).collect();
        list_files(reply, offset, &files);
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyData,
    ) {
        let offset = offset as u64;
        let misaligned = !offset.is_multiple_of(4) || !size.is_multiple_of(4);
        match ino {
            USER if misaligned || size != 4 => reply.error(libc::EPROTO),
            USER => match self.board.read32(offset) {
                Ok(v) => reply.data(&v.to_le_bytes()),
                Err(e) => reply.error(errno(&e)),
            },
            C2H if misaligned => reply.error(libc::EPROTO),
            C2H => {
                let mut out = vec![0u8; size as usize];
                match self.board.dma_read(offset, &mut out) {
                    Ok(()) => reply.data(&out),
                    Err(e) => reply.error(errno(&e)),
                }
            }
            EVENTS if size != 4 => reply.error(libc::EPROTO),
            EVENTS => match self.board.wait_irq(1, EVENTS_WAIT) {
                Ok(_) => reply.data(&1u32.to_le_bytes()),
                Err(HostError::Timeout { .. }) => reply.data(&0u32.to_le_bytes()),
                Err(e) => reply.error(errno(&e)),
            },
            _ => reply.error(libc::EBADF),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyWrite,
    ) {
        let offset = offset as u64;
        let misaligned = !offset.is_multiple_of(4) || !data.len().is_multiple_of(4);
        let result = match ino {
            USER if misaligned || data.len() != 4 => Err(libc::EPROTO),
            USER => self
                .board
                .write32(
                    offset,
                    u32::from_le_bytes([data[0], data[1], data[2], data[3]]),
                )
                .map_err(|e| errno(&e)),
            H2C if misaligned => Err(libc::EPROTO),
            H2C => self.board.dma_write(offset, data).map_err(|e| errno(&e)),
            _ => Err(libc::EBADF),
        };
        match result {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(e),
        }
    }
}

/// The stand-in mounted on a temporary directory; unmounted on drop (the mount first).
struct Mounted {
    _mount: tern_host::stand_in::Mounted,
    dir: tempfile::TempDir,
}

impl Mounted {
    fn prefix(&self) -> PathBuf {
        self.dir.path().join("xdma0")
    }
}

/// Mount the stand-in, or None (with a note) where this machine has no FUSE.
fn mount(cfg: &tern_hdl::Config) -> Option<Mounted> {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg.clone();
    // The Verilator model lives on the thread that serves the file system.
    let make = move || XdmaStandIn {
        board: SimBoard::new(&cfg, &cache(), None, None).unwrap(),
    };
    let mount = tern_host::stand_in::mount(make, dir.path(), "tern-xdma", "the XDMA stand-in")?;
    Some(Mounted { _mount: mount, dir })
}

#[test]
fn xdma_through_the_fuse_stand_in_matches_golden() {
    let cfg = config(3, 24);
    let Some(m) = mount(&cfg) else { return };
    let t = XdmaTransport::open(&m.prefix(), 0).unwrap();
    let mut dev = Device::attach(Box::new(t), &cfg, &options()).unwrap();
    assert!(dev.info().description.starts_with("xdma:"));
    gemm_matches_golden(&mut dev, &cfg, "xdma (FUSE stand-in)");
}

#[test]
fn xdma_misaligned_access_is_eproto_and_a_typed_error() {
    let cfg = config(3, 24);
    let Some(m) = mount(&cfg) else { return };
    let prefix = m.prefix();
    let user = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("{}_user", prefix.display()))
        .unwrap();
    // The driver's own answer to a misaligned register access.
    let e = user.read_at(&mut [0u8; 4], 2).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPROTO), "{e}");
    let e = user.write_at(&[0u8; 2], 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPROTO), "{e}");
    let h2c = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("{}_h2c_0", prefix.display()))
        .unwrap();
    let e = h2c.write_at(&[0u8; 8], 6).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPROTO), "{e}");
    // Through the transport: typed errors, and it still works afterwards.
    let mut t = XdmaTransport::open(&prefix, 0).unwrap();
    let card = t.info().unwrap().card_bytes;
    assert!(matches!(t.read32(6), Err(HostError::Unaligned { .. })));
    assert!(matches!(
        t.dma_read(card, &mut [0u8; 4]),
        Err(HostError::OutOfRange { .. })
    ));
    assert!(matches!(t.reset(), Err(HostError::Unsupported(_))));
    let e = t.wait_irq(1, Duration::from_millis(700)).unwrap_err();
    assert!(matches!(e, HostError::Timeout { .. }), "{e}");
    assert_eq!(
        t.read32(tern_host::regmap::HW_ID.into()).unwrap(),
        tern_host::regmap::HW_ID_VALUE
    );
}
