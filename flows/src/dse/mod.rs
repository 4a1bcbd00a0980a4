//! Design-space exploration: the matmul engine searched with the surrogate (`run`),
//! attention tops searched beside it (`attention`), and what both estimate (`estimate`).

pub mod attention;
pub mod estimate;
pub mod run;
