// tern's C ABI over a Verilated `tern_sequencer`: one pass over a memory image. The
// testbench around it is an AXI4 slave over the image (a few clocks of latency, read
// beats beyond memory answered SLVERR, writes beyond it BRESP SLVERR) and the units'
// side of the dispatch port, which logs each command and finishes it after a few
// clocks (an LM head with a given token; one command may be made to fail). Seeded
// random stalls on every handshake the testbench drives.
#include <cstdint>
#include <cstring>
#include <memory>
#include "verilated.h"
#include "verilated_vcd_c.h"
#include "Vtern_sequencer.h"

extern "C" uint32_t tern_sequencer_abi() { return 1; }

namespace {

struct Model {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtern_sequencer> top;
    std::unique_ptr<VerilatedVcdC> trace;
    uint64_t time = 0;
    uint64_t rng = 1;

    explicit Model(const char* vcd) {
        context = std::make_unique<VerilatedContext>();
        if (vcd) context->traceEverOn(true);
        top = std::make_unique<Vtern_sequencer>(context.get());
        if (vcd) {
            trace = std::make_unique<VerilatedVcdC>();
            top->trace(trace.get(), 99);
            trace->open(vcd);
        }
        top->clk = 0;
        top->rst = 1;
        top->eval();
        for (int i = 0; i < 4; i++) tick();
        top->rst = 0;
        top->eval();
    }
    ~Model() {
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
    bool stall(bool on) {
        if (!on) return false;
        rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
        return rng % 100 < 30;
    }
};

}  // namespace

// What one pass did (mirrored by `SequencerOutcome` in Rust).
struct SequencerOutcome {
    uint64_t clocks;        // from the start to idle; UINT64_MAX: not within the limit
    uint32_t error_code;
    uint32_t error_command;
    uint32_t next_token;
    uint32_t commands_run;
    uint32_t dispatched;    // commands handed to the units (logged up to the room given)
    uint32_t bad_writes;    // write beats beyond memory
};

// The unit's side of one command: when it finishes, with what.
struct UnitJob {
    bool busy = false;
    uint32_t wait = 0;
    uint32_t index = 0;
};

extern "C" {

void* tern_sequencer_new(const char* vcd) { return new Model(vcd); }
void tern_sequencer_free(void* p) { delete static_cast<Model*>(p); }
void tern_sequencer_flush(void* p) {
    auto* m = static_cast<Model*>(p);
    if (m->trace) m->trace->flush();
}

// One pass: push `count` ids, start at `program_at`, `position`; run until idle.
// Commands handed over go to `records` (64 bytes each) with their rows and position in
// `rows_pos` (two u32 each), up to `room`. The unit finishes command `fail_at` (its
// index in the program) with `fail_code`, every LM head with `lm_next`.
void tern_sequencer_run(void* p, uint8_t* mem, uint64_t mem_len, uint64_t program_at,
                        uint32_t position, const uint32_t* ids, uint32_t count, uint32_t lm_next,
                        uint32_t fail_at, uint32_t fail_code, uint8_t* records, uint32_t* rows_pos,
                        uint32_t room, SequencerOutcome* out, uint64_t limit,
                        uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    const bool stalls = stall_seed != 0;
    std::memset(out, 0, sizeof *out);
    out->clocks = UINT64_MAX;
    // Ids in, one a clock.
    t->id_clear = 1;
    t->eval();
    m->tick();
    t->id_clear = 0;
    for (uint32_t i = 0; i < count; i++) {
        t->id_push = 1;
        t->id_data = ids[i];
        t->eval();
        m->tick();
    }
    t->id_push = 0;
    t->program_at = program_at;
    t->position = position;
    t->start = 1;
    t->eval();
    m->tick();
    t->start = 0;
    // The slave's state: one read burst and one write burst at a time.
    bool reading = false, writing = false, b_due = false;
    uint64_t r_addr = 0, w_addr = 0;
    uint32_t r_left = 0, r_delay = 0;
    // A burst across a 4 KiB boundary (AXI forbids it) is answered with SLVERR, as the
    // DDR model answers it (ddr_model.h).
    bool r_cross = false, w_cross = false, w_bad = false;
    UnitJob job;
    uint32_t job_op = 0;
    for (uint64_t clock = 0; clock < limit; clock++) {
        // Drive the slave's and the units' outputs for this clock.
        t->m_arready = !reading && !m->stall(stalls);
        bool r_now = reading && r_delay == 0 && !m->stall(stalls);
        t->m_rvalid = r_now;
        if (r_now) {
            uint32_t w[4] = {0, 0, 0, 0};
            bool inside = r_addr + 16 <= mem_len;
            if (inside) std::memcpy(w, mem + r_addr, 16);
            for (int i = 0; i < 4; i++) t->m_rdata[i] = w[i];
            t->m_rresp = inside && !r_cross ? 0 : 2;
            t->m_rlast = r_left == 1;
        } else {
            t->m_rlast = 0;
        }
        t->m_awready = !writing && !b_due && !m->stall(stalls);
        t->m_wready = writing && !m->stall(stalls);
        t->m_bvalid = b_due && !m->stall(stalls);
        t->m_bresp = w_bad ? 2 : 0;
        t->u_ready = !job.busy && !m->stall(stalls);
        bool finishing = job.busy && job.wait == 0;
        t->u_done = finishing;
        t->u_error = finishing && job.index == fail_at ? fail_code : 0;
        t->u_next = lm_next;
        t->eval();
        // What the handshakes did.
        bool ar = t->m_arvalid && t->m_arready;
        bool r = t->m_rvalid && t->m_rready;
        bool aw = t->m_awvalid && t->m_awready;
        bool wb = t->m_wvalid && t->m_wready;
        bool b = t->m_bvalid && t->m_bready;
        bool u = t->u_valid && t->u_ready;
        if (ar) {
            reading = true;
            r_addr = t->m_araddr;
            r_left = t->m_arlen + 1u;
            r_cross = (r_addr & 4095) + 16ull * r_left > 4096;
            r_delay = 3;
        } else if (r) {
            r_addr += 16;
            if (--r_left == 0) reading = false;
        } else if (reading && r_delay > 0) {
            r_delay--;
        }
        if (aw) {
            writing = true;
            w_addr = t->m_awaddr;
            w_cross = (w_addr & 4095) + 16ull * (t->m_awlen + 1u) > 4096;
            w_bad = w_cross;
        }
        if (wb) {
            uint32_t d[4];
            for (int i = 0; i < 4; i++) d[i] = t->m_wdata[i];
            const uint8_t* bytes = reinterpret_cast<const uint8_t*>(d);
            for (int i = 0; i < 16; i++)
                if (t->m_wstrb >> i & 1) {
                    if (!w_cross && w_addr + i < mem_len) mem[w_addr + i] = bytes[i];
                    else w_bad = true;
                }
            if (w_bad) out->bad_writes++;
            w_addr += 16;
            if (t->m_wlast) {
                writing = false;
                b_due = true;
            }
        }
        if (b) b_due = false;
        if (finishing) job.busy = false;
        else if (job.busy) job.wait--;
        if (u) {
            uint32_t w[16];
            for (int i = 0; i < 16; i++) w[i] = t->u_record[i];
            if (out->dispatched < room) {
                std::memcpy(records + 64 * (uint64_t)out->dispatched, w, 64);
                rows_pos[2 * out->dispatched] = t->u_rows;
                rows_pos[2 * out->dispatched + 1] = t->u_position;
            }
            job_op = w[0] & 0xff;
            job.busy = true;
            job.wait = 2 + (uint32_t)(job_op % 3);  // units take a few clocks
            job.index = out->dispatched;  // every command before End is handed over, in order
            out->dispatched++;
        }
        if (clock > 0 && t->idle) {
            out->clocks = clock;
            break;
        }
        m->tick();
    }
    out->error_code = t->error_code;
    out->error_command = t->error_command;
    out->next_token = t->next_token;
    out->commands_run = t->commands_run;
}
}
