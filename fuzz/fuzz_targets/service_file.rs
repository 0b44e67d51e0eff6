//! Fuzz target: haschema's `service_file` check (see `schema_checks.rs`).
#![no_main]

#[path = "../schema_checks.rs"]
mod schema_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| schema_checks::service_file(data));
