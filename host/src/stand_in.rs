//! What the FUSE stand-ins for kernel drivers' device files share (tests of the `xdma:`
//! and `kria:` transports; feature `stand-in`): a file's attributes, and a file system
//! mounted on a thread of its own, unmounted when dropped.
//!
//! The files are regular files, not device nodes: FUSE mounts are `nodev`. Their
//! operations carry the driver's semantics, so the transport's own code runs unchanged.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use fuser::{FileAttr, FileType, Filesystem, MountOption, Session, SessionUnmounter};

/// The attributes of inode `ino`: the root directory, or a read-write file of `size`.
pub fn file_attr(ino: u64, size: u64) -> FileAttr {
    let dir = ino == fuser::FUSE_ROOT_ID;
    FileAttr {
        ino,
        size,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: if dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: if dir { 0o755 } else { 0o666 },
        nlink: if dir { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Answer a `readdir` of the root from `offset` with `files` (inode, name).
pub fn list_files(mut reply: fuser::ReplyDirectory, offset: i64, files: &[(u64, &str)]) {
    for (i, (ino, name)) in files.iter().enumerate().skip(offset.max(0) as usize) {
        if reply.add(*ino, i as i64 + 1, FileType::RegularFile, name) {
            break;
        }
    }
    reply.ok();
}

/// A file system mounted at `at` and served on its own thread; unmounted on drop.
pub struct Mounted {
    at: PathBuf,
    unmounter: Option<SessionUnmounter>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.at
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(mut u) = self.unmounter.take() {
            let _ = u.unmount();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Mount the file system `make` builds (on the serving thread, so what it holds, such
/// as a Verilator model, never changes thread) at the directory `at`, named `name`; or
/// None, with a note naming `what` cannot be tested, where this machine has no FUSE.
pub fn mount<F: Filesystem + 'static>(
    make: impl FnOnce() -> F + Send + 'static,
    at: &Path,
    name: &str,
    what: &str,
) -> Option<Mounted> {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("NOTE: /dev/fuse is absent; {what} cannot be tested here");
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = at.to_path_buf();
    let name = name.to_string();
    let thread = std::thread::spawn(move || {
        let options = [MountOption::FSName(name), MountOption::RW];
        match Session::new(make(), &dir, &options) {
            Ok(mut session) => {
                tx.send(Ok(session.unmount_callable())).unwrap();
                session.run().unwrap();
            }
            Err(e) => tx.send(Err(e)).unwrap(),
        }
    });
    let unmounter = rx
        .recv()
        .expect("the FUSE thread ended before mounting")
        .unwrap_or_else(|e| panic!("mounting {} with FUSE failed: {e}", at.display()));
    Some(Mounted {
        at: at.to_path_buf(),
        unmounter: Some(unmounter),
        thread: Some(thread),
    })
}
