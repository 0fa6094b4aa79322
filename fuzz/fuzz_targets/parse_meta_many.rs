#![no_main]
//! See fuzz/src/checks.rs, `check_parse_meta_many`, for how the input is read and what is checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcrs_fuzz::check_parse_meta_many(data));
