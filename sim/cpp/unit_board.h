// The board around one of the one top's units under Verilator (put after `ddr_model.h`,
// `read_ports.h` and `#define PORTS`, before a unit's shim): the unit's read ports m0..m{PORTS-1} are one
// `DdrPort<16>` each on one DRAM, its writer (w_*) uses port 0's write channels.
// A block whose port 0 write channels are named otherwise defines WRITE_PORT(sig) first
// (the one top's shell: m0_*), one without a `cmd_valid` UNIT_IDLE_INPUTS(t), and one
// with another clock and reset UNIT_CLOCK and UNIT_RESET(t, on).
#include <cstdint>
#include <memory>
#include <vector>
#include "verilated.h"
#include "verilated_vcd_c.h"
#ifndef WRITE_PORT
#define WRITE_PORT(sig) w_##sig
#endif
#ifndef UNIT_IDLE_INPUTS
#define UNIT_IDLE_INPUTS(t) (t)->cmd_valid = 0
#endif
#ifndef UNIT_CLOCK
#define UNIT_CLOCK clk
#define UNIT_RESET(t, on) (t)->rst = (on)
#endif


// One unit on the board: its read ports one DdrPort<16> each, its writer on port
// 0's write channels.
template <class V>
struct UnitModel {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<V> top;
    std::unique_ptr<VerilatedVcdC> trace;
    Dram ddr;
    std::vector<DdrPort<16>> ports = std::vector<DdrPort<16>>(PORTS);
    PortTurn turn;
    uint64_t time = 0;
    uint64_t cycles = 0;

    void drive() {
        auto* t = top.get();
        drive_ports(ddr, ports, cycles, turn);
        drive_read_ports(t, ports);
        auto& w = ports[0];
        t->WRITE_PORT(awready) = w.awready;
        t->WRITE_PORT(wready) = w.wready;
        t->WRITE_PORT(bvalid) = w.bvalid;
        t->WRITE_PORT(bresp) = w.bresp;
    }
    void tick() {
        auto* t = top.get();
        drive();
        t->eval();
        PortEdge e[PORTS];
        uint32_t wdata[4];
        for (int k = 0; k < 4; k++) wdata[k] = t->WRITE_PORT(wdata)[k];
        read_port_edges(t, e);
        e[0].aw = t->WRITE_PORT(awvalid) && t->WRITE_PORT(awready);
        e[0].awaddr = t->WRITE_PORT(awaddr);
        e[0].awlen = t->WRITE_PORT(awlen);
        e[0].w = t->WRITE_PORT(wvalid) && t->WRITE_PORT(wready);
        e[0].wdata = wdata;
        e[0].wstrb = t->WRITE_PORT(wstrb);
        e[0].b = t->WRITE_PORT(bvalid) && t->WRITE_PORT(bready);
        t->UNIT_CLOCK = 1;
        t->eval();
        if (trace) trace->dump(time + 5);
        for (uint32_t i = 0; i < PORTS; i++) ports[i].edge(ddr, cycles, e[i]);
        ddr.clock(cycles, 16);
        for (auto& q : ports) q.clock(ddr);
        t->UNIT_CLOCK = 0;
        drive();
        t->eval();
        if (trace) trace->dump(time + 10);
        time += 10;
        cycles++;
    }
};


// A unit on a fresh board, held in reset for 4 clocks.
template <class V>
UnitModel<V>* unit_new(const char* vcd, uint64_t bytes, double bytes_per_clock,
                       uint32_t latency, uint32_t max_reads, uint32_t stall_percent,
                       uint64_t seed, const DramTiming* timing) {
    auto* m = new UnitModel<V>;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd) m->context->traceEverOn(true);
    m->top = std::make_unique<V>(m->context.get());
    if (vcd) {
        m->trace = std::make_unique<VerilatedVcdC>();
        m->top->trace(m->trace.get(), 99);
        m->trace->open(vcd);
    }
    m->ddr.configure(bytes, bytes_per_clock, latency, stall_percent, seed, *timing);
    for (auto& q : m->ports) q.max_reads = max_reads == 0 ? 1 : max_reads;
    auto* t = m->top.get();
    t->UNIT_CLOCK = 0;
    UNIT_RESET(t, 1);
    UNIT_IDLE_INPUTS(t);
    for (int i = 0; i < 4; i++) m->tick();
    UNIT_RESET(t, 0);
    t->eval();
    return m;
}

template <class V>
void unit_free(UnitModel<V>* m) {
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

// What the DRAM did during one command.
struct DdrCounts {
    uint64_t bytes_read, bytes_written, read_bursts, write_bursts, refreshes, row_misses;
    static DdrCounts of(const Dram& d) {
        return {d.bytes_read, d.bytes_written, d.read_bursts,
                d.write_bursts, d.refreshes, d.row_misses};
    }
    DdrCounts since(const DdrCounts& a) const {
        return {bytes_read - a.bytes_read,       bytes_written - a.bytes_written,
                read_bursts - a.read_bursts,     write_bursts - a.write_bursts,
                refreshes - a.refreshes,         row_misses - a.row_misses};
    }
};

// One command (its fields already on the unit's inputs): offered until taken, then
// clocked until `done`, `each_clock()` after every clock. The clocks from the command to
// done, UINT64_MAX past `limit`.
template <class V, class F>
uint64_t unit_run(UnitModel<V>* m, uint64_t limit, F&& each_clock) {
    auto* t = m->top.get();
    uint64_t clocks = UINT64_MAX;
    bool commanded = false;
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = !commanded;
        m->drive();
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        if (commanded && t->done) {
            clocks = clock;
            break;
        }
        m->tick();
        each_clock();
        if (cmd) commanded = true;
    }
    t->cmd_valid = 0;
    return clocks;
}

template <class V>
uint64_t unit_run(UnitModel<V>* m, uint64_t limit) {
    return unit_run(m, limit, [] {});
}

// The C functions every unit's shim has over `UnitModel<V>`: NAME_new, NAME_free (the
// board), NAME_write and NAME_read (its memory, no clocks). The shim adds NAME_run.
#define UNIT_C_API(NAME, V)                                                                \
    extern "C" void* NAME##_new(const char* vcd, uint64_t bytes, double bytes_per_clock,  \
                                uint32_t latency, uint32_t max_reads,                     \
                                uint32_t stall_percent, uint64_t seed,                    \
                                const DramTiming* timing) {                               \
        return unit_new<V>(vcd, bytes, bytes_per_clock, latency, max_reads,               \
                           stall_percent, seed, timing);                                  \
    }                                                                                     \
    extern "C" void NAME##_free(void* p) { unit_free(static_cast<UnitModel<V>*>(p)); }   \
    extern "C" void NAME##_write(void* p, uint64_t addr, const uint8_t* data,             \
                                 uint64_t n) {                                            \
        static_cast<UnitModel<V>*>(p)->ddr.write(addr, data, n);                          \
    }                                                                                     \
    extern "C" void NAME##_read(void* p, uint64_t addr, uint8_t* out, uint64_t n) {       \
        static_cast<UnitModel<V>*>(p)->ddr.read(addr, out, n);                            \
    }
