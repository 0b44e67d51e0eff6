//! Debian's Linux-HA heartbeat (3.0.6) as the peer of the benchmarks: two
//! heartbeat daemons as nodes alpha and beta on the same kind of namespaced
//! nodes as ours ([`HeartbeatPair`]).
//!
//! Each node is a [`Netns`] (joined by two [`Veth`] networks, `lan1` and
//! `lan2`, and optionally a paced serial [`Cable`]). Heartbeat takes its
//! node name from `uname -n` and keeps its state at fixed paths, so each
//! daemon also gets its own UTS namespace (hostname = node name) and mount
//! namespace, where per-node directories are bind-mounted over `/etc/ha.d`
//! (a private copy with our `ha.cf`, `authkeys`, `haresources`),
//! `/var/lib/heartbeat` and `/run` (heartbeat's pid file is
//! `/run/heartbeat.pid`, its sockets are under `/run/heartbeat`, and its tty
//! locks under `/run/lock`). Heartbeat daemonises: its processes (master
//! control process, FIFO reader, one reader and one writer per medium) are
//! found as the processes of the node's network namespace.

use hatests::cable::{Cable, End};
use hatests::command::{describe, must, wait_deadline};
use hatests::scratch::ScratchDir;
use hatests::{Netns, Veth, unique};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The daemon, as Debian installs it.
pub const DAEMON: &str = "/usr/libexec/heartbeat/heartbeat";
/// The node names (heartbeat's `node` lines, and the hostnames).
const NODES: [&str; 2] = ["alpha", "beta"];
/// The UDP networks: interface name (the same in both nodes) and the
/// second octet of its subnet.
const NETS: [(&str, u8); 2] = [("lan1", 91), ("lan2", 92)];
/// How often a log is read while waiting for a line.
pub const POLL: Duration = Duration::from_millis(10);
/// Longest wait for heartbeat to start, or for the two nodes to see each
/// other active.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Quiet time after both nodes report each other active, so that the
/// scripts heartbeat runs on a membership change (harc, resource
/// transitions) are done before a measurement starts.
const SETTLE: Duration = Duration::from_secs(2);
/// Time from a daemon's start until it runs at its configured deadtime:
/// for its first 5 s heartbeat adds 2 s to the deadtime it announces to
/// its peers (heartbeat.c: `hb_add_deadtime(2000)` once its children run,
/// `hb_pop_deadtime` 5 s later), so a peer killed earlier is declared dead
/// 2 s late. Measurements start after this, in the steady state.
pub const START_GRACE: Duration = Duration::from_secs(7);

/// Run inside `ip netns exec NS unshare --uts --mount`: `$1` node name,
/// `$2` the node's directory, `$3` the daemon.
const NODE_SCRIPT: &str = r#"set -e
hostname "$1"
mount --bind "$2/etc" /etc/ha.d
mount --bind "$2/lib" /var/lib/heartbeat
mount --bind "$2/run" /run
exec "$3""#;

/// What alpha logs when it sees beta (or beta alpha) in full membership.
fn active_line(peer: &str) -> String {
    format!("Status update for node {peer}: status active")
}

/// What a node logs when it declares its peer dead.
pub fn dead_line(peer: &str) -> String {
    format!("node {peer}: is dead")
}

/// Heartbeat's timing and media.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// `keepalive`.
    pub keepalive_ms: u64,
    /// `deadtime`; `warntime` is half of it.
    pub deadtime_ms: u64,
    /// A serial line through a paced cable at this baud rate (`serial` +
    /// `baud`), besides the two ucast paths.
    pub serial_baud: Option<u32>,
}

impl Timing {
    /// Short description of the timing and media, for reports.
    pub fn describe(&self) -> String {
        let serial = match self.serial_baud {
            Some(baud) => format!(" + serial {baud} baud"),
            None => String::new(),
        };
        format!(
            "keepalive {} ms, deadtime {} ms, 2 ucast{serial}",
            self.keepalive_ms, self.deadtime_ms
        )
    }
}

/// The installed heartbeat's Debian version, or None if it is not installed.
pub fn installed_version() -> Option<String> {
    if !Path::new(DAEMON).is_file() {
        return None;
    }
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "heartbeat"])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Some(if version.is_empty() {
        "(unknown version)".into()
    } else {
        version
    })
}

/// One heartbeat node.
struct Node {
    name: &'static str,
    ns: Netns,
    /// Holds `etc/`, `lib/` and `run/`, mounted over heartbeat's paths.
    root: PathBuf,
    /// Heartbeat's `logfile`.
    log: PathBuf,
    /// What the start command printed.
    out: PathBuf,
}

/// Two heartbeat daemons, alpha and beta, in namespaces. Dropping it kills
/// every process of both nodes and removes namespaces, veths and cable (and
/// the temp dir, unless the thread panics or `HA_KEEP_TMP` is set).
pub struct HeartbeatPair {
    // Dropped in this order: networks, cable, nodes (namespaces), dir.
    nets: Vec<Veth>,
    cable: Option<Cable>,
    nodes: Vec<Node>,
    dir: ScratchDir,
}

impl HeartbeatPair {
    /// Builds both nodes, starts both daemons and waits until each sees the
    /// other active.
    pub fn start(tag: &str, timing: Timing) -> HeartbeatPair {
        let dir = ScratchDir::new(tag);
        let nodes: Vec<Node> = NODES
            .iter()
            .map(|&name| Node {
                name,
                ns: Netns::new(&format!("{tag}-{name}")),
                root: dir.join(name),
                log: dir.join(format!("{name}.log")),
                out: dir.join(format!("{name}.out")),
            })
            .collect();
        let x = unique::subnet_octet();
        let nets: Vec<Veth> = NETS
            .iter()
            .map(|&(ifname, second)| {
                Veth::new(
                    &nodes[0].ns,
                    ifname,
                    Ipv4Addr::new(10, second, x, 1),
                    &nodes[1].ns,
                    ifname,
                    Ipv4Addr::new(10, second, x, 2),
                )
            })
            .collect();
        let cable = timing
            .serial_baud
            .map(|baud| Cable::new(baud).unwrap_or_else(|e| panic!("serial cable: {e}")));
        let pair = HeartbeatPair {
            nets,
            cable,
            nodes,
            dir,
        };
        for (i, node) in pair.nodes.iter().enumerate() {
            make_node_dirs(&node.root);
            let ha_cf = pair.ha_cf(i, &timing);
            let etc = node.root.join("etc");
            write(&etc.join("ha.cf"), &ha_cf, 0o644);
            // The same key on both nodes; heartbeat requires mode 0600.
            write(&etc.join("authkeys"), "auth 1\n1 sha1 habench\n", 0o600);
            // No resources: only membership is measured.
            write(&etc.join("haresources"), "", 0o644);
        }
        let (offsets, started) = (pair.offsets(), Instant::now());
        for name in NODES {
            pair.start_node(name);
        }
        pair.wait_active(offsets, started);
        pair
    }

    /// Node `i`'s `ha.cf`: ucast to the peer on both networks, then the
    /// serial port if any (settings before media, as heartbeat requires).
    fn ha_cf(&self, i: usize, timing: &Timing) -> String {
        let node = &self.nodes[i];
        let mut t = String::new();
        let _ = writeln!(t, "# habench: heartbeat node {}", node.name);
        let _ = writeln!(t, "logfile {}", node.log.display());
        let _ = writeln!(t, "logfacility none");
        let _ = writeln!(t, "use_logd no");
        let _ = writeln!(t, "debug 0");
        let _ = writeln!(t, "keepalive {}ms", timing.keepalive_ms);
        let _ = writeln!(t, "deadtime {}ms", timing.deadtime_ms);
        let _ = writeln!(t, "warntime {}ms", timing.deadtime_ms / 2);
        // Only matters at start-up (a node never heard yet).
        let _ = writeln!(t, "initdead {}ms", (timing.deadtime_ms * 2).max(10_000));
        let _ = writeln!(t, "udpport 694");
        if let Some(baud) = timing.serial_baud {
            let _ = writeln!(t, "baud {baud}");
        }
        for veth in &self.nets {
            let peer = if i == 0 { &veth.b } else { &veth.a };
            let _ = writeln!(t, "ucast {} {}", peer.ifname, peer.addr);
        }
        if let Some(cable) = &self.cable {
            let end = if i == 0 { End::A } else { End::B };
            let _ = writeln!(t, "serial {}", cable.path(end).display());
        }
        let _ = writeln!(t, "auto_failback off");
        let _ = writeln!(t, "crm no");
        let _ = writeln!(t, "node {}", NODES.join(" "));
        t
    }

    #[track_caller]
    fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no heartbeat node {name}"))
    }

    /// The serial cable, if the timing has one (end A is alpha).
    pub fn cable(&self) -> Option<&Cable> {
        self.cable.as_ref()
    }

    /// Starts a node's heartbeat (it daemonises; the start command must
    /// exit 0 within 10 s). Its output is appended to `NODE.out`.
    #[track_caller]
    pub fn start_node(&self, name: &str) {
        let node = self.node(name);
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.out)
            .unwrap_or_else(|e| panic!("{}: {e}", node.out.display()));
        let err = out.try_clone().unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = node.ns.command("unshare");
        cmd.args(["--uts", "--mount", "--propagation", "private", "--"])
            .args(["sh", "-c", NODE_SCRIPT, "sh", node.name])
            .arg(&node.root)
            .arg(DAEMON)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let what = describe(&cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        match wait_deadline(&mut child, Duration::from_secs(10)) {
            Some(status) if status.success() => {}
            status => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`{what}` failed ({status:?})\n{}",
                    self.tails(name, &node.out, 20)
                );
            }
        }
    }

    /// SIGKILL to every process of the node (heartbeat's master control
    /// process and all its children at once), then waits until none is
    /// left. Returns the moment the signals went out.
    ///
    /// The pid file goes too, as with a power cut (`/run` is a tmpfs):
    /// the killed master may stay a zombie for a while, and heartbeat
    /// would take it for a running instance and refuse to start.
    #[track_caller]
    pub fn crash(&self, name: &str) -> Instant {
        let node = self.node(name);
        let pids = node.ns.pids();
        assert!(!pids.is_empty(), "{name}: no heartbeat process to kill");
        let at = Instant::now();
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        node.ns.kill_all();
        let _ = std::fs::remove_file(node.root.join("run/heartbeat.pid"));
        at
    }

    /// Pids of a node's heartbeat processes.
    pub fn pids(&self, name: &str) -> Vec<i32> {
        self.node(name).ns.pids()
    }

    /// Length of every node's log now, to look for lines written later.
    fn offsets(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| log_len(&n.log)).collect()
    }

    /// Length of a node's log now.
    pub fn log_len(&self, name: &str) -> u64 {
        log_len(&self.node(name).log)
    }

    /// Waits until `needle` appears in `name`'s log past `offset`, reading
    /// it every [`POLL`]. Returns when it was seen, None after `timeout`.
    pub fn wait_log(
        &self,
        name: &str,
        offset: u64,
        needle: &str,
        timeout: Duration,
    ) -> Option<Instant> {
        let path = &self.node(name).log;
        let deadline = Instant::now() + timeout;
        loop {
            if read_from(path, offset).contains(needle) {
                return Some(Instant::now());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until each node has logged its peer active past `offsets`
    /// (from [`HeartbeatPair::offsets`]), then lets things settle: at
    /// least [`SETTLE`], and until [`START_GRACE`] after `started`.
    #[track_caller]
    fn wait_active(&self, offsets: Vec<u64>, started: Instant) {
        for (i, (node, offset)) in self.nodes.iter().zip(offsets).enumerate() {
            let peer = self.nodes[1 - i].name;
            if self
                .wait_log(node.name, offset, &active_line(peer), START_TIMEOUT)
                .is_none()
            {
                panic!(
                    "heartbeat: {} never saw {peer} active within {START_TIMEOUT:?}\n{}",
                    node.name,
                    self.all_tails(30)
                );
            }
        }
        let steady = (Instant::now() + SETTLE).max(started + START_GRACE);
        std::thread::sleep(steady.saturating_duration_since(Instant::now()));
    }

    /// Restarts a crashed node and waits until both see each other active.
    #[track_caller]
    pub fn restart(&self, name: &str) {
        let (offsets, started) = (self.offsets(), Instant::now());
        self.start_node(name);
        self.wait_active(offsets, started);
    }

    /// The last lines of a file, labelled, for panic messages.
    fn tails(&self, name: &str, path: &Path, lines: usize) -> String {
        let text = read_from(path, 0);
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        format!(
            "--- {name}: {} (temp dir {}) ---\n{}\n",
            path.display(),
            self.dir.path().display(),
            tail.join("\n")
        )
    }

    /// Log and start output tails of both nodes.
    pub fn all_tails(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .flat_map(|n| {
                [
                    self.tails(n.name, &n.log, lines),
                    self.tails(n.name, &n.out, 5),
                ]
            })
            .collect()
    }
}

/// Makes the node's private `etc/` (a copy of the installed `/etc/ha.d`),
/// `lib/` (the package's `/var/lib/heartbeat` directories, without any
/// state files a host heartbeat may have left) and `run/` (with
/// `heartbeat/` as the package's tmpfiles.d makes it, and `lock/`).
#[track_caller]
fn make_node_dirs(root: &Path) {
    let (etc, lib, run) = (root.join("etc"), root.join("lib"), root.join("run"));
    for d in [&etc, &lib, &run] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    must(Command::new("cp").arg("-a").arg("/etc/ha.d/.").arg(&etc));
    must(
        Command::new("cp")
            .arg("-a")
            .arg("/var/lib/heartbeat/.")
            .arg(&lib),
    );
    let entries = std::fs::read_dir(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| !t.is_dir()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let hb = run.join("heartbeat");
    must(
        Command::new("install")
            .args(["-d", "-o", "hacluster", "-g", "haclient", "-m", "0750"])
            .arg(&hb)
            .arg(hb.join("ccm"))
            .arg(hb.join("crm"))
            .arg(hb.join("dopd")),
    );
    must(
        Command::new("install")
            .args(["-d", "-m", "1777"])
            .arg(run.join("lock")),
    );
}

#[track_caller]
fn write(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What the file holds past `offset` (empty if it does not exist yet).
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path)
        && f.seek(SeekFrom::Start(offset)).is_ok()
    {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
