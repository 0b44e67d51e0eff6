//! Fuzz target: haschema's `agent_line` check (see `schema_checks.rs`).
#![no_main]

#[path = "../schema_checks.rs"]
mod schema_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| schema_checks::agent_line(data));
