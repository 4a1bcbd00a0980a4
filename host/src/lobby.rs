//! Sharing one board between clients (`tern serve`): one holder at a time, a queue of
//! waiting connections that are told at once who holds the board, and a hold limit
//! that applies only while others wait. The policy is specified in `docs/wire.md`
//! ("Sharing a board"); this module is its one implementation.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::pipe::{recv_exact, BytePipe};
use crate::server::ServeOptions;
use crate::wire::{Header, Status, HEADER_BYTES};

/// A connection as the daemon sees it.
pub(crate) type Pipe = Box<dyn BytePipe + Send>;

/// The client that has the board.
#[derive(Debug, Clone)]
pub(crate) struct Holder {
    pub client: u64,
    pub peer: String,
    pub since: Instant,
    since_wall: SystemTime,
}

struct Waiting {
    client: u64,
    peer: String,
    pipe: Pipe,
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
    /// Queue length, readable without the lock (the lobby thread may hold it while it
    /// reads a waiting client's frame).
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
    pub fn admit(&self, pipe: Pipe, peer: String) {
        let mut s = self.lock();
        s.clients += 1;
        let client = s.clients;
        s.queue.push_back(Waiting { client, peer, pipe });
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

    /// The next client in the queue becomes the holder; None once `stop()` says so.
    pub fn next_holder(&self, stop: impl Fn() -> bool) -> Option<(Holder, Pipe)> {
        let mut s = self.lock();
        loop {
            if stop() {
                return None;
            }
            if let Some(w) = s.queue.pop_front() {
                self.waiting.store(s.queue.len(), Ordering::Relaxed);
                let holder = Holder {
                    client: w.client,
                    peer: w.peer,
                    since: Instant::now(),
                    since_wall: SystemTime::now(),
                };
                s.holder = Some(holder.clone());
                return Some((holder, w.pipe));
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
            // Without a holder the queue's input is the server's to read, not ours.
            if s.holder.is_some() {
                fds.extend(
                    s.queue
                        .iter()
                        .filter_map(|w| w.pipe.fd())
                        .map(|fd| libc::pollfd {
                            fd,
                            events: libc::POLLIN,
                            revents: 0,
                        }),
                );
            }
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

    /// Answer whatever the waiting clients sent with `Held`, and drop the ones that
    /// left. A waiting connection with no input is not waited for; a frame that has
    /// begun gets the frame timeout to arrive whole.
    pub fn answer_waiting(&self, opts: &ServeOptions) {
        let mut s = self.lock();
        let Some(holder) = s.holder.clone() else {
            // No holder: the front of the queue is about to be served and its request
            // is the server's to read.
            return;
        };
        let queue = std::mem::take(&mut s.queue);
        let mut kept = VecDeque::with_capacity(queue.len());
        let mut scratch = Vec::new();
        for mut w in queue {
            let position = kept.len() + 1;
            match answer_one(&mut w.pipe, &holder, position, opts, &mut scratch) {
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

/// One waiting connection: Ok to keep it in the queue, Err(why) to drop it.
fn answer_one(
    pipe: &mut Pipe,
    holder: &Holder,
    position: usize,
    opts: &ServeOptions,
    scratch: &mut Vec<u8>,
) -> Result<(), String> {
    if let Some(fd) = pipe.fd() {
        if !has_input(fd) {
            return Ok(());
        }
    }
    let mut h = [0u8; HEADER_BYTES];
    match pipe.recv(&mut h[..1], Instant::now() + Duration::from_millis(1)) {
        Ok(0) => return Err("closed".into()),
        Ok(_) => {}
        Err(e) if crate::pipe::is_timeout(&e) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e.to_string()),
    }
    let deadline = Instant::now() + opts.frame_timeout;
    recv_exact(pipe.as_mut(), &mut h[1..], deadline)
        .map_err(|e| format!("broken frame while queued: {e:?}"))?;
    let header = match Header::decode(&h) {
        Ok(header) => header,
        Err(e) => {
            let _ = crate::server::reply(
                pipe.as_mut(),
                h[6] & !crate::wire::REPLY,
                Header::raw_tag(&h),
                e.status(),
                0,
                crate::server::message(&e.to_string()),
                deadline,
            );
            return Err(e.to_string());
        }
    };
    // The payload is read and dropped: nothing a waiting client sends touches the board.
    let len = header.len as usize;
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    recv_exact(pipe.as_mut(), &mut scratch[..len], deadline)
        .map_err(|e| format!("broken frame while queued: {e:?}"))?;
    let text = held_message(holder, position, opts);
    crate::server::reply(
        pipe.as_mut(),
        header.opcode,
        header.tag,
        Status::Held,
        position as u32,
        crate::server::message(&text),
        Instant::now() + opts.frame_timeout,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Whether `fd` has input (or a hang-up) right now.
fn has_input(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0
}

/// What a waiting client is told: who holds the board, since when, its place, and
/// when the board can come free.
pub(crate) fn held_message(holder: &Holder, position: usize, opts: &ServeOptions) -> String {
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
