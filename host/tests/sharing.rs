//! Sharing one board (`tern serve`, docs/wire.md "Sharing a board"): one holder at a
//! time; waiting clients are told at once who holds the board and keep their place; a
//! busy holder gives the board up after the hold limit only while others wait; a queue
//! that is full leaves the rest in the listen backlog.

mod common;

use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

use tern_host::regmap;
use tern_host::server::ServeOptions;
use tern_host::wire::{Header, Opcode, Status};
use tern_host::HostError;

fn hw_id(tag: u32) -> [u8; 32] {
    Header::request(Opcode::Read32, tag, u64::from(regmap::HW_ID), 0, 0).encode()
}

/// Send a read of HW_ID and return (status, count, message).
fn ask(s: &mut std::os::unix::net::UnixStream, tag: u32) -> (u8, u32, String) {
    s.write_all(&hw_id(tag)).unwrap();
    let (h, text) = reply(s).expect("no reply");
    assert_eq!(h.tag, tag, "{text}");
    (h.status, h.count, text)
}

#[test]
fn a_waiting_client_is_told_at_once_who_holds_the_board_and_keeps_its_place() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let mut holder = raw(&served.uri);
    let mut second = raw_waiting(&served.uri);
    let leaver = raw_waiting(&served.uri);
    let mut third = raw_waiting(&served.uri);
    // Wait until all three are in the queue (the daemon looks every 50 ms).
    std::thread::sleep(Duration::from_millis(300));
    drop(leaver);

    let t0 = Instant::now();
    let (status, position, text) = ask(&mut second, 5);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        t0.elapsed()
    );
    assert_eq!(status, Status::Held as u8, "{text}");
    assert_eq!(position, 1, "{text}");
    // The holder is named by its process (this test) and the time it got the board.
    let me = format!("pid {}", std::process::id());
    assert!(
        text.starts_with("board busy: held by client 1 (") && text.contains(&me),
        "{text}"
    );
    assert!(
        text.contains(" UTC (") && text.contains("number 1 in the queue"),
        "{text}"
    );
    // The client that left is no longer counted ahead of the third.
    std::thread::sleep(Duration::from_millis(200));
    let (status, position, text) = ask(&mut third, 6);
    assert_eq!((status, position), (Status::Held as u8, 2), "{text}");

    // The holder is still served meanwhile.
    let (status, id, _) = ask(&mut holder, 7);
    assert_eq!((status, id), (Status::Ok as u8, regmap::HW_ID_VALUE));

    // When it leaves, the first in the queue gets the board on the same connection.
    drop(holder);
    await_turn(&mut second, Duration::from_secs(5));
    let (status, position, text) = ask(&mut third, 9);
    assert_eq!((status, position), (Status::Held as u8, 1), "{text}");
    assert!(text.contains("held by client 2"), "{text}");
}

#[test]
fn a_client_waits_its_turn_up_to_its_board_wait_and_then_names_the_holder() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let holder = raw(&served.uri);

    let impatient = tern_host::OpenOptions {
        board_wait: Duration::ZERO,
        ..options()
    };
    let err = tern_host::Device::open(&served.uri, &cfg, &impatient)
        .err()
        .expect("a client with no patience got a held board");
    match &err {
        HostError::Held(text) => {
            assert!(
                text.contains("held by client 1") && text.contains("--board-wait"),
                "{text}"
            )
        }
        other => panic!("expected Held, got {other}"),
    }

    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(holder);
    });
    let patient = tern_host::OpenOptions {
        board_wait: Duration::from_secs(20),
        ..options()
    };
    let t0 = Instant::now();
    let mut dev = tern_host::Device::open(&served.uri, &cfg, &patient).unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    release.join().unwrap();
    gemm_matches_golden(&mut dev, &cfg, "client that waited its turn");
}

#[test]
fn the_hold_limit_ends_a_busy_holders_turn_only_while_others_wait() {
    let cfg = config(3, 24);
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            max_hold: Duration::from_millis(400),
            ..ServeOptions::default()
        },
    );
    let mut busy = raw(&served.uri);
    // Alone, it keeps the board well past the limit.
    for tag in 1..=10 {
        let (status, _, text) = ask(&mut busy, tag);
        assert_eq!(status, Status::Ok as u8, "request {tag}: {text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut waiting = raw_waiting(&served.uri);
    let (status, _, text) = ask(&mut waiting, 1);
    assert_eq!(status, Status::Held as u8, "{text}");
    // Its next request is refused with the reason, and the connection closed.
    let (status, _, text) = ask(&mut busy, 11);
    assert_eq!(status, Status::Held as u8, "{text}");
    assert!(
        text.starts_with("hold limit:") && text.contains("1 client(s) are waiting"),
        "{text}"
    );
    assert!(closed(&mut busy));
    await_turn(&mut waiting, Duration::from_secs(5));
}

#[test]
fn a_full_queue_leaves_further_clients_in_the_listen_backlog() {
    let cfg = config(3, 24);
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            max_waiting: 1,
            ..ServeOptions::default()
        },
    );
    let holder = raw(&served.uri);
    let mut first = raw_waiting(&served.uri);
    std::thread::sleep(Duration::from_millis(200));
    let mut second = raw_waiting(&served.uri);
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let (status, _, text) = ask(&mut first, 1);
    assert_eq!(status, Status::Held as u8, "{text}");
    second.write_all(&hw_id(1)).unwrap();
    assert!(
        reply(&mut second).is_none(),
        "a client beyond the queue's limit was answered"
    );
    // Once the holder leaves, the first waiting client is served and the one in the
    // backlog moves into the queue; its request, sent long ago, is answered there.
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    drop(holder);
    let (h, text) = reply(&mut second).expect("the backlog client was never answered");
    assert_eq!(h.status, Status::Held as u8, "{text}");
    assert!(text.contains("held by client 2"), "{text}");
}
