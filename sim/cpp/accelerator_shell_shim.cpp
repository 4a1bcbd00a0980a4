// tern's C ABI over a Verilated `tern_accelerator` (the one top's shell) on the simulated
// board's DDR (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file
// with `#define PORTS` the board's ports and the shell's names: WRITE_PORT(sig) m0_##sig,
// UNIT_CLOCK ap_clk, UNIT_RESET, UNIT_IDLE_INPUTS). What a host has of a board: one
// AXI4-Lite access at a time, a wait for the interrupt, a reset; the memory through
// NAME_write/NAME_read. The driver that makes passes of these is tern-host's
// (`one_top.rs`), the same for this board and a real one.
#include <cstring>
#include "Vtern_accelerator.h"

extern "C" uint32_t tern_accelerator_shell_abi() { return 4; }

using Model = UnitModel<Vtern_accelerator>;

// One AXI4-Lite write: address and data offered together, then the response.
static void reg_write(Model* m, uint32_t addr, uint32_t data) {
    auto* t = m->top.get();
    t->s_axi_control_awaddr = addr;
    t->s_axi_control_wdata = data;
    t->s_axi_control_wstrb = 0xf;
    t->s_axi_control_awvalid = 1;
    t->s_axi_control_wvalid = 1;
    t->s_axi_control_bready = 1;
    for (int i = 0; i < 64 && (t->s_axi_control_awvalid || t->s_axi_control_wvalid); i++) {
        m->drive();
        t->eval();
        bool aw = t->s_axi_control_awvalid && t->s_axi_control_awready;
        bool w = t->s_axi_control_wvalid && t->s_axi_control_wready;
        m->tick();
        if (aw) t->s_axi_control_awvalid = 0;
        if (w) t->s_axi_control_wvalid = 0;
    }
    for (int i = 0; i < 64; i++) {
        m->drive();
        t->eval();
        bool b = t->s_axi_control_bvalid;
        m->tick();
        if (b) break;
    }
    t->s_axi_control_bready = 0;
}

// One AXI4-Lite read.
static uint32_t reg_read(Model* m, uint32_t addr) {
    auto* t = m->top.get();
    t->s_axi_control_araddr = addr;
    t->s_axi_control_arvalid = 1;
    t->s_axi_control_rready = 1;
    uint32_t data = 0xDEADBEEF;
    for (int i = 0; i < 64; i++) {
        m->drive();
        t->eval();
        bool ar = t->s_axi_control_arvalid && t->s_axi_control_arready;
        bool r = t->s_axi_control_rvalid;
        if (r) data = t->s_axi_control_rdata;
        m->tick();
        if (ar) t->s_axi_control_arvalid = 0;
        if (r) break;
    }
    t->s_axi_control_rready = 0;
    return data;
}

// One host operation on the board (mirrored by `ShellOp` in Rust).
enum : uint32_t {
    OP_WRITE32 = 0,
    OP_READ32 = 1,
    OP_WAIT_INTERRUPT = 2,
    OP_RESET = 3,
    OP_PEEK = 4,
    OP_WINDOW = 5,  // where the DDR sits on the bus: addr the low word, data the high
};
struct ShellOp {
    uint32_t op, addr, data, pad;
};

// What it did (mirrored by `ShellOutcome`).
struct ShellOutcome {
    uint64_t clocks;     // the op's clocks; OP_WAIT_INTERRUPT: UINT64_MAX if none within the limit
    uint32_t data;       // OP_READ32's value
    uint32_t interrupt;  // the interrupt line afterwards
    DdrCounts ddr;       // since the board was made
    uint64_t cycles;     // the board's clock count
};

UNIT_C_API(tern_accelerator_shell, Vtern_accelerator)

extern "C" {

void tern_accelerator_shell_run(void* p, const ShellOp* c, ShellOutcome* o, uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    uint64_t start = m->cycles;
    switch (c->op) {
        case OP_WRITE32:
            reg_write(m, c->addr, c->data);
            o->clocks = m->cycles - start;
            break;
        case OP_READ32:
            o->data = reg_read(m, c->addr);
            o->clocks = m->cycles - start;
            break;
        case OP_WAIT_INTERRUPT:
            o->clocks = UINT64_MAX;
            for (uint64_t i = 0; i < limit; i++) {
                m->drive();
                t->eval();
                if (t->__SYM__interrupt) {
                    o->clocks = m->cycles - start;
                    break;
                }
                m->tick();
            }
            break;
        case OP_PEEK:  // no clocks: the counters only
            break;
        case OP_WINDOW:  // no clocks: the board's wiring
            m->ddr.window_base = (uint64_t)c->data << 32 | c->addr;
            break;
        default:  // OP_RESET: ap_rst_n low for 4 clocks; the memory is kept
            UNIT_RESET(t, 1);
            UNIT_IDLE_INPUTS(t);
            for (int i = 0; i < 4; i++) m->tick();
            UNIT_RESET(t, 0);
            t->eval();
            o->clocks = m->cycles - start;
    }
    m->drive();
    t->eval();
    o->interrupt = t->__SYM__interrupt;
    o->ddr = DdrCounts::of(m->ddr);
    o->cycles = m->cycles;
}
}
