// tern's C ABI over a Verilated `tern_top` (the accelerator top of any configuration),
// with the board around it: a host driving the AXI4-Lite control port, and a DDR model
// answering the AXI4 master `m_axi_gmem`. Runs clock until the interrupt line rises.
//
// The DDR model (what a board's memory controller looks like from the fabric):
// - sparse storage of `bytes` bytes (64 KiB pages made on first write; unwritten
//   memory reads as zero), so a model of hundreds of MiB costs only what is used;
// - read bursts are answered in the order they were accepted, whatever their ID (as an
//   AXI slave may);
// - every accepted burst waits `latency` clocks before its first beat (bursts overlap:
//   a later burst's latency runs while an earlier one streams), at most `max_reads`
//   read bursts accepted and not finished;
// - one token bucket of `bytes_per_clock` shared by read and write beats: the DDR's
//   peak bandwidth at the kernel clock, below the bus's own one beat per clock per channel;
// - the DRAM's timing (`DramTiming`, zero: none) as time the data bus moves nothing,
//   taken from that bucket: a refresh every `refresh_interval_clocks`; a row miss when a
//   burst needs another row of the bank the previous burst used (rows of `row_bytes`
//   interleave over `banks`; another bank's row opens behind the current burst); a
//   turnaround when the bus changes direction;
// - the fabric's ports (`port_bytes_per_clock` per direction, zero: no limit): what the
//   board's memory ports carry at the kernel clock, however wide the top's master;
// - a burst reaching beyond `bytes` is answered with DECERR on every beat (reads return
//   zeros, writes are dropped);
// - with `stall_percent` > 0 every ready and valid the model drives drops at random
//   (seeded xorshift), to shake the kernel's handshakes.
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
static const uint64_t PAGE = 1 << 16;
static const uint32_t BUS_BYTES = sizeof(((Vtern_top*)nullptr)->m_axi_gmem_rdata);

struct Burst {
    uint32_t id;
    uint64_t addr;
    uint32_t beats;
    uint32_t done;
    uint64_t ready_at;
    bool error;
    bool opened;  // the DRAM has charged its row and turnaround
};

// The C ABI's layout of the DRAM's timing and the ports (`DramTiming` in
// sim/src/top_model.rs): times are bytes of data-bus time at the peak rate.
struct DramTiming {
    double refresh_interval_clocks;  // 0: no refresh
    double refresh_bytes;
    uint64_t row_bytes;              // 0: no rows
    uint64_t banks;
    double row_miss_bytes;
    double read_to_write_bytes;
    double write_to_read_bytes;
    double port_bytes_per_clock;     // per direction; 0: no limit
};

struct Ddr {
    uint64_t bytes = 0;
    double bytes_per_clock = 0;
    uint32_t latency = 0;
    uint32_t max_reads = 0;
    uint32_t stall_percent = 0;
    uint64_t rng = 0;
    DramTiming timing = {};
    std::vector<std::unique_ptr<uint8_t[]>> pages;
    double credit = 0;
    double read_port = 0, write_port = 0;  // the ports' credit, per direction
    double next_refresh = 0;
    std::vector<int64_t> open_rows;  // per bank; -1: none
    int64_t last_bank = -1;
    int last_direction = -1;         // 0 read, 1 write
    std::deque<Burst> reads;   // accepted read bursts, in order
    std::deque<Burst> writes;  // accepted write bursts waiting for data, in order
    std::deque<Burst> responses;  // write bursts whose data is in, waiting for B
    bool rvalid = false;
    uint32_t rdata[BUS_BYTES / 4];
    uint8_t rresp = 0;
    uint8_t rid = 0;
    bool rlast = false;
    bool bvalid = false;
    uint8_t bresp = 0;
    uint64_t bytes_read = 0, bytes_written = 0, read_bursts = 0, write_bursts = 0;
    uint64_t refreshes = 0, row_misses = 0, turnarounds = 0;

    bool stall() {
        if (stall_percent == 0) return false;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng % 100 < stall_percent;
    }
    uint8_t* page(uint64_t addr, bool make) {
        auto& p = pages[addr / PAGE];
        if (!p && make) {
            p.reset(new uint8_t[PAGE]);
            std::memset(p.get(), 0, PAGE);
        }
        return p ? p.get() + addr % PAGE : nullptr;
    }
    void write(uint64_t addr, const uint8_t* data, uint64_t n) {
        while (n > 0) {
            uint64_t k = std::min(n, PAGE - addr % PAGE);
            std::memcpy(page(addr, true), data, k);
            addr += k; data += k; n -= k;
        }
    }
    void read(uint64_t addr, uint8_t* out, uint64_t n) {
        while (n > 0) {
            uint64_t k = std::min(n, PAGE - addr % PAGE);
            const uint8_t* p = page(addr, false);
            if (p) std::memcpy(out, p, k); else std::memset(out, 0, k);
            addr += k; out += k; n -= k;
        }
    }
    bool outside(uint64_t addr, uint32_t beats) const {
        uint64_t len = (uint64_t)beats * BUS_BYTES;
        return addr > bytes || len > bytes - addr;
    }
    void clear_traffic() {
        reads.clear(); writes.clear(); responses.clear();
        rvalid = false; bvalid = false; credit = 0; read_port = 0; write_port = 0;
    }
    // The DRAM's cost of a burst's first beat (direction 0 read, 1 write): a row miss
    // on a bank conflict and a bus turnaround, charged once per burst as bus time.
    void open(Burst& b, int direction) {
        if (b.opened) return;
        b.opened = true;
        if (timing.row_bytes != 0 && !b.error) {
            uint64_t page = b.addr / timing.row_bytes;
            int64_t bank = (int64_t)(page % timing.banks);
            int64_t row = (int64_t)(page / timing.banks);
            if (open_rows[bank] != row && last_bank == bank) {
                credit -= timing.row_miss_bytes;
                row_misses++;
            }
            open_rows[bank] = row;
            last_bank = bank;
        }
        if (last_direction >= 0 && last_direction != direction) {
            credit -= direction == 1 ? timing.read_to_write_bytes : timing.write_to_read_bytes;
            turnarounds++;
        }
        last_direction = direction;
    }
    bool port_free(double port) const {
        return timing.port_bytes_per_clock == 0 || port >= BUS_BYTES;
    }
};

struct TernTop {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_top> top;
    std::unique_ptr<VerilatedVcdC> trace;
    Ddr ddr;
    uint64_t time = 0;
    uint64_t cycles = 0;
};

// Drive the model's outputs for the coming clock.
static void drive(TernTop* m) {
    auto* t = m->top.get();
    Ddr& d = m->ddr;
    if (!d.rvalid && !d.reads.empty()) {
        Burst& b = d.reads.front();
        if (m->cycles >= b.ready_at) d.open(b, 0);
        if (m->cycles >= b.ready_at && d.credit >= BUS_BYTES && d.port_free(d.read_port)
            && !d.stall()) {
            uint64_t at = b.addr + (uint64_t)b.done * BUS_BYTES;
            uint8_t bytes[BUS_BYTES];
            if (b.error) std::memset(bytes, 0, BUS_BYTES); else d.read(at, bytes, BUS_BYTES);
            for (uint32_t i = 0; i < BUS_BYTES / 4; i++)
                d.rdata[i] = (uint32_t)bytes[4 * i] | ((uint32_t)bytes[4 * i + 1] << 8)
                             | ((uint32_t)bytes[4 * i + 2] << 16) | ((uint32_t)bytes[4 * i + 3] << 24);
            d.rresp = b.error ? 3 : 0;
            d.rlast = b.done + 1 == b.beats;
            d.rid = (uint8_t)b.id;
            d.rvalid = true;
            d.credit -= BUS_BYTES;
            d.read_port -= BUS_BYTES;
        }
    }
    if (!d.bvalid && !d.responses.empty() && m->cycles >= d.responses.front().ready_at
        && !d.stall()) {
        d.bvalid = true;
        d.bresp = d.responses.front().error ? 3 : 0;
    }
    t->m_axi_gmem_rvalid = d.rvalid;
    put(t->m_axi_gmem_rdata, d.rdata);
    t->m_axi_gmem_rresp = d.rresp;
    t->m_axi_gmem_rid = d.rid;
    t->m_axi_gmem_bid = 0;
    t->m_axi_gmem_rlast = d.rlast;
    t->m_axi_gmem_bvalid = d.bvalid;
    t->m_axi_gmem_bresp = d.bresp;
    t->m_axi_gmem_arready = d.reads.size() < d.max_reads && !d.stall();
    t->m_axi_gmem_awready = d.writes.size() < 16 && !d.stall();
    if (!d.writes.empty()) d.open(d.writes.front(), 1);
    t->m_axi_gmem_wready = !d.writes.empty() && d.credit >= BUS_BYTES
                           && d.port_free(d.write_port) && !d.stall();
}

static void tick(TernTop* m) {
    auto* t = m->top.get();
    Ddr& d = m->ddr;
    drive(m);
    t->eval();
    // What the clock edge will see.
    bool ar = t->m_axi_gmem_arvalid && t->m_axi_gmem_arready;
    uint64_t araddr = t->m_axi_gmem_araddr;
    uint32_t arid = t->m_axi_gmem_arid;
    uint32_t arlen = t->m_axi_gmem_arlen;
    bool r = t->m_axi_gmem_rvalid && t->m_axi_gmem_rready;
    bool aw = t->m_axi_gmem_awvalid && t->m_axi_gmem_awready;
    uint64_t awaddr = t->m_axi_gmem_awaddr;
    uint32_t awlen = t->m_axi_gmem_awlen;
    bool w = t->m_axi_gmem_wvalid && t->m_axi_gmem_wready;
    uint32_t wdata[BUS_BYTES / 4];
    get(t->m_axi_gmem_wdata, wdata);
    bool b = t->m_axi_gmem_bvalid && t->m_axi_gmem_bready;

    t->ap_clk = 1;
    t->eval();
    if (m->trace) m->trace->dump(m->time + 5);

    if (r) {
        d.rvalid = false;
        d.bytes_read += BUS_BYTES;
        Burst& front = d.reads.front();
        if (++front.done == front.beats) d.reads.pop_front();
    }
    if (ar) {
        d.reads.push_back({arid, araddr, arlen + 1, 0, m->cycles + 1 + d.latency,
                           d.outside(araddr, arlen + 1), false});
        d.read_bursts++;
    }
    if (w) {
        Burst& front = d.writes.front();
        if (!front.error) {
            uint8_t bytes[BUS_BYTES];
            for (uint32_t i = 0; i < BUS_BYTES / 4; i++)
                for (int k = 0; k < 4; k++) bytes[4 * i + k] = (uint8_t)(wdata[i] >> (8 * k));
            d.write(front.addr + (uint64_t)front.done * BUS_BYTES, bytes, BUS_BYTES);
        }
        d.credit -= BUS_BYTES;
        d.write_port -= BUS_BYTES;
        d.bytes_written += BUS_BYTES;
        if (++front.done == front.beats) {
            front.ready_at = m->cycles + 1 + d.latency;
            d.responses.push_back(front);
            d.writes.pop_front();
        }
    }
    if (aw) {
        d.writes.push_back({0, awaddr, awlen + 1, 0, 0, d.outside(awaddr, awlen + 1), false});
        d.write_bursts++;
    }
    if (b) {
        d.bvalid = false;
        d.responses.pop_front();
    }
    // Bandwidth accrues every clock; unused bandwidth is not saved up beyond two beats.
    // A refresh takes its time from the bucket whether or not anything is asked.
    d.credit = std::min(d.credit + d.bytes_per_clock, 2.0 * BUS_BYTES + d.bytes_per_clock);
    if (d.timing.refresh_interval_clocks > 0 && (double)m->cycles >= d.next_refresh) {
        d.credit -= d.timing.refresh_bytes;
        d.next_refresh += d.timing.refresh_interval_clocks;
        d.refreshes++;
    }
    double port = d.timing.port_bytes_per_clock;
    d.read_port = std::min(d.read_port + port, 2.0 * BUS_BYTES + port);
    d.write_port = std::min(d.write_port + port, 2.0 * BUS_BYTES + port);

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

uint32_t tern_top_abi() { return 5; }

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
    Ddr& d = m->ddr;
    d.bytes = bytes;
    d.bytes_per_clock = bytes_per_clock;
    d.latency = latency;
    d.max_reads = max_reads == 0 ? 1 : max_reads;
    d.stall_percent = stall_percent;
    d.rng = seed | 1;
    d.timing = *timing;
    if (d.timing.row_bytes != 0) d.open_rows.assign(d.timing.banks, -1);
    d.next_refresh = d.timing.refresh_interval_clocks;
    d.pages.resize((bytes + PAGE - 1) / PAGE);
    std::memset(d.rdata, 0, sizeof d.rdata);
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
    m->ddr.clear_traffic();
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
    const Ddr& d = static_cast<TernTop*>(p)->ddr;
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
