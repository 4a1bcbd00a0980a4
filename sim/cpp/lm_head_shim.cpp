// tern's C ABI over a Verilated `tern_lm_head` (the LM-head engine): one command at a
// time through its four handshakes (the int8 vector, the weights, the mantissas, the
// scores), optionally with seeded random stalls on all of them. The Rust side puts
// `vector_ports.h` and `#define LANES`, `WEIGHT_BITS`, `SLICES` ahead of this file.
#include "Vtern_lm_head.h"

TERN_BLOCK_ABI(tern_lm_head, Vtern_lm_head)
using Model = Block<Vtern_lm_head>;

// Clocks watched after done for anything more coming out.
static const uint64_t AFTER_DONE = 8;

// What one command did, as seen from outside (mirrored by `LmHeadOutcome` in Rust).
struct LmHeadOutcome {
    uint64_t clocks;        // from the command to done; UINT64_MAX: no done in the limit
    uint64_t q_taken;       // int8-vector beats taken
    uint64_t w_taken;       // weight beats taken
    uint64_t m_taken;       // mantissa words taken
    uint64_t m_misplaced;   // ... of them not with their group's last beat
    uint64_t scores;        // scores out, including any after done
    int64_t best_score;
    uint32_t best_row;
    uint32_t error;
};

extern "C" {

// One command: `rows` rows of `beats` beats, groups of `group_beats` beats; `q` holds
// beats·LANES int8, `w` rows·beats·LANES weights (one per byte, the low WEIGHT_BITS
// bits used), `m` SLICES u16 per group; scores to `scores` (room for `rows`). Watches
// AFTER_DONE clocks past done for anything more.
void tern_lm_head_run(void* p, uint32_t rows, uint32_t beats, uint32_t group_beats,
                      uint32_t want_scores, const int8_t* q, const int8_t* w, const uint16_t* m,
                      int64_t* scores, LmHeadOutcome* out, uint64_t limit, uint64_t stall_seed) {
    auto* b = static_cast<Model*>(p);
    auto* t = b->top.get();
    b->rng = stall_seed | 1;
    bool stalls = stall_seed != 0;
    const uint64_t weight_beats = (uint64_t)rows * beats;
    uint64_t q_fed = 0, w_fed = 0, outs = 0, m_fed = 0, misplaced = 0;
    bool commanded = false;
    uint64_t done_at = UINT64_MAX;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        t->cmd_rows = rows;
        t->cmd_beats = beats;
        t->cmd_group_beats = group_beats;
        t->cmd_scores = want_scores;
        uint32_t qw[LANES / 4 + 2];
        std::memset(qw, 0, sizeof qw);
        if (q_fed < beats)
            for (uint32_t l = 0; l < LANES; l++)
                qw[l / 4] |= (uint32_t)(uint8_t)q[q_fed * LANES + l] << (8 * (l % 4));
        put(t->q_data, qw);
        t->q_valid = commanded && q_fed < beats && !(stalls && b->stall());
        uint32_t ww[LANES * WEIGHT_BITS / 32 + 2];
        std::memset(ww, 0, sizeof ww);
        if (w_fed < weight_beats)
            for (uint32_t l = 0; l < LANES; l++) {
                uint32_t bits = (uint32_t)(uint8_t)w[w_fed * LANES + l] & ((1u << WEIGHT_BITS) - 1);
                uint32_t at = l * WEIGHT_BITS;
                ww[at / 32] |= bits << (at % 32);
            }
        put(t->in_w, ww);
        t->in_valid = commanded && w_fed < weight_beats && !(stalls && b->stall());
        // The mantissas of the group the next weight beat belongs to.
        uint64_t group = group_beats ? w_fed / group_beats : 0;
        uint32_t mw[SLICES / 2 + 2];
        std::memset(mw, 0, sizeof mw);
        if (w_fed < weight_beats)
            for (uint32_t s = 0; s < SLICES; s++)
                mw[s / 2] |= (uint32_t)m[group * SLICES + s] << (16 * (s % 2));
        put(t->m_data, mw);
        t->m_valid = commanded && w_fed < weight_beats && !(stalls && b->stall());
        t->out_ready = !(stalls && b->stall()) || done_at != UINT64_MAX;
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool q_in = t->q_valid && t->q_ready;
        bool w_in = t->in_valid && t->in_ready;
        bool m_in = t->m_valid && t->m_ready;
        if (t->out_valid && t->out_ready) {
            uint32_t sw[2];
            get(t->out_score, sw);
            if (outs < rows) scores[outs] = (int64_t)((uint64_t)sw[0] | ((uint64_t)sw[1] << 32));
            outs++;
        }
        if (done_at == UINT64_MAX && commanded && t->done) {
            done_at = clock;
            uint32_t sw[2];
            get(t->best_score, sw);
            out->best_score = (int64_t)((uint64_t)sw[0] | ((uint64_t)sw[1] << 32));
            out->best_row = t->best_row;
            out->error = t->error;
        }
        if (done_at != UINT64_MAX && clock >= done_at + AFTER_DONE) break;
        // A mantissa goes with its group's last beat, never alone.
        if (m_in && !(w_in && group_beats && (w_fed + 1) % group_beats == 0)) misplaced++;
        b->tick();
        if (cmd) commanded = true;
        if (q_in) q_fed++;
        if (w_in) w_fed++;
        if (m_in) m_fed++;
    }
    out->clocks = done_at;
    out->q_taken = q_fed;
    out->w_taken = w_fed;
    out->m_taken = m_fed;
    out->m_misplaced = misplaced;
    out->scores = outs;
}
}
