// tern's C ABI over a Verilated `tern_top` (the accelerator top of any configuration).
// Every bus access is one clock; runs clock until the interrupt line rises.
#include <cstdint>
#include <memory>
#include "Vtern_top.h"
#include "Vtern_top___024root.h"
#include "verilated.h"
#include "verilated_vcd_c.h"

struct TernTop {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_top> top;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;
    uint64_t cycles = 0;
};

static void tick(TernTop* m) {
    m->top->clk = 1;
    m->top->eval();
    if (m->trace) m->trace->dump(m->time + 5);
    m->top->clk = 0;
    m->top->eval();
    if (m->trace) m->trace->dump(m->time + 10);
    m->time += 10;
    m->cycles += 1;
}

extern "C" {

uint32_t tern_top_abi() { return 3; }

void* tern_top_new(const char* vcd_path) {
    auto* m = new TernTop;
    m->context = std::make_unique<VerilatedContext>();
    if (vcd_path) m->context->traceEverOn(true);
    m->top = std::make_unique<Vtern_top>(m->context.get());
    if (vcd_path) {
        m->trace = std::make_unique<VerilatedVcdC>();
        m->top->trace(m->trace.get(), 99);
        m->trace->open(vcd_path);
    }
    m->top->clk = 0;
    m->top->eval();
    return m;
}

void tern_top_free(void* p) {
    auto* m = static_cast<TernTop*>(p);
    if (m->trace) m->trace->close();
    m->top->final();
    delete m;
}

void tern_top_reset(void* p, uint32_t clocks) {
    auto* m = static_cast<TernTop*>(p);
    m->top->rst = 1;
    for (uint32_t i = 0; i < clocks; i++) tick(m);
    m->top->rst = 0;
    m->top->eval();
}

void tern_top_reg_write(void* p, uint32_t addr, uint32_t data) {
    auto* m = static_cast<TernTop*>(p);
    m->top->reg_addr = addr;
    m->top->reg_wdata = data;
    m->top->reg_write = 1;
    tick(m);
    m->top->reg_write = 0;
    m->top->eval();
}

uint32_t tern_top_reg_read(void* p, uint32_t addr) {
    auto* m = static_cast<TernTop*>(p);
    m->top->reg_addr = addr;
    m->top->reg_read = 1;
    tick(m);
    m->top->reg_read = 0;
    m->top->eval();
    return m->top->reg_rdata;
}

// The host port of card memory: one word per clock.
void tern_top_mem_write(void* p, uint32_t word, const uint32_t* data, uint32_t n) {
    auto* m = static_cast<TernTop*>(p);
    m->top->mem_write = 1;
    for (uint32_t i = 0; i < n; i++) {
        m->top->mem_addr = word + i;
        m->top->mem_wdata = data[i];
        tick(m);
    }
    m->top->mem_write = 0;
    m->top->eval();
}

void tern_top_mem_read(void* p, uint32_t word, uint32_t* out, uint32_t n) {
    auto* m = static_cast<TernTop*>(p);
    m->top->mem_read = 1;
    for (uint32_t i = 0; i < n; i++) {
        m->top->mem_addr = word + i;
        tick(m);
        out[i] = m->top->mem_rdata;
    }
    m->top->mem_read = 0;
    m->top->eval();
}

// The shell's DMA: little-endian bytes straight into the card memory array, no clocks.
void tern_top_dma_write(void* p, uint32_t word, const uint8_t* data, uint32_t n) {
    auto& mem = static_cast<TernTop*>(p)->top->rootp->tern_top__DOT__card_mem;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t* b = data + 4 * i;
        mem[word + i] = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
    }
}

void tern_top_dma_read(void* p, uint32_t word, uint8_t* out, uint32_t n) {
    auto& mem = static_cast<TernTop*>(p)->top->rootp->tern_top__DOT__card_mem;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = mem[word + i];
        uint8_t* b = out + 4 * i;
        b[0] = (uint8_t)w; b[1] = (uint8_t)(w >> 8); b[2] = (uint8_t)(w >> 16); b[3] = (uint8_t)(w >> 24);
    }
}

// Clock until the interrupt line is high or `max_clocks` have passed; returns clocks run.
uint64_t tern_top_run(void* p, uint64_t max_clocks) {
    auto* m = static_cast<TernTop*>(p);
    uint64_t n = 0;
    while (n < max_clocks && !m->top->irq) {
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

uint32_t tern_top_irq(void* p) { return static_cast<TernTop*>(p)->top->irq; }

uint64_t tern_top_cycles(void* p) { return static_cast<TernTop*>(p)->cycles; }

void tern_top_flush(void* p) {
    auto* m = static_cast<TernTop*>(p);
    if (m->trace) m->trace->flush();
}
}
