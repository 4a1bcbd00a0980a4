//! The accelerator's register map, described once. The RTL decoder in `top::verilog`,
//! the host's constants (this module, used by `tern-host`) and the human-readable
//! tables `tern verilog --top` writes (`regmap.md`, `regmap.json`) all read this table.
//!
//! Layout follows the Vitis kernel convention: control at 0x00, global interrupt enable
//! at 0x04, IP interrupt enable at 0x08, interrupt status at 0x0C, arguments from 0x10
//! with a stride of 8: a pointer argument is 64 bits (low word at its offset, high word
//! 4 bytes above), a scalar argument 32 bits (the upper word of its slot reads as zero).

use serde::Serialize;

pub const CONTROL: u32 = 0x00;
pub const GIE: u32 = 0x04;
pub const IER: u32 = 0x08;
pub const ISR: u32 = 0x0C;
pub const WEIGHTS: u32 = 0x10;
pub const WEIGHTS_HI: u32 = 0x14;
pub const ACTIVATIONS: u32 = 0x18;
pub const ACTIVATIONS_HI: u32 = 0x1C;
pub const RESULTS: u32 = 0x20;
pub const RESULTS_HI: u32 = 0x24;
pub const TOKENS: u32 = 0x28;
pub const CYCLES: u32 = 0x30;
pub const HW_ID: u32 = 0x38;
pub const DESIGN_ID: u32 = 0x3C;
pub const MEMORY_MIB: u32 = 0x40;
pub const ERROR: u32 = 0x44;
/// Attention tops only (see [`ATTENTION_REGISTERS`]).
pub const SEQ_LEN: u32 = 0x48;
pub const FIRST_POSITION: u32 = 0x50;
pub const CAUSAL: u32 = 0x58;

/// Bits of `CONTROL`.
pub const AP_START: u32 = 1 << 0;
pub const AP_DONE: u32 = 1 << 1;
pub const AP_IDLE: u32 = 1 << 2;
pub const AP_READY: u32 = 1 << 3;
/// Bits of `IER` and `ISR`.
pub const IRQ_DONE: u32 = 1 << 0;
pub const IRQ_READY: u32 = 1 << 1;
/// Bits of `ERROR` (bits 0, 2, 4, 6 and 7: a start was refused; bit 3: the engine sent a
/// result beat the run did not expect; bits 1 and 5: the memory answered with an error
/// response and the run was abandoned; all cleared by the next start).
pub const ERR_MISALIGNED: u32 = 1 << 0;
pub const ERR_READ_RESPONSE: u32 = 1 << 1;
pub const ERR_NO_TOKENS: u32 = 1 << 2;
pub const ERR_EXTRA_RESULT: u32 = 1 << 3;
pub const ERR_OVERLAP: u32 = 1 << 4;
pub const ERR_WRITE_RESPONSE: u32 = 1 << 5;
pub const ERR_OUT_OF_RANGE: u32 = 1 << 6;
pub const ERR_BAD_LENGTH: u32 = 1 << 7;

/// What `HW_ID` reads: "TERN" in ASCII.
pub const HW_ID_VALUE: u32 = 0x5445_524E;
/// Bytes of the register window; the decoder ignores address bits above it.
pub const WINDOW_BYTES: u32 = 0x100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    ReadWrite,
    ReadOnly,
    /// Read-only; a read clears the bits it returned as set.
    ClearOnRead,
    /// Writing 1 to a bit inverts it.
    ToggleOnWrite,
    /// Write 1 to act; reads back the state the action started.
    WriteOneToStart,
    /// A write acts (pushes, starts, clears) with the value written.
    WriteToAct,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub bit: u32,
    pub width: u32,
    pub access: Access,
    pub doc: &'static str,
}

/// How the RTL implements a register (the generator's switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Control,
    GlobalInterruptEnable,
    InterruptEnable,
    InterruptStatus,
    /// A kernel argument: a plain 32-bit register the host writes before a start.
    Argument,
    /// A 64-bit pointer argument: the low word at the offset, the high word above it.
    Pointer,
    /// A read-only status word.
    Status,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Register {
    pub name: &'static str,
    pub offset: u32,
    pub kind: Kind,
    pub fields: &'static [Field],
    pub doc: &'static str,
}

const fn field(name: &'static str, bit: u32, access: Access, doc: &'static str) -> Field {
    Field {
        name,
        bit,
        width: 1,
        access,
        doc,
    }
}

const fn word(name: &'static str, access: Access, doc: &'static str) -> [Field; 1] {
    [Field {
        name,
        bit: 0,
        width: 32,
        access,
        doc,
    }]
}

use Access::*;

const CONTROL_FIELDS: [Field; 4] = [
    field(
        "ap_start",
        0,
        WriteOneToStart,
        "write 1 to start a run; reads 1 until it ends",
    ),
    field(
        "ap_done",
        1,
        ClearOnRead,
        "the last run ended (or was refused: see ERROR)",
    ),
    field(
        "ap_idle",
        2,
        ReadOnly,
        "no run in progress; card memory belongs to the host",
    ),
    field(
        "ap_ready",
        3,
        ClearOnRead,
        "ready for new arguments (set with ap_done)",
    ),
];
const IRQ_FIELDS_RW: [Field; 2] = [
    field("done", 0, ReadWrite, "interrupt on ap_done"),
    field("ready", 1, ReadWrite, "interrupt on ap_ready"),
];
const IRQ_FIELDS_TOW: [Field; 2] = [
    field("done", 0, ToggleOnWrite, "ap_done interrupt pending"),
    field("ready", 1, ToggleOnWrite, "ap_ready interrupt pending"),
];
const GIE_FIELDS: [Field; 1] = [field(
    "enable",
    0,
    ReadWrite,
    "drive the interrupt line when any enabled status bit is set",
)];
const WEIGHTS_FIELDS: [Field; 1] = word(
    "address",
    ReadWrite,
    "byte address (low word) of the packed weight beats; aligned to the bus width",
);
const ACTIVATIONS_FIELDS: [Field; 1] = word(
    "address",
    ReadWrite,
    "byte address (low word) of the activations, one token every activation stride; aligned to the bus width",
);
const RESULTS_FIELDS: [Field; 1] = word(
    "address",
    ReadWrite,
    "byte address (low word) the results are written to, one token every result stride; aligned to the bus width",
);
const HIGH_FIELDS: [Field; 1] = word("address_hi", ReadWrite, "bits 63:32 of the address");
const TOKENS_FIELDS: [Field; 1] = word("count", ReadWrite, "activation vectors in this run");
const CYCLES_FIELDS: [Field; 1] = word("count", ReadOnly, "clocks of the last run");
const HW_ID_FIELDS: [Field; 1] = word("id", ReadOnly, "0x5445524E (\"TERN\")");
const DESIGN_ID_FIELDS: [Field; 1] =
    word("id", ReadOnly, "first 32 bits of the engine's content hash");
const MEMORY_MIB_FIELDS: [Field; 1] = word(
    "mib",
    ReadOnly,
    "memory the kernel addresses (MiB, from the config's top.memory_mib)",
);
const ERROR_FIELDS: [Field; 8] = [
    field(
        "misaligned",
        0,
        ReadOnly,
        "a pointer argument is not aligned to the bus width (top.bus_bits / 8 bytes)",
    ),
    field(
        "read_response",
        1,
        ReadOnly,
        "a read burst was answered with SLVERR or DECERR (e.g. beyond the memory); the run was abandoned",
    ),
    field("no_tokens", 2, ReadOnly, "TOKENS is zero"),
    field(
        "extra_result",
        3,
        ReadOnly,
        "the engine sent a result beat the run did not expect (never taken into card memory)",
    ),
    field(
        "overlap",
        4,
        ReadOnly,
        "two regions overlap (the results would overwrite weights or activations)",
    ),
    field(
        "write_response",
        5,
        ReadOnly,
        "a write burst was answered with SLVERR or DECERR; the run was abandoned",
    ),
    field(
        "out_of_range",
        6,
        ReadOnly,
        "a region (weights, TOKENS × activations, TOKENS × results) ends beyond MEMORY_MIB",
    ),
    field(
        "bad_length",
        7,
        ReadOnly,
        "attention: SEQ_LEN is 0 or above attention.max_seq_len, or (CAUSAL) FIRST_POSITION + TOKENS > SEQ_LEN",
    ),
];
const SEQ_LEN_FIELDS: [Field; 1] = word(
    "keys",
    ReadWrite,
    "tokens in the KV cache (1..=attention.max_seq_len)",
);
const FIRST_POSITION_FIELDS: [Field; 1] = word(
    "position",
    ReadWrite,
    "position of the first query row in the sequence (row r is at FIRST_POSITION + r)",
);
const CAUSAL_FIELDS: [Field; 1] = [field(
    "causal",
    0,
    ReadWrite,
    "1: row r sees keys 0..=FIRST_POSITION + r; 0: every row sees all SEQ_LEN keys",
)];

pub const REGISTERS: &[Register] = &[
    Register {
        name: "CONTROL",
        offset: CONTROL,
        kind: Kind::Control,
        fields: &CONTROL_FIELDS,
        doc: "kernel control (Vitis ap_ctrl_hs)",
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
        fields: &IRQ_FIELDS_RW,
        doc: "IP interrupt enable",
    },
    Register {
        name: "ISR",
        offset: ISR,
        kind: Kind::InterruptStatus,
        fields: &IRQ_FIELDS_TOW,
        doc: "IP interrupt status",
    },
    Register {
        name: "WEIGHTS",
        offset: WEIGHTS,
        kind: Kind::Pointer,
        fields: &WEIGHTS_FIELDS,
        doc: "argument: weights (64-bit pointer, low word)",
    },
    Register {
        name: "WEIGHTS_HI",
        offset: WEIGHTS_HI,
        kind: Kind::Pointer,
        fields: &HIGH_FIELDS,
        doc: "argument: weights (high word)",
    },
    Register {
        name: "ACTIVATIONS",
        offset: ACTIVATIONS,
        kind: Kind::Pointer,
        fields: &ACTIVATIONS_FIELDS,
        doc: "argument: activations (64-bit pointer, low word)",
    },
    Register {
        name: "ACTIVATIONS_HI",
        offset: ACTIVATIONS_HI,
        kind: Kind::Pointer,
        fields: &HIGH_FIELDS,
        doc: "argument: activations (high word)",
    },
    Register {
        name: "RESULTS",
        offset: RESULTS,
        kind: Kind::Pointer,
        fields: &RESULTS_FIELDS,
        doc: "argument: results (64-bit pointer, low word)",
    },
    Register {
        name: "RESULTS_HI",
        offset: RESULTS_HI,
        kind: Kind::Pointer,
        fields: &HIGH_FIELDS,
        doc: "argument: results (high word)",
    },
    Register {
        name: "TOKENS",
        offset: TOKENS,
        kind: Kind::Argument,
        fields: &TOKENS_FIELDS,
        doc: "argument: token count",
    },
    Register {
        name: "CYCLES",
        offset: CYCLES,
        kind: Kind::Status,
        fields: &CYCLES_FIELDS,
        doc: "clocks from start to done of the last run",
    },
    Register {
        name: "HW_ID",
        offset: HW_ID,
        kind: Kind::Status,
        fields: &HW_ID_FIELDS,
        doc: "identifies a tern accelerator",
    },
    Register {
        name: "DESIGN_ID",
        offset: DESIGN_ID,
        kind: Kind::Status,
        fields: &DESIGN_ID_FIELDS,
        doc: "which engine configuration is loaded",
    },
    Register {
        name: "MEMORY_MIB",
        offset: MEMORY_MIB,
        kind: Kind::Status,
        fields: &MEMORY_MIB_FIELDS,
        doc: "memory size",
    },
    Register {
        name: "ERROR",
        offset: ERROR,
        kind: Kind::Status,
        fields: &ERROR_FIELDS,
        doc: "why the last run was refused or abandoned",
    },
];

/// The attention top's own arguments, beside [`REGISTERS`] (where, on an attention top,
/// WEIGHTS points at the KV cache, ACTIVATIONS at the queries and TOKENS counts query
/// rows: the streamed and the per-row operand, as the engines' stream names say).
pub const ATTENTION_REGISTERS: &[Register] = &[
    Register {
        name: "SEQ_LEN",
        offset: SEQ_LEN,
        kind: Kind::Argument,
        fields: &SEQ_LEN_FIELDS,
        doc: "argument (attention): tokens in the KV cache",
    },
    Register {
        name: "FIRST_POSITION",
        offset: FIRST_POSITION,
        kind: Kind::Argument,
        fields: &FIRST_POSITION_FIELDS,
        doc: "argument (attention): position of the first query row",
    },
    Register {
        name: "CAUSAL",
        offset: CAUSAL,
        kind: Kind::Argument,
        fields: &CAUSAL_FIELDS,
        doc: "argument (attention): causal mask",
    },
];

/// The registers of a matmul top, or of an attention top, by offset.
pub fn registers(attention: bool) -> Vec<&'static Register> {
    let extra: &[Register] = if attention { ATTENTION_REGISTERS } else { &[] };
    let mut all: Vec<_> = REGISTERS.iter().chain(extra).collect();
    all.sort_by_key(|r| r.offset);
    all
}

/// The register a byte offset names on either kind of top, if any.
pub fn register_at(offset: u32) -> Option<&'static Register> {
    registers(true).into_iter().find(|r| r.offset == offset)
}

fn access_name(a: Access) -> &'static str {
    match a {
        ReadWrite => "RW",
        ReadOnly => "RO",
        ClearOnRead => "COR",
        ToggleOnWrite => "TOW",
        WriteOneToStart => "W1S",
        WriteToAct => "WA",
    }
}

/// A register map as a Markdown table under `title`, `intro` before it.
pub fn markdown_table(title: &str, intro: &str, registers: &[&Register]) -> String {
    let mut s = format!(
        "# {title}\n\n{intro}32-bit registers, byte offsets, little-endian. Access: RW read/write, \
         RO read-only, COR clear on read, TOW toggle on write, W1S write 1 to start, WA a write \
         acts.\n\n| offset | register | bits | field | access | description |\n|---|---|---|---|---|---|\n"
    );
    for r in registers {
        for (i, f) in r.fields.iter().enumerate() {
            let bits = if f.width == 1 {
                format!("{}", f.bit)
            } else {
                format!("{}:{}", f.bit + f.width - 1, f.bit)
            };
            let (off, name) = if i == 0 {
                (format!("0x{:02X}", r.offset), r.name.to_string())
            } else {
                (String::new(), String::new())
            };
            s.push_str(&format!(
                "| {off} | {name} | {bits} | {} | {} | {} |\n",
                f.name,
                access_name(f.access),
                f.doc
            ));
        }
    }
    s
}

/// The map of a matmul top (`attention` false) or an attention top as a Markdown table.
pub fn markdown(attention: bool) -> String {
    let note = if attention {
        "On an attention top WEIGHTS points at the KV cache, ACTIVATIONS at the queries \
         and TOKENS counts query rows (docs/top.md, \"Attention\"). "
    } else {
        ""
    };
    markdown_table(
        "tern accelerator register map",
        &format!("Generated from `tern-hdl::top::regmap`. {note}"),
        &registers(attention),
    )
}

/// The map as JSON (for other tools and languages).
pub fn json(attention: bool) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "format": "tern-regmap",
        "version": 3,
        "engine": if attention { "attention" } else { "matmul" },
        "window_bytes": WINDOW_BYTES,
        "registers": registers(attention),
    }))
    .expect("the register map serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_follow_the_vitis_layout_and_do_not_overlap() {
        let at = |o| register_at(o).map(|r| r.kind);
        assert_eq!(at(0x00), Some(Kind::Control));
        assert_eq!(at(0x04), Some(Kind::GlobalInterruptEnable));
        assert_eq!(at(0x08), Some(Kind::InterruptEnable));
        assert_eq!(at(0x0C), Some(Kind::InterruptStatus));
        let all = registers(true);
        let mut offsets: Vec<u32> = all.iter().map(|r| r.offset).collect();
        offsets.sort();
        offsets.dedup();
        assert_eq!(offsets.len(), all.len(), "two registers share an offset");
        for r in all {
            assert_eq!(r.offset % 4, 0, "{} is not word aligned", r.name);
            assert!(r.offset < WINDOW_BYTES);
            if r.kind == Kind::Argument {
                assert!(r.offset >= 0x10 && r.offset % 8 == 0, "{}", r.name);
            }
            if r.kind == Kind::Pointer && !r.name.ends_with("_HI") {
                assert!(r.offset >= 0x10 && r.offset % 8 == 0, "{}", r.name);
                let hi = register_at(r.offset + 4).expect("a pointer's high word");
                assert_eq!(hi.name, format!("{}_HI", r.name));
            }
            let mut used = 0u64;
            for f in r.fields {
                let mask = ((1u64 << f.width) - 1) << f.bit;
                assert_eq!(used & mask, 0, "{}.{} overlaps", r.name, f.name);
                assert!(f.bit + f.width <= 32);
                used |= mask;
            }
        }
        // The bit constants agree with the field table.
        let bit = |reg: &str, name: &str| {
            let r = registers(true).into_iter().find(|r| r.name == reg).unwrap();
            1u32 << r.fields.iter().find(|f| f.name == name).unwrap().bit
        };
        assert_eq!(bit("CONTROL", "ap_start"), AP_START);
        assert_eq!(bit("CONTROL", "ap_done"), AP_DONE);
        assert_eq!(bit("CONTROL", "ap_idle"), AP_IDLE);
        assert_eq!(bit("CONTROL", "ap_ready"), AP_READY);
        assert_eq!(bit("ISR", "done"), IRQ_DONE);
        assert_eq!(bit("ISR", "ready"), IRQ_READY);
        assert_eq!(bit("ERROR", "misaligned"), ERR_MISALIGNED);
        assert_eq!(bit("ERROR", "read_response"), ERR_READ_RESPONSE);
        assert_eq!(bit("ERROR", "write_response"), ERR_WRITE_RESPONSE);
        assert_eq!(bit("ERROR", "out_of_range"), ERR_OUT_OF_RANGE);
        assert_eq!(bit("ERROR", "no_tokens"), ERR_NO_TOKENS);
        assert_eq!(bit("ERROR", "extra_result"), ERR_EXTRA_RESULT);
        assert_eq!(bit("ERROR", "overlap"), ERR_OVERLAP);
        assert_eq!(bit("ERROR", "bad_length"), ERR_BAD_LENGTH);
        assert_eq!(bit("CAUSAL", "causal"), 1);
    }

    #[test]
    fn tables_name_every_register_of_their_kind() {
        for attention in [false, true] {
            let (md, js) = (markdown(attention), json(attention));
            for r in registers(attention) {
                assert!(md.contains(&format!("| 0x{:02X} | {} |", r.offset, r.name)));
                assert!(js.contains(&format!("\"name\": \"{}\"", r.name)));
            }
            assert_eq!(md.contains("| SEQ_LEN |"), attention);
        }
    }
}
