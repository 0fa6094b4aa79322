#![no_main]
//! See fuzz/src/checks.rs, `check_encode_roundtrip`, for how the input is read and what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcrs_fuzz::check_encode_roundtrip(data));
