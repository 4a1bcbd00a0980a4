"""Build a generated top (`tern verilog --top` output in --dir) with Icarus Verilog and run
test_tern_top.py on it under cocotb. Exit status 0 only if every test passed.

    python3 sim/cocotb/run_top.py --dir DIR --params '{"kind": "tlmm", ...}' --seed S --pause P

`--test test_tern_attention_top` runs the attention top's testbench instead.
"""

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from cocotb_tools.runner import get_runner


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--params", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pause", type=int, default=0)
    ap.add_argument("--build", type=Path, default=None)
    ap.add_argument("--test", default="test_tern_top")
    a = ap.parse_args()
    json.loads(a.params)  # fail early on bad JSON
    here = Path(__file__).resolve().parent
    sources = [a.dir / f for f in ("tern_engine_core.v", "tern_engine.v", "tern_top.v")]
    build = a.build or (a.dir / "cocotb_build")
    runner = get_runner("icarus")
    runner.build(sources=sources, hdl_toplevel="tern_top", build_dir=build, timescale=("1ns", "1ps"), always=True)
    results = runner.test(
        hdl_toplevel="tern_top",
        test_module=a.test,
        test_dir=here,
        build_dir=build,
        results_xml=str(build / "results.xml"),
        extra_env={
            "TERN_PARAMS": a.params,
            "TERN_SEED": str(a.seed),
            "TERN_PAUSE": str(a.pause),
            "TERN_DIR": str(a.dir.resolve()),
        },
    )
    tree = ET.parse(results)
    cases = tree.findall(".//testcase")
    failed = [c for c in cases if c.find("failure") is not None or c.find("error") is not None]
    print(f"cocotb: {len(cases)} test(s), {len(failed)} failed ({results})")
    sys.exit(1 if failed or not cases else 0)


if __name__ == "__main__":
    main()
