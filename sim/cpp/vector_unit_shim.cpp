// tern's C ABI over a Verilated `tern_vector_unit` on the simulated board's DDR
// (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file with
// `#define PORTS` 1 or 2). One element-wise command at a time; the host puts the memory in
// and takes it out without clocks.
#include <cstring>
#include "Vtern_vector_unit.h"

extern "C" uint32_t tern_vector_unit_abi() { return 1; }

using Model = UnitModel<Vtern_vector_unit>;

// One command (mirrored by `VectorUnitCommand` in Rust).
struct VectorUnitCommand {
    uint64_t a, b, c, d;
    uint32_t op, n, count, k, position, scale_m;
    int32_t scale_e;
    uint32_t add, pass_rows;
    int32_t frac;
    uint32_t eps_m;
    int32_t eps_e;
};

// What it did (mirrored by `VectorUnitOutcome`).
struct VectorUnitOutcome {
    uint64_t clocks;  // from the command to done; UINT64_MAX: not within the limit
    uint32_t error;
    uint32_t error_row;
    uint32_t saturated;
    uint32_t zero;
    DdrCounts ddr;
};

UNIT_C_API(tern_vector_unit, Vtern_vector_unit)

extern "C" {

void tern_vector_unit_run(void* p, const VectorUnitCommand* c, VectorUnitOutcome* o,
                          uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    t->cmd_op = c->op;
    t->cmd_a = c->a;
    t->cmd_b = c->b;
    t->cmd_c = c->c;
    t->cmd_d = c->d;
    t->cmd_n = c->n;
    t->cmd_count = c->count;
    t->cmd_k = c->k;
    t->cmd_position = c->position;
    t->cmd_scale_m = c->scale_m;
    t->cmd_scale_e = (uint32_t)c->scale_e;
    t->cmd_add = c->add != 0;
    t->cmd_pass_rows = c->pass_rows;
    t->cmd_frac = (uint32_t)c->frac;
    t->cmd_eps_m = c->eps_m;
    t->cmd_eps_e = (uint32_t)c->eps_e;
    o->clocks = unit_run(m, limit);
    o->error = t->error;
    o->error_row = t->error_row;
    o->saturated = t->saturated;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
