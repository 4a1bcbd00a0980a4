//! Sharing one board (`tern serve`, docs/wire.md "Sharing a board"): one holder at a
//! time; waiting clients are told at once who holds the board and keep their place; a
//! busy holder gives the board up after the hold limit only while others wait; a queue
//! that is full leaves the rest in the listen backlog; a holder that dies mid-wait frees
//! the board at once; a waiting client that stalls mid-request delays no one.

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

/// A holder killed inside a long `wait_irq` (its socket closes, as under `kill -9`) gives
/// the board up within a second, not when its wait would have ended.
#[test]
fn a_holder_that_dies_inside_wait_irq_frees_the_board_at_once() {
    let cfg = config(3, 24);
    let served = serve_in_thread(&cfg, false, ServeOptions::default());
    let mut dying = raw(&served.uri);
    // Mask 0: no interrupt can end this wait; only its 60 s limit would.
    let wait = Header::request(Opcode::WaitIrq, 2, 60_000, 0, 0);
    dying.write_all(&wait.encode()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(dying);
    let t0 = Instant::now();
    let patient = tern_host::OpenOptions {
        board_wait: Duration::from_secs(20),
        ..options()
    };
    let mut dev = tern_host::Device::open(&served.uri, &cfg, &patient).unwrap();
    let waited = t0.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "the board came free {waited:?} after its holder died"
    );
    gemm_matches_golden(&mut dev, &cfg, "client after a holder died mid-wait");
}

/// A waiting client that sends half a request and stalls holds up no one: the lobby
/// answers the others at once, answers the stalled one when its request is whole, and
/// drops it if the rest never comes within the frame timeout.
#[test]
fn a_waiting_client_stalled_mid_request_delays_no_one() {
    let cfg = config(3, 24);
    let served = serve_in_thread(
        &cfg,
        false,
        ServeOptions {
            frame_timeout: Duration::from_secs(3),
            ..ServeOptions::default()
        },
    );
    let _holder = raw(&served.uri);
    let mut staller = raw_waiting(&served.uri);
    let mut talker = raw_waiting(&served.uri);
    let mut quitter = raw_waiting(&served.uri);
    std::thread::sleep(Duration::from_millis(300));
    staller.write_all(&hw_id(1)[..10]).unwrap();
    quitter.write_all(&hw_id(1)[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for tag in 5..8 {
        let t0 = Instant::now();
        let (status, position, text) = ask(&mut talker, tag);
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "answered after {:?} while another client stalled mid-frame",
            t0.elapsed()
        );
        assert_eq!((status, position), (Status::Held as u8, 2), "{text}");
    }
    // The rest of the stalled request arrives: it is answered, the client keeps its place.
    staller.write_all(&hw_id(1)[10..]).unwrap();
    let (h, text) = reply(&mut staller).expect("the stalled request was never answered");
    assert_eq!(
        (h.status, h.tag, h.count),
        (Status::Held as u8, 1, 1),
        "{text}"
    );
    // The one that never finishes is dropped after the frame timeout.
    quitter
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t0 = Instant::now();
    assert!(closed(&mut quitter), "a stalled waiting client was kept");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}
