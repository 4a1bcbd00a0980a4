"""cocotb testbench of the accelerator top around the attention engine, written from
docs/top.md ("Attention"), docs/streams.md and the integer contract in
sim/src/golden/attention.rs alone: the KV cache laid out tile-major in cocotbext-axi's
AxiRam, the arguments written through AxiLiteMaster, every row's output recomputed here
in plain Python integers from the engine's constants (manifest.json "parameters").

Parameters come from the environment (run_top.py sets them): TERN_PARAMS (JSON: d, macs,
tile, L, rows, causal, bus_bits), TERN_SEED, TERN_PAUSE (percent of clocks each channel
of both AXI ports is paused, at random). The testbench does not know the engine's
`query_block`: results must not depend on it."""

import json
import os
from pathlib import Path

import cocotb
import numpy as np

import axi_harness

# Register offsets (regmap.md of an attention top).
CONTROL, GIE, IER = 0x00, 0x04, 0x08
WEIGHTS, ACTIVATIONS, RESULTS, TOKENS = 0x10, 0x18, 0x20, 0x28
CYCLES, HW_ID, ERROR = 0x30, 0x38, 0x44
SEQ_LEN, FIRST_POSITION, CAUSAL = 0x48, 0x50, 0x58
AP_START, AP_DONE, AP_IDLE = 1, 2, 4

KV_AT, QUERIES_AT, RESULTS_AT = 0x0, 0x20000, 0x30000


def round_up(n, to):
    return (n + to - 1) // to * to


def schedule(first, rows, seq_len, causal, tile):
    """(position, visible, kv_len) per row (docs/streams.md)."""
    out = []
    for p in range(first, first + rows):
        if causal:
            out.append((p, p + 1, min(round_up(p + 1, tile), seq_len)))
        else:
            out.append((p, seq_len, seq_len))
    return out


def row_output(c, tile, q, k, v, visible, kv_len):
    """One row by the contract: tiles, running maximum, rescale, integer normalisation."""
    thr, offset = c["threshold"], c["index_offset"]
    exp_table, rescale_table = c["exp_table"], c["rescale_table"]
    e_steps, r_steps = len(exp_table) - 1, len(rescale_table) - 1

    def idx(delta, steps):
        return (steps * min(delta, thr) + offset) // thr

    def rescale(x, f):
        return (x * f + (1 << 14)) >> 15

    d = len(q)
    acc, total, m = [0] * d, 0, None
    for start in range(0, kv_len, tile):
        keys = range(start, min(start + tile, kv_len))
        scores = {j: int(np.dot(q.astype(np.int64), k[j].astype(np.int64))) for j in keys}
        seen = [scores[j] for j in keys if j < visible]
        if seen:
            t = max(seen)
            if m is None:
                m = t
            elif t > m:
                f = rescale_table[idx(t - m, r_steps)]
                total = rescale(total, f)
                acc = [rescale(a, f) for a in acc]
                m = t
        for j in keys:
            e = exp_table[idx(m - scores[j], e_steps)] if (m is not None and j < visible) else 0
            total += e
            acc = [a + e * int(x) for a, x in zip(acc, v[j])]
    if total == 0:
        return [0] * d, True
    r = c["output_numerator"] // total
    half = 1 << (c["output_shift"] - 1)
    return [max(-128, min(127, (a * r + half) >> c["output_shift"])) for a in acc], False


@cocotb.test()
async def attention_matches_the_contract(dut):
    p = json.loads(os.environ["TERN_PARAMS"])
    seed = int(os.environ.get("TERN_SEED", "1"))
    pause = int(os.environ.get("TERN_PAUSE", "0"))
    consts = json.loads((Path(os.environ["TERN_DIR"]) / "manifest.json").read_text())["parameters"]
    d, macs, tile, seq_len, rows = p["d"], p["macs"], p["tile"], p["L"], p["rows"]
    causal = p["causal"]
    first = seq_len - rows
    bus = p["bus_bits"] // 8
    chunks = d // macs
    result_words = (8 * macs + 1 + 31) // 32
    beat_stride = round_up(4 * result_words, bus)
    rng = np.random.default_rng(seed)
    q = np.clip(np.rint(rng.normal(0, 30, size=(rows, d))), -128, 127).astype(np.int8)
    k = np.clip(np.rint(rng.normal(0, 30, size=(seq_len, d))), -128, 127).astype(np.int8)
    v = np.clip(np.rint(rng.normal(0, 40, size=(seq_len, d))), -128, 127).astype(np.int8)

    control, ram = await axi_harness.start(dut, seed, pause)

    # The KV cache, tile-major: tile t = its keys, then their values (docs/top.md).
    for i in range(seq_len):
        t, s = divmod(i, tile)
        key_at = KV_AT + t * 2 * tile * d + s * d
        ram.write(key_at, k[i].tobytes())
        ram.write(key_at + tile * d, v[i].tobytes())
    ram.write(QUERIES_AT, q.tobytes())
    ram.write(RESULTS_AT, bytes([0xA5]) * (rows * chunks * beat_stride))

    assert await control.read_dword(HW_ID) == 0x5445524E
    for offset, address in ((WEIGHTS, KV_AT), (ACTIVATIONS, QUERIES_AT), (RESULTS, RESULTS_AT)):
        await control.write_dword(offset, address)
        await control.write_dword(offset + 4, 0)
    await control.write_dword(TOKENS, rows)
    await control.write_dword(SEQ_LEN, seq_len)
    await control.write_dword(FIRST_POSITION, first)
    await control.write_dword(CAUSAL, int(causal))
    await control.write_dword(IER, 1)
    await control.write_dword(GIE, 1)
    await control.write_dword(CONTROL, AP_START)

    await axi_harness.wait_interrupt(dut, 20_000_000)
    assert await control.read_dword(ERROR) == 0
    status = await control.read_dword(CONTROL)
    assert status & (AP_DONE | AP_IDLE) == AP_DONE | AP_IDLE, hex(status)
    cycles = await control.read_dword(CYCLES)

    region = ram.read(RESULTS_AT, rows * chunks * beat_stride)
    for r, (position, visible, kv_len) in enumerate(schedule(first, rows, seq_len, causal, tile)):
        want, want_empty = row_output(consts, tile, q[r], k, v, visible, kv_len)
        got, empty = [], False
        for c in range(chunks):
            at = (r * chunks + c) * beat_stride
            beat = int.from_bytes(region[at : at + beat_stride], "little")
            got += [((beat >> (8 * i)) & 0xFF) - (256 if (beat >> (8 * i + 7)) & 1 else 0) for i in range(macs)]
            empty |= bool((beat >> (8 * macs)) & 1)
            # Nothing beyond the result beat's bits is written but zeros.
            assert beat >> (8 * macs + 1) == 0, f"row {r}, beat {c}: bits beyond the beat: {hex(beat)}"
        lane = next((i for i in range(d) if got[i] != want[i]), None)
        assert lane is None and empty == want_empty, (
            f"params {p}, seed {seed}, pause {pause}%: row {r} (position {position}) differs at lane "
            f"{lane}: kernel {got} (empty {empty}), expected {want} (empty {want_empty})"
        )
    # The queries and the cache are untouched, and nothing follows the results.
    assert ram.read(QUERIES_AT, q.size) == q.tobytes()
    assert ram.read(KV_AT, d) == k[0].tobytes()
    assert ram.read(RESULTS_AT + rows * chunks * beat_stride, 64) == bytes(64)
    dut._log.info("bit-exact: %d rows, %d kernel clocks (pause %d%%)", rows, cycles, pause)
