"""What both top testbenches share: the clock, cocotbext-axi's AxiLiteMaster on the
control port and AxiRam as the memory, random pauses on every channel of both ports,
the reset, and the wait for the interrupt."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam


def pauses(rng, percent):
    while True:
        yield rng.randrange(100) < percent


async def start(dut, seed, pause, ram_bytes=2**18):
    """Clock, control master and memory on `dut`, every AXI channel paused `pause` % of
    clocks at random (from `seed`), reset released. Returns (control, ram)."""
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())
    control = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False)
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n, reset_active_level=False, size=ram_bytes)
    if pause:
        prng = random.Random(seed)
        for channel in (
            ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
            ram.read_if.ar_channel, ram.read_if.r_channel,
            control.write_if.aw_channel, control.write_if.w_channel, control.write_if.b_channel,
            control.read_if.ar_channel, control.read_if.r_channel,
        ):
            channel.set_pause_generator(pauses(prng, pause))
    dut.ap_rst_n.value = 0
    for _ in range(5):
        await RisingEdge(dut.ap_clk)
    dut.ap_rst_n.value = 1
    for _ in range(2):
        await RisingEdge(dut.ap_clk)
    return control, ram


async def wait_interrupt(dut, timeout_ns):
    async def interrupt():
        while not dut.interrupt.value:
            await RisingEdge(dut.ap_clk)

    await with_timeout(interrupt(), timeout_ns, "ns")
