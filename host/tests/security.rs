//! Who may use a board (docs/wire.md, "Security"): a daemon with a token answers nothing
//! but the token exchange until a client has proved it, and touches no memory for one
//! that has not; addresses other hosts can reach need the explicit wish and a token;
//! Unix sockets are owner-only unless opened to a group.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use tern_host::auth::{Secret, NONCE_BYTES};
use tern_host::framed::FramedTransport;
use tern_host::pipe::StreamPipe;
use tern_host::server::{check_listen, Listen, ServeOptions};
use tern_host::wire::{Header, Opcode, Status};
use tern_host::{HostError, Transport};

fn token() -> Secret {
    Secret::from_text("a shared secret of the lab, 32 b", "test").unwrap()
}

fn guarded() -> ServeOptions {
    ServeOptions {
        secret: Some(token()),
        ..ServeOptions::default()
    }
}

fn tcp(uri: &str) -> TcpStream {
    let s = TcpStream::connect(uri.strip_prefix("tcp:").unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send one request, read its reply.
fn call(s: &mut TcpStream, op: Opcode, tag: u32, addr: u64, payload: &[u8]) -> (Header, Vec<u8>) {
    let count = if op == Opcode::DmaWrite {
        payload.len() as u32
    } else {
        0
    };
    let mut frame = Header::request(op, tag, addr, count, payload.len())
        .encode()
        .to_vec();
    frame.extend_from_slice(payload);
    s.write_all(&frame).unwrap();
    // The payload as bytes (a challenge is not text).
    let mut h = [0u8; tern_host::wire::HEADER_BYTES];
    s.read_exact(&mut h).expect("no reply");
    let h = Header::decode(&h).unwrap();
    let mut payload = vec![0u8; h.len as usize];
    s.read_exact(&mut payload).unwrap();
    (h, payload)
}

fn open_with(
    uri: &str,
    cfg: &tern_hdl::Config,
    secret: Option<Secret>,
) -> tern_host::Result<tern_host::Device> {
    let opts = tern_host::OpenOptions {
        token: secret,
        board_wait: Duration::from_secs(20),
        ..options()
    };
    tern_host::Device::open(uri, cfg, &opts)
}

#[test]
fn an_unauthenticated_client_is_refused_before_any_memory_access() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, true, guarded());
    let pattern = [0xA5u8; 64];

    // A DMA write as the first request: refused, the connection closed.
    let mut s = tcp(&served.uri);
    let (h, text) = call(&mut s, Opcode::DmaWrite, 1, 0, &pattern);
    assert_eq!(
        h.status,
        Status::Unauthorized as u8,
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(String::from_utf8_lossy(&text).contains("requires a token"));
    assert!(closed(&mut s));

    // A proof without a challenge, and a wrong proof after one: refused and closed.
    let mut s = tcp(&served.uri);
    let (h, _) = call(&mut s, Opcode::Auth, 1, 0, &[0; 32]);
    assert_eq!(h.status, Status::Unauthorized as u8);
    assert!(closed(&mut s));
    let mut s = tcp(&served.uri);
    let (h, nonce) = call(&mut s, Opcode::Auth, 1, 0, &[]);
    assert_eq!((h.status, nonce.len()), (Status::Ok as u8, NONCE_BYTES));
    let wrong = Secret::from_text("not the lab's secret, but long enough", "t").unwrap();
    let (h, text) = call(&mut s, Opcode::Auth, 2, 0, &wrong.proof(&nonce));
    assert_eq!(h.status, Status::Unauthorized as u8);
    assert!(String::from_utf8_lossy(&text).contains("wrong token"));
    assert!(closed(&mut s));

    // Through the driver: no token, or the wrong one, is a clear error.
    match open_with(&served.uri, &cfg, None) {
        Err(HostError::Auth(m)) => assert!(m.contains("requires a token"), "{m}"),
        other => panic!("no token: expected an auth error, got {:?}", other.err()),
    }
    match open_with(&served.uri, &cfg, Some(wrong)) {
        Err(HostError::Auth(m)) => assert!(m.contains("wrong token"), "{m}"),
        other => panic!("wrong token: expected an auth error, got {:?}", other.err()),
    }

    // The right token: the memory the refused write aimed at is untouched, and runs are
    // bit-exact.
    let s = tcp(&served.uri);
    let mut t = FramedTransport::connect_waiting(
        StreamPipe::new(s),
        &served.uri,
        Duration::from_secs(10),
        Duration::from_secs(20),
        Some(&token()),
    )
    .unwrap();
    let mut seen = [0u8; 64];
    t.dma_read(0, &mut seen).unwrap();
    assert_ne!(
        seen, pattern,
        "an unauthenticated DMA write reached the board"
    );
    drop(t);
    let mut dev = open_with(&served.uri, &cfg, Some(token())).unwrap();
    gemm_matches_golden(&mut dev, &cfg, "authenticated client over TCP");
}

/// While another client holds the board, a waiting client without the token learns
/// nothing (not even who holds the board): it is refused as the holder would be.
#[test]
fn a_waiting_client_must_prove_the_token_too() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, true, guarded());
    let holder = open_with(&served.uri, &cfg, Some(token())).unwrap();
    let mut stranger = tcp(&served.uri);
    std::thread::sleep(Duration::from_millis(200));
    let (h, text) = call(
        &mut stranger,
        Opcode::Read32,
        1,
        u64::from(tern_host::regmap::HW_ID),
        &[],
    );
    let text = String::from_utf8_lossy(&text).into_owned();
    assert_eq!(h.status, Status::Unauthorized as u8, "{text}");
    assert!(!text.contains("held by"), "{text}");
    assert!(closed(&mut stranger));
    // A waiting client with the token is told who holds the board, as usual.
    let patient = tern_host::OpenOptions {
        token: Some(token()),
        board_wait: Duration::ZERO,
        ..options()
    };
    match tern_host::Device::open(&served.uri, &cfg, &patient) {
        Err(HostError::Held(m)) => assert!(m.contains("held by client 1"), "{m}"),
        other => panic!("expected Held, got {:?}", other.err()),
    }
    drop(holder);
}

#[test]
fn addresses_other_hosts_reach_need_the_wish_and_a_token() {
    let any: Listen = Listen::parse("tcp:0.0.0.0:0").unwrap();
    let err = check_listen(&any, &ServeOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--allow-remote") && err.contains("reachable from other hosts"),
        "{err}"
    );
    let wish = ServeOptions {
        allow_remote: true,
        ..ServeOptions::default()
    };
    let err = check_listen(&any, &wish).unwrap_err().to_string();
    assert!(err.contains("needs a token"), "{err}");
    let both = ServeOptions {
        allow_remote: true,
        ..guarded()
    };
    check_listen(&any, &both).unwrap();
    // Loopback and Unix sockets need neither.
    check_listen(
        &Listen::parse("tcp:127.0.0.1:0").unwrap(),
        &ServeOptions::default(),
    )
    .unwrap();
    check_listen(
        &Listen::parse("tcp:[::1]:0").unwrap(),
        &ServeOptions::default(),
    )
    .unwrap();
    check_listen(
        &Listen::parse("unix:/tmp/x.sock").unwrap(),
        &ServeOptions::default(),
    )
    .unwrap();
}

#[test]
fn unix_sockets_are_owner_only_unless_opened_to_a_group() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let meta = std::fs::metadata(sock_path(&served.uri)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(served);
    // SAFETY: getgid has no preconditions.
    let gid = unsafe { libc::getgid() };
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            socket_group: Some(gid),
            ..ServeOptions::default()
        },
    );
    let meta = std::fs::metadata(sock_path(&served.uri)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), gid);
    good_client_works(&served.uri);
}
