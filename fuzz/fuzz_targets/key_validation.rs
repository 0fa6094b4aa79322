#![no_main]
//! See fuzz/src/checks.rs, `check_key_validation`, for how the input is read and what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcrs_fuzz::check_key_validation(data));
