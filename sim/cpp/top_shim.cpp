// tern's C ABI over a Verilated `tern_top` (the accelerator top of any configuration),
// with the board around it: a host driving the AXI4-Lite control port, and the DDR
// model (`ddr_model.h`, which the Rust side puts ahead of this file) answering the AXI4
// master `m_axi_gmem` through one port as wide as the master. Runs clock until the
// interrupt line rises.
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>
#include "Vtern_top.h"
#include "Vtern_top___024root.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

static void put(QData& p, const uint32_t* w) { p = (QData)w[0] | ((QData)w[1] << 32); }
template <std::size_t N> static void put(VlWide<N>& p, const uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) p[i] = w[i];
}
static void get(const QData& p, uint32_t* w) { w[0] = (uint32_t)p; w[1] = (uint32_t)(p >> 32); }
template <std::size_t N> static void get(const VlWide<N>& p, uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) w[i] = p[i];
}

// Verilator renames the `interrupt` port (a C++ word) to `__SYM__interrupt`.
static const uint32_t BUS_BYTES = sizeof(((Vtern_top*)nullptr)->m_axi_gmem_rdata);

struct TernTop {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_top> top;
    std::unique_ptr<VerilatedVcdC> trace;
    Dram ddr;
    DdrPort<BUS_BYTES> port;
    uint64_t time = 0;
    uint64_t cycles = 0;
};

// Drive the model's outputs for the coming clock.
static void drive(TernTop* m) {
    auto* t = m->top.get();
    DdrPort<BUS_BYTES>& d = m->port;
    d.drive(m->ddr, m->cycles);
    t->m_axi_gmem_rvalid = d.rvalid;
    put(t->m_axi_gmem_rdata, d.rdata);
    t->m_axi_gmem_rresp = d.rresp;
    t->m_axi_gmem_rid = d.rid;
    t->m_axi_gmem_bid = 0;
    t->m_axi_gmem_rlast = d.rlast;
    t->m_axi_gmem_bvalid = d.bvalid;
    t->m_axi_gmem_bresp = d.bresp;
    t->m_axi_gmem_arready = d.arready;
    t->m_axi_gmem_awready = d.awready;
    t->m_axi_gmem_wready = d.wready;
}

static void tick(TernTop* m) {
    auto* t = m->top.get();
    drive(m);
    t->eval();
    // What the clock edge will see.
    uint32_t wdata[BUS_BYTES / 4];
    get(t->m_axi_gmem_wdata, wdata);
    PortEdge e = {
        t->m_axi_gmem_arvalid && t->m_axi_gmem_arready, t->m_axi_gmem_araddr,
        t->m_axi_gmem_arid, t->m_axi_gmem_arlen,
        t->m_axi_gmem_rvalid && t->m_axi_gmem_rready,
        t->m_axi_gmem_awvalid && t->m_axi_gmem_awready, t->m_axi_gmem_awaddr,
        t->m_axi_gmem_awlen,
        t->m_axi_gmem_wvalid && t->m_axi_gmem_wready, wdata, ~0ull,
        t->m_axi_gmem_bvalid && t->m_axi_gmem_bready,
    };

    t->ap_clk = 1;
    t->eval();
    if (m->trace) m->trace->dump(m->time + 5);

    m->port.edge(m->ddr, m->cycles, e);
    m->ddr.clock(m->cycles, BUS_BYTES);
    m->port.clock(m->ddr);

    t->ap_clk = 0;
    drive(m);
    t->eval();
    if (m->trace) m->trace->dump(m->time + 10);
    m->time += 10;
    m->cycles += 1;
}

static void lite_idle(Vtern_top* t) {
    t->s_axi_control_awvalid = 0;
    t->s_axi_control_wvalid = 0;
    t->s_axi_control_bready = 0;
    t->s_axi_control_arvalid = 0;
    t->s_axi_control_rready = 0;
}

extern "C" {

uint32_t tern_top_abi() { return 6; }

void* tern_top_new(const char* vcd_path, uint64_t bytes, double bytes_per_clock, uint32_t latency,
                   uint32_t max_reads, uint32_t stall_percent, uint64_t seed,
                   const DramTiming* timing) {
    auto* m = new TernTop;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd_path) m->context->traceEverOn(true);
    m->top = std::make_unique<Vtern_top>(m->context.get());
    if (vcd_path) {
        m->trace = std::make_unique<VerilatedVcdC>();
        m->top->trace(m->trace.get(), 99);
        m->trace->open(vcd_path);
    }
    m->ddr.configure(bytes, bytes_per_clock, latency, stall_percent, seed, *timing);
    m->port.max_reads = max_reads == 0 ? 1 : max_reads;
    lite_idle(m->top.get());
    m->top->ap_clk = 0;
    m->top->ap_rst_n = 1;
    drive(m);
    m->top->eval();
    return m;
}

void tern_top_free(void* p) {
    auto* m = static_cast<TernTop*>(p);
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

// Reset the kernel (the memory keeps its contents, as DDR does across a kernel reset).
void tern_top_reset(void* p, uint32_t clocks) {
    auto* m = static_cast<TernTop*>(p);
    m->port.clear();
    m->ddr.credit = 0;
    lite_idle(m->top.get());
    m->top->ap_rst_n = 0;
    for (uint32_t i = 0; i < clocks; i++) tick(m);
    m->top->ap_rst_n = 1;
    m->top->eval();
}

// One AXI4-Lite write; returns 0, or 1 if the slave did not answer within `limit` clocks.
uint32_t tern_top_reg_write(void* p, uint32_t addr, uint32_t data, uint32_t limit) {
    auto* m = static_cast<TernTop*>(p);
    auto* t = m->top.get();
    t->s_axi_control_awaddr = addr;
    t->s_axi_control_awvalid = 1;
    t->s_axi_control_wdata = data;
    t->s_axi_control_wstrb = 0xF;
    t->s_axi_control_wvalid = 1;
    t->s_axi_control_bready = 1;
    for (uint32_t i = 0; i < limit; i++) {
        drive(m);
        t->eval();
        bool aw = t->s_axi_control_awvalid && t->s_axi_control_awready;
        bool w = t->s_axi_control_wvalid && t->s_axi_control_wready;
        bool b = t->s_axi_control_bvalid;
        tick(m);
        if (aw) t->s_axi_control_awvalid = 0;
        if (w) t->s_axi_control_wvalid = 0;
        if (b) {
            lite_idle(t);
            t->eval();
            return 0;
        }
    }
    lite_idle(t);
    t->eval();
    return 1;
}

// One AXI4-Lite read into *out; returns 0, or 1 if the slave did not answer in time.
uint32_t tern_top_reg_read(void* p, uint32_t addr, uint32_t* out, uint32_t limit) {
    auto* m = static_cast<TernTop*>(p);
    auto* t = m->top.get();
    t->s_axi_control_araddr = addr;
    t->s_axi_control_arvalid = 1;
    t->s_axi_control_rready = 1;
    for (uint32_t i = 0; i < limit; i++) {
        drive(m);
        t->eval();
        bool ar = t->s_axi_control_arvalid && t->s_axi_control_arready;
        bool r = t->s_axi_control_rvalid;
        uint32_t data = t->s_axi_control_rdata;
        tick(m);
        if (ar) t->s_axi_control_arvalid = 0;
        if (r) {
            *out = data;
            lite_idle(t);
            t->eval();
            return 0;
        }
    }
    lite_idle(t);
    t->eval();
    return 1;
}

// The shell's DMA: bytes straight into the memory model, no clocks.
void tern_top_dma_write(void* p, uint64_t addr, const uint8_t* data, uint64_t n) {
    static_cast<TernTop*>(p)->ddr.write(addr, data, n);
}

void tern_top_dma_read(void* p, uint64_t addr, uint8_t* out, uint64_t n) {
    static_cast<TernTop*>(p)->ddr.read(addr, out, n);
}

// Clock until the interrupt line is high or `max_clocks` have passed; returns clocks run.
uint64_t tern_top_run(void* p, uint64_t max_clocks) {
    auto* m = static_cast<TernTop*>(p);
    uint64_t n = 0;
    while (n < max_clocks && !m->top->__SYM__interrupt) {
        tick(m);
        n++;
    }
    return n;
}

// Clock `clocks` times whatever the interrupt line does (the board idling).
void tern_top_idle(void* p, uint64_t clocks) {
    auto* m = static_cast<TernTop*>(p);
    for (uint64_t i = 0; i < clocks; i++) tick(m);
}

uint32_t tern_top_busy(void* p) { return static_cast<TernTop*>(p)->top->rootp->tern_top__DOT__busy; }

uint32_t tern_top_irq(void* p) { return static_cast<TernTop*>(p)->top->__SYM__interrupt; }

uint64_t tern_top_cycles(void* p) { return static_cast<TernTop*>(p)->cycles; }

// Memory traffic since the model was made: bytes read, bytes written, read bursts,
// write bursts.
void tern_top_traffic(void* p, uint64_t* out) {
    const Dram& d = static_cast<TernTop*>(p)->ddr;
    out[0] = d.bytes_read;
    out[1] = d.bytes_written;
    out[2] = d.read_bursts;
    out[3] = d.write_bursts;
    out[4] = d.refreshes;
    out[5] = d.row_misses;
    out[6] = d.turnarounds;
}

void tern_top_flush(void* p) {
    auto* m = static_cast<TernTop*>(p);
    if (m->trace) m->trace->flush();
}
}
