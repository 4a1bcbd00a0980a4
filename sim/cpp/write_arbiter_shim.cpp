// tern's C ABI over a Verilated `tern_write_arbiter` on one port of the simulated
// board's DDR (`ddr_model.h` and `write_port_board.h` put ahead of this file with
// `#define MASTERS`): the testbench plays MASTERS AXI4 write masters, each with its own
// list of bursts. A master keeps a valid up until its handshake (as AXI asks), withholds
// it at random when told to stall, offers a burst's data as soon as it likes (before its
// address is taken, as AXI allows) and takes responses when it is ready.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "verilated.h"
#include "Vtern_write_arbiter.h"

extern "C" uint32_t tern_write_arbiter_abi() { return 1; }

#if MASTERS == 2
#define FOR_MASTERS(X) X(0) X(1)
#elif MASTERS == 3
#define FOR_MASTERS(X) X(0) X(1) X(2)
#elif MASTERS == 4
#define FOR_MASTERS(X) X(0) X(1) X(2) X(3)
#else
#error "MASTERS must be 2, 3 or 4"
#endif

namespace {

// One master's bursts (addresses, beats, their data and strobes back to back) and how
// far it got.
struct Master {
    const uint64_t* addrs;
    const uint32_t* beats;
    const uint8_t* data;    // 16 bytes a beat
    const uint16_t* strb;   // a strobe a beat
    uint32_t bursts;
    uint32_t aw_next = 0;   // the next burst whose address goes out
    bool aw_up = false;     // its valid is up (held until taken)
    uint32_t w_burst = 0, w_beat = 0;
    uint64_t w_at = 0;      // beats of data sent
    bool w_up = false;
    uint64_t b_got = 0, b_bad = 0, extra = 0;
};

using Model = WritePortBoard<Vtern_write_arbiter>;

}  // namespace

WRITE_PORT_C_API(tern_write_arbiter)

// What the masters saw (mirrored by `WriteArbiterOutcome` in Rust).
struct WriteOutcome {
    uint64_t clocks;          // from the start to the last response; UINT64_MAX: never
    uint64_t responses[4];    // per master
    uint64_t bad[4];          // responses that were not OKAY
    uint64_t extra[4];        // responses beyond the master's bursts
    uint64_t bytes_written, write_bursts, crossings;
};

extern "C" {

void* tern_write_arbiter_new(uint64_t bytes, double bytes_per_clock, uint32_t latency,
                             uint32_t stall_percent, uint64_t seed, const DramTiming* timing) {
    auto* m = new Model;
    m->make(bytes, bytes_per_clock, latency, stall_percent, seed, timing);
    auto* t = m->top.get();
    t->clk = 0;
    t->rst = 1;
#define IDLE(i) t->s##i##_awvalid = 0; t->s##i##_wvalid = 0; t->s##i##_bready = 0;
    FOR_MASTERS(IDLE)
#undef IDLE
    for (int i = 0; i < 4; i++) m->tick();
    t->rst = 0;
    t->eval();
    return m;
}


// Every master's bursts at once (master i: `bursts[i]` of them at `addrs[i]`, `beats[i]`
// beats each, data `data[i]`, strobes `strb[i]`), until every response is back.
void tern_write_arbiter_run(void* p, const uint64_t* const* addrs, const uint32_t* const* beats,
                            const uint8_t* const* data, const uint16_t* const* strb,
                            const uint32_t* bursts, WriteOutcome* o, uint64_t limit,
                            uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    const bool stalls = stall_seed != 0;
    Master ms[MASTERS];
    for (int i = 0; i < MASTERS; i++) {
        ms[i].addrs = addrs[i];
        ms[i].beats = beats[i];
        ms[i].data = data[i];
        ms[i].strb = strb[i];
        ms[i].bursts = bursts[i];
    }
    std::memset(o, 0, sizeof *o);
    o->clocks = UINT64_MAX;
    const uint64_t bytes0 = m->ddr.bytes_written, bursts0 = m->ddr.write_bursts,
                   crossings0 = m->ddr.crossings;
    for (uint64_t clock = 0; clock < limit; clock++) {
        // Each master's outputs for this clock.
#define OFFER(i)                                                                          \
        {                                                                                 \
            Master& x = ms[i];                                                            \
            if (!x.aw_up && x.aw_next < x.bursts && !m->stall(stalls)) x.aw_up = true;    \
            t->s##i##_awvalid = x.aw_up;                                                  \
            t->s##i##_awaddr = x.aw_up ? x.addrs[x.aw_next] : 0;                          \
            t->s##i##_awlen = x.aw_up ? x.beats[x.aw_next] - 1 : 0;                       \
            if (!x.w_up && x.w_burst < x.bursts && !m->stall(stalls)) x.w_up = true;      \
            t->s##i##_wvalid = x.w_up;                                                    \
            for (int k = 0; k < 4; k++) {                                                 \
                uint32_t w = 0;                                                           \
                if (x.w_up) std::memcpy(&w, x.data + 16 * x.w_at + 4 * k, 4);             \
                t->s##i##_wdata[k] = w;                                                   \
            }                                                                             \
            t->s##i##_wstrb = x.w_up ? x.strb[x.w_at] : 0;                                \
            t->s##i##_wlast = x.w_up && x.w_beat + 1 == x.beats[x.w_burst];               \
            t->s##i##_bready = !m->stall(stalls);                                         \
        }
        FOR_MASTERS(OFFER)
#undef OFFER
        m->drive();
        t->eval();
        // What the handshakes did.
#define TAKE(i)                                                                           \
        {                                                                                 \
            Master& x = ms[i];                                                            \
            if (t->s##i##_awvalid && t->s##i##_awready) {                                 \
                x.aw_next++;                                                              \
                x.aw_up = false;                                                          \
            }                                                                             \
            if (t->s##i##_wvalid && t->s##i##_wready) {                                   \
                x.w_up = false;                                                           \
                x.w_at++;                                                                 \
                if (++x.w_beat == x.beats[x.w_burst]) {                                   \
                    x.w_beat = 0;                                                         \
                    x.w_burst++;                                                          \
                }                                                                         \
            }                                                                             \
            if (t->s##i##_bvalid && t->s##i##_bready) {                                   \
                if (x.b_got < x.bursts) x.b_got++; else x.extra++;                        \
                if (t->s##i##_bresp != 0) x.b_bad++;                                      \
            }                                                                             \
        }
        FOR_MASTERS(TAKE)
#undef TAKE
        bool all = true;
        for (int i = 0; i < MASTERS; i++) all = all && ms[i].b_got == ms[i].bursts;
        m->edge();
        if (all) {
            o->clocks = clock + 1;
            break;
        }
    }
    // A few more clocks: nothing more may come back.
#define QUIET_INPUTS(i) t->s##i##_awvalid = 0; t->s##i##_wvalid = 0; t->s##i##_bready = 1;
    FOR_MASTERS(QUIET_INPUTS)
#undef QUIET_INPUTS
    for (int c = 0; c < 32; c++) {
#define QUIET(i) if (t->s##i##_bvalid) ms[i].extra++;
        m->drive();
        t->eval();
        FOR_MASTERS(QUIET)
#undef QUIET
        m->edge();
    }
    for (int i = 0; i < MASTERS; i++) {
        o->responses[i] = ms[i].b_got;
        o->bad[i] = ms[i].b_bad;
        o->extra[i] = ms[i].extra;
    }
    o->bytes_written = m->ddr.bytes_written - bytes0;
    o->write_bursts = m->ddr.write_bursts - bursts0;
    o->crossings = m->ddr.crossings - crossings0;
}
}
