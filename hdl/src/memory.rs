//! `WordMemory`: a simple dual-port memory whose word is a bundle of `fields` values
//! of `W` bits, with a depth chosen at run time. Like rust-hdl's own RAM it is a leaf
//! with custom Verilog (written in the inference template every synthesis tool knows)
//! and a Rust model for rust-hdl's simulator. Read-before-write on the same address.

use rust_hdl::prelude::*;

use crate::bits::ceil_log2;

#[derive(LogicBlock)]
pub struct WordMemory<const W: usize> {
    pub clock: Signal<In, Clock>,
    pub write_enable: Signal<In, Bit>,
    pub write_address: Signal<In, Bits<16>>,
    pub write_data: Vec<Signal<In, Bits<W>>>,
    /// Registered reads only: hold `read_data` when low.
    pub read_enable: Signal<In, Bit>,
    pub read_address: Signal<In, Bits<16>>,
    pub read_data: Vec<Signal<Out, Bits<W>>>,
    _depth: usize,
    _registered_read: bool,
    _ram_style: &'static str,
    _mem: Vec<Vec<Bits<W>>>,
}

impl<const W: usize> WordMemory<W> {
    /// `registered_read`: block-RAM style (data one clock after the address);
    /// otherwise the read is combinational (LUT RAM / registers).
    pub fn new(
        fields: usize,
        depth: usize,
        registered_read: bool,
        ram_style: &'static str,
    ) -> Self {
        assert!(fields > 0 && depth > 0 && depth <= 1 << 16);
        WordMemory {
            clock: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: signals(fields),
            read_enable: Default::default(),
            read_address: Default::default(),
            read_data: signals(fields),
            _depth: depth,
            _registered_read: registered_read,
            _ram_style: ram_style,
            _mem: vec![vec![Bits::default(); fields]; depth],
        }
    }

    fn show_read_word(&mut self) {
        let word = &self._mem[self.read_address.val().index() % self._depth];
        for (out, v) in self.read_data.iter_mut().zip(word) {
            out.next = *v;
        }
    }

    pub fn bits(&self) -> usize {
        self._depth * self.write_data.len() * W
    }
}

pub(crate) fn signals<D: Direction, T: Synth>(n: usize) -> Vec<Signal<D, T>> {
    (0..n).map(|_| Signal::default()).collect()
}

impl<const W: usize> Logic for WordMemory<W> {
    fn update(&mut self) {
        let edge = self.clock.pos_edge();
        // Registered reads sample the word before this edge's write (read-first).
        if self._registered_read && edge && self.read_enable.val() {
            self.show_read_word();
        }
        if edge && self.write_enable.val() {
            let a = self.write_address.val().index() % self._depth;
            for (i, d) in self.write_data.iter().enumerate() {
                self._mem[a][i] = d.val();
            }
        }
        if !self._registered_read {
            self.show_read_word();
        }
    }

    fn connect(&mut self) {
        for out in &mut self.read_data {
            out.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let fields = self.write_data.len();
        let total = fields * W;
        let ab = ceil_log2(self._depth).max(1);
        let last = self._depth - 1;
        let concat = (0..fields)
            .rev()
            .map(|i| format!("write_data${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let unpack = (0..fields)
            .map(|i| {
                format!(
                    "    read_data${i} = read_word[{}:{}];",
                    (i + 1) * W - 1,
                    i * W
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        let read = if self._registered_read {
            format!(
                "reg [{hi}:0] read_word;\nalways @(posedge clock) begin\n    if (read_enable) read_word <= mem[read_address[{a}:0]];\nend",
                hi = total - 1,
                a = ab - 1
            )
        } else {
            format!(
                "wire [{hi}:0] read_word = mem[read_address[{a}:0]];",
                hi = total - 1,
                a = ab - 1
            )
        };
        Verilog::Custom(format!(
            "(* ram_style = \"{style}\" *)\nreg [{hi}:0] mem [0:{last}];\n\
             always @(posedge clock) begin\n    if (write_enable) mem[write_address[{a}:0]] <= {{{concat}}};\nend\n\
             {read}\nalways @(*) begin\n{unpack}\nend\n",
            style = self._ram_style,
            hi = total - 1,
            a = ab - 1,
        ))
    }
}
