//! Sharing one board between clients (`tern serve`): one holder at a time, a queue of
//! waiting connections that are told at once who holds the board, and a hold limit
//! that applies only while others wait. The policy is specified in `docs/wire.md`
//! ("Sharing a board"); this module is its one implementation.
//!
//! The lobby never blocks on a waiting client: it reads only what a socket already
//! holds (a frame may arrive over many passes, within the frame timeout) and answers
//! with a send that does not wait, so one client that stalls mid-frame or stops reading
//! delays no one else's answer.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth::{gate, AuthState, Gate, PROOF_BYTES};
use crate::pipe::BytePipe;
use crate::serve_options::ServeOptions;
use crate::wire::{Header, Opcode, Status, HEADER_BYTES, REPLY};

/// A connection as the daemon sees it.
pub(crate) type Pipe = Box<dyn BytePipe + Send>;

/// Bytes the lobby reads from one waiting client in one pass (then it serves the others).
const PASS_BYTES: usize = 1 << 20;

/// The client that has the board.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub client: u64,
    pub peer: String,
    pub since: Instant,
    since_wall: SystemTime,
}

/// A connection promoted to holder: its pipe and how far its authentication got.
pub(crate) struct Promoted {
    pub holder: Holder,
    pub pipe: Pipe,
    pub auth: AuthState,
}

struct Waiting {
    client: u64,
    peer: String,
    pipe: Pipe,
    auth: AuthState,
    /// A request being read, across passes.
    frame: Option<PartialFrame>,
}

/// A waiting client's request as far as it has arrived.
struct PartialFrame {
    header: [u8; HEADER_BYTES],
    /// Header bytes so far.
    got: usize,
    /// Once the header is whole: it, and the payload bytes still to come.
    decoded: Option<Header>,
    payload_left: usize,
    /// An `auth` proof's bytes (every other payload is read and dropped).
    kept: Vec<u8>,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    holder: Option<Holder>,
    queue: VecDeque<Waiting>,
    clients: u64,
}

/// The holder, the queue behind it, and the daemon's per-connection log budget.
#[derive(Default)]
pub(crate) struct Lobby {
    state: Mutex<State>,
    arrived: Condvar,
    /// Queue length, readable without the lock.
    waiting: AtomicUsize,
    log: Mutex<LogBudget>,
}

impl Lobby {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the daemon down with a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A new connection joins the end of the queue.
    pub fn admit(&self, pipe: Pipe, peer: String, opts: &ServeOptions) {
        let mut s = self.lock();
        s.clients += 1;
        let client = s.clients;
        s.queue.push_back(Waiting {
            client,
            peer,
            pipe,
            auth: AuthState::new(opts.secret.as_ref()),
            frame: None,
        });
        let position = s.queue.len();
        self.waiting.store(position, Ordering::Relaxed);
        let holder = s.holder.as_ref().map(|h| h.client);
        drop(s);
        if let Some(holder) = holder {
            if self.log_allowed() {
                tracing::info!(client, position, holder, "queued behind the holder");
            }
        }
        self.arrived.notify_all();
    }

    /// The first client in the queue that is not halfway through a request becomes the
    /// holder (one that is keeps its place and is answered by the lobby first); None
    /// once `stop()` says so.
    pub fn next_holder(&self, stop: impl Fn() -> bool) -> Option<Promoted> {
        let mut s = self.lock();
        loop {
            if stop() {
                return None;
            }
            if let Some(i) = s.queue.iter().position(|w| w.frame.is_none()) {
                let w = s.queue.remove(i).expect("an index of the queue");
                self.waiting.store(s.queue.len(), Ordering::Relaxed);
                let holder = Holder {
                    client: w.client,
                    peer: w.peer,
                    since: Instant::now(),
                    since_wall: SystemTime::now(),
                };
                s.holder = Some(holder.clone());
                return Some(Promoted {
                    holder,
                    pipe: w.pipe,
                    auth: w.auth,
                });
            }
            s = self
                .arrived
                .wait_timeout(s, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn release(&self) {
        self.lock().holder = None;
        self.arrived.notify_all();
    }

    /// Sleep until `listener` or a waiting client has input, or `timeout` passes.
    pub fn poll(&self, listener: RawFd, timeout: Duration) {
        let mut fds = vec![libc::pollfd {
            fd: listener,
            events: libc::POLLIN,
            revents: 0,
        }];
        {
            let s = self.lock();
            // Without a holder a new request is the next holder's to read; only frames
            // already begun are the lobby's.
            let watch = |w: &&Waiting| s.holder.is_some() || w.frame.is_some();
            fds.extend(
                s.queue
                    .iter()
                    .filter(watch)
                    .filter_map(|w| w.pipe.fd())
                    .map(|fd| libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    }),
            );
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs. A descriptor
        // closed meanwhile only makes poll return early.
        unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout.as_millis() as libc::c_int,
            );
        }
    }

    /// Read what the waiting clients have sent, answer each whole request (`Held`, or
    /// the authentication exchange), and drop the ones that left, broke the protocol,
    /// stalled past the frame timeout or do not read their answers. Never blocks.
    /// `scratch` is the lobby thread's buffer for the payloads it reads and drops.
    pub fn answer_waiting(&self, opts: &ServeOptions, scratch: &mut [u8]) {
        let mut s = self.lock();
        let holder = s.holder.clone();
        let queue = std::mem::take(&mut s.queue);
        let mut kept = VecDeque::with_capacity(queue.len());
        for mut w in queue {
            let position = kept.len() + 1;
            // Without a holder, a request not yet begun belongs to the next holder.
            let may_start = holder.is_some();
            match serve_waiting(&mut w, holder.as_ref(), position, may_start, opts, scratch) {
                Ok(()) => kept.push_back(w),
                Err(why) => {
                    if self.log_allowed() {
                        tracing::info!(client = w.client, peer = %w.peer, "left the queue: {why}");
                    }
                }
            }
        }
        s.queue = kept;
        self.waiting.store(s.queue.len(), Ordering::Relaxed);
        drop(s);
        // A client whose frame just ended may now be promoted.
        self.arrived.notify_all();
    }

    /// Whether one more per-connection line may be logged now (see `LogBudget`).
    pub fn log_allowed(&self) -> bool {
        let mut budget = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let (allowed, suppressed) = budget.allow(Instant::now());
        if let Some(n) = suppressed {
            tracing::warn!(
                "{n} per-connection log lines suppressed in the last {} s (connection flood?)",
                LogBudget::WINDOW.as_secs()
            );
        }
        allowed
    }
}

/// `recv(2)` of what the socket holds now: Ok(None) when nothing is there.
fn recv_now(fd: RawFd, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
    // SAFETY: `buf` is valid for writes of its length for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n >= 0 {
        return Ok(Some(n as usize));
    }
    let e = std::io::Error::last_os_error();
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(None),
        _ => Err(e),
    }
}

/// `send(2)` of a whole reply without waiting: a waiting client whose socket cannot take
/// a few hundred bytes has stopped reading its answers.
fn send_now(fd: RawFd, bytes: &[u8]) -> Result<(), String> {
    let mut sent = 0;
    while sent < bytes.len() {
        // SAFETY: the slice is valid for reads of its length for the duration of the call.
        let n = unsafe {
            libc::send(
                fd,
                bytes[sent..].as_ptr().cast(),
                bytes.len() - sent,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => {
                    Err("does not read its answers (its socket is full)".into())
                }
                _ => Err(e.to_string()),
            };
        }
        sent += n as usize;
    }
    Ok(())
}

fn reply_bytes(request: u8, tag: u32, status: Status, count: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Header::reply(request, tag, status, count, payload.len())
        .encode()
        .to_vec();
    out.extend_from_slice(payload);
    out
}

/// One waiting connection's pass: Ok to keep it in the queue, Err(why) to drop it.
fn serve_waiting(
    w: &mut Waiting,
    holder: Option<&Holder>,
    position: usize,
    may_start: bool,
    opts: &ServeOptions,
    scratch: &mut [u8],
) -> Result<(), String> {
    let Some(fd) = w.pipe.fd() else {
        return Ok(());
    };
    let mut budget = PASS_BYTES;
    loop {
        if let Some(f) = &w.frame {
            if Instant::now() > f.deadline {
                return Err(format!(
                    "stalled mid-request for {} s while queued (frame timeout)",
                    opts.frame_timeout.as_secs()
                ));
            }
        }
        if w.frame.is_none() && !may_start {
            return Ok(());
        }
        if budget == 0 {
            return Ok(());
        }
        // How much to ask for: the rest of the header, or of the payload.
        let want = match &w.frame {
            None => HEADER_BYTES,
            Some(f) if f.decoded.is_none() => HEADER_BYTES - f.got,
            Some(f) => f.payload_left.min(scratch.len()),
        }
        .min(budget);
        let n = match recv_now(fd, &mut scratch[..want]) {
            Ok(None) => return Ok(()),
            Ok(Some(0)) => return Err("closed".into()),
            Ok(Some(n)) => n,
            Err(e) => return Err(e.to_string()),
        };
        budget -= n;
        let f = w.frame.get_or_insert_with(|| PartialFrame {
            header: [0; HEADER_BYTES],
            got: 0,
            decoded: None,
            payload_left: 0,
            kept: vec![],
            deadline: Instant::now() + opts.frame_timeout,
        });
        match f.decoded {
            None => {
                f.header[f.got..f.got + n].copy_from_slice(&scratch[..n]);
                f.got += n;
                if f.got < HEADER_BYTES {
                    continue;
                }
                match Header::decode(&f.header) {
                    Ok(h) => {
                        f.payload_left = h.len as usize;
                        f.decoded = Some(h);
                    }
                    Err(e) => {
                        let bytes = reply_bytes(
                            f.header[6] & !REPLY,
                            Header::raw_tag(&f.header),
                            e.status(),
                            0,
                            crate::wire::message(&e.to_string()),
                        );
                        let _ = send_now(fd, &bytes);
                        return Err(e.to_string());
                    }
                }
            }
            Some(h) => {
                if h.opcode == Opcode::Auth as u8 && f.kept.len() + n <= PROOF_BYTES {
                    f.kept.extend_from_slice(&scratch[..n]);
                }
                f.payload_left -= n;
            }
        }
        let h = f.decoded.expect("decoded above");
        if f.payload_left > 0 {
            continue;
        }
        // A whole request: answer it.
        let kept = std::mem::take(&mut f.kept);
        w.frame = None;
        let text = |t: &str| crate::wire::message(t).to_vec();
        let (status, count, payload, close) = match gate(
            &mut w.auth,
            opts.secret.as_ref(),
            h.opcode,
            &kept,
            h.len as usize,
        ) {
            // The challenge's payload is raw bytes (a nonce).
            Gate::Answer(p) => (Status::Ok, 0, p, None),
            Gate::Refuse(why) => (Status::Unauthorized, 0, text(&why), Some(why)),
            Gate::Pass => {
                let held = held_message(holder, position, opts);
                (Status::Held, position as u32, text(&held), None)
            }
        };
        let bytes = reply_bytes(h.opcode, h.tag, status, count, &payload);
        send_now(fd, &bytes)?;
        if let Some(why) = close {
            return Err(format!("unauthorized: {why}"));
        }
    }
}

/// What a waiting client is told: who holds the board, since when, its place, and
/// when the board can come free (or that it is being handed to the front of the queue).
pub(crate) fn held_message(
    holder: Option<&Holder>,
    position: usize,
    opts: &ServeOptions,
) -> String {
    let Some(holder) = holder else {
        return format!(
            "board busy: it is being handed to the next client in the queue; this connection \
             is number {position} in the queue and keeps its place"
        );
    };
    format!(
        "board busy: held by client {} ({}) since {} ({} s); this connection is number {position} \
         in the queue and keeps its place. The holder gives the board up when it disconnects, \
         after {} s without a request, or at its first request after {} s of holding while \
         others wait",
        holder.client,
        holder.peer,
        utc_time_of_day(holder.since_wall),
        holder.since.elapsed().as_secs(),
        opts.idle_timeout.as_secs(),
        opts.max_hold.as_secs(),
    )
}

/// What a holder is told when the hold limit ends its turn.
pub(crate) fn hold_limit_message(holder: &Holder, waiting: usize, opts: &ServeOptions) -> String {
    format!(
        "hold limit: this connection has held the board for {} s (limit {} s while others wait) \
         and {waiting} client(s) are waiting; the connection is closed and the board reset. \
         Reconnect to queue again",
        holder.since.elapsed().as_secs(),
        opts.max_hold.as_secs()
    )
}

fn utc_time_of_day(t: SystemTime) -> String {
    let s = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// Per-connection log lines under a connection flood: the first `BURST` lines of each
/// `WINDOW` are logged and the rest counted; the count is reported once the window ends.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    window_start: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub const BURST: u32 = 20;
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// (log this line?, lines suppressed in the window that just ended).
    pub fn allow(&mut self, now: Instant) -> (bool, Option<u64>) {
        let mut ended = None;
        match self.window_start {
            Some(start) if now.duration_since(start) < Self::WINDOW => {}
            _ => {
                if self.suppressed > 0 {
                    ended = Some(self.suppressed);
                }
                self.window_start = Some(now);
                self.used = 0;
                self.suppressed = 0;
            }
        }
        if self.used < Self::BURST {
            self.used += 1;
            (true, ended)
        } else {
            self.suppressed += 1;
            (false, ended)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_logs_one_burst_per_window_and_then_counts_what_it_dropped() {
        let mut b = LogBudget::default();
        let t0 = Instant::now();
        let allowed = (0..1000)
            .filter(|i| {
                let (ok, ended) = b.allow(t0 + Duration::from_millis(*i));
                assert_eq!(ended, None, "line {i}");
                ok
            })
            .count();
        assert_eq!(allowed, LogBudget::BURST as usize);
        // The next window opens with the count of the previous one's dropped lines.
        let (ok, ended) = b.allow(t0 + LogBudget::WINDOW + Duration::from_secs(1));
        assert!(ok);
        assert_eq!(ended, Some(1000 - u64::from(LogBudget::BURST)));
        // A quiet window reports nothing.
        let (ok, ended) = b.allow(t0 + 3 * LogBudget::WINDOW);
        assert!(ok);
        assert_eq!(ended, None);
    }

    #[test]
    fn the_time_of_day_is_utc_hours_minutes_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(19_000 * 86_400 + 3600 * 21 + 60 * 5 + 9);
        assert_eq!(utc_time_of_day(t), "21:05:09 UTC");
    }
}
