//! The invariants ARCHITECTURE.md states that a machine can check: which crate may use
//! which, that the host driver reaches the simulator only through its `sim` feature, and
//! that the golden models share no code with the RTL they are compared against.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The workspace crates each crate depends on (normal dependencies, no dev or build).
fn crate_edges(package: &str, features: &[&str]) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(REPO).args([
        "tree",
        "--offline",
        "-p",
        package,
        "-e",
        "normal",
        "--prefix",
        "none",
    ]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let o = cmd.output().expect("cargo tree runs");
    assert!(
        o.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("tern") && *name != package)
        .map(str::to_string)
        .collect()
}

/// ARCHITECTURE.md, "Crates": everything a crate may reach, directly or not.
#[test]
fn crates_depend_only_on_the_crates_the_map_names() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("tern-hdl", &[][..]),
        ("tern-boards", &[][..]),
        ("tern-model", &[][..]),
        ("tern-sim", &["tern-hdl", "tern-model"][..]),
        ("tern-build", &["tern-boards", "tern-hdl"][..]),
        ("tern-surrogate", &["tern-hdl", "tern-model"][..]),
        ("tern-dse", &["tern-boards", "tern-hdl", "tern-model"][..]),
        ("tern-host", &["tern-hdl"][..]),
        (
            "tern-flows",
            &[
                "tern-boards",
                "tern-build",
                "tern-dse",
                "tern-hdl",
                "tern-host",
                "tern-model",
                "tern-sim",
                "tern-surrogate",
            ][..],
        ),
    ]);
    for (package, want) in allowed {
        let got = crate_edges(package, &[]);
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            got, want,
            "{package} reaches other workspace crates than the map says"
        );
    }
}

/// A driver for a real card builds without Verilator: `tern-host` reaches `tern-sim` (the
/// Verilator bridge) only when its `sim` feature asks for it.
#[test]
fn the_host_driver_reaches_the_simulator_only_through_its_feature() {
    assert!(!crate_edges("tern-host", &[]).contains("tern-sim"));
    assert!(crate_edges("tern-host", &["sim"]).contains("tern-sim"));
}

/// The golden models are what the RTL is compared against: of tern-hdl they may read
/// configs and their derived constants, the weight, stream and program formats and integer
/// widths, never the RTL or the emitted Verilog.
#[test]
fn the_golden_models_share_no_code_with_the_rtl() {
    let allowed = [
        "config",
        "streams",
        "weights",
        "program",
        "bits",
        "AttentionConfig",
        "Config",
        "ConfigError",
        "DesignConfig",
        "EngineKind",
        "Geometry",
    ];
    let dir = Path::new(REPO).join("sim/src/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("tern_hdl::") {
            let rest = &text[at + "tern_hdl::".len()..];
            // `tern_hdl::{a, b::c}` names several; `tern_hdl::a::...` one.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or(""))
                    .filter(|n| !n.is_empty())
                    .collect(),
                None => vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")],
            };
            for name in names {
                assert!(
                    allowed.contains(&name),
                    "{} uses tern_hdl::{name}: golden models and RTL must not share the code \
                     they are compared on (allowed: {allowed:?})",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "no golden model files found in {}",
        dir.display()
    );
}
