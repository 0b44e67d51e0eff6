//! [`LocalPair`]: two nodes, alpha and beta, on this machine without root
//! and without namespaces. Each node is a hamond and a hasvrd run as the
//! invoking user, with every path they take in one temporary directory:
//!
//! | file | holds |
//! |---|---|
//! | `cluster.toml`, `authkey` | the config (two UDP heartbeat paths on 127.0.0.1, one port per node each) and the key |
//! | `services/www.toml`, `www` | the service `www` and its start/stop/status script |
//! | `NODE.log` | the node's hamond and hasvrd output |
//! | `NODE.state/` | hamond's persisted incarnation |
//! | `NODE.sock`, `NODE.link`, `NODE.svc.sock`, `NODE.agent.sock` | hamond's control socket, its socket for hasvrd, hasvrd's control and agent sockets |
//! | `www-NODE.pid` | the web server's pid while it runs on NODE |
//!
//! `www` has no floating IP and no volume (both need root): its script runs
//! a small HTTP server (socat) on the node's own loopback port, answering
//! with the node's name. The control sockets admit the user's primary
//! group (`control_group`), so hactl works without root; the directory is
//! the user's alone (mode 0700).

use haschema::ctl::ServiceStatus;
use hatests::command::{describe, run_for, run_ok, wait_deadline};
use hatests::scratch::{ScratchDir, write_script};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Gid, Group, Pid, getpgid};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The two nodes: the service's active node, then its standby.
pub const NODES: [&str; 2] = ["alpha", "beta"];
/// The service's name.
pub const SERVICE: &str = "www";
/// The heartbeat paths (UDP on 127.0.0.1, one port per node each).
const PATHS: [&str; 2] = ["lan1", "lan2"];
/// Longest a hactl call may take.
const HACTL_TIMEOUT: Duration = Duration::from_secs(5);
/// How often states are polled while waiting.
const POLL: Duration = Duration::from_millis(100);
/// Longest a daemon may take to stop cleanly at teardown (hasvrd stops
/// the service first).
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One node: its web port, log and daemons.
struct Node {
    name: &'static str,
    web_port: u16,
    log: PathBuf,
    hamond: Mutex<Option<Child>>,
    hasvrd: Mutex<Option<Child>>,
}

/// The two running nodes; dropping it (or [`LocalPair::teardown`]) stops
/// every daemon and the web server, then removes the directory.
pub struct LocalPair {
    nodes: Vec<Node>,
    config: PathBuf,
    dir: ScratchDir,
}

impl LocalPair {
    /// Writes key, config, service and script, and starts both nodes'
    /// daemons; returns without waiting for them.
    pub fn start() -> Result<LocalPair, String> {
        let dir = ScratchDir::new("demo-local");
        // Only this user reaches the sockets, whoever shares its group.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", dir.path().display()))?;
        let hb_ports = free_ports(2 * PATHS.len(), |p| UdpSocket::bind(p).map(drop))?;
        let web_ports = free_ports(NODES.len(), |p| TcpListener::bind(p).map(drop))?;
        let nodes: Vec<Node> = NODES
            .iter()
            .zip(&web_ports)
            .map(|(&name, &web_port)| Node {
                name,
                web_port,
                log: dir.join(format!("{name}.log")),
                hamond: Mutex::new(None),
                hasvrd: Mutex::new(None),
            })
            .collect();
        let key = dir.join("authkey");
        run_ok(Command::new(hatests::bins::hactl()).arg("keygen").arg(&key))?;
        let config = dir.join("cluster.toml");
        write(&config, &config_text(&key, &hb_ports)?)?;
        let services = dir.join("services");
        std::fs::create_dir_all(&services).map_err(|e| format!("{}: {e}", services.display()))?;
        let script = write_script(dir.path(), SERVICE, &app_script(dir.path(), &web_ports));
        write(
            &services.join(format!("{SERVICE}.toml")),
            &service_file(&script),
        )?;
        let pair = LocalPair { nodes, config, dir };
        for n in &pair.nodes {
            std::fs::create_dir_all(pair.state_dir(n)).map_err(|e| format!("state dir: {e}"))?;
            *lock(&n.hamond) = Some(pair.spawn(n, "hamond", pair.hamond_args(n))?);
            *lock(&n.hasvrd) = Some(pair.spawn(n, "hasvrd", pair.hasvrd_args(n))?);
        }
        Ok(pair)
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The port `node`'s web server listens on (127.0.0.1).
    pub fn web_port(&self, node: &str) -> u16 {
        self.node(node).web_port
    }

    /// hactl aimed at `node`'s daemons.
    pub fn hactl(&self, node: &str) -> Command {
        let mut cmd = Command::new(hatests::bins::hactl());
        cmd.arg("--socket")
            .arg(self.side_path(node, "sock"))
            .arg("--service-socket")
            .arg(self.side_path(node, "svc.sock"));
        cmd
    }

    /// `node`'s state of the service, as its hasvrd reports it (None while
    /// it does not answer).
    pub fn state(&self, node: &str) -> Option<String> {
        let mut cmd = self.hactl(node);
        cmd.args(["service", "status", "--json"]);
        let out = run_for(&mut cmd, HACTL_TIMEOUT).ok()?;
        let services: Vec<ServiceStatus> = serde_json::from_str(&out.stdout).ok()?;
        let service = services.into_iter().find(|s| s.name == SERVICE)?;
        let me = service.nodes.into_iter().find(|n| n.node == node)?;
        Some(me.state)
    }

    /// Polls until `node` shows `state`, at most `timeout`.
    pub fn wait_state(&self, node: &str, state: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        for _ in 0..=timeout.as_millis() / POLL.as_millis() {
            last = self.state(node);
            if last.as_deref() == Some(state) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        Err(format!(
            "{node} did not reach {state} within {timeout:?} (last: {})",
            last.as_deref().unwrap_or("no answer")
        ))
    }

    /// Where `node`'s log ends now.
    pub fn log_len(&self, node: &str) -> u64 {
        std::fs::metadata(&self.node(node).log).map_or(0, |m| m.len())
    }

    /// What `node` logged after its log was `offset` bytes long.
    pub fn log_since(&self, node: &str, offset: u64) -> String {
        let bytes = std::fs::read(&self.node(node).log).unwrap_or_default();
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }

    /// A crash of `node`: SIGKILL of its hamond and hasvrd, and of the
    /// process group of the web server they ran (as when the machine
    /// dies). Returns what was killed, for the operator.
    pub fn crash(&self, node: &str) -> Vec<String> {
        let n = self.node(node);
        let mut killed = Vec::new();
        for (daemon, slot) in [("hamond", &n.hamond), ("hasvrd", &n.hasvrd)] {
            if let Some(mut child) = lock(slot).take() {
                killed.push(format!("{daemon} (pid {})", child.id()));
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(pgid) = self.kill_app(n, Signal::SIGKILL) {
            killed.push(format!("the web server's process group {pgid}"));
        }
        killed
    }

    /// Stops every daemon (SIGTERM: hasvrd stops the web server, hamond
    /// leaves the cluster; SIGKILL after [`STOP_TIMEOUT`]) and kills a web
    /// server left behind. Idempotent.
    pub fn teardown(&self) {
        for slots in [
            self.nodes.iter().map(|n| &n.hasvrd).collect::<Vec<_>>(),
            self.nodes.iter().map(|n| &n.hamond).collect(),
        ] {
            // Both nodes at once: stopped one by one, the first hasvrd
            // would hand the service over to the other.
            let mut children: Vec<Child> =
                slots.into_iter().filter_map(|s| lock(s).take()).collect();
            for child in &children {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
            for child in &mut children {
                if wait_deadline(child, STOP_TIMEOUT).is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        for n in &self.nodes {
            self.kill_app(n, Signal::SIGKILL);
        }
    }

    /// Sends `signal` to the process group of `n`'s web server, if it
    /// runs; returns that group.
    fn kill_app(&self, n: &Node, signal: Signal) -> Option<Pid> {
        let pidfile = self.dir.join(format!("{SERVICE}-{}.pid", n.name));
        let pid: i32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
        let pgid = getpgid(Some(Pid::from_raw(pid))).ok()?;
        // Never our own group (the script's group is its own).
        if pgid == getpgid(None).ok()? {
            return None;
        }
        killpg(pgid, signal).ok().map(|()| pgid)
    }

    fn node(&self, node: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == node)
            .unwrap_or_else(|| panic!("no node {node}"))
    }

    /// `DIR/NODE.suffix`.
    fn side_path(&self, node: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{node}.{suffix}"))
    }

    fn state_dir(&self, n: &Node) -> PathBuf {
        self.side_path(n.name, "state")
    }

    fn hamond_args(&self, n: &Node) -> Vec<PathBuf> {
        let mut args = self.common_args(n);
        args.extend([
            "--state-dir".into(),
            self.state_dir(n),
            "--socket".into(),
            self.side_path(n.name, "sock"),
        ]);
        args
    }

    fn hasvrd_args(&self, n: &Node) -> Vec<PathBuf> {
        let mut args = self.common_args(n);
        args.extend([
            "--services".into(),
            self.dir.join("services"),
            "--socket".into(),
            self.side_path(n.name, "svc.sock"),
            "--agent-socket".into(),
            self.side_path(n.name, "agent.sock"),
        ]);
        args
    }

    /// Config, node, link and logging: what both daemons take.
    fn common_args(&self, n: &Node) -> Vec<PathBuf> {
        vec![
            "--config".into(),
            self.config.clone(),
            "--node".into(),
            n.name.into(),
            "--link".into(),
            self.side_path(n.name, "link"),
            "--no-syslog".into(),
        ]
    }

    /// Starts `daemon` for `n`, its output appended to the node's log, in
    /// its own process group (a Ctrl-C at the terminal reaches only the
    /// demo, which stops the daemons in order).
    fn spawn(&self, n: &Node, daemon: &str, args: Vec<PathBuf>) -> Result<Child, String> {
        let err = |e: std::io::Error| format!("{}: {e}", n.log.display());
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .map_err(err)?;
        let _ = writeln!(log, "=== hademo: starting {daemon} for {} ===", n.name);
        let out = log.try_clone().map_err(err)?;
        let mut cmd = Command::new(hatests::bins::bin_dir().join(daemon));
        cmd.args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .process_group(0);
        cmd.spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", describe(&cmd)))
    }
}

impl Drop for LocalPair {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn lock(slot: &Mutex<Option<Child>>) -> MutexGuard<'_, Option<Child>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// `count` distinct ports of 127.0.0.1 that `bind` can take now (held
/// until all are found, so they differ; released before the daemons bind
/// them).
fn free_ports(
    count: usize,
    bind: impl Fn(SocketAddrV4) -> std::io::Result<()>,
) -> Result<Vec<u16>, String> {
    let held: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot pick a free port of 127.0.0.1: {e}"))?;
    let ports: Vec<u16> = held
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot pick a free port of 127.0.0.1: {e}"))?;
    drop(held);
    for &port in &ports {
        bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .map_err(|e| format!("port {port} of 127.0.0.1 is taken: {e}"))?;
    }
    Ok(ports)
}

/// The cluster config: the nodes, two UDP heartbeat paths on 127.0.0.1
/// (`ports`: lan1's alpha and beta, then lan2's), and the user's primary
/// group on the control sockets.
fn config_text(key: &Path, ports: &[u16]) -> Result<String, String> {
    let group = Group::from_gid(Gid::current())
        .ok()
        .flatten()
        .ok_or("your primary group has no name: hactl could not be let in")?;
    let mut t = format!(
        "[cluster]\nname = \"demo\"\nnetid = 7\nkey_file = \"{}\"\ncontrol_group = \"{}\"\n",
        key.display(),
        group.name
    );
    for (i, node) in NODES.iter().enumerate() {
        t.push_str(&format!(
            "\n[[node]]\nname = \"{node}\"\ndomain = {}\n",
            i + 1
        ));
    }
    for (path, ports) in PATHS.iter().zip(ports.chunks(NODES.len())) {
        let addrs: Vec<String> = NODES
            .iter()
            .zip(ports)
            .map(|(node, port)| format!("{node} = \"127.0.0.1:{port}\""))
            .collect();
        t.push_str(&format!(
            "\n[[network]]\nname = \"{path}\"\nkind = \"udp\"\ninterval = \"100ms\"\nmaxmiss = 10\n\
             address = {{ {} }}\n",
            addrs.join(", ")
        ));
    }
    Ok(t)
}

/// The service: alpha active, beta standby, the script `script` checked
/// every second, no floating IP, no volume.
fn service_file(script: &str) -> String {
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
"#
    )
}

/// `www start|stop|status` on the node hasvrd names in `HA_NODE`: socat
/// answers HTTP on 127.0.0.1 at that node's port (`ports`, in [`NODES`]
/// order) with the node's name; its pid is in `DIR/www-NODE.pid`; status
/// follows LSB (0 running, 3 stopped).
fn app_script(dir: &Path, ports: &[u16]) -> String {
    let cases: String = NODES
        .iter()
        .zip(ports)
        .map(|(node, port)| format!("{node}) port={port} ;;\n"))
        .collect();
    format!(
        r#"case "$HA_NODE" in
{cases}*) echo "www: unknown node '$HA_NODE'" >&2; exit 2 ;;
esac
pidfile="{dir}/{SERVICE}-$HA_NODE.pid"
running() {{ [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }}
case "$1" in
start)
    running && exit 0
    socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" \
        "SYSTEM:echo HTTP/1.0 200 OK; echo; echo $HA_NODE" </dev/null >/dev/null 2>&1 &
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
    )
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
