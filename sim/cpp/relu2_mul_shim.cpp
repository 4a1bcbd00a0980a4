// tern's C ABI over a Verilated `tern_relu2_mul` (the vector unit's relu(gate)² · up):
// one command at a time through the valid/ready handshakes, optionally with seeded
// random stalls on both sides. The Rust side puts `vector_ports.h` and `#define LANES`
// ahead of this file.
#include "Vtern_relu2_mul.h"

TERN_BLOCK_ABI(tern_relu2_mul, Vtern_relu2_mul)
using Model = Block<Vtern_relu2_mul>;

extern "C" {

// One command over `n` pairs (a multiple of LANES): the block to `y`, how many values
// arrived to `*got`, its fractional bits to `*frac_out`; returns the clocks from the
// command to done, or UINT64_MAX.
uint64_t tern_relu2_mul_run(void* p, uint32_t n, int32_t frac, const int32_t* g,
                            const int32_t* u, int32_t* y, uint32_t* got, int32_t* frac_out,
                            uint64_t limit, uint64_t stall_seed) {
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
        t->cmd_frac = (uint32_t)frac;
        uint32_t gw[LANES + 1], uw[LANES + 1];
        std::memset(gw, 0, sizeof gw);
        std::memset(uw, 0, sizeof uw);
        if (fed < beats)
            for (uint32_t l = 0; l < LANES; l++) {
                gw[l] = (uint32_t)g[fed * LANES + l];
                uw[l] = (uint32_t)u[fed * LANES + l];
            }
        put(t->in_g, gw);
        put(t->in_u, uw);
        t->in_valid = commanded && fed < beats && !(stalls && m->stall());
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        if (commanded && t->done && out == beats) {
            *got = out * LANES;
            *frac_out = (int32_t)t->frac_out;
            return clock;
        }
        if (res) {
            uint32_t yw[LANES + 1];
            get(t->out_y, yw);
            for (uint32_t l = 0; l < LANES; l++)
                if (out < beats) y[out * LANES + l] = (int32_t)yw[l];
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
