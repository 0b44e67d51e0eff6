//! [`WebService`]: a protected web service on a two-node [`TestCluster`],
//! the fixture of the service tests and of the demo's second part.
//!
//! Real hamond and hasvrd run on two nodes, `alpha` (the service's active
//! node) and `beta` (its standby). The service `www` is a floating IP on a
//! [`PublicLan`] and a small HTTP server (`socat`) started and stopped by
//! its scripts; a client in its own namespace fetches it. Each node's
//! server answers with that node's own address on the public LAN, so an
//! answer says which node served. A [`PowerSwitch`] can power a node off
//! (a crash) and, when asked for, is the cluster's fencing device.
//!
//! Every poll of the waits here also checks that the floating IP is on at
//! most one node at once (safety rule 1) and panics, with the daemons' log
//! tails, the first time it is on both.

use crate::publan::NIC;
use crate::scratch::{ScratchDir, write_script};
use crate::{ClusterSpec, PowerSwitch, PublicLan, TestCluster};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Longest wait for the service to settle somewhere (fence, start).
pub const WAIT: Duration = Duration::from_secs(40);
/// The port the application answers HTTP on.
pub const PORT: u16 = 8080;
/// The service's name.
pub const SERVICE: &str = "www";
/// The two nodes: the service's active node, then its standby.
pub const NODES: [&str; 2] = ["alpha", "beta"];
/// How often [`WebService::outage_during`] asks the floating IP.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long one of those probes waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The test application: `www start|stop|status`. It answers HTTP on
/// `PORT` with the node's own address on the public LAN (so the client
/// knows who served), keeps its pid in `DIR/www-ADDR.pid`, and its status
/// follows LSB (0 running, 3 stopped).
fn app_script(dir: &Path) -> String {
    let body = format!(
        r#"me=$(ip -o -4 addr show dev {NIC} scope global | awk 'NR == 1 {{ split($4, a, "/"); print a[1] }}')
pidfile="{dir}/www-$me.pid"
running() {{ [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }}
case "$1" in
start)
    running && exit 0
    socat TCP-LISTEN:{PORT},fork,reuseaddr "SYSTEM:echo HTTP/1.0 200 OK; echo; echo $me" \
        </dev/null >/dev/null 2>&1 &
    echo $! > "$pidfile"
    exit 0 ;;
stop)
    running && kill "$(cat "$pidfile")"
    rm -f "$pidfile"
    exit 0 ;;
status)
    running && exit 0
    exit 3 ;;
esac
exit 2"#,
        dir = dir.display()
    );
    write_script(dir, SERVICE, &body)
}

/// The service file: alpha active, beta standby, one floating IP;
/// `extra` lines go in before the floating IP's table.
fn service_file(script: &str, ip: Ipv4Addr, extra: &str) -> String {
    format!(
        r#"name = "{SERVICE}"
active = "alpha"
standby = ["beta"]
start = ["{script}", "start"]
stop = ["{script}", "stop"]
status = ["{script}", "status"]
start_timeout = "20s"
stop_timeout = "15s"
resource_release_timeout = "15s"
check_interval = "1s"
check_tko = 1
restart_times = 1
onstart = true
{extra}

[[ip]]
address = "{ip}/24"
nics = {{ alpha = ["{NIC}"], beta = ["{NIC}"] }}
"#
    )
}

/// What the client saw while the service moved from one node to another
/// ([`WebService::outage_during`]).
#[derive(Debug, Clone)]
pub struct Outage {
    /// The client's outage: from the last answer of the old node to the
    /// first answer of the new one.
    pub gap: Duration,
    /// From the start of the action to the first answer of the new node.
    pub after_action: Duration,
    /// Probes in between that got no answer (refused, timed out).
    pub failed_probes: usize,
}

/// How to build a [`WebService`].
#[derive(Clone, Debug, Default)]
pub struct WebSpec {
    /// The power switch is the cluster's fencing device; without it the
    /// cluster has none (a lost owner stalls its service until `fence
    /// confirm`).
    pub fencing: bool,
    /// Lines added to the service file's top-level keys (e.g.
    /// `switchback = true`, `check_tko = 2`, `agent = [...]`); a key
    /// given here must not be one the fixture writes.
    pub service_extra: String,
}

/// A two-node cluster running the web service `www`, with its public LAN,
/// its client and a power switch. Dropping it tears everything down.
pub struct WebService {
    // Dropped in this order: the LAN (client), the cluster, the directory.
    lan: PublicLan,
    cluster: TestCluster,
    fip: Ipv4Addr,
    switch: PowerSwitch,
    dir: ScratchDir,
}

impl WebService {
    /// Starts the cluster `test` (nodes alpha and beta), its public LAN and
    /// client, and hasvrd on both nodes with the `www` service; returns
    /// without waiting for the service to run. With `fencing`, the power
    /// switch is the cluster's fencing device; without it the cluster has
    /// none (a lost owner stalls its service until `fence confirm`).
    #[track_caller]
    pub fn start(test: &str, fencing: bool) -> WebService {
        WebService::start_with(
            test,
            WebSpec {
                fencing,
                ..WebSpec::default()
            },
        )
    }

    /// [`WebService::start`] with more settings.
    #[track_caller]
    pub fn start_with(test: &str, web: WebSpec) -> WebService {
        let fencing = web.fencing;
        let dir = ScratchDir::new(test);
        let switch = PowerSwitch::install(dir.path());
        let mut spec = ClusterSpec::with_nodes(&NODES);
        if fencing {
            spec.extra_config = format!(
                "[[fence]]\nname = \"switch\"\nagent = [\"{}\"]\nnodes = [\"alpha\", \"beta\"]\n\
                 timeout = \"20s\"\n",
                switch.agent().display()
            );
        }
        let cluster = TestCluster::start(test, spec);
        for node in NODES {
            switch.connect(node, cluster.ns(node), &[]);
        }
        let lan = PublicLan::new(test, &[cluster.ns("alpha"), cluster.ns("beta")]);
        let fip = lan.floating(0);
        let script = app_script(dir.path());
        let file = cluster.services_dir().join(format!("{SERVICE}.toml"));
        std::fs::write(&file, service_file(&script, fip, &web.service_extra))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for node in NODES {
            cluster.start_hasvrd(node);
        }
        WebService {
            lan,
            cluster,
            fip,
            switch,
            dir,
        }
    }

    /// The cluster (daemons, logs, control sockets).
    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    /// The public LAN, with the client's namespace.
    pub fn lan(&self) -> &PublicLan {
        &self.lan
    }

    /// The power switch (also the fencing device when started with fencing).
    pub fn switch(&self) -> &PowerSwitch {
        &self.switch
    }

    /// The service's floating IP.
    pub fn fip(&self) -> Ipv4Addr {
        self.fip
    }

    /// The URL the client fetches: `http://FIP:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}:{PORT}/", self.fip)
    }

    /// The node's own address on the public LAN: what its server answers.
    #[track_caller]
    pub fn addr(&self, node: &str) -> String {
        let i = NODES
            .iter()
            .position(|n| *n == node)
            .unwrap_or_else(|| panic!("no node {node}"));
        self.lan.host(i as u8 + 1).to_string()
    }

    /// The node whose server gave this answer, if any.
    pub fn node_of(&self, answer: &str) -> Option<&'static str> {
        NODES
            .into_iter()
            .find(|node| answer.trim() == self.addr(node))
    }

    /// One request of the client to the floating IP (2 s at most): the
    /// answer (a node's address), or why there was none.
    pub fn fetch(&self) -> Result<String, String> {
        self.lan.fetch(self.fip, PORT, Duration::from_secs(2))
    }

    /// The nodes that hold the floating IP now.
    pub fn holders(&self) -> Vec<&'static str> {
        NODES
            .into_iter()
            .filter(|n| {
                self.cluster
                    .ns(n)
                    .ip(&["-o", "addr", "show", "dev", NIC])
                    .contains(&format!("{}/", self.fip))
            })
            .collect()
    }

    /// Panics, with the log tails, if the floating IP is on both nodes.
    #[track_caller]
    pub fn assert_never_twice(&self) {
        let holders = self.holders();
        assert!(
            holders.len() <= 1,
            "the floating IP is on {holders:?} at once\n{}",
            self.cluster.log_tails(40)
        );
    }

    /// Waits (at most [`WAIT`]) until the client gets `node`'s answer
    /// through the floating IP.
    #[track_caller]
    pub fn wait_served_by(&self, node: &str) {
        let want = self.addr(node);
        let end = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < end {
            self.assert_never_twice();
            match self.fetch() {
                Ok(body) if body.trim() == want => return,
                Ok(body) => last = format!("answered {body:?}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the client was not served by {node} ({want}) within {WAIT:?}; last: {last}\n{}",
            self.cluster.log_tails(60)
        );
    }

    /// Waits (at most [`WAIT`]) until `node`'s hasvrd reports `state` for
    /// the service.
    #[track_caller]
    pub fn wait_state(&self, node: &str, state: &str) {
        let end = Instant::now() + WAIT;
        let mut last = None;
        while Instant::now() < end {
            last = self.cluster.service_state(node, SERVICE);
            if last.as_deref() == Some(state) {
                return;
            }
            self.assert_never_twice();
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{node} never reported {SERVICE} {state} within {WAIT:?} (last {last:?})\n{}",
            self.cluster.log_tails(60)
        );
    }

    /// Runs `action` (on its own thread) while the client asks the floating
    /// IP every 100 ms (each probe waits 0.5 s at most), and measures the
    /// client's outage as the service moves from `from` to `to`. First
    /// waits until `from` serves; then polls until `to` answers, at most
    /// [`WAIT`] after the action started. Returns what `action` returned
    /// (once it is done) and the outage.
    #[track_caller]
    pub fn outage_during<T: Send>(
        &self,
        from: &str,
        to: &str,
        action: impl FnOnce() -> T + Send,
    ) -> (T, Outage) {
        self.wait_served_by(from);
        let (old, new) = (self.addr(from), self.addr(to));
        let mut last_old = Instant::now();
        let mut failed_probes = 0;
        let mut last = String::from("no probe");
        std::thread::scope(|s| {
            let began = Instant::now();
            let mut running = Some(s.spawn(action));
            let mut value = None;
            let end = began + WAIT;
            let first_new = loop {
                // An action that failed stops the wait at once, with its panic.
                if running.as_ref().is_some_and(|r| r.is_finished()) {
                    value = running.take().map(join);
                }
                self.assert_never_twice();
                let asked = Instant::now();
                match self.lan.fetch(self.fip, PORT, PROBE_TIMEOUT) {
                    Ok(body) if body.trim() == new => break Instant::now(),
                    Ok(body) if body.trim() == old => {
                        last_old = Instant::now();
                        failed_probes = 0;
                    }
                    Ok(body) => {
                        failed_probes += 1;
                        last = format!("answered {body:?}");
                    }
                    Err(e) => {
                        failed_probes += 1;
                        last = e;
                    }
                }
                if Instant::now() >= end {
                    panic!(
                        "the client was not served by {to} ({new}) within {WAIT:?}; last: {last}\n{}",
                        self.cluster.log_tails(60)
                    );
                }
                std::thread::sleep((asked + PROBE_EVERY).saturating_duration_since(Instant::now()));
            };
            let value = match (value, running) {
                (Some(value), _) => value,
                (None, Some(running)) => join(running),
                (None, None) => unreachable!("the action's thread is joined once"),
            };
            let outage = Outage {
                gap: first_new.duration_since(last_old),
                after_action: first_new.duration_since(began),
                failed_probes,
            };
            (value, outage)
        })
    }

    /// The pid the application wrote on `node`.
    #[track_caller]
    pub fn app_pid(&self, node: &str) -> String {
        let file = self.dir.join(format!("{SERVICE}-{}.pid", self.addr(node)));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned()
    }
}

/// The value of a finished scoped thread; its panic, if it panicked.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
