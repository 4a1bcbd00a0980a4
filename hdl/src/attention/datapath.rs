//! The attention engine's arithmetic leaves. Each is combinational, sized from the
//! config at run time, and builds rust-hdl's Verilog AST by hand (through `netlist`),
//! because `#[hdl_gen]` has no multiplier wider than 16 bits and no per-lane slicing of
//! a runtime lane count. Their `update()` models exist so the engine elaborates under
//! rust-hdl, but unlike the TLMM leaves they are not verified: the attention engine is
//! verified on its Verilog, under Verilator (rust-hdl's simulator disagreed with the
//! golden model on multi-key rows; see ARCHITECTURE.md, "Known gaps").
//!
//! Widths: scores, the running sum and the output accumulators are 32-bit two's
//! complement (`STATE_BITS`); all products are formed in a context wide enough that no
//! intermediate wraps (the bounds are stated beside each block).

use rust_hdl::prelude::*;

use crate::config::attention::{AttentionConstants, RESCALE_FRACTION_BITS};
use crate::netlist::{
    add, assign, assign_slice, balanced_sum, case, gt, if_else, lit, mul, sig, sign_extended,
    signed, signed_gt, signed_lt, slice, wide_lit,
};
use crate::streams::sign_extend;

/// `ScoreDot`: `dot = Σ_i q[i]·k[i]` over the `macs` int8 lanes of one beat.
/// |dot| ≤ 128²·macs ≤ 2^19: exact in 32 bits.
#[derive(LogicBlock)]
pub struct ScoreDot<const BUS: usize> {
    pub q: Signal<In, Bits<BUS>>,
    pub k: Signal<In, Bits<BUS>>,
    pub dot: Signal<Out, Bits<32>>,
}

impl<const BUS: usize> Default for ScoreDot<BUS> {
    fn default() -> Self {
        ScoreDot {
            q: Default::default(),
            k: Default::default(),
            dot: Default::default(),
        }
    }
}

impl<const BUS: usize> Logic for ScoreDot<BUS> {
    fn update(&mut self) {
        let (q, k) = (self.q.val(), self.k.val());
        let dot: i64 = (0..BUS / 8)
            .map(|i| {
                sign_extend(q.get_bits::<8>(8 * i).to_u64(), 8)
                    * sign_extend(k.get_bits::<8>(8 * i).to_u64(), 8)
            })
            .sum();
        self.dot.next = Bits::from(dot as u64 & 0xFFFF_FFFF);
    }

    fn connect(&mut self) {
        self.dot.connect();
    }

    fn hdl(&self) -> Verilog {
        // All operands `$signed`, so each 8-bit lane is sign-extended to the 32-bit
        // context before the multiply.
        let products = (0..BUS / 8)
            .map(|i| mul(signed(slice("q", 8, 8 * i)), signed(slice("k", 8, 8 * i))))
            .collect();
        Verilog::Combinatorial(vec![assign(sig("dot"), balanced_sum(products))])
    }
}

/// `ValueLanes`: the `macs` output-accumulator lanes of one beat (lane `i` at bit `32·i`).
/// - `rescale`: `acc' = (acc·f + 2^14) >> 15` (arithmetic shift: round half up), and the
///   same for the running sum (`sum_scaled`). |acc·f| < 2^31·2^15: exact in 48 bits.
/// - `clear`: `acc' = 0` (a row's accumulators before its first value).
/// - otherwise: `acc' = acc + e·v` (e: u8 probability weight, v: int8).
#[derive(LogicBlock)]
pub struct ValueLanes<const BUS: usize, const ACCW: usize> {
    pub acc_in: Signal<In, Bits<ACCW>>,
    pub v: Signal<In, Bits<BUS>>,
    pub e: Signal<In, Bits<8>>,
    pub factor: Signal<In, Bits<16>>,
    pub rescale: Signal<In, Bit>,
    pub clear: Signal<In, Bit>,
    pub acc_out: Signal<Out, Bits<ACCW>>,
    pub sum_in: Signal<In, Bits<32>>,
    pub sum_scaled: Signal<Out, Bits<32>>,
    scaled: Vec<Signal<Local, Bits<48>>>,
    sum_product: Signal<Local, Bits<48>>,
}

impl<const BUS: usize, const ACCW: usize> Default for ValueLanes<BUS, ACCW> {
    fn default() -> Self {
        assert_eq!(ACCW, 4 * BUS, "one 32-bit accumulator per int8 lane");
        ValueLanes {
            acc_in: Default::default(),
            v: Default::default(),
            e: Default::default(),
            factor: Default::default(),
            rescale: Default::default(),
            clear: Default::default(),
            acc_out: Default::default(),
            sum_in: Default::default(),
            sum_scaled: Default::default(),
            scaled: crate::memory::signals(BUS / 8),
            sum_product: Default::default(),
        }
    }
}

/// `(x·f + 2^14) >> 15` for a 32-bit two's-complement `x`.
pub fn rescale_value(x: i64, factor: u32) -> i64 {
    let half = 1i64 << (RESCALE_FRACTION_BITS - 1);
    (x * i64::from(factor) + half) >> RESCALE_FRACTION_BITS
}

impl<const BUS: usize, const ACCW: usize> Logic for ValueLanes<BUS, ACCW> {
    fn update(&mut self) {
        let f = self.factor.val().to_u64() as u32;
        let e = self.e.val().to_u64() as i64;
        let (acc_in, v) = (self.acc_in.val(), self.v.val());
        let mut out = Bits::<ACCW>::default();
        for i in 0..BUS / 8 {
            let acc = sign_extend(acc_in.get_bits::<32>(32 * i).to_u64(), 32);
            let value = if self.rescale.val() {
                rescale_value(acc, f)
            } else if self.clear.val() {
                0
            } else {
                acc + e * sign_extend(v.get_bits::<8>(8 * i).to_u64(), 8)
            };
            out.set_bits::<32>(32 * i, Bits::from(value as u64 & 0xFFFF_FFFF));
        }
        self.acc_out.next = out;
        let sum = rescale_value(self.sum_in.val().to_u64() as i64, f);
        self.sum_scaled.next = Bits::from(sum as u64 & 0xFFFF_FFFF);
    }

    fn connect(&mut self) {
        self.acc_out.connect();
        self.sum_scaled.connect();
        for s in &mut self.scaled {
            s.connect();
        }
        self.sum_product.connect();
    }

    fn hdl(&self) -> Verilog {
        let half = 1u64 << (RESCALE_FRACTION_BITS - 1);
        let frac = RESCALE_FRACTION_BITS as usize;
        let mut body = vec![];
        for i in 0..BUS / 8 {
            let name = format!("scaled${i}");
            body.push(assign(
                sig(&name),
                add(
                    mul(
                        sign_extended::<48>(slice("acc_in", 32, 32 * i), 32),
                        sig("factor"),
                    ),
                    lit::<48>(half),
                ),
            ));
            // e is unsigned (zero-extended); v is sign-extended to the 32-bit context.
            let product = mul(sig("e"), sign_extended::<32>(slice("v", 8, 8 * i), 8));
            body.push(if_else(
                sig("rescale"),
                vec![assign_slice("acc_out", 32, 32 * i, slice(&name, 32, frac))],
                vec![if_else(
                    sig("clear"),
                    vec![assign_slice("acc_out", 32, 32 * i, lit::<32>(0))],
                    vec![assign_slice(
                        "acc_out",
                        32,
                        32 * i,
                        add(slice("acc_in", 32, 32 * i), product),
                    )],
                )],
            ));
        }
        body.push(assign(
            sig("sum_product"),
            add(mul(sig("sum_in"), sig("factor")), lit::<48>(half)),
        ));
        body.push(assign(sig("sum_scaled"), slice("sum_product", 32, frac)));
        Verilog::Combinatorial(body)
    }
}

/// `SoftmaxIndex`: the distance `Δ = max − s` (or the growth of the running maximum)
/// clamped at the threshold and mapped to table indices without a divider:
/// `exp_index = floor((E·min(Δ,thr) + o)/thr)` (E = exp table entries − 1), `rescale_index = floor((R·min(Δ,thr) + o)/thr)`
/// (`o` = `index_offset`), each as `(n·reciprocal) >> shift`. The threshold, its
/// reciprocal and the offset are inputs (a layer's units, run-time data); the shift is
/// the engine's and exact for every threshold up to `MAX_THRESHOLD`
/// (`config::attention::threshold_shift`). `n < 2^35` and `reciprocal ≤ 2^60`: the
/// products are exact in 96 bits.
#[derive(LogicBlock)]
pub struct SoftmaxIndex {
    pub delta: Signal<In, Bits<32>>,
    pub threshold: Signal<In, Bits<32>>,
    pub reciprocal: Signal<In, Bits<64>>,
    pub offset: Signal<In, Bits<32>>,
    pub exp_index: Signal<Out, Bits<8>>,
    pub rescale_index: Signal<Out, Bits<11>>,
    clamped: Signal<Local, Bits<32>>,
    exp_product: Signal<Local, Bits<96>>,
    rescale_product: Signal<Local, Bits<96>>,
    _shift: usize,
    _steps: u64,
    _exp_steps: u64,
}

impl SoftmaxIndex {
    pub fn new(k: &AttentionConstants) -> Self {
        SoftmaxIndex {
            delta: Default::default(),
            threshold: Default::default(),
            reciprocal: Default::default(),
            offset: Default::default(),
            exp_index: Default::default(),
            rescale_index: Default::default(),
            clamped: Default::default(),
            exp_product: Default::default(),
            rescale_product: Default::default(),
            _shift: k.threshold_shift as usize,
            _steps: (k.rescale_table.len() - 1) as u64,
            _exp_steps: (k.exp_table.len() - 1) as u64,
        }
    }
}

impl Logic for SoftmaxIndex {
    fn update(&mut self) {
        let clamped = self.delta.val().to_u64().min(self.threshold.val().to_u64());
        let (recip, offset) = (self.reciprocal.val().to_u64(), self.offset.val().to_u64());
        let index = |n: u64| (u128::from(clamped * n + offset) * u128::from(recip)) >> self._shift;
        self.exp_index.next = Bits::from(index(self._exp_steps) as u64);
        self.rescale_index.next = Bits::from(index(self._steps) as u64);
    }

    fn connect(&mut self) {
        self.exp_index.connect();
        self.rescale_index.connect();
        self.clamped.connect();
        self.exp_product.connect();
        self.rescale_product.connect();
    }

    fn hdl(&self) -> Verilog {
        // Every operand widens to the 96-bit product's context before the arithmetic.
        let product = |steps: u64| {
            mul(
                add(
                    mul(sig("clamped"), wide_lit::<96>(u128::from(steps))),
                    sig("offset"),
                ),
                sig("reciprocal"),
            )
        };
        Verilog::Combinatorial(vec![
            if_else(
                gt(sig("delta"), sig("threshold")),
                vec![assign(sig("clamped"), sig("threshold"))],
                vec![assign(sig("clamped"), sig("delta"))],
            ),
            assign(sig("exp_product"), product(self._exp_steps)),
            assign(sig("rescale_product"), product(self._steps)),
            assign(sig("exp_index"), slice("exp_product", 8, self._shift)),
            assign(
                sig("rescale_index"),
                slice("rescale_product", 11, self._shift),
            ),
        ])
    }
}

/// A read-only table as a `case` (synthesises to LUTs): `value = table[index]`.
#[derive(LogicBlock)]
pub struct RomTable<const IW: usize, const VW: usize> {
    pub index: Signal<In, Bits<IW>>,
    pub value: Signal<Out, Bits<VW>>,
    _table: Vec<u64>,
}

impl<const IW: usize, const VW: usize> RomTable<IW, VW> {
    pub fn new(table: Vec<u64>) -> Self {
        assert!(table.len() <= 1 << IW);
        assert!(table.iter().all(|&v| v < 1 << VW));
        RomTable {
            index: Default::default(),
            value: Default::default(),
            _table: table,
        }
    }
}

impl<const IW: usize, const VW: usize> Logic for RomTable<IW, VW> {
    fn update(&mut self) {
        let v = self
            ._table
            .get(self.index.val().index())
            .copied()
            .unwrap_or(0);
        self.value.next = Bits::from(v);
    }

    fn connect(&mut self) {
        self.value.connect();
    }

    fn hdl(&self) -> Verilog {
        let arms = self
            ._table
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u64, vec![assign(sig("value"), lit::<VW>(v))]))
            .collect();
        Verilog::Combinatorial(vec![case(
            sig("index"),
            IW,
            arms,
            vec![assign(sig("value"), lit::<VW>(0))],
        )])
    }
}

/// The exp table (`attention.quant.exp_entries` × u8, at most 256; indices beyond the
/// table read 0).
pub type ExpTable = RomTable<8, 8>;
/// The online-softmax rescale table (R+1 × 16-bit factors, R ≤ 1024).
pub type RescaleTable = RomTable<11, 16>;

/// `OutputRequant`: `sat8((acc·r + 2^(S−1)) >> S)`, `r = floor(K/ℓ)` from the divider.
/// |acc·r| < 2^31·2^40: exact in 72 bits; the shifted value fits 32 bits because
/// |acc/ℓ| ≤ ~128 and K/2^S = scale_v/scale_out ≤ 2^7.
#[derive(LogicBlock)]
pub struct OutputRequant {
    pub acc: Signal<In, Bits<32>>,
    pub reciprocal: Signal<In, Bits<40>>,
    pub value: Signal<Out, Bits<8>>,
    product: Signal<Local, Bits<72>>,
    shifted: Signal<Local, Bits<32>>,
    _shift: usize,
}

impl OutputRequant {
    pub fn new(k: &AttentionConstants) -> Self {
        OutputRequant {
            acc: Default::default(),
            reciprocal: Default::default(),
            value: Default::default(),
            product: Default::default(),
            shifted: Default::default(),
            _shift: k.output_shift as usize,
        }
    }
}

impl Logic for OutputRequant {
    fn update(&mut self) {
        let acc = i128::from(sign_extend(self.acc.val().to_u64(), 32));
        let r = i128::from(self.reciprocal.val().to_u64());
        let q = (acc * r + (1i128 << (self._shift - 1))) >> self._shift;
        self.value.next = Bits::from(q.clamp(-128, 127) as u64 & 0xFF);
    }

    fn connect(&mut self) {
        self.value.connect();
        self.product.connect();
        self.shifted.connect();
    }

    fn hdl(&self) -> Verilog {
        let s = self._shift;
        Verilog::Combinatorial(vec![
            assign(
                sig("product"),
                add(
                    mul(sign_extended::<72>(sig("acc"), 32), sig("reciprocal")),
                    wide_lit::<72>(1u128 << (s - 1)),
                ),
            ),
            assign(sig("shifted"), slice("product", 32, s)),
            if_else(
                signed_gt(sig("shifted"), lit::<32>(127)),
                vec![assign(sig("value"), lit::<8>(0x7F))],
                vec![if_else(
                    signed_lt(sig("shifted"), lit::<32>(0xFFFF_FF80)),
                    vec![assign(sig("value"), lit::<8>(0x80))],
                    vec![assign(sig("value"), slice("shifted", 8, 0))],
                )],
            ),
        ])
    }
}
