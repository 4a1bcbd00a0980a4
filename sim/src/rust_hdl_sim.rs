//! The engine under rust-hdl's own simulator, behind the same [`EngineSim`] interface as
//! the Verilator model. It runs the Rust `update()` models (including those of the leaves
//! whose Verilog is built by hand), so co-simulating it checks them against the golden
//! model too; the benchmark compares its speed with Verilator's.

use rust_hdl::core::simulate::simulate;
use rust_hdl::prelude::*;

use tern_hdl::streams::{get_field, put_field, words_for};
use tern_hdl::tlmm::TlmmEngine;
use tern_hdl::{Config, Geometry};

use crate::verilator::{EngineSim, Handshake, Inputs};

pub struct RustHdlEngine<const IW: usize, const ACC: usize> {
    engine: Box<TlmmEngine<IW, ACC>>,
    geometry: Geometry,
}

impl<const IW: usize, const ACC: usize> RustHdlEngine<IW, ACC> {
    /// Panics if the widths do not match the config (the mapping is in `tern_hdl::emit::generate`).
    pub fn new(cfg: &Config) -> Self {
        let mut engine = Box::new(TlmmEngine::<IW, ACC>::new(cfg));
        engine.connect_all();
        RustHdlEngine {
            engine,
            geometry: cfg.geometry,
        }
    }

    fn settle(&mut self) {
        assert!(
            simulate(self.engine.as_mut(), 200),
            "rust-hdl simulation did not converge"
        );
    }
}

impl<const IW: usize, const ACC: usize> EngineSim for RustHdlEngine<IW, ACC> {
    fn drive(&mut self, inputs: &Inputs) -> Handshake {
        let geo = self.geometry;
        let e = self.engine.as_mut();
        e.clock.next = Clock::from(false);
        e.reset.next = inputs.reset;
        e.act_valid.next = inputs.act.is_some();
        e.act_last.next = inputs.act_last;
        e.wgt_valid.next = inputs.wgt.is_some();
        e.res_ready.next = inputs.res_ready;
        if let Some(act) = inputs.act {
            for (a, port) in e.act_data.iter_mut().enumerate() {
                port.next = Bits::from(get_field(act, 8 * a, 8));
            }
        }
        if let Some(wgt) = inputs.wgt {
            let cb = 1 + geo.index_bits;
            for k in 0..geo.lanes() {
                e.wgt_index[k].next = Bits::from(get_field(wgt, k * cb, geo.index_bits));
                e.wgt_sign[k].next = Bits::from(get_field(wgt, k * cb + geo.index_bits, 1));
            }
        }
        self.settle();
        let e = &self.engine;
        Handshake {
            act_ready: e.act_ready.val(),
            wgt_ready: e.wgt_ready.val(),
            res_valid: e.res_valid.val(),
        }
    }

    fn result(&self) -> Vec<u32> {
        let mut out = vec![0u32; words_for(self.geometry.result_beat_bits())];
        for (p, port) in self.engine.res_data.iter().enumerate() {
            put_field(&mut out, p * ACC, ACC, port.val().to_u64());
        }
        out
    }

    fn tick(&mut self) {
        self.engine.clock.next = Clock::from(true);
        self.settle();
        self.engine.clock.next = Clock::from(false);
        self.settle();
    }
}
