//! The cluster config file (TOML, usually `/etc/hacluster/cluster.toml`): the
//! cluster's name, netid and key file, its nodes, and the private networks
//! (RS-232 cables, UDP paths) the nodes watch each other over, the
//! fencing devices (`[[fence]]`, optional) that can power a node off, and
//! the node's watchdog (`[watchdog]`, optional, off by default), and the
//! alert hooks and mail for severe events (`[alerts]`, optional).
//!
//! [`ClusterConfig::load`] reads and checks the whole file; nothing of it is
//! used unless every rule holds. Every error names the file, the line and
//! column, and the field (`network[1].interval`, 0-based indexes in file
//! order), and says what is allowed. `etc/cluster.toml` is a commented sample.

use crate::toml_walk::{
    Section, Value, Walker, canonical_hash, clip, describe, ip_family, show, valid_unix_name,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeValue;

/// Most nodes in one cluster.
pub const MAX_NODES: usize = 64;
/// Most private networks in one cluster.
pub const MAX_NETWORKS: usize = 32;
/// Highest netid (the lowest is 1).
pub const MAX_NETID: u16 = 1024;
/// Highest node domain id (the lowest is 1).
pub const MAX_DOMAIN: u8 = 64;
/// Longest cluster, node or network name.
pub const MAX_NAME_LEN: usize = 32;
/// Network priority when the file gives none.
pub const DEFAULT_PRIORITY: u8 = 50;
/// Highest network priority (the lowest is 0).
pub const MAX_PRIORITY: u8 = 100;
/// Heartbeat interval when the file gives none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest heartbeat interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(20);
/// Longest heartbeat interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(15);
/// Missed heartbeats before a peer is lost on a network, when the file gives none.
pub const DEFAULT_MAXMISS: u32 = 10;
/// Fewest allowed `maxmiss`.
pub const MIN_MAXMISS: u32 = 2;
/// Most allowed `maxmiss`.
pub const MAX_MAXMISS: u32 = 100;
/// Serial line speed when the file gives none.
pub const DEFAULT_BAUD: u32 = 19200;
/// The serial line speeds allowed.
pub const BAUD_RATES: [u32; 5] = [9600, 19200, 38400, 57600, 115200];
/// Most fencing devices in one cluster.
pub const MAX_FENCES: usize = 32;
/// Fence agent run time when the file gives none.
pub const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest fence agent `timeout`.
pub const MIN_FENCE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest fence agent `timeout`.
pub const MAX_FENCE_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest fence `delay`.
pub const MAX_FENCE_DELAY: Duration = Duration::from_secs(300);
/// Most arguments in a fence `agent` (the program included).
pub const MAX_AGENT_ARGS: usize = 64;
/// Fence agent options the fencing layer sets itself: never in `options`.
pub const RESERVED_FENCE_OPTIONS: [&str; 6] =
    ["action", "plug", "port", "nodename", "password", "passwd"];
/// How long a daemon restart takes at most: the supervising daemon starts
/// the dead one at once and the new one answers within this (about 70 ms
/// measured in a debug build by tests/tests/supervision.rs). The watchdog's
/// shortest timeout ([`MIN_WATCHDOG_TIMEOUT`]) is well above it (rule 6).
pub const DAEMON_RESTART: Duration = Duration::from_millis(100);
/// Added to [`DAEMON_RESTART`] before comparing it with the deadtime.
pub const RESTART_MARGIN: Duration = Duration::from_millis(100);
/// Watchdog device when the file gives none.
pub const DEFAULT_WATCHDOG_DEVICE: &str = "/dev/watchdog";
/// Watchdog timeout when the file gives none.
pub const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(10);
/// Shortest watchdog `timeout`.
pub const MIN_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest watchdog `timeout`.
pub const MAX_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(60);
/// This node's lease when the file gives none (`[watchdog] lease`); at
/// least [`MAX_WATCHDOG_TIMEOUT`], so it fits any timeout.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Longest `[watchdog] lease` (the shortest is the watchdog's timeout).
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
/// Most alert hooks, and most alert mail addresses.
pub const MAX_ALERT_TARGETS: usize = 16;
/// The sendmail program used when `[alerts] sendmail` is not given.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
/// Default `[alerts] timeout`.
pub const DEFAULT_ALERT_TIMEOUT: Duration = Duration::from_secs(30);
/// Shortest `[alerts] timeout`.
pub const MIN_ALERT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest `[alerts] timeout`.
pub const MAX_ALERT_TIMEOUT: Duration = Duration::from_secs(300);

/// The whole cluster config, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Cluster name, 1 to 32 characters from `A-Za-z0-9_.-`.
    pub name: String,
    /// Cluster id on the wire, 1 to 1024.
    pub netid: u16,
    /// The cluster key file, resolved against the config file's directory.
    pub key_file: PathBuf,
    /// Unix group allowed on the control socket besides root.
    pub control_group: Option<String>,
    /// Third-party tie-breaker addresses (may be empty).
    pub ping: Vec<IpAddr>,
    /// What a node does besides releasing its services when it is
    /// isolated (`[cluster] isolation`; it sees no peer on any heartbeat
    /// path and reaches none of the `ping` addresses).
    pub isolation: IsolationAction,
    /// The nodes, in file order; 1 to 64.
    pub nodes: Vec<NodeConfig>,
    /// The private networks, in file order; the index is the path index on
    /// the wire; 1 to 32.
    pub networks: Vec<NetworkConfig>,
    /// The optional `[metrics]` section: where hamond serves Prometheus
    /// metrics. None: no metrics endpoint.
    pub metrics: Option<MetricsConfig>,
    /// The optional `[admin]` section: where hamond serves the remote admin
    /// endpoint (TLS, password login). None: no remote administration.
    pub admin: Option<AdminConfig>,
    /// The fencing devices (`[[fence]]`), in file order; 0 to 32.
    pub fences: Vec<FenceConfig>,
    /// The optional `[watchdog]` section; its defaults (off) when absent.
    pub watchdog: WatchdogConfig,
    /// The optional `[alerts]` section: who is told of severe events. None:
    /// no alerts (the events are still recorded in the history).
    pub alerts: Option<AlertsConfig>,
    /// First 4 bytes (big-endian) of SHA-256 over a canonical form of the
    /// content (everything above but `file`; `key_file` as written). Equal
    /// content gives an equal hash whatever the comments, layout or key order.
    pub hash: u32,
}

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Unique, 1 to 32 characters from `A-Za-z0-9_.-`.
    pub name: String,
    /// Unique, 1 to 64.
    pub domain: u8,
}

/// One private network (heartbeat path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Unique, 1 to 32 characters from `A-Za-z0-9_.-`.
    pub name: String,
    /// 0 to 100, higher is preferred.
    pub priority: u8,
    /// Time between heartbeats, 20ms to 15s.
    pub interval: Duration,
    /// Heartbeats missed in a row before the peer is lost here, 2 to 100.
    pub maxmiss: u32,
    /// The medium and each node's end of it.
    pub kind: NetworkKind,
}

/// The medium of a private network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkKind {
    /// An RS-232 null-modem cable between exactly two nodes.
    Serial {
        /// One of [`BAUD_RATES`].
        baud: u32,
        /// Node name -> serial device path (absolute).
        devices: BTreeMap<String, PathBuf>,
    },
    /// UDP datagrams between two or more nodes.
    Udp {
        /// Node name -> the address:port that node binds and peers send to.
        addresses: BTreeMap<String, SocketAddr>,
    },
}

/// `[cluster] isolation`: what an isolated node does besides stopping and
/// releasing its services (it always does that).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum IsolationAction {
    /// Nothing more (`"stop"`, the default).
    #[default]
    Stop,
    /// Stop petting the watchdog, so the node resets (`"stop-petting"`;
    /// needs `[watchdog] enabled = true`).
    StopPetting,
    /// Run this command (program as an absolute path, then its arguments).
    Script(Vec<String>),
}

/// One fencing device (`[[fence]]`): an external fence agent in the
/// fence-agents convention (`key=value` lines on its stdin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceConfig {
    /// Unique, 1 to 32 characters from `A-Za-z0-9_.-`.
    pub name: String,
    /// The agent program (an absolute path) and its arguments, 1 to 64.
    pub agent: Vec<String>,
    /// The nodes this device can fence: declared nodes, at least one.
    pub nodes: Vec<String>,
    /// Passed to the agent as `key=value` lines (sorted by key). Keys from
    /// `A-Za-z0-9_`, never one of [`RESERVED_FENCE_OPTIONS`]; values
    /// without line breaks. `password_file` is taken out into
    /// [`FenceConfig::password_file`].
    pub options: BTreeMap<String, String>,
    /// `options.password_file` (an absolute path): read at fence time and
    /// passed as `password=`.
    pub password_file: Option<PathBuf>,
    /// Longest run of one agent invocation, 1s to 10min (default 60s).
    pub timeout: Duration,
    /// Wait before fencing the node that hosts the most service priority
    /// (safety rule 4), 0s to 5min (default 0s).
    pub delay: Duration,
}

/// The `[metrics]` section: hamond's Prometheus endpoint (`GET /metrics`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The address:port the HTTP endpoint binds (port 1 to 65535).
    pub listen: SocketAddr,
}

/// Default of `[admin] password_file`, relative to the config file's
/// directory (so `/etc/hacluster/admin.pw` beside the usual config).
pub const DEFAULT_ADMIN_PASSWORD_FILE: &str = "admin.pw";

/// The `[admin]` section: hamond's remote admin endpoint (TLS, one admin
/// account whose password `hactl passwd` sets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// The address:port the TLS endpoint binds (port 1 to 65535).
    pub listen: SocketAddr,
    /// The admin password's hash file (mode 0600), resolved against the
    /// config file's directory; default [`DEFAULT_ADMIN_PASSWORD_FILE`].
    pub password_file: PathBuf,
}

/// The `[watchdog]` section: the node's hardware watchdog, petted by hamond
/// only while every lease it holds is valid (safety rule 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Whether hamond arms the watchdog (default false).
    pub enabled: bool,
    /// The watchdog device, an absolute path (default `/dev/watchdog`).
    pub device: PathBuf,
    /// Per-node devices (`device = { alpha = "/dev/watchdog1" }`); the
    /// nodes not named use [`DEFAULT_WATCHDOG_DEVICE`]. See
    /// [`WatchdogConfig::device_of`].
    pub devices: BTreeMap<String, PathBuf>,
    /// The timeout asked of the device, whole seconds from 1s to 60s
    /// (default 10s). The device may round it: hamond reads the real one back.
    pub timeout: Duration,
    /// This node's lease L (default [`DEFAULT_LEASE`], from the timeout to
    /// [`MAX_LEASE`]): how long a node that holds services may keep them
    /// after it last had the right to (not isolated; with three or more
    /// nodes, in a view with quorum). Losing that right, it stops them;
    /// if they are not stopped within L, the watchdog is no longer petted
    /// and resets the node. Set it above the longest service stop.
    pub lease: Duration,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            enabled: false,
            device: PathBuf::from(DEFAULT_WATCHDOG_DEVICE),
            devices: BTreeMap::new(),
            timeout: DEFAULT_WATCHDOG_TIMEOUT,
            lease: DEFAULT_LEASE,
        }
    }
}

/// The `[alerts]` section: hooks run and mail sent by hamond for events at
/// or above [`AlertsConfig::severity`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertsConfig {
    /// Commands (program as an absolute path, then its arguments), each run
    /// with the event in its environment and as JSON on stdin; 0 to 16.
    pub hooks: Vec<Vec<String>>,
    /// Addresses mailed through [`AlertsConfig::sendmail`]; 0 to 16.
    pub mail: Vec<String>,
    /// The sendmail program, an absolute path (default [`DEFAULT_SENDMAIL`]).
    pub sendmail: PathBuf,
    /// Longest run of one hook or mail, 1s to 5min (default 30s).
    pub timeout: Duration,
    /// The least severe event alerted: emergency (default) or warning.
    pub severity: crate::event::Severity,
}

impl WatchdogConfig {
    /// The device of node `name`: its own from a per-node table, else
    /// [`WatchdogConfig::device`].
    pub fn device_of(&self, name: &str) -> &Path {
        self.devices.get(name).unwrap_or(&self.device)
    }
}

impl ClusterConfig {
    /// Reads and checks the config file at `path`.
    pub fn load(path: &Path) -> Result<ClusterConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) => Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot read the cluster config: {e}"),
            }),
        }
    }

    /// Checks config text; `file` names it in errors and anchors a relative
    /// `key_file`.
    pub fn parse(text: &str, file: &Path) -> Result<ClusterConfig, ConfigError> {
        Parser {
            w: Walker { text, file },
        }
        .config()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The node with domain id `domain`.
    pub fn node_by_domain(&self, domain: u8) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.domain == domain)
    }

    /// The fencing devices that can fence node `name`, in file order.
    pub fn fences_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FenceConfig> {
        self.fences
            .iter()
            .filter(move |f| f.nodes.iter().any(|n| n == name))
    }

    /// The network called `name`, with its path index.
    pub fn network(&self, name: &str) -> Option<(usize, &NetworkConfig)> {
        self.networks
            .iter()
            .enumerate()
            .find(|(_, n)| n.name == name)
    }
}

impl NetworkConfig {
    /// Silence after which the peer is lost on this network: `interval * maxmiss`.
    pub fn deadtime(&self) -> Duration {
        self.interval.saturating_mul(self.maxmiss)
    }

    /// `"serial"` or `"udp"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            NetworkKind::Serial { .. } => "serial",
            NetworkKind::Udp { .. } => "udp",
        }
    }

    /// Whether node `name` has an end on this network.
    pub fn has_node(&self, name: &str) -> bool {
        match &self.kind {
            NetworkKind::Serial { devices, .. } => devices.contains_key(name),
            NetworkKind::Udp { addresses } => addresses.contains_key(name),
        }
    }
}

/// Shortest interval a serial network may use at `baud`: two heartbeat
/// frames' time on the line.
pub fn min_serial_interval(baud: u32) -> Duration {
    let line = litecloud::serial::line_len(litecloud::wire::HEARTBEAT_LEN);
    litecloud::serial::airtime(line, baud).saturating_mul(2)
}

/// A config file that cannot be used: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when the error points into the text.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the error points into the text.
    pub column: Option<usize>,
    /// The field, e.g. `network[0].device.beta` (0-based indexes).
    pub field: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COL: FIELD: MESSAGE`, leaving out the parts not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// Checking

const CLUSTER_KEYS: &[&str] = &[
    "name",
    "netid",
    "key_file",
    "control_group",
    "ping",
    "isolation",
];
const NODE_KEYS: &[&str] = &["name", "domain"];
const NETWORK_KEYS: &[&str] = &[
    "name", "kind", "priority", "interval", "maxmiss", "baud", "device", "address",
];
const METRICS_KEYS: &[&str] = &["listen"];
const ADMIN_KEYS: &[&str] = &["listen", "password_file"];
const FENCE_KEYS: &[&str] = &["name", "agent", "nodes", "options", "timeout", "delay"];
const WATCHDOG_KEYS: &[&str] = &["enabled", "device", "timeout", "lease"];
const ALERTS_KEYS: &[&str] = &["hooks", "mail", "sendmail", "timeout", "severity"];

/// The cluster config's rules, over the shared [`Walker`].
struct Parser<'a> {
    w: Walker<'a>,
}

impl Parser<'_> {
    fn config(&self) -> Result<ClusterConfig, ConfigError> {
        let doc = self.w.document()?;
        let root = Section::root(&doc);
        self.w.only(
            &root,
            &[
                "cluster", "node", "network", "metrics", "admin", "fence", "watchdog", "alerts",
            ],
        )?;

        let cluster = self.w.required(&root, "cluster", "the [cluster] section")?;
        let cluster = self
            .w
            .section(cluster, "cluster".into(), "a [cluster] section")?;
        self.w.only(&cluster, CLUSTER_KEYS)?;
        let name = self.w.name(
            self.w.required(&cluster, "name", "the cluster name")?,
            &cluster.field("name"),
        )?;
        let netid: u16 = self.w.int(
            self.w
                .required(&cluster, "netid", "the cluster id, 1 to 1024")?,
            &cluster.field("netid"),
            1,
            MAX_NETID,
        )?;
        let key_v = self
            .w
            .required(&cluster, "key_file", "the path of the cluster key file")?;
        let key_raw = self
            .w
            .string(key_v, &cluster.field("key_file"), "a file path")?;
        if key_raw.is_empty() || key_raw.contains('\0') {
            return Err(self.w.err(
                &key_v.span(),
                &cluster.field("key_file"),
                "write the path of the cluster key file, e.g. \"authkey\" (relative to this file) or \"/etc/hacluster/authkey\"",
            ));
        }
        let key_file = self.w.file.parent().unwrap_or(Path::new("")).join(key_raw);
        let control_group = match cluster.get("control_group") {
            None => None,
            Some(v) => {
                let field = cluster.field("control_group");
                let group = self.w.string(v, &field, "a unix group name")?;
                if !valid_unix_name(group) {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        format!(
                            "`{}` is not a valid group name; use 1 to 32 characters from A-Z a-z 0-9 _ . - not starting with -",
                            clip(group)
                        ),
                    ));
                }
                Some(group.to_owned())
            }
        };
        let ping = match cluster.get("ping") {
            None => Vec::new(),
            Some(v) => self.ping(v, &cluster.field("ping"))?,
        };

        let nodes = self.nodes(&root)?;
        let networks = self.networks(&root, &nodes)?;
        self.restart_fits(&root, &networks)?;
        self.pairs(&root, &nodes, &networks)?;
        let metrics = self.metrics(&root)?;
        let admin = self.admin(&root)?;
        let fences = self.fences(&root, &nodes)?;
        let watchdog = self.watchdog(&root, &nodes)?;
        let isolation = match cluster.get("isolation") {
            None => IsolationAction::Stop,
            Some(v) => self.isolation(v, &cluster.field("isolation"), &ping, &watchdog)?,
        };
        let alerts = self.alerts(&root)?;

        let hash = canonical_hash(&Canon {
            name: &name,
            netid,
            key_file: key_raw,
            control_group: control_group.as_deref(),
            ping: ping.iter().map(ToString::to_string).collect(),
            isolation: match &isolation {
                IsolationAction::Stop => None,
                IsolationAction::StopPetting => Some(vec!["stop-petting".to_owned()]),
                IsolationAction::Script(argv) => Some(argv.clone()),
            },
            nodes: nodes.iter().map(|n| (n.name.as_str(), n.domain)).collect(),
            networks: networks.iter().map(CanonNet::from).collect(),
            metrics_listen: metrics.as_ref().map(|m| m.listen.to_string()),
            admin: admin.as_ref().map(|(a, raw)| CanonAdmin {
                listen: a.listen.to_string(),
                password_file: raw,
            }),
            fences: fences.iter().map(CanonFence::from).collect(),
            watchdog: (watchdog != WatchdogConfig::default())
                .then(|| CanonWatchdog::from(&watchdog)),
            alerts: alerts.as_ref().map(CanonAlerts::from),
        });
        Ok(ClusterConfig {
            file: self.w.file.to_path_buf(),
            name,
            netid,
            key_file,
            control_group,
            ping,
            isolation,
            nodes,
            networks,
            metrics,
            admin: admin.map(|(a, _)| a),
            fences,
            watchdog,
            alerts,
            hash,
        })
    }

    fn ping(&self, v: &Value<'_>, field: &str) -> Result<Vec<IpAddr>, ConfigError> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "expected a list of IP addresses, e.g. [\"192.0.2.254\"], found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        let mut ping: Vec<IpAddr> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let text = self
                .w
                .string(item, &field, "an IP address, e.g. \"192.0.2.254\"")?;
            let Ok(ip) = text.parse::<IpAddr>() else {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "`{}` is not an IP address; write e.g. \"192.0.2.254\" or \"2001:db8::1\"",
                        clip(text)
                    ),
                ));
            };
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!("{ip} cannot be pinged; write the address of a router or switch both nodes can reach"),
                ));
            }
            if ping.contains(&ip) {
                return Err(self
                    .w
                    .err(&item.span(), &field, format!("{ip} is listed twice")));
            }
            ping.push(ip);
        }
        Ok(ping)
    }

    /// `[cluster] isolation`: "stop", "stop-petting" (with an enabled
    /// watchdog) or a command; only with `ping` addresses, which alone
    /// can tell this node it is isolated.
    fn isolation(
        &self,
        v: &Value<'_>,
        field: &str,
        ping: &[IpAddr],
        watchdog: &WatchdogConfig,
    ) -> Result<IsolationAction, ConfigError> {
        let example =
            "\"stop\", \"stop-petting\" or a command such as [\"/usr/local/sbin/isolated\"]";
        let action = match v.get_ref() {
            DeValue::String(text) => match text.as_ref() {
                "stop" => IsolationAction::Stop,
                "stop-petting" => IsolationAction::StopPetting,
                other => {
                    return Err(self.w.err(
                        &v.span(),
                        field,
                        format!(
                            "`{}` is not an isolation action; write {example}",
                            clip(other)
                        ),
                    ));
                }
            },
            DeValue::Array(_) => IsolationAction::Script(self.argv(
                v,
                field,
                "the isolation command",
                "e.g. isolation = [\"/usr/local/sbin/isolated\"]",
            )?),
            other => {
                return Err(self.w.err(
                    &v.span(),
                    field,
                    format!("expected {example}, found {}", describe(other)),
                ));
            }
        };
        if action == IsolationAction::StopPetting && !watchdog.enabled {
            return Err(self.w.err(
                &v.span(),
                field,
                "\"stop-petting\" needs a watchdog: set [watchdog] enabled = true, or use \"stop\"",
            ));
        }
        if action != IsolationAction::Stop && ping.is_empty() {
            return Err(self.w.err(
                &v.span(),
                field,
                "an isolation action needs ping addresses, which alone tell a node it is isolated: \
                 add `ping = [\"ROUTER-IP\"]` to [cluster], or remove `isolation`",
            ));
        }
        Ok(action)
    }

    fn nodes(&self, root: &Section<'_, '_>) -> Result<Vec<NodeConfig>, ConfigError> {
        let mut nodes: Vec<NodeConfig> = Vec::new();
        for sec in self.w.array_of_tables(root, "node", MAX_NODES)? {
            self.w.only(&sec, NODE_KEYS)?;
            let name_v = self.w.required(&sec, "name", "the node's host name")?;
            let name = self.w.name(name_v, &sec.field("name"))?;
            if let Some(j) = nodes.iter().position(|n| n.name == name) {
                return Err(self.w.err(
                    &name_v.span(),
                    &sec.field("name"),
                    format!(
                        "node name `{name}` is already used by node[{j}]; node names must be unique"
                    ),
                ));
            }
            let domain_v = self
                .w
                .required(&sec, "domain", "the node's domain id, 1 to 64")?;
            let domain: u8 = self.w.int(domain_v, &sec.field("domain"), 1, MAX_DOMAIN)?;
            if let Some(j) = nodes.iter().position(|n| n.domain == domain) {
                return Err(self.w.err(
                    &domain_v.span(),
                    &sec.field("domain"),
                    format!(
                        "domain {domain} is already used by node[{j}] ({}); domain ids must be unique, 1 to 64",
                        nodes[j].name
                    ),
                ));
            }
            nodes.push(NodeConfig { name, domain });
        }
        Ok(nodes)
    }

    /// Rule 6: a daemon restart must not look like a crash. A peer is lost
    /// once every network was silent for its deadtime, so the longest
    /// deadtime must exceed [`DAEMON_RESTART`] + [`RESTART_MARGIN`].
    fn restart_fits(
        &self,
        root: &Section<'_, '_>,
        networks: &[NetworkConfig],
    ) -> Result<(), ConfigError> {
        let longest = networks
            .iter()
            .map(NetworkConfig::deadtime)
            .max()
            .unwrap_or_default();
        let needed = DAEMON_RESTART + RESTART_MARGIN;
        if longest > needed {
            return Ok(());
        }
        Err(self.w.err(
            &root.key_span("network"),
            "network",
            format!(
                "the longest deadtime (interval x maxmiss) of the private networks is {}; it must exceed {} (a hamond or hasvrd restart takes up to {}, plus {} margin), or the peers would take a daemon restart for a crash and fence this node (rule 6): raise interval or maxmiss on at least one network",
                show(longest),
                show(needed),
                show(DAEMON_RESTART),
                show(RESTART_MARGIN)
            ),
        ))
    }

    fn networks(
        &self,
        root: &Section<'_, '_>,
        nodes: &[NodeConfig],
    ) -> Result<Vec<NetworkConfig>, ConfigError> {
        let mut networks: Vec<NetworkConfig> = Vec::new();
        for sec in self.w.array_of_tables(root, "network", MAX_NETWORKS)? {
            self.w.only(&sec, NETWORK_KEYS)?;
            let name_v = self.w.required(&sec, "name", "the network's name")?;
            let name = self.w.name(name_v, &sec.field("name"))?;
            if let Some(j) = networks.iter().position(|n| n.name == name) {
                return Err(self.w.err(
                    &name_v.span(),
                    &sec.field("name"),
                    format!("network name `{name}` is already used by network[{j}]; network names must be unique"),
                ));
            }
            let kind_v = self.w.required(&sec, "kind", "\"serial\" or \"udp\"")?;
            let kind = self
                .w
                .string(kind_v, &sec.field("kind"), "\"serial\" or \"udp\"")?;
            let serial = match kind {
                "serial" => true,
                "udp" => false,
                other => {
                    return Err(self.w.err(
                        &kind_v.span(),
                        &sec.field("kind"),
                        format!(
                            "unknown kind `{}`; allowed \"serial\" or \"udp\"",
                            clip(other)
                        ),
                    ));
                }
            };
            let priority = match sec.get("priority") {
                None => DEFAULT_PRIORITY,
                Some(v) => self.w.int(v, &sec.field("priority"), 0, MAX_PRIORITY)?,
            };
            let interval = match sec.get("interval") {
                None => DEFAULT_INTERVAL,
                Some(v) => self.interval(v, &sec.field("interval"))?,
            };
            let maxmiss = match sec.get("maxmiss") {
                None => DEFAULT_MAXMISS,
                Some(v) => self
                    .w
                    .int(v, &sec.field("maxmiss"), MIN_MAXMISS, MAX_MAXMISS)?,
            };
            let kind = if serial {
                self.w.misplaced(
                    &sec,
                    "address",
                    "`address` is only for udp networks; a serial network names its ports in `device`",
                )?;
                self.serial(&sec, nodes, interval)?
            } else {
                self.w.misplaced(
                    &sec,
                    "device",
                    "`device` is only for serial networks; a udp network names its endpoints in `address`",
                )?;
                self.w
                    .misplaced(&sec, "baud", "`baud` is only for serial networks")?;
                self.udp(&sec, nodes)?
            };
            networks.push(NetworkConfig {
                name,
                priority,
                interval,
                maxmiss,
                kind,
            });
        }
        Ok(networks)
    }

    fn serial(
        &self,
        sec: &Section<'_, '_>,
        nodes: &[NodeConfig],
        interval: Duration,
    ) -> Result<NetworkKind, ConfigError> {
        let baud = match sec.get("baud") {
            None => DEFAULT_BAUD,
            Some(v) => {
                let field = sec.field("baud");
                let allowed = "allowed 9600, 19200, 38400, 57600, 115200";
                let DeValue::Integer(i) = v.get_ref() else {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        format!(
                            "expected a line speed, {allowed}; found {}",
                            describe(v.get_ref())
                        ),
                    ));
                };
                match u32::from_str_radix(i.as_str(), i.radix()) {
                    Ok(baud) if BAUD_RATES.contains(&baud) => baud,
                    _ => {
                        return Err(self.w.err(
                            &v.span(),
                            &field,
                            format!("baud {} is not supported; {allowed}", clip(i.as_str())),
                        ));
                    }
                }
            }
        };
        let min = min_serial_interval(baud);
        if interval < min {
            let span = sec
                .get("interval")
                .map_or_else(|| sec.span.clone(), Spanned::span);
            return Err(self.w.err(
                &span,
                &sec.field("interval"),
                format!(
                    "{} is shorter than two heartbeat frames take on the line; the minimum interval at {baud} baud is {}",
                    show(interval),
                    show(ceil_ms(min))
                ),
            ));
        }
        let example = "e.g. device = { alpha = \"/dev/ttyS0\", beta = \"/dev/ttyS0\" }";
        let dev_v = self
            .w
            .required(sec, "device", "the serial port of each of the two nodes")?;
        let dev = self.w.section(
            dev_v,
            sec.field("device"),
            &format!("a table of node = device path, {example}"),
        )?;
        let mut devices = BTreeMap::new();
        for (i, (key, v)) in dev.entries().into_iter().enumerate() {
            let field = dev.field(key.get_ref());
            self.w.declared(&key.span(), key.get_ref(), &field, nodes)?;
            if i >= 2 {
                return Err(self.w.err(
                    &key.span(),
                    &field,
                    format!(
                        "a serial cable joins exactly two nodes; `{}` would be a third",
                        clip(key.get_ref())
                    ),
                ));
            }
            let path = self
                .w
                .string(v, &field, "a device path, e.g. \"/dev/ttyS0\"")?;
            if !path.starts_with('/') || path.contains('\0') {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!(
                        "`{}` is not an absolute device path; write e.g. \"/dev/ttyS0\"",
                        clip(path)
                    ),
                ));
            }
            devices.insert(key.get_ref().to_string(), PathBuf::from(path));
        }
        if devices.len() != 2 {
            return Err(self.w.err(
                &dev_v.span(),
                &dev.path,
                format!(
                    "a serial cable joins exactly two nodes; {} listed, {example}",
                    devices.len()
                ),
            ));
        }
        Ok(NetworkKind::Serial { baud, devices })
    }

    fn udp(&self, sec: &Section<'_, '_>, nodes: &[NodeConfig]) -> Result<NetworkKind, ConfigError> {
        let example =
            "e.g. address = { alpha = \"192.168.10.1:5405\", beta = \"192.168.10.2:5405\" }";
        let addr_v = self
            .w
            .required(sec, "address", "the address:port of each node")?;
        let table = self.w.section(
            addr_v,
            sec.field("address"),
            &format!("a table of node = \"address:port\", {example}"),
        )?;
        let mut addresses: BTreeMap<String, SocketAddr> = BTreeMap::new();
        let mut seen: HashMap<SocketAddr, &str> = HashMap::new();
        let mut family: Option<(bool, &str)> = None;
        for (key, v) in table.entries() {
            let node = key.get_ref().as_ref();
            let field = table.field(node);
            self.w.declared(&key.span(), key.get_ref(), &field, nodes)?;
            let text = self
                .w
                .string(v, &field, "an address:port, e.g. \"192.168.10.1:5405\"")?;
            let Ok(addr) = text.parse::<SocketAddr>() else {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!(
                        "`{}` is not an address:port; write e.g. \"192.168.10.1:5405\" or \"[fd00::1]:5405\"",
                        clip(text)
                    ),
                ));
            };
            if addr.ip().is_unspecified() || addr.ip().is_multicast() || addr.port() == 0 {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!(
                        "{addr} cannot be used: peers send to this address; write the node's own address on this network and a port from 1 to 65535"
                    ),
                ));
            }
            if let Some(other) = seen.get(&addr) {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!("{addr} is already used by `{other}` on this network; each node needs its own address:port"),
                ));
            }
            match family {
                None => family = Some((addr.is_ipv4(), node)),
                Some((v4, other)) if v4 != addr.is_ipv4() => {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        format!(
                            "{addr} is {} but `{other}` is {}; all addresses of one network must be of the same family",
                            ip_family(!v4),
                            ip_family(v4)
                        ),
                    ));
                }
                Some(_) => {}
            }
            seen.insert(addr, node);
            addresses.insert(node.to_owned(), addr);
        }
        if addresses.len() < 2 {
            return Err(self.w.err(
                &addr_v.span(),
                &table.path,
                format!(
                    "a udp network joins at least two nodes; {} listed, {example}",
                    addresses.len()
                ),
            ));
        }
        Ok(NetworkKind::Udp { addresses })
    }

    /// Every pair of nodes must share a network.
    fn pairs(
        &self,
        root: &Section<'_, '_>,
        nodes: &[NodeConfig],
        networks: &[NetworkConfig],
    ) -> Result<(), ConfigError> {
        for (j, b) in nodes.iter().enumerate() {
            for a in &nodes[..j] {
                if !networks
                    .iter()
                    .any(|n| n.has_node(&a.name) && n.has_node(&b.name))
                {
                    let span = match root.get("node").map(Spanned::get_ref) {
                        Some(DeValue::Array(items)) => items
                            .get(j)
                            .map_or_else(|| root.span.clone(), Spanned::span),
                        _ => root.span.clone(),
                    };
                    return Err(self.w.err(
                        &span,
                        &format!("node[{j}]"),
                        format!(
                            "node {} has no private network to node {}; every pair of nodes must share at least one [[network]]",
                            b.name, a.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A heartbeat interval: a string with a unit, 20ms to 15s.
    fn interval(&self, v: &Value<'_>, field: &str) -> Result<Duration, ConfigError> {
        self.w.duration(
            v,
            field,
            MIN_INTERVAL..=MAX_INTERVAL,
            ["\"100ms\"", "\"1s\""],
        )
    }

    /// The optional `[metrics]` section.
    fn metrics(&self, root: &Section<'_, '_>) -> Result<Option<MetricsConfig>, ConfigError> {
        let Some(v) = root.get("metrics") else {
            return Ok(None);
        };
        let example = "e.g. listen = \"127.0.0.1:9464\"";
        let sec = self.w.section(
            v,
            "metrics".into(),
            &format!("a [metrics] section with `listen`, {example}"),
        )?;
        self.w.only(&sec, METRICS_KEYS)?;
        let listen = self.listen(&sec, "metrics", "127.0.0.1:9464")?;
        Ok(Some(MetricsConfig { listen }))
    }

    /// The required `listen` of `sec`: an IP address and a port to bind,
    /// for serving `what`; `addr` is the example given in errors.
    fn listen(
        &self,
        sec: &Section<'_, '_>,
        what: &str,
        addr: &str,
    ) -> Result<SocketAddr, ConfigError> {
        let example = format!("e.g. listen = \"{addr}\"");
        let field = sec.field("listen");
        let listen_v = self.w.required(
            sec,
            "listen",
            &format!("the address:port to serve {what} on, {example}"),
        )?;
        let text = self.w.string(
            listen_v,
            &field,
            &format!("an address:port, e.g. \"{addr}\""),
        )?;
        let Ok(listen) = text.parse::<SocketAddr>() else {
            let port = addr.rsplit_once(':').map_or(addr, |(_, port)| port);
            return Err(self.w.err(
                &listen_v.span(),
                &field,
                format!(
                    "`{}` is not an address:port; write an IP address and a port, e.g. \"{addr}\" or \"[::1]:{port}\" (host names are not allowed)",
                    clip(text)
                ),
            ));
        };
        if listen.port() == 0 || listen.ip().is_multicast() {
            return Err(self.w.err(
                &listen_v.span(),
                &field,
                format!(
                    "{listen} cannot be listened on; write a local address (or 0.0.0.0 / [::] for every address) and a port from 1 to 65535, {example}"
                ),
            ));
        }
        Ok(listen)
    }

    /// The optional `[admin]` section, with `password_file` as written.
    fn admin<'t>(
        &self,
        root: &Section<'t, '_>,
    ) -> Result<Option<(AdminConfig, &'t str)>, ConfigError> {
        let Some(v) = root.get("admin") else {
            return Ok(None);
        };
        let example = "e.g. listen = \"0.0.0.0:7405\"";
        let sec = self.w.section(
            v,
            "admin".into(),
            &format!("an [admin] section with `listen`, {example}"),
        )?;
        self.w.only(&sec, ADMIN_KEYS)?;
        let listen = self.listen(&sec, "the admin endpoint", "0.0.0.0:7405")?;
        let raw = match sec.get("password_file") {
            None => DEFAULT_ADMIN_PASSWORD_FILE,
            Some(v) => {
                let field = sec.field("password_file");
                let raw = self.w.string(v, &field, "a file path")?;
                if raw.is_empty() || raw.contains('\0') || raw.ends_with('/') {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        "write the path of the admin password file, e.g. \"admin.pw\" (relative to this file) or \"/etc/hacluster/admin.pw\"",
                    ));
                }
                raw
            }
        };
        let password_file = self.w.file.parent().unwrap_or(Path::new("")).join(raw);
        Ok(Some((
            AdminConfig {
                listen,
                password_file,
            },
            raw,
        )))
    }

    /// The optional `[[fence]]` tables.
    fn fences(
        &self,
        root: &Section<'_, '_>,
        nodes: &[NodeConfig],
    ) -> Result<Vec<FenceConfig>, ConfigError> {
        let mut fences: Vec<FenceConfig> = Vec::new();
        for sec in self.w.optional_tables(root, "fence", MAX_FENCES)? {
            self.w.only(&sec, FENCE_KEYS)?;
            let name_v = self.w.required(&sec, "name", "the fencing device's name")?;
            let name = self.w.name(name_v, &sec.field("name"))?;
            if let Some(j) = fences.iter().position(|f| f.name == name) {
                return Err(self.w.err(
                    &name_v.span(),
                    &sec.field("name"),
                    format!("fence name `{name}` is already used by fence[{j}]; fence names must be unique"),
                ));
            }
            let agent = self.fence_agent(&sec)?;
            let fenced = self.fence_nodes(&sec, nodes)?;
            let (options, password_file) = match sec.get("options") {
                None => (BTreeMap::new(), None),
                Some(v) => self.fence_options(v, &sec.field("options"))?,
            };
            let timeout = match sec.get("timeout") {
                None => DEFAULT_FENCE_TIMEOUT,
                Some(v) => self.w.duration(
                    v,
                    &sec.field("timeout"),
                    MIN_FENCE_TIMEOUT..=MAX_FENCE_TIMEOUT,
                    ["\"60s\"", "\"2min\""],
                )?,
            };
            let delay = match sec.get("delay") {
                None => Duration::ZERO,
                Some(v) => self.w.duration(
                    v,
                    &sec.field("delay"),
                    Duration::ZERO..=MAX_FENCE_DELAY,
                    ["\"15s\"", "\"0s\""],
                )?,
            };
            fences.push(FenceConfig {
                name,
                agent,
                nodes: fenced,
                options,
                password_file,
                timeout,
                delay,
            });
        }
        Ok(fences)
    }

    /// `agent`: the program (absolute path) and its arguments.
    fn fence_agent(&self, sec: &Section<'_, '_>) -> Result<Vec<String>, ConfigError> {
        let example = "e.g. agent = [\"/usr/sbin/fence_ipmilan\"]";
        let v = self
            .w
            .required(sec, "agent", &format!("the fence agent program, {example}"))?;
        self.argv(v, &sec.field("agent"), "the agent", example)
    }

    /// An argument vector run directly: the program (absolute path, never
    /// looked up in PATH; `who` names it in errors) and its arguments.
    fn argv(
        &self,
        v: &Value<'_>,
        field: &str,
        who: &str,
        example: &str,
    ) -> Result<Vec<String>, ConfigError> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "expected a list: the program and its arguments, {example}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if items.is_empty() || items.len() > MAX_AGENT_ARGS {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "{} items; write the program and its arguments (1 to {MAX_AGENT_ARGS} items), {example}",
                    items.len()
                ),
            ));
        }
        let mut argv = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let arg = self.w.string(item, &field, "a string")?;
            if arg.contains('\0') {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    "an argument cannot contain a NUL character",
                ));
            }
            if i == 0 && !arg.starts_with('/') {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "`{}` is not an absolute path; {who} is run directly (never looked up in PATH), {example}",
                        clip(arg)
                    ),
                ));
            }
            argv.push(arg.to_owned());
        }
        Ok(argv)
    }

    /// `nodes`: the declared nodes this device can fence.
    fn fence_nodes(
        &self,
        sec: &Section<'_, '_>,
        nodes: &[NodeConfig],
    ) -> Result<Vec<String>, ConfigError> {
        let field = sec.field("nodes");
        let example = "e.g. nodes = [\"alpha\"]";
        let v = self.w.required(
            sec,
            "nodes",
            &format!("the nodes this device can fence, {example}"),
        )?;
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                &field,
                format!(
                    "expected a list of node names, {example}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.w.err(
                &v.span(),
                &field,
                format!("a fencing device fences at least one node, {example}"),
            ));
        }
        let mut fenced: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{field}[{i}]");
            let node = self.w.string(item, &field, "a node name, e.g. \"alpha\"")?;
            self.w.declared(&item.span(), node, &field, nodes)?;
            if fenced.iter().any(|n| n == node) {
                return Err(self
                    .w
                    .err(&item.span(), &field, format!("{node} is listed twice")));
            }
            fenced.push(node.to_owned());
        }
        Ok(fenced)
    }

    /// `options`: string keys and values for the agent's stdin, and the
    /// password file taken out of them.
    fn fence_options(
        &self,
        v: &Value<'_>,
        path: &str,
    ) -> Result<(BTreeMap<String, String>, Option<PathBuf>), ConfigError> {
        let example = "e.g. options = { ip = \"10.0.0.9\", username = \"admin\", password_file = \"/etc/hacluster/ipmi.pw\" }";
        let table = self.w.section(
            v,
            path.to_owned(),
            &format!("a table of option = \"value\", {example}"),
        )?;
        let mut options = BTreeMap::new();
        let mut password_file = None;
        for (key, v) in table.entries() {
            let key_text: &str = key.get_ref();
            let field = table.field(key_text);
            let valid_key = !key_text.is_empty()
                && key_text.len() <= 64
                && key_text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_key {
                return Err(self.w.err(
                    &key.span(),
                    &field,
                    format!(
                        "`{}` is not a fence agent option name; use 1 to 64 characters from A-Z a-z 0-9 _",
                        clip(key_text)
                    ),
                ));
            }
            if RESERVED_FENCE_OPTIONS.contains(&key_text) {
                let why = if matches!(key_text, "password" | "passwd") {
                    "a password is never written in the cluster config; put it in a file (mode 0600) and name it in `password_file`"
                } else {
                    "hamond sets it for each call (the action, and the node as plug/port)"
                };
                return Err(self.w.err(
                    &key.span(),
                    &field,
                    format!("`{key_text}` cannot be set here: {why}"),
                ));
            }
            let text = self.w.string(
                v,
                &field,
                "a string (quote numbers and flags, e.g. lanplus = \"1\")",
            )?;
            if text.contains(['\n', '\r', '\0']) {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    "a fence option value cannot contain a line break or NUL (each option is one line on the agent's stdin)",
                ));
            }
            if key_text == "password_file" {
                if !text.starts_with('/') {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        format!(
                            "`{}` is not an absolute path; write e.g. \"/etc/hacluster/ipmi.pw\"",
                            clip(text)
                        ),
                    ));
                }
                password_file = Some(PathBuf::from(text));
            } else {
                options.insert(key_text.to_owned(), text.to_owned());
            }
        }
        Ok((options, password_file))
    }
}

impl Parser<'_> {
    /// The optional `[watchdog]` section (defaults when absent).
    fn watchdog(
        &self,
        root: &Section<'_, '_>,
        nodes: &[NodeConfig],
    ) -> Result<WatchdogConfig, ConfigError> {
        let mut wd = WatchdogConfig::default();
        let Some(v) = root.get("watchdog") else {
            return Ok(wd);
        };
        let sec = self.w.section(
            v,
            "watchdog".into(),
            "a [watchdog] section, e.g. enabled = true, device = \"/dev/watchdog\", timeout = \"10s\"",
        )?;
        self.w.only(&sec, WATCHDOG_KEYS)?;
        if let Some(v) = sec.get("enabled") {
            wd.enabled = self.w.boolean(v, &sec.field("enabled"))?;
        }
        if let Some(v) = sec.get("device") {
            let field = sec.field("device");
            if matches!(v.get_ref(), DeValue::Table(_)) {
                let table = self.w.section(v, field, "a table")?;
                for (key, v) in table.entries() {
                    let field = table.field(key.get_ref());
                    self.w.declared(&key.span(), key.get_ref(), &field, nodes)?;
                    let path = self.watchdog_device(v, &field)?;
                    wd.devices.insert(key.get_ref().to_string(), path);
                }
            } else {
                wd.device = self.watchdog_device(v, &field)?;
            }
        }
        if let Some(v) = sec.get("timeout") {
            let field = sec.field("timeout");
            let t = self.w.duration(
                v,
                &field,
                MIN_WATCHDOG_TIMEOUT..=MAX_WATCHDOG_TIMEOUT,
                ["\"10s\"", "\"30s\""],
            )?;
            if t.subsec_nanos() != 0 {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!(
                        "{} is not a whole number of seconds; a watchdog counts in seconds, write e.g. \"10s\"; allowed {} to {}",
                        show(t),
                        show(MIN_WATCHDOG_TIMEOUT),
                        show(MAX_WATCHDOG_TIMEOUT)
                    ),
                ));
            }
            wd.timeout = t;
        }
        if let Some(v) = sec.get("lease") {
            let field = sec.field("lease");
            wd.lease = self
                .w
                .duration(v, &field, wd.timeout..=MAX_LEASE, ["\"60s\"", "\"5min\""])
                .map_err(|mut e| {
                    e.message.push_str(
                        " (the lease is at least the watchdog's timeout, which is renewed \
                         four times per timeout)",
                    );
                    e
                })?;
        }
        Ok(wd)
    }
}

impl Parser<'_> {
    /// One watchdog device path.
    fn watchdog_device(&self, v: &Value<'_>, field: &str) -> Result<PathBuf, ConfigError> {
        let path = self.w.string(
            v,
            field,
            "a device path, e.g. \"/dev/watchdog\", or a table of node = device path",
        )?;
        if !path.starts_with('/') || path.contains('\0') {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not an absolute device path; write e.g. \"/dev/watchdog\" or \"/dev/watchdog0\"",
                    clip(path)
                ),
            ));
        }
        Ok(PathBuf::from(path))
    }
}

impl Parser<'_> {
    /// The optional `[alerts]` section.
    fn alerts(&self, root: &Section<'_, '_>) -> Result<Option<AlertsConfig>, ConfigError> {
        let Some(v) = root.get("alerts") else {
            return Ok(None);
        };
        let sec = self.w.section(
            v,
            "alerts".into(),
            "an [alerts] section, e.g. hooks = [[\"/usr/local/sbin/page\"]], mail = [\"ops@example.com\"]",
        )?;
        self.w.only(&sec, ALERTS_KEYS)?;
        let mut alerts = AlertsConfig {
            hooks: Vec::new(),
            mail: Vec::new(),
            sendmail: PathBuf::from(DEFAULT_SENDMAIL),
            timeout: DEFAULT_ALERT_TIMEOUT,
            severity: crate::event::Severity::Emergency,
        };
        if let Some(v) = sec.get("hooks") {
            let example = "e.g. hooks = [[\"/usr/local/sbin/page\", \"--team\", \"db\"]]";
            for (i, item) in self
                .list(v, &sec.field("hooks"), example)?
                .iter()
                .enumerate()
            {
                let field = format!("{}[{i}]", sec.field("hooks"));
                alerts
                    .hooks
                    .push(self.argv(item, &field, "a hook", example)?);
            }
        }
        if let Some(v) = sec.get("mail") {
            let example = "e.g. mail = [\"ops@example.com\"]";
            for (i, item) in self
                .list(v, &sec.field("mail"), example)?
                .iter()
                .enumerate()
            {
                let field = format!("{}[{i}]", sec.field("mail"));
                alerts.mail.push(self.mail_address(item, &field)?);
            }
        }
        if let Some(v) = sec.get("sendmail") {
            let field = sec.field("sendmail");
            let path = self.w.string(v, &field, "a program path")?;
            if !path.starts_with('/') || path.contains('\0') {
                return Err(self.w.err(
                    &v.span(),
                    &field,
                    format!(
                        "`{}` is not an absolute path; sendmail is run directly, write e.g. \"{DEFAULT_SENDMAIL}\"",
                        clip(path)
                    ),
                ));
            }
            alerts.sendmail = PathBuf::from(path);
        }
        if let Some(v) = sec.get("timeout") {
            alerts.timeout = self.w.duration(
                v,
                &sec.field("timeout"),
                MIN_ALERT_TIMEOUT..=MAX_ALERT_TIMEOUT,
                ["\"30s\"", "\"2min\""],
            )?;
        }
        if let Some(v) = sec.get("severity") {
            use crate::event::Severity;
            let field = sec.field("severity");
            alerts.severity = match self.w.string(v, &field, "a severity in quotes")? {
                "emergency" => Severity::Emergency,
                "warning" => Severity::Warning,
                other => {
                    return Err(self.w.err(
                        &v.span(),
                        &field,
                        format!(
                            "`{}` is not an alert severity; write \"emergency\" (the default) or \"warning\"",
                            clip(other)
                        ),
                    ));
                }
            };
        }
        Ok(Some(alerts))
    }

    /// A list of 0 to [`MAX_ALERT_TARGETS`] items.
    fn list<'v, 'i>(
        &self,
        v: &'v Value<'i>,
        field: &str,
        example: &str,
    ) -> Result<&'v [Value<'i>], ConfigError> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "expected a list, {example}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if items.len() > MAX_ALERT_TARGETS {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "{} items; at most {MAX_ALERT_TARGETS} are allowed, {example}",
                    items.len()
                ),
            ));
        }
        Ok(items)
    }

    /// One mail address: `local@domain`, without spaces, commas, angle
    /// brackets or control characters (it goes into a To: header).
    fn mail_address(&self, v: &Value<'_>, field: &str) -> Result<String, ConfigError> {
        let address = self.w.string(v, field, "a mail address in quotes")?;
        let bad = |c: char| c.is_whitespace() || c.is_control() || ",;<>\"()".contains(c);
        let valid = address.len() <= 254
            && !address.contains(bad)
            && address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
        if !valid {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not a mail address; write one address as user@domain, e.g. \"ops@example.com\"",
                    clip(address)
                ),
            ));
        }
        Ok(address.to_owned())
    }
}

/// `d` rounded up to whole milliseconds.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------------------
// Hash

/// The canonical form hashed into [`ClusterConfig::hash`].
#[derive(Serialize)]
struct Canon<'a> {
    name: &'a str,
    netid: u16,
    key_file: &'a str,
    control_group: Option<&'a str>,
    ping: Vec<String>,
    /// Left out when it is the default ("stop"), so the hash of a config
    /// without it is what it was before the setting existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    isolation: Option<Vec<String>>,
    nodes: Vec<(&'a str, u8)>,
    networks: Vec<CanonNet<'a>>,
    /// Left out when there is no `[metrics]` section, so the hash of a
    /// config without one is what it was before the section existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<String>,
    /// Left out when there is no `[admin]` section, for the same reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin: Option<CanonAdmin<'a>>,
    /// Left out when there is no `[[fence]]`, for the same reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fences: Vec<CanonFence<'a>>,
    /// Left out when `[watchdog]` is absent or all defaults, for the same
    /// reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    watchdog: Option<CanonWatchdog>,
    /// Left out when there is no `[alerts]` section, for the same reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<CanonAlerts>,
}

#[derive(Serialize)]
struct CanonAlerts {
    hooks: Vec<Vec<String>>,
    mail: Vec<String>,
    sendmail: String,
    timeout_ns: u128,
    severity: &'static str,
}

impl From<&AlertsConfig> for CanonAlerts {
    fn from(a: &AlertsConfig) -> Self {
        CanonAlerts {
            hooks: a.hooks.clone(),
            mail: a.mail.clone(),
            sendmail: a.sendmail.to_string_lossy().into_owned(),
            timeout_ns: a.timeout.as_nanos(),
            severity: a.severity.as_str(),
        }
    }
}

#[derive(Serialize)]
struct CanonWatchdog {
    enabled: bool,
    device: String,
    /// Left out when empty, so a file without a per-node table hashes as
    /// before.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    devices: BTreeMap<String, String>,
    timeout_ns: u128,
    /// Left out when the default, so a file without it hashes as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_ns: Option<u128>,
}

impl From<&WatchdogConfig> for CanonWatchdog {
    fn from(w: &WatchdogConfig) -> Self {
        CanonWatchdog {
            enabled: w.enabled,
            device: w.device.to_string_lossy().into_owned(),
            devices: w
                .devices
                .iter()
                .map(|(n, d)| (n.clone(), d.to_string_lossy().into_owned()))
                .collect(),
            timeout_ns: w.timeout.as_nanos(),
            lease_ns: (w.lease != DEFAULT_LEASE).then_some(w.lease.as_nanos()),
        }
    }
}

#[derive(Serialize)]
struct CanonAdmin<'a> {
    listen: String,
    /// As written (or the default), like `key_file`.
    password_file: &'a str,
}

#[derive(Serialize)]
struct CanonFence<'a> {
    name: &'a str,
    agent: &'a [String],
    nodes: &'a [String],
    options: &'a BTreeMap<String, String>,
    password_file: Option<String>,
    timeout_ns: u128,
    delay_ns: u128,
}

impl<'a> From<&'a FenceConfig> for CanonFence<'a> {
    fn from(f: &'a FenceConfig) -> Self {
        CanonFence {
            name: &f.name,
            agent: &f.agent,
            nodes: &f.nodes,
            options: &f.options,
            password_file: f
                .password_file
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned()),
            timeout_ns: f.timeout.as_nanos(),
            delay_ns: f.delay.as_nanos(),
        }
    }
}

#[derive(Serialize)]
struct CanonNet<'a> {
    name: &'a str,
    kind: &'static str,
    priority: u8,
    interval_ns: u128,
    maxmiss: u32,
    baud: Option<u32>,
    /// Node -> device path or address:port, sorted by node.
    ends: BTreeMap<&'a str, String>,
}

impl<'a> From<&'a NetworkConfig> for CanonNet<'a> {
    fn from(n: &'a NetworkConfig) -> Self {
        let (baud, ends) = match &n.kind {
            NetworkKind::Serial { baud, devices } => (
                Some(*baud),
                devices
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.to_string_lossy().into_owned()))
                    .collect(),
            ),
            NetworkKind::Udp { addresses } => (
                None,
                addresses
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.to_string()))
                    .collect(),
            ),
        };
        CanonNet {
            name: &n.name,
            kind: n.kind_name(),
            priority: n.priority,
            interval_ns: n.interval.as_nanos(),
            maxmiss: n.maxmiss,
            baud,
            ends,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_walk::testing::{assert_at, line_of, replace_line, replace_value};

    const SAMPLE: &str = include_str!("../../etc/cluster.toml");

    const BASE: &str = r#"
[cluster]
name = "demo"
netid = 7
key_file = "authkey"

[[node]]
name = "alpha"
domain = 1

[[node]]
name = "beta"
domain = 2

[[network]]
name = "lan1"
kind = "udp"
address = { alpha = "192.168.10.1:5405", beta = "192.168.10.2:5405" }
"#;

    fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
        ClusterConfig::parse(text, Path::new("/etc/hacluster/cluster.toml"))
    }

    fn err(text: &str) -> ConfigError {
        match parse(text) {
            Ok(c) => panic!("accepted: {c:?}\n{text}"),
            Err(e) => e,
        }
    }

    /// Asserts the error is on the line holding `needle`, about `field`.
    fn check(text: &str, needle: &str, field: &str) -> ConfigError {
        check_at(text, line_of(text, needle), field)
    }

    /// Asserts the error is on `line`, about `field`.
    fn check_at(text: &str, line: usize, field: &str) -> ConfigError {
        assert_at(&err(text), line, field)
    }

    fn with_network(extra: &str) -> String {
        format!("{BASE}\n[[network]]\n{extra}\n")
    }

    #[test]
    fn sample_parses() {
        let c = parse(SAMPLE).unwrap();
        assert_eq!(c.name, "demo");
        assert_eq!(c.netid, 7);
        assert_eq!(c.key_file, PathBuf::from("/etc/hacluster/authkey"));
        assert_eq!(c.control_group.as_deref(), Some("haadmin"));
        assert_eq!(c.ping, vec!["192.0.2.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.node("beta").map(|n| n.domain), Some(2));
        assert_eq!(c.node_by_domain(1).map(|n| n.name.as_str()), Some("alpha"));
        assert!(c.node("gamma").is_none() && c.node_by_domain(3).is_none());
        let kinds: Vec<_> = c.networks.iter().map(NetworkConfig::kind_name).collect();
        assert_eq!(kinds, ["serial", "udp", "udp"]);
        let rs = &c.networks[0];
        assert_eq!(rs.interval, Duration::from_millis(200));
        assert_eq!(rs.deadtime(), Duration::from_secs(2));
        match &rs.kind {
            NetworkKind::Serial { baud, devices } => {
                assert_eq!(*baud, 19200);
                assert_eq!(devices["beta"], PathBuf::from("/dev/ttyS0"));
            }
            other => panic!("{other:?}"),
        }
        let lan2 = &c.networks[2];
        assert_eq!(
            (lan2.priority, lan2.interval, lan2.maxmiss),
            (50, DEFAULT_INTERVAL, 10)
        );
        assert_eq!(c.network("lan2").map(|(i, _)| i), Some(2));
        match &lan2.kind {
            NetworkKind::Udp { addresses } => {
                assert_eq!(addresses["alpha"], "10.0.20.1:5406".parse().unwrap())
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.file, PathBuf::from("/etc/hacluster/cluster.toml"));
    }

    #[test]
    fn base_parses_with_defaults() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.control_group, None);
        assert!(c.ping.is_empty());
        assert_eq!(c.networks[0].priority, DEFAULT_PRIORITY);
        assert_eq!(c.networks[0].deadtime(), Duration::from_secs(10));
    }

    #[test]
    fn key_file_resolution() {
        let abs = BASE.replace("\"authkey\"", "\"/srv/key\"");
        assert_eq!(parse(&abs).unwrap().key_file, PathBuf::from("/srv/key"));
        let c = ClusterConfig::parse(BASE, Path::new("conf/cluster.toml")).unwrap();
        assert_eq!(c.key_file, PathBuf::from("conf/authkey"));
        let c = ClusterConfig::parse(BASE, Path::new("cluster.toml")).unwrap();
        assert_eq!(c.key_file, PathBuf::from("authkey"));
        let t = BASE.replace("\"authkey\"", "\"\"");
        check(&t, "key_file", "cluster.key_file");
    }

    #[test]
    fn display_format() {
        let t = with_network("name = \"x\"\nkind = \"udp\"\ninterval = \"5ms\"");
        let e = err(&t);
        let line = line_of(&t, "interval = \"5ms\"");
        assert_eq!(
            e.to_string(),
            format!(
                "/etc/hacluster/cluster.toml:{line}:12: network[1].interval: 5ms is out of range; allowed 20ms to 15s"
            )
        );
        let e = ConfigError {
            file: "f".into(),
            line: None,
            column: None,
            field: None,
            message: "m".into(),
        };
        assert_eq!(e.to_string(), "f: m");
    }

    #[test]
    fn syntax_error_has_position() {
        let t = format!("{BASE}\n[[node]]\nname = alpha\n");
        let e = err(&t);
        assert_eq!(e.line, Some(line_of(&t, "name = alpha")));
        assert_eq!(e.column, Some(8));
        let t = format!("{BASE}\n[cluster]\n");
        let e = err(&t);
        assert_eq!(e.line, Some(t.lines().count()), "{e}");
    }

    #[test]
    fn load_reads_and_names_the_file() {
        let missing = std::env::temp_dir().join(format!("haschema-nofile-{}", std::process::id()));
        let e = ClusterConfig::load(&missing).unwrap_err();
        assert_eq!(e.file, missing);
        assert_eq!(e.line, None);
        assert!(e.to_string().starts_with(&missing.display().to_string()));
        let path = std::env::temp_dir().join(format!("haschema-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, SAMPLE).unwrap();
        let c = ClusterConfig::load(&path);
        std::fs::remove_file(&path).unwrap();
        let c = c.unwrap();
        assert_eq!(c.file, path);
        assert_eq!(c.key_file, std::env::temp_dir().join("authkey"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let t = BASE.replace("netid = 7", "netid = 7\nnetmask = 3");
        let e = check(&t, "netmask", "cluster.netmask");
        assert!(
            e.message.contains("`netmask`") && e.message.contains("netid"),
            "{e}"
        );
        let t = BASE.replace("domain = 2", "domain = 2\nweight = 3");
        check(&t, "weight", "node[1].weight");
        let t = with_network("name = \"x\"\nkind = \"udp\"\ntimeout = \"1s\"");
        check(&t, "timeout", "network[1].timeout");
        let t = format!("{BASE}\n[services]\nx = 1\n");
        check(&t, "[services]", "services");
        let t = BASE.replace("netid = 7", "netid = 7\nsub.key = 1");
        check(&t, "sub.key", "cluster.sub");
    }

    #[test]
    fn missing_keys() {
        let t = BASE.replace("netid = 7\n", "");
        let e = check(&t, "[cluster]", "cluster.netid");
        assert!(e.message.contains("1 to 1024"), "{e}");
        let t = BASE.replace("domain = 2\n", "");
        check_at(&t, line_of(&t, "name = \"beta\"") - 1, "node[1].domain");
        let e = err("");
        assert_eq!((e.line, e.field.as_deref()), (Some(1), Some("cluster")));
        let t = with_network("name = \"x\"");
        check_at(&t, line_of(&t, "name = \"x\"") - 1, "network[1].kind");
        let t: String = BASE.split("[[network]]").next().unwrap().into();
        check_at(&t, 1, "network");
    }

    #[test]
    fn cluster_name_and_netid() {
        let t = BASE.replace("\"demo\"", "\"my cluster\"");
        let e = check(&t, "my cluster", "cluster.name");
        assert!(e.message.contains("A-Z a-z 0-9 _ . -"), "{e}");
        let long = "x".repeat(33);
        check(
            &BASE.replace("\"demo\"", &format!("\"{long}\"")),
            &long,
            "cluster.name",
        );
        for bad in ["0", "1025", "-1", "99999999999999999999999", "\"7\"", "7.0"] {
            let t = BASE.replace("netid = 7", &format!("netid = {bad}"));
            let e = check(&t, "netid", "cluster.netid");
            assert!(e.message.contains("allowed 1 to 1024"), "{bad}: {e}");
        }
        assert_eq!(
            parse(&BASE.replace("netid = 7", "netid = 1_024"))
                .unwrap()
                .netid,
            1024
        );
        assert_eq!(
            parse(&BASE.replace("netid = 7", "netid = 0x10"))
                .unwrap()
                .netid,
            16
        );
    }

    #[test]
    fn control_group_and_ping() {
        let t = BASE.replace("netid = 7", "netid = 7\ncontrol_group = \"ha admin\"");
        check(&t, "control_group", "cluster.control_group");
        let t = BASE.replace("netid = 7", "netid = 7\nping = [\"192.0.2.1\", \"nope\"]");
        let e = check(&t, "ping", "cluster.ping[1]");
        assert!(e.message.contains("`nope`"), "{e}");
        let t = BASE.replace("netid = 7", "netid = 7\nping = \"192.0.2.1\"");
        check(&t, "ping", "cluster.ping");
        let t = BASE.replace(
            "netid = 7",
            "netid = 7\nping = [\"192.0.2.1\", \"192.0.2.1\"]",
        );
        check(&t, "ping", "cluster.ping[1]");
        let t = BASE.replace("netid = 7", "netid = 7\nping = [\"2001:db8::1\"]");
        assert_eq!(parse(&t).unwrap().ping.len(), 1);
    }

    #[test]
    fn isolation_action() {
        let with = |extra: &str| BASE.replace("netid = 7", &format!("netid = 7\n{extra}"));
        assert_eq!(parse(BASE).unwrap().isolation, IsolationAction::Stop);
        let ping = "ping = [\"192.0.2.1\"]\n";
        let c = parse(&with(&format!("{ping}isolation = \"stop\""))).unwrap();
        assert_eq!(c.isolation, IsolationAction::Stop);
        assert_eq!(c.hash, parse(&with(ping)).unwrap().hash);
        let t = with(&format!(
            "{ping}isolation = [\"/usr/local/sbin/isolated\", \"-v\"]"
        ));
        let c = parse(&t).unwrap();
        assert_eq!(
            c.isolation,
            IsolationAction::Script(vec!["/usr/local/sbin/isolated".into(), "-v".into()])
        );
        assert_ne!(c.hash, parse(&with(ping)).unwrap().hash);
        let t = format!(
            "{}\n[watchdog]\nenabled = true\n",
            with(&format!("{ping}isolation = \"stop-petting\""))
        );
        assert_eq!(parse(&t).unwrap().isolation, IsolationAction::StopPetting);

        let e = check(
            &with(&format!("{ping}isolation = \"reboot\"")),
            "isolation",
            "cluster.isolation",
        );
        assert!(e.message.contains("not an isolation action"), "{e}");
        let e = check(
            &with(&format!("{ping}isolation = 3")),
            "isolation",
            "cluster.isolation",
        );
        assert!(e.message.contains("expected"), "{e}");
        let t = with(&format!("{ping}isolation = [\"isolated\"]"));
        let e = check(&t, "isolation", "cluster.isolation[0]");
        assert!(e.message.contains("absolute path"), "{e}");
        let t = with(&format!("{ping}isolation = []"));
        check(&t, "isolation", "cluster.isolation");
        let t = with(&format!("{ping}isolation = \"stop-petting\""));
        let e = check(&t, "isolation", "cluster.isolation");
        assert!(e.message.contains("[watchdog] enabled = true"), "{e}");
        let e = check(
            &with("isolation = [\"/bin/true\"]"),
            "isolation",
            "cluster.isolation",
        );
        assert!(e.message.contains("needs ping addresses"), "{e}");
    }

    #[test]
    fn node_rules() {
        let t = BASE.replace("\"beta\"", "\"alpha\"");
        let e = check_at(&t, line_of(&t, "domain = 2") - 1, "node[1].name");
        assert!(e.message.contains("already used by node[0]"), "{e}");
        let t = BASE.replace("domain = 2", "domain = 1");
        let e = check_at(&t, line_of(&t, "\"beta\"") + 1, "node[1].domain");
        assert!(e.message.contains("already used by node[0]"), "{e}");
        for bad in ["0", "65"] {
            let t = BASE.replace("domain = 2", &format!("domain = {bad}"));
            let e = check(&t, &format!("domain = {bad}"), "node[1].domain");
            assert!(e.message.contains("allowed 1 to 64"), "{e}");
        }
        let t = BASE.replace("name = \"beta\"", "name = \"be/ta\"");
        check(&t, "be/ta", "node[1].name");
        let t = format!("{BASE}\n[node]\nname = \"x\"\n");
        assert!(err(&t).message.contains("TOML syntax"));
    }

    #[test]
    fn too_many_nodes() {
        let mut t = String::from(BASE);
        for d in 3..=65 {
            t.push_str(&format!(
                "\n[[node]]\nname = \"n{d}\"\ndomain = {}\n",
                d.min(64)
            ));
        }
        let e = check_at(&t, line_of(&t, "name = \"n65\"") - 1, "node[64]");
        assert!(e.message.contains("at most 64"), "{e}");
    }

    #[test]
    fn network_name_and_kind() {
        let t = with_network("name = \"lan1\"\nkind = \"udp\"");
        let e = check_at(&t, t.lines().count() - 1, "network[1].name");
        assert!(e.message.contains("already used by network[0]"), "{e}");
        let t = with_network("name = \"x\"\nkind = \"tcp\"");
        let e = check(&t, "\"tcp\"", "network[1].kind");
        assert!(e.message.contains("\"serial\" or \"udp\""), "{e}");
    }

    #[test]
    fn priority_and_maxmiss_ranges() {
        let t = BASE.replace("kind = \"udp\"", "kind = \"udp\"\npriority = 101");
        let e = check(&t, "priority", "network[0].priority");
        assert!(e.message.contains("allowed 0 to 100"), "{e}");
        let t = BASE.replace("kind = \"udp\"", "kind = \"udp\"\nmaxmiss = 1");
        let e = check(&t, "maxmiss", "network[0].maxmiss");
        assert!(e.message.contains("allowed 2 to 100"), "{e}");
        let t = BASE.replace("kind = \"udp\"", "kind = \"udp\"\nmaxmiss = 101");
        check(&t, "maxmiss", "network[0].maxmiss");
        let t = BASE.replace(
            "kind = \"udp\"",
            "kind = \"udp\"\npriority = 0\nmaxmiss = 100",
        );
        let c = parse(&t).unwrap();
        assert_eq!((c.networks[0].priority, c.networks[0].maxmiss), (0, 100));
    }

    #[test]
    fn interval_rules() {
        // maxmiss 20: even the shortest interval fits a daemon restart.
        let set = |v: &str| {
            BASE.replace(
                "kind = \"udp\"",
                &format!("kind = \"udp\"\ninterval = {v}\nmaxmiss = 20"),
            )
        };
        for bad in ["\"5ms\"", "\"16s\"", "\"0\""] {
            let e = check(&set(bad), "interval", "network[0].interval");
            assert!(e.message.contains("allowed 20ms to 15s"), "{bad}: {e}");
        }
        for bare in ["100", "0.5"] {
            let e = check(&set(bare), "interval", "network[0].interval");
            assert!(
                e.message
                    .contains("write a time with a unit, e.g. \"100ms\""),
                "{e}"
            );
        }
        let e = check(&set("\"fast\""), "interval", "network[0].interval");
        assert!(e.message.contains("`fast` is not a time"), "{e}");
        check(&set("true"), "interval", "network[0].interval");
        for (ok, d) in [
            ("\"20ms\"", 20),
            ("\"15s\"", 15_000),
            ("\"1500ms\"", 1500),
            ("\"1s 500ms\"", 1500),
        ] {
            assert_eq!(
                parse(&set(ok)).unwrap().networks[0].interval,
                Duration::from_millis(d)
            );
        }
    }

    #[test]
    fn a_daemon_restart_must_fit_in_the_longest_deadtime() {
        let short = BASE.replace(
            "kind = \"udp\"",
            "kind = \"udp\"\ninterval = \"20ms\"\nmaxmiss = 10",
        );
        let e = check(&short, "[[network]]", "network");
        assert!(
            e.message.contains("rule 6") && e.message.contains("200ms"),
            "{e}"
        );
        // One longer network is enough: the peer is lost only when all are
        // silent.
        let second = "\n[[network]]\nname = \"lan2\"\nkind = \"udp\"\ninterval = \"50ms\"\n\
                      maxmiss = 5\naddress = { alpha = \"10.0.0.1:5406\", beta = \"10.0.0.2:5406\" }\n";
        assert!(parse(&format!("{short}{second}")).is_ok());
    }

    #[test]
    fn misplaced_kind_keys() {
        let t = BASE.replace(
            "kind = \"udp\"",
            "kind = \"udp\"\ndevice = { alpha = \"/dev/ttyS0\", beta = \"/dev/ttyS0\" }",
        );
        let e = check(&t, "device", "network[0].device");
        assert!(e.message.contains("only for serial"), "{e}");
        let t = BASE.replace("kind = \"udp\"", "kind = \"udp\"\nbaud = 9600");
        check(&t, "baud", "network[0].baud");
        let t = with_network(
            "name = \"rs\"\nkind = \"serial\"\ndevice = { alpha = \"/dev/ttyS0\", beta = \"/dev/ttyS0\" }\naddress = { alpha = \"10.0.0.1:1\", beta = \"10.0.0.2:1\" }",
        );
        let e = check(
            &t,
            "address = { alpha = \"10.0.0.1:1\"",
            "network[1].address",
        );
        assert!(e.message.contains("only for udp"), "{e}");
        let t = with_network("name = \"rs\"\nkind = \"serial\"");
        check_at(&t, line_of(&t, "name = \"rs\"") - 1, "network[1].device");
        let t = with_network("name = \"u\"\nkind = \"udp\"");
        check_at(&t, line_of(&t, "name = \"u\"") - 1, "network[1].address");
    }

    #[test]
    fn serial_rules() {
        let serial = |extra: &str, dev: &str| {
            with_network(&format!(
                "name = \"rs\"\nkind = \"serial\"\n{extra}\ndevice = {{ {dev} }}"
            ))
        };
        let two = "alpha = \"/dev/ttyS0\", beta = \"/dev/ttyS1\"";
        let c = parse(&serial("", two)).unwrap();
        assert_eq!(c.networks[1].kind_name(), "serial");
        assert!(matches!(
            c.networks[1].kind,
            NetworkKind::Serial {
                baud: DEFAULT_BAUD,
                ..
            }
        ));

        let e = check(&serial("baud = 4800", two), "baud", "network[1].baud");
        assert!(
            e.message.contains("9600, 19200, 38400, 57600, 115200"),
            "{e}"
        );
        check(&serial("baud = \"fast\"", two), "baud", "network[1].baud");

        let e = check(
            &serial("", "alpha = \"/dev/ttyS0\", gamma = \"/dev/ttyS0\""),
            "gamma",
            "network[1].device.gamma",
        );
        assert!(e.message.contains("declared nodes: alpha, beta"), "{e}");
        let e = check(
            &serial("", "alpha = \"/dev/ttyS0\""),
            "device",
            "network[1].device",
        );
        assert!(e.message.contains("exactly two"), "{e}");
        check(
            &serial("", "alpha = \"ttyS0\", beta = \"/dev/ttyS0\""),
            "device",
            "network[1].device.alpha",
        );
        check(
            &serial("", "alpha = 0, beta = \"/dev/ttyS0\""),
            "device",
            "network[1].device.alpha",
        );

        let t = BASE
            .replace(
                "domain = 2",
                "domain = 2\n\n[[node]]\nname = \"gamma\"\ndomain = 3",
            )
            .replace(
                "beta = \"192.168.10.2:5405\"",
                "beta = \"192.168.10.2:5405\", gamma = \"192.168.10.3:5405\"",
            );
        assert!(parse(&t).is_ok());
        let t3 = format!(
            "{t}\n[[network]]\nname = \"rs\"\nkind = \"serial\"\ndevice = {{ {two}, gamma = \"/dev/ttyS0\" }}\n"
        );
        let e = check(&t3, "gamma = \"/dev/ttyS0\"", "network[1].device.gamma");
        assert!(e.message.contains("exactly two"), "{e}");

        // Rule 6: an interval shorter than two frames' airtime at the baud.
        let e = check(
            &serial("baud = 9600\ninterval = \"50ms\"", two),
            "interval",
            "network[1].interval",
        );
        assert!(
            e.message.contains("minimum interval at 9600 baud is 98ms"),
            "{e}"
        );
        assert!(parse(&serial("baud = 9600\ninterval = \"98ms\"", two)).is_ok());
        let e = check(
            &serial("interval = \"40ms\"", two),
            "interval",
            "network[1].interval",
        );
        assert!(e.message.contains("at 19200 baud is 49ms"), "{e}");
        assert!(parse(&serial("baud = 115200\ninterval = \"20ms\"", two)).is_ok());
        assert_eq!(min_serial_interval(9600), Duration::from_micros(97_916));
    }

    #[test]
    fn udp_rules() {
        let udp = |addr: &str| {
            with_network(&format!(
                "name = \"u\"\nkind = \"udp\"\naddress = {{ {addr} }}"
            ))
        };
        let e = check(
            &udp("alpha = \"10.0.0.1:5405\", beta = \"10.0.0.1:5405\""),
            "10.0.0.1:5405\", beta",
            "network[1].address.beta",
        );
        assert!(e.message.contains("already used by `alpha`"), "{e}");
        assert!(parse(&udp("alpha = \"10.0.0.1:5405\", beta = \"10.0.0.1:5406\"")).is_ok());
        let e = check(
            &udp("alpha = \"10.0.0.1:5405\", delta = \"10.0.0.2:5405\""),
            "delta",
            "network[1].address.delta",
        );
        assert!(e.message.contains("not a declared node"), "{e}");
        let e = check(
            &udp("alpha = \"10.0.0.1:5405\""),
            "alpha = \"10.0.0.1:5405\" }",
            "network[1].address",
        );
        assert!(e.message.contains("at least two"), "{e}");
        let e = check(
            &udp("alpha = \"10.0.0.1\", beta = \"10.0.0.2:5405\""),
            "10.0.0.1\"",
            "network[1].address.alpha",
        );
        assert!(e.message.contains("address:port"), "{e}");
        check(
            &udp("alpha = \"0.0.0.0:5405\", beta = \"10.0.0.2:5405\""),
            "0.0.0.0",
            "network[1].address.alpha",
        );
        check(
            &udp("alpha = \"10.0.0.1:0\", beta = \"10.0.0.2:5405\""),
            "10.0.0.1:0",
            "network[1].address.alpha",
        );
        check(
            &udp("alpha = \"10.0.0.1:1\", beta = \"[fd00::2]:1\""),
            "fd00",
            "network[1].address.beta",
        );
        assert!(parse(&udp("alpha = \"[fd00::1]:1\", beta = \"[fd00::2]:1\"")).is_ok());
        let t = with_network("name = \"u\"\nkind = \"udp\"\naddress = \"10.0.0.1:1\"");
        check(&t, "address = \"10.0.0.1:1\"", "network[1].address");
    }

    #[test]
    fn every_pair_shares_a_network() {
        let t = BASE.replace(
            "domain = 2",
            "domain = 2\n\n[[node]]\nname = \"gamma\"\ndomain = 3",
        );
        let e = check_at(&t, line_of(&t, "name = \"gamma\"") - 1, "node[2]");
        assert!(
            e.message
                .contains("node gamma has no private network to node alpha"),
            "{e}"
        );
        // gamma reaches alpha over serial, but not beta.
        let t2 = format!(
            "{t}\n[[network]]\nname = \"rs\"\nkind = \"serial\"\ndevice = {{ alpha = \"/dev/ttyS0\", gamma = \"/dev/ttyS0\" }}\n"
        );
        let e = err(&t2);
        assert!(
            e.message
                .contains("node gamma has no private network to node beta"),
            "{e}"
        );
        assert_eq!(e.field.as_deref(), Some("node[2]"));
    }

    #[test]
    fn too_many_networks() {
        let mut t = String::from(BASE);
        for i in 1..=32 {
            t.push_str(&format!(
                "\n[[network]]\nname = \"n{i}\"\nkind = \"udp\"\naddress = {{ alpha = \"10.0.{i}.1:1\", beta = \"10.0.{i}.2:1\" }}\n"
            ));
        }
        let e = check_at(&t, line_of(&t, "name = \"n32\"") - 1, "network[32]");
        assert!(e.message.contains("at most 32"), "{e}");
    }

    #[test]
    fn hash_ignores_layout_but_not_values() {
        let base = parse(BASE).unwrap().hash;
        let relaid = r#"
# the same content, reordered and reformatted
[[node]]
domain = 1          # first
name = 'alpha'
[[network]]
address = { beta = "192.168.10.2:5405", alpha = "192.168.10.1:5405" }
kind = "udp"
name = "lan1"
priority = 50
interval = "1000ms"
maxmiss = 10
[cluster]
key_file = "authkey"
netid = 0x7
name = "demo"
[[node]]
name = "beta"
domain = 2
"#;
        assert_eq!(parse(relaid).unwrap().hash, base);
        let other_dir = ClusterConfig::parse(BASE, Path::new("/tmp/x/cluster.toml")).unwrap();
        assert_eq!(other_dir.hash, base);
        let changes = [
            ("\"demo\"", "\"demo2\""),
            ("netid = 7", "netid = 8"),
            ("\"authkey\"", "\"authkey2\""),
            ("netid = 7", "netid = 7\ncontrol_group = \"ha\""),
            ("netid = 7", "netid = 7\nping = [\"192.0.2.1\"]"),
            ("name = \"alpha\"", "name = \"alpha2\""),
            ("domain = 2", "domain = 3"),
            ("\"lan1\"", "\"lan2\""),
            ("kind = \"udp\"", "kind = \"udp\"\npriority = 51"),
            ("kind = \"udp\"", "kind = \"udp\"\ninterval = \"999ms\""),
            ("kind = \"udp\"", "kind = \"udp\"\nmaxmiss = 11"),
            ("5405\" }", "5406\" }"),
        ];
        for (from, to) in changes {
            let t = BASE.replacen(from, to, 1);
            let t = if from == "name = \"alpha\"" {
                t.replace("{ alpha", "{ alpha2")
            } else {
                t
            };
            assert_ne!(parse(&t).unwrap().hash, base, "{from} -> {to}");
        }
        let serial = |dev: &str, baud: u32| {
            let t = format!(
                "{BASE}\n[[network]]\nname = \"rs\"\nkind = \"serial\"\nbaud = {baud}\ndevice = {{ alpha = \"{dev}\", beta = \"/dev/ttyS0\" }}\n"
            );
            parse(&t).unwrap().hash
        };
        assert_ne!(serial("/dev/ttyS0", 19200), serial("/dev/ttyS1", 19200));
        assert_ne!(serial("/dev/ttyS0", 19200), serial("/dev/ttyS0", 38400));
    }

    #[test]
    fn metrics_section() {
        assert_eq!(parse(BASE).unwrap().metrics, None);
        for (listen, want) in [
            ("127.0.0.1:9464", "127.0.0.1:9464"),
            ("[::1]:9464", "[::1]:9464"),
            ("0.0.0.0:1", "0.0.0.0:1"),
        ] {
            let t = format!("{BASE}\n[metrics]\nlisten = \"{listen}\"\n");
            let c = parse(&t).unwrap();
            assert_eq!(
                c.metrics.map(|m| m.listen.to_string()).as_deref(),
                Some(want)
            );
        }
        // The lease: from the timeout up.
        let t = format!("{BASE}\n[watchdog]\ntimeout = \"2s\"\nlease = \"2s\"\n");
        assert_eq!(parse(&t).unwrap().watchdog.lease, Duration::from_secs(2));
        let t = format!("{BASE}\n[watchdog]\nlease = \"5min\"\n");
        assert_eq!(parse(&t).unwrap().watchdog.lease, Duration::from_secs(300));
        // The section may come anywhere, e.g. before the nodes.
        let t = BASE.replacen(
            "[[node]]",
            "[metrics]\nlisten = \"127.0.0.1:9464\"\n\n[[node]]",
            1,
        );
        assert!(parse(&t).unwrap().metrics.is_some());
    }

    #[test]
    fn metrics_errors() {
        let with = |body: &str| format!("{BASE}\n[metrics]\n{body}\n");
        let t = with("listen = \"127.0.0.1:9464\"\nport = 9464");
        let e = check(&t, "port = 9464", "metrics.port");
        assert!(e.message.contains("allowed here: listen"), "{e}");
        let t = with("");
        let e = check(&t, "[metrics]", "metrics.listen");
        assert!(e.message.contains("missing required key `listen`"), "{e}");
        let t = with("listen = 9464");
        let e = check(&t, "listen", "metrics.listen");
        assert!(e.message.contains("expected an address:port"), "{e}");
        for bad in ["localhost:9464", "127.0.0.1", ""] {
            let t = with(&format!("listen = \"{bad}\""));
            let e = check(&t, "listen", "metrics.listen");
            assert!(e.message.contains("is not an address:port"), "{bad}: {e}");
            assert!(e.message.contains("\"127.0.0.1:9464\""), "{bad}: {e}");
        }
        for bad in ["127.0.0.1:0", "224.0.0.1:9464", "[ff02::1]:9464"] {
            let t = with(&format!("listen = \"{bad}\""));
            let e = check(&t, "listen", "metrics.listen");
            assert!(e.message.contains("port from 1 to 65535"), "{bad}: {e}");
        }
        let t = format!("metrics = \"127.0.0.1:9464\"\n{BASE}");
        let e = check(&t, "metrics =", "metrics");
        assert!(e.message.contains("a [metrics] section"), "{e}");
        let t = format!("{BASE}\n[[metrics]]\nlisten = \"127.0.0.1:9464\"\n");
        check(&t, "[[metrics]]", "metrics");
        let t = format!("{BASE}\n[metric]\nlisten = \"127.0.0.1:9464\"\n");
        let e = check(&t, "[metric]", "metric");
        assert!(e.message.contains("metrics"), "{e}");
        let t = with("listen = \"nope\"");
        assert_eq!(
            err(&t).to_string(),
            format!(
                "/etc/hacluster/cluster.toml:{}:10: metrics.listen: `nope` is not an address:port; \
                 write an IP address and a port, e.g. \"127.0.0.1:9464\" or \"[::1]:9464\" (host names are not allowed)",
                line_of(&t, "nope")
            )
        );
    }

    #[test]
    fn metrics_in_hash() {
        let base = parse(BASE).unwrap().hash;
        let on = |listen: &str| {
            parse(&format!("{BASE}\n[metrics]\nlisten = \"{listen}\"\n"))
                .unwrap()
                .hash
        };
        assert_ne!(on("127.0.0.1:9464"), base);
        assert_ne!(on("127.0.0.1:9464"), on("127.0.0.1:9465"));
        assert_eq!(on("127.0.0.1:9464"), on("127.0.0.1:09464"));
    }

    #[test]
    fn sample_metrics_section_parses_when_uncommented() {
        let lines: Vec<&str> = SAMPLE.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == "# [metrics]")
            .expect("the sample documents [metrics]");
        let mut text: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        text[at] = "[metrics]".into();
        let listen = text[at..]
            .iter()
            .position(|l| l.starts_with("# listen = "))
            .map(|i| i + at)
            .expect("the sample shows `listen`");
        text[listen] = text[listen].trim_start_matches("# ").to_owned();
        let c = parse(&text.join("\n")).unwrap();
        assert_eq!(
            c.metrics.map(|m| m.listen),
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(parse(SAMPLE).unwrap().metrics, None);
    }

    #[test]
    fn admin_section() {
        assert_eq!(parse(BASE).unwrap().admin, None);
        let t = format!("{BASE}\n[admin]\nlisten = \"0.0.0.0:7405\"\n");
        let admin = parse(&t).unwrap().admin.unwrap();
        assert_eq!(admin.listen, "0.0.0.0:7405".parse().unwrap());
        assert_eq!(admin.password_file, Path::new("/etc/hacluster/admin.pw"));
        for (written, want) in [
            ("/var/lib/hacluster/admin.pw", "/var/lib/hacluster/admin.pw"),
            ("secret/pw", "/etc/hacluster/secret/pw"),
        ] {
            let t =
                format!("{BASE}\n[admin]\nlisten = \"[::]:7405\"\npassword_file = \"{written}\"\n");
            let admin = parse(&t).unwrap().admin.unwrap();
            assert_eq!(admin.password_file, Path::new(want), "{written}");
        }
    }

    #[test]
    fn admin_errors() {
        let with = |body: &str| format!("{BASE}\n[admin]\n{body}\n");
        let t = with("listen = \"0.0.0.0:7405\"\npassword = \"x\"");
        let e = check(&t, "password = ", "admin.password");
        assert!(
            e.message.contains("allowed here: listen, password_file"),
            "{e}"
        );
        let e = check(&with(""), "[admin]", "admin.listen");
        assert!(e.message.contains("missing required key `listen`"), "{e}");
        assert!(e.message.contains("admin endpoint"), "{e}");
        for bad in ["myhost:7405", "7405", ""] {
            let t = with(&format!("listen = \"{bad}\""));
            let e = check(&t, "listen", "admin.listen");
            assert!(e.message.contains("is not an address:port"), "{bad}: {e}");
            assert!(e.message.contains("\"0.0.0.0:7405\""), "{bad}: {e}");
            assert!(e.message.contains("\"[::1]:7405\""), "{bad}: {e}");
        }
        let t = with("listen = \"0.0.0.0:0\"");
        let e = check(&t, "listen", "admin.listen");
        assert!(e.message.contains("port from 1 to 65535"), "{e}");
        for bad in ["\"\"", "\"dir/\"", "7"] {
            let t = with(&format!("listen = \"0.0.0.0:7405\"\npassword_file = {bad}"));
            let e = check(&t, "password_file", "admin.password_file");
            assert!(
                e.message.contains("admin password file") || e.message.contains("a file path"),
                "{bad}: {e}"
            );
        }
        let t = format!("admin = true\n{BASE}");
        let e = check(&t, "admin =", "admin");
        assert!(e.message.contains("an [admin] section"), "{e}");
    }

    #[test]
    fn admin_in_hash() {
        let base = parse(BASE).unwrap().hash;
        let on = |body: &str| parse(&format!("{BASE}\n[admin]\n{body}\n")).unwrap().hash;
        let listen = "listen = \"0.0.0.0:7405\"";
        assert_ne!(on(listen), base);
        assert_ne!(on(listen), on("listen = \"0.0.0.0:7406\""));
        assert_ne!(
            on(listen),
            on(&format!("{listen}\npassword_file = \"x.pw\""))
        );
    }

    #[test]
    fn sample_admin_section_parses_when_uncommented() {
        let text: Vec<String> = SAMPLE
            .lines()
            .map(|l| match l {
                "# [admin]" => "[admin]".to_owned(),
                l if l.starts_with("# listen = \"0.0.0.0")
                    || l.starts_with("# password_file = ") =>
                {
                    l.trim_start_matches("# ").to_owned()
                }
                l => l.to_owned(),
            })
            .collect();
        let admin = parse(&text.join("\n")).unwrap().admin.unwrap();
        assert_eq!(admin.listen, "0.0.0.0:7405".parse().unwrap());
        assert_eq!(admin.password_file, Path::new("/etc/hacluster/admin.pw"));
        assert_eq!(parse(SAMPLE).unwrap().admin, None);
    }

    /// `BASE` with one `[[fence]]` table made of `body`.
    fn with_fence(body: &str) -> String {
        format!("{BASE}\n[[fence]]\n{body}\n")
    }

    const IPMI: &str = r#"name = "ipmi-beta"
agent = ["/usr/sbin/fence_ipmilan"]
nodes = ["beta"]
options = { ip = "10.0.0.9", username = "admin", password_file = "/etc/hacluster/ipmi.pw", lanplus = "1" }"#;

    #[test]
    fn fence_section() {
        assert!(parse(BASE).unwrap().fences.is_empty());
        let c = parse(&with_fence(IPMI)).unwrap();
        let f = &c.fences[0];
        assert_eq!(f.name, "ipmi-beta");
        assert_eq!(f.agent, ["/usr/sbin/fence_ipmilan"]);
        assert_eq!(f.nodes, ["beta"]);
        let options: Vec<(&str, &str)> = f
            .options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            options,
            [("ip", "10.0.0.9"), ("lanplus", "1"), ("username", "admin")]
        );
        assert_eq!(
            f.password_file.as_deref(),
            Some(Path::new("/etc/hacluster/ipmi.pw"))
        );
        assert_eq!(f.timeout, DEFAULT_FENCE_TIMEOUT);
        assert_eq!(f.delay, Duration::ZERO);
        assert_eq!(c.fences_for("beta").count(), 1);
        assert_eq!(c.fences_for("alpha").count(), 0);

        let t = format!(
            "{}\n\n[[fence]]\nname = \"pdu\"\nagent = [\"/usr/sbin/fence_apc\", \"--verbose\"]\nnodes = [\"alpha\", \"beta\"]\ntimeout = \"2min\"\ndelay = \"15s\"\n",
            with_fence(IPMI)
        );
        let c = parse(&t).unwrap();
        let pdu = &c.fences[1];
        assert_eq!(pdu.agent, ["/usr/sbin/fence_apc", "--verbose"]);
        assert!(pdu.options.is_empty() && pdu.password_file.is_none());
        assert_eq!(pdu.timeout, Duration::from_secs(120));
        assert_eq!(pdu.delay, Duration::from_secs(15));
        let order: Vec<&str> = c.fences_for("beta").map(|f| f.name.as_str()).collect();
        assert_eq!(order, ["ipmi-beta", "pdu"]);
    }

    #[test]
    fn fence_errors() {
        let t = with_fence(&format!("{IPMI}\ncolour = \"red\""));
        let e = check(&t, "colour", "fence[0].colour");
        assert!(
            e.message
                .contains("allowed here: name, agent, nodes, options, timeout, delay"),
            "{e}"
        );
        let t = with_fence("agent = [\"/bin/true\"]\nnodes = [\"beta\"]");
        let e = check_at(&t, line_of(&t, "[[fence]]"), "fence[0].name");
        assert!(e.message.contains("missing required key `name`"), "{e}");
        let t = format!("{}\n[[fence]]\n{IPMI}\n", with_fence(IPMI));
        let e = check_at(&t, line_of(&t, "[[fence]]") + 7, "fence[1].name");
        assert!(e.message.contains("already used by fence[0]"), "{e}");

        let fence = |agent: &str, nodes: &str, extra: &str| {
            with_fence(&format!(
                "name = \"f\"\nagent = {agent}\nnodes = {nodes}\n{extra}"
            ))
        };
        let ok_agent = "[\"/bin/true\"]";
        let ok_nodes = "[\"beta\"]";
        for (agent, field, says) in [
            (
                "\"/usr/sbin/fence_ipmilan\"",
                "fence[0].agent",
                "expected a list",
            ),
            ("[]", "fence[0].agent", "1 to 64 items"),
            (
                "[\"fence_ipmilan\"]",
                "fence[0].agent[0]",
                "not an absolute path",
            ),
            (
                "[\"/bin/true\", 3]",
                "fence[0].agent[1]",
                "expected a string",
            ),
        ] {
            let e = check(&fence(agent, ok_nodes, ""), "agent =", field);
            assert!(e.message.contains(says), "{agent}: {e}");
        }

        let e = check(
            &fence(ok_agent, "[\"gamma\"]", ""),
            "nodes =",
            "fence[0].nodes[0]",
        );
        assert!(e.message.contains("declared nodes: alpha, beta"), "{e}");
        let e = check(&fence(ok_agent, "[]", ""), "nodes =", "fence[0].nodes");
        assert!(e.message.contains("at least one node"), "{e}");
        let e = check(
            &fence(ok_agent, "\"beta\"", ""),
            "nodes =",
            "fence[0].nodes",
        );
        assert!(e.message.contains("expected a list of node names"), "{e}");
        let e = check(
            &fence(ok_agent, "[\"beta\", \"beta\"]", ""),
            "nodes =",
            "fence[0].nodes[1]",
        );
        assert!(e.message.contains("listed twice"), "{e}");
        let t = with_fence("name = \"f\"\nagent = [\"/bin/true\"]");
        check_at(&t, line_of(&t, "[[fence]]"), "fence[0].nodes");

        for (options, field, says) in [
            (
                "{ password = \"secret\" }",
                "fence[0].options.password",
                "password_file",
            ),
            (
                "{ passwd = \"secret\" }",
                "fence[0].options.passwd",
                "password_file",
            ),
            (
                "{ action = \"off\" }",
                "fence[0].options.action",
                "sets it for each call",
            ),
            (
                "{ plug = \"3\" }",
                "fence[0].options.plug",
                "sets it for each call",
            ),
            (
                "{ port = \"3\" }",
                "fence[0].options.port",
                "sets it for each call",
            ),
            (
                "{ lanplus = 1 }",
                "fence[0].options.lanplus",
                "lanplus = \"1\"",
            ),
            (
                "{ \"a b\" = \"1\" }",
                "fence[0].options.a b",
                "A-Z a-z 0-9 _",
            ),
            (
                "{ ip = \"1\\nport=3\" }",
                "fence[0].options.ip",
                "line break",
            ),
            (
                "{ password_file = \"ipmi.pw\" }",
                "fence[0].options.password_file",
                "absolute path",
            ),
            ("\"ip=1\"", "fence[0].options", "a table of option"),
        ] {
            let e = check(
                &fence(ok_agent, ok_nodes, &format!("options = {options}")),
                "options =",
                field,
            );
            assert!(e.message.contains(says), "{options}: {e}");
        }

        for (key, value, says) in [
            ("timeout", "60", "a bare number has no unit"),
            ("timeout", "\"0s\"", "allowed 1s to 10m"),
            ("timeout", "\"11min\"", "allowed 1s to 10m"),
            ("delay", "\"6min\"", "allowed 0s to 5m"),
            ("delay", "\"soon\"", "is not a time"),
        ] {
            let t = fence(ok_agent, ok_nodes, &format!("{key} = {value}"));
            let e = check(&t, &format!("{key} ="), &format!("fence[0].{key}"));
            assert!(e.message.contains(says), "{key} = {value}: {e}");
        }
        let t = BASE.replacen("[cluster]", "fence = \"ipmi\"\n[cluster]", 1);
        let e = check(&t, "fence = \"ipmi\"", "fence");
        assert!(e.message.contains("[[fence]]"), "{e}");
        let t = with_fence("name = \"f\"\nagent = [\"fence_x\"]\nnodes = [\"beta\"]");
        assert_eq!(
            err(&t).to_string(),
            format!(
                "/etc/hacluster/cluster.toml:{}:10: fence[0].agent[0]: `fence_x` is not an absolute path; \
                 the agent is run directly (never looked up in PATH), e.g. agent = [\"/usr/sbin/fence_ipmilan\"]",
                line_of(&t, "fence_x")
            )
        );
    }

    #[test]
    fn fence_in_hash() {
        let base = parse(BASE).unwrap().hash;
        let with = parse(&with_fence(IPMI)).unwrap().hash;
        assert_ne!(base, with);
        let relaid = with_fence(
            &IPMI
                .replace(", lanplus = \"1\"", "")
                .replace("options = {", "options = { lanplus = \"1\","),
        );
        assert_eq!(parse(&relaid).unwrap().hash, with);
        let other = with_fence(&IPMI.replace("10.0.0.9", "10.0.0.10"));
        assert_ne!(parse(&other).unwrap().hash, with);
        let delayed = with_fence(&format!("{IPMI}\ndelay = \"5s\""));
        assert_ne!(parse(&delayed).unwrap().hash, with);
    }

    #[test]
    fn watchdog_section() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.watchdog, WatchdogConfig::default());
        assert!(!c.watchdog.enabled);
        assert_eq!(c.watchdog.device, PathBuf::from("/dev/watchdog"));
        assert_eq!(c.watchdog.timeout, Duration::from_secs(10));
        let t = format!(
            "{BASE}\n[watchdog]\nenabled = true\ndevice = \"/dev/watchdog1\"\ntimeout = \"1min\"\n"
        );
        assert_eq!(
            parse(&t).unwrap().watchdog,
            WatchdogConfig {
                enabled: true,
                device: PathBuf::from("/dev/watchdog1"),
                devices: BTreeMap::new(),
                timeout: Duration::from_secs(60),
                lease: DEFAULT_LEASE,
            }
        );
        // One device per node; the nodes not named use the default.
        let t = format!(
            "{BASE}\n[watchdog]\nenabled = true\ndevice = {{ beta = \"/dev/watchdog1\" }}\n"
        );
        let c = parse(&t).unwrap().watchdog;
        assert_eq!(c.device_of("beta"), Path::new("/dev/watchdog1"));
        assert_eq!(c.device_of("alpha"), Path::new(DEFAULT_WATCHDOG_DEVICE));
        // Every key is optional; an empty section is the defaults.
        let t = format!("{BASE}\n[watchdog]\n");
        assert_eq!(parse(&t).unwrap().watchdog, WatchdogConfig::default());
        let t = format!("{BASE}\n[watchdog]\nenabled = true\n");
        let c = parse(&t).unwrap();
        assert!(c.watchdog.enabled);
        assert_eq!(c.watchdog.timeout, DEFAULT_WATCHDOG_TIMEOUT);
        for (text, secs) in [("1s", 1), ("2000ms", 2), ("60s", 60)] {
            let t = format!("{BASE}\n[watchdog]\ntimeout = \"{text}\"\n");
            assert_eq!(
                parse(&t).unwrap().watchdog.timeout,
                Duration::from_secs(secs)
            );
        }
        // The section may come anywhere, e.g. before the nodes.
        let t = BASE.replacen("[[node]]", "[watchdog]\nenabled = true\n\n[[node]]", 1);
        assert!(parse(&t).unwrap().watchdog.enabled);
    }

    #[test]
    fn watchdog_errors() {
        let with = |body: &str| format!("{BASE}\n[watchdog]\n{body}\n");
        let t = with("enabled = true\ninterval = \"1s\"");
        let e = check(&t, "interval", "watchdog.interval");
        assert!(
            e.message
                .contains("allowed here: enabled, device, timeout, lease"),
            "{e}"
        );
        let t = with("enabled = \"yes\"");
        let e = check(&t, "enabled", "watchdog.enabled");
        assert!(e.message.contains("true or false"), "{e}");
        let t = with("enabled = 1");
        let e = check(&t, "enabled", "watchdog.enabled");
        assert!(e.message.contains("true or false"), "{e}");
        for bad in ["dev/watchdog", "", "watchdog"] {
            let t = with(&format!("device = \"{bad}\""));
            let e = check(&t, "device", "watchdog.device");
            assert!(e.message.contains("absolute device path"), "{bad}: {e}");
            assert!(e.message.contains("\"/dev/watchdog\""), "{bad}: {e}");
        }
        let t = with("device = 0");
        let e = check(&t, "device", "watchdog.device");
        assert!(e.message.contains("expected a device path"), "{e}");
        let t = with("device = { gamma = \"/dev/watchdog\" }");
        let e = check(&t, "gamma", "watchdog.device.gamma");
        assert!(e.message.contains("not a declared node"), "{e}");
        let t = with("device = { alpha = \"watchdog\" }");
        let e = check(&t, "\"watchdog\"", "watchdog.device.alpha");
        assert!(e.message.contains("absolute device path"), "{e}");
        for bad in ["0s", "500ms", "61s", "2min"] {
            let t = with(&format!("timeout = \"{bad}\""));
            let e = check(&t, "timeout", "watchdog.timeout");
            assert!(e.message.contains("allowed 1s to 1m"), "{bad}: {e}");
        }
        let t = with("timeout = \"1500ms\"");
        let e = check(&t, "timeout", "watchdog.timeout");
        assert!(e.message.contains("whole number of seconds"), "{e}");
        for bad in ["9s", "2h"] {
            let t = with(&format!("lease = \"{bad}\""));
            let e = check(&t, "lease", "watchdog.lease");
            assert!(e.message.contains("allowed 10s to 1h"), "{bad}: {e}");
            assert!(e.message.contains("at least the watchdog's timeout"), "{e}");
        }
        let t = with("timeout = 10");
        let e = check(&t, "timeout", "watchdog.timeout");
        assert!(e.message.contains("no unit"), "{e}");
        let t = with("timeout = \"soon\"");
        let e = check(&t, "timeout", "watchdog.timeout");
        assert!(e.message.contains("is not a time"), "{e}");
        let t = format!("watchdog = true\n{BASE}");
        let e = check(&t, "watchdog =", "watchdog");
        assert!(e.message.contains("a [watchdog] section"), "{e}");
        let t = format!("{BASE}\n[[watchdog]]\nenabled = true\n");
        check(&t, "[[watchdog]]", "watchdog");
        let t = with("device = \"nope\"");
        assert_eq!(
            err(&t).to_string(),
            format!(
                "/etc/hacluster/cluster.toml:{}:10: watchdog.device: `nope` is not an absolute device path; \
                 write e.g. \"/dev/watchdog\" or \"/dev/watchdog0\"",
                line_of(&t, "nope")
            )
        );
    }

    #[test]
    fn watchdog_in_hash() {
        let base = parse(BASE).unwrap().hash;
        let on = |body: &str| {
            parse(&format!("{BASE}\n[watchdog]\n{body}\n"))
                .unwrap()
                .hash
        };
        // Absent, empty or spelled-out defaults: the same content.
        assert_eq!(on(""), base);
        assert_eq!(
            on("enabled = false\ndevice = \"/dev/watchdog\"\ntimeout = \"10s\""),
            base
        );
        assert_ne!(on("enabled = true"), base);
        assert_ne!(
            on("enabled = true"),
            on("enabled = true\ntimeout = \"11s\"")
        );
        assert_ne!(
            on("enabled = true"),
            on("enabled = true\ndevice = \"/dev/watchdog0\"")
        );
        assert_eq!(on("timeout = \"20s\""), on("timeout = \"20000ms\""));
        assert_eq!(on("enabled = true\nlease = \"60s\""), on("enabled = true"));
        assert_ne!(on("enabled = true\nlease = \"61s\""), on("enabled = true"));
        assert_ne!(
            on("enabled = true"),
            on("enabled = true\ndevice = { alpha = \"/dev/watchdog1\" }")
        );
    }

    #[test]
    fn sample_watchdog_section_parses_when_uncommented() {
        let lines: Vec<&str> = SAMPLE.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == "# [watchdog]")
            .expect("the sample documents [watchdog]");
        let mut text: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        text[at] = "[watchdog]".into();
        for key in ["enabled", "device", "timeout", "lease"] {
            let i = text[at..]
                .iter()
                .position(|l| l.starts_with(&format!("# {key} = ")))
                .map(|i| i + at)
                .unwrap_or_else(|| panic!("the sample shows `{key}`"));
            text[i] = text[i].trim_start_matches("# ").to_owned();
        }
        let c = parse(&text.join("\n")).unwrap();
        assert_eq!(
            c.watchdog,
            WatchdogConfig {
                enabled: true,
                device: PathBuf::from(DEFAULT_WATCHDOG_DEVICE),
                devices: BTreeMap::new(),
                timeout: DEFAULT_WATCHDOG_TIMEOUT,
                lease: DEFAULT_LEASE,
            }
        );
        assert_eq!(parse(SAMPLE).unwrap().watchdog, WatchdogConfig::default());
    }

    #[test]
    fn alerts_section() {
        use crate::event::Severity;
        let base = parse(BASE).unwrap();
        assert_eq!(base.alerts, None);
        let t = format!("{BASE}\n[alerts]\n");
        let empty = parse(&t).unwrap().alerts.unwrap();
        assert!(empty.hooks.is_empty() && empty.mail.is_empty());
        assert_eq!(empty.sendmail, PathBuf::from(DEFAULT_SENDMAIL));
        assert_eq!(empty.timeout, DEFAULT_ALERT_TIMEOUT);
        assert_eq!(empty.severity, Severity::Emergency);
        let full = r#"
[alerts]
hooks = [["/usr/local/sbin/page", "--team", "db"], ["/bin/true"]]
mail = ["ops@example.com", "dba@example.org"]
sendmail = "/usr/lib/sendmail"
timeout = "10s"
severity = "warning"
"#;
        let c = parse(&format!("{BASE}{full}")).unwrap();
        let a = c.alerts.clone().unwrap();
        assert_eq!(
            a.hooks,
            [
                vec!["/usr/local/sbin/page", "--team", "db"],
                vec!["/bin/true"]
            ]
        );
        assert_eq!(a.mail, ["ops@example.com", "dba@example.org"]);
        assert_eq!(a.sendmail, PathBuf::from("/usr/lib/sendmail"));
        assert_eq!(a.timeout, Duration::from_secs(10));
        assert_eq!(a.severity, Severity::Warning);
        // Absent: the hash is what it was before the section existed;
        // present, every value counts.
        assert_ne!(c.hash, base.hash);
        assert_ne!(parse(&t).unwrap().hash, base.hash);
        let other = parse(&format!("{BASE}{}", full.replace("10s", "11s"))).unwrap();
        assert_ne!(other.hash, c.hash);
    }

    #[test]
    fn sample_alerts_section_parses_when_uncommented() {
        let lines: Vec<&str> = SAMPLE.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == "# [alerts]")
            .expect("the sample documents [alerts]");
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let shown = [
                    "[alerts]",
                    "hooks = ",
                    "mail = ",
                    "sendmail = ",
                    "timeout = ",
                    "severity = ",
                ]
                .iter()
                .any(|k| l.starts_with(&format!("# {k}")));
                if i >= at && shown {
                    l.trim_start_matches("# ").to_owned()
                } else {
                    (*l).to_owned()
                }
            })
            .collect();
        let a = parse(&text.join("\n")).unwrap().alerts.unwrap();
        assert_eq!(a.hooks, [vec!["/usr/local/sbin/page", "--team", "db"]]);
        assert_eq!(a.mail, ["ops@example.com"]);
        assert_eq!(a.sendmail, PathBuf::from(DEFAULT_SENDMAIL));
        assert_eq!(a.timeout, DEFAULT_ALERT_TIMEOUT);
        assert_eq!(a.severity, crate::event::Severity::Emergency);
    }

    #[test]
    fn alerts_errors() {
        let with = |body: &str| format!("{BASE}\n[alerts]\n{body}\n");
        let cases = [
            (
                "hooks = [[\"page\"]]",
                "alerts.hooks[0][0]",
                "not an absolute path",
            ),
            ("hooks = [[]]", "alerts.hooks[0]", "0 items"),
            (
                "hooks = [\"/bin/page\"]",
                "alerts.hooks[0]",
                "expected a list",
            ),
            ("hooks = \"/bin/page\"", "alerts.hooks", "expected a list"),
            ("mail = [\"ops\"]", "alerts.mail[0]", "not a mail address"),
            (
                "mail = [\"a@b, c@d\"]",
                "alerts.mail[0]",
                "not a mail address",
            ),
            (
                "mail = [\"a@b\\nBcc: x@y\"]",
                "alerts.mail[0]",
                "not a mail address",
            ),
            ("mail = [1]", "alerts.mail[0]", "expected a mail address"),
            (
                "sendmail = \"sendmail\"",
                "alerts.sendmail",
                "not an absolute path",
            ),
            ("timeout = \"0s\"", "alerts.timeout", ""),
            ("timeout = \"10min\"", "alerts.timeout", ""),
            (
                "severity = \"info\"",
                "alerts.severity",
                "not an alert severity",
            ),
            ("pager = 1", "alerts.pager", "allowed here"),
        ];
        for (body, field, says) in cases {
            let t = with(body);
            let e = check(&t, body.split_once(' ').unwrap().0, field);
            assert!(e.message.contains(says), "{body}: {e}");
        }
        let many = vec!["\"a@b\""; MAX_ALERT_TARGETS + 1].join(", ");
        let e = err(&with(&format!("mail = [{many}]")));
        assert!(e.message.contains("at most 16"), "{e}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn toml_like_text_never_panics(text in "[\\[\\]a-z_=\"'{},.:0-9 \n#-]{0,200}") {
                let _ = parse(&text);
            }

            #[test]
            fn mutated_sample_never_panics(line in 0usize..110, junk in any::<String>()) {
                let _ = parse(&replace_line(SAMPLE, line, &junk));
            }

            #[test]
            fn mutated_values_never_panic(line in 0usize..110, junk in any::<String>()) {
                let text = replace_value(SAMPLE, line, &junk);
                if let Err(e) = parse(&text) {
                    prop_assert!(e.line.is_some());
                }
            }
        }
    }
}
