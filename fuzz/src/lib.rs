//! Checks behind the cargo-fuzz targets of mcrs. They live in `checks.rs` so
//! that `tests/fuzz_regressions.rs` in the main crate can include the very
//! same code (by `#[path]`) and replay every kept input without libFuzzer.

mod checks;

pub use checks::*;
