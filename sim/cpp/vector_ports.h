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

