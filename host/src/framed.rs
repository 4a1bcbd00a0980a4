//! The client side of the wire protocol over any byte pipe: sockets to `tern serve`,
//! USB bulk endpoints.

use std::time::{Duration, Instant};

use crate::auth::{Secret, NONCE_BYTES};
use crate::error::{HostError, Result};
use crate::pipe::{recv_exact, BytePipe, RecvError};
use crate::transport::{check_dma, check_register, Info, Transport};
use crate::wire::{Header, Opcode, Status, HEADER_BYTES, MAX_MESSAGE, MAX_PAYLOAD, REPLY};

/// Extra time allowed past a wait's own timeout for the reply to travel.
const WAIT_MARGIN: Duration = Duration::from_secs(2);
/// How often a client waiting in `tern serve`'s queue asks again.
const HELD_RETRY: Duration = Duration::from_millis(200);

pub struct FramedTransport<P: BytePipe> {
    pipe: P,
    name: String,
    tag: u32,
    timeout: Duration,
    card_bytes: u64,
    /// The served board's memory base, as its last `info` said.
    memory_base: u64,
    /// Set once the stream cannot be trusted (a timeout or a malformed reply).
    broken: Option<String>,
}

enum ReplyInto<'a> {
    Nothing,
    Message(&'a mut Vec<u8>),
    Exactly(&'a mut [u8]),
}

impl<P: BytePipe> FramedTransport<P> {
    /// Connect over `pipe` and ask the board for its card memory size; `timeout`
    /// bounds every call.
    pub fn connect(pipe: P, name: impl Into<String>, timeout: Duration) -> Result<Self> {
        Self::connect_waiting(pipe, name, timeout, Duration::ZERO, None)
    }

    /// `connect`, waiting up to `board_wait` in `tern serve`'s queue while another
    /// client holds the board (the first reply says who; it is logged once). With a
    /// `secret`, the connection first proves it (docs/wire.md, "Security").
    pub fn connect_waiting(
        pipe: P,
        name: impl Into<String>,
        timeout: Duration,
        board_wait: Duration,
        secret: Option<&Secret>,
    ) -> Result<Self> {
        let mut t = FramedTransport {
            pipe,
            name: name.into(),
            tag: 0,
            timeout,
            card_bytes: 0,
            memory_base: 0,
            broken: None,
        };
        if let Some(secret) = secret {
            t.authenticate(secret)?;
        }
        let give_up = Instant::now() + board_wait;
        let mut told = false;
        t.card_bytes = loop {
            match t.info() {
                Err(HostError::Held(why)) if Instant::now() < give_up => {
                    if !told {
                        tracing::warn!(
                            "{}: {why}; waiting up to {} s",
                            t.name,
                            board_wait.as_secs()
                        );
                        told = true;
                    }
                    std::thread::sleep(HELD_RETRY.min(give_up - Instant::now()));
                }
                Err(HostError::Held(why)) => {
                    return Err(HostError::Held(format!(
                        "{}: {why} (waited {} s; `--board-wait` waits longer)",
                        t.name,
                        board_wait.as_secs()
                    )))
                }
                other => break other?.card_bytes,
            }
        };
        Ok(t)
    }

    /// The token exchange: ask a challenge, answer it. A server that asks no token
    /// answers the first request with nothing, and the token is not sent at all.
    fn authenticate(&mut self, secret: &Secret) -> Result<()> {
        let mut nonce = vec![];
        self.call(
            Opcode::Auth,
            0,
            0,
            &[],
            Duration::ZERO,
            ReplyInto::Message(&mut nonce),
        )?;
        match nonce.len() {
            0 => {
                tracing::debug!("{}: the server asks no token", self.name);
                Ok(())
            }
            NONCE_BYTES => {
                let proof = secret.proof(&nonce);
                self.call(
                    Opcode::Auth,
                    0,
                    0,
                    &proof,
                    Duration::ZERO,
                    ReplyInto::Nothing,
                )?;
                Ok(())
            }
            n => Err(self.fail(HostError::Protocol(format!(
                "an auth challenge of {n} bytes (expected {NONCE_BYTES} or none)"
            )))),
        }
    }

    fn fail(&mut self, e: HostError) -> HostError {
        self.broken = Some(e.to_string());
        e
    }

    fn recv(&mut self, buf: &mut [u8], deadline: Instant, what: &str) -> Result<()> {
        recv_exact(&mut self.pipe, buf, deadline).map_err(|e| match e {
            RecvError::Closed { got } => HostError::Disconnected(format!(
                "{} closed the connection {what} ({got} bytes in)",
                self.name
            )),
            RecvError::TimedOut { .. } => HostError::Timeout {
                what: format!("{} {what}", self.name),
                timeout: self.timeout,
            },
            RecvError::Io(e) => HostError::Io {
                context: format!("{} {what}", self.name),
                cause: e,
            },
        })
    }

    fn call(
        &mut self,
        op: Opcode,
        addr: u64,
        count: u32,
        payload: &[u8],
        extra_wait: Duration,
        reply: ReplyInto,
    ) -> Result<Header> {
        if let Some(why) = &self.broken {
            return Err(HostError::Disconnected(format!(
                "{}: the connection is unusable after an earlier error ({why})",
                self.name
            )));
        }
        self.tag = self.tag.wrapping_add(1);
        let tag = self.tag;
        let deadline = Instant::now() + self.timeout + extra_wait;
        let header = Header::request(op, tag, addr, count, payload.len());
        let sent = self
            .pipe
            .send(&header.encode(), deadline)
            .and_then(|()| self.pipe.send(payload, deadline));
        if let Err(e) = sent {
            let err = if crate::pipe::is_timeout(&e) {
                HostError::Timeout {
                    what: format!("{} sending {op:?}", self.name),
                    timeout: self.timeout,
                }
            } else if crate::pipe::is_closed(&e) {
                HostError::Disconnected(format!("{} sending {op:?}: {e}", self.name))
            } else {
                HostError::Io {
                    context: format!("{} sending {op:?}", self.name),
                    cause: e,
                }
            };
            return Err(self.fail(err));
        }
        let mut h = [0u8; HEADER_BYTES];
        if let Err(e) = self.recv(&mut h, deadline, "before replying") {
            let e = match e {
                // No reply at all to a connection's first request: `tern serve` answers
                // a waiting client at once, unless its queue is full.
                HostError::Timeout { what, timeout } if tag == 1 => HostError::Timeout {
                    what: format!(
                        "{what} (tern serve answers clients waiting for the board at once; \
                         no answer means its queue of waiting clients is full, so this one \
                         is still in the listen backlog, or the server is stuck)"
                    ),
                    timeout,
                },
                e => e,
            };
            return Err(self.fail(e));
        }
        let reply_header = match Header::decode(&h) {
            Ok(r) => r,
            Err(e) => return Err(self.fail(HostError::Protocol(format!("reply header: {e}")))),
        };
        if reply_header.tag != tag || reply_header.opcode != op as u8 | REPLY {
            return Err(self.fail(HostError::Protocol(format!(
                "reply (opcode 0x{:02x}, tag {}) does not answer request (opcode 0x{:02x}, tag {tag})",
                reply_header.opcode, reply_header.tag, op as u8
            ))));
        }
        let len = reply_header.len as usize;
        let status = Status::from_u8(reply_header.status);
        if status != Some(Status::Ok) {
            if len > MAX_MESSAGE {
                return Err(self.fail(HostError::Protocol(format!(
                    "error reply with a {len}-byte message"
                ))));
            }
            let mut msg = vec![0u8; len];
            if let Err(e) = self.recv(&mut msg, deadline, "in an error reply") {
                return Err(self.fail(e));
            }
            let message = String::from_utf8_lossy(&msg).into_owned();
            return Err(match status {
                Some(Status::Busy) => HostError::Busy,
                Some(Status::Held) => HostError::Held(message),
                // The server closes the connection after this reply.
                Some(Status::Unauthorized) => {
                    self.fail(HostError::Auth(format!("{} refused: {message}", self.name)))
                }
                Some(Status::Timeout) => HostError::Timeout {
                    what: format!("{}: {message}", self.name),
                    timeout: extra_wait,
                },
                Some(status) => HostError::Remote { status, message },
                None => self.fail(HostError::Protocol(format!(
                    "unknown status {} ({message})",
                    reply_header.status
                ))),
            });
        }
        let ok = match reply {
            ReplyInto::Nothing => len == 0,
            ReplyInto::Message(v) => {
                if len <= MAX_MESSAGE {
                    v.resize(len, 0);
                    if let Err(e) = self.recv(v, deadline, "in a reply") {
                        return Err(self.fail(e));
                    }
                    true
                } else {
                    false
                }
            }
            ReplyInto::Exactly(out) => {
                if len == out.len() {
                    if let Err(e) = self.recv(out, deadline, "in a DMA reply") {
                        return Err(self.fail(e));
                    }
                    true
                } else {
                    false
                }
            }
        };
        if !ok {
            return Err(self.fail(HostError::Protocol(format!(
                "{op:?} reply carries {len} bytes of payload"
            ))));
        }
        Ok(reply_header)
    }
}

impl<P: BytePipe> Transport for FramedTransport<P> {
    fn info(&mut self) -> Result<Info> {
        let mut msg = vec![];
        self.call(
            Opcode::Info,
            0,
            0,
            &[],
            Duration::ZERO,
            ReplyInto::Message(&mut msg),
        )?;
        let info: Info = serde_json::from_slice(&msg)
            .map_err(|e| self.fail(HostError::Protocol(format!("info reply: {e}"))))?;
        self.memory_base = info.memory_base;
        Ok(info)
    }

    /// The served board's, from the last `info` (one is asked when connecting).
    fn memory_base(&self) -> u64 {
        self.memory_base
    }

    fn read32(&mut self, offset: u64) -> Result<u32> {
        check_register(offset)?;
        let h = self.call(
            Opcode::Read32,
            offset,
            0,
            &[],
            Duration::ZERO,
            ReplyInto::Nothing,
        )?;
        Ok(h.count)
    }

    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        check_register(offset)?;
        self.call(
            Opcode::Write32,
            offset,
            value,
            &[],
            Duration::ZERO,
            ReplyInto::Nothing,
        )?;
        Ok(())
    }

    fn dma_write(&mut self, card_addr: u64, data: &[u8]) -> Result<()> {
        check_dma("DMA write", card_addr, data.len(), self.card_bytes)?;
        for (i, piece) in data.chunks(MAX_PAYLOAD).enumerate() {
            let addr = card_addr + (i * MAX_PAYLOAD) as u64;
            self.call(
                Opcode::DmaWrite,
                addr,
                piece.len() as u32,
                piece,
                Duration::ZERO,
                ReplyInto::Nothing,
            )?;
        }
        Ok(())
    }

    fn dma_read(&mut self, card_addr: u64, out: &mut [u8]) -> Result<()> {
        check_dma("DMA read", card_addr, out.len(), self.card_bytes)?;
        for (i, piece) in out.chunks_mut(MAX_PAYLOAD).enumerate() {
            let addr = card_addr + (i * MAX_PAYLOAD) as u64;
            let n = piece.len() as u32;
            self.call(
                Opcode::DmaRead,
                addr,
                n,
                &[],
                Duration::ZERO,
                ReplyInto::Exactly(piece),
            )?;
        }
        Ok(())
    }

    fn wait_irq(&mut self, mask: u32, timeout: Duration) -> Result<u32> {
        let ms = timeout.as_millis().min(u128::from(u32::MAX)) as u64;
        let h = self.call(
            Opcode::WaitIrq,
            ms,
            mask,
            &[],
            timeout + WAIT_MARGIN,
            ReplyInto::Nothing,
        )?;
        Ok(h.count)
    }

    fn reset(&mut self) -> Result<()> {
        self.call(Opcode::Reset, 0, 0, &[], Duration::ZERO, ReplyInto::Nothing)?;
        Ok(())
    }
}
