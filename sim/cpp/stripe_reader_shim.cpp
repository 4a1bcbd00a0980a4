// tern's C ABI over a Verilated `tern_stripe_reader` on the simulated board's DDR
// (`ddr_model.h` and `read_ports.h`, which the Rust side puts ahead of this file with
// `#define PORTS`, and `#define ANY_PORT` for a reader whose bursts go to any free port):
// each of the reader's ports is one `DdrPort<16>` into the one
// `Dram`. One region at a time; the words out are collected and checked on the Rust side.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "Vtern_stripe_reader.h"


extern "C" uint32_t tern_stripe_reader_abi() { return 1; }

namespace {

struct Model {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_stripe_reader> top;
    std::unique_ptr<VerilatedVcdC> trace;
    Dram ddr;
    std::vector<DdrPort<16>> ports = std::vector<DdrPort<16>>(PORTS);
    PortTurn turn;
    uint64_t time = 0;
    uint64_t cycles = 0;
    uint64_t rng = 1;
    // The ports other units want (`port_busy` of an any-port reader): each port's bit
    // flips at random, in runs (0: never busy); so does `reading_ahead` (half the bursts
    // in flight while set).
    uint64_t busy_rng = 0;
    uint32_t busy = 0;
    uint32_t ahead = 0;

    bool stall(bool on) {
        if (!on) return false;
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        return rng % 100 < 30;
    }
    void drive() {
        auto* t = top.get();
        drive_ports(ddr, ports, cycles, turn);
        drive_read_ports(t, ports);
#ifdef ANY_PORT
        t->port_busy = busy;
        t->reading_ahead = ahead;
#endif
    }
    void next_busy() {
        if (busy_rng == 0) return;
        for (uint32_t i = 0; i < PORTS; i++) {
            busy_rng ^= busy_rng << 13; busy_rng ^= busy_rng >> 7; busy_rng ^= busy_rng << 17;
            if (busy_rng % 100 < 4) busy ^= 1u << i;
        }
        busy_rng ^= busy_rng << 13; busy_rng ^= busy_rng >> 7; busy_rng ^= busy_rng << 17;
        if (busy_rng % 100 < 2) ahead ^= 1;
    }
    void tick() {
        auto* t = top.get();
        drive();
        t->eval();
        PortEdge e[PORTS];
        read_port_edges(t, e);
        t->clk = 1;
        t->eval();
        if (trace) trace->dump(time + 5);
        for (uint32_t i = 0; i < PORTS; i++) ports[i].edge(ddr, cycles, e[i]);
        ddr.clock(cycles, 16);
        for (auto& q : ports) q.clock(ddr);
        t->clk = 0;
        drive();
        t->eval();
        if (trace) trace->dump(time + 10);
        time += 10;
        cycles++;
        next_busy();
    }
};

}  // namespace

// What one region's read did (mirrored by `StripeOutcome` in Rust).
struct StripeOutcome {
    uint64_t clocks;     // from the command to done; UINT64_MAX: not within the limit
    uint64_t beats;      // beats out (including any beyond the region)
    uint64_t words;
    uint64_t lasts;      // words out with out_last
    uint64_t last_at;    // the word (counted from 0) that carried out_last
    uint32_t error;
};

extern "C" {

void* tern_stripe_reader_new(const char* vcd, uint64_t bytes, double bytes_per_clock,
                             uint32_t latency, uint32_t max_reads, uint32_t stall_percent,
                             uint64_t seed, const DramTiming* timing) {
    auto* m = new Model;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd) m->context->traceEverOn(true);
    m->top = std::make_unique<Vtern_stripe_reader>(m->context.get());
    if (vcd) {
        m->trace = std::make_unique<VerilatedVcdC>();
        m->top->trace(m->trace.get(), 99);
        m->trace->open(vcd);
    }
    m->ddr.configure(bytes, bytes_per_clock, latency, stall_percent, seed, *timing);
    for (auto& q : m->ports) q.max_reads = max_reads == 0 ? 1 : max_reads;
    auto* t = m->top.get();
    t->clk = 0;
    t->rst = 1;
    t->cmd_valid = 0;
    t->out_ready = 0;
    for (int i = 0; i < 4; i++) m->tick();
    t->rst = 0;
    t->eval();
    return m;
}

void tern_stripe_reader_free(void* p) {
    auto* m = static_cast<Model*>(p);
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

void tern_stripe_reader_flush(void* p) {
    auto* m = static_cast<Model*>(p);
    if (m->trace) m->trace->flush();
}

void tern_stripe_reader_write(void* p, uint64_t addr, const uint8_t* data, uint64_t n) {
    static_cast<Model*>(p)->ddr.write(addr, data, n);
}

// Read `beats` beats at `addr`: the bytes out to `out` (room for `room` beats). With
// `stall_seed` the reader's consumer stalls at random and (an any-port reader) other
// units want its ports at random.
void tern_stripe_reader_run(void* p, uint64_t addr, uint32_t beats, uint8_t* out, uint64_t room,
                            StripeOutcome* o, uint64_t limit, uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    m->busy_rng = stall_seed == 0 ? 0 : (stall_seed * 0x9E3779B97F4A7C15ull) | 1;
    m->busy = 0;
    m->ahead = 0;
    std::memset(o, 0, sizeof *o);
    o->clocks = UINT64_MAX;
    bool commanded = false;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        t->cmd_addr = addr;
        t->cmd_beats = beats;
        t->out_ready = !m->stall(stall_seed != 0);
        m->drive();
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        if (t->out_valid && t->out_ready) {
            uint32_t n = t->out_beats;
            for (uint32_t j = 0; j < n && j < PORTS; j++) {
                if (o->beats < room)
                    for (int k = 0; k < 4; k++) {
                        uint32_t w = t->out_data[4 * j + k];
                        std::memcpy(out + o->beats * 16 + 4 * k, &w, 4);
                    }
                o->beats++;
            }
            if (t->out_last) {
                o->lasts++;
                o->last_at = o->words;
            }
            o->words++;
        }
        if (commanded && t->done && o->clocks == UINT64_MAX) {
            o->clocks = clock;
            o->error = t->error;
        }
        // A few clocks past done, watching for anything more.
        if (o->clocks != UINT64_MAX && clock >= o->clocks + 8) break;
        m->tick();
        if (cmd) commanded = true;
    }
}

// The DRAM's traffic so far: bytes read, bursts read, refreshes, row misses, bursts
// across a 4 KiB boundary.
void tern_stripe_reader_traffic(void* p, uint64_t* out) {
    const Dram& d = static_cast<Model*>(p)->ddr;
    out[0] = d.bytes_read;
    out[1] = d.read_bursts;
    out[2] = d.refreshes;
    out[3] = d.row_misses;
    out[4] = d.crossings;
}
}
