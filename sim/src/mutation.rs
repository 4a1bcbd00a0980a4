//! Deliberately broken designs, for tests that the harness catches what it must: a
//! wrong datapath (first differing output, seed, waveform) and an extra result beat.
//! One place for the edit, so a test fails loudly when the generated text changes shape
//! instead of silently testing an unbroken design.

use tern_hdl::Design;

/// `design` with the one occurrence of `needle` in its core Verilog replaced by `with`,
/// under a content hash of its own that covers the edit (so no cached model of the real
/// design, or of an earlier version of the mutation, is used).
/// Panics if `needle` does not occur exactly once: the mutation would not be what the
/// test says it is.
pub fn mutated(design: &Design, needle: &str, with: &str) -> Design {
    let count = design.core_verilog.matches(needle).count();
    assert_eq!(
        count, 1,
        "`{needle}` occurs {count} times in the generated core: the design changed shape"
    );
    let mut broken = design.clone();
    broken.core_verilog = design.core_verilog.replacen(needle, with, 1);
    broken.manifest.content_hash =
        tern_hdl::emit::content_hash(&broken.wrapper_verilog, &broken.core_verilog);
    broken
}

/// A matmul engine that raises `res_valid` once more after its `results`-th result beat
/// was taken, and (as the valid/ready protocol demands) holds it until the beat is
/// taken: every expected result is right, one comes too many.
pub fn extra_result_after(design: &Design, results: usize) -> Design {
    assert!(results < 255, "the mutation counts results in 8 bits");
    mutated(
        design,
        "assign out_valid = ov;",
        &format!(
            "reg [7:0] seen;\nreg extra, fired;\n\
             always @(posedge clock) begin\n    if (reset) begin seen <= 8'd0; extra <= 1'b0; fired <= 1'b0; end\n    \
             else begin\n        if (ov & res_ready) seen <= seen + 8'd1;\n        \
             if (~fired & ~ov & (seen == 8'd{results})) begin extra <= 1'b1; fired <= 1'b1; end\n        \
             else if (extra & res_ready) extra <= 1'b0;\n    end\nend\n\
             assign out_valid = ov | extra;"
        ),
    )
}
