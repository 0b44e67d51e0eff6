//! Service failover (issue 3): how long the client of a protected service
//! goes unserved, split into phases, on the web-service fixture
//! ([`hatests::web::WebService`]: real hamond and hasvrd on alpha and beta,
//! a floating IP and a small HTTP server, a client probing it every 100 ms,
//! the test power switch as fencing device).
//!
//! * Node crash: alpha (the holder) is powered off; beta detects the loss,
//!   fences alpha through the switch and starts the service.
//! * Application failure: the application's process is killed (SIGKILL) on
//!   the holder; its status probe finds it down. The first `restart_times`
//!   kills are recovered by a restart on the same node, the next one fails
//!   the service over to the peer; both are measured. The settings measured
//!   ([`WANTED`]) have `restart_times = 0`: every kill fails over, and the
//!   local restart part is skipped. (Without cgroup2, hasvrd is the killed
//!   server's subreaper: the status script's `kill -0` sees it gone only
//!   because hasvrd reaps its services' zombies before each status probe.)
//!
//! Every measurement runs at each setting of [`WANTED`]: the heartbeat
//! interval x maxmiss of every path (both UDP lans and the serial line)
//! and the service's `check_interval` x `check_tko`.
//!
//! Each phase ends at a line of a daemon's log, taken from the line's own
//! timestamp (tracing, UTC, RFC 3339, microseconds; all nodes share this
//! machine's clock) and measured from the wall clock just before the action.
//! "Client served" is the first answer of the new server to the fixture's
//! client, which asks every 100 ms (each probe a `curl` in the client's
//! namespace): it carries up to one probe period of granularity.

use crate::stats;
use haschema::ctl::ServiceOp;
use haschema::service::ServiceConfig;
use haschema::{config::ClusterConfig, config::NetworkKind};
use hatests::ClusterSpec;
use hatests::web::{NODES, PORT, SERVICE, WebService, WebSpec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant, SystemTime};

/// Longest wait for a log line once the client was served again.
const LOG_PATIENCE: Duration = Duration::from_secs(5);
/// Longest wait for the service to settle before an action.
const SETTLE: Duration = Duration::from_secs(40);
/// The client's probes in the local-restart measurement (as the fixture's).
const PROBE_EVERY: Duration = Duration::from_millis(100);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The settings issue 3 asks for: (label, interval in ms, count), as the
/// heartbeat interval x maxmiss of every path and the service's
/// `check_interval` x `check_tko`, with `restart_times = 0` (see
/// [`web_spec`]). The serial line (19200 baud) allows intervals from about
/// 49 ms.
const WANTED: [Setting; 2] = [("1 s x 3", 1000, 3), ("100 ms x 3", 100, 3)];

/// A setting: (label, interval in ms, count).
type Setting = (&'static str, u64, u32);

/// The service's `restart_times` in every setting.
const RESTART_TIMES: u32 = 0;

pub fn report(runs: usize) {
    println!(
        "## Service failover (client served again after a node crash or an application failure)\n"
    );
    println!(
        "Web-service fixture: hamond + hasvrd on alpha (active) and beta (standby), floating IP \
         and an HTTP server (socat), fencing by the test power switch. Phases end at log lines \
         (their own timestamps) and start at the wall clock of the action; \"client served\" is \
         the first answer of the new server to a client probing every 100 ms.\n"
    );
    let wanted: Vec<String> = WANTED
        .iter()
        .map(|(label, ms, n)| {
            format!("{label} (every path {ms} ms x {n}, check_interval {ms} ms x check_tko {n})")
        })
        .collect();
    println!(
        "Settings: {}; restart_times {RESTART_TIMES}.\n",
        wanted.join("; ")
    );
    for (i, setting) in WANTED.iter().enumerate() {
        report_setting(i, setting, runs);
    }
}

/// Every measurement at one [`WANTED`] setting (the `index`-th).
fn report_setting(index: usize, setting: &Setting, runs: usize) {
    let (label, _, _) = *setting;
    println!("### Setting {label}\n");
    let mut timing = None;
    let mut crash = Phases::new();
    for run in 0..runs {
        match std::panic::catch_unwind(|| crash_once(index, setting, run)) {
            Ok((sample, described)) => {
                crash.add(sample);
                timing.get_or_insert(described);
            }
            Err(_) => println!("- {label}: node crash run {run} failed (see the panic above)"),
        }
    }
    println!("Timing, as the fixture's files give it:");
    match timing {
        Some(timing) => println!("{timing}\n"),
        None => println!("  (unknown: no run started)\n"),
    }
    println!(
        "#### {label}: node crash: alpha powered off -> client served by beta ({runs} runs)\n"
    );
    crash.print();

    println!(
        "\n#### {label}: application failure: SIGKILL of the application on the holder \
         ({runs} runs, holder alternating)\n"
    );
    let (restarts, restart, failover) = application_runs(index, setting, runs);
    match restarts {
        Some(0) => println!(
            "restart_times is 0: no local restart, every kill fails the service over to the peer:"
        ),
        _ => {
            println!("Kills with local restarts left: restarted on the same node:");
            restart.print();
            println!("\nThe kill after them (restart_times used up): failed over to the peer:");
        }
    }
    failover.print();
    println!();
}

/// The fixture's cluster config and service file, as hamond and hasvrd
/// read them.
#[track_caller]
fn configs(w: &WebService) -> (ClusterConfig, ServiceConfig) {
    let cluster = w.cluster();
    let cfg = ClusterConfig::load(cluster.config_path()).unwrap_or_else(|e| panic!("{e}"));
    let file = cluster.services_dir().join(format!("{SERVICE}.toml"));
    let svc = ServiceConfig::load(&file, &cfg).unwrap_or_else(|e| panic!("{e}"));
    (cfg, svc)
}

/// The timing the fixture runs with, read from its own files.
fn describe_timing(w: &WebService) -> String {
    let (cfg, svc) = configs(w);
    let mut paths = Vec::new();
    let mut lost = Duration::ZERO;
    for n in &cfg.networks {
        let baud = match &n.kind {
            NetworkKind::Serial { baud, .. } => format!(", {baud} baud"),
            _ => String::new(),
        };
        paths.push(format!(
            "{} {} {:?} x {}{baud}",
            n.name,
            n.kind_name(),
            n.interval,
            n.maxmiss
        ));
        lost = lost.max(n.deadtime());
    }
    format!(
        "- cluster: {} (a node is lost when its last path is: after {lost:?} of silence)\n\
         - service: check_interval {:?} x check_tko {}, restart_times {}",
        paths.join("; "),
        svc.check_interval,
        svc.check_tko,
        svc.restart_times
    )
}

/// The fixture at `setting`: every path (both UDP lans and the serial
/// line) beats every interval and loses the peer after count misses, the
/// service is checked every interval and fails after count failed checks,
/// with [`RESTART_TIMES`] local restarts; fencing by the power switch.
fn web_spec(setting: &Setting) -> WebSpec {
    let (_, ms, count) = *setting;
    let cluster = ClusterSpec {
        udp_interval_ms: ms,
        udp_maxmiss: count,
        serial_interval_ms: ms,
        serial_maxmiss: count,
        ..ClusterSpec::with_nodes(&NODES)
    };
    WebSpec {
        fencing: true,
        cluster: Some(cluster),
        check: Some((Duration::from_millis(ms), count)),
        restart_times: Some(RESTART_TIMES),
        ..WebSpec::default()
    }
}

/// One run's phases, in print order: (label, duration).
type Sample = Vec<(&'static str, Duration)>;

/// Samples of several runs, summarised per phase.
struct Phases {
    labels: Vec<&'static str>,
    values: Vec<Vec<Duration>>,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            labels: Vec::new(),
            values: Vec::new(),
        }
    }

    fn add(&mut self, sample: Sample) {
        for (label, d) in sample {
            match self.labels.iter().position(|l| *l == label) {
                Some(i) => self.values[i].push(d),
                None => {
                    self.labels.push(label);
                    self.values.push(vec![d]);
                }
            }
        }
    }

    fn print(&self) {
        if self.labels.is_empty() {
            println!("- no run succeeded");
        }
        for (label, values) in self.labels.iter().zip(&self.values) {
            println!("- {label}: {}", stats::millis(values));
        }
    }
}

/// A daemon's log since an offset, with the timestamps of its lines.
struct Log {
    text: String,
    /// Where the next search starts (after the last line found).
    at: usize,
}

impl Log {
    fn since(w: &WebService, node: &str, offset: u64) -> Log {
        Log {
            text: w.cluster().log_since(node, offset),
            at: 0,
        }
    }

    /// The timestamp of the first line containing `needle` after the last
    /// line found; None if there is none (yet).
    fn next(&mut self, needle: &str) -> Option<SystemTime> {
        let rest = &self.text[self.at..];
        let mut pos = 0;
        for line in rest.split_inclusive('\n') {
            pos += line.len();
            if line.contains(needle)
                && let Some(t) = stamp(line)
            {
                self.at += pos;
                return Some(t);
            }
        }
        None
    }
}

/// The timestamp at the head of a log line.
fn stamp(line: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(line.split_whitespace().next()?).ok()
}

/// Waits until `node`'s log since `offset` has lines with `needles` in this
/// order; their timestamps.
#[track_caller]
fn log_times(w: &WebService, node: &str, offset: u64, needles: &[&str]) -> Vec<SystemTime> {
    let end = Instant::now() + LOG_PATIENCE;
    loop {
        let mut log = Log::since(w, node, offset);
        let found: Vec<SystemTime> = needles.iter().map_while(|n| log.next(n)).collect();
        if found.len() == needles.len() {
            return found;
        }
        assert!(
            Instant::now() < end,
            "{node} never logged {:?} after {:?}\n{}",
            needles[found.len()],
            &needles[..found.len()],
            w.cluster().log_since(node, offset)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `to - from`, zero if `to` is earlier.
fn span(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

/// The log line of the service's state machine that a grant of its lock
/// reached (`STANDBY -> ACTIVE... (OwnershipGranted)`).
const GRANTED: &str = "(OwnershipGranted)";

fn svc(what: &str) -> String {
    format!("service {SERVICE}: {what}")
}

/// Waits until `holder`'s client is served, `holder` holds the service with
/// an able peer (ACTIVE or ACTIVESTB, not ACTIVEACT) and `peer` is STANDBY.
#[track_caller]
fn settled(w: &WebService, holder: &str, peer: &str) {
    w.wait_served_by(holder);
    let end = Instant::now() + SETTLE;
    loop {
        let (h, p) = (
            w.cluster().service_state(holder, SERVICE),
            w.cluster().service_state(peer, SERVICE),
        );
        if matches!(h.as_deref(), Some("ACTIVE" | "ACTIVESTB")) && p.as_deref() == Some("STANDBY") {
            return;
        }
        assert!(
            Instant::now() < end,
            "the service did not settle on {holder} ({h:?}, {peer} {p:?})\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Powers alpha off and splits the client's outage along beta's log.
/// Also describes the timing it ran with.
fn crash_once(index: usize, setting: &Setting, run: usize) -> (Sample, String) {
    let w = WebService::start_with(&format!("bench-fo{index}-crash{run}"), web_spec(setting));
    let timing = describe_timing(&w);
    settled(&w, "alpha", "beta");
    let offset = w.cluster().log_len("beta");
    let ((t0, t_off), outage) = w.outage_during("alpha", "beta", || {
        let t0 = SystemTime::now();
        w.switch().power_off(w.cluster().ns("alpha"));
        (t0, SystemTime::now())
    });
    let served = t0 + outage.after_action;
    let t = log_times(
        &w,
        "beta",
        offset,
        &[
            "alpha was lost",
            "alpha is fenced",
            GRANTED,
            &svc("start of ips done"),
            &svc("start of application done"),
        ],
    );
    let (lost, fenced, granted, ips, app) = (t[0], t[1], t[2], t[3], t[4]);
    let sample = vec![
        (
            "power-off (the switch killing alpha's processes)",
            span(t0, t_off),
        ),
        (
            "detection (power-off -> beta: \"alpha was lost\")",
            span(t0, lost),
        ),
        ("fencing (lost -> \"alpha is fenced\")", span(lost, fenced)),
        (
            "resource start (fenced -> application started)",
            span(fenced, app),
        ),
        (
            "  lock granted (fenced -> OwnershipGranted)",
            span(fenced, granted),
        ),
        (
            "  floating IP (granted -> start of ips done)",
            span(granted, ips),
        ),
        (
            "  application (ips -> start of application done)",
            span(ips, app),
        ),
        (
            "client served (application started -> first answer)",
            span(app, served),
        ),
        (
            "total (power-off -> client served by beta)",
            outage.after_action,
        ),
    ];
    (sample, timing)
}

/// The application runs at `setting` (the `index`-th): per run
/// `restart_times` kills recovered by a local restart (none with
/// `restart_times = 0`), then a kill that fails the service over; the next
/// run starts on the new holder. One fixture for every run. Also the
/// `restart_times` the service ran with (None if the fixture did not
/// start).
fn application_runs(index: usize, setting: &Setting, runs: usize) -> (Option<u32>, Phases, Phases) {
    let (mut restart, mut failover) = (Phases::new(), Phases::new());
    let mut restart_times = None;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let w = WebService::start_with(&format!("bench-fo{index}-app"), web_spec(setting));
        let restarts = configs(&w).1.restart_times;
        restart_times = Some(restarts);
        let (mut holder, mut peer) = ("alpha", "beta");
        for _ in 0..runs {
            for _ in 0..restarts {
                settled(&w, holder, peer);
                restart.add(restart_once(&w, holder));
            }
            settled(&w, holder, peer);
            failover.add(failover_once(&w, holder, peer));
            // Forget the failures, so the old holder can host it again.
            if let Err(e) = w.cluster().service_op(holder, ServiceOp::Cleanup, SERVICE) {
                panic!("cleanup on {holder}: {e}");
            }
            (holder, peer) = (peer, holder);
        }
    }));
    if result.is_err() {
        println!("- the application runs stopped (see the panic above)");
    }
    (restart_times, restart, failover)
}

/// SIGKILL of the application's process on `node`; the wall clock just
/// before.
#[track_caller]
fn kill_app(w: &WebService, node: &str) -> SystemTime {
    let pid: i32 = w
        .app_pid(node)
        .parse()
        .unwrap_or_else(|e| panic!("pid of the application on {node}: {e}"));
    let t0 = SystemTime::now();
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap_or_else(|e| panic!("kill {pid}: {e}"));
    t0
}

/// Kills the application on `holder` (restarts left): detection by the
/// status probe, stop and start of the application, client served again.
fn restart_once(w: &WebService, holder: &str) -> Sample {
    let offset = w.cluster().log_len(holder);
    let me = w.addr(holder);
    let t0 = kill_app(w, holder);
    let began = Instant::now();
    // The first answer after at least one probe went unanswered (a probe
    // racing the kill may still be answered by the old process).
    let mut missed = false;
    let served = loop {
        w.assert_never_twice();
        let asked = Instant::now();
        match w.lan().fetch(w.fip(), PORT, PROBE_TIMEOUT) {
            Ok(body) if missed && body.trim() == me => break Instant::now(),
            Ok(_) => {}
            Err(_) => missed = true,
        }
        assert!(
            began.elapsed() < SETTLE,
            "{holder} did not serve again within {SETTLE:?}\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep((asked + PROBE_EVERY).saturating_duration_since(Instant::now()));
    };
    let served = t0 + served.duration_since(began);
    let t = log_times(
        w,
        holder,
        offset,
        &[
            &svc("application failed ("),
            &svc("stop of application done"),
            &svc("start of application done"),
        ],
    );
    let (failed, stopped, started) = (t[0], t[1], t[2]);
    vec![
        (
            "detection (kill -> \"application failed\" after the status probe)",
            span(t0, failed),
        ),
        (
            "stop of the application (-> stop of application done)",
            span(failed, stopped),
        ),
        (
            "start of the application (-> start of application done)",
            span(stopped, started),
        ),
        (
            "client served (application started -> first answer)",
            span(started, served),
        ),
        ("total (kill -> client served again)", span(t0, served)),
    ]
}

/// Kills the application on `holder` (restarts used up): detection, stop
/// and release on `holder`, grant and start on `peer`, client served by
/// `peer`.
fn failover_once(w: &WebService, holder: &str, peer: &str) -> Sample {
    let (h_off, p_off) = (w.cluster().log_len(holder), w.cluster().log_len(peer));
    let (t0, outage) = w.outage_during(holder, peer, || kill_app(w, holder));
    let served = t0 + outage.after_action;
    let h = log_times(
        w,
        holder,
        h_off,
        &[&svc("application failed ("), &svc("stop of volumes done")],
    );
    let p = log_times(
        w,
        peer,
        p_off,
        &[
            GRANTED,
            &svc("start of ips done"),
            &svc("start of application done"),
        ],
    );
    let (failed, stopped) = (h[0], h[1]);
    let (granted, ips, app) = (p[0], p[1], p[2]);
    vec![
        (
            "detection (kill -> \"application failed\" after the status probe)",
            span(t0, failed),
        ),
        (
            "stop on the holder (-> stop of volumes done)",
            span(failed, stopped),
        ),
        (
            "hand-over (stopped -> peer: OwnershipGranted)",
            span(stopped, granted),
        ),
        (
            "resource start on the peer (granted -> application started)",
            span(granted, app),
        ),
        (
            "  floating IP (granted -> start of ips done)",
            span(granted, ips),
        ),
        (
            "  application (ips -> start of application done)",
            span(ips, app),
        ),
        (
            "client served (application started -> first answer)",
            span(app, served),
        ),
        (
            "total (kill -> client served by the peer)",
            outage.after_action,
        ),
    ]
}
