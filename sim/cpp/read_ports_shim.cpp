// tern's C ABI over a Verilated `tern_read_ports` (two stripe readers sharing the
// board's ports through a read arbiter on each) on the simulated board's DDR
// (`ddr_model.h` and `read_ports.h`, put ahead of this file with `#define PORTS`): reader 0 streams one
// region while reader 1 streams a list of regions back to back, both at once.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "verilated.h"
#include "Vtern_read_ports.h"


extern "C" uint32_t tern_read_ports_abi() { return 1; }

namespace {

struct Model {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_read_ports> top;
    Dram ddr;
    std::vector<DdrPort<16>> ports = std::vector<DdrPort<16>>(PORTS);
    PortTurn turn;
    uint64_t cycles = 0;
    uint64_t rng = 1;

    bool stall(bool on) {
        if (!on) return false;
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        return rng % 100 < 30;
    }
    void drive() {
        auto* t = top.get();
        drive_ports(ddr, ports, cycles, turn);
        drive_read_ports(t, ports);
    }
    void tick() {
        auto* t = top.get();
        drive();
        t->eval();
        PortEdge e[PORTS];
        read_port_edges(t, e);
        t->clk = 1;
        t->eval();
        for (uint32_t i = 0; i < PORTS; i++) ports[i].edge(ddr, cycles, e[i]);
        ddr.clock(cycles, 16);
        for (auto& q : ports) q.clock(ddr);
        t->clk = 0;
        drive();
        t->eval();
        cycles++;
    }
};

// One reader's stream: its regions, what came out.
struct Stream {
    const uint64_t* addrs;
    const uint32_t* beats;
    uint32_t regions;
    uint8_t* out;       // the regions' bytes back to back
    uint64_t room;      // beats `out` holds
    uint32_t next = 0;  // the next region to command
    bool commanded = false;
    uint64_t got = 0;   // beats out
    uint64_t lasts = 0;
    uint64_t errors = 0;
    uint64_t done_at = UINT64_MAX;
};

}  // namespace

// What both readers did (mirrored by `SharedOutcome` in Rust).
struct SharedOutcome {
    uint64_t clocks[2];  // from the start to the reader's last done; UINT64_MAX: never
    uint64_t beats[2];
    uint64_t lasts[2];   // words with out_last: one per region
    uint64_t errors[2];
};

extern "C" {

void* tern_read_ports_new(uint64_t bytes, double bytes_per_clock, uint32_t latency,
                          uint32_t max_reads, uint32_t stall_percent, uint64_t seed,
                          const DramTiming* timing) {
    auto* m = new Model;
    m->context = std::make_unique<VerilatedContext>();
    m->top = std::make_unique<Vtern_read_ports>(m->context.get());
    m->ddr.configure(bytes, bytes_per_clock, latency, stall_percent, seed, *timing);
    for (auto& q : m->ports) q.max_reads = max_reads == 0 ? 1 : max_reads;
    auto* t = m->top.get();
    t->clk = 0;
    t->rst = 1;
    t->r0_cmd_valid = 0;
    t->r1_cmd_valid = 0;
    t->r0_out_ready = 0;
    t->r1_out_ready = 0;
    for (int i = 0; i < 4; i++) m->tick();
    t->rst = 0;
    t->eval();
    return m;
}

void tern_read_ports_free(void* p) {
    auto* m = static_cast<Model*>(p);
    m->top->final();
    delete m;
}

void tern_read_ports_write(void* p, uint64_t addr, const uint8_t* data, uint64_t n) {
    static_cast<Model*>(p)->ddr.write(addr, data, n);
}

// Both readers at once: reader r's regions (`addrs[r]`, `beats[r]`, `regions[r]` of
// them) one after another, their bytes to `out[r]` (room for `room[r]` beats).
void tern_read_ports_run(void* p, const uint64_t* const* addrs, const uint32_t* const* beats,
                         const uint32_t* regions, uint8_t* const* out, const uint64_t* room,
                         SharedOutcome* o, uint64_t limit, uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    Stream s[2];
    for (int r = 0; r < 2; r++) {
        s[r].addrs = addrs[r];
        s[r].beats = beats[r];
        s[r].regions = regions[r];
        s[r].out = out[r];
        s[r].room = room[r];
    }
    const bool stalls = stall_seed != 0;
    for (uint64_t clock = 0; clock < limit; clock++) {
        // Reader r: the next region once the last is done.
#define SIDE(R)                                                                          \
        {                                                                                \
            Stream& x = s[R];                                                            \
            bool more = x.next < x.regions;                                              \
            t->r##R##_cmd_valid = more && !x.commanded;                                  \
            t->r##R##_cmd_addr = more ? x.addrs[x.next] : 0;                              \
            t->r##R##_cmd_beats = more ? x.beats[x.next] : 0;                             \
            t->r##R##_out_ready = !m->stall(stalls);                                     \
        }
        SIDE(0)
        SIDE(1)
#undef SIDE
        m->drive();
        t->eval();
#define TAKE(R)                                                                          \
        {                                                                                \
            Stream& x = s[R];                                                            \
            if (t->r##R##_out_valid && t->r##R##_out_ready) {                            \
                for (uint32_t j = 0; j < t->r##R##_out_beats && j < PORTS; j++) {        \
                    if (x.got < x.room)                                                  \
                        for (int k = 0; k < 4; k++) {                                    \
                            uint32_t w = t->r##R##_out_data[4 * j + k];                  \
                            std::memcpy(x.out + x.got * 16 + 4 * k, &w, 4);              \
                        }                                                                \
                    x.got++;                                                             \
                }                                                                        \
                if (t->r##R##_out_last) x.lasts++;                                       \
            }                                                                            \
            bool cmd = t->r##R##_cmd_valid && t->r##R##_cmd_ready;                       \
            if (x.commanded && t->r##R##_done) {                                         \
                x.errors += t->r##R##_error;                                             \
                x.commanded = false;                                                     \
                x.next++;                                                                \
                if (x.next == x.regions) x.done_at = clock;                              \
            } else if (cmd) {                                                            \
                x.commanded = true;                                                      \
            }                                                                            \
        }
        TAKE(0)
        TAKE(1)
#undef TAKE
        if (s[0].done_at != UINT64_MAX && s[1].done_at != UINT64_MAX
            && clock >= std::max(s[0].done_at, s[1].done_at) + 8)
            break;
        m->tick();
    }
    for (int r = 0; r < 2; r++) {
        o->clocks[r] = s[r].done_at;
        o->beats[r] = s[r].got;
        o->lasts[r] = s[r].lasts;
        o->errors[r] = s[r].errors;
    }
}
}
