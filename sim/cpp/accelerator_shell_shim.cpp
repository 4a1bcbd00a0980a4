// tern's C ABI over a Verilated `tern_accelerator` (the one top's shell) on the simulated
// board's DDR (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file
// with `#define PORTS` the board's ports and the shell's names: WRITE_PORT(sig) m0_##sig,
// UNIT_CLOCK ap_clk, UNIT_RESET, UNIT_IDLE_INPUTS). A pass is driven as a host driver
// would, through the AXI4-Lite registers (docs/accelerator.md, "Shell"): a decoded token
// is one write to STEP; a prompt its ids written to TOKEN, POSITION, then ap_start. The
// pass ends at the interrupt.
#include <cstring>
#include "Vtern_accelerator.h"

extern "C" uint32_t tern_accelerator_shell_abi() { return 1; }

using Model = UnitModel<Vtern_accelerator>;

// Register offsets: tern_hdl::accelerator::shell.
enum : uint32_t {
    CONTROL = 0x00, GIE = 0x04, IER = 0x08, ISR = 0x0C, PROGRAM = 0x10, PROGRAM_HI = 0x14,
    POSITION = 0x18, TOKEN = 0x1C, STEP = 0x20, CLEAR = 0x24, NEXT_TOKEN = 0x28,
    ERROR_CODE = 0x2C, ERROR_COMMAND = 0x30, COMMANDS_RUN = 0x34, CLOCKS = 0x38,
    CLOCKS_HI = 0x3C, MATMUL_CLOCKS = 0x40, ATTENTION_CLOCKS = 0x44, VECTOR_CLOCKS = 0x48,
    LM_HEAD_CLOCKS = 0x4C, HW_ID = 0x50, DESIGN_ID = 0x54
};

// Register accesses since the pass began (a host driver's cost).
static uint32_t accesses = 0;

// One AXI4-Lite write: address and data offered together, then the response.
static void reg_write(Model* m, uint32_t addr, uint32_t data) {
    auto* t = m->top.get();
    accesses++;
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
    accesses++;
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

// One pass (mirrored by `PassCommand` in Rust).
struct PassCommand {
    uint64_t program_at;
    const uint32_t* ids;
    uint32_t n_ids;
    uint32_t position;
};

// What it did (mirrored by `PassOutcome`).
struct PassOutcome {
    uint64_t clocks;  // from the starting write to the interrupt; UINT64_MAX: none within the limit
    uint32_t error_code, error_command, next_token, commands_run;
    uint64_t clocks_pass, clocks_matmul, clocks_lm_head, clocks_vector, clocks_attention;
    DdrCounts ddr;
    uint32_t hw_id, design_id;
    uint32_t register_accesses, kernel_starts;
};

UNIT_C_API(tern_accelerator_shell, Vtern_accelerator)

extern "C" {

void tern_accelerator_shell_run(void* p, const PassCommand* c, PassOutcome* o, uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    accesses = 0;
    reg_write(m, GIE, 1);
    reg_write(m, IER, 1);
    reg_write(m, PROGRAM, (uint32_t)c->program_at);
    reg_write(m, PROGRAM_HI, (uint32_t)(c->program_at >> 32));
    uint64_t start = m->cycles;
    if (c->n_ids == 1) {
        reg_write(m, STEP, c->ids[0] | (c->position << 17));
    } else {
        reg_write(m, CLEAR, 0);
        for (uint32_t i = 0; i < c->n_ids; i++) reg_write(m, TOKEN, c->ids[i]);
        reg_write(m, POSITION, c->position);
        reg_write(m, CONTROL, 1);
    }
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
    o->next_token = reg_read(m, NEXT_TOKEN);
    o->error_code = reg_read(m, ERROR_CODE);
    o->error_command = reg_read(m, ERROR_COMMAND);
    o->commands_run = reg_read(m, COMMANDS_RUN);
    o->clocks_pass = reg_read(m, CLOCKS) | (uint64_t)reg_read(m, CLOCKS_HI) << 32;
    o->clocks_matmul = reg_read(m, MATMUL_CLOCKS);
    o->clocks_attention = reg_read(m, ATTENTION_CLOCKS);
    o->clocks_vector = reg_read(m, VECTOR_CLOCKS);
    o->clocks_lm_head = reg_read(m, LM_HEAD_CLOCKS);
    o->hw_id = reg_read(m, HW_ID);
    o->design_id = reg_read(m, DESIGN_ID);
    // Acknowledge: the interrupt's status toggled off, ap_done cleared by the read.
    reg_write(m, ISR, 1);
    reg_read(m, CONTROL);
    o->register_accesses = accesses;
    o->kernel_starts = 1;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
