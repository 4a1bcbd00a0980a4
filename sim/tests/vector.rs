//! The vector unit's arithmetic (docs/vector.md): each operation against the real
//! numbers it stands for, and a whole token in fixed point against the float reference
//! (what the number format costs), over the software fabric.

#[path = "common/bitnet.rs"]
mod bitnet_helpers;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use tern_model::checkpoint::Checkpoint;
use tern_model::ModelConfig;

use bitnet_helpers::{calibrated, cosine, layout_2b4t};
use tern_sim::golden::bitnet::{greedy, FloatReference, GoldenFabric, IntegerModel};
use tern_sim::golden::fixed_point::{FixedPointModel, VectorProgram, RESIDUAL_FRAC};
use tern_sim::golden::vector::{
    dequant, factor, head4_scores, head_scores, norm_quant, relu2_mul, rha, to_int8, Gain,
    Int4Head, Int8Head, Saturations, Scale,
};

#[test]
fn scales_hold_24_significant_bits_and_refuse_what_is_not_a_scale() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..2000 {
        let x: f64 = 10f64.powf(rng.gen_range(-12.0..12.0));
        let s = Scale::of(x).unwrap();
        assert!((1 << 23..1 << 24).contains(&s.m), "{x}: {s:?}");
        assert!((s.value() / x - 1.0).abs() <= 2f64.powi(-24), "{x}: {s:?}");
    }
    assert_eq!(Scale::of(0.0).unwrap(), Scale::ZERO);
    for bad in [f64::NAN, -1.0, f64::INFINITY] {
        assert!(Scale::of(bad).is_err(), "{bad}");
    }
}

#[test]
fn rounding_is_half_away_from_zero() {
    for (v, k, want) in [
        (5, 1, 3),
        (-5, 1, -3),
        (3, 1, 2),
        (1, 1, 1),
        (-1, 1, -1),
        (4, 2, 1),
        (6, 2, 2),
        (-6, 2, -2),
        (7, -2, 28),
        (0, 5, 0),
    ] {
        assert_eq!(rha(v, k), want, "rha({v}, {k})");
    }
}

/// `q_i = round_half_away(127·p_i / M)` exactly, and one unit is worth
/// `M / (127·r·2^Fg)` of the normalised vector: against f64 on random vectors.
#[test]
fn norm_quant_is_rmsnorm_then_absmax_int8() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let eps = Scale::of(1e-5).unwrap();
    // A hand case: p = (2, -4, 1)·2^14, M = 4·2^14: 63.5 rounds away to 64.
    let ones = Gain::of(&[1.0; 3]);
    assert_eq!(ones.frac, 14);
    assert_eq!(norm_quant(&[2, -4, 1], 0, &ones, eps).q, vec![64, -127, 32]);
    for case in 0..200 {
        let n = rng.gen_range(1..64);
        let frac = rng.gen_range(4..20);
        let v: Vec<i32> = (0..n)
            .map(|_| rng.gen_range(-(1 << 24)..(1 << 24)))
            .collect();
        let g: Vec<f32> = (0..n).map(|_| rng.gen_range(-3.0..3.0)).collect();
        let gain = Gain::of(&g);
        let qz = norm_quant(&v, frac, &gain, eps);
        let p: Vec<f64> = v
            .iter()
            .zip(&gain.g)
            .map(|(&x, &g)| f64::from(x) * f64::from(g))
            .collect();
        let max = p.iter().fold(0f64, |m, x| m.max(x.abs()));
        for (i, (&q, &p)) in qz.q.iter().zip(&p).enumerate() {
            let want = if max == 0.0 { 0.0 } else { 127.0 * p / max };
            assert!(
                (f64::from(q) - want).abs() <= 0.5 + 1e-9,
                "case {case}, element {i}: {q} for {want}"
            );
        }
        // The unit against the float network's: normalised = v·g / rms.
        let real = |x: i32| f64::from(x) / 2f64.powi(frac);
        let rms = (v.iter().map(|&x| real(x).powi(2)).sum::<f64>() / n as f64 + 1e-5).sqrt();
        let unit = qz.max as f64 / (127.0 * qz.rms as f64 * 2f64.powi(gain.frac));
        let float_unit = max / 2f64.powi(frac + gain.frac) / rms / 127.0;
        assert!(
            (unit / float_unit - 1.0).abs() < 1e-6,
            "case {case}: unit {unit} against {float_unit}"
        );
    }
}

/// `y = acc · M·w / (127·r·2^Fg) · 2^F` rounded half away: within half a step of f64.
#[test]
fn dequant_scales_integer_results_into_fixed_point() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let eps = Scale::of(1e-6).unwrap();
    for case in 0..200 {
        let n = 32;
        let v: Vec<i32> = (0..n)
            .map(|_| rng.gen_range(-(1 << 20)..(1 << 20)))
            .collect();
        let gain = Gain::of(
            &(0..n)
                .map(|_| rng.gen_range(0.1f32..4.0))
                .collect::<Vec<_>>(),
        );
        let qz = norm_quant(&v, 16, &gain, eps);
        let w = Scale::of(10f64.powf(rng.gen_range(-3.0..0.5))).unwrap();
        let f = factor(&qz, w, RESIDUAL_FRAC);
        assert!((1 << 31..1 << 32).contains(&f.k), "case {case}: {f:?}");
        let acc: Vec<i64> = (0..64).map(|_| rng.gen_range(-200_000..200_000)).collect();
        let mut sat = Saturations::default();
        let y = dequant(&acc, f, &mut sat);
        let unit = qz.max as f64 * w.value() / (127.0 * qz.rms as f64 * 2f64.powi(gain.frac));
        for (&a, &y) in acc.iter().zip(&y) {
            let want = a as f64 * unit * 2f64.powi(RESIDUAL_FRAC);
            if want.abs() < 2e9 {
                assert!(
                    (f64::from(y) - want).abs() <= 0.5 + want.abs() * 2f64.powi(-30),
                    "case {case}: {y} for {want}"
                );
            }
        }
    }
}

#[test]
fn relu2_mul_keeps_31_bits_of_the_largest_and_the_int8_casts_clamp() {
    let (a, frac) = relu2_mul(
        &[3 << 16, -5 << 16, 1 << 15],
        &[2 << 16, 7 << 16, -(1 << 16)],
        16,
    );
    // 9·2 = 18, 0, 0.25·(-1) = -0.25 in 48 fractional bits, shifted to 31 bits.
    let real: Vec<f64> = a.iter().map(|&x| f64::from(x) / 2f64.powi(frac)).collect();
    assert_eq!(real, vec![18.0, 0.0, -0.25]);
    let top = a.iter().map(|x| x.unsigned_abs()).max().unwrap();
    assert!((1 << 30..1 << 31).contains(&top), "{top}");
    let inv = Scale::of(1.0 / 0.05).unwrap();
    assert_eq!(
        to_int8(&[1 << 16, -(1 << 20), 0, 1 << 14], 16, inv),
        vec![20, -128, 0, 5]
    );
}

/// The int8 head's scores order rows as its dequantised weights do, and the scores are
/// `acc_r · m_r` exactly.
#[test]
fn the_int8_head_scores_rows_by_their_own_scale() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (rows, width) = (50, 40);
    let head: Vec<f32> = (0..rows * width)
        .map(|i| rng.gen_range(-1.0f32..1.0) * (1 + i / width) as f32)
        .collect();
    let h = Int8Head::of(&head, rows, width);
    assert!(h.row_m.iter().all(|&m| m > 0));
    let q: Vec<i8> = (0..width).map(|_| rng.gen()).collect();
    let scores = head_scores(&h, &q);
    for r in 0..rows {
        let acc: i64 = h.w[r * width..(r + 1) * width]
            .iter()
            .zip(&q)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        assert_eq!(scores[r], acc * i64::from(h.row_m[r]));
        let real: f64 = head[r * width..(r + 1) * width]
            .iter()
            .zip(&q)
            .map(|(&w, &x)| f64::from(w) * f64::from(x))
            .sum();
        // Each weight is off by at most half its row's step, or by what clamping to 127
        // cuts off when the step was rounded down.
        let approx = scores[r] as f64 * 2f64.powi(h.exp);
        let step = f64::from(h.row_m[r]) * 2f64.powi(h.exp);
        let amax = head[r * width..(r + 1) * width]
            .iter()
            .fold(0f64, |m, &w| m.max(f64::from(w).abs()));
        let per_weight = step / 2.0 + (amax - 127.0 * step).max(0.0);
        let bound: f64 = q.iter().map(|&x| f64::from(x).abs() * per_weight).sum();
        assert!(
            (approx - real).abs() <= bound * (1.0 + 1e-9),
            "row {r}: {approx} for {real}"
        );
    }
}

/// What the fixed-point format costs: the whole token in the vector unit's integers
/// against the float reference, fed the same tokens (the prompt, then the float
/// reference's choices), 3 random checkpoints × 24 steps; beside it the integer contract
/// with the host's f32 (`IntegerModel`, the same fabric), to tell what fixed point and
/// the int8 head add to what the int8 matmul inputs and the attention already cost.
#[test]
fn a_whole_token_in_fixed_point_follows_the_float_reference() {
    let tiny = ModelConfig::preset("tiny").unwrap();
    let prompt = [5usize, 17, 200, 3, 3, 91, 44, 128];
    for seed in [1u64, 2, 3] {
        let ck = Checkpoint::random(&tiny, seed);
        let (scales, cfg) = calibrated(&ck, &prompt);
        let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
        let mut float = FloatReference::new(&ck);
        let mut fixed = FixedPointModel::new(&ck, &program);
        let mut fabric = GoldenFabric::new(&ck, &cfg);
        let mut host = IntegerModel::new(&ck, scales);
        let mut host_fabric = GoldenFabric::new(&ck, &cfg);
        let (mut worst, mut agree, mut next) = (1f64, 0, prompt[0]);
        let (mut worst_host, mut against_host) = (1f64, 1f64);
        for i in 0..24 {
            let token = if i < prompt.len() { prompt[i] } else { next };
            let f = float.step(token);
            let out = fixed.forward(&mut fabric, &[token]).unwrap();
            assert_eq!(out.next, greedy(&out.logits), "seed {seed}, step {i}");
            worst = worst.min(cosine(&f, &out.logits));
            let h = host.forward(&mut host_fabric, &[token]).unwrap();
            worst_host = worst_host.min(cosine(&f, &h));
            against_host = against_host.min(cosine(&h, &out.logits));
            agree += usize::from(greedy(&f) == out.next);
            next = greedy(&f);
        }
        println!(
            "seed {seed}: worst logit cosine {worst:.5} (host f32: {worst_host:.5}; fixed point against host f32: {against_host:.5}), top-1 agreement {agree}/24"
        );
        assert_eq!(fixed.saturations.0, 0, "seed {seed}: saturated");
        assert!(
            worst > 0.99 && agree >= 21,
            "seed {seed}: fixed point strays from the float reference (cosine {worst}, top-1 {agree}/24)"
        );
    }
}

/// A prompt in one pass gives the same next token and logits, bit for bit, as the same
/// prompt fed in three passes.
#[test]
fn a_prompt_in_one_pass_equals_it_in_pieces() {
    let tiny = ModelConfig::preset("tiny").unwrap();
    let ck = Checkpoint::random(&tiny, 7);
    let prompt = [9usize, 8, 7, 100, 101, 102, 255, 0, 1, 2, 3];
    let (scales, cfg) = calibrated(&ck, &prompt);
    let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
    let mut whole = FixedPointModel::new(&ck, &program);
    let mut whole_fabric = GoldenFabric::new(&ck, &cfg);
    let at_once = whole.forward(&mut whole_fabric, &prompt).unwrap();
    let mut steps = FixedPointModel::new(&ck, &program);
    let mut steps_fabric = GoldenFabric::new(&ck, &cfg);
    let mut last = None;
    for cut in [&prompt[..4], &prompt[4..5], &prompt[5..]] {
        last = Some(steps.forward(&mut steps_fabric, cut).unwrap());
    }
    assert_eq!(Some(at_once), last, "seed 7: passes of 4, 1 and 6 tokens");
    assert_eq!(
        whole.forward(&mut whole_fabric, &[42]).unwrap(),
        steps.forward(&mut steps_fabric, &[42]).unwrap()
    );
}

/// What each LM-head format costs against the checkpoint's bf16 head, on the fabric's own
/// path (the same final-norm int8 vector read by every head): int8 with a scale per row,
/// and 4-bit with a scale per group of 32, 64 or 128 (the one top's: a group an engine
/// beat on four ports). 3 random checkpoints in the 2B4T layout
/// (vocabulary 512) × 64 steps, each fed its own greedy token.
#[test]
fn lm_head_formats_against_bf16() {
    let config = layout_2b4t();
    let prompt = [17usize, 4, 300, 21, 9, 9, 128, 77];
    let (h, vocab) = (config.hidden, config.vocab);
    for seed in [1u64, 2, 3] {
        let ck = Checkpoint::random(&config, seed);
        let (scales, cfg) = calibrated(&ck, &prompt);
        let program = VectorProgram::build(&ck, &[scales], RESIDUAL_FRAC).unwrap();
        let head = ck.lm_head.as_ref().unwrap_or(&ck.embed_tokens);
        let bf16: Vec<f64> = head
            .iter()
            .map(|&w| {
                f64::from(tern_hdl::program::bf16_value(tern_hdl::program::bf16_bits(
                    w,
                )))
            })
            .collect();
        let int4: Vec<Int4Head> = [32, 64, 128]
            .iter()
            .map(|&g| Int4Head::of(head, vocab, h, g))
            .collect();
        let mut model = FixedPointModel::new(&ck, &program);
        let mut fabric = GoldenFabric::new(&ck, &cfg);
        let mut next = prompt[0];
        // Per format: worst cosine, steps whose top-1 equals bf16's.
        let mut stats = [(1f64, 0usize); 4];
        for step in 0..64 {
            let token = if step < prompt.len() {
                prompt[step]
            } else {
                next
            };
            let out = model.forward(&mut fabric, &[token]).unwrap();
            let q = &out.last;
            let unit = q.max as f64 / (127.0 * q.rms as f64 * 2f64.powi(q.gain_frac));
            let reference: Vec<f32> = bf16
                .chunks(h)
                .map(|row| {
                    let dot: f64 = row.iter().zip(&q.q).map(|(&w, &x)| w * f64::from(x)).sum();
                    (dot * unit) as f32
                })
                .collect();
            let mut formats = vec![out.logits.clone()];
            formats.extend(int4.iter().map(|head| {
                head4_scores(head, &q.q)
                    .iter()
                    .map(|&s| (s as f64 * 2f64.powi(head.exp) * unit) as f32)
                    .collect()
            }));
            for (s, logits) in stats.iter_mut().zip(&formats) {
                s.0 = s.0.min(cosine(&reference, logits));
                s.1 += usize::from(greedy(logits) == greedy(&reference));
            }
            next = out.next;
        }
        println!(
            "seed {seed}: against the bf16 head, worst logit cosine / top-1 agreement over 64 steps: int8 per row {:.5} / {}, 4-bit groups of 32 {:.5} / {}, groups of 64 {:.5} / {}, groups of 128 {:.5} / {}",
            stats[0].0, stats[0].1, stats[1].0, stats[1].1, stats[2].0, stats[2].1, stats[3].0, stats[3].1
        );
        assert!(
            stats[0].0 > 0.999 && stats[0].1 >= 62,
            "seed {seed}: int8 head {:?}",
            stats[0]
        );
        for s in &stats[1..] {
            assert!(s.0 > 0.99, "seed {seed}: 4-bit head {s:?}");
        }
    }
}

/// The `norm_quant` RTL (4 and 8 lanes) against its golden model, bit for bit: random
/// vectors from full-range to tiny, all zeros, the extreme integers, random fractional
/// bits and ε, with and without random stalls on both handshakes; exactly n outputs.
#[test]
fn norm_quant_rtl_matches_the_golden_model() {
    use tern_hdl::vector::NormQuantShape;
    use tern_sim::cosim::vector::NormQuantInput;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    for lanes in [4usize, 8] {
        let shape = NormQuantShape { lanes, max_n: 256 };
        let model = cache.load_norm_quant(shape).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(lanes as u64);
        for case in 0..40u64 {
            let n = lanes * rng.gen_range(1..=256 / lanes);
            let bits = [31u32, 24, 12, 3][case as usize % 4];
            let mut v: Vec<i32> = (0..n)
                .map(|_| rng.gen_range(-(1i64 << bits)..(1i64 << bits)) as i32)
                .collect();
            match case {
                0 => v.iter_mut().for_each(|x| *x = 0),
                1 => v.iter_mut().for_each(|x| *x = i32::MIN),
                2 => v[0] = i32::MAX,
                _ => {}
            }
            let g: Vec<f32> = (0..n).map(|_| rng.gen_range(-4.0f32..4.0)).collect();
            let mut gain = Gain::of(&g);
            if case == 1 {
                gain.g.iter_mut().for_each(|x| *x = i16::MIN);
            }
            let v_frac = rng.gen_range(-8..48);
            let eps = Scale::of(10f64.powf(rng.gen_range(-7.0..-3.0))).unwrap();
            let stall = if case % 3 == 0 { 0 } else { 1000 + case };
            let seed = lanes as u64 * 1000 + case;
            let input = NormQuantInput {
                v: &v,
                v_frac,
                gain: &gain,
                eps,
            };
            let run = model
                .check(&input, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            // Without stalls the clocks are the cycle model's, exactly.
            if stall == 0 {
                assert_eq!(
                    run.clocks,
                    tern_hdl::vector::norm_quant_clocks(shape, n),
                    "case {case}, n {n}"
                );
            }
        }
    }
}

/// The vector unit's Verilog is lint-clean under `verilator --lint-only -Wall`, with no
/// waiver, at every lane count a design may use.
#[test]
fn vector_unit_verilog_is_lint_clean() {
    use tern_hdl::vector::{dequant_verilog, norm_quant_verilog, NormQuantShape};
    let dir = tempfile::tempdir().unwrap();
    for (lanes, max_n) in [(1usize, 8usize), (2, 64), (4, 4096), (8, 6912), (16, 16384)] {
        for (name, text) in [
            (
                "tern_norm_quant.v",
                norm_quant_verilog(NormQuantShape { lanes, max_n }).unwrap(),
            ),
            ("tern_dequant.v", dequant_verilog(lanes).unwrap()),
            (
                "tern_to_int8.v",
                tern_hdl::vector::to_int8_verilog(lanes).unwrap(),
            ),
            (
                "tern_rope.v",
                tern_hdl::vector::rope_verilog(lanes, 2 * lanes * 8).unwrap(),
            ),
            (
                "tern_embed.v",
                tern_hdl::vector::embed_verilog(lanes).unwrap(),
            ),
            (
                "tern_relu2_mul.v",
                tern_hdl::vector::relu2_mul_verilog(NormQuantShape { lanes, max_n }).unwrap(),
            ),
            (
                "tern_lm_head.v",
                tern_hdl::vector::lm_head_verilog(tern_hdl::vector::LmHeadShape {
                    lanes,
                    weight_bits: if lanes % 2 == 0 { 4 } else { 8 },
                    slices: if lanes >= 4 { 2 } else { 1 },
                    max_width: max_n.max(2 * lanes),
                })
                .unwrap(),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let o = std::process::Command::new("verilator")
                .args(["--lint-only", "-Wall"])
                .arg(&path)
                .output()
                .expect("verilator on PATH (scripts/setup.sh installs it)");
            assert!(
                o.status.success(),
                "{name}, {lanes} lanes:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

/// The `dequant` RTL (4 and 8 lanes) against its golden model, bit for bit: the factor
/// `K·2^t` from random norms and weight scales, outputs at random fractional bits (some
/// shifting left), extreme results, residual adds that saturate, random stalls.
#[test]
fn dequant_rtl_matches_the_golden_model() {
    use tern_sim::cosim::vector::DequantInput;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    let eps = Scale::of(1e-5).unwrap();
    for lanes in [4usize, 8] {
        let model = cache.load_dequant(lanes).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(100 + lanes as u64);
        let mut saturating = 0;
        for case in 0..40u64 {
            let n = lanes * rng.gen_range(1..=32);
            let v: Vec<i32> = (0..64)
                .map(|_| rng.gen_range(-(1 << 24)..(1 << 24)))
                .collect();
            let g: Vec<f32> = (0..64).map(|_| rng.gen_range(0.2f32..3.0)).collect();
            let norm = if case == 0 {
                norm_quant(&[0; 64], 16, &Gain::of(&g), eps) // M = 0: K = 0
            } else {
                norm_quant(&v, 16, &Gain::of(&g), eps)
            };
            let weight_scale = Scale::of(10f64.powf(rng.gen_range(-4.0..0.5))).unwrap();
            let out_frac = if case % 5 == 4 {
                rng.gen_range(40..70)
            } else {
                16
            };
            let mut acc: Vec<i32> = (0..n)
                .map(|_| rng.gen_range(-(1 << 20)..(1 << 20)))
                .collect();
            if case == 1 {
                acc[0] = i32::MIN;
                acc[n - 1] = i32::MAX;
            }
            let residual: Vec<i32> = (0..n)
                .map(|_| {
                    if case % 7 == 3 {
                        rng.gen_range(i32::MAX - 1000..=i32::MAX)
                    } else {
                        rng.gen_range(-(1 << 28)..(1 << 28))
                    }
                })
                .collect();
            let input = DequantInput {
                norm: &norm,
                weight_scale,
                out_frac,
                acc: &acc,
                residual: (case % 2 == 1).then_some(&residual[..]),
            };
            let stall = if case % 3 == 0 { 0 } else { 2000 + case };
            let seed = lanes as u64 * 1000 + case;
            let run = model
                .check(&input, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            saturating += usize::from(run.saturated);
            if stall == 0 {
                assert_eq!(
                    run.clocks,
                    tern_hdl::vector::dequant_clocks(lanes, n),
                    "case {case}, n {n}"
                );
            }
        }
        assert!(saturating > 0, "{lanes} lanes: no case saturated");
    }
}

/// The `to_int8` RTL (4 and 8 lanes) against its golden model, bit for bit: values
/// across the whole range (clamping at both ends), right and left shifts, stalls; a beat
/// a clock without stalls.
#[test]
fn to_int8_rtl_matches_the_golden_model() {
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    for lanes in [4usize, 8] {
        let model = cache.load_to_int8(lanes).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(200 + lanes as u64);
        for case in 0..40u64 {
            let n = lanes * rng.gen_range(1..=32);
            let bits = [31u32, 20, 8][case as usize % 3];
            let mut y: Vec<i32> = (0..n)
                .map(|_| rng.gen_range(-(1i64 << bits)..(1i64 << bits)) as i32)
                .collect();
            if case == 0 {
                y[0] = i32::MIN;
                y[n - 1] = i32::MAX;
            }
            let y_frac = if case % 4 == 3 {
                rng.gen_range(-20..0)
            } else {
                16
            };
            let inv_unit = Scale::of(10f64.powf(rng.gen_range(-1.0..4.0))).unwrap();
            let stall = if case % 3 == 0 { 0 } else { 3000 + case };
            let seed = lanes as u64 * 1000 + case;
            let clocks = model
                .check(&y, y_frac, inv_unit, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            if stall == 0 {
                assert_eq!(
                    clocks,
                    tern_hdl::vector::to_int8_clocks(lanes, n),
                    "case {case}, n {n}"
                );
            }
        }
    }
}

/// The `rope` RTL (4 and 8 lanes, heads of up to 128) against its golden model, bit for
/// bit: the 0.73B's heads of 96 and the 2B's of 128, random positions of a real RoPE
/// table, values up to the full `i32` range (saturating), stalls on all three
/// handshakes.
#[test]
fn rope_rtl_matches_the_golden_model() {
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    for lanes in [4usize, 8] {
        let model = cache.load_rope(lanes, 128).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(300 + lanes as u64);
        for case in 0..30u64 {
            let head_dim = [96usize, 128, 2 * lanes][case as usize % 3];
            let heads = rng.gen_range(1..=4);
            let table = tern_hdl::program::rope_table(head_dim, 64, 500000.0);
            let p = rng.gen_range(0..64);
            let row = &table[p * head_dim / 2..(p + 1) * head_dim / 2];
            let bits = [31u32, 24, 10][case as usize % 3];
            let y: Vec<i32> = (0..heads * head_dim)
                .map(|_| rng.gen_range(-(1i64 << bits)..(1i64 << bits)) as i32)
                .collect();
            let stall = if case % 3 == 0 { 0 } else { 4000 + case };
            let seed = lanes as u64 * 1000 + case;
            let clocks = model
                .check(&y, head_dim, row, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            if stall == 0 {
                assert_eq!(
                    clocks,
                    tern_hdl::vector::rope_clocks(lanes, heads, head_dim),
                    "case {case}, {heads} heads of {head_dim}"
                );
            }
        }
    }
}

/// The `relu2_mul` RTL (4 and 8 lanes) against its golden model, bit for bit: the
/// block and its fractional bits for gates and ups from tiny to full range (the largest
/// product above 31 bits and below), all-negative gates (zeros), stalls.
#[test]
fn relu2_mul_rtl_matches_the_golden_model() {
    use tern_hdl::vector::NormQuantShape;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    for lanes in [4usize, 8] {
        let shape = NormQuantShape { lanes, max_n: 256 };
        let model = cache.load_relu2_mul(shape).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(400 + lanes as u64);
        for case in 0..40u64 {
            let n = lanes * rng.gen_range(1..=256 / lanes);
            let bits = [31u32, 20, 8, 3][case as usize % 4];
            let mut g: Vec<i32> = (0..n)
                .map(|_| rng.gen_range(-(1i64 << bits)..(1i64 << bits)) as i32)
                .collect();
            let mut u: Vec<i32> = (0..n)
                .map(|_| rng.gen_range(-(1i64 << bits)..(1i64 << bits)) as i32)
                .collect();
            match case {
                0 => g.iter_mut().for_each(|x| *x = -x.abs() - 1),
                1 => {
                    g[0] = i32::MAX;
                    u[0] = i32::MIN;
                }
                _ => {}
            }
            let frac = rng.gen_range(8..20);
            let stall = if case % 3 == 0 { 0 } else { 5000 + case };
            let seed = lanes as u64 * 1000 + case;
            let clocks = model
                .check(&g, &u, frac, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            if stall == 0 {
                assert_eq!(
                    clocks,
                    tern_hdl::vector::relu2_mul_clocks(lanes, n),
                    "case {case}, n {n}"
                );
            }
        }
    }
}

/// The `embed` RTL (4 and 8 lanes) against its golden model, bit for bit: every bf16
/// class (zeros, subnormals, normals small and large, infinities, NaNs), fractional bits
/// that round and that shift left into saturation, stalls.
#[test]
fn embed_rtl_matches_the_golden_model() {
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    for lanes in [4usize, 8] {
        let model = cache.load_embed(lanes).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(500 + lanes as u64);
        let mut saturating = 0;
        for case in 0..40u64 {
            let n = lanes * rng.gen_range(1..=32);
            let bits: Vec<u16> = (0..n)
                .map(|i| match (case + i as u64) % 5 {
                    // Any pattern at all, then values near 1, tiny, huge.
                    0 => rng.gen(),
                    1 => tern_hdl::program::bf16_bits(rng.gen_range(-4.0f32..4.0)),
                    2 => tern_hdl::program::bf16_bits(rng.gen_range(-1e-6f32..1e-6)),
                    3 => tern_hdl::program::bf16_bits(rng.gen_range(-3e4f32..3e4)),
                    _ => [0x0000u16, 0x8000, 0x7f80, 0xff80, 0x7fc1, 0x0001, 0xc700][i % 7],
                })
                .collect();
            let frac = [16, 0, 24, -3, 30][case as usize % 5];
            let stall = if case % 3 == 0 { 0 } else { 6000 + case };
            let seed = lanes as u64 * 1000 + case;
            let clocks = model
                .check(&bits, frac, seed, stall, &waveforms)
                .unwrap_or_else(|e| panic!("case {case}: {e}"));
            let mut sat = Saturations::default();
            let _ = tern_sim::golden::vector::embed(&bits, frac, &mut sat);
            saturating += usize::from(sat.0 > 0);
            if stall == 0 {
                assert_eq!(
                    clocks,
                    tern_hdl::vector::embed_clocks(lanes, n),
                    "case {case}, n {n}"
                );
            }
        }
        assert!(saturating > 0, "{lanes} lanes: nothing saturated");
    }
}

/// A random head in the engine's format: `weight_bits`-bit weights over their whole
/// range (int8 includes −128), mantissas over the whole `u16` range (some 0 and 65535),
/// groups of `group` (a row: per-row scales).
fn random_head(
    rng: &mut ChaCha8Rng,
    (rows, width, group): (usize, usize, usize),
    weight_bits: u32,
) -> Int4Head {
    let half = 1i32 << (weight_bits - 1);
    let w = (0..rows * width)
        .map(|_| rng.gen_range(-half..half) as i8)
        .collect();
    let group_m = (0..rows * width / group)
        .map(|i| match i % 11 {
            0 => 0,
            1 => u16::MAX,
            _ => rng.gen(),
        })
        .collect();
    Int4Head {
        rows,
        width,
        group,
        w,
        group_m,
        exp: 0,
    }
}

/// The LM-head engine against the golden scores and argmax, bit for bit: int8 heads with
/// a scale per row (one quantised from floats by the host's own `Int8Head::of`), groups
/// of whole beats, 4-bit weights in groups smaller than a beat; extreme weights,
/// vectors and mantissas, duplicated best rows (the first must win), every score
/// written or none, random stalls on all four handshakes. Without stalls, the clocks
/// are `lm_head_clocks`.
#[test]
fn lm_head_rtl_matches_the_golden_model() {
    use tern_hdl::vector::{lm_head_clocks, LmHeadShape};
    use tern_sim::cosim::vector::Head;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    let waveforms = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("waveforms");
    // (lanes, weight bits, slices, max width)
    for (lanes, weight_bits, slices, max_width) in [
        (4usize, 8usize, 1usize, 64usize),
        (16, 8, 1, 256),
        (16, 4, 1, 256),
        (16, 4, 2, 256),
    ] {
        let shape = LmHeadShape {
            lanes,
            weight_bits,
            slices,
            max_width,
        };
        let model = cache.load_lm_head(shape).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(900 + (lanes * weight_bits * slices) as u64);
        for case in 0..24u64 {
            let rows = rng.gen_range(1..=40);
            let width = lanes * rng.gen_range(2..=max_width / lanes);
            let group = if slices > 1 {
                lanes / slices
            } else if weight_bits == 8 && case % 2 == 0 {
                width
            } else {
                // A power of two of beats dividing the row's.
                let beats = width / lanes;
                lanes * (1usize << beats.trailing_zeros().min(rng.gen_range(0..3)))
            };
            let mut head = random_head(&mut rng, (rows, width, group), weight_bits as u32);
            let mut q: Vec<i8> = (0..width).map(|_| rng.gen()).collect();
            if case == 0 {
                q.fill(-128);
                head.w.fill(-(1 << (weight_bits - 1)) as i8);
                head.group_m.fill(u16::MAX);
            }
            if case % 5 == 1 && rows > 2 {
                // The best row twice: the first of them is the choice.
                let g = tern_sim::golden::vector::head4_scores(&head, &q);
                let best = tern_sim::golden::vector::argmax(&g);
                let (w, m) = (width, width / group);
                let row = head.w[best * w..(best + 1) * w].to_vec();
                let ms = head.group_m[best * m..(best + 1) * m].to_vec();
                let at = rows - 1;
                head.w[at * w..(at + 1) * w].copy_from_slice(&row);
                head.group_m[at * m..(at + 1) * m].copy_from_slice(&ms);
            }
            let int8;
            let head_ref = if weight_bits == 8 && group == width {
                int8 = if case == 2 {
                    let f: Vec<f32> = (0..rows * width)
                        .map(|_| rng.gen_range(-0.05f32..0.05))
                        .collect();
                    Int8Head::of(&f, rows, width)
                } else {
                    Int8Head {
                        rows,
                        width,
                        w: head.w.clone(),
                        row_m: head.group_m.clone(),
                        exp: 0,
                    }
                };
                Head::Int8(&int8)
            } else {
                Head::Grouped(&head)
            };
            let scores = case % 3 != 2;
            let stall = if case % 4 == 0 { 0 } else { 7000 + case };
            let seed = (lanes * 100 + weight_bits * 10 + slices) as u64 * 1000 + case;
            let clocks = model
                .check(head_ref, &q, scores, (seed, stall), &waveforms)
                .unwrap_or_else(|e| {
                    panic!("{shape:?} case {case} ({rows} rows of {width}, groups of {group}): {e}")
                });
            if stall == 0 {
                assert_eq!(
                    clocks,
                    lm_head_clocks(shape, rows, width),
                    "{shape:?} case {case}, {rows} rows of {width}"
                );
            }
        }
    }
}

/// Commands the LM-head engine cannot run are refused: done at once with the error bit,
/// nothing taken, nothing out.
#[test]
fn lm_head_rtl_refuses_commands_it_cannot_run() {
    use tern_hdl::vector::LmHeadShape;
    use tern_sim::cosim::vector::LmHeadCommand;
    use tern_sim::verilator::{default_cache_root, ModelCache};
    let cache = ModelCache::new(default_cache_root());
    for (shape, bad) in [
        (
            (16usize, 8usize, 1usize),
            vec![
                (0u32, 4u32, 4u32),
                (3, 0, 0),
                (3, 17, 17),
                (3, 6, 3),
                (3, 6, 4),
                (3, 4, 0),
            ],
        ),
        ((16, 4, 2), vec![(3, 4, 2), (3, 4, 4)]),
    ] {
        let (lanes, weight_bits, slices) = shape;
        let model = cache
            .load_lm_head(LmHeadShape {
                lanes,
                weight_bits,
                slices,
                max_width: 256,
            })
            .unwrap();
        for (rows, beats, group_beats) in bad {
            let cmd = LmHeadCommand {
                rows,
                beats,
                group_beats,
                scores: true,
            };
            let (_, out) = model.raw(cmd, &[], &[], &[], 0, None).unwrap();
            assert!(
                out.error == 1
                    && out.clocks <= 2
                    && out.q_taken + out.w_taken + out.m_taken + out.scores == 0,
                "{shape:?} {cmd:?}: {out:?}"
            );
        }
    }
}
