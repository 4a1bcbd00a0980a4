//! End-to-end: the `tern` binary as a user runs it.

mod common;
use common::{random_tiny_checkpoint, text, text_file as config_file};

use tern_hdl::config::{ConfigBuilder, EngineKind, TableStorage};
use EngineKind::{AdderTree, Tlmm};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tern(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tern"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap()
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn engine(
    kind: EngineKind,
    g: usize,
    p: usize,
    q: usize,
    acc: usize,
    m: usize,
    k: usize,
) -> String {
    ConfigBuilder::new(kind, g, p, q)
        .accumulator_bits(acc)
        .weight_buffer_depth(4)
        .workload(m, k, 1)
        .build()
        .unwrap()
        .to_toml()
}

#[test]
fn demo_generates_cosimulates_and_reports() {
    let out = tempfile::tempdir().unwrap();
    let o = tern(&["demo", "--out", &out.path().display().to_string()]);
    let t = text(&o);
    assert!(
        t.contains("text         in \"Hello, FPGA\" (byte-level tokenizer: 11 ids), out \""),
        "the demo shows text in and out: {t}"
    );
    assert!(o.status.success(), "{t}");
    for needle in [
        "lint         verilator -Wall: clean",
        "bit-exact",
        "utilisation",
        "through the AXI4 top",
        "fits on kv260",
        "not an Fmax",
        "result       PASS",
    ] {
        assert!(t.contains(needle), "missing `{needle}` in:\n{t}");
    }
}

/// `verilator --lint-only -Wall` is clean (rust-hdl's core under its listed waivers)
/// for every group size, both kinds and all accumulator widths.
#[test]
fn generated_designs_are_lint_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let mut configs = vec![];
    for g in 2..=5 {
        configs.push(engine(Tlmm, g, 2, 2, 24, 9, 31));
        configs.push(engine(AdderTree, g, 3, 1, 16, 4, 17));
    }
    configs.push(engine(Tlmm, 3, 1, 1, 32, 1, 1));
    // Every table storage, one bank, token blocks, a register after every tree level.
    let variants = [
        ConfigBuilder::tlmm(3, 9, 3)
            .storage(TableStorage::Registers)
            .token_block(2),
        ConfigBuilder::tlmm(4, 3, 2)
            .storage(TableStorage::Distributed)
            .table_banks(1),
        ConfigBuilder::tlmm(2, 8, 5)
            .table_banks(1)
            .token_block(3)
            .tree_stage_levels(1),
        ConfigBuilder::adder_tree(5, 2, 2)
            .storage(TableStorage::Block)
            .token_block(4),
    ];
    for v in variants {
        configs.push(v.workload(20, 50, 5).build().unwrap().to_toml());
    }
    for (i, body) in configs.iter().enumerate() {
        let cfg = config_file(tmp.path(), &format!("c{i}.toml"), body);
        let dir = tmp.path().join(format!("d{i}")).display().to_string();
        let o = tern(&["verilog", "--config", &cfg, "-o", &dir]);
        assert!(o.status.success(), "{}", text(&o));
        for f in [
            "tern_engine.v",
            "tern_engine_core.v",
            "tern_waivers.vlt",
            "manifest.json",
        ] {
            assert!(Path::new(&dir).join(f).exists(), "{f} missing");
        }
        let o = tern(&["lint", "--dir", &dir]);
        assert!(o.status.success(), "config:\n{body}\n{}", text(&o));
        // The accelerator top around the same engine is linted from `tern_top` down.
        let top = format!("{dir}-top");
        let o = tern(&["verilog", "--config", &cfg, "-o", &top, "--top"]);
        assert!(o.status.success(), "{}", text(&o));
        let o = tern(&["lint", "--dir", &top]);
        assert!(o.status.success(), "top, config:\n{body}\n{}", text(&o));
    }
}

#[test]
fn wrapper_alone_has_no_warnings_under_wall() {
    // The waivers name only the core file: lint with them and check that every
    // diagnostic Verilator would print without them points into the core.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let o = tern(&[
        "verilog",
        "--config",
        &example("default.toml"),
        "-o",
        &dir.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let raw = Command::new("verilator")
        .current_dir(&dir)
        .args([
            "--lint-only",
            "-Wall",
            "-Wno-fatal",
            "--top-module",
            "tern_engine",
            "tern_engine.v",
            "tern_engine_core.v",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&raw.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("%Warning"))
        .collect();
    assert!(
        !warnings.is_empty(),
        "expected rust-hdl's core to need its waivers"
    );
    for w in warnings {
        assert!(
            w.contains("tern_engine_core.v"),
            "warning outside the core: {w}"
        );
    }
}

#[test]
fn cosim_command_passes_and_reports_counts() {
    let o = tern(&[
        "cosim",
        "--config",
        &example("adder_tree.toml"),
        "--vectors",
        "7",
        "--seed",
        "3",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("PASS: 7 vector sets, 7168 outputs"), "{t}");
}

#[test]
fn bad_configs_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = engine(Tlmm, 3, 2, 2, 24, 8, 20);
    let cases = [
        (
            good.replace("group_size = 3", "group_size = 7"),
            "engine.group_size",
        ),
        (
            good.replace("tokens = 1", "tokens = 1\nlayers = 3"),
            "layers",
        ),
        (
            good.replace("accumulator_bits = 24", "accumulator_bits = 16")
                .replace("k = 20", "k = 5000"),
            "overflow",
        ),
        (
            good.replace("kind = \"tlmm\"", "kind = \"systolic\""),
            "systolic",
        ),
        (good.replace("m = 8", "m = 0"), "workload.m"),
        (
            good.replace("weight_buffer_depth = 4", "weight_buffer_depth = 6"),
            "power of two",
        ),
        ("[engine\n".to_string(), "TOML parse error"),
        (
            good.replace("rows_parallel = 2", "rows_parallel = 200"),
            "engine.rows_parallel` = 200 is out of range: allowed 1..=128",
        ),
        (
            good.replace("rows_parallel = 2", "rows_parallel = 128")
                .replace("groups_per_cycle = 2", "groups_per_cycle = 64"),
            "at most 16384 weights/clock",
        ),
        (
            good.replace(
                "kind = \"tlmm\"",
                "kind = \"adder-tree\"\ntable_storage = \"lane-lutram\"",
            ),
            "lane-lutram",
        ),
        (
            good.replace("table_banks = 2", "table_banks = 3"),
            "engine.table_banks",
        ),
        (
            good.replace("token_block = 1", "token_block = 65"),
            "engine.token_block",
        ),
        (
            good.replace("token_block = 1", "token_block = 64")
                .replace("accumulator_bits = 24", "accumulator_bits = 32")
                .replace("k = 20", "k = 200000"),
            "activation buffer",
        ),
        (format!("board = \"kv26\"\n{good}"), "unknown board `kv26`"),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        let cfg = config_file(tmp.path(), &format!("bad{i}.toml"), body);
        let dir = tmp.path().join(format!("out{i}"));
        let o = tern(&[
            "verilog",
            "--config",
            &cfg,
            "-o",
            &dir.display().to_string(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "accepted:\n{body}");
        assert!(
            t.contains(needle) && t.contains(&format!("bad{i}.toml")),
            "`{needle}` not in: {t}"
        );
        assert!(!t.contains("panicked"), "{t}");
        assert!(!dir.exists(), "output written for a bad config");
    }
    let o = tern(&["verilog", "--config", "no/such/file.toml", "-o", "x"]);
    assert!(!o.status.success() && text(&o).contains("no/such/file.toml"));
    // `gen`, the command's name before it was `verilog`, still reaches it.
    let o = tern(&["gen", "--config", "no/such/file.toml", "-o", "x"]);
    assert!(!o.status.success() && text(&o).contains("no/such/file.toml"));
}

#[test]
fn missing_verilator_is_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tern"))
        .args([
            "cosim",
            "--config",
            &example("default.toml"),
            "--vectors",
            "1",
        ])
        .env("PATH", "/nonexistent")
        .env("TERN_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("Verilator was not found") && t.contains("scripts/setup.sh"),
        "{t}"
    );
}

#[test]
fn gen_output_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let a: PathBuf = tmp.path().join("a");
    let b: PathBuf = tmp.path().join("b");
    for d in [&a, &b] {
        let o = tern(&[
            "verilog",
            "--config",
            &example("tlmm_g5_wide.toml"),
            "-o",
            &d.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    for f in ["tern_engine.v", "tern_engine_core.v", "manifest.json"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

#[test]
fn attention_examples_generate_lint_and_cosimulate() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["attention_decode.toml", "attention_prefill.toml"] {
        let dir = tmp.path().join(name).display().to_string();
        let o = tern(&["verilog", "--config", &example(name), "-o", &dir]);
        let t = text(&o);
        assert!(o.status.success() && t.contains("attention engine"), "{t}");
        let o = tern(&["lint", "--dir", &dir]);
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
    // 9 vector sets cover every attention corner case; 16 rows × d = 128 outputs each.
    let o = tern(&[
        "cosim",
        "--config",
        &example("attention_prefill.toml"),
        "--vectors",
        "9",
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("PASS: 9 vector sets, 18432 outputs"), "{t}");
}

#[test]
fn bad_attention_configs_fail_cleanly_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(example("attention_decode.toml")).unwrap();
    let cases = [
        (
            good.replace("seq_len = 512", "seq_len = 4096"),
            "workload.seq_len",
        ),
        (good.replace("scale_q = 0.035", "scale_q = 0.0"), "scale_q"),
        (good.replace("scale_v = 0.03", "scale_v = -0.03"), "scale_v"),
        (
            good.replace("head_dim = 64", "head_dim = 72"),
            "attention.head_dim",
        ),
        (
            good.replace("queries = 1", "queries = 2"),
            "workload.queries",
        ),
        (good.replace("tile = 32", "tile = 32\nrows = 2"), "rows"),
        (good.replace("mode = \"decode\"", "mode = \"chat\""), "chat"),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        let cfg = config_file(tmp.path(), &format!("bad{i}.toml"), body);
        let dir = tmp.path().join(format!("out{i}"));
        let o = tern(&[
            "verilog",
            "--config",
            &cfg,
            "-o",
            &dir.display().to_string(),
        ]);
        let t = text(&o);
        assert!(!o.status.success(), "accepted:\n{body}");
        assert!(
            t.contains(needle) && t.contains(&format!("bad{i}.toml")),
            "`{needle}` not in: {t}"
        );
        assert!(!t.contains("panicked"), "{t}");
        assert!(!dir.exists(), "output written for a bad config");
    }
}

/// `tern model` describes the presets, writes one as TOML, and reads it back from a file;
/// a config with inconsistent shapes is named key by key.
#[test]
fn model_describes_presets_and_reads_its_own_toml() {
    let o = tern(&["model", "bitnet-2b"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("20 query / 5 KV heads of 128"), "{out}");
    assert!(out.contains("gate_proj    6912 x 2560"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    let o = tern(&["model", "tiny", "--toml"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::write(&file, &o.stdout).unwrap();
    let o = tern(&["model", file.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).contains("model      tiny"),
        "{}",
        text(&o)
    );
    let broken = String::from_utf8(tern(&["model", "tiny", "--toml"]).stdout)
        .unwrap()
        .replace("kv_heads = 2", "kv_heads = 3");
    std::fs::write(&file, broken).unwrap();
    let o = tern(&["model", file.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("`kv_heads` = 3: must divide heads = 4"),
        "{}",
        text(&o)
    );
}

/// `tern model --write-random` writes a checkpoint in the Hugging Face BitNet layout and
/// `--checkpoint` reads it back; a truncated weights file is named.
#[test]
fn model_checkpoints_are_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("tiny");
    let o = tern(&[
        "model",
        "tiny",
        "--write-random",
        ck.to_str().unwrap(),
        "--seed",
        "9",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = tern(&["model", "--checkpoint", ck.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("73728 ternary weights decoded"),
        "{}",
        text(&o)
    );
    let weights = ck.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();

    // A NaN in the final norm: refused by name and index by every command that reads
    // it, before anything runs (it used to generate token 0 and report "bit-exact").
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let start = header["model.norm.weight"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    let mut nan = bytes.clone();
    let at = 8 + n + start + 2 * 3;
    nan[at..at + 2].copy_from_slice(&0x7FC0u16.to_le_bytes());
    std::fs::write(&weights, &nan).unwrap();
    let out = dir.path().join("out");
    for args in [
        vec!["model", "--checkpoint", ck.to_str().unwrap()],
        vec![
            "generate",
            "--checkpoint",
            ck.to_str().unwrap(),
            "--tokens",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let o = tern(&args);
        let t = text(&o);
        assert!(
            !o.status.success()
                && t.contains("tensor `model.norm.weight` holds NaN at index [3]")
                && !t.contains("bit-exact"),
            "{args:?}: {t}"
        );
    }
    assert!(!out.join("generate.json").exists());

    std::fs::write(&weights, &bytes[..bytes.len() - 100]).unwrap();
    let o = tern(&["model", "--checkpoint", ck.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("not a readable safetensors file"),
        "{}",
        text(&o)
    );

    // Errors name the file once and the operating system's reason once.
    let missing = dir.path().join("nowhere");
    let o = tern(&["model", "--checkpoint", missing.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(t.matches("No such file or directory").count(), 1, "{t}");
    std::fs::write(&weights, &bytes).unwrap();
    let config = ck.join("config.json");
    let json = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        json.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"),
    )
    .unwrap();
    let o = tern(&["model", "--checkpoint", ck.to_str().unwrap()]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("`num_key_value_heads` = 3"),
        "{t}"
    );
    assert_eq!(t.matches(config.to_str().unwrap()).count(), 1, "{t}");
}

/// The SHA-256 of a checkpoint's weights file is printed (the figure `sha256sum` gives
/// and a model hub lists) and `--expect-sha256` pins it; a GGUF file is named as one
/// wherever a checkpoint directory or a model TOML is expected.
#[test]
fn a_checkpoint_is_pinned_by_its_hash_and_a_gguf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ck = random_tiny_checkpoint(dir.path(), 6);
    let weights = ck.join("model.safetensors");
    // The hash as coreutils computes it, independent of tern's.
    let sha256sum = |path: &Path| {
        let o = Command::new("sha256sum").arg(path).output().unwrap();
        assert!(o.status.success(), "sha256sum: {}", text(&o));
        let out = String::from_utf8(o.stdout).unwrap();
        out.split_whitespace().next().unwrap().to_string()
    };
    let sum = sha256sum(&weights);
    let ck = ck.to_str().unwrap();
    let o = tern(&["model", "--checkpoint", ck]);
    assert!(
        o.status.success()
            && text(&o).contains(&format!("sha256     {sum}  {}", weights.display())),
        "{}",
        text(&o)
    );
    let o = tern(&[
        "model",
        "--checkpoint",
        ck,
        "--expect-sha256",
        &sum.to_uppercase(),
    ]);
    assert!(
        o.status.success() && text(&o).contains("(as expected)"),
        "{}",
        text(&o)
    );
    let wrong = format!("{}{}", &sum[1..], &sum[..1]);
    let out = dir.path().join("out");
    for args in [
        vec!["model", "--checkpoint", ck, "--expect-sha256", &wrong],
        vec![
            "generate",
            "--checkpoint",
            ck,
            "--expect-sha256",
            &wrong,
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let o = tern(&args);
        let t = text(&o);
        assert!(
            !o.status.success()
                && t.contains(&format!(
                    "SHA-256 is {sum}, but --expect-sha256 asks for {wrong}"
                ))
                && !t.contains("bit-exact"),
            "{args:?}: {t}"
        );
    }
    assert!(!out.join("generate.json").exists());
    let o = tern(&["generate", "--expect-sha256", &sum]);
    assert!(
        !o.status.success() && text(&o).contains("--checkpoint"),
        "{}",
        text(&o)
    );

    // A GGUF checkpoint: written, described with its file's hash, run bit-exact.
    let gguf = dir.path().join("tiny.gguf");
    let gguf_path = gguf.to_str().unwrap();
    let o = tern(&["model", "tiny", "--write-random", gguf_path, "--seed", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let gguf_sum = sha256sum(&gguf);
    let o = tern(&["model", "--checkpoint", gguf_path]);
    assert!(
        o.status.success() && text(&o).contains(&format!("sha256     {gguf_sum}  {gguf_path}")),
        "{}",
        text(&o)
    );
    let o = tern(&[
        "generate",
        "--checkpoint",
        gguf_path,
        "--expect-sha256",
        &gguf_sum,
        "--tokens",
        "2",
    ]);
    assert!(
        o.status.success() && text(&o).contains(&gguf_sum) && text(&o).contains("bit-exact"),
        "{}",
        text(&o)
    );

    // A truncated GGUF is named with what is cut; a GGUF given as a model TOML is named.
    let gguf = dir.path().join("model.gguf");
    std::fs::write(&gguf, b"GGUF\x03\0\0\0\0\0\0\0\xff").unwrap();
    let gguf = gguf.to_str().unwrap();
    for (args, says) in [
        (vec!["model", "--checkpoint", gguf], "the tensor count"),
        (vec!["generate", "--checkpoint", gguf], "the tensor count"),
        (vec!["model", gguf], "a GGUF file, not a model TOML file"),
    ] {
        let o = tern(&args);
        let t = text(&o);
        assert!(
            !o.status.success() && t.contains(says) && t.matches(gguf).count() == 1,
            "{args:?}: {t}"
        );
    }
}

/// A closed stdout (`tern model bitnet-2b | head -1`) ends `tern` as it ends `cat`: by
/// SIGPIPE, quietly, never with a panic (exit 101) on "failed printing to stdout".
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["model", "bitnet-2b"][..], &["boards"]] {
        // The reading end is closed before tern writes a byte: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_tern"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .stdout(writer)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.is_empty(), "{args:?} wrote to stderr: {err}");
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            o.status
        );
    }
}

/// An accelerator description stands for its parts: `tern generate --accelerator` runs
/// the same model as the tops' configs given one by one, `tern project --accelerator`
/// adds the attention tops to the matmul top's share, and a description that cannot be
/// built is refused by name before anything runs.
#[test]
fn an_accelerator_description_drives_generate_and_project() {
    let tokens = |o: &Output| -> String {
        text(o)
            .lines()
            .find(|l| l.contains("generated"))
            .unwrap_or_else(|| panic!("no generated tokens: {}", text(o)))
            .to_string()
    };
    let by_parts = tern(&[
        "generate",
        "--tokens",
        "2",
        "--matmul-config",
        "examples/bitnet_tiny_matmul.toml",
        "--attention-config",
        "examples/bitnet_tiny_attention.toml",
    ]);
    assert!(by_parts.status.success(), "{}", text(&by_parts));
    let described = tern(&[
        "generate",
        "--tokens",
        "2",
        "--accelerator",
        "examples/bitnet_tiny_accelerator.toml",
    ]);
    assert!(described.status.success(), "{}", text(&described));
    assert_eq!(tokens(&described), tokens(&by_parts));

    let matmul_only = tern(&["project", "--config", "docs/model/kv260/matmul.toml"]);
    let whole = tern(&[
        "project",
        "--accelerator",
        "docs/model/kv260/accelerator.toml",
    ]);
    assert!(matmul_only.status.success() && whole.status.success());
    let decode = |o: &Output| {
        text(o)
            .lines()
            .find(|l| l.trim_start().starts_with("decode"))
            .unwrap()
            .to_string()
    };
    assert_eq!(decode(&matmul_only), decode(&whole), "one matmul figure");
    assert!(!text(&matmul_only).contains("TTFT"));
    assert!(text(&whole).contains("TTFT"), "{}", text(&whole));

    let dir = tempfile::tempdir().unwrap();
    let kv = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/model/kv260");
    let bad = dir.path().join("fast.toml");
    std::fs::write(
        &bad,
        format!(
            "name = \"fast\"\nboard = \"kv260\"\nclock_mhz = 450\n[matmul]\nconfig = \"{}\"\n\
             [attention]\nconfig = \"{}\"\n",
            kv.join("matmul.toml").display(),
            kv.join("attention.toml").display()
        ),
    )
    .unwrap();
    let o = tern(&["generate", "--accelerator", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("fast.toml") && text(&o).contains("450"),
        "{}",
        text(&o)
    );
    // tern project takes the description's clock.
    let o = tern(&["project", "--accelerator", bad.to_str().unwrap()]);
    assert!(text(&o).contains("at 450 MHz"), "{}", text(&o));
    // tern serve serves one of its tops, and must be told which.
    let o = tern(&[
        "serve",
        "--accelerator",
        "docs/model/kv260/accelerator.toml",
        "--listen",
        "unix:/nonexistent/board.sock",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("--part"),
        "{}",
        text(&o)
    );
    let o = tern(&["project", "--accelerator", "nope.toml"]);
    assert!(
        !o.status.success() && text(&o).contains("nope.toml"),
        "{}",
        text(&o)
    );
}

/// `tern verilog --vector LANES` writes the vector unit's six blocks, each its own
/// module; a lane count the shapes do not fit is refused, naming the shape, and writes
/// nothing.
#[test]
fn the_vector_unit_blocks_are_written_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("vu");
    let o = tern(&["verilog", "--vector", "8", "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for module in [
        "tern_embed",
        "tern_norm_quant",
        "tern_dequant",
        "tern_rope",
        "tern_to_int8",
        "tern_relu2_mul",
    ] {
        let text = std::fs::read_to_string(out.join(format!("{module}.v"))).unwrap();
        assert!(text.contains(&format!("module {module} (")), "{module}");
    }
    let bad = dir.path().join("bad");
    let o = tern(&["verilog", "--vector", "5", "-o", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("5 lanes"), "{err}");
    assert!(!bad.exists(), "a refused shape wrote files");
}

/// `tern verilog --lm-head LANES` writes the LM-head engine; a shape it cannot be built
/// for (here 4-bit weights in 3 slices of 16 lanes) is refused, naming the shape, and
/// writes nothing.
#[test]
fn the_lm_head_engine_is_written_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("head");
    let o = tern(&[
        "verilog",
        "--lm-head",
        "16",
        "--weight-bits",
        "4",
        "--slices",
        "2",
        "--max-width",
        "256",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("tern_lm_head.v")).unwrap();
    assert!(
        text.contains("module tern_lm_head (") && text.contains("16 weights of 4 bits"),
        "{text}"
    );
    // The whole unit on 2 ports; an engine that does not fit them is refused.
    let unit = dir.path().join("unit");
    let o = tern(&[
        "verilog",
        "--lm-head",
        "32",
        "--unit-ports",
        "2",
        "--max-width",
        "256",
        "-o",
        unit.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(unit.join("tern_lm_head_unit.v")).unwrap();
    assert!(text.contains("module tern_lm_head_unit (") && text.contains("m1_arvalid"));
    // A 4-bit head's unit: 64 weights a clock on 2 ports, groups of 32 (2 slices).
    let o = tern(&[
        "verilog",
        "--lm-head",
        "64",
        "--weight-bits",
        "4",
        "--slices",
        "2",
        "--unit-ports",
        "2",
        "--max-width",
        "256",
        "-o",
        unit.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(unit.join("tern_lm_head_unit.v")).unwrap();
    assert!(
        text.contains("4-bit head, a mantissa a group of 32") && text.contains("c_group == 32'd32"),
        "{text}"
    );
    let o = tern(&[
        "verilog",
        "--lm-head",
        "16",
        "--unit-ports",
        "2",
        "-o",
        unit.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--unit-ports 2"),
        "{err}"
    );
    let bad = dir.path().join("bad");
    let o = tern(&[
        "verilog",
        "--lm-head",
        "16",
        "--slices",
        "3",
        "-o",
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("3 slices"), "{err}");
    assert!(!bad.exists(), "a refused shape wrote files");
}

/// `tern verilog --vector-unit LANES` writes the vector unit, with `--unit-ports 2` its
/// reader B on a port of its own; 3 ports, and `--unit-ports` without a unit, are
/// refused and write nothing.
#[test]
fn the_vector_unit_is_written_on_one_or_two_ports() {
    let dir = tempfile::tempdir().unwrap();
    for (ports, has_m1) in [("1", false), ("2", true)] {
        let out = dir.path().join(format!("vec{ports}"));
        let o = tern(&[
            "verilog",
            "--vector-unit",
            "4",
            "--unit-ports",
            ports,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = std::fs::read_to_string(out.join("tern_vector_unit.v")).unwrap();
        assert!(text.contains("module tern_vector_unit ("), "{text}");
        assert_eq!(text.contains("m1_arvalid"), has_m1, "{ports} port(s)");
        assert_eq!(
            text.contains("tern_read_arbiter arbiter0"),
            !has_m1,
            "{ports} port(s): readers A and B share port 0 only on one"
        );
    }
    let bad = dir.path().join("bad");
    for (args, refusal) in [
        (
            &["--vector-unit", "2", "--unit-ports", "3"][..],
            "3 read ports",
        ),
        (
            &["--unit-ports", "2", "--stripe-reader", "2"][..],
            "--unit-ports",
        ),
    ] {
        let mut all = vec!["verilog"];
        all.extend_from_slice(args);
        all.extend(["-o", bad.to_str().unwrap()]);
        let o = tern(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(refusal),
            "{args:?}: {err}"
        );
        assert!(!bad.exists(), "{args:?}: a refused shape wrote files");
    }
}

/// `tern verilog --sequencer MODEL` writes the sequencer for a model preset; an unknown
/// model or a design id that is not hex is refused, naming it, and writes nothing.
#[test]
fn the_sequencer_is_written_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seq");
    let o = tern(&[
        "verilog",
        "--sequencer",
        "tiny",
        "--design",
        "7e570001",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("tern_sequencer.v")).unwrap();
    assert!(
        text.contains("module tern_sequencer (") && text.contains("32'h7e570001"),
        "{text}"
    );
    for (args, named) in [
        (vec!["--sequencer", "no-such-model"], "no-such-model"),
        (vec!["--sequencer", "tiny", "--design", "xyz"], "xyz"),
    ] {
        let bad = dir.path().join("bad");
        let mut all = vec!["verilog"];
        all.extend(args);
        all.extend(["-o", bad.to_str().unwrap()]);
        let o = tern(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(named), "{err}");
        assert!(!bad.exists(), "a refused request wrote files");
    }
}

/// `tern verilog --stripe-reader PORTS` writes the stripe reader; bursts that do not
/// split over the ports are refused, naming them, and write nothing.
#[test]
fn the_stripe_reader_is_written_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sr");
    let o = tern(&[
        "verilog",
        "--stripe-reader",
        "4",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(out.join("tern_stripe_reader.v")).unwrap();
    assert!(text.contains("module tern_stripe_reader (") && text.contains("m3_arvalid"));
    let bad = dir.path().join("bad");
    let o = tern(&[
        "verilog",
        "--stripe-reader",
        "4",
        "--burst",
        "6",
        "-o",
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("bursts of 6"), "{err}");
    assert!(!bad.exists(), "a refused shape wrote files");
}

/// `tern verilog --one-top MODEL --accelerator A.toml` writes the one top a user takes to
/// a board: the shell, the core, every unit, the waivers, the register map, the FuseSoC
/// core and kernel.xml (its arguments at their registers); a model the description's
/// units cannot take is refused naming the unit.
#[test]
fn the_one_top_is_written_with_its_package() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();
    let o = tern(&[
        "verilog",
        "--one-top",
        "bitnet-0.73b",
        "--accelerator",
        "docs/model/kv260/accelerator.toml",
        "--design",
        "7e570001",
        "-o",
        &dir,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("4 memory ports"), "{}", text(&o));
    for f in [
        "tern_accelerator.v",
        "tern_accelerator_core.v",
        "mm_tern_matmul_unit.v",
        "mm_tern_engine_core.v",
        "att_tern_engine_core.v",
        "tern_waivers.vlt",
        "tern_accelerator.core",
    ] {
        assert!(out.path().join(f).exists(), "{f} missing");
    }
    let regmap = std::fs::read_to_string(out.path().join("regmap.md")).unwrap();
    assert!(regmap.contains("| 0x20 | STEP |"), "{regmap}");
    let shell = std::fs::read_to_string(out.path().join("tern_accelerator.v")).unwrap();
    assert!(shell.contains("32'h7e570001"), "the design id");
    let xml = std::fs::read_to_string(out.path().join("kernel.xml")).unwrap();
    assert!(
        xml.contains("name=\"program\"")
            && xml.contains("offset=\"0x10\"")
            && xml.contains("name=\"m3\""),
        "{xml}"
    );
    let o = tern(&[
        "verilog",
        "--one-top",
        "tiny",
        "--accelerator",
        "docs/model/kv260/accelerator.toml",
        "-o",
        &dir,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("heads of 16"), "{}", text(&o));
}

/// A checkpoint on the one top: the attention's int8 units are calibrated on the prompt
/// layer by layer by default (program data: the same Verilog), the run stays bit-exact,
/// and generate.json records the units; `--no-calibrate` keeps the description's.
#[test]
fn a_checkpoint_on_the_one_top_gets_units_calibrated_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    let ck = random_tiny_checkpoint(dir.path(), 4);
    let run = |extra: &[&str], out: &str| -> serde_json::Value {
        let out = dir.path().join(out);
        let mut args = vec![
            "generate",
            "--one-top",
            "--checkpoint",
            ck.to_str().unwrap(),
        ];
        args.extend_from_slice(&["--tokens", "2", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = tern(&args);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(text(&o).matches("bit-exact\n").count(), 2, "{}", text(&o));
        serde_json::from_str(&std::fs::read_to_string(out.join("generate.json")).unwrap()).unwrap()
    };
    let units = |json: &serde_json::Value| -> Vec<Vec<f64>> {
        json["attention_units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                l.as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_f64().unwrap())
                    .collect()
            })
            .collect()
    };
    let calibrated = run(&[], "calibrated");
    assert_eq!(calibrated["calibrated"], true);
    let sha256 = calibrated["checkpoint_sha256"].as_str().unwrap();
    assert_eq!(sha256.len(), 64, "{sha256}");
    assert!(text(&tern(&["model", "--checkpoint", ck.to_str().unwrap()])).contains(sha256));
    let per_layer = units(&calibrated);
    assert_eq!(
        per_layer.len(),
        2,
        "one set of units per layer of the tiny model"
    );
    assert_ne!(
        per_layer[0], per_layer[1],
        "each layer calibrated on its own"
    );
    let kept = run(&["--no-calibrate"], "kept");
    assert_eq!(kept["calibrated"], false);
    let description = tern_hdl::AttentionConfig::from_toml(
        &std::fs::read_to_string("examples/bitnet_tiny_attention.toml").unwrap(),
        "examples/bitnet_tiny_attention.toml",
    )
    .unwrap();
    let q = &description.attention.quant;
    for layer in units(&kept) {
        assert_eq!(layer, vec![q.scale_q, q.scale_k, q.scale_v, q.scale_out]);
    }
    assert!(!per_layer.contains(&vec![q.scale_q, q.scale_k, q.scale_v, q.scale_out]));
}

/// `tern generate --one-top`: the tiny model on the one top, every pass one start through
/// the registers and bit-exact against the golden sequencer; generate.json records per
/// pass the clocks of each unit, the kernel starts and the register accesses.
#[test]
fn generate_runs_whole_passes_on_the_one_top() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();
    let o = tern(&["generate", "--one-top", "--tokens", "3", "--out", &dir]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("bit-exact\n").count(), 3, "{t}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("generate.json")).unwrap())
            .unwrap();
    assert_eq!(json["format"], "tern-generate-one-top");
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for s in steps {
        assert_eq!(s["kernel_starts"], 1);
        assert_eq!(s["bit_exact"], true);
        assert_eq!(s["memory_checked"], true);
        let units: u64 = [
            "matmul_clocks",
            "attention_clocks",
            "vector_clocks",
            "lm_head_clocks",
        ]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum();
        assert!(units > 0 && units < s["clocks"].as_u64().unwrap(), "{s}");
    }
    assert_eq!(json["generated"].as_array().unwrap().len(), 3);
    // A board that is not there: a clear error naming it, not a hang.
    let o = tern(&["generate", "--one-top", "--board-uri", "tcp:127.0.0.1:1"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--board-uri tcp:127.0.0.1:1") && text(&o).contains("tern serve"),
        "{}",
        text(&o)
    );
    // A Kria board's devices that are not here (a PC, or a board without the overlay):
    // the UIO device is named, with where to read how to set it up.
    let o = tern(&["generate", "--one-top", "--board-uri", "kria:"]);
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("--board-uri kria:") && t.contains("UIO device") && t.contains("docs/kria.md"),
        "{t}"
    );
    let o = tern(&["generate", "--one-top", "--board-uri", "kria:/dev/uio0"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("must be a device name"), "{}", text(&o));
}

/// Text in, text out: a text prompt is tokenised with the checkpoint's tokenizer (a
/// random checkpoint's is byte-level) and gives the same run as its ids; the text streams
/// on stdout while the report goes to stderr; the chat template is applied unless
/// `--raw`; a checkpoint without a tokenizer takes ids only.
#[test]
fn text_in_and_text_out_give_the_run_of_the_ids() {
    let dir = tempfile::tempdir().unwrap();
    let ck = random_tiny_checkpoint(dir.path(), 5);
    let ckp = ck.to_str().unwrap();
    let run = |prompt: &str, extra: &[&str], out: &str| {
        let out = dir.path().join(out);
        let mut args = vec!["generate", "--checkpoint", ckp, "--prompt", prompt];
        args.extend_from_slice(&["--tokens", "3", "--out", out.to_str().unwrap()]);
        args.extend_from_slice(extra);
        let o = tern(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("generate.json")).unwrap())
                .unwrap();
        (o, report)
    };
    let ids = |r: &serde_json::Value, key: &str| -> Vec<u64> {
        r[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect()
    };
    let (o, by_text) = run("Hi FPGA", &[], "text");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    let generated_text = by_text["generated_text"].as_str().unwrap();
    assert_eq!(
        stdout,
        format!("Hi FPGA{generated_text}\n"),
        "stdout is the text alone"
    );
    assert!(
        stderr.contains("bit-exact") && !stdout.contains("step"),
        "{stderr}"
    );
    let bytes: Vec<u64> = "Hi FPGA".bytes().map(u64::from).collect();
    assert_eq!(ids(&by_text, "prompt"), bytes, "the byte-level tokenizer");
    let id_list = bytes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (o, by_ids) = run(&id_list, &[], "ids");
    assert_eq!(ids(&by_ids, "generated"), ids(&by_text, "generated"));
    assert_eq!(by_ids["prompt_text"], "Hi FPGA");
    assert_eq!(by_ids["generated_text"], by_text["generated_text"]);
    assert!(
        text(&o).contains("step"),
        "ids: the report on stdout as before"
    );

    // A chat template (the tiny vocabulary is the 256 bytes: plain-text turn markers).
    std::fs::write(
        ck.join("tokenizer_config.json"),
        r#"{"chat_template": "[U]{{ messages[0]['content'] }}[A]"}"#,
    )
    .unwrap();
    let (_, chat) = run("Hi FPGA", &[], "chat");
    let templated: Vec<u64> = "[U]Hi FPGA[A]".bytes().map(u64::from).collect();
    assert_eq!(ids(&chat, "prompt"), templated);
    let (_, raw) = run("Hi FPGA", &["--raw"], "raw");
    assert_eq!(ids(&raw, "prompt"), bytes);

    // On the one top, the same text gives the same ids.
    let o = tern(&[
        "generate",
        "--one-top",
        "--checkpoint",
        ckp,
        "--prompt",
        "Hi",
        "--raw",
        "--tokens",
        "2",
    ]);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("Hi"),
        "{}",
        text(&o)
    );

    // Bad tokenizers, and none at all.
    std::fs::write(ck.join("tokenizer.json"), "{ not json").unwrap();
    let o = tern(&["generate", "--checkpoint", ckp, "--prompt", "Hi"]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("tokenizer.json: not a tokenizer.json"),
        "{t}"
    );
    std::fs::remove_file(ck.join("tokenizer.json")).unwrap();
    let o = tern(&["generate", "--checkpoint", ckp, "--prompt", "Hi"]);
    let t = text(&o);
    assert!(
        !o.status.success() && t.contains("carries no tokenizer"),
        "{t}"
    );
    let (_, plain) = run(&id_list, &[], "plain");
    assert!(plain["generated_text"].is_null() && plain["prompt_text"].is_null());
}
