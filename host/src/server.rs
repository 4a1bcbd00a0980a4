//! The board side of the wire protocol: one connection's request loop, and the
//! daemon's listener (`tern serve`).
//!
//! Policy (docs/wire.md, "Sharing a board"; implemented in `lobby`): one client holds
//! the board at a time, to the end of its connection, and the next finds it reset. A
//! board has one register file and one card memory, so interleaving two hosts' requests
//! would only let them corrupt each other's runs. Clients that connect meanwhile wait in
//! a queue and are answered at once with who holds the board; a silent holder loses it
//! after the idle timeout, and a busy one after the hold limit if others wait.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::auth::{gate, AuthState, Gate};
use crate::lobby::{Holder, Lobby, Pipe, Promoted};
pub use crate::serve_options::ServeOptions;
use std::time::{Duration, Instant};

use crate::error::{io, HostError, Result};
use crate::pipe::{recv_exact, BytePipe, RecvError, StreamPipe};
use crate::transport::Transport;
use crate::wire::{message, Header, Opcode, Status, WireError, HEADER_BYTES, MAX_PAYLOAD, REPLY};

/// How often a waiting server looks at its shutdown flag.
const POLL: Duration = Duration::from_millis(50);
/// Longest wait_irq a client may ask for (the daemon answers nothing else meanwhile).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The client closed between frames.
    Closed,
    Idle,
    Shutdown,
    /// The hold limit passed while others waited; the client was told so.
    HoldLimit,
    /// The client broke the protocol; the reason was sent to it if possible.
    Protocol(String),
    /// The client did not prove the token (or proved it wrong); it was told so.
    Unauthorized(String),
    Io(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

fn status_of(e: &HostError) -> Status {
    match e {
        HostError::Unaligned { .. } => Status::Unaligned,
        HostError::OutOfRange { .. } => Status::OutOfRange,
        HostError::Timeout { .. } => Status::Timeout,
        HostError::Busy => Status::Busy,
        _ => Status::BoardError,
    }
}

pub(crate) fn reply(
    pipe: &mut dyn BytePipe,
    request: u8,
    tag: u32,
    status: Status,
    count: u32,
    payload: &[u8],
    deadline: Instant,
) -> std::io::Result<u64> {
    let h = Header::reply(request, tag, status, count, payload.len());
    pipe.send(&h.encode(), deadline)?;
    pipe.send(payload, deadline)?;
    Ok((HEADER_BYTES + payload.len()) as u64)
}

/// Wait for the first byte of a frame, looking at `shutdown` meanwhile.
fn await_header(
    pipe: &mut dyn BytePipe,
    h: &mut [u8; HEADER_BYTES],
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> std::result::Result<(), Ended> {
    let idle_end = Instant::now() + opts.idle_timeout;
    loop {
        if shutdown.load(Ordering::Relaxed) {
            return Err(Ended::Shutdown);
        }
        let now = Instant::now();
        if now >= idle_end {
            return Err(Ended::Idle);
        }
        match pipe.recv(&mut h[..1], (now + POLL).min(idle_end)) {
            Ok(0) => return Err(Ended::Closed),
            Ok(_) => break,
            Err(e) if crate::pipe::is_timeout(&e) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if crate::pipe::is_closed(&e) => return Err(Ended::Closed),
            Err(e) => return Err(Ended::Io(e.to_string())),
        }
    }
    let deadline = Instant::now() + opts.frame_timeout;
    recv_exact(pipe, &mut h[1..], deadline).map_err(|e| truncated(e, 1, HEADER_BYTES))
}

fn truncated(e: RecvError, before: usize, want: usize) -> Ended {
    match e {
        RecvError::Closed { got } | RecvError::TimedOut { got } => Ended::Protocol(
            WireError::Truncated {
                got: before + got,
                want,
            }
            .to_string(),
        ),
        RecvError::Io(e) => Ended::Io(e.to_string()),
    }
}

/// Serve one connection until it ends. Requests are answered in order; the board's
/// errors become error replies and the connection goes on. (A single pipe, as USB's,
/// has no one waiting behind it: no hold limit.)
pub fn serve_connection(
    pipe: &mut dyn BytePipe,
    board: &mut dyn Transport,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
) -> (Ended, ConnectionStats) {
    let auth = AuthState::new(opts.secret.as_ref());
    serve_holder(pipe, board, opts, shutdown, None, auth)
}

/// `serve_connection` for the holder of a shared board: `hold` is the lobby it was
/// promoted from and its turn, for the hold limit.
fn serve_holder(
    pipe: &mut dyn BytePipe,
    board: &mut dyn Transport,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
    hold: Option<(&Lobby, &Holder)>,
    mut auth: AuthState,
) -> (Ended, ConnectionStats) {
    let mut stats = ConnectionStats::default();
    // Request and reply buffers live as long as the connection: a 1 MiB DMA does not
    // pay for fresh pages on every request.
    let mut payload = Vec::new();
    let mut body = Vec::new();
    loop {
        let mut h = [0u8; HEADER_BYTES];
        if let Err(end) = await_header(pipe, &mut h, opts, shutdown) {
            return (end, stats);
        }
        let deadline = Instant::now() + opts.frame_timeout;
        stats.bytes_in += HEADER_BYTES as u64;
        let header = match Header::decode(&h) {
            Ok(header) => header,
            Err(e) => {
                // The stream cannot be resynchronised: say why, then close.
                let _ = reply(
                    pipe,
                    h[6] & !REPLY,
                    Header::raw_tag(&h),
                    e.status(),
                    0,
                    message(&e.to_string()),
                    deadline,
                );
                return (Ended::Protocol(e.to_string()), stats);
            }
        };
        // Buffers only grow (zero-filling a reused megabyte would cost as much as the
        // copy); `len` is bounded by MAX_PAYLOAD.
        let len = header.len as usize;
        if payload.len() < len {
            payload.resize(len, 0);
        }
        if let Err(e) = recv_exact(pipe, &mut payload[..len], deadline) {
            return (truncated(e, HEADER_BYTES, HEADER_BYTES + len), stats);
        }
        stats.bytes_in += len as u64;
        if let Some((lobby, holder)) = hold {
            let waiting = lobby.waiting();
            if waiting > 0 && holder.since.elapsed() >= opts.max_hold {
                let text = crate::lobby::hold_limit_message(holder, waiting, opts);
                let _ = reply(
                    pipe,
                    header.opcode,
                    header.tag,
                    Status::Held,
                    0,
                    message(&text),
                    Instant::now() + opts.frame_timeout,
                );
                return (Ended::HoldLimit, stats);
            }
        }
        stats.requests += 1;
        // The token first: nothing else is read, run or answered for a client that has
        // not proved it.
        match gate(
            &mut auth,
            opts.secret.as_ref(),
            header.opcode,
            &payload[..len],
            len,
        ) {
            Gate::Pass => {}
            Gate::Answer(answer) => {
                match reply(
                    pipe,
                    header.opcode,
                    header.tag,
                    Status::Ok,
                    0,
                    &answer,
                    Instant::now() + opts.frame_timeout,
                ) {
                    Ok(n) => stats.bytes_out += n,
                    Err(e) => return (Ended::Io(e.to_string()), stats),
                }
                continue;
            }
            Gate::Refuse(why) => {
                let _ = reply(
                    pipe,
                    header.opcode,
                    header.tag,
                    Status::Unauthorized,
                    0,
                    message(&why),
                    Instant::now() + opts.frame_timeout,
                );
                return (Ended::Unauthorized(why), stats);
            }
        }
        let (status, count, reply_len, text) = match handle(
            board,
            &header,
            &payload[..len],
            &mut body,
            shutdown,
            pipe.fd(),
        ) {
            Handled::Reply(status, count, reply_len, text) => (status, count, reply_len, text),
            // Nobody to answer: the board is given up now, not when the wait ends.
            Handled::PeerGone => return (Ended::Closed, stats),
        };
        // The reply gets its own frame timeout: a request may run long (a wait_irq of
        // up to MAX_WAIT) and still succeed.
        let deadline = Instant::now() + opts.frame_timeout;
        if status != Status::Ok {
            stats.errors += 1;
            tracing::debug!(tag = header.tag, ?status, "{text}");
        }
        let out = if status == Status::Ok {
            &body[..reply_len]
        } else {
            message(&text)
        };
        match reply(
            pipe,
            header.opcode,
            header.tag,
            status,
            count,
            out,
            deadline,
        ) {
            Ok(n) => stats.bytes_out += n,
            Err(e) => return (Ended::Io(e.to_string()), stats),
        }
    }
}

/// What one request came to.
enum Handled {
    /// (status, count, reply payload length, error text); the reply payload is the
    /// start of `body`.
    Reply(Status, u32, usize, String),
    /// The client closed its connection while the request ran (a long wait_irq).
    PeerGone,
}

/// One request. `peer` is the client's socket, watched for a hang-up during a wait.
fn handle(
    board: &mut dyn Transport,
    h: &Header,
    payload: &[u8],
    body: &mut Vec<u8>,
    shutdown: &AtomicBool,
    peer: Option<std::os::fd::RawFd>,
) -> Handled {
    let Some(op) = Opcode::from_u8(h.opcode) else {
        let text = format!("unknown opcode 0x{:02x}", h.opcode);
        return Handled::Reply(Status::UnknownOpcode, 0, 0, text);
    };
    if op != Opcode::DmaWrite && !payload.is_empty() {
        let text = format!("{op:?} takes no payload, got {} bytes", payload.len());
        return Handled::Reply(Status::BadRequest, 0, 0, text);
    }
    let result: Result<(u32, usize)> = match op {
        Opcode::Info => board.info().map(|mut i| {
            i.memory_base = board.memory_base();
            let json = serde_json::to_vec(&i).expect("info serialises");
            if body.len() < json.len() {
                body.resize(json.len(), 0);
            }
            body[..json.len()].copy_from_slice(&json);
            (0, json.len())
        }),
        Opcode::Read32 => board.read32(h.addr).map(|v| (v, 0)),
        Opcode::Write32 => board.write32(h.addr, h.count).map(|()| (0, 0)),
        Opcode::DmaWrite => {
            if h.count as usize != payload.len() {
                let text = format!(
                    "DMA write of {} bytes carries {} bytes",
                    h.count,
                    payload.len()
                );
                return Handled::Reply(Status::BadRequest, 0, 0, text);
            }
            board.dma_write(h.addr, payload).map(|()| (0, 0))
        }
        Opcode::DmaRead => {
            let n = h.count as usize;
            if n > MAX_PAYLOAD {
                let text = format!("DMA read of {n} bytes exceeds {MAX_PAYLOAD}");
                return Handled::Reply(Status::TooLarge, 0, 0, text);
            }
            if body.len() < n {
                body.resize(n, 0);
            }
            board.dma_read(h.addr, &mut body[..n]).map(|()| (0, n))
        }
        Opcode::WaitIrq => {
            let timeout = Duration::from_millis(h.addr).min(MAX_WAIT);
            match wait_irq_unless_shutdown(board, h.count, timeout, shutdown, peer) {
                Err(Waited::PeerGone) => return Handled::PeerGone,
                Err(Waited::Board(e)) => Err(e),
                Ok(lines) => Ok((lines, 0)),
            }
        }
        Opcode::Reset => board.reset().map(|()| (0, 0)),
        // Answered by the connection loop before any request reaches the board.
        Opcode::Auth => unreachable!("auth is handled before the board"),
    };
    match result {
        Ok((count, n)) => Handled::Reply(Status::Ok, count, n, String::new()),
        Err(e) => Handled::Reply(status_of(&e), 0, 0, e.to_string()),
    }
}

enum Waited {
    Board(HostError),
    PeerGone,
}

/// Whether the peer of socket `fd` has closed (or reset) its connection. Data it sent
/// ahead does not count: only the hang-up does.
fn peer_closed(fd: std::os::fd::RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// `board.wait_irq` in slices of `POLL`, so that SIGTERM ends a long wait within a
/// slice instead of after the client's whole timeout, and a client that hangs up (or is
/// killed) mid-wait frees the board within a slice instead of at the wait's end.
fn wait_irq_unless_shutdown(
    board: &mut dyn Transport,
    mask: u32,
    timeout: Duration,
    shutdown: &AtomicBool,
    peer: Option<std::os::fd::RawFd>,
) -> std::result::Result<u32, Waited> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match board.wait_irq(mask, left.min(POLL)) {
            Err(HostError::Timeout { .. }) if left > POLL => {
                if shutdown.load(Ordering::Relaxed) {
                    return Err(Waited::Board(HostError::Unsupported(
                        "the server is shutting down; the wait was abandoned".into(),
                    )));
                }
                if peer.is_some_and(peer_closed) {
                    return Err(Waited::PeerGone);
                }
            }
            Err(HostError::Timeout { what, .. }) => {
                return Err(Waited::Board(HostError::Timeout { what, timeout }));
            }
            other => return other.map_err(Waited::Board),
        }
    }
}

/// Where `tern serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    pub fn parse(s: &str) -> Result<Listen> {
        let bad = |reason: &str| HostError::BadUri {
            uri: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(bad("unix: needs a socket path"));
            }
            Ok(Listen::Unix(PathBuf::from(path)))
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            addr.parse()
                .map(Listen::Tcp)
                .map_err(|e| bad(&format!("tcp: needs IP:PORT ({e})")))
        } else {
            Err(bad("expected unix:PATH or tcp:IP:PORT"))
        }
    }
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn bind(listen: &Listen, opts: &ServeOptions) -> Result<(Listener, String)> {
    check_listen(listen, opts)?;
    match listen {
        Listen::Unix(path) => {
            if path.exists() {
                // A live daemon answers; a stale socket file from a crash does not.
                if UnixStream::connect(path).is_ok() {
                    return Err(HostError::Io {
                        context: format!("binding {}", path.display()),
                        cause: std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            "another daemon is serving on it",
                        ),
                    });
                }
                std::fs::remove_file(path)
                    .map_err(io(format!("removing stale socket {}", path.display())))?;
            }
            let l = bind_private(path, opts.socket_group)?;
            l.set_nonblocking(true)
                .map_err(io("making the listener non-blocking"))?;
            Ok((
                Listener::Unix(l, path.clone()),
                format!("unix:{}", path.display()),
            ))
        }
        Listen::Tcp(addr) => {
            if opts.secret.is_none() {
                tracing::warn!(
                    "tcp:{addr} asks no token: every user of this machine can connect and read \
                     or write the board's memory (a unix: socket is owner-only; --token-file \
                     asks a token)"
                );
            }
            let l = TcpListener::bind(addr).map_err(io(format!("binding {addr}")))?;
            l.set_nonblocking(true)
                .map_err(io("making the listener non-blocking"))?;
            let local = l.local_addr().map_err(io("reading the bound address"))?;
            Ok((Listener::Tcp(l), format!("tcp:{local}")))
        }
    }
}

/// Whether `serve` will take `listen` with `opts` (checked before anything is built):
/// a TCP address other hosts can reach needs both the explicit wish and a token, since
/// any client of a board can read and write its whole memory (docs/wire.md, "Security").
pub fn check_listen(listen: &Listen, opts: &ServeOptions) -> Result<()> {
    let addr = match listen {
        Listen::Tcp(addr) if !addr.ip().is_loopback() => addr,
        _ => return Ok(()),
    };
    if !opts.allow_remote {
        return Err(HostError::Insecure(format!(
            "tcp:{addr} is reachable from other hosts, and whoever connects can read and \
             write the whole board memory; listen on tcp:127.0.0.1:PORT or a unix: socket, \
             or pass --allow-remote with --token-file FILE (docs/wire.md, Security)"
        )));
    }
    if opts.secret.is_none() {
        return Err(HostError::Insecure(format!(
            "tcp:{addr} with --allow-remote needs a token (--token-file FILE; `tern token \
             --out FILE` writes one) so that only its holders can use the board"
        )));
    }
    Ok(())
}

/// A Unix socket that is never reachable with a wider mode than asked: created under a
/// temporary name, given mode 0600 (or 0660 and `group`), then renamed into place.
fn bind_private(path: &Path, group: Option<u32>) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .map_or_else(|| "board.sock".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let l = UnixListener::bind(&tmp).map_err(io(format!("binding {}", path.display())))?;
    let set = || -> std::io::Result<()> {
        if let Some(gid) = group {
            std::os::unix::fs::chown(&tmp, None, Some(gid))?;
        }
        let mode = if group.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    };
    if let Err(e) = set() {
        let _ = std::fs::remove_file(&tmp);
        return Err(HostError::Io {
            context: format!("setting the mode of socket {}", path.display()),
            cause: e,
        });
    }
    Ok(l)
}

/// The id of group `name` (or a number given as such), for `--socket-group`; Err says
/// why not.
pub fn group_id(name: &str) -> std::result::Result<u32, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || format!("group `{name}` does not exist on this machine");
    let cname = std::ffi::CString::new(name).map_err(|_| unknown())?;
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: every pointer is valid for the call; `buf` outlives it and its length is
    // passed. getgrnam_r is the thread-safe form.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(unknown());
    }
    Ok(group.gr_gid)
}

#[derive(Debug, Clone, Default)]
pub struct ServeSummary {
    pub connections: u64,
    pub requests: u64,
}

/// Listen and serve clients one after another until `shutdown` is set, with the
/// sharing policy of `lobby`. `ready` is called with the bound address (with the real
/// port for `tcp:…:0`).
pub fn serve(
    listen: &Listen,
    board: &mut dyn Transport,
    opts: &ServeOptions,
    shutdown: &AtomicBool,
    ready: impl FnOnce(&str),
) -> Result<ServeSummary> {
    let (listener, bound) = bind(listen, opts)?;
    ready(&bound);
    let lobby = Lobby::default();
    std::thread::scope(|scope| {
        // The lobby thread accepts connections and answers the waiting ones while this
        // thread serves the holder.
        scope.spawn(|| {
            // Payloads of waiting clients are read into this and dropped.
            let mut scratch = vec![0u8; 64 << 10];
            while !shutdown.load(Ordering::Relaxed) {
                while lobby.waiting() < opts.max_waiting {
                    match accept(&listener) {
                        Ok((pipe, peer)) => lobby.admit(pipe, peer, opts),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            if lobby.log_allowed() {
                                tracing::warn!("accept failed: {e}");
                            }
                            break;
                        }
                    }
                }
                lobby.answer_waiting(opts, &mut scratch);
                lobby.poll(listener.fd(), POLL);
            }
        });
        let mut summary = ServeSummary::default();
        while let Some(Promoted {
            holder,
            mut pipe,
            auth,
        }) = lobby.next_holder(|| shutdown.load(Ordering::Relaxed))
        {
            summary.connections += 1;
            let n = holder.client;
            if lobby.log_allowed() {
                tracing::info!(client = n, peer = %holder.peer, "connected");
            }
            let (end, stats) = serve_holder(
                pipe.as_mut(),
                board,
                opts,
                shutdown,
                Some((&lobby, &holder)),
                auth,
            );
            drop(pipe);
            summary.requests += stats.requests;
            // Whatever the client left behind (a kernel it started and never waited for,
            // a pending interrupt), the next client finds a board just out of reset.
            if let Err(e) = board.reset() {
                tracing::warn!(
                    client = n,
                    "could not reset the board after the client: {e}"
                );
            }
            lobby.release();
            if lobby.log_allowed() {
                tracing::info!(
                    client = n,
                    requests = stats.requests,
                    errors = stats.errors,
                    bytes_in = stats.bytes_in,
                    bytes_out = stats.bytes_out,
                    seconds = holder.since.elapsed().as_secs_f64(),
                    "disconnected: {end:?}"
                );
            }
        }
        Ok(summary)
    })
}

impl Listener {
    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Listener::Unix(l, _) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }
}

fn accept(listener: &Listener) -> std::io::Result<(Pipe, String)> {
    match listener {
        Listener::Unix(l, _) => l.accept().and_then(|(s, _)| {
            s.set_nonblocking(false)?;
            let peer = unix_peer(&s);
            Ok((Box::new(StreamPipe::new(s)) as Pipe, peer))
        }),
        Listener::Tcp(l) => l.accept().and_then(|(s, peer): (TcpStream, _)| {
            s.set_nonblocking(false)?;
            s.set_nodelay(true)?;
            Ok((Box::new(StreamPipe::new(s)) as Pipe, format!("tcp:{peer}")))
        }),
    }
}

/// A Unix-socket client by its process: what a lab member sharing a machine can
/// recognise ("pid 4242 (tern), uid 1000").
fn unix_peer(s: &UnixStream) -> String {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 || cred.pid == 0 {
        return "unix peer".into();
    }
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", cred.pid)).unwrap_or_default();
    format!("pid {} ({}), uid {}", cred.pid, comm.trim(), cred.uid)
}

/// Whether a Unix socket path has a daemon behind it.
pub fn is_serving(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}
