//! Byte pipes the framed protocol runs over: sockets, USB bulk endpoint pairs, and an
//! in-memory pipe that stands in for the USB stack in tests.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// A bidirectional byte stream with deadlines.
pub trait BytePipe {
    /// Send all of `bytes` before `deadline`.
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()>;
    /// Receive at least one byte (0 means the other side closed) before `deadline`.
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize>;
    /// The file descriptor `poll(2)` can watch for input, if there is one.
    fn fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}

/// Why `recv_exact` stopped short.
#[derive(Debug)]
pub enum RecvError {
    /// The other side closed after `got` bytes (0: cleanly, between frames).
    Closed {
        got: usize,
    },
    TimedOut {
        got: usize,
    },
    Io(io::Error),
}

pub fn recv_exact(
    pipe: &mut (impl BytePipe + ?Sized),
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), RecvError> {
    let mut got = 0;
    while got < buf.len() {
        match pipe.recv(&mut buf[got..], deadline) {
            Ok(0) => return Err(RecvError::Closed { got }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(RecvError::TimedOut { got }),
            Err(e) if is_closed(&e) => return Err(RecvError::Closed { got }),
            Err(e) => return Err(RecvError::Io(e)),
        }
    }
    Ok(())
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

fn remaining(deadline: Instant) -> io::Result<std::time::Duration> {
    let now = Instant::now();
    if now >= deadline {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
    }
    Ok(deadline - now)
}

/// A socket's deadlines are its read and write timeouts, set before each call.
pub trait TimedStream: Read + Write + std::os::fd::AsRawFd {
    fn set_timeouts(&self, t: std::time::Duration) -> io::Result<()>;
}

impl TimedStream for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, t: std::time::Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl TimedStream for std::net::TcpStream {
    fn set_timeouts(&self, t: std::time::Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

/// A socket as a byte pipe.
pub struct StreamPipe<S: TimedStream> {
    stream: S,
    /// The socket timeout last set. Setting it costs two system calls, so a burst of
    /// calls toward one deadline keeps it while it is at least the time left and at most
    /// a tenth more: a call never times out before its deadline and overruns it by at
    /// most a tenth.
    armed: Option<std::time::Duration>,
}

impl<S: TimedStream> StreamPipe<S> {
    pub fn new(stream: S) -> Self {
        StreamPipe {
            stream,
            armed: None,
        }
    }

    fn arm(&mut self, deadline: Instant) -> io::Result<()> {
        let left = remaining(deadline)?;
        let fits = matches!(self.armed, Some(t) if t >= left && t <= left + left / 10);
        if !fits {
            self.stream.set_timeouts(left)?;
            self.armed = Some(left);
        }
        Ok(())
    }
}

impl<S: TimedStream> BytePipe for StreamPipe<S> {
    fn send(&mut self, bytes: &[u8], deadline: Instant) -> io::Result<()> {
        let mut sent = 0;
        while sent < bytes.len() {
            self.arm(deadline)?;
            match send_no_signal(self.stream.as_raw_fd(), &bytes[sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        self.arm(deadline)?;
        self.stream.read(buf)
    }
    fn fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.stream.as_raw_fd())
    }
}

/// `send(2)` with MSG_NOSIGNAL: a peer that closed gives EPIPE, an error the caller
/// reports, and never SIGPIPE, which would end the whole process (the `tern` binary
/// restores SIGPIPE's default for its stdout; std's UnixStream writes with `write(2)`).
/// The socket's send timeout (SO_SNDTIMEO, armed by the caller) still applies.
fn send_no_signal(fd: std::os::fd::RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is valid for reads of its length for the duration of the call.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[derive(Default)]
struct Channel {
    bytes: VecDeque<u8>,
    closed: bool,
}

type Shared = Arc<(Mutex<Channel>, Condvar)>;

/// One end of an in-memory pipe: what one side of a USB bulk endpoint pair sees.
pub struct MemoryPipe {
    rx: Shared,
    tx: Shared,
}

/// Two connected ends.
pub fn memory_pipe() -> (MemoryPipe, MemoryPipe) {
    let a: Shared = Arc::default();
    let b: Shared = Arc::default();
    (
        MemoryPipe {
            rx: a.clone(),
            tx: b.clone(),
        },
        MemoryPipe { rx: b, tx: a },
    )
}

impl MemoryPipe {
    fn close(&self) {
        for side in [&self.rx, &self.tx] {
            side.0.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
            side.1.notify_all();
        }
    }
}

impl Drop for MemoryPipe {
    fn drop(&mut self) {
        self.close();
    }
}

impl BytePipe for MemoryPipe {
    fn send(&mut self, bytes: &[u8], _deadline: Instant) -> io::Result<()> {
        let mut ch = self.tx.0.lock().unwrap_or_else(|p| p.into_inner());
        if ch.closed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        ch.bytes.extend(bytes);
        self.tx.1.notify_all();
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        let (lock, cv) = &*self.rx;
        let mut ch = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if !ch.bytes.is_empty() {
                let n = buf.len().min(ch.bytes.len());
                for (slot, b) in buf.iter_mut().zip(ch.bytes.drain(..n)) {
                    *slot = b;
                }
                return Ok(n);
            }
            if ch.closed {
                return Ok(0);
            }
            let wait = remaining(deadline)?;
            ch = cv
                .wait_timeout(ch, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_memory_pipe_carries_bytes_both_ways_and_reports_close_and_timeout() {
        let (mut a, mut b) = memory_pipe();
        let soon = || Instant::now() + Duration::from_millis(200);
        a.send(b"hello", soon()).unwrap();
        let mut buf = [0u8; 5];
        recv_exact(&mut b, &mut buf, soon()).unwrap();
        assert_eq!(&buf, b"hello");
        let t0 = Instant::now();
        let err = recv_exact(&mut a, &mut buf, Instant::now() + Duration::from_millis(50));
        assert!(matches!(err, Err(RecvError::TimedOut { got: 0 })));
        assert!(t0.elapsed() >= Duration::from_millis(50));
        b.send(b"hi", soon()).unwrap();
        drop(b);
        let err = recv_exact(&mut a, &mut buf, soon());
        assert!(matches!(err, Err(RecvError::Closed { got: 2 })));
    }
}
