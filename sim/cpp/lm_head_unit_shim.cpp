// tern's C ABI over a Verilated `tern_lm_head_unit` on the simulated board's DDR
// (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file with
// `#define PORTS`). One LmHead command at a time; the host puts the memory in and takes
// it out without clocks.
#include <cstring>
#include "Vtern_lm_head_unit.h"

extern "C" uint32_t tern_lm_head_unit_abi() { return 2; }

using Model = UnitModel<Vtern_lm_head_unit>;

// One LmHead command (mirrored by `LmHeadUnitCommand` in Rust).
struct LmHeadUnitCommand {
    uint64_t src, weights, mantissas, output_at;
    uint32_t rows, width, pass_rows, scores;
    uint32_t group;  // a 4-bit head's group; 0: an int8 head
    uint32_t pad;
};

// What it did (mirrored by `LmHeadUnitOutcome`).
struct LmHeadUnitOutcome {
    uint64_t clocks;  // from the command to done; UINT64_MAX: not within the limit
    uint32_t error;
    uint32_t next;
    DdrCounts ddr;
};

UNIT_C_API(tern_lm_head_unit, Vtern_lm_head_unit)

extern "C" {

void tern_lm_head_unit_run(void* p, const LmHeadUnitCommand* c, LmHeadUnitOutcome* o,
                           uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    t->cmd_src = c->src;
    t->cmd_weights = c->weights;
    t->cmd_mantissas = c->mantissas;
    t->cmd_output_at = c->output_at;
    t->cmd_rows = c->rows;
    t->cmd_width = c->width;
    t->cmd_pass_rows = c->pass_rows;
    t->cmd_scores = c->scores;
    t->cmd_group = c->group;
    o->clocks = unit_run(m, limit);
    o->error = t->error;
    o->next = t->next;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
