//! The LM-head engine's RTL (`cpp/lm_head_shim.cpp`) against the golden head scores and
//! argmax (`golden::vector`), bit for bit, with exact handshake counts.

use std::path::Path;

use tern_hdl::program::{Int4Head, Int8Head};
use tern_hdl::vector::{lm_head_verilog, LmHeadShape, LM_HEAD_FILE, LM_HEAD_MODULE};

use super::{BlockLib, VectorError};
use crate::golden::vector::{argmax, head4_scores, head_scores};
use crate::verilator::{BridgeError, ModelCache};

const LM_HEAD_SHIM: &str = include_str!("../../../cpp/lm_head_shim.cpp");

/// What one command did, seen from outside (`LmHeadOutcome` in the shim).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct LmHeadOutcome {
    /// From the command to done; `u64::MAX`: no done within the limit.
    pub clocks: u64,
    pub q_taken: u64,
    pub w_taken: u64,
    pub m_taken: u64,
    /// Mantissas taken without their group's last beat.
    pub m_misplaced: u64,
    /// Scores out, including any within a few clocks after done.
    pub scores: u64,
    pub best_score: i64,
    pub best_row: u32,
    pub error: u32,
}

#[allow(clippy::type_complexity)]
type LmHeadRunFn = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    u32,
    u32,
    u32,
    u32,
    *const i8,
    *const i8,
    *const u16,
    *mut i64,
    *mut LmHeadOutcome,
    u64,
    u64,
);

/// A head in one of the engine's formats.
#[derive(Debug, Clone, Copy)]
pub enum Head<'a> {
    /// int8 weights, a scale per row (a row is one group).
    Int8(&'a Int8Head),
    /// 4-bit weights (or any weights of the engine's width) in groups with a scale each.
    Grouped(&'a Int4Head),
}

impl Head<'_> {
    fn rows(&self) -> usize {
        match self {
            Head::Int8(h) => h.rows,
            Head::Grouped(h) => h.rows,
        }
    }
    fn width(&self) -> usize {
        match self {
            Head::Int8(h) => h.width,
            Head::Grouped(h) => h.width,
        }
    }
    fn group(&self) -> usize {
        match self {
            Head::Int8(h) => h.width,
            Head::Grouped(h) => h.group,
        }
    }
    fn weights(&self) -> &[i8] {
        match self {
            Head::Int8(h) => &h.w,
            Head::Grouped(h) => &h.w,
        }
    }
    fn mantissas(&self) -> &[u16] {
        match self {
            Head::Int8(h) => &h.row_m,
            Head::Grouped(h) => &h.group_m,
        }
    }
    /// The golden model's scores.
    fn golden(&self, q: &[i8]) -> Vec<i64> {
        match self {
            Head::Int8(h) => head_scores(h, q),
            Head::Grouped(h) => head4_scores(h, q),
        }
    }
}

/// A raw command, as the sequencer would issue it (sizes in beats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmHeadCommand {
    pub rows: u32,
    pub beats: u32,
    pub group_beats: u32,
    pub scores: bool,
}

/// A Verilated LM-head engine of one shape.
pub struct LmHeadModel {
    shape: LmHeadShape,
    block: BlockLib,
    run: LmHeadRunFn,
}

impl ModelCache {
    /// Build (or load from the cache) the LM-head engine of `shape`.
    pub fn load_lm_head(&self, shape: LmHeadShape) -> Result<LmHeadModel, BridgeError> {
        let shim = format!(
            "#define WEIGHT_BITS {}\n#define SLICES {}\n{LM_HEAD_SHIM}",
            shape.weight_bits, shape.slices
        );
        let (block, run) = self.load_vector_block(
            (LM_HEAD_MODULE, LM_HEAD_FILE, "tern_lm_head"),
            lm_head_verilog(shape),
            &shim,
            shape.lanes,
        )?;
        Ok(LmHeadModel { shape, block, run })
    }
}

impl LmHeadModel {
    pub fn shape(&self) -> LmHeadShape {
        self.shape
    }

    /// Run one command as given (nothing checked here): the scores that came out (at
    /// most `rows`) and the outcome.
    pub fn raw(
        &self,
        cmd: LmHeadCommand,
        q: &[i8],
        w: &[i8],
        m: &[u16],
        stall_seed: u64,
        vcd: Option<&Path>,
    ) -> Result<(Vec<i64>, LmHeadOutcome), BridgeError> {
        let lanes = self.shape.lanes;
        let beats = cmd.beats as usize;
        let weight_beats = cmd.rows as usize * beats;
        // Room for what the shim may present, whatever the command says.
        let mut q = q.to_vec();
        q.resize(q.len().max(beats * lanes), 0);
        let mut w = w.to_vec();
        w.resize(w.len().max(weight_beats * lanes), 0);
        let groups = weight_beats.div_ceil(cmd.group_beats.max(1) as usize);
        let mut m = m.to_vec();
        m.resize(m.len().max(groups * self.shape.slices), 0);
        let mut scores = vec![0i64; cmd.rows as usize];
        let mut out = LmHeadOutcome::default();
        let limit = 200 + 8 * (beats + weight_beats) as u64;
        // SAFETY: q, w and m cover every beat the command can take (resized above),
        // `scores` holds `rows`, `out` is one outcome.
        self.block.with_instance(vcd, |p| unsafe {
            (self.run)(
                p,
                cmd.rows,
                cmd.beats,
                cmd.group_beats,
                u32::from(cmd.scores),
                q.as_ptr(),
                w.as_ptr(),
                m.as_ptr(),
                scores.as_mut_ptr(),
                &mut out,
                limit,
                stall_seed,
            )
        })?;
        scores.truncate((out.scores as usize).min(scores.len()));
        Ok((scores, out))
    }

    /// The command for `head` on this engine.
    pub fn command(&self, head: Head, scores: bool) -> LmHeadCommand {
        let lanes = self.shape.lanes;
        let beats = head.width() / lanes;
        LmHeadCommand {
            rows: head.rows() as u32,
            beats: beats as u32,
            group_beats: if head.group() == head.width() {
                beats as u32
            } else {
                (head.group() / lanes).max(1) as u32
            },
            scores,
        }
    }

    /// One head against the golden scores and argmax, bit for bit: every input beat
    /// taken once, a mantissa with each group's last beat, exactly `rows` scores when
    /// asked (none otherwise), nothing after done. The clocks on success; a mismatch
    /// writes a waveform.
    pub fn check(
        &self,
        head: Head,
        q: &[i8],
        scores: bool,
        (seed, stall_seed): (u64, u64),
        waveforms: &Path,
    ) -> Result<u64, VectorError> {
        let lanes = self.shape.lanes;
        let cmd = self.command(head, scores);
        let slices = self.shape.slices;
        let groups_fit = if slices == 1 {
            head.group().is_multiple_of(lanes)
        } else {
            head.group() * slices == lanes
        };
        assert!(
            head.width().is_multiple_of(lanes) && q.len() == head.width() && groups_fit,
            "a head of width {} in groups of {}, a vector of {}, on {lanes} lanes in {slices} slices",
            head.width(),
            head.group(),
            q.len()
        );
        let want = head.golden(q);
        let best = argmax(&want);
        let (got, out) = self.raw(cmd, q, head.weights(), head.mantissas(), stall_seed, None)?;
        let rows = head.rows();
        let beats = cmd.beats as u64;
        let groups = rows as u64 * beats / cmd.group_beats as u64;
        let what = if out.clocks == u64::MAX {
            Some(format!(
                "no done within the clock limit ({} of {rows} scores)",
                out.scores
            ))
        } else if out.error != 0 {
            Some("the command was refused".into())
        } else if out.q_taken != beats || out.w_taken != rows as u64 * beats {
            Some(format!(
                "took {} vector and {} weight beats for {beats} and {}",
                out.q_taken,
                out.w_taken,
                rows as u64 * beats
            ))
        } else if out.m_taken != groups || out.m_misplaced != 0 {
            Some(format!(
                "took {} mantissa words for {groups} groups, {} not with the group's last beat",
                out.m_taken, out.m_misplaced
            ))
        } else if out.scores != if scores { rows as u64 } else { 0 } {
            Some(format!(
                "{} scores out for {rows} rows (scores asked: {scores})",
                out.scores
            ))
        } else if let Some(r) = (0..got.len()).find(|&r| got[r] != want[r]) {
            Some(format!(
                "first differing score: row {r} = {} (golden {})",
                got[r], want[r]
            ))
        } else if out.best_row as usize != best || out.best_score != want[best] {
            Some(format!(
                "chose row {} with {} (golden row {best} with {})",
                out.best_row, out.best_score, want[best]
            ))
        } else {
            None
        };
        if let Some(what) = what {
            let rerun = |vcd: &Path| {
                drop(self.raw(
                    cmd,
                    q,
                    head.weights(),
                    head.mantissas(),
                    stall_seed,
                    Some(vcd),
                ))
            };
            let at = ("lm_head", lanes, seed, rows * head.width());
            return Err(self.block.mismatch(rerun, waveforms, what, at));
        }
        Ok(out.clocks)
    }
}
