//! The generated Verilog under a second, independent simulator: Icarus Verilog runs a
//! self-checking testbench whose stimuli and expected results come from the golden
//! model through `$readmemh` files. No Verilator, no Rust-side driver.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use ndarray::Axis;
use tern_hdl::streams::{pack_activations, pack_weights, put_field, words_for, Beat};
use tern_hdl::{generate, write_design, Config};
use tern_sim::cosim::{VectorKind, Vectors};
use tern_sim::golden::tlmm::ternary_gemm;

fn hex(beat: &Beat, bits: usize) -> String {
    let digits = bits.div_ceil(4);
    let mut s = String::new();
    for d in (0..digits).rev() {
        let nibble = (beat[(d * 4) / 32] >> ((d * 4) % 32)) & 0xF;
        write!(s, "{nibble:x}").unwrap();
    }
    s
}

fn write_hex(path: &Path, beats: &[Beat], bits: usize) {
    let text: String = beats.iter().map(|b| hex(b, bits) + "\n").collect();
    std::fs::write(path, text).unwrap();
}

fn run_icarus(cfg_text: &str, seed: u64) {
    let cfg = Config::from_toml(cfg_text, "icarus test").unwrap();
    let geo = cfg.geometry;
    let dir = tempfile::tempdir().unwrap();
    let design = generate(&cfg).unwrap();
    write_design(&design, dir.path()).unwrap();

    let (m, k) = (cfg.workload.m, cfg.workload.k);
    let vectors = Vectors::generate(&cfg, VectorKind::Random, seed);
    let weights = pack_weights(&geo, vectors.w.as_slice().unwrap(), m, k).unwrap();
    let acts: Vec<Beat> = vectors
        .xs
        .axis_iter(Axis(0))
        .flat_map(|x| pack_activations(&geo, x.as_slice().unwrap(), k).unwrap())
        .collect();
    // Expected result beats, packed here from the golden outputs (padding rows are 0).
    let golden = ternary_gemm(vectors.w.view(), vectors.xs.view());
    let acc = geo.accumulator_bits;
    let mut expected = vec![];
    for t in 0..golden.nrows() {
        for b in 0..geo.row_blocks {
            let mut beat = vec![0u32; words_for(geo.result_beat_bits())];
            for p in 0..geo.rows {
                let row = b * geo.rows + p;
                let v = if row < m { golden[[t, row]] } else { 0 };
                put_field(&mut beat, p * acc, acc, v as u64);
            }
            expected.push(beat);
        }
    }
    let (ab, wb, rb) = (
        geo.activation_beat_bits(),
        geo.weight_beat_bits(),
        geo.result_beat_bits(),
    );
    write_hex(&dir.path().join("acts.hex"), &acts, ab);
    write_hex(&dir.path().join("wgts.hex"), &weights, wb);
    write_hex(&dir.path().join("expected.hex"), &expected, rb);
    let (na, nw, nr) = (acts.len(), weights.len(), expected.len());
    let nw_total = nw * cfg.workload.tokens;
    let limit = 20 * (nw_total + na) + 1000;
    let tb = format!(
        r#"`timescale 1ns/1ps
module tb;
  reg clk = 0;
  always #5 clk = ~clk;
  reg rst = 1;
  reg [{ab1}:0] acts [0:{na1}];
  reg [{wb1}:0] wgts [0:{nw1}];
  reg [{rb1}:0] expected [0:{nr1}];
  integer ai = 0, wi = 0, ri = 0, errors = 0, cycles = 0;
  wire act_ready, wgt_ready, res_valid;
  wire [{rb1}:0] res_data;
  wire act_valid = !rst && ai < {na};
  wire wgt_valid = !rst && wi < {nw_total};
  tern_engine dut (.clk(clk), .rst(rst),
    .act_valid(act_valid), .act_ready(act_ready), .act_data(acts[ai]),
    .wgt_valid(wgt_valid), .wgt_ready(wgt_ready), .wgt_data(wgts[wi % {nw}]),
    .res_valid(res_valid), .res_ready(1'b1), .res_data(res_data));
  initial begin
    $readmemh("acts.hex", acts);
    $readmemh("wgts.hex", wgts);
    $readmemh("expected.hex", expected);
    repeat (2) @(posedge clk);
    rst <= 0;
  end
  always @(posedge clk) if (!rst) begin
    cycles <= cycles + 1;
    if (act_valid && act_ready) ai <= ai + 1;
    if (wgt_valid && wgt_ready) wi <= wi + 1;
    if (res_valid) begin
      if (res_data !== expected[ri]) begin
        errors = errors + 1;
        if (errors < 5) $display("MISMATCH beat %0d: got %h expected %h", ri, res_data, expected[ri]);
      end
      ri <= ri + 1;
      if (ri == {nr} - 1) begin
        $display("TERN-IVERILOG %s %0d beats %0d errors", errors == 0 ? "PASS" : "FAIL", {nr}, errors);
        $finish;
      end
    end
    if (cycles > {limit}) begin
      $display("TERN-IVERILOG TIMEOUT after %0d results", ri);
      $finish;
    end
  end
endmodule
"#,
        ab1 = ab - 1,
        wb1 = wb - 1,
        rb1 = rb - 1,
        na1 = na - 1,
        nw1 = nw - 1,
        nr1 = nr - 1,
    );
    std::fs::write(dir.path().join("tb.v"), tb).unwrap();
    let compile = Command::new("iverilog")
        .current_dir(dir.path())
        .args([
            "-g2012",
            "-o",
            "tb.vvp",
            "tb.v",
            "tern_engine.v",
            "tern_engine_core.v",
        ])
        .output()
        .expect("iverilog is installed by scripts/setup.sh");
    assert!(
        compile.status.success(),
        "iverilog: {}",
        String::from_utf8_lossy(&compile.stderr)
    );
    let run = Command::new("vvp")
        .current_dir(dir.path())
        .args(["-n", "tb.vvp"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&format!("TERN-IVERILOG PASS {nr} beats 0 errors")),
        "Icarus run failed (seed {seed}, config:\n{cfg_text}):\n{stdout}"
    );
}

#[test]
fn tlmm_under_icarus() {
    run_icarus(
        "[engine]\nkind = \"tlmm\"\ngroup_size = 3\nrows_parallel = 3\ngroups_per_cycle = 2\nactivation_bits = 8\n\
         accumulator_bits = 24\ntable_storage = \"block\"\nweight_buffer_depth = 4\n\
         [workload]\nm = 10\nk = 40\ntokens = 3\n",
        5,
    );
}

#[test]
fn adder_tree_under_icarus() {
    run_icarus(
        "[engine]\nkind = \"adder-tree\"\ngroup_size = 4\nrows_parallel = 2\ngroups_per_cycle = 1\nactivation_bits = 8\n\
         accumulator_bits = 16\ntable_storage = \"distributed\"\nweight_buffer_depth = 2\n\
         [workload]\nm = 5\nk = 21\ntokens = 2\n",
        6,
    );
}
