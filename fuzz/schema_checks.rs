//! The checks of the fuzz targets for haschema's parsers: the cluster
//! config, the service files, the agent protocol's lines and the JSON
//! messages of the control socket, the hamond-hasvrd link and the event
//! history. Shared with the corpus replay test
//! (`haschema/tests/fuzz_corpus.rs` includes this file), so that every
//! corpus file is re-checked by an ordinary `cargo test`.
//!
//! - [`cluster_config`]: `ClusterConfig::parse` on any text returns a
//!   config or an error with a message and a position, never panics, and
//!   gives the same answer twice.
//! - [`service_file`]: `ServiceConfig::parse` the same, against the sample
//!   cluster config (`etc/cluster.toml`).
//! - [`agent_line`]: agent requests and replies parse or are refused with
//!   a message; what parses writes back to a line that parses and writes
//!   back to itself (free text is normalised: tabs become spaces).
//! - [`json_messages`]: control requests and responses, link messages both
//!   ways and events: what deserializes serializes back to JSON that
//!   deserializes to the same value.

// Each includer uses a part of it.
#![allow(dead_code)]

use haschema::config::ClusterConfig;
use haschema::service::ServiceConfig;
use haschema::{agent, ctl, event, svclink};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::Path;

/// The sample cluster config the service files are checked against.
pub const CLUSTER: &str = include_str!("../etc/cluster.toml");

fn sample_cluster() -> ClusterConfig {
    ClusterConfig::parse(CLUSTER, Path::new("/etc/hacluster/cluster.toml"))
        .expect("etc/cluster.toml is valid")
}

/// Checks one input of the `cluster_config` target.
pub fn cluster_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("/etc/hacluster/cluster.toml");
    let first = ClusterConfig::parse(&text, file);
    if let Err(e) = &first {
        assert!(!e.to_string().is_empty(), "an error without a message");
    }
    assert_eq!(
        first,
        ClusterConfig::parse(&text, file),
        "not deterministic"
    );
}

/// Checks one input of the `service_file` target.
pub fn service_file(data: &[u8]) {
    let cluster = sample_cluster();
    let text = String::from_utf8_lossy(data);
    let file = Path::new("/etc/hacluster/services/www.toml");
    let first = ServiceConfig::parse(&text, file, &cluster);
    if let Err(e) = &first {
        assert!(!e.to_string().is_empty(), "an error without a message");
    }
    assert_eq!(
        first,
        ServiceConfig::parse(&text, file, &cluster),
        "not deterministic"
    );
}

/// Checks one input of the `agent_line` target.
pub fn agent_line(data: &[u8]) {
    match agent::Request::parse(data) {
        Ok(request) => {
            let line = request.to_line();
            let again = agent::Request::parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("{line:?} written from {request:?} is refused: {e}"));
            assert_eq!(again.to_line(), line, "from {request:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match agent::Reply::parse(data) {
        Ok(reply) => {
            let line = reply.to_line();
            let again = agent::Reply::parse(line.as_bytes())
                .unwrap_or_else(|e| panic!("{line:?} written from {reply:?} is refused: {e}"));
            assert_eq!(again.to_line(), line, "from {reply:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Checks one input of the `json_messages` target.
pub fn json_messages(data: &[u8]) {
    round_trip::<ctl::Request>(data);
    round_trip::<ctl::Response>(data);
    round_trip::<svclink::ToHamond>(data);
    round_trip::<svclink::ToHasvrd>(data);
    round_trip::<event::Event>(data);
    round_trip::<event::Filter>(data);
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let json = serde_json::to_string(&value).expect("a parsed message serializes");
    let again: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{json} written from {value:?} is refused: {e}"));
    assert_eq!(again, value, "{json}");
}
