//! The one top's side of the board's memory ports (docs/memory_ports.md): how a unit's
//! stream reaches DDR through the ports the board has (the KV260: four 128-bit HP
//! ports) at their whole width.
//!
//! `tern_stripe_reader` reads one contiguous region as a stream of words of `P` beats
//! (P × 16 bytes) a clock, in order:
//!
//! ```text
//! cmd (addr, beats) ─► bursts of ≤ B beats, burst k on port k mod P (in order, each port
//!   ≤ O·B beats in flight, space for every beat reserved before its burst is asked; a
//!   burst that would cross 4 KiB asked as two, cut at the boundary)
//!   ─► per port: beats gathered into words of P beats ─► a FIFO of words
//!   ─► the words taken port after port, burst by burst: P beats a clock, in order
//! ```
//!
//! `any_port_reader_verilog` is the same reader asking each burst on any free port that
//! no other unit wants (`port_busy`), the ports' order kept in a small FIFO: the weight
//! window's reader, which streams beside the running unit on the ports it leaves.
//!
//! A region of 16-byte beats needs no particular layout: each burst is contiguous, and
//! consecutive bursts go to consecutive ports, so every port carries an equal share. A
//! port counts its beats rather than trusting `rlast`, so a burst asked in two parts
//! still fills whole words.
//!
//! `tern_read_arbiter` puts several read masters on one port (round robin, beats routed
//! back in order); `tern_read_ports` is several stripe readers sharing every port so.

use crate::bits::ceil_log2;

pub const STRIPE_READER_MODULE: &str = "tern_stripe_reader";
pub const STRIPE_READER_FILE: &str = "tern_stripe_reader.v";

/// Bytes of a port's beat (the HP ports' 128 bits).
pub const PORT_BEAT_BYTES: usize = 16;

/// The bits that hold every address of `memory_bytes` of memory and its end (33 for
/// 4 GiB): as wide as the one top's write guards and weight window compare addresses.
pub fn memory_address_bits(memory_bytes: u64) -> usize {
    (64 - memory_bytes.leading_zeros() as usize).max(12)
}

/// What a stripe reader is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripeShape {
    /// Memory ports (`[[memory.ports]]` of the board).
    pub ports: usize,
    /// Beats a burst, a multiple of `ports` (≤ 16: what the Zynq HP ports take whole).
    pub burst: usize,
    /// Whole bursts' beats a port may have in flight (`outstanding · burst`).
    pub outstanding: usize,
}

impl StripeShape {
    pub fn check(&self) -> Result<(), String> {
        let StripeShape {
            ports,
            burst,
            outstanding,
        } = *self;
        if !(1..=8).contains(&ports) {
            return Err(format!("stripe reader: {ports} ports, not 1..=8"));
        }
        if !(1..=16).contains(&burst) || !burst.is_multiple_of(ports) {
            return Err(format!(
                "stripe reader: bursts of {burst} beats are not a multiple of {ports} ports in 1..=16"
            ));
        }
        if !(1..=16).contains(&outstanding) {
            return Err(format!(
                "stripe reader: {outstanding} bursts in flight, not 1..=16"
            ));
        }
        Ok(())
    }

    /// Words (of `ports` beats) a port's FIFO holds: every burst it may have in flight.
    pub fn fifo_words(&self) -> usize {
        (self.outstanding * self.burst / self.ports).next_power_of_two()
    }
}

/// The stripe reader's Verilog for `shape`.
pub fn stripe_reader_verilog(shape: StripeShape) -> Result<String, String> {
    stripe_reader_verilog_named(shape, STRIPE_READER_MODULE)
}

/// The same, its module named `module` (a design holding readers of two shapes).
pub fn stripe_reader_verilog_named(shape: StripeShape, module: &str) -> Result<String, String> {
    reader_verilog(shape, module, BurstOrder::InTurn)
}

/// A stripe reader whose bursts go to any free port (`BurstOrder::AnyFreePort`), its
/// module named `module`: it has an input `port_busy` (a bit a port) and asks no burst
/// on a port whose bit is set, and an input `reading_ahead` that holds each port to
/// `outstanding_ahead` bursts in flight (of `shape.outstanding`) while set. The words
/// still go out in the region's order.
pub fn any_port_reader_verilog(
    shape: StripeShape,
    outstanding_ahead: usize,
    module: &str,
) -> Result<String, String> {
    if !(1..=shape.outstanding).contains(&outstanding_ahead) {
        return Err(format!(
            "any-port reader: {outstanding_ahead} bursts in flight while reading ahead, not 1..={}",
            shape.outstanding
        ));
    }
    reader_verilog(shape, module, BurstOrder::AnyFreePort { outstanding_ahead })
}

/// Which port a stripe reader asks its next burst on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BurstOrder {
    /// Burst k on port k mod P: no record of the order is needed.
    InTurn,
    /// The first port (from the one after the last used) whose address stage is free,
    /// that has room and that no other unit wants: a reader running beside other units
    /// keeps streaming on the ports they leave. The ports' order is kept in a FIFO.
    AnyFreePort { outstanding_ahead: usize },
}

fn reader_verilog(shape: StripeShape, module: &str, order: BurstOrder) -> Result<String, String> {
    shape.check()?;
    let StripeShape {
        ports: p,
        burst,
        outstanding,
    } = shape;
    let words = shape.fifo_words();
    let wa = ceil_log2(words).max(1);
    let port_bits = ceil_log2(p).max(1);
    let count_bits = ceil_log2(p + 1);
    let burst_bits = ceil_log2(burst + 1);
    // Beats a port may have asked for and not received: `outstanding` whole bursts.
    let due = outstanding * burst;
    let due_bits = ceil_log2(due + 1);
    // Bursts asked and not yet out: a port reserves `burst / P` words for each but the
    // region's last, and at most `words`.
    let ord = (p * words * p / burst + 1).next_power_of_two().max(2);
    let due_limit = match order {
        BurstOrder::InTurn => format!("{}'d{due}", due_bits + 1),
        BurstOrder::AnyFreePort { outstanding_ahead } => format!(
            "(reading_ahead ? {b}'d{} : {b}'d{due})",
            outstanding_ahead * burst,
            b = due_bits + 1
        ),
    };
    let (busy_io, order_decl, port_issue, order_start, order_issued, order_next_burst) = match order
    {
        BurstOrder::InTurn => (
            "",
            IN_TURN_DECL,
            IN_TURN_ISSUE,
            IN_TURN_START,
            IN_TURN_ISSUED,
            IN_TURN_NEXT_BURST,
        ),
        BurstOrder::AnyFreePort { .. } => (
            ANY_PORT_IO,
            ANY_PORT_DECL,
            ANY_PORT_ISSUE,
            ANY_PORT_START,
            ANY_PORT_ISSUED,
            ANY_PORT_NEXT_BURST,
        ),
    };
    let mut port_io = String::new();
    let mut port_logic = String::new();
    let mut word_mux = String::new();
    let (mut issued, mut bad) = (Vec::new(), Vec::new());
    for i in 0..p {
        port_io.push_str(&format!(
            "    output wire         m{i}_arvalid,\n    input  wire         m{i}_arready,\n    \
             output wire [63:0]  m{i}_araddr,\n    output wire [7:0]   m{i}_arlen,\n    \
             input  wire         m{i}_rvalid,\n    output wire         m{i}_rready,\n    \
             input  wire [127:0] m{i}_rdata,\n    input  wire [1:0]   m{i}_rresp,\n    \
             /* verilator lint_off UNUSEDSIGNAL */ // beats are counted: no burst's end is needed\n    \
             input  wire         m{i}_rlast,\n    /* verilator lint_on UNUSEDSIGNAL */\n"
        ));
        // The FIFO in one bank a beat of the word: a beat is written where it belongs as
        // it comes, with no word gathered in registers first.
        let (mut bank_decl, mut bank_write, mut bank_read) =
            (String::new(), String::new(), Vec::new());
        for j in 0..p {
            bank_decl.push_str(&format!(
                "    reg [127:0] f{i}_b{j} [0:{{{{WORDS_LAST}}}}];\n"
            ));
            bank_write.push_str(&format!(
                "        if (m{i}_rvalid && p{i}_have == {{{{CB}}}}'d{j}) f{i}_b{j}[f{i}_wr] <= m{i}_rdata;\n"
            ));
            bank_read.push(format!("f{i}_b{j}[f{i}_rd]"));
        }
        bank_read.reverse();
        port_logic.push_str(
            &PORT_TEMPLATE
                .replace("{{BANK_DECL}}", &bank_decl)
                .replace("{{BANK_WRITE}}", &bank_write)
                .replace("{{PORT_ISSUE}}", port_issue)
                .replace("{{DUE_LIMIT}}", &due_limit)
                .replace("{{I}}", &i.to_string()),
        );
        word_mux.push_str(&format!(
            "            {port_bits}'d{i}: begin\n                word_valid = f{i}_count != {c}'d0;\n                \
             word = {{{}}};\n                word_beats = f{i}_beats[f{i}_rd];\n            end\n",
            bank_read.join(", "),
            c = wa + 1
        ));
        issued.push(format!("p{i}_issue"));
        bad.push(format!("(m{i}_rvalid && m{i}_rresp != 2'd0)"));
    }
    let order_pick = match order {
        BurstOrder::InTurn => String::new(),
        BurstOrder::AnyFreePort { .. } => {
            // From each start, the ports in turn: the first free one is picked.
            let mut cases = String::new();
            for start in 0..p {
                let mut chain = String::new();
                for k in (0..p).rev() {
                    let i = (start + k) % p;
                    chain.push_str(&format!(
                        "                if (p{i}_free) begin pick = {port_bits}'d{i}; pick_ok = 1'b1; end\n"
                    ));
                }
                cases.push_str(&format!(
                    "            {port_bits}'d{start}: begin\n{chain}            end\n"
                ));
            }
            format!(
                "    always @(*) begin\n        pick = {port_bits}'d0;\n        pick_ok = 1'b0;\n        \
                 case (issue_port)\n{cases}            default: ;\n        endcase\n    end\n"
            )
        }
    };
    let text = TEMPLATE
        .replace("{{BUSY_IO}}", busy_io)
        .replace("{{ORDER_DECL}}", order_decl)
        .replace("{{ORDER_PICK}}", &order_pick)
        .replace("{{ORDER_START}}", order_start)
        .replace("{{ORDER_ISSUED}}", order_issued)
        .replace("{{ORDER_NEXT_BURST}}", order_next_burst)
        .replace("{{PORT_IO}}", &port_io)
        .replace("{{PORT_LOGIC}}", &port_logic)
        .replace("{{WORD_MUX}}", &word_mux)
        .replace("{{ISSUED}}", &issued.join(" || "))
        .replace("{{BAD_BEAT}}", &bad.join(" || "))
        .replace("{{MODULE}}", module)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{P}}", &p.to_string())
        .replace("{{P_LAST}}", &(p - 1).to_string())
        .replace("{{PB}}", &port_bits.to_string())
        .replace("{{PB_HI}}", &(port_bits - 1).to_string())
        .replace("{{CB}}", &count_bits.to_string())
        .replace("{{CB_HI}}", &(count_bits - 1).to_string())
        .replace("{{BURST}}", &burst.to_string())
        .replace("{{OUT}}", &outstanding.to_string())
        .replace("{{WORDS}}", &words.to_string())
        .replace("{{WORDS_LAST}}", &(words - 1).to_string())
        .replace("{{WA}}", &wa.to_string())
        .replace("{{WA_HI}}", &(wa - 1).to_string())
        .replace("{{WC}}", &(wa + 1).to_string())
        .replace("{{WC_HI}}", &wa.to_string())
        .replace("{{DW_HI}}", &(128 * p - 1).to_string())
        .replace("{{BB}}", &burst_bits.to_string())
        .replace("{{BB_HI}}", &(burst_bits - 1).to_string())
        .replace("{{DUE}}", &due.to_string())
        .replace("{{DB_IN}}", &due_bits.to_string())
        .replace("{{DB_HI}}", &(due_bits - 1).to_string())
        .replace("{{DB}}", &(due_bits + 1).to_string())
        .replace("{{ORD_LAST}}", &(ord - 1).to_string())
        .replace("{{OB}}", &ceil_log2(ord).max(1).to_string())
        .replace("{{OB_HI}}", &(ceil_log2(ord).max(1) - 1).to_string());
    debug_assert!(crate::bits::filled(&text), "a placeholder left");
    Ok(text)
}

const TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the stripe reader (docs/memory_ports.md). A region
// of 16-byte beats read through {{P}} port(s), bursts of {{BURST}} beats round robin,
// {{OUT}} in flight a port, out in order as words of {{P}} beats.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{PORT_IO}}{{BUSY_IO}}    // A region: its address (a multiple of 16) and beats (0: nothing, done at once).
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [63:0]  cmd_addr,
    input  wire [31:0]  cmd_beats,
    // The region in order, {{P}} beats a word (fewer only in the last); beat j of a word
    // at bits [128j+127:128j].
    output wire         out_valid,
    input  wire         out_ready,
    output wire [{{DW_HI}}:0] out_data,
    output wire [{{CB_HI}}:0]   out_beats,
    output wire         out_last,
    output wire         done,
    // A beat came back with an error response (sticky until the next command).
    output reg          error
);
    reg         busy;
    reg [63:0]  issue_addr;   // the next burst's address
    reg [31:0]  issue_left;   // beats not yet asked for
{{ORDER_DECL}}    reg [31:0]  merge_left;   // beats not yet handed out
    reg [{{BB_HI}}:0]   merge_burst;  // beats of its current burst not yet out
    wire [{{BB_HI}}:0] burst_beats = issue_left > 32'd{{BURST}} ? {{BB}}'d{{BURST}} : issue_left[{{BB_HI}}:0];
    // The part of the burst before the next 4 KiB boundary (all of it, mostly).
    wire [8:0] page_room = 9'd256 - {1'b0, issue_addr[11:4]};
    wire [{{BB_HI}}:0] first_beats = 9'(burst_beats) <= page_room ? burst_beats : page_room[{{BB_HI}}:0];
    // Words a burst of n beats fills: ceil(n / {{P}}).
    wire [{{WC_HI}}:0] burst_words = {{WC}}'((32'(burst_beats) + 32'd{{P_LAST}}) / 32'd{{P}});
    assign cmd_ready = !busy;
    assign done = !busy;
    wire issue_any = busy && issue_left != 32'd0;
    // The merge: the current burst's words from its port, then the next port's.
    reg word_valid;
    reg [{{DW_HI}}:0] word;
    reg [{{CB_HI}}:0] word_beats;
    assign out_valid = busy && word_valid;
    assign out_data = word;
    assign out_beats = word_beats;
    assign out_last = merge_left == 32'(word_beats);
    wire take = out_valid && out_ready;
{{PORT_LOGIC}}
{{ORDER_PICK}}    always @(*) begin
        word_valid = 1'b0;
        word = '0;
        word_beats = {{CB}}'d0;
        case (merge_port)
{{WORD_MUX}}            default: ;
        endcase
    end
    wire issued = {{ISSUED}};
    wire bad_beat = {{BAD_BEAT}};
    wire [31:0] merge_after = merge_left - 32'(word_beats);
    always @(posedge clk) begin
        if (rst) begin
            busy <= 1'b0;
            error <= 1'b0;
        end else if (!busy) begin
            if (cmd_valid) begin
                busy <= cmd_beats != 32'd0;
                error <= 1'b0;
                issue_addr <= cmd_addr;
                issue_left <= cmd_beats;
{{ORDER_START}}                merge_left <= cmd_beats;
                merge_burst <= cmd_beats > 32'd{{BURST}} ? {{BB}}'d{{BURST}} : cmd_beats[{{BB_HI}}:0];
            end
        end else begin
            if (issued) begin
                issue_addr <= issue_addr + (64'(burst_beats) << 4);
                issue_left <= issue_left - 32'(burst_beats);
{{ORDER_ISSUED}}            end
            if (bad_beat) error <= 1'b1;
            if (take) begin
                merge_left <= merge_after;
                if (merge_burst == {{BB}}'(word_beats)) begin
{{ORDER_NEXT_BURST}}                    merge_burst <= merge_after > 32'd{{BURST}} ? {{BB}}'d{{BURST}} : merge_after[{{BB_HI}}:0];
                end else begin
                    merge_burst <= merge_burst - {{BB}}'(word_beats);
                end
                if (merge_after == 32'd0) busy <= 1'b0;
            end
        end
    end
endmodule
`default_nettype wire
"#;

// Burst k on port k mod P; its words out port after port.
const IN_TURN_DECL: &str = "    reg [{{PB_HI}}:0]   issue_port;   // the port of the next burst
    reg [{{PB_HI}}:0]   merge_port;   // the port whose words go out now
";
const IN_TURN_ISSUE: &str =
    "    wire p{{I}}_issue = issue_any && issue_port == {{PB}}'d{{I}} && !p{{I}}_ar && p{{I}}_room;
";
const IN_TURN_START: &str = "                issue_port <= {{PB}}'d0;
                merge_port <= {{PB}}'d0;
";
const IN_TURN_ISSUED: &str = "                issue_port <= issue_port == {{PB}}'d{{P_LAST}} ? {{PB}}'d0 : issue_port + {{PB}}'d1;
";
const IN_TURN_NEXT_BURST: &str = "                    merge_port <= merge_port == {{PB}}'d{{P_LAST}} ? {{PB}}'d0 : merge_port + {{PB}}'d1;
";

// A burst on the first free port from `issue_port` on; `ord` keeps each burst's port
// in the order they were asked (every burst asked and not yet out has an entry), and
// the words go out from the port at its head.
const ANY_PORT_IO: &str =
    "    // Ports another unit wants: no burst is asked on a port while its bit is set.
    input  wire [{{P_LAST}}:0]  port_busy,
    // Reading ahead of any consumer: fewer bursts in flight a port (as many as the
    // reader was made with for this), so that other units' reads queue behind fewer.
    input  wire         reading_ahead,
";
const ANY_PORT_DECL: &str =
    "    reg [{{PB_HI}}:0]   issue_port;   // where the search for a free port starts
    reg [{{PB_HI}}:0]   pick;         // the port the next burst goes to, if `pick_ok`
    reg         pick_ok;
    reg [{{PB_HI}}:0]   ord [0:{{ORD_LAST}}];   // the ports of the bursts asked, oldest first
    reg [{{OB_HI}}:0]   ord_wr, ord_rd;
    wire [{{PB_HI}}:0]  merge_port = ord[ord_rd];   // the port whose words go out now
";
const ANY_PORT_ISSUE: &str =
    "    wire p{{I}}_free = !p{{I}}_ar && p{{I}}_room && !port_busy[{{I}}];
    wire p{{I}}_issue = issue_any && pick_ok && pick == {{PB}}'d{{I}};
";
const ANY_PORT_START: &str = "                issue_port <= {{PB}}'d0;
                ord_wr <= '0;
                ord_rd <= '0;
";
const ANY_PORT_ISSUED: &str =
    "                issue_port <= pick == {{PB}}'d{{P_LAST}} ? {{PB}}'d0 : pick + {{PB}}'d1;
                ord[ord_wr] <= pick;
                ord_wr <= ord_wr + {{OB}}'d1;
";
const ANY_PORT_NEXT_BURST: &str = "                    ord_rd <= ord_rd + {{OB}}'d1;
";

const PORT_TEMPLATE: &str = r#"
    // ---- port {{I}} ----
    reg [{{DB_HI}}:0] p{{I}}_due;       // beats asked, not yet back
    reg         p{{I}}_final;           // the region's last burst was asked here
    reg [{{WC_HI}}:0] p{{I}}_reserved;  // FIFO words promised to bursts asked or words held
    reg         p{{I}}_ar;
    reg [63:0]  p{{I}}_addr;
    reg [7:0]   p{{I}}_len;
    // A burst across a 4 KiB boundary is asked as two (AXI): the second part's beats
    // wait here; it starts on the boundary.
    reg [{{BB_HI}}:0] p{{I}}_rest;
    // Room for a whole burst more in flight: registered from `p_due` (a clock behind,
    // which the port's own address stage covers: it holds the port for a clock at least
    // after each burst asked) to keep the sum out of the issue's path.
    reg         p{{I}}_due_room;
    always @(posedge clk) p{{I}}_due_room <= {1'b0, p{{I}}_due} + {{DB}}'d{{BURST}} <= {{DUE_LIMIT}};
    wire p{{I}}_room = p{{I}}_due_room
        && {1'b0, p{{I}}_reserved} + {1'b0, burst_words} <= {1'b0, {{WC}}'d{{WORDS}}};
{{PORT_ISSUE}}
    assign m{{I}}_arvalid = p{{I}}_ar;
    assign m{{I}}_araddr = p{{I}}_addr;
    assign m{{I}}_arlen = p{{I}}_len;
    assign m{{I}}_rready = 1'b1;   // room was reserved when the burst was asked
    // Beats written into the FIFO's word at `f_wr` as they come; the word is pushed
    // when full, or with the region's last beat (bursts are whole words but the
    // region's last).
    reg [{{CB_HI}}:0] p{{I}}_have;
    wire p{{I}}_push = m{{I}}_rvalid
        && (p{{I}}_have == {{CB}}'d{{P_LAST}} || (p{{I}}_final && p{{I}}_due == {{DB_IN}}'d1));
{{BANK_DECL}}    reg [{{CB_HI}}:0] f{{I}}_beats [0:{{WORDS_LAST}}];
    reg [{{WA_HI}}:0] f{{I}}_wr, f{{I}}_rd;
    reg [{{WC_HI}}:0] f{{I}}_count;
    wire f{{I}}_pop = take && merge_port == {{PB}}'d{{I}};
    always @(posedge clk) begin
{{BANK_WRITE}}        if (p{{I}}_push) f{{I}}_beats[f{{I}}_wr] <= p{{I}}_have + {{CB}}'d1;
        if (rst || !busy) begin
            p{{I}}_due <= {{DB_IN}}'d0;
            p{{I}}_final <= 1'b0;
            p{{I}}_reserved <= {{WC}}'d0;
            p{{I}}_ar <= 1'b0;
            p{{I}}_rest <= {{BB}}'d0;
            p{{I}}_have <= {{CB}}'d0;
            f{{I}}_wr <= {{WA}}'d0;
            f{{I}}_rd <= {{WA}}'d0;
            f{{I}}_count <= {{WC}}'d0;
        end else begin
            if (p{{I}}_issue) begin
                p{{I}}_ar <= 1'b1;
                p{{I}}_addr <= issue_addr;
                p{{I}}_len <= 8'(first_beats) - 8'd1;
                p{{I}}_rest <= burst_beats - first_beats;
                if (issue_left == 32'(burst_beats)) p{{I}}_final <= 1'b1;
            end else if (m{{I}}_arready && p{{I}}_ar) begin
                if (p{{I}}_rest != {{BB}}'d0) begin
                    p{{I}}_addr <= {p{{I}}_addr[63:12] + 52'd1, 12'd0};
                    p{{I}}_len <= 8'(p{{I}}_rest) - 8'd1;
                    p{{I}}_rest <= {{BB}}'d0;
                end else p{{I}}_ar <= 1'b0;
            end
            p{{I}}_due <= p{{I}}_due + (p{{I}}_issue ? {{DB_IN}}'(burst_beats) : {{DB_IN}}'d0)
                - {{DB_IN}}'(m{{I}}_rvalid);
            p{{I}}_reserved <= p{{I}}_reserved + (p{{I}}_issue ? burst_words : {{WC}}'d0) - {{WC}}'(f{{I}}_pop);
            if (m{{I}}_rvalid) p{{I}}_have <= p{{I}}_push ? {{CB}}'d0 : p{{I}}_have + {{CB}}'d1;
            if (p{{I}}_push) f{{I}}_wr <= f{{I}}_wr + {{WA}}'d1;
            if (f{{I}}_pop) f{{I}}_rd <= f{{I}}_rd + {{WA}}'d1;
            f{{I}}_count <= f{{I}}_count + {{WC}}'(p{{I}}_push) - {{WC}}'(f{{I}}_pop);
        end
    end
"#;

pub const READ_ARBITER_MODULE: &str = "tern_read_arbiter";
pub const READ_ARBITER_FILE: &str = "tern_read_arbiter.v";

/// The read arbiter's Verilog: `masters` AXI4 read masters onto one port, address
/// requests granted round robin, at most `in_flight` bursts outstanding on the port,
/// each burst's beats routed back to the master that asked (bursts return in order, as
/// the board's ports answer them).
pub fn read_arbiter_verilog(masters: usize, in_flight: usize) -> Result<String, String> {
    let arb = Arbiter::new("read", masters, in_flight)?;
    let mb = arb.mb;
    let mut io = String::new();
    let mut r_route = String::new();
    let mut r_ready =
        String::from("    reg owner_ready;\n    always @(*) begin\n        case (owner)\n");
    for i in 0..masters {
        io.push_str(&format!(
            "    input  wire         s{i}_arvalid,\n    output wire         s{i}_arready,\n    \
             input  wire [63:0]  s{i}_araddr,\n    input  wire [7:0]   s{i}_arlen,\n    \
             output wire         s{i}_rvalid,\n    input  wire         s{i}_rready,\n    \
             output wire [127:0] s{i}_rdata,\n    output wire [1:0]   s{i}_rresp,\n    \
             output wire         s{i}_rlast,\n"
        ));
        r_route.push_str(&format!(
            "    assign s{i}_arready = grant_ok && grant == {mb}'d{i};\n    \
             assign s{i}_rvalid = m_rvalid && owner == {mb}'d{i} && owned;\n    \
             assign s{i}_rdata = m_rdata;\n    assign s{i}_rresp = m_rresp;\n    \
             assign s{i}_rlast = m_rlast;\n"
        ));
        r_ready.push_str(&format!(
            "            {mb}'d{i}: owner_ready = s{i}_rready;\n"
        ));
    }
    r_ready.push_str("            default: owner_ready = 1'b0;\n        endcase\n    end\n");
    let text = ARBITER_TEMPLATE
        .replace("{{IO}}", &io)
        .replace("{{R_ROUTE}}", &r_route)
        .replace("{{R_READY}}", &r_ready)
        .replace("{{MODULE}}", READ_ARBITER_MODULE);
    Ok(arb.fill(&text, "ar"))
}

/// What the read and the write arbiter share: their limits, the round-robin grant over
/// the masters' address requests, and the placeholders of their orders.
struct Arbiter {
    masters: usize,
    in_flight: usize,
    /// Bits of a master's index and of an order's pointer.
    mb: usize,
    fb: usize,
}

impl Arbiter {
    fn new(what: &str, masters: usize, in_flight: usize) -> Result<Self, String> {
        if !(2..=8).contains(&masters) {
            return Err(format!("{what} arbiter: {masters} masters, not 2..=8"));
        }
        if !(1..=64).contains(&in_flight) || !in_flight.is_power_of_two() {
            return Err(format!(
                "{what} arbiter: {in_flight} bursts in flight, not a power of two in 1..=64"
            ));
        }
        Ok(Arbiter {
            masters,
            in_flight,
            mb: ceil_log2(masters).max(1),
            fb: ceil_log2(in_flight).max(1),
        })
    }

    /// `text` with the grant (`{{GRANT}}`: round robin over the masters' `s{i}_{a}valid`,
    /// their requests `s{i}_{a}addr`, `s{i}_{a}len`; `a` is "ar" or "aw") and the shared
    /// placeholders filled in.
    fn fill(&self, text: &str, a: &str) -> String {
        let Arbiter {
            masters,
            in_flight,
            mb,
            fb,
        } = *self;
        let mut addr_mux = String::new();
        for i in 0..masters {
            addr_mux.push_str(&format!(
                "            {mb}'d{i}: begin want = s{i}_{a}valid; addr = s{i}_{a}addr; len = s{i}_{a}len; end\n"
            ));
        }
        let mut valid_fn =
            String::from("    function automatic valid_at(input [MB_HI:0] i);\n        case (i)\n");
        for i in 0..masters {
            valid_fn.push_str(&format!(
                "            {mb}'d{i}: valid_at = s{i}_{a}valid;\n"
            ));
        }
        valid_fn
            .push_str("            default: valid_at = 1'b0;\n        endcase\n    endfunction\n");
        // Round robin: the first master with a request after the last one granted.
        let mut pick =
            String::from("    always @(*) begin\n        grant = last;\n        found = 1'b0;\n");
        for step in 1..=masters {
            pick.push_str(&format!(
                "        if (!found && valid_at({mb}'((32'(last) + 32'd{step}) % 32'd{masters}))) begin\n            \
                 grant = {mb}'((32'(last) + 32'd{step}) % 32'd{masters});\n            found = 1'b1;\n        end\n"
            ));
        }
        pick.push_str("    end\n");
        let text = text
            .replace("{{GRANT}}", GRANT_TEMPLATE)
            .replace("{{ADDR_MUX}}", &addr_mux)
            .replace("{{VALID_FN}}", &valid_fn)
            .replace("{{PICK}}", &pick)
            .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
            .replace("{{N}}", &masters.to_string())
            .replace("MB_HI", &(mb - 1).to_string())
            .replace("{{MB}}", &mb.to_string())
            .replace("{{FLIGHT}}", &in_flight.to_string())
            .replace("{{FB}}", &fb.to_string())
            .replace("{{FB_HI}}", &(fb - 1).to_string())
            .replace("{{FC}}", &(fb + 1).to_string())
            .replace("{{FC_HI}}", &fb.to_string())
            // The orders hold 2^fb entries (two for one in flight: the pointers wrap).
            .replace("{{FLIGHT_LAST}}", &((1usize << fb) - 1).to_string());
        debug_assert!(crate::bits::filled(&text), "a placeholder left");
        text
    }
}

/// The arbiters' grant: round robin over the masters' address requests (`grant`,
/// `found`), and the granted master's request (`want`, `addr`, `len`).
const GRANT_TEMPLATE: &str = r#"    reg [MB_HI:0] last;   // the master granted last
{{VALID_FN}}    reg [MB_HI:0] grant;
    reg found;
{{PICK}}    reg want;
    reg [63:0] addr;
    reg [7:0] len;
    always @(*) begin
        want = 1'b0;
        addr = 64'd0;
        len = 8'd0;
        case (grant)
{{ADDR_MUX}}            default: ;
        endcase
    end
"#;

const ARBITER_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the read arbiter (docs/memory_ports.md). {{N}} AXI4
// read masters onto one port, round robin, {{FLIGHT}} bursts in flight at most; each
// burst's beats go back to the master that asked.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{IO}}    output reg          m_arvalid,
    input  wire         m_arready,
    output reg  [63:0]  m_araddr,
    output reg  [7:0]   m_arlen,
    input  wire         m_rvalid,
    output wire         m_rready,
    input  wire [127:0] m_rdata,
    input  wire [1:0]   m_rresp,
    input  wire         m_rlast
);
    // Who asked for each burst on the port, in order.
    reg [MB_HI:0] order [0:{{FLIGHT_LAST}}];
    reg [{{FB_HI}}:0] head, tail;
    reg [{{FC_HI}}:0] count;
{{GRANT}}    // A request is taken when the port's address stage is free and its burst has a
    // place in the order.
    wire grant_ok = found && want && !m_arvalid && count != {{FC}}'d{{FLIGHT}};
    wire [MB_HI:0] owner = order[head];
    wire owned = count != {{FC}}'d0;
{{R_READY}}    assign m_rready = owned && owner_ready;
{{R_ROUTE}}    wire beat = m_rvalid && m_rready;
    wire done_burst = beat && m_rlast;
    always @(posedge clk) begin
        if (grant_ok) order[tail] <= grant;
        if (rst) begin
            m_arvalid <= 1'b0;
            head <= {{FB}}'d0;
            tail <= {{FB}}'d0;
            count <= {{FC}}'d0;
            last <= '0;
        end else begin
            if (grant_ok) begin
                m_arvalid <= 1'b1;
                m_araddr <= addr;
                m_arlen <= len;
                last <= grant;
                tail <= tail + {{FB}}'d1;
            end else if (m_arready) m_arvalid <= 1'b0;
            if (done_burst) head <= head + {{FB}}'d1;
            count <= count + {{FC}}'(grant_ok) - {{FC}}'(done_burst);
        end
    end
endmodule
`default_nettype wire
"#;

pub const WRITE_ARBITER_MODULE: &str = "tern_write_arbiter";
pub const WRITE_ARBITER_FILE: &str = "tern_write_arbiter.v";

/// The write arbiter's Verilog: `masters` AXI4 write masters onto one port. Address
/// requests are granted round robin, at most `in_flight` bursts outstanding on the port
/// (asked and not yet answered); each burst's data follows in the order the addresses
/// were granted (AXI4 has no write interleaving), and each response goes back to the
/// master that asked (the port answers in order).
pub fn write_arbiter_verilog(masters: usize, in_flight: usize) -> Result<String, String> {
    let arb = Arbiter::new("write", masters, in_flight)?;
    let mb = arb.mb;
    let mut io = String::new();
    let mut route = String::new();
    let mut w_mux = String::new();
    let mut b_mux = String::new();
    for i in 0..masters {
        io.push_str(&format!(
            "    input  wire         s{i}_awvalid,\n    output wire         s{i}_awready,\n    \
             input  wire [63:0]  s{i}_awaddr,\n    input  wire [7:0]   s{i}_awlen,\n    \
             input  wire         s{i}_wvalid,\n    output wire         s{i}_wready,\n    \
             input  wire [127:0] s{i}_wdata,\n    input  wire [15:0]  s{i}_wstrb,\n    \
             input  wire         s{i}_wlast,\n    output wire         s{i}_bvalid,\n    \
             input  wire         s{i}_bready,\n    output wire [1:0]   s{i}_bresp,\n"
        ));
        route.push_str(&format!(
            "    assign s{i}_awready = grant_ok && grant == {mb}'d{i};\n    \
             assign s{i}_wready = w_owned && w_owner == {mb}'d{i} && m_wready;\n    \
             assign s{i}_bvalid = b_owned && b_owner == {mb}'d{i} && m_bvalid;\n    \
             assign s{i}_bresp = m_bresp;\n"
        ));
        w_mux.push_str(&format!(
            "            {mb}'d{i}: begin w_valid = s{i}_wvalid; w_data = s{i}_wdata; w_strb = s{i}_wstrb; w_last = s{i}_wlast; end\n"
        ));
        b_mux.push_str(&format!("            {mb}'d{i}: b_ready = s{i}_bready;\n"));
    }
    let text = WRITE_ARBITER_TEMPLATE
        .replace("{{IO}}", &io)
        .replace("{{W_MUX}}", &w_mux)
        .replace("{{B_MUX}}", &b_mux)
        .replace("{{ROUTE}}", &route)
        .replace("{{MODULE}}", WRITE_ARBITER_MODULE);
    Ok(arb.fill(&text, "aw"))
}

const WRITE_ARBITER_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the write arbiter (docs/memory_ports.md). {{N}} AXI4
// write masters onto one port, round robin, {{FLIGHT}} bursts in flight at most; data in
// the order the addresses were granted, each response back to the master that asked.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
{{IO}}    output reg          m_awvalid,
    input  wire         m_awready,
    output reg  [63:0]  m_awaddr,
    output reg  [7:0]   m_awlen,
    output wire         m_wvalid,
    input  wire         m_wready,
    output wire [127:0] m_wdata,
    output wire [15:0]  m_wstrb,
    output wire         m_wlast,
    input  wire         m_bvalid,
    output wire         m_bready,
    input  wire [1:0]   m_bresp
);
    // Who was granted each burst, in order: once for its data, once for its response.
    reg [MB_HI:0] w_order [0:{{FLIGHT_LAST}}];
    reg [MB_HI:0] b_order [0:{{FLIGHT_LAST}}];
    reg [{{FB_HI}}:0] w_head, b_head, tail;
    reg [{{FC_HI}}:0] w_count, b_count;
{{GRANT}}    // A request is taken when the port's address stage is free and the burst has a
    // place in both orders (a response is the last thing of a burst: b_count bounds both).
    wire grant_ok = found && want && !m_awvalid && b_count != {{FC}}'d{{FLIGHT}};
    wire [MB_HI:0] w_owner = w_order[w_head];
    wire w_owned = w_count != {{FC}}'d0;
    wire [MB_HI:0] b_owner = b_order[b_head];
    wire b_owned = b_count != {{FC}}'d0;
    reg w_valid, w_last;
    reg [127:0] w_data;
    reg [15:0] w_strb;
    always @(*) begin
        w_valid = 1'b0;
        w_data = 128'd0;
        w_strb = 16'd0;
        w_last = 1'b0;
        case (w_owner)
{{W_MUX}}            default: ;
        endcase
    end
    reg b_ready;
    always @(*) begin
        case (b_owner)
{{B_MUX}}            default: b_ready = 1'b0;
        endcase
    end
    assign m_wvalid = w_owned && w_valid;
    assign m_wdata = w_data;
    assign m_wstrb = w_strb;
    assign m_wlast = w_last;
    assign m_bready = b_owned && b_ready;
{{ROUTE}}    wire w_done = m_wvalid && m_wready && m_wlast;
    wire b_done = m_bvalid && m_bready;
    always @(posedge clk) begin
        if (grant_ok) begin
            w_order[tail] <= grant;
            b_order[tail] <= grant;
        end
        if (rst) begin
            m_awvalid <= 1'b0;
            w_head <= {{FB}}'d0;
            b_head <= {{FB}}'d0;
            tail <= {{FB}}'d0;
            w_count <= {{FC}}'d0;
            b_count <= {{FC}}'d0;
            last <= '0;
        end else begin
            if (grant_ok) begin
                m_awvalid <= 1'b1;
                m_awaddr <= addr;
                m_awlen <= len;
                last <= grant;
                tail <= tail + {{FB}}'d1;
            end else if (m_awready) m_awvalid <= 1'b0;
            if (w_done) w_head <= w_head + {{FB}}'d1;
            if (b_done) b_head <= b_head + {{FB}}'d1;
            w_count <= w_count + {{FC}}'(grant_ok) - {{FC}}'(w_done);
            b_count <= b_count + {{FC}}'(grant_ok) - {{FC}}'(b_done);
        end
    end
endmodule
`default_nettype wire
"#;

pub const ROW_WRITER_MODULE: &str = "tern_row_writer";
pub const ROW_WRITER_FILE: &str = "tern_row_writer.v";

/// The row writer's Verilog: the write side's counterpart of a one-port stripe reader.
/// A command names a region (address, beats); its beats come in as a stream and go out
/// on one AXI4 write port in bursts of at most 16 beats that never cross a 4 KiB
/// boundary. A burst's address is asked only when all its beats are buffered (`depth`
/// beats of buffer, a power of two ≥ 16), so a port shared through a write arbiter never
/// waits on this writer's data mid-burst.
pub fn row_writer_verilog(depth: usize) -> Result<String, String> {
    if !(16..=256).contains(&depth) || !depth.is_power_of_two() {
        return Err(format!(
            "row writer: a buffer of {depth} beats, not a power of two in 16..=256"
        ));
    }
    let ab = ceil_log2(depth);
    Ok(ROW_WRITER_TEMPLATE
        .replace("{{MODULE}}", ROW_WRITER_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{DEPTH}}", &depth.to_string())
        .replace("{{AB}}", &ab.to_string())
        .replace("{{CB}}", &(ab + 1).to_string()))
}

const ROW_WRITER_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the row writer (docs/memory_ports.md). A region's
// beats in as a stream, out on one AXI4 write port in bursts of at most 16 beats, none
// across a 4 KiB boundary, each asked once its beats are buffered ({{DEPTH}} beats).
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
    // A region: its address (a multiple of 16) and beats (0: nothing, done at once).
    input  wire         cmd_valid,
    output wire         cmd_ready,
    input  wire [63:0]  cmd_addr,
    input  wire [31:0]  cmd_beats,
    // The region's beats in order, each with its byte strobes (bit i: byte i).
    input  wire         in_valid,
    output wire         in_ready,
    input  wire [127:0] in_data,
    input  wire [15:0]  in_strb,
    output reg          m_awvalid,
    input  wire         m_awready,
    output reg  [63:0]  m_awaddr,
    output reg  [7:0]   m_awlen,
    output wire         m_wvalid,
    input  wire         m_wready,
    output wire [127:0] m_wdata,
    output wire [15:0]  m_wstrb,
    output wire         m_wlast,
    input  wire         m_bvalid,
    output wire         m_bready,
    input  wire [1:0]   m_bresp,
    // Every beat written and answered; `error`: a response was not OKAY (sticky until
    // the next command).
    output wire         done,
    output reg          error
);
    reg         busy;
    reg [31:0]  in_left;     // beats still to come in
    reg [31:0]  ask_left;    // beats whose burst is not yet asked
    reg [63:0]  ask_addr;
    reg [31:0]  open;        // bursts asked, not yet answered
    // The buffer: beats in, not yet sent.
    reg [143:0] buffer [0:{{DEPTH}}-1];
    reg [{{AB}}-1:0] wr, rd;
    reg [{{CB}}-1:0] held;       // beats in the buffer
    reg [{{CB}}-1:0] promised;   // of those, beats of bursts already asked
    // Bursts asked and their beats, in order, for the data channel.
    reg [4:0]   burst_beats [0:15];
    reg [3:0]   b_wr, b_rd;
    reg [4:0]   bursts;          // asked, data not all sent
    reg [4:0]   sent;            // beats of the oldest burst sent
    // The next burst: at most 16 beats, what is left, and none across 4 KiB.
    wire [8:0]  page_room = 9'd256 - {1'b0, ask_addr[11:4]};
    wire [4:0]  next_len = ask_left >= 32'd16 && page_room >= 9'd16 ? 5'd16
                         : (32'(page_room) < ask_left ? page_room[4:0] : ask_left[4:0]);
    wire [{{CB}}-1:0] unpromised = held - promised;
    wire ask = busy && !m_awvalid && ask_left != 32'd0 && bursts != 5'd16
             && {{CB}}'(next_len) <= unpromised;
    assign cmd_ready = !busy;
    assign done = !busy;
    assign in_ready = busy && in_left != 32'd0 && held != {{CB}}'d{{DEPTH}};
    wire push = in_valid && in_ready;
    assign m_wvalid = bursts != 5'd0;
    assign m_wdata = buffer[rd][127:0];
    assign m_wstrb = buffer[rd][143:128];
    assign m_wlast = sent + 5'd1 == burst_beats[b_rd];
    wire beat_out = m_wvalid && m_wready;
    assign m_bready = 1'b1;
    wire answered = m_bvalid;
    always @(posedge clk) begin
        if (push) buffer[wr] <= {in_strb, in_data};
        if (ask) burst_beats[b_wr] <= next_len;
        if (rst) begin
            busy <= 1'b0;
            error <= 1'b0;
            m_awvalid <= 1'b0;
        end else if (!busy) begin
            if (cmd_valid) begin
                busy <= cmd_beats != 32'd0;
                error <= 1'b0;
                in_left <= cmd_beats;
                ask_left <= cmd_beats;
                ask_addr <= cmd_addr;
                open <= 32'd0;
                wr <= '0;
                rd <= '0;
                held <= '0;
                promised <= '0;
                b_wr <= 4'd0;
                b_rd <= 4'd0;
                bursts <= 5'd0;
                sent <= 5'd0;
            end
        end else begin
            if (push) begin
                wr <= wr + {{AB}}'d1;
                in_left <= in_left - 32'd1;
            end
            if (ask) begin
                m_awvalid <= 1'b1;
                m_awaddr <= ask_addr;
                m_awlen <= 8'(next_len) - 8'd1;
                ask_addr <= ask_addr + (64'(next_len) << 4);
                ask_left <= ask_left - 32'(next_len);
                b_wr <= b_wr + 4'd1;
            end else if (m_awready) m_awvalid <= 1'b0;
            if (beat_out) begin
                rd <= rd + {{AB}}'d1;
                if (m_wlast) begin
                    sent <= 5'd0;
                    b_rd <= b_rd + 4'd1;
                end else sent <= sent + 5'd1;
            end
            held <= held + {{CB}}'(push) - {{CB}}'(beat_out);
            promised <= promised + (ask ? {{CB}}'(next_len) : {{CB}}'d0) - {{CB}}'(beat_out);
            bursts <= bursts + 5'(ask) - 5'(beat_out && m_wlast);
            open <= open + 32'(ask) - 32'(answered);
            if (answered && m_bresp != 2'd0) error <= 1'b1;
            if (in_left == 32'd0 && ask_left == 32'd0 && bursts == 5'd0 && open == 32'd0
                && !m_awvalid)
                busy <= 1'b0;
        end
    end
endmodule
`default_nettype wire
"#;

pub const READ_PORTS_MODULE: &str = "tern_read_ports";
pub const READ_PORTS_FILE: &str = "tern_read_ports.v";

/// `readers` stripe readers of `shape` sharing the board's `shape.ports` ports, a read
/// arbiter on each port (`in_flight` bursts outstanding): how several units stream from
/// the same memory at once. One file: the wrapper, the reader, the arbiter.
pub fn read_ports_verilog(
    readers: usize,
    shape: StripeShape,
    in_flight: usize,
) -> Result<String, String> {
    let reader = stripe_reader_verilog(shape)?;
    let arbiter = read_arbiter_verilog(readers, in_flight)?;
    let p = shape.ports;
    let dw = 128 * p - 1;
    let cb = ceil_log2(p + 1) - 1;
    let mut io = String::new();
    let mut body = String::new();
    for r in 0..readers {
        io.push_str(&format!(
            "    input  wire         r{r}_cmd_valid,\n    output wire         r{r}_cmd_ready,\n    \
             input  wire [63:0]  r{r}_cmd_addr,\n    input  wire [31:0]  r{r}_cmd_beats,\n    \
             output wire         r{r}_out_valid,\n    input  wire         r{r}_out_ready,\n    \
             output wire [{dw}:0] r{r}_out_data,\n    output wire [{cb}:0]   r{r}_out_beats,\n    \
             output wire         r{r}_out_last,\n    output wire         r{r}_done,\n    \
             output wire         r{r}_error,\n"
        ));
        let mut conn = format!(
            "    {STRIPE_READER_MODULE} reader{r} (\n        .clk(clk), .rst(rst),\n        \
             .cmd_valid(r{r}_cmd_valid), .cmd_ready(r{r}_cmd_ready), .cmd_addr(r{r}_cmd_addr), \
             .cmd_beats(r{r}_cmd_beats),\n        .out_valid(r{r}_out_valid), .out_ready(r{r}_out_ready), \
             .out_data(r{r}_out_data), .out_beats(r{r}_out_beats), .out_last(r{r}_out_last),\n        \
             .done(r{r}_done), .error(r{r}_error)"
        );
        for q in 0..p {
            for (sig, w) in [
                ("arvalid", 0),
                ("arready", 0),
                ("araddr", 63),
                ("arlen", 7),
                ("rvalid", 0),
                ("rready", 0),
                ("rdata", 127),
                ("rresp", 1),
                ("rlast", 0),
            ] {
                if r == 0 {
                    let decl = if w == 0 {
                        format!("    wire r_{sig}_{q}_{{R}};\n")
                    } else {
                        format!("    wire [{w}:0] r_{sig}_{q}_{{R}};\n")
                    };
                    for rr in 0..readers {
                        body.push_str(&decl.replace("{R}", &rr.to_string()));
                    }
                }
                conn.push_str(&format!(",\n        .m{q}_{sig}(r_{sig}_{q}_{r})"));
            }
        }
        conn.push_str("\n    );\n");
        body.push_str(&conn);
    }
    for q in 0..p {
        io.push_str(&format!(
            "    output wire         m{q}_arvalid,\n    input  wire         m{q}_arready,\n    \
             output wire [63:0]  m{q}_araddr,\n    output wire [7:0]   m{q}_arlen,\n    \
             input  wire         m{q}_rvalid,\n    output wire         m{q}_rready,\n    \
             input  wire [127:0] m{q}_rdata,\n    input  wire [1:0]   m{q}_rresp,\n    \
             input  wire         m{q}_rlast{}\n",
            if q + 1 == p { "" } else { "," }
        ));
        let mut conn =
            format!("    {READ_ARBITER_MODULE} arbiter{q} (\n        .clk(clk), .rst(rst)");
        for r in 0..readers {
            for sig in [
                "arvalid", "arready", "araddr", "arlen", "rvalid", "rready", "rdata", "rresp",
                "rlast",
            ] {
                conn.push_str(&format!(",\n        .s{r}_{sig}(r_{sig}_{q}_{r})"));
            }
        }
        for sig in [
            "arvalid", "arready", "araddr", "arlen", "rvalid", "rready", "rdata", "rresp", "rlast",
        ] {
            conn.push_str(&format!(",\n        .m_{sig}(m{q}_{sig})"));
        }
        conn.push_str("\n    );\n");
        body.push_str(&conn);
    }
    Ok(format!(
        "// Generated by tern {}: {readers} stripe readers sharing {p} memory port(s), a read \
         arbiter on each (docs/memory_ports.md).\n`default_nettype none\nmodule {READ_PORTS_MODULE} (\n    \
         input  wire         clk,\n    input  wire         rst,\n{io});\n{body}endmodule\n\
         `default_nettype wire\n/* verilator lint_off DECLFILENAME */ // the blocks it is made of\n{reader}{arbiter}",
        env!("CARGO_PKG_VERSION")
    ))
}

pub const WRITE_GUARD_MODULE: &str = "tern_write_guard";

/// The write guard's Verilog: between a master's AXI4 write channels and the port, it
/// lets through only bursts that lie wholly inside one of two windows
/// (`[lo0, hi0)`, `[lo1, hi1)`: the program's scratch and, for the attention unit, the KV
/// caches) and answers any other with SLVERR after taking its data, writing nothing. A
/// unit then stops with an error response (the one top's code 21): a corrupted program
/// cannot make the accelerator write outside the regions its header declares.
/// The write guard's Verilog for a memory whose every address and end fit in
/// `address_bits` bits (12..=63): its comparisons are that wide; any address or bound
/// with a bit above them set lies beyond memory and is treated so.
pub fn write_guard_verilog(address_bits: usize) -> String {
    assert!(
        (12..=63).contains(&address_bits),
        "a write guard's addresses of {address_bits} bits"
    );
    WRITE_GUARD_TEMPLATE
        .replace("{{MODULE}}", WRITE_GUARD_MODULE)
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{AB}}", &address_bits.to_string())
        .replace("{{AB_HI}}", &(address_bits - 1).to_string())
        .replace("{{AB1}}", &(address_bits + 1).to_string())
}

const WRITE_GUARD_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the write guard (docs/accelerator.md): a master's write
// bursts pass only if they lie inside [lo0, hi0) or [lo1, hi1); any other is taken, its
// data dropped and answered with SLVERR.
`default_nettype none
module {{MODULE}} (
    input  wire         clk,
    input  wire         rst,
    input  wire [63:0]  lo0,
    input  wire [63:0]  hi0,
    input  wire [63:0]  lo1,
    input  wire [63:0]  hi1,
    input  wire         s_awvalid,
    output wire         s_awready,
    input  wire [63:0]  s_awaddr,
    input  wire [7:0]   s_awlen,
    input  wire         s_wvalid,
    output wire         s_wready,
    input  wire [127:0] s_wdata,
    input  wire [15:0]  s_wstrb,
    input  wire         s_wlast,
    output wire         s_bvalid,
    input  wire         s_bready,
    output wire [1:0]   s_bresp,
    output wire         m_awvalid,
    input  wire         m_awready,
    output wire [63:0]  m_awaddr,
    output wire [7:0]   m_awlen,
    output wire         m_wvalid,
    input  wire         m_wready,
    output wire [127:0] m_wdata,
    output wire [15:0]  m_wstrb,
    output wire         m_wlast,
    input  wire         m_bvalid,
    output wire         m_bready,
    input  wire [1:0]   m_bresp
);
    // Memory's addresses and end fit in {{AB}} bits: the comparisons are that wide. A
    // burst with a higher bit set lies beyond memory (outside every region inside it); a
    // region starting beyond memory holds no burst inside it; one ending beyond memory
    // (a saturated end) ends, for a burst inside memory, nowhere.
    wire        aw_far = s_awaddr[63:{{AB}}] != '0;
    wire        lo0_far = lo0[63:{{AB}}] != '0, hi0_far = hi0[63:{{AB}}] != '0;
    wire        lo1_far = lo1[63:{{AB}}] != '0, hi1_far = hi1[63:{{AB}}] != '0;
    // The burst's end, a bit wider: no address wraps.
    wire [{{AB}}:0] aw_end = {1'b0, s_awaddr[{{AB_HI}}:0]} + {{AB1}}'({s_awlen, 4'd0}) + {{AB1}}'d16;
    wire in0 = !aw_far && !lo0_far && s_awaddr[{{AB_HI}}:0] >= lo0[{{AB_HI}}:0]
        && (hi0_far || aw_end <= {1'b0, hi0[{{AB_HI}}:0]});
    wire in1 = !aw_far && !lo1_far && s_awaddr[{{AB_HI}}:0] >= lo1[{{AB_HI}}:0]
        && (hi1_far || aw_end <= {1'b0, hi1[{{AB_HI}}:0]});
    wire pass = in0 || in1;
    // Per burst asked, in order: whether its data passes (1) or is dropped (0).
    reg        order [0:15];
    reg [3:0]  head, tail;
    reg [4:0]  count;
    wire       room = count != 5'd16;
    assign m_awvalid = s_awvalid && pass && room;
    assign m_awaddr = s_awaddr;
    assign m_awlen = s_awlen;
    assign s_awready = room && (pass ? m_awready : 1'b1);
    wire       aw_take = s_awvalid && s_awready;
    wire       w_any = count != 5'd0;
    wire       w_pass = order[head];
    assign m_wvalid = s_wvalid && w_any && w_pass;
    assign m_wdata = s_wdata;
    assign m_wstrb = s_wstrb;
    assign m_wlast = s_wlast;
    assign s_wready = w_any && (w_pass ? m_wready : 1'b1);
    wire       w_take = s_wvalid && s_wready;
    wire       burst_done = w_take && s_wlast;
    // Dropped bursts' responses, owed once their data is taken.
    reg [4:0]  owed;
    assign s_bvalid = m_bvalid || owed != 5'd0;
    assign s_bresp = m_bvalid ? m_bresp : 2'b10;
    assign m_bready = s_bready;
    wire       owed_paid = !m_bvalid && owed != 5'd0 && s_bready;
    always @(posedge clk) begin
        if (aw_take) order[tail] <= pass;
        if (rst) begin
            head <= 4'd0;
            tail <= 4'd0;
            count <= 5'd0;
            owed <= 5'd0;
        end else begin
            if (aw_take) tail <= tail + 4'd1;
            if (burst_done) head <= head + 4'd1;
            count <= count + {4'd0, aw_take} - {4'd0, burst_done};
            owed <= owed + {4'd0, burst_done && !w_pass} - {4'd0, owed_paid};
        end
    end
endmodule
`default_nettype wire

"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked() {
        let ok = StripeShape {
            ports: 4,
            burst: 16,
            outstanding: 4,
        };
        assert!(stripe_reader_verilog(ok).is_ok());
        for bad in [
            StripeShape { ports: 0, ..ok },
            StripeShape { ports: 3, ..ok },
            StripeShape { burst: 32, ..ok },
            StripeShape {
                outstanding: 0,
                ..ok
            },
        ] {
            assert!(stripe_reader_verilog(bad).is_err(), "{bad:?}");
        }
        // The any-port reader's depth while reading ahead: 1 to all of its bursts.
        for ahead in [1, 4] {
            let v = any_port_reader_verilog(ok, ahead, "r").unwrap();
            assert!(v.contains(&format!("(reading_ahead ? 8'd{} : 8'd64)", 16 * ahead)));
        }
        for ahead in [0, 5] {
            let e = any_port_reader_verilog(ok, ahead, "r").unwrap_err();
            assert!(e.contains("reading ahead"), "{e}");
        }
    }

    #[test]
    fn arbiters_refuse_what_they_cannot_be() {
        for (masters, in_flight) in [(1, 4), (9, 4), (2, 0), (2, 3), (2, 128)] {
            let read = read_arbiter_verilog(masters, in_flight).unwrap_err();
            let write = write_arbiter_verilog(masters, in_flight).unwrap_err();
            for e in [read, write] {
                let named = if (2..=8).contains(&masters) {
                    "in flight"
                } else {
                    "masters"
                };
                assert!(
                    e.contains(named),
                    "{masters} masters, {in_flight} in flight: {e}"
                );
            }
        }
        assert!(write_arbiter_verilog(3, 8).is_ok());
    }
}
