//! tern-build: the build layer (what Amaranth calls *build*). Its one job: run
//! synthesis and place-and-route for (design, board) pairs and cache the records.
//!
//! - [`synth`]: the tool runners (Yosys, nextpnr), their scripts, the report parsers and
//!   the result cache;
//! - [`job`]: one (design, board) job and its row;
//! - [`sweep`]: many (design, board) jobs, with progress and resumable rows;
//! - [`executor`]: where the jobs of a sweep run: the local thread pool (default) or a
//!   Slurm cluster, through a run directory on a shared filesystem.

pub mod executor;
pub mod job;
pub mod slurm;
pub mod sweep;
pub mod synth;
