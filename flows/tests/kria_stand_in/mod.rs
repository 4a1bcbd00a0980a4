//! A stand-in for a Kria board's device files, with the kernel drivers' semantics, in
//! front of the simulated one top (`ShellBoard`) with its memory at the buffer's bus
//! address:
//!
//! - `ROOT/sys/class/uio/uio{0,1}/...` and `ROOT/sys/class/u-dma-buf/tern_memory/...`:
//!   plain files holding what the kernel prints there (`%pa`, `%pad`, `%zu`);
//! - `ROOT/dev/uio1` (FUSE): `uio_pdrv_genirq`'s interrupt file. A 4-byte write of 1
//!   unmasks the line, a 4-byte read blocks until it fires and returns the event count;
//!   the line is masked again when it fires, so a read while masked would wait for ever
//!   (here: EIO, so a driver that forgets to unmask fails instead of hanging);
//! - `ROOT/dev/tern_memory` (FUSE): u-dma-buf's buffer, `pread`/`pwrite` at the offset,
//!   short at its end. A handle opened without `O_SYNC` gets EIO: through it the real
//!   driver would not sync the ARM's caches with what the fabric reads.
//!
//! The registers cannot be a file here: a FUSE file's `mmap` is the page cache, with none
//! of a register's side effects. [`Registers`] stands in for the mapping instead, as
//! one more client of the same board. Needs `/dev/fuse` and `fusermount3`.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

use fuser::{
    Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen, ReplyWrite, Request,
};
use tern_host::kria::RegisterWindow;
use tern_host::one_top::ShellBoard;
use tern_host::stand_in::{file_attr, list_files};
use tern_host::Transport;

/// The UIO device the accelerator is, among others the sysfs lists.
pub const UIO_NODE: &str = "uio1";
pub const BUFFER: &str = "tern_memory";
const TTL: Duration = Duration::from_secs(1);
const UIO_INO: u64 = 2;
const BUFFER_INO: u64 = 3;
/// Longest a pass may take before the interrupt read gives up.
const PASS_WAIT: Duration = Duration::from_secs(600);

type Job = Box<dyn FnOnce(&mut ShellBoard) + Send>;

/// The simulated board on a thread of its own (its Verilator model stays on the thread
/// that made it); every client sends it work.
#[derive(Clone)]
pub struct Board(Sender<Job>);

impl Board {
    fn spawn(make: impl FnOnce() -> ShellBoard + Send + 'static) -> Board {
        let (tx, rx) = channel::<Job>();
        std::thread::spawn(move || {
            let mut board = make();
            for job in rx {
                job(&mut board);
            }
        });
        Board(tx)
    }

    pub fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ShellBoard) -> R + Send + 'static,
    ) -> R {
        let (tx, rx) = channel();
        self.0
            .send(Box::new(move |b| {
                let _ = tx.send(f(b));
            }))
            .expect("the board's thread ended");
        rx.recv().expect("the board's thread ended")
    }
}

/// The register window as the mapping of `/dev/uio1` would give it.
pub struct Registers(pub Board);

impl RegisterWindow for Registers {
    fn read32(&mut self, offset: u32) -> u32 {
        self.0.with(move |b| b.read32(offset.into()).unwrap())
    }
    fn write32(&mut self, offset: u32, value: u32) {
        self.0
            .with(move |b| b.write32(offset.into(), value).unwrap())
    }
}

/// What the stand-in saw, for the test to check.
#[derive(Default)]
pub struct Seen {
    pub interrupts: AtomicU32,
    pub unmasks: AtomicU32,
}

struct DeviceFiles {
    board: Board,
    buffer_bytes: u64,
    unmasked: bool,
    seen: Arc<Seen>,
    synced: HashSet<u64>,
    next_handle: u64,
}

impl DeviceFiles {
    fn attr_of(&self, ino: u64) -> Option<fuser::FileAttr> {
        match ino {
            fuser::FUSE_ROOT_ID | UIO_INO => Some(file_attr(ino, 0)),
            BUFFER_INO => Some(file_attr(ino, self.buffer_bytes)),
            _ => None,
        }
    }

    /// The part of `[offset, offset + len)` inside the buffer (the driver's short count).
    fn clip(&self, offset: i64, len: usize) -> (u64, usize) {
        let at = offset.max(0) as u64;
        (
            at,
            self.buffer_bytes.saturating_sub(at).min(len as u64) as usize,
        )
    }
}

impl Filesystem for DeviceFiles {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let ino = match name.to_str() {
            Some(UIO_NODE) => UIO_INO,
            Some(BUFFER) => BUFFER_INO,
            _ => 0,
        };
        match self.attr_of(ino) {
            Some(a) if parent == fuser::FUSE_ROOT_ID && ino != 0 => reply.entry(&TTL, &a, 0),
            _ => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr_of(ino) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(libc::ENOENT),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        self.next_handle += 1;
        if ino == BUFFER_INO && flags & libc::O_SYNC == libc::O_SYNC {
            self.synced.insert(self.next_handle);
        }
        // Direct I/O: every read and write reaches the "driver" with its offset and size.
        reply.opened(self.next_handle, fuser::consts::FOPEN_DIRECT_IO);
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        _fh: u64,
        offset: i64,
        reply: ReplyDirectory,
    ) {
        list_files(reply, offset, &[(UIO_INO, UIO_NODE), (BUFFER_INO, BUFFER)]);
    }

    #[allow(clippy::too_many_arguments)]
    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyData,
    ) {
        match ino {
            UIO_INO if size != 4 => reply.error(libc::EINVAL),
            UIO_INO if !self.unmasked => {
                eprintln!("kria stand-in: the interrupt was read while masked (would hang)");
                reply.error(libc::EIO)
            }
            UIO_INO => {
                if self.board.with(|b| b.wait_irq(1, PASS_WAIT).is_ok()) {
                    // uio_pdrv_genirq masks the line in its handler.
                    self.unmasked = false;
                    let n = self.seen.interrupts.fetch_add(1, Ordering::SeqCst) + 1;
                    reply.data(&(n as i32).to_ne_bytes())
                } else {
                    reply.error(libc::ETIMEDOUT)
                }
            }
            BUFFER_INO if !self.synced.contains(&fh) => {
                eprintln!("kria stand-in: the buffer was read through a handle without O_SYNC");
                reply.error(libc::EIO)
            }
            BUFFER_INO => {
                let (at, len) = self.clip(offset, size as usize);
                let out = self.board.with(move |b| {
                    let mut out = vec![0u8; len];
                    b.dma_read(at, &mut out).map(|()| out)
                });
                match out {
                    Ok(out) => reply.data(&out),
                    Err(_) => reply.error(libc::EIO),
                }
            }
            _ => reply.error(libc::EBADF),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyWrite,
    ) {
        match ino {
            UIO_INO if data.len() != 4 => reply.error(libc::EINVAL),
            UIO_INO => {
                self.unmasked = i32::from_ne_bytes([data[0], data[1], data[2], data[3]]) != 0;
                if self.unmasked {
                    self.seen.unmasks.fetch_add(1, Ordering::SeqCst);
                }
                reply.written(4)
            }
            BUFFER_INO if !self.synced.contains(&fh) => {
                eprintln!("kria stand-in: the buffer was written through a handle without O_SYNC");
                reply.error(libc::EIO)
            }
            BUFFER_INO => {
                let (at, len) = self.clip(offset, data.len());
                let bytes = data[..len].to_vec();
                match self.board.with(move |b| b.dma_write(at, &bytes)) {
                    Ok(()) => reply.written(len as u32),
                    Err(_) => reply.error(libc::EIO),
                }
            }
            _ => reply.error(libc::EBADF),
        }
    }
}

/// The stand-in mounted: a root with `sys/` and `dev/`; unmounted on drop (the mount
/// first).
pub struct KriaStandIn {
    _mount: tern_host::stand_in::Mounted,
    root: tempfile::TempDir,
    pub board: Board,
    pub seen: Arc<Seen>,
}

impl KriaStandIn {
    /// The root the transport looks under (`/` on a board).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn registers(&self) -> Registers {
        Registers(self.board.clone())
    }
}

/// Mount the stand-in around the board `make` builds, its buffer of `buffer_bytes` at
/// `phys_addr`; or None (with a note) where this machine has no FUSE.
pub fn mount(
    make: impl FnOnce() -> ShellBoard + Send + 'static,
    phys_addr: u64,
    buffer_bytes: u64,
) -> Option<KriaStandIn> {
    let root = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: String| {
        let p: PathBuf = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    // Another UIO device first, as a board's serial port or fan controller would be.
    put("sys/class/uio/uio0/name", "axi_uart16550\n".into());
    put(
        "sys/class/uio/uio0/maps/map0/size",
        format!("0x{:016x}\n", 0x1000),
    );
    put(
        &format!("sys/class/uio/{UIO_NODE}/name"),
        "tern_accelerator\n".into(),
    );
    put(
        &format!("sys/class/uio/{UIO_NODE}/maps/map0/addr"),
        format!("0x{:016x}\n", 0xA000_0000u64),
    );
    put(
        &format!("sys/class/uio/{UIO_NODE}/maps/map0/size"),
        format!("0x{:016x}\n", 0x1000),
    );
    put(
        &format!("sys/class/u-dma-buf/{BUFFER}/phys_addr"),
        format!("0x{phys_addr:016x}\n"),
    );
    put(
        &format!("sys/class/u-dma-buf/{BUFFER}/size"),
        format!("{buffer_bytes}\n"),
    );
    let dev = root.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();

    let board = Board::spawn(move || {
        let mut b = make();
        b.place_memory_at(phys_addr);
        b
    });
    let seen = Arc::new(Seen::default());
    let files = DeviceFiles {
        board: board.clone(),
        buffer_bytes,
        unmasked: false,
        seen: seen.clone(),
        synced: HashSet::new(),
        next_handle: 0,
    };
    let mount = tern_host::stand_in::mount(move || files, &dev, "tern-kria", "the Kria stand-in")?;
    Some(KriaStandIn {
        _mount: mount,
        root,
        board,
        seen,
    })
}
