// tern's C ABI over a Verilated `tern_row_writer` on one port of the simulated board's
// DDR (`ddr_model.h` and `write_port_board.h` put ahead of this file): the testbench commands regions one after
// another and feeds each one's beats, withholding them at random when told to stall.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include "verilated.h"
#include "Vtern_row_writer.h"

extern "C" uint32_t tern_row_writer_abi() { return 1; }

namespace {

using Model = WritePortBoard<Vtern_row_writer>;

}  // namespace

WRITE_PORT_C_API(tern_row_writer)

// What the regions' writes did (mirrored by `RowWriterOutcome` in Rust).
struct RowWriterOutcome {
    uint64_t clocks;        // from the first command to the last done; UINT64_MAX: never
    uint64_t errors;        // regions that ended with the error bit
    uint64_t beats_taken;   // beats the writer took in (beyond the regions': a bug)
    uint64_t bytes_written, write_bursts, crossings;
};

extern "C" {

void* tern_row_writer_new(uint64_t bytes, double bytes_per_clock, uint32_t latency,
                          uint32_t stall_percent, uint64_t seed, const DramTiming* timing) {
    auto* m = new Model;
    m->make(bytes, bytes_per_clock, latency, stall_percent, seed, timing);
    auto* t = m->top.get();
    t->clk = 0;
    t->rst = 1;
    t->cmd_valid = 0;
    t->in_valid = 0;
    for (int i = 0; i < 4; i++) m->tick();
    t->rst = 0;
    t->eval();
    return m;
}


// `regions` regions one after another (region r: `beats[r]` beats at `addrs[r]`), their
// beats back to back in `data` (16 bytes each) and `strb` (one each).
void tern_row_writer_run(void* p, const uint64_t* addrs, const uint32_t* beats,
                         uint32_t regions, const uint8_t* data, const uint16_t* strb,
                         RowWriterOutcome* o, uint64_t limit, uint64_t stall_seed) {
    auto* m = static_cast<Model*>(p);
    auto* t = m->top.get();
    m->rng = stall_seed | 1;
    const bool stalls = stall_seed != 0;
    std::memset(o, 0, sizeof *o);
    o->clocks = UINT64_MAX;
    const uint64_t bytes0 = m->ddr.bytes_written, bursts0 = m->ddr.write_bursts,
                   crossings0 = m->ddr.crossings;
    uint32_t next = 0;        // the region to command
    bool commanded = false;   // it was taken and is running
    uint64_t fed = 0;         // beats of all regions fed so far
    uint64_t region_end = 0;  // beats fed when this region's last is in
    bool up = false;          // in_valid is up (held until taken)
    for (uint64_t clock = 0; clock < limit; clock++) {
        t->cmd_valid = next < regions && !commanded;
        t->cmd_addr = next < regions ? addrs[next] : 0;
        t->cmd_beats = next < regions ? beats[next] : 0;
        // Feed beats of the running region only; hold a beat up once offered.
        if (!up && commanded && fed < region_end && !m->stall(stalls)) up = true;
        t->in_valid = up;
        for (int k = 0; k < 4; k++) {
            uint32_t w = 0;
            if (up) std::memcpy(&w, data + 16 * fed + 4 * k, 4);
            t->in_data[k] = w;
        }
        t->in_strb = up ? strb[fed] : 0;
        m->drive();
        t->eval();
        bool cmd = t->cmd_valid && t->cmd_ready;
        bool finished = commanded && t->done;
        if (t->in_valid && t->in_ready) {
            up = false;
            fed++;
            o->beats_taken++;
        }
        if (finished) {
            o->errors += t->error;
            commanded = false;
            next++;
            if (next == regions) {
                o->clocks = clock;
                m->edge();
                break;
            }
        } else if (cmd) {
            commanded = true;
            region_end = fed + beats[next];
        }
        m->edge();
    }
    // The writer, idle, takes nothing more: offer a beat for a few clocks.
    for (int c = 0; c < 16; c++) {
        t->cmd_valid = 0;
        t->in_valid = 1;
        m->drive();
        t->eval();
        if (t->in_ready) o->beats_taken++;
        m->edge();
    }
    t->in_valid = 0;
    o->bytes_written = m->ddr.bytes_written - bytes0;
    o->write_bursts = m->ddr.write_bursts - bursts0;
    o->crossings = m->ddr.crossings - crossings0;
}
}
