// tern's C ABI over a Verilated `tern_to_int8` (the vector unit's cast to the
// attention's int8 unit): one command at a time through the valid/ready handshakes,
// optionally with seeded random stalls on both sides. The Rust side puts
// `vector_ports.h` and `#define LANES` ahead of this file.
#include "Vtern_to_int8.h"

TERN_BLOCK_ABI(tern_to_int8, Vtern_to_int8)
using Model = Block<Vtern_to_int8>;

extern "C" {

// One command over `n` values (a multiple of LANES): the int8 outputs to `q`, how many
// arrived to `*got`; returns the clocks from the command to done, or UINT64_MAX.
uint64_t tern_to_int8_run(void* p, uint32_t n, int32_t y_frac, uint32_t unit_m, int32_t unit_e,
                          const int32_t* y, int8_t* q, uint32_t* got, uint64_t limit,
                          uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    bool stalls = stall_seed != 0;
    const uint32_t beats = n / LANES;
    uint32_t fed = 0, out = 0;
    bool commanded = false;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        t->cmd_n = n;
        t->cmd_y_frac = (uint32_t)y_frac;
        t->cmd_unit_m = unit_m;
        t->cmd_unit_e = (uint32_t)unit_e;
        t->in_valid = commanded && fed < beats && !(stalls && m->stall());
        uint32_t yw[LANES + 1];
        std::memset(yw, 0, sizeof yw);
        if (fed < beats)
            for (uint32_t l = 0; l < LANES; l++) yw[l] = (uint32_t)y[fed * LANES + l];
        put(t->in_y, yw);
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        if (commanded && t->done && out == beats) {
            *got = out * LANES;
            return clock;
        }
        if (res) {
            uint32_t qw[(LANES + 3) / 4 + 1];
            get(t->out_q, qw);
            for (uint32_t l = 0; l < LANES; l++)
                if (out < beats) q[out * LANES + l] = (int8_t)(qw[l / 4] >> (8 * (l % 4)));
            out++;
        }
        m->tick();
        if (cmd) commanded = true;
        if (in) fed++;
    }
    *got = out * LANES;
    return UINT64_MAX;
}
}
