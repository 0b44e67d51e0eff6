//! [`WebService`]: a protected web service on a two-node [`TestCluster`],
//! the fixture of the service tests and of the demo's second part.
//!
//! Real hamond and hasvrd run on two nodes, `alpha` (the service's active
//! node) and `beta` (its standby). The service `www` is a floating IP on a
//! [`PublicLan`] and an HTTP server started and stopped by its scripts
//! ([`App`]: a small `socat` one, or Debian's nginx); a client in its own
//! namespace fetches it. Each node's server answers `/` with that node's
//! own address on the public LAN, so an answer says which node served. A
//! [`PowerSwitch`] can power a node off (a crash) and, when asked for, is
//! the cluster's fencing device.
//!
//! With [`WebSpec::volume`] the service also has a shared ext4 volume
//! ([`SharedDisk`]: one image file, one [`LoopDevice`] per node, never one
//! shared device, which would hide a double mount), mounted before the
//! floating IP and the application; nginx serves and stores its files.
//!
//! With [`WebSpec::ipv6`] the public LAN is dual-stack and the floating IP
//! IPv6 (fd93:X::100/64, see [`PublicLan::with_ipv6`]); the servers listen
//! on both families and still answer with the node's IPv4 address.
//!
//! Every poll of the waits here also checks that the floating IP is on at
//! most one node at once, and the volume mounted on at most one node
//! (safety rule 1), and panics, with the daemons' log tails, the first time
//! either is on both.
//!
//! Mount namespaces: `ip netns exec` gives each process it starts a private
//! mount namespace (a slave of the host's), so hasvrd's mounts, and the
//! application's view of them, are seen neither by the test nor by the
//! other node, as on two hosts. Which node has the volume mounted is
//! therefore read from the kernel's own list of live ext4 file systems
//! (`/sys/fs/ext4/<device>`, one per mounted device whatever the namespace:
//! the node is known by its loop device), and what a node mounted where
//! from its hasvrd's `/proc/PID/mountinfo`. A power-off kills every process
//! of the node, so its mount namespaces die and its mounts with them.

use crate::command::{must, run_for};
use crate::publan::NIC;
use crate::scratch::{ScratchDir, pidfile_script, write_script};
use crate::{ClusterSpec, PowerSwitch, PublicLan, SharedDisk, TestCluster, unique};
use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest wait for the service to settle somewhere (fence, start).
pub const WAIT: Duration = Duration::from_secs(40);
/// The port the application answers HTTP on.
pub const PORT: u16 = 8080;
/// The heartbeat path on the public LAN ([`WebSpec::public_heartbeat`]).
pub const PUBLIC_NET: &str = "public";
/// Its UDP port.
pub const PUBLIC_PORT: u16 = 5407;
/// The service's name.
pub const SERVICE: &str = "www";
/// The two nodes: the service's active node, then its standby.
pub const NODES: [&str; 2] = ["alpha", "beta"];
/// The name (`$0`) of the shell that pauses the service's start
/// ([`WebSpec::start_pause`]): a process with it on a node means the
/// service is starting there (see [`crate::apps::pid_in`]).
pub const PAUSED_START: &str = "start-after-a-pause";
/// The same for the stop ([`WebSpec::stop_pause`]): the service is
/// stopping there.
pub const PAUSED_STOP: &str = "stop-after-a-pause";
/// How often [`WebService::outage_during`] asks the floating IP.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// How long one of those probes waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Debian's nginx (package `nginx`, see scripts/install-deps).
pub const NGINX: &str = "/usr/sbin/nginx";
/// The size of the shared volume's image.
const VOLUME_MIB: u32 = 64;
/// The URL path under which nginx serves (GET) and stores (PUT) the
/// volume's files.
pub const DATA: &str = "/data/";
/// The header nginx puts on every answer: the address of the node that
/// served it.
const SERVED_BY: &str = "x-served-by";

/// The test application: `www start|stop|status`. It answers HTTP on
/// `PORT` (IPv4 only, or both families with `ipv6`) with the node's own
/// IPv4 address on the public LAN (so the client knows who served), keeps
/// its pid in `DIR/www-ADDR.pid`, and its status follows LSB (0 running, 3
/// stopped).
fn app_script(dir: &Path, ipv6: bool) -> String {
    let listen = if ipv6 {
        format!("TCP6-LISTEN:{PORT},ipv6only=0")
    } else {
        format!("TCP-LISTEN:{PORT}")
    };
    let me = format!(
        r#"me=$(ip -o -4 addr show dev {NIC} scope global | awk 'NR == 1 {{ split($4, a, "/"); print a[1] }}')"#
    );
    let pidfile = format!("{}/www-$me.pid", dir.display());
    let socat =
        format!(r#"socat {listen},fork,reuseaddr "SYSTEM:echo HTTP/1.0 200 OK; echo; echo $me""#);
    let body = pidfile_script(&me, &pidfile, &socat, "", "");
    write_script(dir, SERVICE, &body)
}

/// The test application with Debian's nginx: `www start|stop|status`. Each
/// node runs nginx with its own config, pid file, logs and temp paths in
/// `DIR/nginx-ADDR/` ([`nginx_conf`], picked by the node's address on the
/// public LAN). nginx does not daemonize (`daemon off`, started in the
/// background): it stays in the start script's process group, so hasvrd
/// tracks (and reaps) it even without cgroup2, which a daemon's `setsid`
/// escapes. `start` returns once nginx listens (its pid file is written
/// after the bind; 10 s at most), `stop` waits until its master is gone
/// (10 s, then SIGKILL), `status` follows LSB (0 running, 3 stopped).
fn nginx_script(dir: &Path) -> String {
    let body = format!(
        r#"me=$(ip -o -4 addr show dev {NIC} scope global | awk 'NR == 1 {{ split($4, a, "/"); print a[1] }}')
d="{dir}/nginx-$me"
pidfile="$d/nginx.pid"
# Alive and not a zombie: kill -0 succeeds on a zombie, and the master,
# orphaned when the start script exits, is reaped by hasvrd only later.
alive() {{ s=$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }}
running() {{ [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; }}
case "$1" in
start)
    running && exit 0
    rm -f "$pidfile"
    {NGINX} -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" \
        </dev/null >/dev/null 2>>"$d/stderr.log" &
    pid=$!
    # nginx writes its pid file once it listens.
    for _ in $(seq 100); do
        [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ] && exit 0
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    echo "nginx did not start:" >&2
    tail -n 20 "$d/stderr.log" "$d/error.log" >&2
    exit 1 ;;
stop)
    if running; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        for _ in $(seq 100); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            pkill -KILL -P "$pid"
            kill -KILL "$pid"
        fi
    fi
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

/// nginx's config for the node at `addr`, whose files are in `state`
/// (pid, logs, temp paths): it listens on 0.0.0.0:[`PORT`] in the node's
/// namespace (and on [::]:[`PORT`] with `ipv6`); `/` answers with `addr`, [`DATA`] serves and stores (WebDAV
/// PUT, DELETE) the files of `docs` (the volume's mount point); every
/// answer carries `X-Served-By: addr`. Workers run as www-data, the
/// volume's owner.
fn nginx_conf(addr: &str, state: &Path, docs: &Path, ipv6: bool) -> String {
    let (d, docs) = (state.display(), docs.display());
    let listen6 = if ipv6 {
        format!("listen [::]:{PORT};")
    } else {
        String::new()
    };
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
user www-data www-data;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 64;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type text/plain;
    keepalive_timeout 0;
    server {{
        listen 0.0.0.0:{PORT};
        {listen6}
        add_header X-Served-By {addr} always;
        location = / {{
            return 200 "{addr}\n";
        }}
        location {DATA} {{
            alias {docs}/;
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
            client_max_body_size 1m;
        }}
    }}
}}
"#
    )
}

/// The service's `[[volume]]` table: `devices` (node, device) of one
/// shared ext4 disk at `mount_point`, checked before it is mounted, its
/// root owned by www-data (nginx's workers).
fn volume_table(devices: &[(&str, &Path)], mount_point: &Path) -> String {
    let devices: Vec<String> = devices
        .iter()
        .map(|(node, dev)| format!("{node} = \"{}\"", dev.display()))
        .collect();
    format!(
        r#"
[[volume]]
device = {{ {} }}
mount_point = "{}"
fstype = "ext4"
options = "noatime,nodev,nosuid"
owner = "www-data"
group = "www-data"
mode = "0755"
fsck = true
"#,
        devices.join(", "),
        mount_point.display()
    )
}

/// `argv`, run after `pause` (if any) by a shell named `name`.
fn paused(pause: Option<Duration>, name: &str, argv: Vec<String>) -> Vec<String> {
    let Some(pause) = pause else {
        return argv;
    };
    let wrapper = format!("sleep {}; exec \"$@\"", pause.as_secs_f64());
    let head = ["/bin/sh", "-c", &wrapper, name].map(str::to_owned);
    head.into_iter().chain(argv).collect()
}

/// A duration as the service file writes it: whole seconds as `"Ns"`,
/// anything else in milliseconds (`"100ms"`).
#[track_caller]
fn duration_value(d: Duration) -> String {
    assert!(
        d.subsec_nanos().is_multiple_of(1_000_000),
        "{d:?} is not a whole number of milliseconds"
    );
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("\"{}s\"", ms / 1000)
    } else {
        format!("\"{ms}ms\"")
    }
}

/// The service file: alpha active, beta standby, one floating IP (/24 for
/// IPv4, /64 for IPv6), the
/// checks and restarts of `web` ([`WebSpec::check`],
/// [`WebSpec::restart_times`]), `script`'s start, stop and status unless
/// [`WebSpec::commands`] names others; `web.service_extra` lines go in
/// before the floating IP's table.
fn service_file(script: &str, ip: IpAddr, web: &WebSpec) -> String {
    let prefix = if ip.is_ipv6() { 64 } else { 24 };
    let mut commands = web
        .commands
        .clone()
        .unwrap_or_else(|| Commands::script(script));
    commands.start = paused(web.start_pause, PAUSED_START, commands.start);
    commands.stop = paused(web.stop_pause, PAUSED_STOP, commands.stop);
    let argv = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let (start, stop, status) = (
        argv(&commands.start),
        argv(&commands.stop),
        argv(&commands.status),
    );
    let (interval, tko) = web.check.unwrap_or((Duration::from_secs(1), 1));
    let check_interval = duration_value(interval);
    let restart_times = web.restart_times.unwrap_or(1);
    let extra = &web.service_extra;
    format!(
        r#"name = "{SERVICE}"
active = "alpha"
standby = ["beta"]
start = {start}
stop = {stop}
status = {status}
start_timeout = "20s"
stop_timeout = "15s"
resource_release_timeout = "15s"
check_interval = {check_interval}
check_tko = {tko}
restart_times = {restart_times}
onstart = true
{extra}

[[ip]]
address = "{ip}/{prefix}"
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

/// The application the service's scripts start on its node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum App {
    /// A `socat` loop that answers every request with the node's address.
    #[default]
    Socat,
    /// Debian's nginx ([`NGINX`]): `/` answers with the node's address,
    /// [`DATA`] serves (GET) and stores (PUT, DELETE) files on the volume's
    /// mount point (a plain directory of the test without
    /// [`WebSpec::volume`]), and every answer says which node served it
    /// ([`Reply::served_by`]).
    Nginx,
}

/// The service's start, stop and status commands, argument vectors
/// ([`WebSpec::commands`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commands {
    pub start: Vec<String>,
    pub stop: Vec<String>,
    pub status: Vec<String>,
}

impl Commands {
    /// `SCRIPT start`, `SCRIPT stop`, `SCRIPT status`.
    pub fn script(script: &str) -> Commands {
        let with = |action: &str| vec![script.to_owned(), action.to_owned()];
        Commands {
            start: with("start"),
            stop: with("stop"),
            status: with("status"),
        }
    }
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
    /// The service has a shared volume: a fresh 64 MiB ext4 image seen by
    /// each node through a loop device of its own ([`SharedDisk`]), at a
    /// mount point of this test ([`WebService::mount_point`]), checked
    /// before it is mounted, its root owned by www-data. The mount point
    /// is registered with the power switch, which unmounts it where it
    /// sees it; hasvrd's own mount is in its private mount namespace and
    /// dies with the node's processes (see the module docs).
    pub volume: bool,
    /// The HTTP server the scripts start.
    pub app: App,
    /// hamond starts and supervises each node's hasvrd (as installed),
    /// instead of the test starting it.
    pub hamond_runs_hasvrd: bool,
    /// The public LAN also carries a heartbeat path, `public` (UDP port
    /// [`PUBLIC_PORT`], the lowest priority), as SureHA's test 2 of 6.1
    /// has it.
    pub public_heartbeat: bool,
    /// The cluster's spec; None: `ClusterSpec::with_nodes(&NODES)`. Its
    /// nodes must be [`NODES`]; with `fencing` the switch's `[[fence]]`
    /// table is appended to its `extra_config`.
    pub cluster: Option<ClusterSpec>,
    /// The service's `check_interval` and `check_tko`; None: 1 s and 1.
    pub check: Option<(Duration, u32)>,
    /// The service's `restart_times`; None: 1.
    pub restart_times: Option<u32>,
    /// The public LAN is dual-stack and the floating IP is IPv6
    /// ([`PublicLan::floating6`]), added by hasvrd with duplicate address
    /// detection as its probe.
    pub ipv6: bool,
    /// The service's start, stop and status commands instead of [`App`]'s
    /// script (the application is then the test's own: the fixture's
    /// HTTP checks and [`WebService::app_pid`] do not apply).
    pub commands: Option<Commands>,
    /// Where the volume is mounted (created if missing), for commands
    /// that name it; None: `docroot` in the fixture's own directory.
    pub mount_point: Option<PathBuf>,
    /// With `fencing`, the switch's fence `delay` (rule 4: the fence of the
    /// node that hosts more waits this long); None: no delay.
    pub fence_delay: Option<Duration>,
    /// The service's start waits this long before it runs the start
    /// command (a slow application start), so that a test can act while
    /// the service is starting; None: no pause.
    pub start_pause: Option<Duration>,
    /// The same for the stop (a slow application shutdown).
    pub stop_pause: Option<Duration>,
}

/// A node's mount namespace kept after the node is gone: what a node that
/// is not really off (hung, cut off, its processes killed but its kernel
/// up) still has mounted. Dropping it releases the namespace, and with it
/// whatever is still mounted there ([`WebService::hold_mounts`]).
#[derive(Debug)]
pub struct HeldMounts {
    ns: File,
    node: &'static str,
    mount_point: PathBuf,
}

impl HeldMounts {
    /// The node whose mounts these are.
    pub fn node(&self) -> &'static str {
        self.node
    }

    /// Unmounts the volume in the held namespace (the operator's cleanup
    /// of the lost node, never lazily); panics if `umount` fails.
    #[track_caller]
    pub fn unmount(&self) {
        let ns = format!("/proc/{}/fd/{}", unique::pid(), self.ns.as_raw_fd());
        must(
            Command::new("nsenter")
                .arg(format!("--mount={ns}"))
                .arg("umount")
                .arg(&self.mount_point),
        );
    }
}

/// An HTTP answer the client got ([`WebService::get`], [`WebService::put`]).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code (`200`, `201`, `404`, ...).
    pub status: u16,
    /// The node that served it (nginx's `X-Served-By`), if known.
    pub served_by: Option<&'static str>,
    pub body: String,
}

/// A two-node cluster running the web service `www`, with its public LAN,
/// its client and a power switch. Dropping it tears everything down.
pub struct WebService {
    // Dropped in this order: the LAN (client), the cluster (its processes,
    // and with them their mounts), the shared disk, the directory.
    lan: PublicLan,
    cluster: TestCluster,
    disk: Option<SharedDisk>,
    fip: IpAddr,
    switch: PowerSwitch,
    mount_point: PathBuf,
    app: App,
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
        if web.app == App::Nginx {
            assert!(
                Path::new(NGINX).exists(),
                "{NGINX} is missing: install Debian's nginx (scripts/install-deps)"
            );
        }
        let dir = ScratchDir::new(test);
        let mount_point = web
            .mount_point
            .clone()
            .unwrap_or_else(|| dir.join("docroot"));
        std::fs::create_dir_all(&mount_point)
            .unwrap_or_else(|e| panic!("{}: {e}", mount_point.display()));
        let disk = web
            .volume
            .then(|| SharedDisk::new(dir.join("shared.img"), VOLUME_MIB, &NODES));
        let switch = PowerSwitch::install(dir.path());
        let mut spec = web
            .cluster
            .clone()
            .unwrap_or_else(|| ClusterSpec::with_nodes(&NODES));
        assert_eq!(
            spec.nodes, NODES,
            "WebSpec::cluster: the fixture's nodes are {NODES:?}"
        );
        spec.hamond_runs_hasvrd = web.hamond_runs_hasvrd;
        let octet = crate::unique::subnet_octet();
        if web.public_heartbeat {
            // The addresses appear with the LAN, after hamond starts: its
            // driver retries until they do.
            if !spec.extra_config.is_empty() && !spec.extra_config.ends_with('\n') {
                spec.extra_config.push('\n');
            }
            spec.extra_config.push_str(&format!(
                "[[network]]\nname = \"{PUBLIC_NET}\"\nkind = \"udp\"\npriority = 0\n\
                 interval = \"100ms\"\nmaxmiss = 10\n\
                 address = {{ alpha = \"{}:{PUBLIC_PORT}\", beta = \"{}:{PUBLIC_PORT}\" }}\n",
                crate::publan::host(octet, 1),
                crate::publan::host(octet, 2)
            ));
        }
        if fencing {
            if !spec.extra_config.is_empty() && !spec.extra_config.ends_with('\n') {
                spec.extra_config.push('\n');
            }
            spec.extra_config.push_str(&format!(
                "[[fence]]\nname = \"switch\"\nagent = [\"{}\"]\nnodes = [\"alpha\", \"beta\"]\n\
                 timeout = \"20s\"\n",
                switch.agent().display()
            ));
            if let Some(delay) = web.fence_delay {
                spec.extra_config
                    .push_str(&format!("delay = {}\n", duration_value(delay)));
            }
        }
        let cluster = TestCluster::start(test, spec);
        // Unmounted by a power-off (where the switch sees the mount: the
        // node's own mount namespaces die with its processes anyway).
        let mounts: &[&Path] = if disk.is_some() {
            &[mount_point.as_path()]
        } else {
            &[]
        };
        for node in NODES {
            switch.connect(node, cluster.ns(node), mounts);
        }
        let nodes = [cluster.ns("alpha"), cluster.ns("beta")];
        let (lan, fip) = if web.ipv6 {
            let lan = PublicLan::with_ipv6(test, &nodes, octet);
            let fip = IpAddr::from(lan.floating6(0));
            (lan, fip)
        } else {
            let lan = PublicLan::with_octet(test, &nodes, octet);
            let fip = IpAddr::from(lan.floating(0));
            (lan, fip)
        };
        let script = match web.app {
            App::Socat => app_script(dir.path(), web.ipv6),
            App::Nginx => {
                // Without a volume nginx's workers store in the directory.
                must(
                    Command::new("chown")
                        .arg("www-data:www-data")
                        .arg(&mount_point),
                );
                for (i, _) in NODES.iter().enumerate() {
                    let addr = lan.host(i as u8 + 1).to_string();
                    let state = dir.join(format!("nginx-{addr}"));
                    std::fs::create_dir_all(&state)
                        .unwrap_or_else(|e| panic!("{}: {e}", state.display()));
                    let conf = state.join("nginx.conf");
                    std::fs::write(&conf, nginx_conf(&addr, &state, &mount_point, web.ipv6))
                        .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
                }
                nginx_script(dir.path())
            }
        };
        let mut text = service_file(&script, fip, &web);
        if let Some(disk) = &disk {
            let devices: Vec<(&str, &Path)> =
                NODES.iter().map(|n| (*n, disk.device(n).path())).collect();
            text.push_str(&volume_table(&devices, &mount_point));
        }
        let file = cluster.services_dir().join(format!("{SERVICE}.toml"));
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for node in NODES {
            if web.hamond_runs_hasvrd {
                // Its hasvrd started without the service: a restart of
                // hamond (and so of its hasvrd) reads it.
                cluster.restart(node);
            } else {
                cluster.start_hasvrd(node);
            }
        }
        WebService {
            lan,
            cluster,
            disk,
            fip,
            switch,
            mount_point,
            app: web.app,
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
    pub fn fip(&self) -> IpAddr {
        self.fip
    }

    /// The MAC address of `node`'s NIC on the public LAN: what neighbours
    /// should have for the floating IP while `node` holds it.
    #[track_caller]
    pub fn mac(&self, node: &str) -> String {
        let shown = self
            .cluster
            .ns(node)
            .ip(&["-o", "link", "show", "dev", NIC]);
        let mut words = shown.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .unwrap_or_else(|| panic!("no MAC address in {node}'s {shown:?}"))
            .to_owned()
    }

    /// The shared disk ([`WebSpec::volume`]).
    #[track_caller]
    pub fn disk(&self) -> &SharedDisk {
        self.disk
            .as_ref()
            .unwrap_or_else(|| panic!("the service has no volume (WebSpec::volume)"))
    }

    /// Where the volume is mounted (a directory of this test), and what
    /// nginx serves under [`DATA`].
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// The pid of `node`'s hasvrd (found in the node's namespace), if it
    /// runs.
    pub fn hasvrd_pid(&self, node: &str) -> Option<i32> {
        self.cluster.ns(node).pids().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "hasvrd")
        })
    }

    /// The file `name` under the mount point as `node`'s hasvrd (and so
    /// its application) sees it, through `/proc/PID/root`: on the volume
    /// while that node has it mounted, else in the bare directory.
    #[track_caller]
    pub fn volume_file(&self, node: &str, name: &str) -> PathBuf {
        self.seen_by(node, &self.mount_point.join(name))
    }

    /// The absolute `path` as `node`'s hasvrd sees it (its mount namespace,
    /// through `/proc/PID/root`).
    #[track_caller]
    pub fn seen_by(&self, node: &str, path: &Path) -> PathBuf {
        let pid = self
            .hasvrd_pid(node)
            .unwrap_or_else(|| panic!("{node}'s hasvrd does not run"));
        PathBuf::from(format!("/proc/{pid}/root")).join(path.strip_prefix("/").unwrap_or(path))
    }

    /// What is mounted at the mount point in `node`'s hasvrd's mount
    /// table: the `major:minor` of its file system and its source, as
    /// `/proc/PID/mountinfo` shows them (the last, topmost mount).
    #[track_caller]
    pub fn mounted_in(&self, node: &str) -> Option<(String, String)> {
        let pid = self.hasvrd_pid(node)?;
        let file = format!("/proc/{pid}/mountinfo");
        let table = std::fs::read_to_string(&file).ok()?;
        let want = self.mount_point.to_string_lossy();
        table
            .lines()
            .filter_map(|line| {
                let (mount, fs) = line.split_once(" - ")?;
                let f: Vec<&str> = mount.split(' ').collect();
                let source = fs.split(' ').nth(1)?;
                (f.get(4) == Some(&want.as_ref())).then(|| (f[2].to_owned(), source.to_owned()))
            })
            .next_back()
    }

    /// The nodes that have the volume mounted now (none without a
    /// volume): whose loop device carries a live ext4 file system, in any
    /// mount namespace.
    pub fn volume_holders(&self) -> Vec<&'static str> {
        self.disk
            .as_ref()
            .map(SharedDisk::mounted_on)
            .unwrap_or_default()
    }

    /// Panics, with the log tails, unless the volume is mounted on `node`
    /// and nowhere else, from `node`'s own loop device, at the mount point
    /// of `node`'s hasvrd.
    #[track_caller]
    pub fn assert_volume_on(&self, node: &str) {
        let holders = self.volume_holders();
        let dev = self.disk().device(node);
        let mounted = self.mounted_in(node);
        let want = (dev.devno(), dev.path().to_string_lossy().into_owned());
        assert!(
            holders == [node] && mounted.as_ref() == Some(&want),
            "the volume should be mounted on {node} only, from {} ({}): live on {holders:?}, \
             {node}'s hasvrd has {mounted:?} at {}\n{}",
            want.1,
            want.0,
            self.mount_point.display(),
            self.cluster.log_tails(40)
        );
    }

    /// Keeps `node`'s hasvrd's mount namespace (and so the volume mounted
    /// there) after the node's processes are gone: the test's stand-in for
    /// a lost node that still has the disk mounted.
    #[track_caller]
    pub fn hold_mounts(&self, node: &str) -> HeldMounts {
        let pid = self
            .hasvrd_pid(node)
            .unwrap_or_else(|| panic!("{node}'s hasvrd does not run"));
        let file = format!("/proc/{pid}/ns/mnt");
        let ns = File::open(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let node = NODES
            .into_iter()
            .find(|n| *n == node)
            .unwrap_or_else(|| panic!("no node {node}"));
        HeldMounts {
            ns,
            node,
            mount_point: self.mount_point.clone(),
        }
    }

    /// The URL the client fetches: `http://FIP:PORT/` (the address in
    /// brackets for IPv6).
    pub fn url(&self) -> String {
        format!("http://{}/", self.socket())
    }

    /// The floating IP and [`PORT`].
    fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.fip, PORT)
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

    /// One GET of `path` (e.g. `/data/note.txt`) by the client through the
    /// floating IP (3 s at most).
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        self.http(path, None)
    }

    /// One PUT of `body` to `path` by the client through the floating IP
    /// (3 s at most); nginx answers 201 (created) or 204 (replaced).
    pub fn put(&self, path: &str, body: &str) -> Result<Reply, String> {
        let file = self.dir.join(format!("put-{}.body", unique::next()));
        std::fs::write(&file, body).map_err(|e| format!("{}: {e}", file.display()))?;
        let reply = self.http(path, Some(&file));
        let _ = std::fs::remove_file(&file);
        reply
    }

    /// One request of the client with curl: GET, or PUT of `upload`.
    fn http(&self, path: &str, upload: Option<&Path>) -> Result<Reply, String> {
        let mut cmd = self.lan.client().command("curl");
        cmd.args(["-sS", "-g", "-i", "--max-time", "3", "-H", "Expect:"]);
        if let Some(file) = upload {
            cmd.arg("-T").arg(file);
        }
        cmd.arg(format!("http://{}{path}", self.socket()));
        let out = run_for(&mut cmd, Duration::from_secs(10))?;
        if !out.status.success() {
            return Err(out.stderr.trim().to_owned());
        }
        self.parse_reply(&out.stdout)
    }

    /// Status, `X-Served-By` and body of curl's `-i` output (after any
    /// `100 Continue`).
    fn parse_reply(&self, raw: &str) -> Result<Reply, String> {
        let mut rest = raw;
        loop {
            let (head, body) = rest
                .split_once("\r\n\r\n")
                .ok_or_else(|| format!("no HTTP header in {raw:?}"))?;
            let mut lines = head.lines();
            let status: u16 = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("no HTTP status in {raw:?}"))?;
            if status == 100 {
                rest = body;
                continue;
            }
            let served_by = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(SERVED_BY))
                .and_then(|(_, v)| self.node_of(v));
            return Ok(Reply {
                status,
                served_by,
                body: body.to_owned(),
            });
        }
    }

    /// The nodes that hold the floating IP now. An IPv6 address still in
    /// duplicate address detection (`tentative`, also once `dadfailed`) is
    /// not held: the kernel neither answers for it nor sends from it, and
    /// adding it is how hasvrd probes (DAD is the IPv6 probe).
    pub fn holders(&self) -> Vec<&'static str> {
        let addr = format!(" {}/", self.fip);
        NODES
            .into_iter()
            .filter(|n| {
                self.cluster
                    .ns(n)
                    .ip(&["-o", "addr", "show", "dev", NIC])
                    .lines()
                    .any(|l| l.contains(&addr) && !l.contains("tentative"))
            })
            .collect()
    }

    /// Panics, with the log tails, if the floating IP is on both nodes,
    /// or the volume mounted on both.
    #[track_caller]
    pub fn assert_never_twice(&self) {
        let holders = self.holders();
        assert!(
            holders.len() <= 1,
            "the floating IP is on {holders:?} at once\n{}",
            self.cluster.log_tails(40)
        );
        let mounted = self.volume_holders();
        assert!(
            mounted.len() <= 1,
            "the shared volume is mounted on {mounted:?} at once (live ext4 on {})\n{}",
            mounted
                .iter()
                .map(|n| self.disk().device(n).path().display().to_string())
                .collect::<Vec<_>>()
                .join(" and "),
            self.cluster.log_tails(40)
        );
    }

    /// Once `node` served: with a volume, it must be mounted there, and
    /// nowhere else (the application is started after the volumes).
    #[track_caller]
    fn assert_serving_with_volume(&self, node: &str) {
        if self.disk.is_some() {
            let holders = self.volume_holders();
            assert!(
                holders == [node],
                "{node} serves, but the volume is live on {holders:?}\n{}",
                self.cluster.log_tails(40)
            );
        }
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
                Ok(body) if body.trim() == want => {
                    self.assert_serving_with_volume(node);
                    return;
                }
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

    /// Waits (at most [`WAIT`]) until `ok` holds, checking the floating IP
    /// and the volume on every poll; fails with the logs' tails.
    #[track_caller]
    pub fn wait_for(&self, what: &str, ok: impl Fn() -> bool) {
        let end = Instant::now() + WAIT;
        while !ok() {
            self.assert_never_twice();
            if Instant::now() >= end {
                panic!(
                    "not within {WAIT:?}: {what}\n{}",
                    self.cluster.log_tails(60)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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
            self.assert_serving_with_volume(to);
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

    /// The pid the application wrote on `node` (nginx's: its master's).
    #[track_caller]
    pub fn app_pid(&self, node: &str) -> String {
        let file = self.app_pid_file(node);
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_owned()
    }

    /// Whether the application runs on `node`: its pid file names a live
    /// process (its stop removes the file), not a zombie (one killed with
    /// its node, whose reaper died with it, may stay unreaped).
    #[track_caller]
    pub fn app_running(&self, node: &str) -> bool {
        std::fs::read_to_string(self.app_pid_file(node))
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .and_then(|stat| Some(stat.rsplit_once(") ")?.1.chars().next()? != 'Z'))
            .unwrap_or(false)
    }

    /// Where the application keeps its pid on `node`.
    #[track_caller]
    fn app_pid_file(&self, node: &str) -> PathBuf {
        match self.app {
            App::Socat => self.dir.join(format!("{SERVICE}-{}.pid", self.addr(node))),
            App::Nginx => self
                .dir
                .join(format!("nginx-{}", self.addr(node)))
                .join("nginx.pid"),
        }
    }
}

/// The value of a finished scoped thread; its panic, if it panicked.
fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
