//! A console with no cluster, drawn from fixed data: "connected" to alpha
//! of the sample cluster (`etc/cluster.toml`, two nodes), with a status
//! report (one heartbeat path up, one down), services in each state's
//! colour and two failovers. Its client thread has no connection: a job
//! that reaches it is answered "not connected", which disconnects the
//! console, so a test sees whether anything was sent.

use egui_kittest::Harness;
use hagui::Console;
use hagui::model::{ClusterDoc, Link};
use haschema::ctl::{ServiceStatus, StatusReport};
use haschema::event::Event;

pub type Ui = Harness<'static, Console>;

/// The sample cluster config.
const CLUSTER: &str = include_str!("../../../etc/cluster.toml");

fn status() -> StatusReport {
    serde_json::from_value(serde_json::json!({
        "cluster": "demo", "netid": 7, "node": "alpha", "domain": 1, "incarnation": 3,
        "boot": "0a0b0c0d", "config_hash": "01020304", "epoch": 4,
        "view": {"epoch": 4, "coordinator": "alpha", "members": ["alpha", "beta"], "quorum": true},
        "uptime_ms": 60000, "stalls": 0, "last_stall_ms": null,
        "peers": [{
            "name": "beta", "domain": 2, "state": "up", "incarnation": 2,
            "config_matches": true, "since_ms": 50000, "cause": null,
            "links": [
                {"path": "lan1", "state": "up", "last_heard_ms": 80, "rtt_us": 310, "cause": null},
                {"path": "rs232", "state": "down", "last_heard_ms": null, "rtt_us": null,
                 "cause": "silent for 2s"}
            ]
        }],
        "paths": [
            {"name": "rs232", "kind": "serial", "open": true, "error": null, "frames_sent": 10,
             "frames_received": 0, "bytes_sent": 470, "bytes_received": 0, "rejected": {}},
            {"name": "lan1", "kind": "udp", "open": true, "error": null, "frames_sent": 600,
             "frames_received": 598, "bytes_sent": 25800, "bytes_received": 25714, "rejected": {}}
        ]
    }))
    .expect("a status report")
}

/// One service per colour: gold, green, red, grey.
fn services() -> Vec<ServiceStatus> {
    let service = |name: &str, alpha: &str, beta: &str| {
        serde_json::from_value(serde_json::json!({
            "name": name, "owner": "alpha", "failures": 0, "fault": null,
            "nodes": [
                {"node": "alpha", "state": alpha, "can_host": true},
                {"node": "beta", "state": beta, "can_host": true}
            ]
        }))
        .expect("a service status")
    };
    vec![
        service("www", "ACTIVE", "STANDBY"),
        service("db", "ERRORACT", "STANDBY"),
        service("nfs", "OUTACT", "OUTSTB"),
    ]
}

/// Two failovers of www, with their phases.
pub fn failovers() -> Vec<Event> {
    let failover = |at_ms: u64, node: &str, cause: &str, phases: &[(&str, u64)]| {
        let phases: Vec<_> = phases
            .iter()
            .map(|(name, ms)| serde_json::json!({"name": name, "ms": ms}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "at_ms": at_ms, "node": node, "kind": "failover", "severity": "warning",
            "service": "www", "what": format!("failed over to {node}"), "cause": cause,
            "phases": phases
        }))
        .expect("an event")
    };
    vec![
        failover(
            1_795_000_000_000,
            "beta",
            "alpha lost",
            &[
                ("detection", 2000),
                ("fencing", 900),
                ("stop", 0),
                ("start", 400),
            ],
        ),
        failover(
            1_795_000_600_000,
            "alpha",
            "application check failed",
            &[("detection", 300), ("stop", 200), ("start", 350)],
        ),
    ]
}

/// The console, shown at `size`, as if connected to alpha.
pub fn connected(size: [f32; 2]) -> Ui {
    let dir = std::env::temp_dir().join(format!("hagui-fixed-{}", std::process::id()));
    let mut console = Console::new(dir.join("known_hosts")).expect("the client thread starts");
    let m = console.model_mut();
    m.link = Link::Connected {
        server: "alpha:7405".into(),
    };
    m.status = Some(status());
    m.services = services();
    m.selected = Some("www".into());
    m.cluster = Some(ClusterDoc::new(
        "0.3.1".parse().expect("a version"),
        CLUSTER.to_owned(),
    ));
    m.failovers = failovers();
    let mut h = Harness::builder()
        .with_size(size)
        .build_ui_state(|ui, console: &mut Console| console.ui(ui), console);
    h.run_ok();
    h
}
