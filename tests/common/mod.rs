//! Helpers shared by the end-to-end tests: run the `tern` binary, read its output,
//! write tool stand-ins. Each test file uses a part of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use tern_hdl::config::ConfigBuilder;

/// Run `tern` from the repository root with its own cache directory, progress bars
/// hidden and `env` added.
pub fn tern_in(cache: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tern"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TERN_CACHE_DIR", cache)
        .env("TERN_NO_PROGRESS", "1")
        .args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A random tiny checkpoint written by `tern model tiny --write-random` into `dir/ck`.
pub fn random_tiny_checkpoint(dir: &Path, seed: u64) -> std::path::PathBuf {
    let ck = dir.join("ck");
    let o = tern_in(
        &dir.join("cache"),
        &[],
        &[
            "model",
            "tiny",
            "--write-random",
            ck.to_str().unwrap(),
            "--seed",
            &seed.to_string(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    ck
}

/// Stdout then stderr, for assertions and failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An executable shell script standing in for a tool: it answers `version_flag` with
/// `version_line` and otherwise runs `body`.
pub fn fake_tool(
    dir: &Path,
    name: &str,
    version_flag: &str,
    version_line: &str,
    body: &str,
) -> String {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nif [ \"$1\" = {version_flag} ]; then echo '{version_line}'; exit 0; fi\n{body}\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

/// Write the config `builder` describes as `dir/name` (the TOML a user would write) and
/// return its path.
pub fn config_file(dir: &Path, name: &str, builder: ConfigBuilder) -> String {
    let cfg = builder.build().unwrap_or_else(|e| panic!("{e}"));
    text_file(dir, name, &cfg.to_toml())
}

/// Write `body` as `dir/name` and return its path.
pub fn text_file(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}
