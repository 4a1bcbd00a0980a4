// The board around a Verilated block with one AXI4 write port m_aw*/m_w*/m_b* (128-bit)
// on the simulated board's DDR (put after `ddr_model.h`): one `DdrPort<16>` on one DRAM,
// and a seeded coin for the testbench's stalls. Shared by the write arbiter's and the
// row writer's shims.
#include <cstdint>
#include <memory>
#include <vector>
#include "verilated.h"

template <class V>
struct WritePortBoard {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<V> top;
    Dram ddr;
    std::vector<DdrPort<16>> ports = std::vector<DdrPort<16>>(1);
    PortTurn turn;
    uint64_t cycles = 0;
    uint64_t rng = 1;

    // 30 % of the time when `on`: the testbench holds back.
    bool stall(bool on) {
        if (!on) return false;
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        return rng % 100 < 30;
    }
    void drive() {
        auto* t = top.get();
        drive_ports(ddr, ports, cycles, turn);
        const auto& q = ports[0];
        t->m_awready = q.awready;
        t->m_wready = q.wready;
        t->m_bvalid = q.bvalid;
        t->m_bresp = q.bresp;
    }
    // A clock edge on what the last drive() and eval() settled (the DDR's outputs are
    // random under stalls: driving again would change what the testbench saw).
    void edge() {
        auto* t = top.get();
        uint32_t wdata[4];
        for (int k = 0; k < 4; k++) wdata[k] = t->m_wdata[k];
        PortEdge e = {false, 0, 0, 0, false,
                      t->m_awvalid && t->m_awready, t->m_awaddr, t->m_awlen,
                      t->m_wvalid && t->m_wready, wdata, t->m_wstrb,
                      t->m_bvalid && t->m_bready};
        t->clk = 1;
        t->eval();
        ports[0].edge(ddr, cycles, e);
        ddr.clock(cycles, 16);
        ports[0].clock(ddr);
        t->clk = 0;
        cycles++;
    }
    void tick() {
        drive();
        top->eval();
        edge();
    }
    // A fresh board: the DRAM configured, the block made.
    void make(uint64_t bytes, double bytes_per_clock, uint32_t latency, uint32_t stall_percent,
              uint64_t seed, const DramTiming* timing) {
        context = std::make_unique<VerilatedContext>();
        top = std::make_unique<V>(context.get());
        ddr.configure(bytes, bytes_per_clock, latency, stall_percent, seed, *timing);
    }
};

// The C functions every such shim has over its `Model` besides `NAME_new` and `NAME_run`:
// NAME_free (the board), NAME_write and NAME_read (its memory, no clocks).
#define WRITE_PORT_C_API(NAME)                                                             \
    extern "C" void NAME##_free(void* p) {                                                 \
        auto* m = static_cast<Model*>(p);                                                  \
        m->top->final();                                                                   \
        delete m;                                                                          \
    }                                                                                      \
    extern "C" void NAME##_write(void* p, uint64_t addr, const uint8_t* data, uint64_t n) { \
        static_cast<Model*>(p)->ddr.write(addr, data, n);                                  \
    }                                                                                      \
    extern "C" void NAME##_read(void* p, uint64_t addr, uint8_t* out, uint64_t n) {        \
        static_cast<Model*>(p)->ddr.read(addr, out, n);                                    \
    }
