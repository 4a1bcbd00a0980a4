// tern's C ABI over a Verilated `tern_lm_head_unit` on the simulated board's DDR
// (`ddr_model.h`, put ahead of this file with `#define PORTS`): its read ports are one
// `DdrPort<16>` each, its writer uses port 0's write channels. One LmHead command at a
// time; the host puts the memory in and takes it out without clocks.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "Vtern_lm_head_unit.h"

#if PORTS == 1
#define FOR_PORTS(X) X(0)
#elif PORTS == 2
#define FOR_PORTS(X) X(0) X(1)
#elif PORTS == 4
#define FOR_PORTS(X) X(0) X(1) X(2) X(3)
#else
#error "PORTS must be 1, 2 or 4"
#endif

extern "C" uint32_t tern_lm_head_unit_abi() { return 1; }

namespace {

struct Model {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_lm_head_unit> top;
    std::unique_ptr<VerilatedVcdC> trace;
    Dram ddr;
    std::vector<DdrPort<16>> ports = std::vector<DdrPort<16>>(PORTS);
    PortTurn turn;
    uint64_t time = 0;
    uint64_t cycles = 0;

    void drive() {
        auto* t = top.get();
        drive_ports(ddr, ports, cycles, turn);
#define DRIVE(i)                                                        \
        {                                                               \
            auto& q = ports[i];                                         \
            t->m##i##_arready = q.arready;                              \
            t->m##i##_rvalid = q.rvalid;                                \
            for (int k = 0; k < 4; k++) t->m##i##_rdata[k] = q.rdata[k]; \
            t->m##i##_rresp = q.rresp;                                  \
            t->m##i##_rlast = q.rlast;                                  \
        }
        FOR_PORTS(DRIVE)
#undef DRIVE
        auto& w = ports[0];
        t->w_awready = w.awready;
        t->w_wready = w.wready;
        t->w_bvalid = w.bvalid;
        t->w_bresp = w.bresp;
    }
    void tick() {
        auto* t = top.get();
        drive();
        t->eval();
        PortEdge e[PORTS];
        uint32_t wdata[4];
        for (int k = 0; k < 4; k++) wdata[k] = t->w_wdata[k];
#define EDGE(i)                                                                          \
        e[i] = {t->m##i##_arvalid && t->m##i##_arready, t->m##i##_araddr, 0,             \
                t->m##i##_arlen, t->m##i##_rvalid && t->m##i##_rready, false, 0, 0,      \
                false, nullptr, 0, false};
        FOR_PORTS(EDGE)
#undef EDGE
        e[0].aw = t->w_awvalid && t->w_awready;
        e[0].awaddr = t->w_awaddr;
        e[0].awlen = t->w_awlen;
        e[0].w = t->w_wvalid && t->w_wready;
        e[0].wdata = wdata;
        e[0].wstrb = t->w_wstrb;
        e[0].b = t->w_bvalid && t->w_bready;
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
    }
};

}  // namespace

// One LmHead command (mirrored by `LmHeadUnitCommand` in Rust).
struct LmHeadUnitCommand {
    uint64_t src, weights, mantissas, output_at;
    uint32_t rows, width, pass_rows, scores;
};

// What it did (mirrored by `LmHeadUnitOutcome`).
struct LmHeadUnitOutcome {
    uint64_t clocks;  // from the command to done; UINT64_MAX: not within the limit
    uint32_t error;
    uint32_t next;
    uint64_t bytes_read, bytes_written, read_bursts, write_bursts, refreshes, row_misses;
};

extern "C" {

void* tern_lm_head_unit_new(const char* vcd, uint64_t bytes, double bytes_per_clock,
                            uint32_t latency, uint32_t max_reads, uint32_t stall_percent,
                            uint64_t seed, const DramTiming* timing) {
    auto* m = new Model;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd) m->context->traceEverOn(true);
    m->top = std::make_unique<Vtern_lm_head_unit>(m->context.get());
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
    for (int i = 0; i < 4; i++) m->tick();
    t->rst = 0;
    t->eval();
    return m;
}

void tern_lm_head_unit_free(void* p) {
    auto* m = static_cast<Model*>(p);
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

void tern_lm_head_unit_write(void* p, uint64_t addr, const uint8_t* data, uint64_t n) {
    static_cast<Model*>(p)->ddr.write(addr, data, n);
}

void tern_lm_head_unit_read(void* p, uint64_t addr, uint8_t* out, uint64_t n) {
    static_cast<Model*>(p)->ddr.read(addr, out, n);
}

void tern_lm_head_unit_run(void* p, const LmHeadUnitCommand* c, LmHeadUnitOutcome* o,
                           uint64_t limit) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    std::memset(o, 0, sizeof *o);
    o->clocks = UINT64_MAX;
    uint64_t r0 = m->ddr.bytes_read, w0 = m->ddr.bytes_written, rb0 = m->ddr.read_bursts,
             wb0 = m->ddr.write_bursts, f0 = m->ddr.refreshes, x0 = m->ddr.row_misses;
    t->cmd_src = c->src;
    t->cmd_weights = c->weights;
    t->cmd_mantissas = c->mantissas;
    t->cmd_output_at = c->output_at;
    t->cmd_rows = c->rows;
    t->cmd_width = c->width;
    t->cmd_pass_rows = c->pass_rows;
    t->cmd_scores = c->scores;
    bool commanded = false;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        m->drive();
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        if (commanded && t->done) {
            o->clocks = clock;
            break;
        }
        m->tick();
        if (cmd) commanded = true;
    }
    t->cmd_valid = 0;
    o->error = t->error;
    o->next = t->next;
    o->bytes_read = m->ddr.bytes_read - r0;
    o->bytes_written = m->ddr.bytes_written - w0;
    o->read_bursts = m->ddr.read_bursts - rb0;
    o->write_bursts = m->ddr.write_bursts - wb0;
    o->refreshes = m->ddr.refreshes - f0;
    o->row_misses = m->ddr.row_misses - x0;
}
}
