// Shared by the vector unit's shims: ports of any width from and to 32-bit words, and
// the seeded stalls. The Rust side puts this ahead of each shim.
#include <cstdint>
#include <cstring>
#include <memory>
#include "verilated.h"
#include "verilated_vcd_c.h"

static void put(CData& p, const uint32_t* w) { p = (CData)w[0]; }
static void put(SData& p, const uint32_t* w) { p = (SData)w[0]; }
static void put(IData& p, const uint32_t* w) { p = w[0]; }
static void put(QData& p, const uint32_t* w) { p = (QData)w[0] | ((QData)w[1] << 32); }
template <std::size_t N> static void put(VlWide<N>& p, const uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) p[i] = w[i];
}
static void get(const CData& p, uint32_t* w) { w[0] = p; }
static void get(const SData& p, uint32_t* w) { w[0] = p; }
static void get(const IData& p, uint32_t* w) { w[0] = p; }
static void get(const QData& p, uint32_t* w) { w[0] = (uint32_t)p; w[1] = (uint32_t)(p >> 32); }
template <std::size_t N> static void get(const VlWide<N>& p, uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) w[i] = p[i];
}

static bool stall_now(uint64_t& rng) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return rng % 100 < 30;
}

// One Verilated block with a clock, a reset and the vector unit's handshake names
// (cmd_valid, in_valid, out_ready), optionally tracing to a VCD.
template <class Top> struct Block {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Top> top;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;
    uint64_t rng = 1;

    explicit Block(const char* vcd_path) {
        context = std::make_unique<VerilatedContext>();
        if (vcd_path) context->traceEverOn(true);
        top = std::make_unique<Top>(context.get());
        if (vcd_path) {
            trace = std::make_unique<VerilatedVcdC>();
            top->trace(trace.get(), 99);
            trace->open(vcd_path);
        }
        top->clk = 0;
        top->rst = 1;
        top->cmd_valid = 0;
        top->in_valid = 0;
        top->out_ready = 0;
        top->eval();
        for (int i = 0; i < 4; i++) tick();
        top->rst = 0;
        top->eval();
    }
    ~Block() {
        if (trace) trace->close();
        top->final();
    }
    void tick() {
        top->clk = 1;
        top->eval();
        if (trace) trace->dump(time + 5);
        top->clk = 0;
        top->eval();
        if (trace) trace->dump(time + 10);
        time += 10;
    }
    bool stall() { return stall_now(rng); }
};

// The C ABI every block's shim exports besides its run function: `tern_vector_abi`,
// `<name>_new(vcd)`, `<name>_free`, `<name>_flush`.
#define TERN_BLOCK_ABI(name, Top)                                              \
    extern "C" uint32_t tern_vector_abi() { return 1; }                        \
    extern "C" void* name##_new(const char* vcd) { return new Block<Top>(vcd); } \
    extern "C" void name##_free(void* p) { delete static_cast<Block<Top>*>(p); } \
    extern "C" void name##_flush(void* p) {                                    \
        auto* m = static_cast<Block<Top>*>(p);                                 \
        if (m->trace) m->trace->flush();                                       \
    }
