// tern's C ABI over a Verilated `tern_dequant` (the vector unit's dequantisation and
// residual add): one command at a time, its results (and residual) fed and its
// fixed-point vector collected through the valid/ready handshakes, optionally with
// seeded random stalls on both sides. The Rust side puts `vector_ports.h` and
// `#define LANES` ahead of this file.
#include "Vtern_dequant.h"

// The command and what came back (`DequantCommand` / `DequantResult` in
// sim/src/cosim/vector.rs).
struct DequantCommand {
    uint64_t max, rms;
    uint32_t gain_frac, w_m;
    int32_t w_e, out_frac;
    uint32_t n, add;
};
struct DequantResult {
    uint64_t clocks;  // UINT64_MAX: no done within the limit
    uint32_t outputs, saturated, k;
    int32_t t;
};

TERN_BLOCK_ABI(tern_dequant, Vtern_dequant)
using Model = Block<Vtern_dequant>;

extern "C" {

// One command over `n` results (a multiple of LANES), `x` the residual when adding.
void tern_dequant_run(void* p, const DequantCommand* c, const int32_t* acc, const int32_t* x,
                      int32_t* y, uint64_t limit, uint64_t stall_seed, DequantResult* r) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    bool stalls = stall_seed != 0;
    const uint32_t beats = c->n / LANES;
    uint32_t fed = 0, out = 0;
    bool commanded = false;
    r->clocks = UINT64_MAX;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        uint32_t mw[2] = {(uint32_t)c->max, (uint32_t)(c->max >> 32)};
        uint32_t rw[2] = {(uint32_t)c->rms, (uint32_t)(c->rms >> 32)};
        put(t->cmd_max, mw);
        put(t->cmd_rms, rw);
        t->cmd_gain_frac = c->gain_frac;
        t->cmd_w_m = c->w_m;
        t->cmd_w_e = (uint32_t)c->w_e;
        t->cmd_out_frac = (uint32_t)c->out_frac;
        t->cmd_n = c->n;
        t->cmd_add = c->add;
        t->in_valid = commanded && fed < beats && !(stalls && m->stall());
        uint32_t aw[LANES + 1], xw[LANES + 1];
        std::memset(aw, 0, sizeof aw);
        std::memset(xw, 0, sizeof xw);
        if (fed < beats) {
            for (uint32_t l = 0; l < LANES; l++) {
                aw[l] = (uint32_t)acc[fed * LANES + l];
                xw[l] = c->add ? (uint32_t)x[fed * LANES + l] : 0;
            }
        }
        put(t->in_acc, aw);
        put(t->in_x, xw);
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        if (commanded && t->done && out == beats) {
            r->clocks = clock;
            break;
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
    r->outputs = out * LANES;
    r->saturated = t->saturated;
    r->k = t->factor_k;
    r->t = (int32_t)t->factor_t;
}
}
