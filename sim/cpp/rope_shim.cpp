// tern's C ABI over a Verilated `tern_rope` (the vector unit's RoPE): one command at a
// time, the table row and then the vector fed and the rotated vector collected through
// the valid/ready handshakes, optionally with seeded random stalls on both sides. The
// Rust side puts `vector_ports.h` and `#define LANES` ahead of this file.
#include "Vtern_rope.h"

TERN_BLOCK_ABI(tern_rope, Vtern_rope)
using Model = Block<Vtern_rope>;

extern "C" {

// One command: `heads` heads of `head_dim` (a multiple of 2·LANES), the position's
// `head_dim / 2` (cos, sin) pairs in `cs` (cos at even indices). Writes the rotated
// vector to `y_out`, how many values arrived to `*got`, the saturation flag to `*sat`;
// returns the clocks from the command to done, or UINT64_MAX.
uint64_t tern_rope_run(void* p, uint32_t heads, uint32_t head_dim, const int16_t* cs,
                       const int32_t* y, int32_t* y_out, uint32_t* got, uint32_t* sat,
                       uint64_t limit, uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    bool stalls = stall_seed != 0;
    const uint32_t half = head_dim / (2 * LANES);
    const uint32_t beats = heads * head_dim / LANES;
    uint32_t cs_fed = 0, fed = 0, out = 0;
    bool commanded = false;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        t->cmd_heads = heads;
        t->cmd_half = half;
        uint32_t cw[LANES + 1], yw[LANES + 1];
        std::memset(cw, 0, sizeof cw);
        std::memset(yw, 0, sizeof yw);
        if (cs_fed < half)
            for (uint32_t l = 0; l < LANES; l++) {
                uint32_t i = cs_fed * LANES + l;
                cw[l] = (uint32_t)(uint16_t)cs[2 * i] | ((uint32_t)(uint16_t)cs[2 * i + 1] << 16);
            }
        if (fed < beats)
            for (uint32_t l = 0; l < LANES; l++) yw[l] = (uint32_t)y[fed * LANES + l];
        put(t->cs_data, cw);
        put(t->in_y, yw);
        t->cs_valid = commanded && cs_fed < half && !(stalls && m->stall());
        t->in_valid = commanded && fed < beats && !(stalls && m->stall());
        t->out_ready = !(stalls && m->stall());
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool c = t->cs_valid && t->cs_ready;
        bool in = t->in_valid && t->in_ready;
        bool res = t->out_valid && t->out_ready;
        if (commanded && t->done && out == beats) {
            *got = out * LANES;
            *sat = t->saturated;
            return clock;
        }
        if (res) {
            uint32_t ow[LANES + 1];
            get(t->out_y, ow);
            for (uint32_t l = 0; l < LANES; l++)
                if (out < beats) y_out[out * LANES + l] = (int32_t)ow[l];
            out++;
        }
        m->tick();
        if (cmd) commanded = true;
        if (c) cs_fed++;
        if (in) fed++;
    }
    *got = out * LANES;
    *sat = t->saturated;
    return UINT64_MAX;
}
}
