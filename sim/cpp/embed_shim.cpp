// tern's C ABI over a Verilated `tern_embed` (the vector unit's bf16 to fixed point):
// one command at a time through the valid/ready handshakes, optionally with seeded
// random stalls on both sides. The Rust side puts `vector_ports.h` and `#define LANES`
// ahead of this file.
#include "Vtern_embed.h"

TERN_BLOCK_ABI(tern_embed, Vtern_embed)
using Model = Block<Vtern_embed>;

extern "C" {

// One command over `n` bf16 values (a multiple of LANES): the fixed-point values to `x`,
// how many arrived to `*got`, the saturation flag to `*sat`; returns the clocks from the
// command to done, or UINT64_MAX.
uint64_t tern_embed_run(void* p, uint32_t n, int32_t frac, const uint16_t* bf16, int32_t* x,
                        uint32_t* got, uint32_t* sat, uint64_t limit, uint64_t stall_seed) {
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
        uint32_t bw[LANES / 2 + 2];
        std::memset(bw, 0, sizeof bw);
        if (fed < beats)
            for (uint32_t l = 0; l < LANES; l++)
                bw[l / 2] |= (uint32_t)bf16[fed * LANES + l] << (16 * (l % 2));
        put(t->in_bf16, bw);
        t->in_valid = commanded && fed < beats && !(stalls && m->stall());
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        if (commanded && t->done && out == beats) {
            *got = out * LANES;
            *sat = t->saturated;
            return clock;
        }
        if (res) {
            uint32_t xw[LANES + 1];
            get(t->out_x, xw);
            for (uint32_t l = 0; l < LANES; l++)
                if (out < beats) x[out * LANES + l] = (int32_t)xw[l];
            out++;
        }
        m->tick();
        if (cmd) commanded = true;
        if (in) fed++;
    }
    *got = out * LANES;
    *sat = t->saturated;
    return UINT64_MAX;
}
}
