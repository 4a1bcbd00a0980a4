//! One design, one figure: `tern project --accelerator` (which the model bench calls as
//! `project_accelerator`), the matmul DSE and the whole-accelerator DSE judge the
//! shipped KV260 accelerator with the one performance model, and give the same seconds.

mod common;

use common::{tern_in, text};
use std::path::Path;

use tern_boards::Board;
use tern_dse::workload::ModelWorkload;
use tern_flows::dse::{attention::option_timing, run::candidate_speed};
use tern_hdl::config::accelerator::Accelerator;

const ACCELERATOR: &str = "docs/model/kv260/accelerator.toml";

#[test]
fn tern_project_and_both_dses_give_one_figure_for_one_design() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let acc = Accelerator::from_path(&repo.join(ACCELERATOR)).unwrap();
    let board = Board::resolve(&acc.board).unwrap();
    let workload = ModelWorkload::resolve("bitnet-0.73b").unwrap();
    // The DSE's figures, at the board's clock (the accelerator asks for the same).
    assert_eq!(acc.clock_mhz, Some(board.clock.default_mhz));
    let (decode, prefill) = candidate_speed(&acc.matmul, &workload, &board, None, true).unwrap();
    let attention =
        option_timing(&acc.attention, &workload, acc.attention_engines, &board).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("project.json");
    let o = tern_in(
        dir.path(),
        &[],
        &[
            "project",
            "--accelerator",
            ACCELERATOR,
            "--workload",
            "bitnet-0.73b",
            "--prompts",
            "128",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert_eq!(f(&p["decode_tokens_per_s"]), decode.tokens_per_s);
    assert_eq!(f(&p["decode_weight_bytes_per_token"]), decode.weight_bytes);
    assert_eq!(f(&p["prefill_s"][0][1]), prefill.unwrap());
    let token = &p["accelerator"]["prompts"][0];
    assert_eq!(f(&token["attention"]["prefill_s"]), attention.prefill_s);
    assert_eq!(f(&token["attention"]["decode_s"]), attention.decode_s);
    // The whole accelerator's figures, composed as the joint DSE composes them.
    let matmul_s = 1.0 / decode.tokens_per_s;
    assert_eq!(
        f(&token["token"]["ttft_s"]),
        prefill.unwrap() + attention.prefill_s
    );
    let rate = f(&token["token"]["decode_tokens_per_s"]);
    assert!(
        (rate * (matmul_s + attention.decode_s) - 1.0).abs() < 1e-12,
        "{rate}"
    );
    // And the printed report says the same.
    let out = text(&o);
    assert!(
        out.contains(&format!("{:.1} tokens/s of kernels", rate)),
        "{out}"
    );
}
