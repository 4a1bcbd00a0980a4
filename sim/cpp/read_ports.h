// A Verilated block's AXI4 read ports m0..m{PORTS-1} (128-bit) on the simulated board's
// DDR (put after `ddr_model.h` and `#define PORTS`): each is one `DdrPort<16>`. Shared by
// the stripe readers' shims and the board around a unit (`unit_board.h`).
#include <vector>

#if PORTS == 1
#define FOR_PORTS(X) X(0)
#elif PORTS == 2
#define FOR_PORTS(X) X(0) X(1)
#elif PORTS == 4
#define FOR_PORTS(X) X(0) X(1) X(2) X(3)
#elif PORTS == 8
#define FOR_PORTS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#error "PORTS must be 1, 2, 4 or 8"
#endif

// What the ports drive into the block this clock.
template <class V>
void drive_read_ports(V* t, const std::vector<DdrPort<16>>& ports) {
#define DRIVE(i)                                                        \
    {                                                                   \
        const auto& q = ports[i];                                       \
        t->m##i##_arready = q.arready;                                  \
        t->m##i##_rvalid = q.rvalid;                                    \
        for (int k = 0; k < 4; k++) t->m##i##_rdata[k] = q.rdata[k];    \
        t->m##i##_rresp = q.rresp;                                      \
        t->m##i##_rlast = q.rlast;                                      \
    }
    FOR_PORTS(DRIVE)
#undef DRIVE
}

// The read handshakes of this clock, before its edge (the write fields left empty).
template <class V>
void read_port_edges(V* t, PortEdge* e) {
#define EDGE(i)                                                                      \
    e[i] = {t->m##i##_arvalid && t->m##i##_arready, t->m##i##_araddr, 0,             \
            t->m##i##_arlen, t->m##i##_rvalid && t->m##i##_rready, false, 0, 0,      \
            false, nullptr, 0, false};
    FOR_PORTS(EDGE)
#undef EDGE
}
