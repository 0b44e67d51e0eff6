//! hamond's Prometheus endpoint with real daemons: with `[metrics] listen`
//! in the cluster config, `GET /metrics` inside a node's namespace answers
//! in the text exposition format 0.0.4 (read back with a third-party
//! parser): node info, peer and link state on every path, counters that
//! move between scrapes, and a forged datagram counted by reason. Other
//! paths and methods, oversized and silent requests get HTTP errors, and an
//! address that cannot be bound is logged while the daemon runs on. With a
//! service: its state on each node, and an operator's fail-over counted
//! with its duration.

use haschema::ctl::ServiceOp;
use hatests::web::{SERVICE, WebService, WebSpec};
use hatests::{ClusterSpec, LAN1, LAN2, SERIAL, TestCluster, require_root};
use prometheus_parse::{Sample, Scrape, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Where alpha's and beta's hamond serve metrics, each in its namespace.
const LISTEN: &str = "127.0.0.1:9464";
/// Longest wait for the cluster to come up, or for a counter to move.
const WAIT: Duration = Duration::from_secs(20);
/// Every path of the harness's cluster.
const PATHS: [&str; 3] = [SERIAL, LAN1, LAN2];

/// The harness's alpha and beta with `[metrics] listen = listen`.
fn with_metrics(listen: &str) -> ClusterSpec {
    ClusterSpec {
        extra_config: format!("[metrics]\nlisten = \"{listen}\""),
        ..ClusterSpec::with_nodes(&["alpha", "beta"])
    }
}

/// Starts alpha and beta with `[metrics] listen = listen` and waits until
/// they see each other up on every path; None without root (outside CI).
fn cluster_up(test: &str, listen: &str) -> Option<TestCluster> {
    if !require_root() {
        return None;
    }
    let c = TestCluster::start(test, with_metrics(listen));
    c.wait_until("alpha and beta see each other up", WAIT, |s| s.all_up());
    Some(c)
}

/// Sends `request` to hamond's metrics address from inside `node`'s
/// namespace; returns the whole answer (the server closes after one).
fn exchange(c: &TestCluster, node: &str, request: &[u8]) -> String {
    let addr: SocketAddr = LISTEN.parse().unwrap();
    let answer = c.ns(node).enter(|| -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        s.write_all(request)?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(out)
    });
    match answer {
        Ok(Ok(bytes)) => String::from_utf8(bytes).expect("an answer in UTF-8"),
        Ok(Err(e)) | Err(e) => panic!("GET {LISTEN} in {node}: {e}\n{}", c.log_tails(20)),
    }
}

/// The status line of an HTTP answer.
fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

/// `GET /metrics` on `node`, checked for 200 and the 0.0.4 content type,
/// and parsed.
fn scrape(c: &TestCluster, node: &str) -> Scrape {
    let answer = exchange(c, node, b"GET /metrics HTTP/1.1\r\nHost: hamond\r\n\r\n");
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head: {answer}"));
    assert_eq!(status_line(head), "HTTP/1.1 200 OK", "{head}");
    assert!(
        head.lines()
            .any(|l| l
                .eq_ignore_ascii_case("content-type: text/plain; version=0.0.4; charset=utf-8")),
        "content type of the text format 0.0.4: {head}"
    );
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("unparsable metrics ({e}):\n{body}"))
}

/// The sample `metric` whose labels include all of `labels`.
fn find<'s>(s: &'s Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'s Sample> {
    s.samples
        .iter()
        .find(|x| x.metric == metric && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
}

/// The value of a counter or gauge sample; panics (with what the scrape
/// holds) if missing or of another type than `counter` says.
#[track_caller]
fn value(s: &Scrape, metric: &str, labels: &[(&str, &str)], counter: bool) -> f64 {
    match find(s, metric, labels).map(|x| &x.value) {
        Some(Value::Counter(v)) if counter => *v,
        Some(Value::Gauge(v)) if !counter => *v,
        other => {
            let names: Vec<&str> = s.samples.iter().map(|x| x.metric.as_str()).collect();
            panic!(
                "{metric}{labels:?}: expected a {}, found {other:?}; metrics: {names:?}",
                if counter { "counter" } else { "gauge" }
            )
        }
    }
}

#[test]
fn metrics_show_the_cluster_and_move() {
    let Some(c) = cluster_up("metrics", LISTEN) else {
        return;
    };
    let status = c.status("alpha");
    let first = scrape(&c, "alpha");
    let info = find(&first, "hamond_node_info", &[("node", "alpha")])
        .unwrap_or_else(|| panic!("no hamond_node_info: {:?}", first.samples));
    let incarnation = status.incarnation.to_string();
    for (label, want) in [
        ("cluster", c.spec().cluster_name.as_str()),
        ("incarnation", incarnation.as_str()),
        ("config_hash", status.config_hash.as_str()),
    ] {
        assert_eq!(info.labels.get(label), Some(want), "node_info {label}");
    }
    for name in [
        "hamond_node_info",
        "hamond_peer_up",
        "hamond_frames_rejected_total",
    ] {
        assert!(first.docs.contains_key(name), "HELP for {name}");
    }
    let beta = [("node", "alpha"), ("peer", "beta")];
    assert_eq!(value(&first, "hamond_peer_up", &beta, false), 1.0);
    for path in PATHS {
        let link = [("node", "alpha"), ("peer", "beta"), ("path", path)];
        assert_eq!(value(&first, "hamond_link_up", &link, false), 1.0, "{path}");
        let heard = value(&first, "hamond_link_last_heard_seconds", &link, false);
        assert!(
            (0.0..5.0).contains(&heard),
            "{path}: last heard {heard} s ago"
        );
        let rtt = value(&first, "hamond_link_round_trip_seconds", &link, false);
        assert!((0.0..2.0).contains(&rtt), "{path}: round trip {rtt} s");
    }
    assert!(value(&first, "hamond_membership_epoch", &[], false) >= 1.0);
    assert_eq!(value(&first, "hamond_stalls_total", &[], true), 0.0);

    // Heartbeats flow on every path: every counter moves between scrapes.
    std::thread::sleep(Duration::from_millis(1500));
    let second = scrape(&c, "alpha");
    let counters = [
        "hamond_frames_sent_total",
        "hamond_frames_received_total",
        "hamond_bytes_sent_total",
        "hamond_bytes_received_total",
    ];
    for path in PATHS {
        for metric in counters {
            let at = [("node", "alpha"), ("path", path)];
            let (a, b) = (
                value(&first, metric, &at, true),
                value(&second, metric, &at, true),
            );
            assert!(b > a, "{metric} on {path}: {a} then {b}");
        }
    }
    let up = |s: &Scrape| value(s, "hamond_uptime_seconds", &[("node", "alpha")], false);
    assert!(up(&second) >= up(&first) + 1.0, "uptime moves");

    // A real frame of beta's to alpha with its MAC damaged, sent again from
    // beta's address: counted as bad_mac on lan1.
    let bad_mac = [("node", "alpha"), ("path", LAN1), ("reason", "bad_mac")];
    let before = value(&second, "hamond_frames_rejected_total", &bad_mac, true);
    let mut frame = c.capture_frame(LAN1, "beta", "alpha", Duration::from_secs(5));
    if let Some(last) = frame.payload.last_mut() {
        *last ^= 0x5a;
    }
    assert!(c.send_raw_udp("beta", c.addr("alpha", LAN1), &frame.payload));
    let start = Instant::now();
    loop {
        let now = scrape(&c, "alpha");
        let after = value(&now, "hamond_frames_rejected_total", &bad_mac, true);
        if after > before {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "bad_mac stayed at {after} after a forged frame\n{}",
            c.log_tails(20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(c.snapshot().all_up(), "the forged frame changed nothing");
}

/// The state `node` advertised for the service, as `s` shows it.
fn service_state<'s>(s: &'s Scrape, node: &str) -> Option<&'s str> {
    let sample = find(
        s,
        "hamond_service_state",
        &[("service", SERVICE), ("node", node)],
    )?;
    assert_eq!(sample.value, Value::Gauge(1.0), "{sample:?}");
    sample.labels.get("state")
}

/// Scrapes `node` until `done` holds for the scrape (at most [`WAIT`]).
#[track_caller]
fn scrape_until(c: &TestCluster, node: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let s = scrape(c, node);
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < WAIT,
            "{node}'s metrics never showed {what}: {:?}\n{}",
            s.samples,
            c.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn service_states_and_failovers_are_shown() {
    if !require_root() {
        return;
    }
    let w = WebService::start_with(
        "metrics_service",
        WebSpec {
            cluster: Some(with_metrics(LISTEN)),
            ..WebSpec::default()
        },
    );
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let c = w.cluster();
    // Each node's hamond shows both nodes' states, its own and the peer's.
    for node in ["alpha", "beta"] {
        let s = scrape_until(c, node, "www ACTIVE on alpha, STANDBY on beta", |s| {
            service_state(s, "alpha") == Some("ACTIVE")
                && service_state(s, "beta") == Some("STANDBY")
        });
        let failovers = find(&s, "hamond_failovers_total", &[("service", SERVICE)]);
        assert!(failovers.is_none(), "no failover yet: {failovers:?}");
    }

    let done = c.service_op("beta", ServiceOp::FailOver, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    w.wait_served_by("beta");
    // Recorded by beta, shared with alpha: both count it.
    for node in ["beta", "alpha"] {
        let s = scrape_until(c, node, "the fail-over to beta", |s| {
            // ACTIVE, or ACTIVESTB once alpha stands by again.
            service_state(s, "beta").is_some_and(|st| st.starts_with("ACTIVE"))
                && find(s, "hamond_failovers_total", &[("service", SERVICE)]).is_some()
        });
        let at = [("node", node), ("service", SERVICE)];
        assert_eq!(value(&s, "hamond_failovers_total", &at, true), 1.0);
        let took = value(&s, "hamond_failover_last_duration_seconds", &at, false);
        assert!(took > 0.0, "{node}: the fail-over took {took} s");
    }
}

#[test]
fn other_requests_get_http_errors_and_the_daemon_runs_on() {
    let Some(c) = cluster_up("metrics_http", LISTEN) else {
        return;
    };
    let pid = c.pid("alpha");
    let mut oversized = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    oversized.resize(64 * 1024, b'a');
    let cases: [(&str, &[u8], &str); 5] = [
        (
            "POST",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd",
            "405",
        ),
        ("another path", b"GET /status HTTP/1.1\r\n\r\n", "404"),
        ("not HTTP", b"hello there\r\n\r\n", "400"),
        ("a 64 KiB head", &oversized, "431"),
        ("HEAD", b"HEAD /metrics HTTP/1.0\r\n\r\n", "200"),
    ];
    for (what, request, code) in cases {
        let answer = exchange(&c, "alpha", request);
        let line = status_line(&answer);
        assert!(
            line.starts_with(&format!("HTTP/1.1 {code} ")),
            "{what}: {line}"
        );
    }
    // A client that connects and says nothing is answered and dropped.
    let start = Instant::now();
    let silent = exchange(&c, "alpha", b"");
    assert!(
        status_line(&silent).starts_with("HTTP/1.1 408 "),
        "{silent}"
    );
    assert!(start.elapsed() < Duration::from_secs(10), "read timeout");

    let s = scrape(&c, "alpha");
    let beta = [("node", "alpha"), ("peer", "beta")];
    assert_eq!(value(&s, "hamond_peer_up", &beta, false), 1.0);
    assert!(c.snapshot().all_up(), "the cluster is unaffected");
    assert_eq!(c.pid("alpha"), pid, "alpha's hamond kept running");
}

#[test]
fn an_address_that_cannot_be_bound_is_logged_and_the_daemon_runs_on() {
    // TEST-NET-1: on no interface of the nodes' namespaces.
    let Some(c) = cluster_up("metrics_nobind", "192.0.2.1:9464") else {
        return;
    };
    c.wait_for_log(
        "alpha",
        "metrics: cannot listen on 192.0.2.1:9464",
        Duration::from_secs(5),
    );
    assert!(
        c.log("alpha").contains("hamond runs on without metrics"),
        "the log says the daemon runs on"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(c.snapshot().all_up(), "the cluster runs without metrics");
}
