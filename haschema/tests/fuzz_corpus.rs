//! Replays the fuzzing corpus of haschema's parsers
//! (`fuzz/corpus/<target>/`, kept by cargo-fuzz and minimised) through the
//! same checks the fuzz targets run (`fuzz/schema_checks.rs`), so an
//! ordinary `cargo test` exercises every input the fuzzer found
//! interesting, without cargo-fuzz or nightly.

#[path = "../../fuzz/replay.rs"]
mod replay;
#[path = "../../fuzz/schema_checks.rs"]
mod schema_checks;

#[test]
fn cluster_config_corpus() {
    replay::replay("cluster_config", schema_checks::cluster_config);
}

#[test]
fn service_file_corpus() {
    replay::replay("service_file", schema_checks::service_file);
}

#[test]
fn agent_line_corpus() {
    replay::replay("agent_line", schema_checks::agent_line);
}

#[test]
fn json_messages_corpus() {
    replay::replay("json_messages", schema_checks::json_messages);
}
