//! Fuzz target: the serial deframer on an arbitrary byte stream in
//! arbitrary chunks (see `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::serial_deframe(data));
