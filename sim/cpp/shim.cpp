// tern's C ABI over a Verilated `tern_engine` (any configuration). Port widths differ
// per design; the overloads of `put`/`get` pick Verilator's storage type for each.
#include <cstdint>
#include <memory>
#include "Vtern_engine.h"
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

struct TernModel {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_engine> top;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;
};

extern "C" {

uint32_t tern_model_abi() { return 2; }

void* tern_model_new(const char* vcd_path) {
    auto* m = new TernModel;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd_path) m->context->traceEverOn(true);
    m->top = std::make_unique<Vtern_engine>(m->context.get());
    if (vcd_path) {
        m->trace = std::make_unique<VerilatedVcdC>();
        m->top->trace(m->trace.get(), 99);
        m->trace->open(vcd_path);
    }
    m->top->clk = 0;
    m->top->eval();
    return m;
}

void tern_model_free(void* p) {
    auto* m = static_cast<TernModel*>(p);
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

void tern_model_set_inputs(void* p, uint32_t rst, uint32_t act_valid, uint32_t act_last,
                           const uint32_t* act_data, uint32_t wgt_valid, const uint32_t* wgt_data,
                           uint32_t res_ready) {
    auto* t = static_cast<TernModel*>(p)->top.get();
    t->rst = rst;
    t->act_valid = act_valid;
    t->act_last = act_last;
    put(t->act_data, act_data);
    t->wgt_valid = wgt_valid;
    put(t->wgt_data, wgt_data);
    t->res_ready = res_ready;
}

// Settle the combinational logic with the clock low; returns the handshake outputs:
// bit 0 act_ready, bit 1 wgt_ready, bit 2 res_valid.
uint32_t tern_model_eval(void* p) {
    auto* m = static_cast<TernModel*>(p);
    m->top->eval();
    if (m->trace) m->trace->dump(m->time);
    return (uint32_t)m->top->act_ready | ((uint32_t)m->top->wgt_ready << 1) | ((uint32_t)m->top->res_valid << 2);
}

void tern_model_result(void* p, uint32_t* out) { get(static_cast<TernModel*>(p)->top->res_data, out); }

// One rising then falling clock edge.
void tern_model_tick(void* p) {
    auto* m = static_cast<TernModel*>(p);
    m->top->clk = 1;
    m->top->eval();
    if (m->trace) m->trace->dump(m->time + 5);
    m->top->clk = 0;
    m->top->eval();
    m->time += 10;
}

// Clock many cycles with fixed inputs: the C++-only loop the benchmark compares with.
void tern_model_run_free(void* p, uint64_t cycles) {
    auto* m = static_cast<TernModel*>(p);
    for (uint64_t i = 0; i < cycles; i++) {
        m->top->clk = 1;
        m->top->eval();
        m->top->clk = 0;
        m->top->eval();
    }
}
}
