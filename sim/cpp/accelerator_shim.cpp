// tern's C ABI over a Verilated `tern_accelerator_core` (the one top's core) on the
// simulated board's DDR (`ddr_model.h`, `read_ports.h` and `unit_board.h`, put ahead of
// this file with `#define PORTS` the board's ports). One pass at a time: the ids pushed,
// then the pass started and clocked to its end; the host puts the memory in and takes
// it out without clocks.
#include <cstring>
#include "Vtern_accelerator_core.h"

extern "C" uint32_t tern_accelerator_abi() { return 4; }

using Model = UnitModel<Vtern_accelerator_core>;

// One pass (mirrored by `PassCommand` in Rust).
struct PassCommand {
    uint64_t program_at;
    const uint32_t* ids;
    uint32_t n_ids;
    uint32_t position;
};

// What it did (mirrored by `PassOutcome`).
struct PassOutcome {
    uint64_t clocks;  // from the start to the end of the pass; UINT64_MAX: not within the limit
    uint32_t error_code, error_command, next_token, commands_run;
    uint64_t clocks_pass, clocks_matmul, clocks_lm_head, clocks_vector, clocks_attention;
    DdrCounts ddr;
    // Bytes the DRAM read while the matmul, LM-head, vector and attention units ran (their
    // clock counters moving) and in the sequencer's own clocks: whoever asked for them.
    uint64_t read_while[5];
};

UNIT_C_API(tern_accelerator, Vtern_accelerator_core)

extern "C" {

void tern_accelerator_run(void* p, const PassCommand* c, PassOutcome* o, uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    DdrCounts before = DdrCounts::of(m->ddr);
    t->id_clear = 1;
    m->tick();
    t->id_clear = 0;
    for (uint32_t i = 0; i < c->n_ids; i++) {
        t->id_push = 1;
        t->id_data = c->ids[i];
        m->tick();
    }
    t->id_push = 0;
    t->program_at = c->program_at;
    t->position = c->position;
    uint64_t counted[4] = {t->clocks_matmul, t->clocks_lm_head, t->clocks_vector,
                           t->clocks_attention};
    uint64_t read = m->ddr.bytes_read;
    o->clocks = unit_run(m, limit, [&] {
        uint64_t now[4] = {t->clocks_matmul, t->clocks_lm_head, t->clocks_vector,
                           t->clocks_attention};
        int unit = 4;
        for (int i = 3; i >= 0; i--)
            if (now[i] != counted[i]) unit = i;
        o->read_while[unit] += m->ddr.bytes_read - read;
        read = m->ddr.bytes_read;
        std::memcpy(counted, now, sizeof counted);
    });
    o->error_code = t->error_code;
    o->error_command = t->error_command;
    o->next_token = t->next_token;
    o->commands_run = t->commands_run;
    o->clocks_pass = t->clocks_pass;
    o->clocks_matmul = t->clocks_matmul;
    o->clocks_lm_head = t->clocks_lm_head;
    o->clocks_vector = t->clocks_vector;
    o->clocks_attention = t->clocks_attention;
    o->ddr = DdrCounts::of(m->ddr).since(before);
}
}
