// tern's C ABI over a Verilated `tern_norm_quant` (the vector unit's RMSNorm and int8
// quantisation): one command at a time, its elements fed and its int8 vector collected
// through the valid/ready handshakes, optionally with seeded random stalls on both
// sides. The Rust side puts `vector_ports.h` and `#define LANES` ahead of this file.
#include "Vtern_norm_quant.h"

TERN_BLOCK_ABI(tern_norm_quant, Vtern_norm_quant)
using Model = Block<Vtern_norm_quant>;

extern "C" {

// One command over `n` elements (a multiple of LANES). Writes the n int8 outputs to `q`
// (and how many arrived to `*got`), M to `*max_abs` and r to `*rms`; returns the clocks
// from the command to done, or UINT64_MAX when `limit` clocks pass first. `stall_seed`
// non-zero: the feeder and the consumer each hold back on 30 % of clocks.
uint64_t tern_norm_quant_run(void* p, uint32_t n, int32_t v_frac, uint32_t eps_m, int32_t eps_e,
                             const int32_t* v, const int16_t* g, int8_t* q, uint32_t* got,
                             uint64_t* max_abs, uint64_t* rms, uint64_t limit,
                             uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    bool stalls = stall_seed != 0;
    const uint32_t beats = n / LANES;
    uint32_t fed = 0, out = 0;
    bool commanded = false;
    *got = 0;
    for (uint64_t clock = 0; clock < limit; clock++) {
        // Drive this clock's inputs.
        t->cmd_valid = !commanded;
        t->cmd_n = n;
        t->cmd_v_frac = (uint32_t)v_frac;
        t->cmd_eps_m = eps_m;
        t->cmd_eps_e = (uint32_t)eps_e;
        bool offer = commanded && fed < beats && !(stalls && m->stall());
        t->in_valid = offer;
        uint32_t vw[LANES], gw[(LANES + 1) / 2 + 1];
        std::memset(gw, 0, sizeof gw);
        if (fed < beats) {
            for (uint32_t l = 0; l < LANES; l++) {
                vw[l] = (uint32_t)v[fed * LANES + l];
                gw[l / 2] |= ((uint32_t)(uint16_t)g[fed * LANES + l]) << (16 * (l % 2));
            }
        } else {
            std::memset(vw, 0, sizeof vw);
        }
        put(t->in_v, vw);
        put(t->in_g, gw);
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        bool finished = commanded && t->done && out == beats;
        if (finished) {
            *max_abs = t->max_abs;
            *rms = t->rms;
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
