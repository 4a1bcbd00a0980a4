//! The attention engine on the board: the KV cache in the DDR model, appended token by
//! token, decode and causal prefill through `Device`, in process and over a socket,
//! each row bit-exact against the golden model (`tern_sim::golden::attention`).

mod common;

use ndarray::{s, Array2};

use common::{options, serve_design_in_thread};
use tern_hdl::config::{AttentionConfigBuilder, TopConfig};
use tern_hdl::streams::attention::schedule;
use tern_hdl::top::regmap;
use tern_hdl::{AttentionConfig, DesignConfig};
use tern_host::server::ServeOptions;
use tern_host::{Device, HostError};
use tern_sim::cosim::attention::{AttentionVectorKind, AttentionVectors};
use tern_sim::golden::attention::streamed_attention;

/// An attention engine of `macs` lanes over `head_dim`, tiles of `tile` keys, rows in
/// blocks of `query_block`, behind a `bus_bits` AXI4 master with short bursts (so rows
/// cross many bursts).
fn config(
    head_dim: usize,
    macs: usize,
    tile: usize,
    mode: &str,
    (seq_len, queries, query_block): (usize, usize, usize),
    bus_bits: usize,
) -> AttentionConfig {
    let mut cfg = AttentionConfigBuilder::new(head_dim, macs, tile, 64)
        .mode(mode == "prefill", mode == "prefill")
        .workload(seq_len, queries)
        .query_block(query_block)
        .build()
        .unwrap();
    cfg.top = TopConfig {
        bus_bits,
        burst_beats: 4,
        reads_in_flight: 2,
        memory_mib: 16,
    };
    cfg
}

fn open(cfg: &AttentionConfig) -> Device {
    Device::open_design("sim:", &DesignConfig::Attention(cfg.clone()), &options()).unwrap()
}

/// Fill the cache with the workload's keys and values (in two appends that split a
/// tile), run its rows, and compare every row with the golden model.
fn rows_match_golden(dev: &mut Device, cfg: &AttentionConfig, backend: &str) {
    let (seq, queries) = (cfg.workload.seq_len, cfg.workload.queries);
    let causal = cfg.attention.causal;
    // On the board the top derives each row's visible keys from the call (position,
    // causal), so the kinds that mask rows by hand do not apply.
    let kinds = AttentionVectorKind::ALL.into_iter().filter(|k| {
        !matches!(
            k,
            AttentionVectorKind::OneVisible | AttentionVectorKind::NoneVisible
        )
    });
    for (seed, kind) in kinds.enumerate() {
        let seed = seed as u64 + 11;
        let v = AttentionVectors::generate(cfg, kind, seed);
        dev.kv_clear().unwrap();
        let split = seq / 2 + 1;
        let part = |a: &Array2<i8>, r: std::ops::Range<usize>| {
            a.slice(s![r, ..]).iter().copied().collect::<Vec<i8>>()
        };
        dev.kv_append(&part(&v.k, 0..split), &part(&v.v, 0..split))
            .unwrap();
        dev.kv_append(&part(&v.k, split..seq), &part(&v.v, split..seq))
            .unwrap();
        assert_eq!(dev.kv_len().unwrap(), seq);
        let q: Vec<i8> = v.q.iter().copied().collect();
        let run = dev
            .attention(&q, seq - queries, causal)
            .unwrap_or_else(|e| panic!("{backend}, {kind:?} seed {seed}: {e}"));
        let want = streamed_attention(cfg, &v.rows, v.q.view(), v.k.view(), v.v.view());
        assert_eq!(run.rows.len(), want.len(), "{backend}, {kind:?}: rows");
        for (i, (got, want)) in run.rows.iter().zip(&want).enumerate() {
            if got != want {
                let c = (0..want.values.len()).find(|&c| got.values[c] != want.values[c]);
                panic!(
                    "{backend}, {kind:?} seed {seed}: row {i} (position {}) differs at lane {c:?}: \
                     board {:?} (empty {}) golden {:?} (empty {}); config: {}",
                    v.rows[i].position,
                    got.values,
                    got.empty,
                    want.values,
                    want.empty,
                    cfg.to_toml().replace('\n', " ")
                );
            }
        }
        let rows = schedule(seq - queries, queries, seq, causal, cfg.attention.tile);
        assert_eq!(v.rows, rows, "the workload's rows are the call's rows");
        assert!(run.cycles > 0 && run.bytes_read > 0);
    }
}

#[test]
fn decode_on_the_board_matches_golden() {
    // 64-bit beats cut from 128-bit bus words; 21 keys: two whole tiles and a partial one.
    let cfg = config(32, 8, 8, "decode", (21, 1, 1), 128);
    let mut dev = open(&cfg);
    rows_match_golden(&mut dev, &cfg, "sim: decode");
}

#[test]
fn causal_prefill_on_the_board_matches_golden() {
    // 128-bit beats collected from two 64-bit bus words; 19 keys in tiles of 4, six rows
    // whose last tiles are partial or whole.
    let cfg = config(32, 16, 4, "prefill", (19, 6, 1), 64);
    let mut dev = open(&cfg);
    rows_match_golden(&mut dev, &cfg, "sim: prefill");
}

#[test]
fn causal_prefill_in_blocks_reads_each_tile_once_per_block() {
    // 19 keys in tiles of 4, 10 rows in blocks of 4, 4 and 2: each block's tiles are
    // read once and replayed on chip.
    let blocked = config(32, 16, 4, "prefill", (19, 10, 4), 128);
    let mut dev = open(&blocked);
    rows_match_golden(&mut dev, &blocked, "sim: prefill in blocks of 4");
    let rows = schedule(9, 10, 19, true, 4);
    // Positions 9..=12, 13..=16, 17..=18: the last rows see 13, 17 and 19 keys, which
    // stream 16, 19 (the end of the sequence) and 19 keys.
    let keys = 16 + 19 + 19;
    let run = dev.attention(&[3; 320], 9, true).unwrap();
    assert_eq!(run.bytes_read, (10 * 32 + 2 * keys * 32) as u64);
    let alone: usize = rows.iter().map(|r| r.kv_len).sum();
    assert!(
        keys * 2 < alone,
        "blocks of 4 read {keys} keys, rows alone {alone}"
    );
}

#[test]
fn decode_token_by_token_grows_the_cache() {
    // One 256-bit beat per bus word; the cache grows a token at a time across tiles, and
    // each step's query sees every key so far.
    let cfg = config(64, 32, 16, "decode", (40, 1, 1), 256);
    let v = AttentionVectors::generate(&cfg, AttentionVectorKind::Gaussian, 5);
    let mut dev = open(&cfg);
    for t in 0..40 {
        let row = |a: &Array2<i8>| a.row(t).iter().copied().collect::<Vec<i8>>();
        dev.kv_append(&row(&v.k), &row(&v.v)).unwrap();
        if t % 7 != 6 && t != 39 && t > 2 {
            continue;
        }
        let q: Vec<i8> = v.k.row((t * 5) % (t + 1)).iter().copied().collect();
        let run = dev.attention(&q, t, false).unwrap();
        let rows = schedule(t, 1, t + 1, false, cfg.attention.tile);
        let qa = Array2::from_shape_vec((1, 64), q).unwrap();
        let want = streamed_attention(&cfg, &rows, qa.view(), v.k.view(), v.v.view());
        assert_eq!(run.rows, want, "step {t} (seed 5)");
        assert_eq!(run.bytes_read, (64 + 2 * (t + 1) * 64) as u64);
    }
}

#[test]
fn attention_over_a_unix_socket_matches_golden() {
    let cfg = config(32, 8, 8, "decode", (21, 1, 1), 128);
    let design = DesignConfig::Attention(cfg.clone());
    let served = serve_design_in_thread(&design, false, ServeOptions::default());
    let mut dev = Device::open_design(&served.uri, &design, &options()).unwrap();
    rows_match_golden(&mut dev, &cfg, &served.uri);
}

#[test]
fn a_cache_longer_than_the_engine_allows_is_refused() {
    let cfg = config(32, 8, 8, "decode", (21, 1, 1), 128);
    let mut dev = open(&cfg);
    let d = 32;
    dev.kv_append(&vec![1; 60 * d], &vec![2; 60 * d]).unwrap();
    let err = dev.kv_append(&vec![1; 5 * d], &vec![2; 5 * d]).unwrap_err();
    assert!(
        matches!(err, HostError::KvCache(ref m) if m.contains("max_seq_len = 64")),
        "{err}"
    );
    assert_eq!(
        dev.kv_len().unwrap(),
        60,
        "a refused append changes nothing"
    );
    let err = dev.attention(&[0; 32], 60, true).unwrap_err();
    assert!(matches!(err, HostError::KvCache(_)), "{err}");
    let err = dev.gemm(&[0; 32]).unwrap_err();
    assert!(matches!(err, HostError::WrongEngine { .. }), "{err}");
    // The kernel refuses the same by itself: SEQ_LEN beyond max_seq_len, a causal row
    // beyond SEQ_LEN, SEQ_LEN = 0. Each run ends at once with ERROR.bad_length.
    let t = dev.transport();
    for (seq_len, first, causal) in [(65u32, 0u32, 0u32), (10, 10, 1), (0, 0, 0)] {
        t.write32(regmap::ACTIVATIONS.into(), 1 << 20).unwrap();
        t.write32(regmap::RESULTS.into(), 2 << 20).unwrap();
        t.write32(regmap::TOKENS.into(), 1).unwrap();
        t.write32(regmap::SEQ_LEN.into(), seq_len).unwrap();
        t.write32(regmap::FIRST_POSITION.into(), first).unwrap();
        t.write32(regmap::CAUSAL.into(), causal).unwrap();
        t.write32(regmap::CONTROL.into(), regmap::AP_START).unwrap();
        let mut control = 0;
        for _ in 0..100 {
            control = t.read32(regmap::CONTROL.into()).unwrap();
            if control & regmap::AP_DONE != 0 {
                break;
            }
        }
        assert_ne!(control & regmap::AP_DONE, 0, "SEQ_LEN {seq_len}: no done");
        assert_eq!(
            t.read32(regmap::ERROR.into()).unwrap(),
            regmap::ERR_BAD_LENGTH,
            "SEQ_LEN {seq_len}, FIRST_POSITION {first}, CAUSAL {causal}"
        );
    }
    // And a good run afterwards is bit-exact.
    let v = AttentionVectors::generate(&cfg, AttentionVectorKind::Gaussian, 3);
    dev.kv_clear().unwrap();
    dev.kv_append(
        &v.k.iter().copied().collect::<Vec<_>>(),
        &v.v.iter().copied().collect::<Vec<_>>(),
    )
    .unwrap();
    let q: Vec<i8> = v.q.iter().copied().collect();
    let run = dev.attention(&q, 20, false).unwrap();
    let want = streamed_attention(&cfg, &v.rows, v.q.view(), v.k.view(), v.v.view());
    assert_eq!(run.rows, want, "after refused runs (seed 3)");
}

/// Several KV caches side by side (a model keeps one per layer and KV head): each slot's
/// rows see only its own keys and values, and appending to one leaves the others alone.
#[test]
fn kv_cache_slots_are_independent() {
    let cfg = config(32, 8, 8, "decode", (21, 1, 1), 128);
    let mut dev = open(&cfg);
    dev.set_slots(3).unwrap();
    let kinds = [
        AttentionVectorKind::Gaussian,
        AttentionVectorKind::BeyondClip,
        AttentionVectorKind::Gaussian,
    ];
    let vectors: Vec<AttentionVectors> = kinds
        .iter()
        .enumerate()
        .map(|(slot, &kind)| AttentionVectors::generate(&cfg, kind, 40 + slot as u64))
        .collect();
    // Interleaved appends of unequal length: slot s holds 21 − 3s keys.
    for (slot, v) in vectors.iter().enumerate() {
        let seq = 21 - 3 * slot;
        let flat = |a: &Array2<i8>| a.slice(s![..seq, ..]).iter().copied().collect::<Vec<i8>>();
        dev.kv_append_to(slot, &flat(&v.k), &flat(&v.v)).unwrap();
    }
    for (slot, v) in vectors.iter().enumerate() {
        let seq = 21 - 3 * slot;
        assert_eq!(dev.kv_len_of(slot).unwrap(), seq);
        let q: Vec<i8> = v.q.iter().copied().collect();
        let run = dev.attention_on(slot, &q, seq - 1, false).unwrap();
        let rows = schedule(seq - 1, 1, seq, false, cfg.attention.tile);
        let want = streamed_attention(&cfg, &rows, v.q.view(), v.k.view(), v.v.view());
        assert_eq!(
            run.rows,
            want,
            "slot {slot} ({seq} keys, seed {})",
            40 + slot
        );
    }
    assert!(matches!(
        dev.attention_on(3, &[0; 32], 0, false),
        Err(HostError::Shape(e)) if e.contains("slot 3")
    ));
    let err = dev.set_slots(1 << 20).unwrap_err().to_string();
    assert!(err.contains("do not fit"), "{err}");
}
