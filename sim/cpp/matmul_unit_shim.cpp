// tern's C ABI over a Verilated `tern_matmul_unit` on the simulated board's DDR
// (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file with
// `#define PORTS`). One Matmul command at a time; the host puts the memory in and takes
// it out without clocks.
#include <cstring>
#include "Vtern_matmul_unit.h"

extern "C" uint32_t tern_matmul_unit_abi() { return 1; }

using Model = UnitModel<Vtern_matmul_unit>;

// One Matmul command (mirrored by `MatmulUnitCommand` in Rust).
struct MatmulUnitCommand {
    uint64_t src, weights, dst;
    uint32_t m, k, pass_rows, zero;
};

// What it did (mirrored by `MatmulUnitOutcome`).
struct MatmulUnitOutcome {
    uint64_t clocks;  // from the command to done; UINT64_MAX: not within the limit
    uint32_t error;
    uint32_t zero;
    DdrCounts ddr;
};

UNIT_C_API(tern_matmul_unit, Vtern_matmul_unit)

extern "C" {

void tern_matmul_unit_run(void* p, const MatmulUnitCommand* c, MatmulUnitOutcome* o,
                          uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    t->cmd_src = c->src;
    t->cmd_weights = c->weights;
    t->cmd_dst = c->dst;
    t->cmd_m = c->m;
    t->cmd_k = c->k;
    t->cmd_pass_rows = c->pass_rows;
    o->clocks = unit_run(m, limit);
    o->error = t->error;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
