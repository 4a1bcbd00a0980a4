"""cocotb testbench of the accelerator top, written from docs/streams.md and docs/top.md
alone: a second, independent opinion on the AXI side. cocotbext-axi drives the control
port (AxiLiteMaster) and is the memory (AxiRam, which checks among other things that no
burst crosses 4 KiB); this file packs the weights and activations itself, computes the
expected results with NumPy (y = W x) and unpacks the results the kernel wrote.

Parameters come from the environment (run_top.py sets them): TERN_PARAMS (JSON: kind, G,
P, Q, M, K, acc, bus_bits, tokens, token_block), TERN_SEED, TERN_PAUSE (percent of clocks
each channel of both AXI ports is paused, at random)."""

import json
import os

import cocotb
import numpy as np

import axi_harness

# Register offsets (regmap.md).
CONTROL, GIE, IER, ISR = 0x00, 0x04, 0x08, 0x0C
WEIGHTS, ACTIVATIONS, RESULTS, TOKENS = 0x10, 0x18, 0x20, 0x28
CYCLES, HW_ID, ERROR = 0x30, 0x38, 0x44
AP_START, AP_DONE, AP_IDLE = 1, 2, 4
INDEX_BITS = {1: 1, 2: 3, 3: 4, 4: 6, 5: 7}

WEIGHTS_AT, ACTIVATIONS_AT, RESULTS_AT = 0x0, 0x10000, 0x20000


def round_up(n, to):
    return (n + to - 1) // to * to


def words(bits):
    return (bits + 31) // 32


class Layout:
    """Sizes and strides, from docs/streams.md and docs/top.md."""

    def __init__(self, p):
        self.p = p
        self.lane_group = p["G"] if p["kind"] == "tlmm" else 1
        self.lanes_per_row = p["Q"] if p["kind"] == "tlmm" else p["Q"] * p["G"]
        self.chunk = p["Q"] * p["G"]
        self.chunks = -(-p["K"] // self.chunk)
        self.row_blocks = -(-p["M"] // p["P"])
        self.code_bits = 1 + INDEX_BITS[self.lane_group]
        self.bus = p["bus_bits"] // 8
        self.act_words = words(8 * self.chunk)
        self.wgt_words = words(p["P"] * self.lanes_per_row * self.code_bits)
        self.res_words = words(p["P"] * p["acc"])
        self.wgt_stride = 4 * self.wgt_words  # weight beats lie back to back
        self.act_stride = round_up(4 * self.act_words * self.chunks, self.bus)
        self.res_beat_stride = round_up(4 * self.res_words, self.bus)
        self.res_stride = self.row_blocks * self.res_beat_stride


def code(group):
    v = sum(int(w) * 3**j for j, w in enumerate(group))
    return v


def pack_weights(lay, w):
    """All weight beats, chunk-major, back to back."""
    p = lay.p
    P, L, g, cb = p["P"], lay.lanes_per_row, lay.lane_group, lay.code_bits
    ib = cb - 1
    padded = np.zeros((lay.row_blocks * P, lay.chunks * lay.chunk), dtype=np.int64)
    padded[: p["M"], : p["K"]] = w
    out = bytearray()
    for c in range(lay.chunks):
        for b in range(lay.row_blocks):
            beat = 0
            for pp in range(P):
                for l in range(L):
                    cols = padded[b * P + pp, c * lay.chunk + l * g : c * lay.chunk + (l + 1) * g]
                    v = code(cols)
                    value = ((1 << ib) | -v) if v < 0 else v
                    beat |= value << ((pp * L + l) * cb)
            out += beat.to_bytes(lay.wgt_stride, "little")
    return bytes(out)


def pack_activations(lay, x):
    """Each token's chunks back to back, one token every activation stride."""
    out = bytearray()
    for token in x:
        padded = np.zeros(lay.chunks * lay.chunk, dtype=np.int64)
        padded[: len(token)] = token
        t = bytearray()
        for c in range(lay.chunks):
            beat = 0
            for a in range(lay.chunk):
                beat |= (int(padded[c * lay.chunk + a]) & 0xFF) << (8 * a)
            t += beat.to_bytes(4 * lay.act_words, "little")
        out += t + bytes(lay.act_stride - len(t))
    return bytes(out)


def unpack_results(lay, data, tokens):
    p = lay.p
    acc = p["acc"]
    y = np.zeros((tokens, p["M"]), dtype=np.int64)
    for t in range(tokens):
        for m in range(p["M"]):
            b, pp = divmod(m, p["P"])
            at = t * lay.res_stride + b * lay.res_beat_stride
            beat = int.from_bytes(data[at : at + 4 * lay.res_words], "little")
            field = (beat >> (pp * acc)) & ((1 << acc) - 1)
            y[t, m] = field - (1 << acc) if field >> (acc - 1) else field
    return y


@cocotb.test()
async def gemm_matches_numpy(dut):
    params = json.loads(os.environ["TERN_PARAMS"])
    seed = int(os.environ.get("TERN_SEED", "1"))
    pause = int(os.environ.get("TERN_PAUSE", "0"))
    lay = Layout(params)
    rng = np.random.default_rng(seed)
    tokens = params["tokens"]
    w = rng.integers(-1, 2, size=(params["M"], params["K"]))
    x = rng.integers(-128, 128, size=(tokens, params["K"]))
    expected = x @ w.T

    control, ram = await axi_harness.start(dut, seed, pause)

    ram.write(WEIGHTS_AT, pack_weights(lay, w))
    ram.write(ACTIVATIONS_AT, pack_activations(lay, x))
    poison = bytes([0xA5]) * (tokens * lay.res_stride)
    ram.write(RESULTS_AT, poison)

    assert await control.read_dword(HW_ID) == 0x5445524E
    assert await control.read_dword(CONTROL) == AP_IDLE
    for offset, address in ((WEIGHTS, WEIGHTS_AT), (ACTIVATIONS, ACTIVATIONS_AT), (RESULTS, RESULTS_AT)):
        await control.write_dword(offset, address & 0xFFFFFFFF)
        await control.write_dword(offset + 4, address >> 32)
    await control.write_dword(TOKENS, tokens)
    await control.write_dword(IER, 1)
    await control.write_dword(GIE, 1)
    await control.write_dword(CONTROL, AP_START)

    await axi_harness.wait_interrupt(dut, 2_000_000)
    assert await control.read_dword(ERROR) == 0
    status = await control.read_dword(CONTROL)
    assert status & (AP_DONE | AP_IDLE) == AP_DONE | AP_IDLE, hex(status)
    cycles = await control.read_dword(CYCLES)
    got = unpack_results(lay, ram.read(RESULTS_AT, tokens * lay.res_stride), tokens)
    diff = np.argwhere(got != expected)
    assert len(diff) == 0, (
        f"params {params}, seed {seed}, pause {pause}%: first difference at token "
        f"{diff[0][0]}, row {diff[0][1]}: kernel {got[tuple(diff[0])]}, numpy {expected[tuple(diff[0])]}"
    )
    # Nothing was written outside the results' beats: every padding byte of a result
    # beat is zero and the weights and activations are untouched.
    region = ram.read(RESULTS_AT, tokens * lay.res_stride)
    for t in range(tokens):
        for b in range(lay.row_blocks):
            at = t * lay.res_stride + b * lay.res_beat_stride
            pad = region[at + 4 * lay.res_words : at + lay.res_beat_stride]
            assert pad == bytes(len(pad)), f"token {t}, row block {b}: padding {pad.hex()}"
    assert ram.read(WEIGHTS_AT, len(pack_weights(lay, w))) == pack_weights(lay, w)
    assert ram.read(RESULTS_AT + tokens * lay.res_stride, 64) == bytes(64)
    dut._log.info("bit-exact: %d outputs, %d kernel clocks (pause %d%%)", expected.size, cycles, pause)
