// tern's C ABI over a Verilated `tern_attention_unit` on the simulated board's DDR
// (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of this file with
// `#define PORTS 1`). One Attention command at a time; the host puts the memory in and
// takes it out without clocks.
#include <cstring>
#include "Vtern_attention_unit.h"

extern "C" uint32_t tern_attention_unit_abi() { return 1; }

using Model = UnitModel<Vtern_attention_unit>;

// One command (mirrored by `AttentionUnitCommand` in Rust).
struct AttentionUnitCommand {
    uint64_t q, k, v, dst, attention_at;
    uint32_t layer, rows, position, max_seq_len;
};

// What it did (mirrored by `AttentionUnitOutcome`).
struct AttentionUnitOutcome {
    uint64_t clocks;  // from the command to done; UINT64_MAX: not within the limit
    uint32_t error;
    uint32_t zero;
    DdrCounts ddr;
};

UNIT_C_API(tern_attention_unit, Vtern_attention_unit)

extern "C" {

void tern_attention_unit_run(void* p, const AttentionUnitCommand* c, AttentionUnitOutcome* o,
                             uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    t->cmd_layer = c->layer;
    t->cmd_q = c->q;
    t->cmd_k = c->k;
    t->cmd_v = c->v;
    t->cmd_dst = c->dst;
    t->cmd_rows = c->rows;
    t->cmd_position = c->position;
    t->cmd_attention_at = c->attention_at;
    t->cmd_max_seq_len = c->max_seq_len;
    o->clocks = unit_run(m, limit);
    o->error = t->error;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
