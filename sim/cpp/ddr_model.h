// The simulated board's DDR: what a board's memory controller looks like from the
// fabric, behind one or more AXI4 ports. Shared by the shims that put a Verilated top on
// a board (`top_shim.cpp`, and every shim whose block has memory ports).
//
// The DRAM (`Dram`), one per board:
// - sparse storage of `bytes` bytes (64 KiB pages made on first write; unwritten
//   memory reads as zero), so a model of hundreds of MiB costs only what is used;
// - one token bucket of `bytes_per_clock` shared by every port's read and write beats:
//   the DDR's peak bandwidth at the kernel clock;
// - the DRAM's timing (`DramTiming`, zero: none) as time the data bus moves nothing,
//   taken from that bucket: a refresh every `refresh_interval_clocks`; a row miss when a
//   burst needs another row of the bank the previous burst used (rows of `row_bytes`
//   interleave over `banks`; another bank's row opens behind the current burst); a
//   turnaround when the bus changes direction (whichever port's burst it is);
// - with `stall_percent` > 0 every ready and valid the model drives drops at random
//   (seeded xorshift), to shake the kernel's handshakes.
//
// A port (`DdrPort<BEAT>`), BEAT bytes a beat:
// - read bursts are answered in the order they were accepted, whatever their ID (as an
//   AXI slave may);
// - every accepted burst waits `latency` clocks before its first beat (bursts overlap:
//   a later burst's latency runs while an earlier one streams), at most `max_reads`
//   read bursts accepted and not finished;
// - at most `port_bytes_per_clock` (`DramTiming`) per direction: what one of the board's
//   memory ports carries at the kernel clock, however wide the master behind it;
// - a burst reaching beyond memory is answered with DECERR on every beat (reads return
//   zeros, writes are dropped);
// - a burst crossing a 4 KiB boundary, which AXI forbids a master to ask for (a Zynq HP
//   port may split it or fail it), is answered with SLVERR the same way and counted
//   (`Dram::crossings`), so a master that breaks the rule fails its test;
// - each clock the ports take the bucket's bytes in turn (round robin), so ports that
//   want more than the DRAM gives share it.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

static const uint64_t DDR_PAGE = 1 << 16;

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
    double port_bytes_per_clock;     // per port and direction; 0: no limit
};

struct Burst {
    uint32_t id;
    uint64_t addr;
    uint32_t beats;
    uint32_t done;
    uint64_t ready_at;
    uint8_t resp;  // 0 OKAY; 2 SLVERR (across 4 KiB); 3 DECERR (beyond memory)
    bool opened;  // the DRAM has charged its row and turnaround
};

struct Dram {
    uint64_t bytes = 0;
    double bytes_per_clock = 0;
    uint32_t latency = 0;
    uint32_t stall_percent = 0;
    uint64_t rng = 0;
    DramTiming timing = {};
    std::vector<std::unique_ptr<uint8_t[]>> pages;
    double credit = 0;
    double next_refresh = 0;
    std::vector<int64_t> open_rows;  // per bank; -1: none
    int64_t last_bank = -1;
    int last_direction = -1;         // 0 read, 1 write
    uint64_t bytes_read = 0, bytes_written = 0, read_bursts = 0, write_bursts = 0;
    uint64_t refreshes = 0, row_misses = 0, turnarounds = 0;
    uint64_t crossings = 0;  // bursts asked across a 4 KiB boundary

    void configure(uint64_t size, double per_clock, uint32_t lat, uint32_t stalls, uint64_t seed,
                   const DramTiming& t) {
        bytes = size;
        bytes_per_clock = per_clock;
        latency = lat;
        stall_percent = stalls;
        rng = seed | 1;
        timing = t;
        if (timing.row_bytes != 0) open_rows.assign(timing.banks, -1);
        next_refresh = timing.refresh_interval_clocks;
        pages.resize((bytes + DDR_PAGE - 1) / DDR_PAGE);
    }
    bool stall() {
        if (stall_percent == 0) return false;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng % 100 < stall_percent;
    }
    uint8_t* page(uint64_t addr, bool make) {
        auto& p = pages[addr / DDR_PAGE];
        if (!p && make) {
            p.reset(new uint8_t[DDR_PAGE]);
            std::memset(p.get(), 0, DDR_PAGE);
        }
        return p ? p.get() + addr % DDR_PAGE : nullptr;
    }
    void write(uint64_t addr, const uint8_t* data, uint64_t n) {
        while (n > 0) {
            uint64_t k = std::min(n, DDR_PAGE - addr % DDR_PAGE);
            std::memcpy(page(addr, true), data, k);
            addr += k; data += k; n -= k;
        }
    }
    void read(uint64_t addr, uint8_t* out, uint64_t n) {
        while (n > 0) {
            uint64_t k = std::min(n, DDR_PAGE - addr % DDR_PAGE);
            const uint8_t* p = page(addr, false);
            if (p) std::memcpy(out, p, k); else std::memset(out, 0, k);
            addr += k; out += k; n -= k;
        }
    }
    bool outside(uint64_t addr, uint64_t len) const { return addr > bytes || len > bytes - addr; }
    // Where the memory starts on the bus: a port's address is taken from here (an
    // address below it is outside). The host's accesses are from 0, as a driver's
    // buffer offsets are.
    uint64_t window_base = 0;
    uint64_t from_bus(uint64_t addr) const { return addr >= window_base ? addr - window_base : ~0ull; }
    // The response every beat of a burst of `len` bytes at `addr` gets.
    uint8_t answer(uint64_t addr, uint64_t len) {
        if (outside(addr, len)) return 3;
        if ((addr & 4095) + len > 4096) {
            crossings++;
            return 2;
        }
        return 0;
    }
    // The DRAM's cost of a burst's first beat (direction 0 read, 1 write): a row miss
    // on a bank conflict and a bus turnaround, charged once per burst as bus time.
    void open(Burst& b, int direction) {
        if (b.opened) return;
        b.opened = true;
        if (timing.row_bytes != 0 && b.resp == 0) {
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
    // The end of a clock: bandwidth accrues; unused bandwidth is not saved up beyond two
    // beats of the widest port. A refresh takes its time whether or not anything is asked.
    void clock(uint64_t cycles, uint32_t widest_beat) {
        credit = std::min(credit + bytes_per_clock, 2.0 * widest_beat + bytes_per_clock);
        if (timing.refresh_interval_clocks > 0 && (double)cycles >= next_refresh) {
            credit -= timing.refresh_bytes;
            next_refresh += timing.refresh_interval_clocks;
            refreshes++;
        }
    }
};

// What the master did at a clock edge, as the port sees it.
struct PortEdge {
    bool ar; uint64_t araddr; uint32_t arid; uint32_t arlen;
    bool r;
    bool aw; uint64_t awaddr; uint32_t awlen;
    bool w; const uint32_t* wdata; uint64_t wstrb;  // strobe bit i: byte i (BEAT ≤ 64)
    bool b;
};

template <uint32_t BEAT> struct DdrPort {
    uint32_t max_reads = 1;
    double read_port = 0, write_port = 0;  // this port's credit, per direction
    std::deque<Burst> reads;      // accepted read bursts, in order
    std::deque<Burst> writes;     // accepted write bursts waiting for data, in order
    std::deque<Burst> responses;  // write bursts whose data is in, waiting for B
    bool rvalid = false;
    uint32_t rdata[BEAT / 4] = {};
    uint8_t rresp = 0;
    uint8_t rid = 0;
    bool rlast = false;
    bool bvalid = false;
    uint8_t bresp = 0;
    bool arready = false, awready = false, wready = false;

    void clear() {
        reads.clear(); writes.clear(); responses.clear();
        rvalid = false; bvalid = false; read_port = 0; write_port = 0;
    }
    bool port_free(const Dram& d, double port) const {
        return d.timing.port_bytes_per_clock == 0 || port >= BEAT;
    }
    // The port's outputs for the coming clock.
    void drive(Dram& d, uint64_t cycles) {
        if (!rvalid && !reads.empty()) {
            Burst& b = reads.front();
            if (cycles >= b.ready_at) d.open(b, 0);
            if (cycles >= b.ready_at && d.credit >= BEAT && port_free(d, read_port)
                && !d.stall()) {
                uint64_t at = b.addr + (uint64_t)b.done * BEAT;
                uint8_t bytes[BEAT];
                if (b.resp) std::memset(bytes, 0, BEAT); else d.read(at, bytes, BEAT);
                for (uint32_t i = 0; i < BEAT / 4; i++)
                    rdata[i] = (uint32_t)bytes[4 * i] | ((uint32_t)bytes[4 * i + 1] << 8)
                               | ((uint32_t)bytes[4 * i + 2] << 16)
                               | ((uint32_t)bytes[4 * i + 3] << 24);
                rresp = b.resp;
                rlast = b.done + 1 == b.beats;
                rid = (uint8_t)b.id;
                rvalid = true;
                d.credit -= BEAT;
                read_port -= BEAT;
            }
        }
        if (!bvalid && !responses.empty() && cycles >= responses.front().ready_at && !d.stall()) {
            bvalid = true;
            bresp = responses.front().resp;
        }
        arready = reads.size() < max_reads && !d.stall();
        awready = writes.size() < 16 && !d.stall();
        if (!writes.empty()) d.open(writes.front(), 1);
        wready = !writes.empty() && d.credit >= BEAT && port_free(d, write_port) && !d.stall();
    }
    // The clock edge: what the handshakes moved.
    void edge(Dram& d, uint64_t cycles, const PortEdge& e) {
        if (e.r) {
            rvalid = false;
            d.bytes_read += BEAT;
            Burst& front = reads.front();
            if (++front.done == front.beats) reads.pop_front();
        }
        if (e.ar) {
            uint64_t at = d.from_bus(e.araddr);
            reads.push_back({e.arid, at, e.arlen + 1, 0, cycles + 1 + d.latency,
                             d.answer(at, (uint64_t)(e.arlen + 1) * BEAT), false});
            d.read_bursts++;
        }
        if (e.w) {
            Burst& front = writes.front();
            if (!front.resp) {
                uint8_t bytes[BEAT];
                for (uint32_t i = 0; i < BEAT / 4; i++)
                    for (int k = 0; k < 4; k++) bytes[4 * i + k] = (uint8_t)(e.wdata[i] >> (8 * k));
                uint64_t at = front.addr + (uint64_t)front.done * BEAT;
                const uint64_t all = BEAT >= 64 ? ~0ull : (1ull << (BEAT % 64)) - 1;
                if (BEAT > 64 || (e.wstrb & all) == all) {
                    d.write(at, bytes, BEAT);
                } else {
                    for (uint32_t i = 0; i < BEAT; i++)
                        if (e.wstrb >> i & 1) d.write(at + i, bytes + i, 1);
                }
            }
            d.credit -= BEAT;
            write_port -= BEAT;
            d.bytes_written += BEAT;
            if (++front.done == front.beats) {
                front.ready_at = cycles + 1 + d.latency;
                responses.push_back(front);
                writes.pop_front();
            }
        }
        if (e.aw) {
            uint64_t at = d.from_bus(e.awaddr);
            writes.push_back({0, at, e.awlen + 1, 0, 0,
                              d.answer(at, (uint64_t)(e.awlen + 1) * BEAT), false});
            d.write_bursts++;
        }
        if (e.b) {
            bvalid = false;
            responses.pop_front();
        }
    }
    // The end of a clock, after the DRAM's: this port's own bandwidth accrues.
    void clock(const Dram& d) {
        double port = d.timing.port_bytes_per_clock;
        read_port = std::min(read_port + port, 2.0 * BEAT + port);
        write_port = std::min(write_port + port, 2.0 * BEAT + port);
    }
};

// One clock's outputs of every port, the ports taking the bucket in turn: each clock
// the first port is the one after the previous clock's first (`turn`, moved once per
// clock however often the outputs are driven).
struct PortTurn {
    uint32_t first = 0;
    uint64_t at = UINT64_MAX;
};

template <uint32_t BEAT>
void drive_ports(Dram& d, std::vector<DdrPort<BEAT>>& ports, uint64_t cycles, PortTurn& turn) {
    const uint32_t n = (uint32_t)ports.size();
    if (turn.at != cycles) {
        turn.at = cycles;
        turn.first = (turn.first + 1) % n;
    }
    for (uint32_t i = 0; i < n; i++) ports[(turn.first + i) % n].drive(d, cycles);
}
