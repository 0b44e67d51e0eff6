//! [`TestCluster`]: real `hamond` daemons as cluster nodes, one network
//! namespace each, joined by two UDP networks (veth pairs between two
//! nodes, a switch's bridges between three to five) and, between two nodes,
//! one paced serial cable, with the controls a test needs (status polling,
//! signals, restarts, cuts, isolation, forged and replayed frames, logs).
//!
//! Layout for two nodes `[n0, n1]` (subnet octet X unique per cluster):
//!
//! | network | kind | n0 | n1 | path index |
//! |---|---|---|---|---|
//! | `rs232` | serial, 19200 baud, 200 ms x 10 | `DIR/ttyA` (cable end A) | `DIR/ttyB` (cable end B) | 0 |
//! | `lan1` | udp, 100 ms x 10 | 10.91.X.1:5405 | 10.91.X.2:5405 | 1 |
//! | `lan2` | udp, 100 ms x 10 | 10.92.X.1:5406 | 10.92.X.2:5406 | 2 |
//!
//! Layout for three to five nodes `[n0, n1, ...]`: no serial network (a
//! cable has two ends), and each UDP network is a bridge, named as the
//! network, in the cluster's switch namespace (`TEST-sw`, a
//! [`Switch`]); node `ni` is plugged in by a veth pair, its end named as
//! the network, the switch's end `NET-pI` a port of the bridge:
//!
//! | network | kind | node `ni` | path index |
//! |---|---|---|---|
//! | `lan1` | udp, 100 ms x 10 | 10.91.X.(i+1):5405 | 0 |
//! | `lan2` | udp, 100 ms x 10 | 10.92.X.(i+1):5406 | 1 |
//!
//! Node `ni` has domain id i+1 in both layouts.
//!
//! Each network has its own UDP port, so an nftables cut by port cuts
//! exactly one network. The temp dir DIR holds `cluster.toml`, `authkey`
//! (written by `hactl keygen`), for two nodes the cable's links `ttyA` and
//! `ttyB` (stable across an unplug and replug), and per node `NODE.log`
//! (stdout and stderr of its hamond, and of its hasvrd when it runs one),
//! `NODE.state/`, `NODE.sock` (hamond's control socket), `NODE.link`
//! (hamond's socket for hasvrd), `NODE.svc.sock` (hasvrd's control socket)
//! and `NODE.agent.sock`, `NODE.boot_id` (the node's boot id, hamond's
//! `--boot-id-file`: the nodes share one kernel, and a test "reboots" a
//! node with [`TestCluster::new_boot`]), and with [`ClusterSpec::watchdog`]
//! `NODE.wd/watchdog` (the FIFO of the node's simulated watchdog) and
//! `switch/` (the power switch its reset uses). A test that runs services
//! writes their files to `DIR/services/` ([`TestCluster::services_dir`])
//! and starts each node's hasvrd ([`TestCluster::start_hasvrd`]).

use crate::account::RunAs;
use crate::bins;
use crate::cable::{Cable, Direction, End};
use crate::command::{Finished, describe, must, run_for, wait_deadline};
use crate::netns::{Netns, Switch, Veth};
use crate::nft::{self, Dir};
use crate::power::PowerSwitch;
use crate::rawudp::{self, Capture, Datagram};
use crate::report::Snapshot;
use crate::scratch::ScratchDir;
use crate::unique;
use crate::watchdog::FifoWatchdog;
use haschema::config::ClusterConfig;
use haschema::ctl::{Request, Response, ServiceOp, ServiceStatus, StatusReport};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Name of the serial network.
pub const SERIAL: &str = "rs232";
/// Name of the first UDP network.
pub const LAN1: &str = "lan1";
/// Name of the second UDP network.
pub const LAN2: &str = "lan2";

/// How often status is polled while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Longest a single `hactl status` may take.
const HACTL_TIMEOUT: Duration = Duration::from_secs(5);

/// What to build. The defaults are robust on a loaded 2-core machine.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Two to five node names. Two are joined point to point (veth pairs
    /// and a null-modem cable), more by a switch without serial network
    /// (see the module doc).
    pub nodes: Vec<String>,
    pub cluster_name: String,
    pub netid: u16,
    pub udp_interval_ms: u64,
    pub udp_maxmiss: u32,
    /// Ports of `lan1` and `lan2`.
    pub udp_ports: [u16; 2],
    pub serial_baud: u32,
    pub serial_interval_ms: u64,
    pub serial_maxmiss: u32,
    /// `[cluster] control_group`: the group (besides root) allowed on the
    /// control socket. It must exist before the cluster starts.
    pub control_group: Option<String>,
    /// TOML appended to the generated config as is.
    pub extra_config: String,
    /// How long [`TestCluster::start`] waits for every daemon to answer
    /// `hactl status`.
    pub start_timeout: Duration,
    /// hamond starts and supervises each node's hasvrd (`--hasvrd`) with
    /// the services of [`TestCluster::services_dir`], instead of the test
    /// starting it ([`TestCluster::start_hasvrd`]).
    pub hamond_runs_hasvrd: bool,
    /// Each node gets a simulated watchdog ([`FifoWatchdog`]) with this
    /// timeout, started before its hamond, whose reset powers the node off
    /// ([`PowerSwitch`]); the config gets `[watchdog] enabled = true` with
    /// each node's FIFO as its device.
    pub watchdog: Option<Duration>,
    /// With [`ClusterSpec::watchdog`], the nodes' `[watchdog] lease`
    /// (whole seconds); None: the default.
    pub watchdog_lease: Option<Duration>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            nodes: vec!["alpha".into(), "beta".into()],
            cluster_name: "t1".into(),
            netid: 7,
            udp_interval_ms: 100,
            udp_maxmiss: 10,
            udp_ports: [5405, 5406],
            serial_baud: 19200,
            serial_interval_ms: 200,
            serial_maxmiss: 10,
            control_group: None,
            extra_config: String::new(),
            start_timeout: Duration::from_secs(20),
            hamond_runs_hasvrd: false,
            watchdog: None,
            watchdog_lease: None,
        }
    }
}

impl ClusterSpec {
    /// The default spec with these node names.
    pub fn with_nodes(nodes: &[&str]) -> ClusterSpec {
        ClusterSpec {
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            ..ClusterSpec::default()
        }
    }
}

/// One UDP network: a veth pair between two nodes (`a` end in node 0, `b`
/// end in node 1), or a bridge of the switch between more.
struct UdpNet {
    name: String,
    port: u16,
    /// Each node's address, in node order.
    addrs: Vec<Ipv4Addr>,
    /// The pair, between two nodes.
    veth: Option<Veth>,
}

impl UdpNet {
    /// Joins `nodes` on network `name`, node i with `addrs[i]`: a veth pair
    /// without `switch`, else bridge `name` of `switch` with a port each.
    #[track_caller]
    fn new(
        name: &str,
        port: u16,
        addrs: Vec<Ipv4Addr>,
        nodes: &[Node],
        switch: Option<&Switch>,
    ) -> UdpNet {
        let veth = match switch {
            None => Some(Veth::new(
                &nodes[0].ns,
                name,
                addrs[0],
                &nodes[1].ns,
                name,
                addrs[1],
            )),
            Some(switch) => {
                switch.add_bridge(name);
                for (i, (n, addr)) in nodes.iter().zip(&addrs).enumerate() {
                    switch.plug(name, &format!("{name}-p{i}"), &n.ns, name, *addr);
                }
                None
            }
        };
        UdpNet {
            name: name.to_owned(),
            port,
            addrs,
            veth,
        }
    }
}

/// One node: its namespace and its daemon.
struct Node {
    name: String,
    domain: u8,
    ns: Netns,
    log: PathBuf,
    socket: PathBuf,
    state_dir: PathBuf,
    child: Mutex<Option<Child>>,
    /// The node's hasvrd, when the spec has services.
    svc_child: Mutex<Option<Child>>,
    stopped: AtomicBool,
    /// Its simulated watchdog, with [`ClusterSpec::watchdog`].
    watchdog: Option<FifoWatchdog>,
}

impl Node {
    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn svc_child(&self) -> MutexGuard<'_, Option<Child>> {
        self.svc_child.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running cluster of two to five real daemons. Dropping it kills the
/// daemons and removes namespaces, veths, switch, cable and (if the test
/// passed) the temp dir; on a failing test the log tails are printed and
/// the temp dir is kept.
pub struct TestCluster {
    spec: ClusterSpec,
    // Dropped in this order: networks, switch, cable, nodes (namespaces),
    // dir.
    nets: Vec<UdpNet>,
    /// The switch of the UDP networks, for three nodes or more.
    lan_switch: Option<Switch>,
    /// The serial cable, between two nodes only.
    cable: Option<Cable>,
    nodes: Vec<Node>,
    config: PathBuf,
    key: PathBuf,
    /// Set once a panic message carried the log tails (Drop then does not
    /// print them again).
    tails_shown: AtomicBool,
    /// hactl copied where other users can run it, once needed.
    others_hactl: OnceLock<PathBuf>,
    /// The power switch of the simulated watchdogs' resets.
    switch: Option<Arc<PowerSwitch>>,
    dir: ScratchDir,
}

impl TestCluster {
    /// Starts the default cluster with these nodes (two to five).
    #[track_caller]
    pub fn new(test: &str, nodes: &[&str]) -> TestCluster {
        TestCluster::start(test, ClusterSpec::with_nodes(nodes))
    }

    /// Builds the namespaces, networks and (for two nodes) cable, writes
    /// key and config, starts every daemon and waits until each answers
    /// `hactl status`.
    #[track_caller]
    pub fn start(test: &str, spec: ClusterSpec) -> TestCluster {
        assert!(
            (2..=5).contains(&spec.nodes.len()),
            "TestCluster joins two to five nodes, not {:?}",
            spec.nodes
        );
        let hactl = bins::hactl();
        let hamond = bins::hamond();
        let dir = ScratchDir::new(test);
        let mut nodes: Vec<Node> = spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| Node {
                name: name.clone(),
                domain: (i + 1) as u8,
                ns: Netns::new(&format!("{test}-{name}")),
                log: dir.join(format!("{name}.log")),
                socket: dir.join(format!("{name}.sock")),
                state_dir: dir.join(format!("{name}.state")),
                child: Mutex::new(None),
                svc_child: Mutex::new(None),
                stopped: AtomicBool::new(false),
                watchdog: None,
            })
            .collect();
        let switch = spec.watchdog.map(|w| start_watchdogs(&dir, w, &mut nodes));
        let x = unique::subnet_octet();
        let point_to_point = nodes.len() == 2;
        let lan_switch = (!point_to_point).then(|| Switch::new(&format!("{test}-sw")));
        let nets: Vec<UdpNet> = [
            (LAN1, 91u8, spec.udp_ports[0]),
            (LAN2, 92u8, spec.udp_ports[1]),
        ]
        .into_iter()
        .map(|(name, second, port)| {
            let addrs = (1..=nodes.len())
                .map(|host| Ipv4Addr::new(10, second, x, host as u8))
                .collect();
            UdpNet::new(name, port, addrs, &nodes, lan_switch.as_ref())
        })
        .collect();
        let cable = point_to_point.then(|| {
            Cable::with_links(spec.serial_baud, dir.path())
                .unwrap_or_else(|e| panic!("serial cable: {e}"))
        });
        let key = dir.join("authkey");
        must(Command::new(&hactl).arg("keygen").arg(&key));
        for n in &nodes {
            std::fs::create_dir_all(&n.state_dir)
                .unwrap_or_else(|e| panic!("{}: {e}", n.state_dir.display()));
        }
        let config = dir.join("cluster.toml");
        let cluster = TestCluster {
            spec,
            nets,
            lan_switch,
            cable,
            nodes,
            config,
            key,
            tails_shown: AtomicBool::new(false),
            others_hactl: OnceLock::new(),
            switch,
            dir,
        };
        let text = cluster.config_text();
        // The shared schema must accept what the harness writes, with the
        // path indexes the harness assumes.
        match ClusterConfig::parse(&text, &cluster.config) {
            Ok(parsed) => {
                for name in cluster.network_names() {
                    let index = parsed.network(name).map(|(i, _)| i);
                    assert_eq!(index, Some(usize::from(cluster.path_index(name))), "{name}");
                }
            }
            Err(e) => panic!("haschema refuses the harness's config: {e}\n{text}"),
        }
        std::fs::write(&cluster.config, &text)
            .unwrap_or_else(|e| panic!("{}: {e}", cluster.config.display()));
        for n in &cluster.nodes {
            cluster.new_boot(&n.name);
            cluster.spawn(n, &hamond);
        }
        let timeout = cluster.spec.start_timeout;
        cluster.wait_until("every daemon answers `hactl status`", timeout, |s| {
            s.reports.values().all(Result::is_ok)
        });
        cluster
    }

    /// Where hasvrd reads the service files (created empty).
    pub fn services_dir(&self) -> PathBuf {
        let dir = self.dir.join("services");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    }

    /// hasvrd's control socket on `node`.
    #[track_caller]
    pub fn service_socket(&self, node: &str) -> PathBuf {
        self.side_path(self.node(node), "svc.sock")
    }

    /// hasvrd's arguments besides config, node and link: its services,
    /// state directory and sockets in the cluster's directory.
    fn hasvrd_args(&self, n: &Node) -> Vec<std::ffi::OsString> {
        vec![
            "--services".into(),
            self.services_dir().into(),
            "--state-dir".into(),
            self.hasvrd_state_dir(&n.name).into(),
            "--socket".into(),
            self.side_path(n, "svc.sock").into(),
            "--agent-socket".into(),
            self.side_path(n, "agent.sock").into(),
        ]
    }

    /// `node`'s hasvrd's state directory (its `--state-dir`).
    pub fn hasvrd_state_dir(&self, node: &str) -> PathBuf {
        self.side_path(self.node(node), "hasvrd-state")
    }

    /// A node's file beside the config: `DIR/NODE.suffix`.
    fn side_path(&self, n: &Node, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", n.name))
    }

    /// Starts `node`'s hasvrd with the services of
    /// [`TestCluster::services_dir`], unless it runs (its log goes to the
    /// node's log).
    #[track_caller]
    pub fn start_hasvrd(&self, node: &str) {
        let n = self.node(node);
        if n.svc_child().is_some() {
            return;
        }
        let mut cmd = n.ns.command(bins::hasvrd());
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--node", &n.name])
            .arg("--link")
            .arg(self.side_path(n, "link"))
            .args(self.hasvrd_args(n));
        let child = self.spawn_logged(n, "hasvrd", cmd);
        *n.svc_child() = Some(child);
    }

    /// SIGKILL of `node`'s hasvrd, and reap: a crash of the service daemon.
    #[track_caller]
    pub fn crash_hasvrd(&self, node: &str) {
        if let Some(mut child) = self.node(node).svc_child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM to `node`'s hasvrd and wait up to `timeout` (then SIGKILL):
    /// its services are stopped and released. The exit status, None if it
    /// had to be killed or was not running.
    #[track_caller]
    pub fn shutdown_hasvrd(
        &self,
        node: &str,
        timeout: Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.node(node).svc_child().take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        match wait_deadline(&mut child, timeout) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// The generated config file's text.
    pub fn config_text(&self) -> String {
        let s = &self.spec;
        let mut t = String::new();
        let _ = writeln!(t, "[cluster]");
        let _ = writeln!(t, "name = {}", toml_str(&s.cluster_name));
        let _ = writeln!(t, "netid = {}", s.netid);
        let _ = writeln!(t, "key_file = {}", toml_str(&self.key.to_string_lossy()));
        if let Some(group) = &s.control_group {
            let _ = writeln!(t, "control_group = {}", toml_str(group));
        }
        for n in &self.nodes {
            let _ = writeln!(
                t,
                "\n[[node]]\nname = {}\ndomain = {}",
                toml_str(&n.name),
                n.domain
            );
        }
        if let Some(cable) = &self.cable {
            let _ = writeln!(t, "\n[[network]]");
            let _ = writeln!(t, "name = {}", toml_str(SERIAL));
            let _ = writeln!(t, "kind = \"serial\"");
            let _ = writeln!(t, "baud = {}", s.serial_baud);
            let _ = writeln!(t, "interval = \"{}ms\"", s.serial_interval_ms);
            let _ = writeln!(t, "maxmiss = {}", s.serial_maxmiss);
            let devices = [End::A, End::B]
                .iter()
                .zip(&self.nodes)
                .map(|(end, n)| {
                    format!(
                        "{} = {}",
                        n.name,
                        toml_str(&cable.path(*end).to_string_lossy())
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(t, "device = {{ {devices} }}");
        }
        for net in &self.nets {
            let _ = writeln!(t, "\n[[network]]");
            let _ = writeln!(t, "name = {}", toml_str(&net.name));
            let _ = writeln!(t, "kind = \"udp\"");
            let _ = writeln!(t, "interval = \"{}ms\"", s.udp_interval_ms);
            let _ = writeln!(t, "maxmiss = {}", s.udp_maxmiss);
            let addrs = self
                .nodes
                .iter()
                .map(|n| format!("{} = \"{}\"", n.name, self.addr(&n.name, &net.name)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(t, "address = {{ {addrs} }}");
        }
        if let Some(w) = s.watchdog {
            let devices = self
                .nodes
                .iter()
                .filter_map(|n| Some((n, n.watchdog.as_ref()?)))
                .map(|(n, wd)| format!("{} = {}", n.name, toml_str(&wd.path().to_string_lossy())))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(t, "\n[watchdog]\nenabled = true");
            let _ = writeln!(t, "timeout = \"{}s\"", w.as_secs());
            if let Some(lease) = s.watchdog_lease {
                let _ = writeln!(t, "lease = \"{}s\"", lease.as_secs());
            }
            let _ = writeln!(t, "device = {{ {devices} }}");
        }
        if !s.extra_config.is_empty() {
            t.push('\n');
            t.push_str(&s.extra_config);
            t.push('\n');
        }
        t
    }

    // ---- layout -----------------------------------------------------

    /// The spec the cluster was built from.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Node names, in config order.
    pub fn node_names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// The other node of a two-node cluster. Panics for three nodes or
    /// more (a node has several peers).
    #[track_caller]
    pub fn peer_of(&self, node: &str) -> &str {
        let i = self.index(node);
        assert_eq!(
            self.nodes.len(),
            2,
            "peer_of({node}): in a {}-node cluster a node has no single peer",
            self.nodes.len()
        );
        &self.nodes[1 - i].name
    }

    /// A node's domain id (1-based position in the config).
    #[track_caller]
    pub fn domain(&self, node: &str) -> u8 {
        self.node(node).domain
    }

    /// A node's network namespace.
    #[track_caller]
    pub fn ns(&self, node: &str) -> &Netns {
        &self.node(node).ns
    }

    /// A node's address on a UDP network.
    #[track_caller]
    pub fn addr(&self, node: &str, net: &str) -> SocketAddrV4 {
        let n = self.net(net);
        SocketAddrV4::new(n.addrs[self.index(node)], n.port)
    }

    /// A network's UDP port.
    #[track_caller]
    pub fn port(&self, net: &str) -> u16 {
        self.net(net).port
    }

    /// The private networks in config order, i.e. by path index:
    /// `rs232`, `lan1`, `lan2` for two nodes; `lan1`, `lan2` for more.
    pub fn network_names(&self) -> Vec<&str> {
        let serial = self.cable.as_ref().map(|_| SERIAL);
        serial
            .into_iter()
            .chain(self.nets.iter().map(|n| n.name.as_str()))
            .collect()
    }

    /// A network's position in the config (the wire's path index).
    #[track_caller]
    pub fn path_index(&self, net: &str) -> u8 {
        let names = self.network_names();
        let i = names
            .iter()
            .position(|n| *n == net)
            .unwrap_or_else(|| panic!("no network {net} in this cluster (networks: {names:?})"));
        i as u8
    }

    /// The serial cable (end A is node 0, end B node 1). Panics for three
    /// nodes or more, which have no serial network.
    #[track_caller]
    pub fn cable(&self) -> &Cable {
        self.cable.as_ref().unwrap_or_else(|| {
            panic!(
                "a {}-node cluster has no serial network `{SERIAL}`: a cable joins two nodes",
                self.nodes.len()
            )
        })
    }

    /// `node`'s end of the serial cable: A for node 0, B for node 1.
    /// Panics without a cable, like [`TestCluster::cable`].
    #[track_caller]
    fn cable_end(&self, node: &str) -> End {
        let i = self.index(node);
        self.cable();
        if i == 0 { End::A } else { End::B }
    }

    /// The switch of the UDP networks, for three nodes or more (its bridges
    /// are named as the networks, node i's port of bridge NET is `NET-pI`);
    /// None for two nodes.
    pub fn lan_switch(&self) -> Option<&Switch> {
        self.lan_switch.as_ref()
    }

    /// The veth pair of a UDP network (end `a` in node 0). Panics for three
    /// nodes or more, whose networks are bridges of a switch.
    #[track_caller]
    pub fn veth(&self, net: &str) -> &Veth {
        self.net(net).veth.as_ref().unwrap_or_else(|| {
            panic!(
                "{net} has no veth pair: in a {}-node cluster it is a bridge of the switch",
                self.nodes.len()
            )
        })
    }

    /// A node's simulated watchdog ([`ClusterSpec::watchdog`]).
    #[track_caller]
    pub fn watchdog(&self, node: &str) -> &FifoWatchdog {
        self.node(node)
            .watchdog
            .as_ref()
            .unwrap_or_else(|| panic!("{node} has no simulated watchdog (ClusterSpec::watchdog)"))
    }

    /// Whether a node is powered off (no process, no global address), as
    /// the power switch of the simulated watchdogs sees it.
    #[track_caller]
    pub fn is_off(&self, node: &str) -> bool {
        let switch = self
            .switch
            .as_ref()
            .expect("a power switch comes with ClusterSpec::watchdog");
        switch.is_off(self.ns(node))
    }

    /// The temp dir of this cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The cluster key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// A node's control socket.
    #[track_caller]
    pub fn socket(&self, node: &str) -> &Path {
        &self.node(node).socket
    }

    // ---- status -----------------------------------------------------

    /// `hactl --socket S status --json` for `node`, parsed. The socket is a
    /// path, which network namespaces do not separate, so hactl runs on
    /// the host. Exit codes 0-2 carry a report; 3 (unreachable) and
    /// anything else are errors.
    #[track_caller]
    pub fn try_status(&self, node: &str) -> Result<StatusReport, String> {
        let (what, f) = self.run_hactl_status(node, None)?;
        parse_status(&what, &f)
    }

    /// Like [`TestCluster::try_status`], with hactl run as `user` (see
    /// [`TestCluster::hactl_status_as`]).
    #[track_caller]
    pub fn try_status_as(&self, node: &str, user: &RunAs) -> Result<StatusReport, String> {
        let (what, f) = self.run_hactl_status(node, Some(user))?;
        parse_status(&what, &f)
    }

    /// Runs `hactl --socket S status --json` for `node` as `user` and
    /// returns what it left (exit status, stdout, stderr), whatever it is.
    /// The user runs a copy of hactl in the temp dir, and the temp dir is
    /// made traversable by everyone (mode 0711, not listable) so that only
    /// hamond's own checks (socket mode and group, SO_PEERCRED) decide.
    /// Panics if hactl could not run or did not finish in 5 s.
    #[track_caller]
    pub fn hactl_status_as(&self, node: &str, user: &RunAs) -> Finished {
        match self.run_hactl_status(node, Some(user)) {
            Ok((_, f)) => f,
            Err(e) => panic!("{e}\n{}", self.panic_tails(20)),
        }
    }

    #[track_caller]
    fn run_hactl_status(
        &self,
        node: &str,
        user: Option<&RunAs>,
    ) -> Result<(String, Finished), String> {
        let n = self.node(node);
        let mut cmd = match user {
            None => Command::new(bins::hactl()),
            Some(user) => user.command(self.hactl_for_others()),
        };
        cmd.arg("--socket")
            .arg(&n.socket)
            .args(["status", "--json"]);
        let what = describe(&cmd);
        let f = run_for(&mut cmd, HACTL_TIMEOUT)?;
        Ok((what, f))
    }

    /// A copy of hactl that any user can run (the build's may sit under a
    /// private home), in the temp dir, which is made traversable by all.
    #[track_caller]
    fn hactl_for_others(&self) -> &Path {
        self.others_hactl.get_or_init(|| {
            use std::os::unix::fs::PermissionsExt;
            let dir = self.dir.path();
            for up in dir.ancestors().skip(1) {
                let mode = std::fs::metadata(up).map_or(0, |m| m.permissions().mode());
                assert!(
                    mode & 0o001 != 0,
                    "{} is not traversable by other users (mode {mode:o}): \
                     set TMPDIR to a directory they can reach",
                    up.display()
                );
            }
            let set = |path: &Path, mode: u32| {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
            };
            set(dir, 0o711);
            let bin = dir.join("bin");
            std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
            set(&bin, 0o755);
            let copy = bin.join("hactl");
            std::fs::copy(bins::hactl(), &copy)
                .unwrap_or_else(|e| panic!("copy hactl to {}: {e}", copy.display()));
            set(&copy, 0o755);
            copy
        })
    }

    /// Sends `bytes` as is on `node`'s control socket (as the test, root),
    /// closes the sending side, and returns everything hamond answered.
    /// hamond may answer and close before reading all of `bytes`: the
    /// kernel then resets the connection after the answer, which is fine.
    #[track_caller]
    pub fn ctl_raw(&self, node: &str, bytes: &[u8]) -> Result<String, String> {
        raw_call(&self.node(node).socket, bytes)
    }

    /// One request to a daemon's control socket: hamond's for
    /// [`Request::Status`] and [`Request::FenceConfirm`], hasvrd's for the
    /// service requests.
    #[track_caller]
    pub fn ask(&self, node: &str, request: &Request) -> Result<Response, String> {
        let socket = match request {
            Request::Status
            | Request::FenceConfirm { .. }
            | Request::History { .. }
            | Request::AlertTest
            | Request::FenceTest { .. }
            | Request::ConfigList
            | Request::ConfigGet { .. }
            | Request::ConfigPut { .. }
            | Request::Nics { .. } => self.node(node).socket.clone(),
            Request::Services | Request::Service { .. } | Request::NodeStandby { .. } => {
                self.service_socket(node)
            }
        };
        let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let answer = raw_call(&socket, &line)?;
        serde_json::from_str(&answer).map_err(|e| format!("bad answer {answer:?}: {e}"))
    }

    /// The services as `node`'s hasvrd reports them.
    #[track_caller]
    pub fn services(&self, node: &str) -> Result<Vec<ServiceStatus>, String> {
        match self.ask(node, &Request::Services)? {
            Response::Services { services } => Ok(services),
            other => Err(format!("{other:?}")),
        }
    }

    /// `node`'s state of `service` as its hasvrd reports it (None while it
    /// does not answer).
    #[track_caller]
    pub fn service_state(&self, node: &str, service: &str) -> Option<String> {
        let services = self.services(node).ok()?;
        let s = services.into_iter().find(|s| s.name == service)?;
        s.nodes
            .into_iter()
            .find(|n| n.node == node)
            .map(|n| n.state)
    }

    /// An operator's command on `node`: the daemon's answer, or its error.
    #[track_caller]
    pub fn service_op(&self, node: &str, op: ServiceOp, service: &str) -> Result<String, String> {
        let request = Request::Service {
            op,
            service: service.to_owned(),
            node: None,
        };
        match self.ask(node, &request)? {
            Response::Done { message } => Ok(message),
            Response::Error { message } => Err(message),
            other => Err(format!("{other:?}")),
        }
    }

    /// Like [`TestCluster::try_status`], panicking with the log tail.
    #[track_caller]
    pub fn status(&self, node: &str) -> StatusReport {
        match self.try_status(node) {
            Ok(r) => r,
            Err(e) => panic!("status of {node}: {e}\n{}", self.panic_tails(30)),
        }
    }

    /// Polls every running (not stopped) node once. Panics if a daemon
    /// exited on its own.
    #[track_caller]
    pub fn snapshot(&self) -> Snapshot {
        self.check_alive();
        // Nodes are polled in parallel: one poll costs one hactl round trip.
        let reports = std::thread::scope(|scope| {
            let polls: Vec<_> = self
                .nodes
                .iter()
                .map(|n| {
                    let stopped = n.stopped.load(Ordering::Relaxed);
                    let running = n.child().is_some();
                    scope.spawn(move || {
                        let report = if stopped {
                            Err("stopped by the test".into())
                        } else if !running {
                            Err("not running".into())
                        } else {
                            self.try_status(&n.name)
                        };
                        (n.name.clone(), report)
                    })
                })
                .collect();
            polls
                .into_iter()
                .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        Snapshot { reports }
    }

    /// Polls (every 100 ms) until `cond` holds, at most `timeout`; returns
    /// the snapshot that satisfied it. On timeout panics with `desc`, the
    /// last snapshot and the log tails.
    #[track_caller]
    pub fn wait_until(
        &self,
        desc: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot {
        self.wait_until_keeping(desc, timeout, "", |_| true, &mut cond)
    }

    /// Like [`TestCluster::wait_until`], and `keep` must hold at every poll
    /// on the way (including the last); panics with `keep_desc` otherwise.
    #[track_caller]
    pub fn wait_until_keeping(
        &self,
        desc: &str,
        timeout: Duration,
        keep_desc: &str,
        mut keep: impl FnMut(&Snapshot) -> bool,
        mut cond: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            let s = self.snapshot();
            if !keep(&s) {
                self.fail(
                    &format!("`{keep_desc}` broke while waiting for `{desc}`"),
                    start,
                    &s,
                );
            }
            if cond(&s) {
                return s;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out waiting for `{desc}`"), start, &s);
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// Polls every 100 ms for `duration`; `cond` must hold at every poll.
    /// Returns the last snapshot.
    #[track_caller]
    pub fn assert_always(
        &self,
        desc: &str,
        duration: Duration,
        mut cond: impl FnMut(&Snapshot) -> bool,
    ) -> Snapshot {
        let start = Instant::now();
        loop {
            let s = self.snapshot();
            if !cond(&s) {
                self.fail(&format!("`{desc}` broke"), start, &s);
            }
            if start.elapsed() >= duration {
                return s;
            }
            std::thread::sleep(POLL);
        }
    }

    #[track_caller]
    fn fail(&self, what: &str, start: Instant, s: &Snapshot) -> ! {
        panic!(
            "{what} (after {:.1} s)\nlast status:\n{}\n{}",
            start.elapsed().as_secs_f64(),
            s.summary(),
            self.panic_tails(40)
        )
    }

    // ---- logs -------------------------------------------------------

    /// Everything a node's hamond wrote (all its runs).
    #[track_caller]
    pub fn log(&self, node: &str) -> String {
        let path = &self.node(node).log;
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The length in bytes of `node`'s log now, for [`TestCluster::log_since`].
    #[track_caller]
    pub fn log_len(&self, node: &str) -> u64 {
        std::fs::metadata(&self.node(node).log).map_or(0, |m| m.len())
    }

    /// What `node`'s hamond logged after the log was `offset` bytes long.
    #[track_caller]
    pub fn log_since(&self, node: &str, offset: u64) -> String {
        let bytes = std::fs::read(&self.node(node).log).unwrap_or_default();
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// How many log lines of `node` contain `needle`.
    #[track_caller]
    pub fn log_count(&self, node: &str, needle: &str) -> usize {
        self.log(node)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Panics (with the log) unless a line of `node`'s log contains every
    /// one of `parts`.
    #[track_caller]
    pub fn assert_logged(&self, node: &str, parts: &[&str]) {
        let log = self.log(node);
        assert!(
            log.lines().any(|l| parts.iter().all(|p| l.contains(p))),
            "no line of {node}'s log has all of {parts:?}:\n{log}"
        );
    }

    /// Waits until `node`'s log contains `needle`.
    #[track_caller]
    pub fn wait_for_log(&self, node: &str, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log(node).contains(needle) {
            if Instant::now() >= deadline {
                panic!(
                    "{node}'s log has no `{needle}` after {timeout:?}\n{}",
                    self.panic_tails(40)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The last `lines` lines of every node's log, labelled.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let log = self.log(&n.name);
            let all: Vec<&str> = log.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            let _ = writeln!(
                out,
                "--- {} ({}), last {} lines ---",
                n.name,
                n.log.display(),
                tail.len()
            );
            for l in tail {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }

    /// [`TestCluster::log_tails`] for a panic message (not repeated on drop).
    fn panic_tails(&self, lines: usize) -> String {
        self.tails_shown.store(true, Ordering::Relaxed);
        self.log_tails(lines)
    }

    // ---- processes --------------------------------------------------

    /// Pid of a node's hamond (the `ip netns exec` child execs it).
    #[track_caller]
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.node(node).child().as_ref().map(Child::id)
    }

    /// Pid of the process named `program` (its `comm`) in a node's
    /// namespace, e.g. the hasvrd its hamond started.
    #[track_caller]
    pub fn daemon_pid(&self, node: &str, program: &str) -> Option<i32> {
        self.ns(node).pids().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == program)
        })
    }

    /// Sends `signal` to a node's hamond.
    #[track_caller]
    pub fn kill(&self, node: &str, signal: Signal) {
        let n = self.node(node);
        let guard = n.child();
        let child = guard
            .as_ref()
            .unwrap_or_else(|| panic!("{node}'s hamond is not running"));
        kill(Pid::from_raw(child.id() as i32), signal)
            .unwrap_or_else(|e| panic!("kill -{signal} {node}: {e}"));
    }

    /// SIGSTOP: the daemon freezes (its status is not polled meanwhile).
    #[track_caller]
    pub fn stop(&self, node: &str) {
        self.kill(node, Signal::SIGSTOP);
        self.node(node).stopped.store(true, Ordering::Relaxed);
    }

    /// SIGCONT after [`TestCluster::stop`].
    #[track_caller]
    pub fn cont(&self, node: &str) {
        self.kill(node, Signal::SIGCONT);
        self.node(node).stopped.store(false, Ordering::Relaxed);
    }

    /// SIGKILL, and reap: a crash.
    #[track_caller]
    pub fn crash(&self, node: &str) {
        let n = self.node(node);
        if let Some(mut child) = n.child().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        n.stopped.store(false, Ordering::Relaxed);
    }

    /// SIGTERM and wait (5 s, then SIGKILL): a clean stop. Returns the
    /// exit status, None if it had to be killed or was not running.
    #[track_caller]
    pub fn shutdown(&self, node: &str) -> Option<std::process::ExitStatus> {
        let n = self.node(node);
        let mut child = n.child().take()?;
        let pid = Pid::from_raw(child.id() as i32);
        if n.stopped.swap(false, Ordering::Relaxed) {
            let _ = kill(pid, Signal::SIGCONT);
        }
        let _ = kill(pid, Signal::SIGTERM);
        match wait_deadline(&mut child, Duration::from_secs(5)) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Starts a node's hamond if it is not running (its log is appended).
    #[track_caller]
    pub fn start_node(&self, node: &str) {
        let n = self.node(node);
        if n.child().is_some() {
            return;
        }
        self.spawn(n, &bins::hamond());
    }

    /// Gives `node` a new boot id (a random UUID in its `NODE.boot_id`), as
    /// an OS boot does: its next hamond start is on a new boot, so nothing
    /// it ran before survived (its persisted locks are not held again).
    #[track_caller]
    pub fn new_boot(&self, node: &str) {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).expect("getrandom");
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let uuid = format!(
            "{}-{}-{}-{}-{}\n",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        let file = self.side_path(self.node(node), "boot_id");
        std::fs::write(&file, uuid).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }

    /// Clean stop then start again; waits until it answers status.
    #[track_caller]
    pub fn restart(&self, node: &str) {
        self.shutdown(node);
        self.start_node(node);
        let node_owned = node.to_owned();
        self.wait_until(
            &format!("{node} answers after restart"),
            Duration::from_secs(20),
            |s| s.get(&node_owned).is_some(),
        );
    }

    /// Pid of a node's running hamond, whoever started it (this harness,
    /// or its hasvrd after a crash): the pid hamond writes in the file it
    /// holds locked in its state dir, if that process is a live hamond.
    #[track_caller]
    pub fn hamond_pid(&self, node: &str) -> Option<i32> {
        let file = self.node(node).state_dir.join("hamond.pid");
        let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        (comm.trim() == "hamond" && !matches!(state, 'Z' | 'X')).then_some(pid)
    }

    /// The command that starts `node`'s hamond, as the harness runs it
    /// (without its output redirection): e.g. to start a second one.
    #[track_caller]
    pub fn hamond_command(&self, node: &str) -> Command {
        self.hamond_cmd(self.node(node), &bins::hamond())
    }

    #[track_caller]
    fn spawn(&self, n: &Node, hamond: &Path) {
        let cmd = self.hamond_cmd(n, hamond);
        let child = self.spawn_logged(n, "hamond", cmd);
        *n.child() = Some(child);
        n.stopped.store(false, Ordering::Relaxed);
    }

    fn hamond_cmd(&self, n: &Node, hamond: &Path) -> Command {
        let mut cmd = n.ns.command(hamond);
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--node", &n.name])
            .arg("--state-dir")
            .arg(&n.state_dir)
            .arg("--socket")
            .arg(&n.socket)
            .arg("--link")
            .arg(self.side_path(n, "link"))
            .arg("--boot-id-file")
            .arg(self.side_path(n, "boot_id"));
        if self.spec.hamond_runs_hasvrd {
            cmd.arg("--hasvrd").arg(bins::hasvrd());
            for arg in self.hasvrd_args(n) {
                let mut opt = std::ffi::OsString::from("--hasvrd-arg=");
                opt.push(arg);
                cmd.arg(opt);
            }
        }
        cmd
    }

    /// Starts a daemon's command with the node's log as its output.
    #[track_caller]
    fn spawn_logged(&self, n: &Node, daemon: &str, mut cmd: Command) -> Child {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .unwrap_or_else(|e| panic!("{}: {e}", n.log.display()));
        let _ = writeln!(log, "=== hatests: starting {daemon} for {} ===", n.name);
        let out = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        cmd.arg("--no-syslog")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log));
        if let Some(level) = std::env::var_os("HA_LOG_LEVEL") {
            // e.g. HA_LOG_LEVEL=LOG_DEBUG for a failing test's logs.
            cmd.arg("--log-level").arg(level);
        }
        let what = describe(&cmd);
        cmd.spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"))
    }

    /// Panics (with the log) if a daemon the test did not stop has exited.
    #[track_caller]
    fn check_alive(&self) {
        for n in &self.nodes {
            let mut guard = n.child();
            if let Some(child) = guard.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                *guard = None;
                drop(guard);
                panic!(
                    "{}'s hamond exited on its own ({status})\n{}",
                    n.name,
                    self.panic_tails(40)
                );
            }
        }
    }

    // ---- cuts ---------------------------------------------------------

    // The serial controls below panic for three nodes or more, which have
    // no cable (see `TestCluster::cable`).

    /// Cuts the serial cable both ways.
    #[track_caller]
    pub fn cut_serial(&self) {
        self.cable().cut();
    }

    /// Cuts the serial cable from `from` to its peer only.
    #[track_caller]
    pub fn cut_serial_one_way(&self, from: &str) {
        self.cable().cut_one_way(self.serial_dir(from));
    }

    /// Reconnects the serial cable both ways.
    #[track_caller]
    pub fn restore_serial(&self) {
        self.cable().restore();
    }

    /// Pulls the serial cable out at both ends: both daemons' ports hang up
    /// and their devices vanish (see [`Cable::unplug`]).
    #[track_caller]
    pub fn unplug_serial(&self) {
        self.cable().unplug();
    }

    /// Plugs a fresh serial cable in, under the same device names.
    #[track_caller]
    pub fn replug_serial(&self) {
        self.cable()
            .replug()
            .unwrap_or_else(|e| panic!("serial cable replug: {e}"));
    }

    /// The serial device in `node`'s config (a link in the temp dir).
    #[track_caller]
    pub fn serial_device(&self, node: &str) -> PathBuf {
        self.cable().path(self.cable_end(node))
    }

    /// Injects `bytes` mid-frame into the serial stream sent by `from`;
    /// returns whether they landed mid-frame (see [`Cable::inject_noise`]).
    #[track_caller]
    pub fn serial_noise(&self, from: &str, bytes: &[u8]) -> bool {
        self.cable().inject_noise(self.serial_dir(from), bytes)
    }

    /// The cable direction of what `from` sends.
    #[track_caller]
    pub fn serial_dir(&self, from: &str) -> Direction {
        match self.cable_end(from) {
            End::A => Direction::AToB,
            End::B => Direction::BToA,
        }
    }

    /// Cuts a UDP network both ways (nftables at every node, in and out).
    #[track_caller]
    pub fn cut_udp(&self, net: &str) {
        let port = self.port(net);
        for n in &self.nodes {
            nft::drop_udp(&n.ns, port, Dir::Both);
        }
    }

    /// Cuts a UDP network from `from` to `to` only (dropped on arrival at
    /// `to`); `to` still reaches `from`.
    #[track_caller]
    pub fn cut_udp_one_way(&self, net: &str, from: &str, to: &str) {
        let _ = self.node(from);
        nft::drop_udp(&self.node(to).ns, self.port(net), Dir::In);
    }

    /// Removes every cut on a UDP network.
    #[track_caller]
    pub fn restore_udp(&self, net: &str) {
        let port = self.port(net);
        for n in &self.nodes {
            nft::allow_udp(&n.ns, port, Dir::Both);
        }
    }

    /// Cuts every path: both UDP networks and the cable (if any).
    #[track_caller]
    pub fn cut_all(&self) {
        for net in &self.nets {
            self.cut_udp(&net.name);
        }
        if let Some(cable) = &self.cable {
            cable.cut();
        }
    }

    /// Removes every cut.
    #[track_caller]
    pub fn restore_all(&self) {
        for n in &self.nodes {
            nft::clear(&n.ns);
        }
        if let Some(cable) = &self.cable {
            cable.restore();
        }
    }

    /// Cuts every heartbeat path of `node` from all the other nodes, who
    /// still hear each other: both UDP ports dropped in and out in `node`'s
    /// namespace (nftables), and in a two-node cluster the serial cable cut
    /// both ways. [`TestCluster::rejoin`] undoes it.
    #[track_caller]
    pub fn isolate(&self, node: &str) {
        let ns = self.ns(node);
        for net in &self.nets {
            nft::drop_udp(ns, net.port, Dir::Both);
        }
        if let Some(cable) = &self.cable {
            cable.cut();
        }
    }

    /// Undoes [`TestCluster::isolate`]: removes every nftables cut in
    /// `node`'s namespace (whichever control made it) and in a two-node
    /// cluster reconnects the serial cable both ways.
    #[track_caller]
    pub fn rejoin(&self, node: &str) {
        nft::clear(self.ns(node));
        if let Some(cable) = &self.cable {
            cable.restore();
        }
    }

    /// Every node's nftables ruleset with counters, for messages.
    pub fn nft_rules(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- {} ---\n{}", n.name, nft::list(&n.ns)))
            .collect()
    }

    // ---- forged and replayed frames ------------------------------------

    /// Sends `bytes` to `to` from inside `from`'s namespace, with `from`'s
    /// own address and port on that network as the source (raw socket), so
    /// the datagram looks like `from`'s daemon sent it. If `to` is on no
    /// cluster network, an ordinary socket with an ephemeral port is used.
    /// Returns false if an nftables cut at `from` dropped it on the way out
    /// (the kernel answers EPERM), true if it left `from`.
    #[track_caller]
    pub fn send_raw_udp(&self, from: &str, to: SocketAddrV4, bytes: &[u8]) -> bool {
        let ns = self.ns(from);
        let net = self
            .nets
            .iter()
            .find(|n| n.addrs[0].octets()[..3] == to.ip().octets()[..3]);
        let res = match net {
            Some(net) => rawudp::send_spoofed(ns, self.addr(from, &net.name), to, bytes),
            None => rawudp::send_udp(ns, to, bytes),
        };
        match res {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
            Err(e) => panic!("send from {from} to {to}: {e}"),
        }
    }

    /// Captures the next real datagram `from`'s daemon sends `to`'s on
    /// `net` (seen arriving in `to`'s namespace), waiting at most `timeout`.
    #[track_caller]
    pub fn capture_frame(&self, net: &str, from: &str, to: &str, timeout: Duration) -> Datagram {
        let (src, dst) = (self.addr(from, net), self.addr(to, net));
        let cap = Capture::open(self.ns(to)).unwrap_or_else(|e| panic!("capture in {to}: {e}"));
        cap.next(timeout, |d| d.src == src && d.dst == dst)
            .unwrap_or_else(|| {
                panic!(
                    "no datagram {src} -> {dst} within {timeout:?}\n{}",
                    self.panic_tails(20)
                )
            })
    }

    /// Sends a captured datagram again, byte for byte, from the namespace
    /// of the node that owns its source address. Returns false if an
    /// nftables cut there dropped it on the way out.
    #[track_caller]
    pub fn replay(&self, d: &Datagram) -> bool {
        let owner = self
            .nodes
            .iter()
            .find(|n| {
                self.nets
                    .iter()
                    .any(|net| self.addr(&n.name, &net.name) == d.src)
            })
            .unwrap_or_else(|| panic!("no node owns {}", d.src));
        match rawudp::replay(&owner.ns, d) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => false,
            Err(e) => panic!("replay of {} -> {}: {e}", d.src, d.dst),
        }
    }

    // ---- helpers ------------------------------------------------------

    #[track_caller]
    fn index(&self, node: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == node)
            .unwrap_or_else(|| panic!("no node {node} (nodes: {:?})", self.node_names()))
    }

    #[track_caller]
    fn node(&self, node: &str) -> &Node {
        &self.nodes[self.index(node)]
    }

    #[track_caller]
    fn net(&self, net: &str) -> &UdpNet {
        self.nets
            .iter()
            .find(|n| n.name == net)
            .unwrap_or_else(|| panic!("no UDP network {net}"))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        for n in &self.nodes {
            for mut child in [n.svc_child().take(), n.child().take()]
                .into_iter()
                .flatten()
            {
                let _ = child.kill();
                let _ = wait_deadline(&mut child, Duration::from_secs(5));
            }
        }
        if failing && !self.tails_shown.load(Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{}", self.log_tails(40));
        }
    }
}

/// The report in `hactl status --json` output: exit codes 0-2 carry one;
/// 3 (unreachable or refused) and anything else are errors.
fn parse_status(what: &str, f: &Finished) -> Result<StatusReport, String> {
    match f.code() {
        Some(0..=2) => serde_json::from_str(&f.stdout)
            .map_err(|e| format!("`{what}`: bad JSON ({e}): {}", f.stdout.trim())),
        _ => Err(format!("`{what}` exited {}: {}", f.status, f.stderr.trim())),
    }
}

/// Starts a simulated watchdog with timeout `w` for every node, in
/// `DIR/NODE.wd/`, whose reset powers that node off through a power switch
/// installed in `DIR/switch/` (returned).
#[track_caller]
fn start_watchdogs(dir: &ScratchDir, w: Duration, nodes: &mut [Node]) -> Arc<PowerSwitch> {
    let switch_dir = dir.join("switch");
    std::fs::create_dir_all(&switch_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", switch_dir.display()));
    let switch = Arc::new(PowerSwitch::install(&switch_dir));
    for n in nodes {
        let wd_dir = dir.join(format!("{}.wd", n.name));
        std::fs::create_dir_all(&wd_dir).unwrap_or_else(|e| panic!("{}: {e}", wd_dir.display()));
        let (switch, plug) = (switch.clone(), n.ns.name().to_owned());
        n.watchdog = Some(FifoWatchdog::start(&wd_dir, w, move || {
            let r = switch.run(&format!("action=off\nplug={plug}\n"));
            assert_eq!(r.code, Some(0), "watchdog reset of {plug}: {r:?}");
        }));
    }
    switch
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Sends `bytes` on a daemon's unix socket (as the test, root), closes the
/// sending side, and returns everything the daemon answered.
fn raw_call(socket: &Path, bytes: &[u8]) -> Result<String, String> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset};
    use std::io::Read as _;
    use std::os::unix::net::UnixStream;
    let err = |e: std::io::Error| format!("control socket {}: {e}", socket.display());
    let mut stream = UnixStream::connect(socket).map_err(err)?;
    stream.set_read_timeout(Some(HACTL_TIMEOUT)).map_err(err)?;
    stream.set_write_timeout(Some(HACTL_TIMEOUT)).map_err(err)?;
    match stream
        .write_all(bytes)
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
    {
        Err(e) if e.kind() != BrokenPipe => return Err(err(e)),
        _ => {}
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ConnectionReset && !answer.is_empty() => break,
            Err(e) => return Err(err(e)),
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}
