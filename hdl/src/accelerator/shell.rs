//! The one top's shell: `tern_accelerator`, the core behind one AXI4-Lite control port
//! and an interrupt, with one AXI4 master per memory port (docs/accelerator.md,
//! "Shell"). Its register map is [`REGISTERS`]; `regmap.md` and `regmap.json` are
//! written from it.
//!
//! A decoded token is one register write: `STEP` takes the token id and its position,
//! empties the pass's ids, pushes the token and starts the pass. A prompt is the ids
//! pushed through `TOKEN`, the first position in `POSITION`, then `ap_start`. The pass
//! ends with `ap_done`, the interrupt (when enabled) and the next token in `NEXT_TOKEN`.

use crate::top::regmap::{Access, Field, Kind, Register};

pub const SHELL_MODULE: &str = "tern_accelerator";
pub const SHELL_FILE: &str = "tern_accelerator.v";
/// What `HW_ID` reads: "TERN" in ASCII (as the Vitis-style tops).
pub const HW_ID_VALUE: u32 = crate::top::regmap::HW_ID_VALUE;
/// Bits of `STEP`: the token id below, its position above.
pub const STEP_TOKEN_BITS: u32 = 17;
pub const STEP_POSITION_BITS: u32 = 15;

pub const CONTROL: u32 = 0x00;
pub const GIE: u32 = 0x04;
pub const IER: u32 = 0x08;
pub const ISR: u32 = 0x0C;
pub const PROGRAM: u32 = 0x10;
pub const PROGRAM_HI: u32 = 0x14;
pub const POSITION: u32 = 0x18;
pub const TOKEN: u32 = 0x1C;
pub const STEP: u32 = 0x20;
pub const CLEAR: u32 = 0x24;
pub const NEXT_TOKEN: u32 = 0x28;
pub const ERROR_CODE: u32 = 0x2C;
pub const ERROR_COMMAND: u32 = 0x30;
pub const COMMANDS_RUN: u32 = 0x34;
pub const CLOCKS: u32 = 0x38;
pub const CLOCKS_HI: u32 = 0x3C;
pub const MATMUL_CLOCKS: u32 = 0x40;
pub const ATTENTION_CLOCKS: u32 = 0x44;
pub const VECTOR_CLOCKS: u32 = 0x48;
pub const LM_HEAD_CLOCKS: u32 = 0x4C;
pub const HW_ID: u32 = 0x50;
pub const DESIGN_ID: u32 = 0x54;
pub const MEMORY_MIB: u32 = 0x58;
pub const MEMORY_BASE: u32 = 0x5C;
pub const MEMORY_BASE_HI: u32 = 0x60;

const fn word(name: &'static str, access: Access, doc: &'static str) -> [Field; 1] {
    [Field {
        name,
        bit: 0,
        width: 32,
        access,
        doc,
    }]
}

const fn bit(name: &'static str, bit: u32, access: Access, doc: &'static str) -> Field {
    Field {
        name,
        bit,
        width: 1,
        access,
        doc,
    }
}

use Access::*;

const CONTROL_FIELDS: [Field; 4] = [
    bit(
        "ap_start",
        0,
        WriteOneToStart,
        "write 1 to start a pass with the ids pushed (TOKEN) at POSITION; reads 1 until it is taken",
    ),
    bit(
        "ap_done",
        1,
        ClearOnRead,
        "the last pass ended: NEXT_TOKEN, or ERROR_CODE",
    ),
    bit("ap_idle", 2, ReadOnly, "no pass in progress"),
    bit("ap_ready", 3, ClearOnRead, "set with ap_done"),
];
const GIE_FIELDS: [Field; 1] = [bit(
    "enable",
    0,
    ReadWrite,
    "drive the interrupt line when any enabled status bit is set",
)];
const IER_FIELDS: [Field; 1] = [bit("done", 0, ReadWrite, "interrupt on ap_done")];
const ISR_FIELDS: [Field; 1] = [bit("done", 0, ToggleOnWrite, "ap_done interrupt pending")];
const STEP_FIELDS: [Field; 2] = [
    Field {
        name: "token",
        bit: 0,
        width: STEP_TOKEN_BITS,
        access: WriteToAct,
        doc: "a decoded token's id: the ids are emptied, this one pushed and a pass started",
    },
    Field {
        name: "position",
        bit: STEP_TOKEN_BITS,
        width: STEP_POSITION_BITS,
        access: WriteToAct,
        doc: "its position (written to POSITION)",
    },
];

pub const REGISTERS: &[Register] = &[
    Register {
        name: "CONTROL",
        offset: CONTROL,
        kind: Kind::Control,
        fields: &CONTROL_FIELDS,
        doc: "pass control (Vitis ap_ctrl_hs)",
    },
    Register {
        name: "GIE",
        offset: GIE,
        kind: Kind::GlobalInterruptEnable,
        fields: &GIE_FIELDS,
        doc: "global interrupt enable",
    },
    Register {
        name: "IER",
        offset: IER,
        kind: Kind::InterruptEnable,
        fields: &IER_FIELDS,
        doc: "IP interrupt enable",
    },
    Register {
        name: "ISR",
        offset: ISR,
        kind: Kind::InterruptStatus,
        fields: &ISR_FIELDS,
        doc: "IP interrupt status",
    },
    Register {
        name: "PROGRAM",
        offset: PROGRAM,
        kind: Kind::Pointer,
        fields: &word(
            "address",
            ReadWrite,
            "the program's byte address (low word), a multiple of 128 (docs/program.md)",
        ),
        doc: "argument: the program (64-bit pointer, low word)",
    },
    Register {
        name: "PROGRAM_HI",
        offset: PROGRAM_HI,
        kind: Kind::Pointer,
        fields: &word("address_hi", ReadWrite, "bits 63:32 of the address"),
        doc: "argument: the program (high word)",
    },
    Register {
        name: "POSITION",
        offset: POSITION,
        kind: Kind::Argument,
        fields: &word(
            "position",
            ReadWrite,
            "the position of the pass's first token",
        ),
        doc: "argument: the first position",
    },
    Register {
        name: "TOKEN",
        offset: TOKEN,
        kind: Kind::Status,
        fields: &word(
            "id",
            WriteToAct,
            "a write pushes a token id for the next pass (at most the sequencer's id buffer); reads: ids pushed",
        ),
        doc: "the pass's token ids, one a write",
    },
    Register {
        name: "STEP",
        offset: STEP,
        kind: Kind::Status,
        fields: &STEP_FIELDS,
        doc: "a decoded token in one write",
    },
    Register {
        name: "CLEAR",
        offset: CLEAR,
        kind: Kind::Status,
        fields: &word("any", WriteToAct, "a write empties the pushed ids"),
        doc: "empty the ids",
    },
    Register {
        name: "NEXT_TOKEN",
        offset: NEXT_TOKEN,
        kind: Kind::Status,
        fields: &word("id", ReadOnly, "the last pass's next token (greedy, on the fabric)"),
        doc: "the result",
    },
    Register {
        name: "ERROR_CODE",
        offset: ERROR_CODE,
        kind: Kind::Status,
        fields: &word(
            "code",
            ReadOnly,
            "0, or why the last pass ended without a token (docs/program.md, \"Errors\")",
        ),
        doc: "the last pass's error",
    },
    Register {
        name: "ERROR_COMMAND",
        offset: ERROR_COMMAND,
        kind: Kind::Status,
        fields: &word("index", ReadOnly, "the command the error names (all ones: none)"),
        doc: "the failing command",
    },
    Register {
        name: "COMMANDS_RUN",
        offset: COMMANDS_RUN,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "commands the last pass ran"),
        doc: "commands run",
    },
    Register {
        name: "CLOCKS",
        offset: CLOCKS,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "the last pass's clocks (low word)"),
        doc: "a pass's clocks",
    },
    Register {
        name: "CLOCKS_HI",
        offset: CLOCKS_HI,
        kind: Kind::Status,
        fields: &word("count_hi", ReadOnly, "bits 63:32"),
        doc: "a pass's clocks (high word)",
    },
    Register {
        name: "MATMUL_CLOCKS",
        offset: MATMUL_CLOCKS,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "clocks the matmul unit ran (low 32 bits)"),
        doc: "per-unit clocks",
    },
    Register {
        name: "ATTENTION_CLOCKS",
        offset: ATTENTION_CLOCKS,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "clocks the attention unit ran"),
        doc: "per-unit clocks",
    },
    Register {
        name: "VECTOR_CLOCKS",
        offset: VECTOR_CLOCKS,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "clocks the vector unit ran"),
        doc: "per-unit clocks",
    },
    Register {
        name: "LM_HEAD_CLOCKS",
        offset: LM_HEAD_CLOCKS,
        kind: Kind::Status,
        fields: &word("count", ReadOnly, "clocks the LM-head unit ran"),
        doc: "per-unit clocks",
    },
    Register {
        name: "HW_ID",
        offset: HW_ID,
        kind: Kind::Status,
        fields: &word("id", ReadOnly, "0x5445524E (\"TERN\")"),
        doc: "hardware id",
    },
    Register {
        name: "DESIGN_ID",
        offset: DESIGN_ID,
        kind: Kind::Status,
        fields: &word(
            "id",
            ReadOnly,
            "the accelerator's design id: programs built for another are refused",
        ),
        doc: "design id",
    },
    Register {
        name: "MEMORY_MIB",
        offset: MEMORY_MIB,
        kind: Kind::Status,
        fields: &word("mib", ReadOnly, "memory the accelerator addresses (MiB)"),
        doc: "memory",
    },
    Register {
        name: "MEMORY_BASE",
        offset: MEMORY_BASE,
        kind: Kind::Argument,
        fields: &word(
            "base",
            ReadWrite,
            "added to every address the memory ports send (low word); 0 after reset",
        ),
        doc: "where the accelerator's memory starts on the bus (a host's buffer)",
    },
    Register {
        name: "MEMORY_BASE_HI",
        offset: MEMORY_BASE_HI,
        kind: Kind::Argument,
        fields: &word("base", ReadWrite, "the base's high word"),
        doc: "where the accelerator's memory starts on the bus (high word)",
    },
];

/// The register map as Markdown.
pub fn markdown() -> String {
    crate::top::regmap::markdown_table(
        "tern one-top register map",
        "Generated from `tern-hdl::accelerator::shell`. ",
        &REGISTERS.iter().collect::<Vec<_>>(),
    )
}

/// The register map as JSON.
pub fn json() -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "format": "tern-regmap",
        "version": 3,
        "engine": "one-top",
        "window_bytes": crate::top::regmap::WINDOW_BYTES,
        "registers": REGISTERS,
    }))
    .expect("the register map serialises")
}

/// The shell's Verilog for a core on `ports` memory ports, design `design`, `memory_mib`
/// MiB of memory.
pub fn shell_verilog(ports: usize, design: u32, memory_mib: u64) -> String {
    let mut io = String::new();
    let mut core_ports = String::new();
    let mut tie = String::new();
    for q in 0..ports {
        io.push_str(&format!(
            "    // Memory port {q} (AXI4, 128-bit data, INCR bursts; the board's HP{q}).\n\
             \x20   output wire         m{q}_arvalid,\n    input  wire         m{q}_arready,\n\
             \x20   output wire [63:0]  m{q}_araddr,\n    output wire [7:0]   m{q}_arlen,\n\
             \x20   output wire [2:0]   m{q}_arsize,\n    output wire [1:0]   m{q}_arburst,\n\
             \x20   output wire [0:0]   m{q}_arid,\n\
             \x20   input  wire         m{q}_rvalid,\n    output wire         m{q}_rready,\n\
             \x20   input  wire [127:0] m{q}_rdata,\n    input  wire [1:0]   m{q}_rresp,\n\
             \x20   input  wire         m{q}_rlast,\n\
             \x20   /* verilator lint_off UNUSEDSIGNAL */ // ids: one stream a port\n\
             \x20   input  wire [0:0]   m{q}_rid,\n    input  wire [0:0]   m{q}_bid,\n\
             \x20   /* verilator lint_on UNUSEDSIGNAL */\n\
             \x20   output wire         m{q}_awvalid,\n    input  wire         m{q}_awready,\n\
             \x20   output wire [63:0]  m{q}_awaddr,\n    output wire [7:0]   m{q}_awlen,\n\
             \x20   output wire [2:0]   m{q}_awsize,\n    output wire [1:0]   m{q}_awburst,\n\
             \x20   output wire [0:0]   m{q}_awid,\n\
             \x20   output wire         m{q}_wvalid,\n    input  wire         m{q}_wready,\n\
             \x20   output wire [127:0] m{q}_wdata,\n    output wire [15:0]  m{q}_wstrb,\n\
             \x20   output wire         m{q}_wlast,\n\
             \x20   input  wire         m{q}_bvalid,\n    output wire         m{q}_bready,\n\
             \x20   input  wire [1:0]   m{q}_bresp,\n"
        ));
        for sig in [
            "arvalid", "arready", "arlen", "rvalid", "rready", "rdata", "rresp", "rlast",
        ] {
            core_ports.push_str(&format!(",\n        .m{q}_{sig}(m{q}_{sig})"));
        }
        // The core addresses its memory from 0; the bus sees it at MEMORY_BASE.
        core_ports.push_str(&format!(",\n        .m{q}_araddr(core_m{q}_araddr)"));
        tie.push_str(&format!(
            "    wire [63:0] core_m{q}_araddr;\n    assign m{q}_araddr = core_m{q}_araddr + memory_base;\n"
        ));
        tie.push_str(&format!(
            "    assign m{q}_arsize = 3'd4;\n    assign m{q}_arburst = 2'b01;\n    assign m{q}_arid = 1'b0;\n\
             \x20   assign m{q}_awsize = 3'd4;\n    assign m{q}_awburst = 2'b01;\n    assign m{q}_awid = 1'b0;\n"
        ));
        if q > 0 {
            // Only port 0 is written.
            tie.push_str(&format!(
                "    assign m{q}_awvalid = 1'b0;\n    assign m{q}_awaddr = 64'd0;\n    assign m{q}_awlen = 8'd0;\n\
                 \x20   assign m{q}_wvalid = 1'b0;\n    assign m{q}_wdata = 128'd0;\n    assign m{q}_wstrb = 16'd0;\n\
                 \x20   assign m{q}_wlast = 1'b0;\n    assign m{q}_bready = 1'b1;\n\
                 \x20   /* verilator lint_off UNUSEDSIGNAL */ // a port only read\n\
                 \x20   wire unused_w{q} = &{{m{q}_awready, m{q}_wready, m{q}_bvalid, m{q}_bresp}};\n\
                 \x20   /* verilator lint_on UNUSEDSIGNAL */\n"
            ));
        }
    }
    for sig in [
        "awvalid", "awready", "awlen", "wvalid", "wready", "wdata", "wstrb", "wlast", "bvalid",
        "bready", "bresp",
    ] {
        core_ports.push_str(&format!(",\n        .w_{sig}(m0_{sig})"));
    }
    core_ports.push_str(",\n        .w_awaddr(core_m0_awaddr)");
    tie.push_str(
        "    wire [63:0] core_m0_awaddr;\n    assign m0_awaddr = core_m0_awaddr + memory_base;\n",
    );
    let t = SHELL_TEMPLATE
        .replace("{{VERSION}}", env!("CARGO_PKG_VERSION"))
        .replace("{{MODULE}}", SHELL_MODULE)
        .replace("{{CORE}}", super::ACCELERATOR_CORE_MODULE)
        .replace("{{IO}}", &io)
        .replace("{{CORE_PORTS}}", &core_ports)
        .replace("{{TIE}}", &tie)
        .replace("{{HW_ID}}", &format!("32'h{HW_ID_VALUE:08x}"))
        .replace("{{DESIGN}}", &format!("32'h{design:08x}"))
        .replace("{{MEMORY_MIB}}", &format!("32'd{memory_mib}"))
        .replace("{{TB}}", &STEP_TOKEN_BITS.to_string())
        .replace("{{TB_HI}}", &(STEP_TOKEN_BITS - 1).to_string())
        .replace("{{PB}}", &STEP_POSITION_BITS.to_string());
    let mut t = t;
    // Every register's offset from the one map.
    for r in REGISTERS {
        t = t.replace(
            &format!("{{{{R_{}}}}}", r.name),
            &format!("8'h{:02X}", r.offset),
        );
    }
    debug_assert!(crate::bits::filled(&t), "a placeholder left");
    t
}

const SHELL_TEMPLATE: &str = r#"// Generated by tern {{VERSION}}: the one top's shell (hdl/src/accelerator/shell.rs):
// {{CORE}} behind an AXI4-Lite control port (register map: regmap.md) and an interrupt.
`default_nettype none
module {{MODULE}} (
    input  wire         ap_clk,
    input  wire         ap_rst_n,
    input  wire [7:0]   s_axi_control_awaddr,
    input  wire         s_axi_control_awvalid,
    output wire         s_axi_control_awready,
    input  wire [31:0]  s_axi_control_wdata,
    input  wire [3:0]   s_axi_control_wstrb,
    input  wire         s_axi_control_wvalid,
    output wire         s_axi_control_wready,
    output wire [1:0]   s_axi_control_bresp,
    output reg          s_axi_control_bvalid,
    input  wire         s_axi_control_bready,
    input  wire [7:0]   s_axi_control_araddr,
    input  wire         s_axi_control_arvalid,
    output wire         s_axi_control_arready,
    output reg  [31:0]  s_axi_control_rdata,
    output wire [1:0]   s_axi_control_rresp,
    output reg          s_axi_control_rvalid,
    input  wire         s_axi_control_rready,
{{IO}}    /* verilator lint_off SYMRSVDWORD */ // the Vitis name; Verilator's C++ renames it
    output wire         interrupt
    /* verilator lint_on SYMRSVDWORD */
);
    wire rst = !ap_rst_n;
    reg  [63:0] memory_base;     // MEMORY_BASE: added to every address on the memory ports
{{TIE}}
    // ---- AXI4-Lite: one write and one read at a time; address and data of a write in
    // either order, the register written the clock both are held ----
    reg  [7:0]  wr_addr;
    reg         wr_addr_held;
    reg  [31:0] wr_data;
    reg  [3:0]  wr_strb;
    reg         wr_data_held;
    assign s_axi_control_awready = !wr_addr_held && !s_axi_control_bvalid;
    assign s_axi_control_wready = !wr_data_held && !s_axi_control_bvalid;
    assign s_axi_control_bresp = 2'b00;
    assign s_axi_control_rresp = 2'b00;
    assign s_axi_control_arready = !s_axi_control_rvalid;
    wire        reg_write = wr_addr_held && wr_data_held;
    wire [31:0] wmask = {{8{wr_strb[3]}}, {8{wr_strb[2]}}, {8{wr_strb[1]}}, {8{wr_strb[0]}}};
    wire [31:0] wdata = wr_data & wmask;
    wire        reg_read = s_axi_control_arvalid && !s_axi_control_rvalid;
    always @(posedge ap_clk) begin
        if (rst) begin
            wr_addr_held <= 1'b0;
            wr_data_held <= 1'b0;
            s_axi_control_bvalid <= 1'b0;
        end else begin
            if (s_axi_control_awvalid && s_axi_control_awready) begin
                wr_addr <= s_axi_control_awaddr;
                wr_addr_held <= 1'b1;
            end
            if (s_axi_control_wvalid && s_axi_control_wready) begin
                wr_data <= s_axi_control_wdata;
                wr_strb <= s_axi_control_wstrb;
                wr_data_held <= 1'b1;
            end
            if (reg_write) begin
                wr_addr_held <= 1'b0;
                wr_data_held <= 1'b0;
                s_axi_control_bvalid <= 1'b1;
            end else if (s_axi_control_bready) begin
                s_axi_control_bvalid <= 1'b0;
            end
        end
    end

    // ---- the registers ----
    reg  [63:0] program_at;
    reg  [31:0] position;
    reg  [31:0] pushed;
    reg         gie, ier, isr, done_flag, start_pending;
    reg  [1:0]  step;            // a STEP: 2 clear, 1 push, then start
    reg  [31:0] step_token;
    wire        core_idle, core_ready;
    wire [7:0]  error_code;
    wire [31:0] error_command, next_token, commands_run;
    wire [63:0] clocks_pass, clocks_matmul, clocks_lm_head, clocks_vector, clocks_attention;
    wire        writing = reg_write && core_idle;
    wire        id_clear = step == 2'd2 || (writing && wr_addr == {{R_CLEAR}});
    wire        id_push = step == 2'd1 || (writing && wr_addr == {{R_TOKEN}});
    wire [31:0] id_data = step == 2'd1 ? step_token : wdata;
    wire        go = start_pending && core_idle && step == 2'd0;
    reg         was_busy;
    always @(posedge ap_clk) begin
        if (rst) begin
            gie <= 1'b0;
            ier <= 1'b0;
            isr <= 1'b0;
            done_flag <= 1'b0;
            start_pending <= 1'b0;
            step <= 2'd0;
            pushed <= 32'd0;
            was_busy <= 1'b0;
            program_at <= 64'd0;
            memory_base <= 64'd0;
            position <= 32'd0;
        end else begin
            was_busy <= !core_idle;
            if (was_busy && core_idle) begin
                done_flag <= 1'b1;
                isr <= isr | ier;
            end
            if (go) start_pending <= 1'b0;
            if (step != 2'd0) step <= step - 2'd1;
            if (id_clear) pushed <= 32'd0;
            else if (id_push) pushed <= pushed + 32'd1;
            if (reg_write) begin
                case (wr_addr)
                    {{R_CONTROL}}: if (wdata[0] && core_idle) start_pending <= 1'b1;
                    {{R_GIE}}: gie <= wdata[0];
                    {{R_IER}}: ier <= wdata[0];
                    {{R_ISR}}: isr <= isr ^ wdata[0];
                    {{R_PROGRAM}}: program_at[31:0] <= wdata;
                    {{R_PROGRAM_HI}}: program_at[63:32] <= wdata;
                    {{R_MEMORY_BASE}}: if (core_idle) memory_base[31:0] <= wdata;
                    {{R_MEMORY_BASE_HI}}: if (core_idle) memory_base[63:32] <= wdata;
                    {{R_POSITION}}: position <= wdata;
                    {{R_STEP}}: if (core_idle && step == 2'd0 && !start_pending) begin
                        step_token <= {{{PB}}'d0, wdata[{{TB_HI}}:0]};
                        position <= {{{TB}}'d0, wdata[31:{{TB}}]};
                        step <= 2'd2;
                        start_pending <= 1'b1;
                    end
                    default: ;
                endcase
            end
            // Reading CONTROL clears ap_done (ap_ready with it).
            if (reg_read && s_axi_control_araddr == {{R_CONTROL}}) done_flag <= 1'b0;
        end
    end
    assign interrupt = gie && isr && ier;
    always @(posedge ap_clk) begin
        if (rst) begin
            s_axi_control_rvalid <= 1'b0;
        end else if (reg_read) begin
            s_axi_control_rvalid <= 1'b1;
            case (s_axi_control_araddr)
                {{R_CONTROL}}: s_axi_control_rdata <= {28'd0, done_flag, core_idle, done_flag, start_pending};
                {{R_GIE}}: s_axi_control_rdata <= {31'd0, gie};
                {{R_IER}}: s_axi_control_rdata <= {31'd0, ier};
                {{R_ISR}}: s_axi_control_rdata <= {31'd0, isr};
                {{R_PROGRAM}}: s_axi_control_rdata <= program_at[31:0];
                {{R_PROGRAM_HI}}: s_axi_control_rdata <= program_at[63:32];
                {{R_POSITION}}: s_axi_control_rdata <= position;
                {{R_TOKEN}}: s_axi_control_rdata <= pushed;
                {{R_NEXT_TOKEN}}: s_axi_control_rdata <= next_token;
                {{R_ERROR_CODE}}: s_axi_control_rdata <= {24'd0, error_code};
                {{R_ERROR_COMMAND}}: s_axi_control_rdata <= error_command;
                {{R_COMMANDS_RUN}}: s_axi_control_rdata <= commands_run;
                {{R_CLOCKS}}: s_axi_control_rdata <= clocks_pass[31:0];
                {{R_CLOCKS_HI}}: s_axi_control_rdata <= clocks_pass[63:32];
                {{R_MATMUL_CLOCKS}}: s_axi_control_rdata <= clocks_matmul[31:0];
                {{R_ATTENTION_CLOCKS}}: s_axi_control_rdata <= clocks_attention[31:0];
                {{R_VECTOR_CLOCKS}}: s_axi_control_rdata <= clocks_vector[31:0];
                {{R_LM_HEAD_CLOCKS}}: s_axi_control_rdata <= clocks_lm_head[31:0];
                {{R_HW_ID}}: s_axi_control_rdata <= {{HW_ID}};
                {{R_DESIGN_ID}}: s_axi_control_rdata <= {{DESIGN}};
                {{R_MEMORY_MIB}}: s_axi_control_rdata <= {{MEMORY_MIB}};
                {{R_MEMORY_BASE}}: s_axi_control_rdata <= memory_base[31:0];
                {{R_MEMORY_BASE_HI}}: s_axi_control_rdata <= memory_base[63:32];
                default: s_axi_control_rdata <= 32'd0;
            endcase
        end else if (s_axi_control_rready) begin
            s_axi_control_rvalid <= 1'b0;
        end
    end
    /* verilator lint_off UNUSEDSIGNAL */ // the upper words of the per-unit clocks
    wire unused_clocks = &{clocks_matmul[63:32], clocks_lm_head[63:32], clocks_vector[63:32],
                           clocks_attention[63:32], core_ready};
    /* verilator lint_on UNUSEDSIGNAL */

    {{CORE}} core (
        .clk(ap_clk), .rst(rst){{CORE_PORTS}},
        .id_push(id_push), .id_data(id_data), .id_clear(id_clear),
        .cmd_valid(go), .cmd_ready(core_ready), .program_at(program_at), .position(position),
        .done(core_idle), .error_code(error_code), .error_command(error_command),
        .next_token(next_token), .commands_run(commands_run),
        .clocks_pass(clocks_pass), .clocks_matmul(clocks_matmul), .clocks_lm_head(clocks_lm_head),
        .clocks_vector(clocks_vector), .clocks_attention(clocks_attention)
    );
endmodule
`default_nettype wire
"#;
