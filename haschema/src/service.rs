//! The protected-service files (TOML, one service per file, usually
//! `/etc/hacluster/services/*.toml`): what a service is made of (floating
//! IPs, volumes, the scripts that start, stop and probe it, its agent), where
//! it runs (an active node and ordered standbys) and its timing.
//!
//! Each file is checked against the loaded cluster config (the nodes must be
//! declared there) by [`ServiceConfig::parse`] or [`ServiceConfig::load`];
//! [`load_dir`] loads a whole directory and refuses what two services may not
//! share ([`check_conflicts`]). As with the cluster config, every error names
//! the file, line, column and field (`ip[0].nics.beta`, 0-based indexes in
//! file order) and says what is allowed; unknown keys are errors.
//! `etc/services/www.toml` is a commented sample of every field.
//!
//! Ranges and defaults follow the manuals: SureHA's service dialog (start
//! timeout 12 to 1000 s, check interval up to 120 s, restart times 0 to 5)
//! and Skyge's `service.cfg` (timeouts default 300 s, `check_interval`
//! default 3 s, `check_tko` default 1, `onstart` and `force_reboot` default
//! off). Scripts are argument vectors, run directly, never through a shell.

use crate::config::{ClusterConfig, ConfigError, WatchdogConfig};
use crate::toml_walk::{
    Section, Value, Walker, canonical_hash, clip, describe, ip_family, line_col, show,
    valid_unix_name,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Bound, Range, RangeInclusive};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use toml::de::DeValue;

/// Most services [`load_dir`] accepts (Skyge: 1024 per take-over order).
pub const MAX_SERVICES: usize = 1024;
/// Most floating IPs of one service, ranges expanded.
pub const MAX_FLOATING_IPS: usize = 256;
/// Most addresses one `a~b` range may hold.
pub const MAX_RANGE: usize = 256;
/// Most interfaces listed for one node of one floating IP.
pub const MAX_NICS: usize = 16;
/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;
/// Most volumes of one service.
pub const MAX_VOLUMES: usize = 32;
/// The file system types a volume may have.
pub const FS_TYPES: [&str; 7] = ["ext4", "ext3", "ext2", "xfs", "btrfs", "jfs", "f2fs"];
/// Longest mount option string.
pub const MAX_OPTIONS_LEN: usize = 512;
/// Highest group id (the lowest is 1).
pub const MAX_GROUP: u32 = 65535;
/// Most arguments of one script, the program included.
pub const MAX_ARGS: usize = 256;
/// Longest single argument, in bytes.
pub const MAX_ARG_LEN: usize = 4096;
/// `start_timeout`, `stop_timeout` and `resource_release_timeout` when the
/// file gives none (Skyge: 300 seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Shortest timeout (SureHA's start timeout range is 12 to 1000 seconds).
pub const MIN_TIMEOUT: Duration = Duration::from_secs(12);
/// Longest timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1000);
/// `check_interval` when the file gives none (Skyge: 3 seconds).
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(3);
/// Shortest `check_interval`: fast agent checks (and the 100 ms failover
/// benchmark) need sub-second probes.
pub const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Longest `check_interval` (SureHA: 120 seconds).
pub const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(120);
/// `check_tko` when the file gives none (Skyge: 1).
pub const DEFAULT_CHECK_TKO: u32 = 1;
/// Highest `check_tko` (the lowest is 1).
pub const MAX_CHECK_TKO: u32 = 100;
/// `restart_times` when the file gives none (SureHA: 0).
pub const DEFAULT_RESTART_TIMES: u32 = 0;
/// Highest `restart_times` (SureHA: 0 to 5).
pub const MAX_RESTART_TIMES: u32 = 5;
/// Highest `migration_threshold` (the lowest is 1).
pub const MAX_MIGRATION_THRESHOLD: u32 = 100;
/// Shortest `failure_timeout`.
pub const MIN_FAILURE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest `failure_timeout` and `switchback_stable`: one week.
pub const MAX_FAILURE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// One protected service, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The file it was read from.
    pub file: PathBuf,
    /// Unique across the service files; 1 to 32 characters from
    /// `A-Za-z0-9_.-`.
    pub name: String,
    /// The kind of application (which bundled agent fits it).
    pub kind: ServiceType,
    /// The manual's GROUPID, 1 to 65535: services of one group move together
    /// and so run on the same nodes.
    pub group: Option<u32>,
    /// The node that runs the service first.
    pub active: String,
    /// The nodes that take it over, in order of preference; at least one,
    /// distinct, not the active node.
    pub standby: Vec<String>,
    /// The floating IPs, in file order, ranges expanded; no address twice.
    pub ips: Vec<FloatingIp>,
    /// The volumes, in mount order.
    pub volumes: Vec<Volume>,
    /// The storage array's address: when it does not answer, the volumes
    /// cannot be reached from this node (the manual's store IP).
    pub storage_ping: Option<IpAddr>,
    /// The agent that watches the application, as an argument vector.
    pub agent: Option<Vec<String>>,
    /// Starts the application (argument vector; `argv[0]` absolute).
    pub start: Option<Vec<String>>,
    /// Stops it; given exactly when `start` is.
    pub stop: Option<Vec<String>>,
    /// Probes it: exit 0 when it runs; given exactly when `start` is.
    pub status: Option<Vec<String>>,
    /// How `status`'s exit codes read: LSB (`status`: 1, 2 and 3 are "not
    /// running") or OCF (`monitor`: 7 is "not running", 1 to 6 are errors).
    pub status_codes: StatusCodes,
    /// Longest a start may take, 12s to 1000s.
    pub start_timeout: Duration,
    /// Longest a stop may take, 12s to 1000s.
    pub stop_timeout: Duration,
    /// Longest releasing the floating IPs and volumes may take, 12s to 1000s.
    pub resource_release_timeout: Duration,
    /// Time between status probes, 100ms to 120s.
    pub check_interval: Duration,
    /// Failed probes in a row before the service counts as failed here, 1
    /// to 100; `check_interval * check_tko` is below `start_timeout`.
    pub check_tko: u32,
    /// Local restarts before the service moves to a standby, 0 to 5.
    pub restart_times: u32,
    /// Whether the service moves back to the active node when it returns.
    pub switchback: bool,
    /// Failures of the service on one node (since cleanup, not expired)
    /// after which that node cannot host it, 1 to 100; None: no such limit.
    pub migration_threshold: Option<u32>,
    /// How long a failure counts, 1s to one week; None: until cleanup.
    pub failure_timeout: Option<Duration>,
    /// With switchback, how long a returning preferred node must have been
    /// able to host before it takes the service back, 0 to one week.
    pub switchback_stable: Duration,
    /// Whether the service starts when the cluster starts.
    pub onstart: bool,
    /// Whether a failed stop or release resets this node (by no longer
    /// petting the watchdog).
    pub force_reboot: bool,
    /// First 4 bytes (big-endian) of SHA-256 over a canonical form of the
    /// content (everything but `file` and `sources`): equal content gives an
    /// equal hash whatever the comments, layout or key order.
    pub hash: u32,
    /// Where values were written, for errors found after parsing (see
    /// [`check_conflicts`]), keyed by their place in this struct: `name`,
    /// `group`, `ips[2]`, `volumes[0].mount_point`,
    /// `volumes[0].devices.alpha`. Empty for a config built in code, whose
    /// conflict errors then carry no line.
    pub sources: BTreeMap<String, Source>,
}

/// Where a value was written in its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The field path in the file, e.g. `ip[0].address`.
    pub field: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// The kind of application a service protects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceType {
    /// The user's own application, agent and scripts.
    Userdef,
    /// A web server.
    Www,
    /// MySQL or MariaDB.
    Mysql,
    /// Oracle RDBMS.
    Oracle,
    /// Sybase RDBMS.
    Sybase,
    /// Informix RDBMS.
    Informix,
    /// IBM DB2.
    Db2,
    /// An NFS server.
    Nfs,
}

/// The exit-code convention of a service's `status` command. It matters
/// for safety: a stop is proven only by a status that says "not running"
/// (rule 7), and the two conventions give 1, 2 and 3 opposite meanings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusCodes {
    /// An LSB init script's `status`: 0 running; 1, 2, 3 not running.
    Lsb,
    /// An OCF resource agent's `monitor`: 0 (or 8) running; 7 not running;
    /// anything else an error.
    Ocf,
}

impl StatusCodes {
    /// The name in service files.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCodes::Lsb => "lsb",
            StatusCodes::Ocf => "ocf",
        }
    }

    /// The convention when the file names none: OCF when the command's last
    /// argument is the OCF action `monitor`, else LSB.
    pub fn guess(status: Option<&[String]>) -> StatusCodes {
        match status.and_then(<[String]>::last) {
            Some(action) if action == "monitor" => StatusCodes::Ocf,
            _ => StatusCodes::Lsb,
        }
    }
}

/// One floating IP: an address clients reach the service on, held by the
/// node that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloatingIp {
    pub addr: IpAddr,
    /// Prefix length: 1 to 32 (IPv4) or 1 to 128 (IPv6).
    pub prefix: u8,
    /// Node name -> the interfaces that may hold the address there, in order
    /// of preference (the next one is used when a link fails). Every node of
    /// the service has at least one.
    pub nics: BTreeMap<String, Vec<String>>,
}

/// One volume, mounted on the node that runs the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Node name -> the block device there (the manual's active and backup
    /// volume). Every node of the service has one.
    pub devices: BTreeMap<String, PathBuf>,
    /// Absolute, normalised; not a system directory.
    pub mount_point: PathBuf,
    /// One of [`FS_TYPES`].
    pub fstype: String,
    /// Comma-separated mount options; empty for the defaults.
    pub options: String,
    /// User that owns the mount point once mounted; `None` leaves it.
    pub owner: Option<String>,
    /// Group that owns the mount point once mounted; `None` leaves it.
    pub group: Option<String>,
    /// Permission bits of the mount point once mounted, at most `0o7777`.
    pub mode: Option<u32>,
    /// Whether the file system is checked before it is mounted.
    pub fsck: bool,
}

impl ServiceType {
    /// Every type, in the order of [`ServiceType::as_str`]'s list.
    pub const ALL: [ServiceType; 8] = [
        ServiceType::Userdef,
        ServiceType::Www,
        ServiceType::Mysql,
        ServiceType::Oracle,
        ServiceType::Sybase,
        ServiceType::Informix,
        ServiceType::Db2,
        ServiceType::Nfs,
    ];

    /// The name written in the file: `USERDEF`, `WWW`, `MYSQL`, `ORACLE`,
    /// `SYBASE`, `INFORMIX`, `DB2` or `NFS`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Userdef => "USERDEF",
            ServiceType::Www => "WWW",
            ServiceType::Mysql => "MYSQL",
            ServiceType::Oracle => "ORACLE",
            ServiceType::Sybase => "SYBASE",
            ServiceType::Informix => "INFORMIX",
            ServiceType::Db2 => "DB2",
            ServiceType::Nfs => "NFS",
        }
    }

    /// The type written as `name` (exactly, in capitals).
    pub fn from_name(name: &str) -> Option<ServiceType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FloatingIp {
    /// `address/prefix`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl ServiceConfig {
    /// What to tell the operator when `watchdog` is armed with a lease
    /// shorter than this service's longest stop (`stop_timeout` plus
    /// `resource_release_timeout`): a node that loses the right to hold it
    /// (isolated, or without quorum) would be reset before such a stop
    /// ends. None when it fits, or without a watchdog.
    pub fn lease_warning(&self, watchdog: &WatchdogConfig) -> Option<String> {
        let stop = self.stop_timeout + self.resource_release_timeout;
        (watchdog.enabled && stop > watchdog.lease).then(|| {
            format!(
                "service {}: its longest stop ({}s: stop_timeout plus \
                 resource_release_timeout) is longer than [watchdog] lease ({}s): a node that \
                 is isolated or loses quorum is reset by its watchdog before such a stop ends; \
                 raise the lease or lower the timeouts if the stop should finish",
                self.name,
                stop.as_secs(),
                watchdog.lease.as_secs()
            )
        })
    }

    /// Reads and checks the service file at `path` against `cluster`.
    pub fn load(path: &Path, cluster: &ClusterConfig) -> Result<ServiceConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path, cluster),
            Err(e) => Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot read the service file: {e}"),
            }),
        }
    }

    /// Checks service text against `cluster`; `file` names it in errors.
    pub fn parse(
        text: &str,
        file: &Path,
        cluster: &ClusterConfig,
    ) -> Result<ServiceConfig, ConfigError> {
        Parser {
            w: Walker { text, file },
            cluster,
        }
        .service()
    }

    /// The nodes that may run the service: the active one, then the
    /// standbys in order of preference.
    pub fn nodes(&self) -> Vec<&str> {
        std::iter::once(self.active.as_str())
            .chain(self.standby.iter().map(String::as_str))
            .collect()
    }

    /// The number of the service's lock in the cluster's lock service:
    /// [`lock_id`] of its name.
    pub fn lock_id(&self) -> u32 {
        lock_id(&self.name)
    }

    /// How long a failed application goes unnoticed at most:
    /// `check_interval * check_tko`.
    pub fn detection_time(&self) -> Duration {
        self.check_interval.saturating_mul(self.check_tko)
    }
}

/// Loads every `*.toml` file of `dir` (in file name order; names starting
/// with `.` are skipped) as a service checked against `cluster`, then
/// [`check_conflicts`]. An empty directory gives no services.
pub fn load_dir(dir: &Path, cluster: &ClusterConfig) -> Result<Vec<ServiceConfig>, ConfigError> {
    let dir_err = |message: String| ConfigError {
        file: dir.to_path_buf(),
        line: None,
        column: None,
        field: None,
        message,
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| dir_err(format!("cannot read the service directory: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| dir_err(format!("cannot read the service directory: {e}")))?;
        let path = entry.path();
        let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
        if hidden || path.extension().is_none_or(|e| e != "toml") || path.is_dir() {
            continue;
        }
        files.push(path);
    }
    if files.len() > MAX_SERVICES {
        return Err(dir_err(format!(
            "{} service files; at most {MAX_SERVICES} services are allowed",
            files.len()
        )));
    }
    files.sort();
    let services = files
        .iter()
        .map(|f| ServiceConfig::load(f, cluster))
        .collect::<Result<Vec<_>, _>>()?;
    check_conflicts(&services)?;
    Ok(services)
}

/// The number of a service's lock in the cluster's lock service, the same
/// on every node: the 32-bit FNV-1a hash of its name ([`check_conflicts`]
/// refuses two names with one number).
pub fn lock_id(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Refuses what two services may not share, naming the later one's file
/// and the earlier one: a name, a floating IP, a mount point (or one inside
/// another's), a device on a node; and services of one group must run on
/// the same nodes in the same order.
pub fn check_conflicts(services: &[ServiceConfig]) -> Result<(), ConfigError> {
    let mut names: HashMap<&str, &ServiceConfig> = HashMap::new();
    let mut locks: HashMap<u32, &ServiceConfig> = HashMap::new();
    let mut ips: HashMap<IpAddr, (&ServiceConfig, usize)> = HashMap::new();
    let mut mounts: BTreeMap<&Path, (&ServiceConfig, usize)> = BTreeMap::new();
    let mut devices: HashMap<(&str, &Path), (&ServiceConfig, usize)> = HashMap::new();
    let mut groups: HashMap<u32, &ServiceConfig> = HashMap::new();
    for s in services {
        if let Some(first) = names.get(s.name.as_str()) {
            return Err(conflict(
                s,
                "name",
                format!(
                    "service name `{}` is already used by {}; service names must be unique across the service files",
                    s.name,
                    place(first, "name")
                ),
            ));
        }
        if let Some(first) = locks.get(&s.lock_id()) {
            return Err(conflict(
                s,
                "name",
                format!(
                    "service names `{}` and `{}` ({}) hash to the same cluster lock number; rename one of them",
                    s.name,
                    first.name,
                    place(first, "name")
                ),
            ));
        }
        locks.insert(s.lock_id(), s);
        if let Some(group) = s.group
            && let Some(first) = groups.get(&group)
            && first.nodes() != s.nodes()
        {
            return Err(conflict(
                s,
                "group",
                format!(
                    "group {group} holds service `{}` ({}) on nodes {}, but this service runs on {}; the services of one group move together, so they need the same active and standby nodes in the same order",
                    first.name,
                    place(first, "group"),
                    first.nodes().join(", "),
                    s.nodes().join(", ")
                ),
            ));
        }
        for (k, ip) in s.ips.iter().enumerate() {
            if let Some((first, j)) = ips.get(&ip.addr) {
                return Err(conflict(
                    s,
                    &format!("ips[{k}]"),
                    format!(
                        "{} is already a floating IP of service `{}` ({}); two services may not share a floating IP",
                        ip.addr,
                        first.name,
                        place(first, &format!("ips[{j}]"))
                    ),
                ));
            }
        }
        for (k, v) in s.volumes.iter().enumerate() {
            let key = format!("volumes[{k}].mount_point");
            let mp = v.mount_point.as_path();
            let above = mp.ancestors().find_map(|a| mounts.get(a));
            let below = mounts
                .range::<Path, _>((Bound::Excluded(mp), Bound::Unbounded))
                .next()
                .filter(|(p, _)| p.starts_with(mp));
            if let Some((first, j)) = above {
                let theirs = &first.volumes[*j].mount_point;
                let how = if theirs == &v.mount_point {
                    "is already the mount point of".to_owned()
                } else {
                    format!("is inside {}, the mount point of", theirs.display())
                };
                return Err(conflict(
                    s,
                    &key,
                    format!(
                        "{} {how} a volume of service `{}` ({}); two services may not share a mount point or mount one inside the other's",
                        v.mount_point.display(),
                        first.name,
                        place(first, &format!("volumes[{j}].mount_point"))
                    ),
                ));
            }
            if let Some((theirs, (first, j))) = below {
                return Err(conflict(
                    s,
                    &key,
                    format!(
                        "{} holds {}, the mount point of a volume of service `{}` ({}); two services may not mount one inside the other's",
                        v.mount_point.display(),
                        theirs.display(),
                        first.name,
                        place(first, &format!("volumes[{j}].mount_point"))
                    ),
                ));
            }
            for (node, dev) in &v.devices {
                if let Some((first, j)) = devices.get(&(node.as_str(), dev.as_path())) {
                    return Err(conflict(
                        s,
                        &format!("volumes[{k}].devices.{node}"),
                        format!(
                            "{} on node {node} is already a volume of service `{}` ({}); a device may be mounted by one service only",
                            dev.display(),
                            first.name,
                            place(first, &format!("volumes[{j}].devices.{node}"))
                        ),
                    ));
                }
            }
        }
        // Record this service only now: its own duplicates are parse errors.
        names.insert(&s.name, s);
        if let Some(group) = s.group {
            groups.entry(group).or_insert(s);
        }
        for (k, ip) in s.ips.iter().enumerate() {
            ips.insert(ip.addr, (s, k));
        }
        for (k, v) in s.volumes.iter().enumerate() {
            mounts.insert(&v.mount_point, (s, k));
            for (node, dev) in &v.devices {
                devices.insert((node, dev), (s, k));
            }
        }
    }
    Ok(())
}

/// An error about `s` at the value recorded under `key` in its sources.
fn conflict(s: &ServiceConfig, key: &str, message: String) -> ConfigError {
    let source = s.sources.get(key);
    ConfigError {
        file: s.file.clone(),
        line: source.map(|x| x.line),
        column: source.map(|x| x.column),
        field: Some(source.map_or_else(|| key.to_owned(), |x| x.field.clone())),
        message,
    }
}

/// `FILE:LINE` (or `FILE`) of the value recorded under `key` in `s`.
fn place(s: &ServiceConfig, key: &str) -> String {
    match s.sources.get(key) {
        Some(x) => format!("{}:{}", s.file.display(), x.line),
        None => s.file.display().to_string(),
    }
}

// ---------------------------------------------------------------------------
// Checking

const SERVICE_KEYS: &[&str] = &[
    "name",
    "type",
    "group",
    "active",
    "standby",
    "storage_ping",
    "agent",
    "start",
    "stop",
    "status",
    "status_codes",
    "start_timeout",
    "stop_timeout",
    "resource_release_timeout",
    "check_interval",
    "check_tko",
    "restart_times",
    "switchback",
    "switchback_stable",
    "migration_threshold",
    "failure_timeout",
    "onstart",
    "force_reboot",
    "ip",
    "volume",
];
const IP_KEYS: &[&str] = &["address", "nics"];
const VOLUME_KEYS: &[&str] = &[
    "device",
    "mount_point",
    "fstype",
    "options",
    "owner",
    "group",
    "mode",
    "fsck",
];
/// Mount points refused outright.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/etc", "/lib", "/lib32", "/lib64", "/sbin", "/usr", "/var",
];
/// Trees no volume may be mounted in.
const SYSTEM_TREES: &[&str] = &["/dev", "/proc", "/run", "/sys"];
/// Mount options that would make `mount` do something else than mount a
/// device.
const REFUSED_OPTIONS: &[&str] = &["bind", "rbind", "move", "remount"];
const TIME_EXAMPLES: [&str; 2] = ["\"30s\"", "\"5m\""];

/// The service file's rules, over the shared [`Walker`].
struct Parser<'a> {
    w: Walker<'a>,
    cluster: &'a ClusterConfig,
}

/// Where values were written, as they are recorded.
type Sources = BTreeMap<String, Source>;

impl Parser<'_> {
    fn source(&self, span: &Range<usize>, field: &str) -> Source {
        let (line, column) = line_col(self.w.text, span.start);
        Source {
            field: field.to_owned(),
            line,
            column,
        }
    }

    fn service(&self) -> Result<ServiceConfig, ConfigError> {
        let doc = self.w.document()?;
        let root = Section::root(&doc);
        self.w.only(&root, SERVICE_KEYS)?;
        let mut sources = Sources::new();

        let name_v = self.w.required(&root, "name", "the service's name")?;
        let name = self.w.name(name_v, "name")?;
        sources.insert("name".into(), self.source(&name_v.span(), "name"));
        let kind = match root.get("type") {
            None => ServiceType::Userdef,
            Some(v) => self.kind(v)?,
        };
        let group = match root.get("group") {
            None => None,
            Some(v) => {
                sources.insert("group".into(), self.source(&v.span(), "group"));
                Some(self.w.int(v, "group", 1, MAX_GROUP)?)
            }
        };
        let active_v = self.w.required(
            &root,
            "active",
            "the node that runs the service first, e.g. \"alpha\"",
        )?;
        let active = self.node(active_v, "active")?;
        let standby = self.standby(&root, &active)?;
        let nodes: Vec<String> = std::iter::once(active.clone())
            .chain(standby.iter().cloned())
            .collect();

        let ips = self.ips(&root, &nodes, &mut sources)?;
        let volumes = self.volumes(&root, &nodes, &mut sources)?;
        let storage_ping = match root.get("storage_ping") {
            None => None,
            Some(v) => Some(self.storage_ping(v)?),
        };

        let agent = self.argv(&root, "agent")?;
        let start = self.argv(&root, "start")?;
        let stop = self.argv(&root, "stop")?;
        let status = self.argv(&root, "status")?;
        self.scripts_together(&root)?;
        let status_codes = match root.get("status_codes") {
            None => StatusCodes::guess(status.as_deref()),
            Some(v) => self.status_codes(v)?,
        };

        let timeout = |key: &str| match root.get(key) {
            None => Ok(DEFAULT_TIMEOUT),
            Some(v) => self
                .w
                .duration(v, key, MIN_TIMEOUT..=MAX_TIMEOUT, TIME_EXAMPLES),
        };
        let start_timeout = timeout("start_timeout")?;
        let stop_timeout = timeout("stop_timeout")?;
        let resource_release_timeout = timeout("resource_release_timeout")?;
        let check_interval = match root.get("check_interval") {
            None => DEFAULT_CHECK_INTERVAL,
            Some(v) => self.w.duration(
                v,
                "check_interval",
                MIN_CHECK_INTERVAL..=MAX_CHECK_INTERVAL,
                ["\"5s\"", "\"1m\""],
            )?,
        };
        let count = |key: &str, default: u32, range: RangeInclusive<u32>| match root.get(key) {
            None => Ok(default),
            Some(v) => self.w.int(v, key, *range.start(), *range.end()),
        };
        let check_tko = count("check_tko", DEFAULT_CHECK_TKO, 1..=MAX_CHECK_TKO)?;
        let restart_times = count(
            "restart_times",
            DEFAULT_RESTART_TIMES,
            0..=MAX_RESTART_TIMES,
        )?;
        let migration_threshold = match root.get("migration_threshold") {
            None => None,
            Some(v) => Some(
                self.w
                    .int(v, "migration_threshold", 1, MAX_MIGRATION_THRESHOLD)?,
            ),
        };
        let long = |key: &str, min: Duration| match root.get(key) {
            None => Ok(None),
            Some(v) => self
                .w
                .duration(v, key, min..=MAX_FAILURE_TIMEOUT, ["\"10m\"", "\"1h\""])
                .map(Some),
        };
        let failure_timeout = long("failure_timeout", MIN_FAILURE_TIMEOUT)?;
        let switchback_stable = long("switchback_stable", Duration::ZERO)?.unwrap_or_default();
        let detection = check_interval.saturating_mul(check_tko);
        if detection >= start_timeout {
            let key = ["check_tko", "check_interval", "start_timeout"]
                .into_iter()
                .find(|k| root.get(k).is_some())
                .unwrap_or("check_interval");
            return Err(self.w.err(
                &root.key_span(key),
                key,
                format!(
                    "check_interval x check_tko ({} x {check_tko} = {}) must be shorter than start_timeout ({}): a started service must get all its checks before its start times out; lower check_interval or check_tko, or raise start_timeout",
                    show(check_interval),
                    show(detection),
                    show(start_timeout)
                ),
            ));
        }

        let flag = |key: &str| match root.get(key) {
            None => Ok(false),
            Some(v) => self.w.boolean(v, key),
        };
        let switchback = flag("switchback")?;
        let onstart = flag("onstart")?;
        let force_reboot = flag("force_reboot")?;

        if ips.is_empty() && volumes.is_empty() && start.is_none() {
            return Err(self.w.err(
                &name_v.span(),
                "name",
                format!(
                    "service `{name}` protects nothing; give it at least one [[ip]], one [[volume]], or start, stop and status scripts"
                ),
            ));
        }

        let mut service = ServiceConfig {
            file: self.w.file.to_path_buf(),
            name,
            kind,
            group,
            active,
            standby,
            ips,
            volumes,
            storage_ping,
            agent,
            start,
            stop,
            status,
            start_timeout,
            stop_timeout,
            resource_release_timeout,
            check_interval,
            check_tko,
            restart_times,
            switchback,
            migration_threshold,
            failure_timeout,
            switchback_stable,
            onstart,
            force_reboot,
            status_codes,
            hash: 0,
            sources,
        };
        service.hash = canonical_hash(&Canon::from(&service));
        Ok(service)
    }

    fn kind(&self, v: &Value<'_>) -> Result<ServiceType, ConfigError> {
        let allowed: Vec<&str> = ServiceType::ALL.iter().map(|t| t.as_str()).collect();
        let allowed = format!("allowed {}", allowed.join(", "));
        let text = self
            .w
            .string(v, "type", &format!("a service type, {allowed}"))?;
        ServiceType::from_name(text).ok_or_else(|| {
            let hint = if ServiceType::from_name(&text.to_ascii_uppercase()).is_some() {
                " (in capitals)"
            } else {
                ""
            };
            self.w.err(
                &v.span(),
                "type",
                format!("unknown service type `{}`; {allowed}{hint}", clip(text)),
            )
        })
    }

    /// A node name declared in the cluster config.
    fn node(&self, v: &Value<'_>, field: &str) -> Result<String, ConfigError> {
        let name = self
            .w
            .string(v, field, "a node name in quotes, e.g. \"alpha\"")?;
        self.w
            .declared(&v.span(), name, field, &self.cluster.nodes)?;
        Ok(name.to_owned())
    }

    fn standby(&self, root: &Section<'_, '_>, active: &str) -> Result<Vec<String>, ConfigError> {
        let example = "e.g. standby = [\"beta\"]";
        let v = self.w.required(
            root,
            "standby",
            &format!("the nodes that take the service over, in order of preference, {example}"),
        )?;
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                "standby",
                format!(
                    "expected a list of node names in order of preference, {example}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.w.err(
                &v.span(),
                "standby",
                format!("at least one standby node is required, {example}"),
            ));
        }
        let mut standby: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("standby[{i}]");
            let node = self.node(item, &field)?;
            if node == active {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "`{node}` is the active node; list the other nodes that take the service over"
                    ),
                ));
            }
            if let Some(j) = standby.iter().position(|n| *n == node) {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!("`{node}` is already standby[{j}]; list each node once"),
                ));
            }
            standby.push(node);
        }
        Ok(standby)
    }

    fn ips(
        &self,
        root: &Section<'_, '_>,
        nodes: &[String],
        sources: &mut Sources,
    ) -> Result<Vec<FloatingIp>, ConfigError> {
        let mut ips: Vec<FloatingIp> = Vec::new();
        // The [[ip]] entry each address came from.
        let mut entry_of: Vec<usize> = Vec::new();
        for (i, sec) in self
            .w
            .optional_tables(root, "ip", MAX_FLOATING_IPS)?
            .into_iter()
            .enumerate()
        {
            self.w.only(&sec, IP_KEYS)?;
            let field = sec.field("address");
            let addr_v = self.w.required(
                &sec,
                "address",
                "address/prefix, e.g. \"192.0.2.100/24\", or a range \"192.0.2.100/24~192.0.2.109/24\"",
            )?;
            let text = self
                .w
                .string(addr_v, &field, "address/prefix, e.g. \"192.0.2.100/24\"")?;
            let (addrs, prefix) =
                parse_floating(text).map_err(|m| self.w.err(&addr_v.span(), &field, m))?;
            let nics_v = self.w.required(
                &sec,
                "nics",
                "the interfaces that may hold it on each node, e.g. nics = { alpha = [\"eth0\"], beta = [\"eth0\"] }",
            )?;
            let nics = self.per_node(
                nics_v,
                &sec.field("nics"),
                nodes,
                "a list of interface names",
                "e.g. nics = { alpha = [\"eth0\", \"bond0.100\"], beta = [\"eth1\"] }",
                |_, v, f| self.nic_list(v, f),
            )?;
            for addr in addrs {
                if let Some(k) = ips.iter().position(|ip| ip.addr == addr) {
                    let j = entry_of.get(k).copied().unwrap_or(i);
                    return Err(self.w.err(
                        &addr_v.span(),
                        &field,
                        format!("{addr} is already a floating IP of this service (ip[{j}]); list each address once"),
                    ));
                }
                if ips.len() == MAX_FLOATING_IPS {
                    return Err(self.w.err(
                        &addr_v.span(),
                        &field,
                        format!("at most {MAX_FLOATING_IPS} floating IPs are allowed in one service, ranges counted address by address"),
                    ));
                }
                sources.insert(
                    format!("ips[{}]", ips.len()),
                    self.source(&addr_v.span(), &field),
                );
                entry_of.push(i);
                ips.push(FloatingIp {
                    addr,
                    prefix,
                    nics: nics.clone(),
                });
            }
        }
        Ok(ips)
    }

    fn nic_list(&self, v: &Value<'_>, field: &str) -> Result<Vec<String>, ConfigError> {
        let example = "e.g. [\"eth0\", \"bond0.100\"]";
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "expected a list of interface names in order of preference, {example}; found {}",
                    describe(v.get_ref())
                ),
            ));
        };
        if items.is_empty() {
            return Err(self.w.err(
                &v.span(),
                field,
                format!("the list is empty; give at least one interface, {example}"),
            ));
        }
        let mut nics: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{field}[{i}]");
            if i == MAX_NICS {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!("at most {MAX_NICS} interfaces per node"),
                ));
            }
            let nic = self
                .w
                .string(item, &field, "an interface name, e.g. \"eth0\"")?;
            if !valid_ifname(nic) {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "`{}` is not a valid interface name; use 1 to {MAX_IFNAME_LEN} characters without spaces, `/` or `:`, e.g. \"eth0\", \"bond0\", \"eth0.100\" (no alias label is needed: floating IPs are added as secondary addresses)",
                        clip(nic)
                    ),
                ));
            }
            if let Some(j) = nics.iter().position(|n| n == nic) {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!("`{nic}` is already listed at [{j}]; list each interface once"),
                ));
            }
            nics.push(nic.to_owned());
        }
        Ok(nics)
    }

    /// A table of node = value with an entry for each node of the service
    /// and none for other nodes; `each` checks one value.
    fn per_node<T>(
        &self,
        v: &Value<'_>,
        field: &str,
        nodes: &[String],
        what: &str,
        example: &str,
        mut each: impl FnMut(&str, &Value<'_>, &str) -> Result<T, ConfigError>,
    ) -> Result<BTreeMap<String, T>, ConfigError> {
        let table = self.w.section(
            v,
            field.to_owned(),
            &format!("a table of node = {what}, {example}"),
        )?;
        let mut out = BTreeMap::new();
        for (key, value) in table.entries() {
            let node = key.get_ref().as_ref();
            let field = table.field(node);
            self.w
                .declared(&key.span(), node, &field, &self.cluster.nodes)?;
            if !nodes.iter().any(|n| n == node) {
                return Err(self.w.err(
                    &key.span(),
                    &field,
                    format!(
                        "`{node}` is not a node of this service; its nodes are {} (active, then standby)",
                        nodes.join(", ")
                    ),
                ));
            }
            out.insert(node.to_owned(), each(node, value, &field)?);
        }
        if let Some(missing) = nodes.iter().find(|n| !out.contains_key(*n)) {
            return Err(self.w.err(
                &v.span(),
                &table.field(missing),
                format!(
                    "node `{missing}` has no entry; every node of the service ({}) needs one, {example}",
                    nodes.join(", ")
                ),
            ));
        }
        Ok(out)
    }

    fn volumes(
        &self,
        root: &Section<'_, '_>,
        nodes: &[String],
        sources: &mut Sources,
    ) -> Result<Vec<Volume>, ConfigError> {
        let mut volumes: Vec<Volume> = Vec::new();
        for (k, sec) in self
            .w
            .optional_tables(root, "volume", MAX_VOLUMES)?
            .into_iter()
            .enumerate()
        {
            self.w.only(&sec, VOLUME_KEYS)?;
            let example = "e.g. device = { alpha = \"/dev/sdb1\", beta = \"/dev/sdc1\" }";
            let dev_v = self.w.required(
                &sec,
                "device",
                &format!("the block device on each node of the service, {example}"),
            )?;
            let devices = self.per_node(
                dev_v,
                &sec.field("device"),
                nodes,
                "device path",
                example,
                |node, v, field| {
                    let path = self
                        .w
                        .string(v, field, "a device path, e.g. \"/dev/sdb1\"")?;
                    if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
                        return Err(self.w.err(
                            &v.span(),
                            field,
                            format!(
                                "`{}` is not an absolute device path; write e.g. \"/dev/sdb1\" or \"/dev/disk/by-uuid/...\"",
                                clip(path)
                            ),
                        ));
                    }
                    let path = PathBuf::from(path);
                    if let Some(j) = volumes.iter().position(|x| x.devices.get(node) == Some(&path))
                    {
                        return Err(self.w.err(
                            &v.span(),
                            field,
                            format!(
                                "{} is already the device of volume[{j}] on node {node}; a device is mounted once",
                                path.display()
                            ),
                        ));
                    }
                    sources.insert(
                        format!("volumes[{k}].devices.{node}"),
                        self.source(&v.span(), field),
                    );
                    Ok(path)
                },
            )?;

            let field = sec.field("mount_point");
            let mp_v = self.w.required(
                &sec,
                "mount_point",
                "the absolute directory it is mounted on, e.g. \"/srv/www\"",
            )?;
            let mount_point = self.mount_point(mp_v, &field)?;
            for (j, other) in volumes.iter().enumerate() {
                if other.mount_point == mount_point {
                    return Err(self.w.err(
                        &mp_v.span(),
                        &field,
                        format!(
                            "{} is already the mount point of volume[{j}]",
                            mount_point.display()
                        ),
                    ));
                }
                if other.mount_point.starts_with(&mount_point) {
                    return Err(self.w.err(
                        &mp_v.span(),
                        &field,
                        format!(
                            "{} holds {}, the mount point of volume[{j}]; volumes are mounted in list order, so list this one before volume[{j}]",
                            mount_point.display(),
                            other.mount_point.display()
                        ),
                    ));
                }
            }
            sources.insert(
                format!("volumes[{k}].mount_point"),
                self.source(&mp_v.span(), &field),
            );

            let fstype = self.fstype(&sec)?;
            let options = match sec.get("options") {
                None => String::new(),
                Some(v) => self.mount_options(v, &sec.field("options"))?,
            };
            let owner = match sec.get("owner") {
                None => None,
                Some(v) => Some(self.unix_name(v, &sec.field("owner"), "user")?),
            };
            let group = match sec.get("group") {
                None => None,
                Some(v) => Some(self.unix_name(v, &sec.field("group"), "group")?),
            };
            let mode = match sec.get("mode") {
                None => None,
                Some(v) => Some(self.mode(v, &sec.field("mode"))?),
            };
            let fsck = match sec.get("fsck") {
                None => true,
                Some(v) => self.w.boolean(v, &sec.field("fsck"))?,
            };
            volumes.push(Volume {
                devices,
                mount_point,
                fstype,
                options,
                owner,
                group,
                mode,
                fsck,
            });
        }
        Ok(volumes)
    }

    fn mount_point(&self, v: &Value<'_>, field: &str) -> Result<PathBuf, ConfigError> {
        let text = self
            .w
            .string(v, field, "an absolute directory, e.g. \"/srv/www\"")?;
        let path = Path::new(text);
        if !path.is_absolute() || text.contains('\0') {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not an absolute directory; write e.g. \"/srv/www\"",
                    clip(text)
                ),
            ));
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` contains `..`; write the directory without it",
                    clip(text)
                ),
            ));
        }
        let clean: PathBuf = path.components().collect();
        if SYSTEM_DIRS.iter().any(|d| clean == Path::new(d))
            || SYSTEM_TREES.iter().any(|d| clean.starts_with(d))
        {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "{} is a system directory; mount a service's volume on a directory of its own, e.g. \"/srv/www\"",
                    clean.display()
                ),
            ));
        }
        Ok(clean)
    }

    fn fstype(&self, sec: &Section<'_, '_>) -> Result<String, ConfigError> {
        let field = sec.field("fstype");
        let allowed = format!("allowed {}", FS_TYPES.join(", "));
        let v = self
            .w
            .required(sec, "fstype", &format!("the file system type, {allowed}"))?;
        let text = self
            .w
            .string(v, &field, &format!("a file system type, {allowed}"))?;
        if !FS_TYPES.contains(&text) {
            return Err(self.w.err(
                &v.span(),
                &field,
                format!("unknown file system type `{}`; {allowed}", clip(text)),
            ));
        }
        Ok(text.to_owned())
    }

    fn mount_options(&self, v: &Value<'_>, field: &str) -> Result<String, ConfigError> {
        let text = self.w.string(
            v,
            field,
            "mount options in one string, e.g. \"noatime,nodev\"",
        )?;
        if text.is_empty() {
            return Ok(String::new());
        }
        let well_formed = text.len() <= MAX_OPTIONS_LEN
            && text
                .split(',')
                .all(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_graphic()));
        if !well_formed {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not a list of mount options; write them comma-separated without spaces, e.g. \"noatime,nodev\", at most {MAX_OPTIONS_LEN} characters",
                    clip(text)
                ),
            ));
        }
        if let Some(bad) = text.split(',').find(|o| REFUSED_OPTIONS.contains(o)) {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "the option `{bad}` is not allowed: a volume is mounted from its device ({} are refused)",
                    REFUSED_OPTIONS.join(", ")
                ),
            ));
        }
        Ok(text.to_owned())
    }

    fn unix_name(&self, v: &Value<'_>, field: &str, what: &str) -> Result<String, ConfigError> {
        let name = self
            .w
            .string(v, field, &format!("a unix {what} name, e.g. \"www-data\""))?;
        if !valid_unix_name(name) {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not a valid {what} name; use 1 to 32 characters from A-Z a-z 0-9 _ . - not starting with -",
                    clip(name)
                ),
            ));
        }
        Ok(name.to_owned())
    }

    fn mode(&self, v: &Value<'_>, field: &str) -> Result<u32, ConfigError> {
        let hint =
            "write the permission bits in octal as a string of 3 or 4 digits 0-7, e.g. \"0750\"";
        let octal = |digits: &str| u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777);
        let mode = match v.get_ref() {
            DeValue::String(s)
                if (3..=4).contains(&s.len()) && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) =>
            {
                octal(s)
            }
            DeValue::String(s) => {
                return Err(self.w.err(
                    &v.span(),
                    field,
                    format!("`{}` is not an octal mode; {hint}", clip(s)),
                ));
            }
            DeValue::Integer(i) if i.radix() == 8 => octal(i.as_str()),
            DeValue::Integer(i) => {
                return Err(self.w.err(
                    &v.span(),
                    field,
                    format!(
                        "a bare {} is read as a decimal number; {hint}",
                        clip(i.as_str())
                    ),
                ));
            }
            other => {
                return Err(self.w.err(
                    &v.span(),
                    field,
                    format!("expected a mode; {hint}; found {}", describe(other)),
                ));
            }
        };
        mode.ok_or_else(|| {
            self.w.err(
                &v.span(),
                field,
                format!("the mode is out of range; {hint}, at most 7777"),
            )
        })
    }

    fn storage_ping(&self, v: &Value<'_>) -> Result<IpAddr, ConfigError> {
        let field = "storage_ping";
        let text = self.w.string(
            v,
            field,
            "the storage array's IP address, e.g. \"198.51.100.10\"",
        )?;
        let Ok(ip) = text.parse::<IpAddr>() else {
            return Err(self.w.err(
                &v.span(),
                field,
                format!(
                    "`{}` is not an IP address; write e.g. \"198.51.100.10\" or \"2001:db8::10\"",
                    clip(text)
                ),
            ));
        };
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            return Err(self.w.err(
                &v.span(),
                field,
                format!("{ip} cannot be pinged as a storage array; write the array's own address"),
            ));
        }
        Ok(ip)
    }

    /// An argument vector: an array of strings, the first an absolute path.
    fn argv(&self, root: &Section<'_, '_>, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(v) = root.get(key) else {
            return Ok(None);
        };
        let items = match v.get_ref() {
            DeValue::Array(items) => items,
            DeValue::String(s) => {
                return Err(self.w.err(
                    &v.span(),
                    key,
                    format!(
                        "write the command as an array of strings, e.g. {key} = {}; it is run directly, never through a shell, so each argument is its own string",
                        suggest_argv(s, key)
                    ),
                ));
            }
            other => {
                return Err(self.w.err(
                    &v.span(),
                    key,
                    format!(
                        "expected a command as an array of strings, e.g. {key} = [\"/etc/hacluster/scripts/app\", \"{key}\"]; found {}",
                        describe(other)
                    ),
                ));
            }
        };
        if items.is_empty() {
            return Err(self.w.err(
                &v.span(),
                key,
                format!(
                    "the command is empty; write at least the program's absolute path, e.g. {key} = [\"/etc/hacluster/scripts/app\", \"{key}\"]"
                ),
            ));
        }
        let mut argv = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let field = format!("{key}[{i}]");
            if i == MAX_ARGS {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!("at most {MAX_ARGS} arguments, the program included"),
                ));
            }
            let arg = match item.get_ref() {
                DeValue::String(s) => s,
                DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                    return Err(self.w.err(
                        &item.span(),
                        &field,
                        format!(
                            "expected a string argument, found {}; quote it",
                            describe(item.get_ref())
                        ),
                    ));
                }
                other => {
                    return Err(self.w.err(
                        &item.span(),
                        &field,
                        format!("expected a string argument, found {}", describe(other)),
                    ));
                }
            };
            if arg.contains('\0') || arg.len() > MAX_ARG_LEN {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "an argument may not contain a NUL character or be longer than {MAX_ARG_LEN} bytes"
                    ),
                ));
            }
            if i == 0 && (!arg.starts_with('/') || arg.ends_with('/')) {
                return Err(self.w.err(
                    &item.span(),
                    &field,
                    format!(
                        "`{}` is not an absolute path to a program; programs are not looked up in PATH, write e.g. \"/usr/local/sbin/{}\"",
                        clip(arg),
                        clip(arg.trim_matches('/'))
                    ),
                ));
            }
            argv.push(arg.to_string());
        }
        Ok(Some(argv))
    }

    /// `status_codes`: "lsb" or "ocf".
    fn status_codes(&self, v: &Value<'_>) -> Result<StatusCodes, ConfigError> {
        let text = self.w.string(v, "status_codes", "\"lsb\" or \"ocf\"")?;
        match text {
            "lsb" => Ok(StatusCodes::Lsb),
            "ocf" => Ok(StatusCodes::Ocf),
            other => Err(self.w.err(
                &v.span(),
                "status_codes",
                format!(
                    "`{}` is not a convention; write \"lsb\" (an init script's status: 1, 2 and 3 mean not running) or \"ocf\" (a resource agent's monitor: 7 means not running, 1 to 6 are errors)",
                    clip(other)
                ),
            )),
        }
    }

    /// `start`, `stop` and `status` come together: a stop only counts once a
    /// status probe says the application is not running.
    fn scripts_together(&self, root: &Section<'_, '_>) -> Result<(), ConfigError> {
        let keys = ["start", "stop", "status"];
        let given = keys.iter().find(|k| root.get(k).is_some());
        let missing = keys.iter().find(|k| root.get(k).is_none());
        if let (Some(given), Some(missing)) = (given, missing) {
            return Err(self.w.err(
                &root.key_span(given),
                missing,
                format!(
                    "`{given}` is given, so `{missing}` is required too: a service run by scripts needs start, stop and status (a stop counts only when status then says the application is not running)"
                ),
            ));
        }
        Ok(())
    }
}

/// A Linux interface name: 1 to 15 printable characters, no `/` or `:`,
/// not `.` or `..`.
fn valid_ifname(s: &str) -> bool {
    (1..=MAX_IFNAME_LEN).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// The array the operator probably meant by a command written as a string.
fn suggest_argv(s: &str, key: &str) -> String {
    let words: Vec<String> = s.split_whitespace().map(|w| format!("{w:?}")).collect();
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" /._-=,:+@%".contains(&b));
    if words.is_empty() || !plain || s.len() > 80 {
        format!("[\"/etc/hacluster/scripts/app\", \"{key}\"]")
    } else {
        format!("[{}]", words.join(", "))
    }
}

/// Parses a floating IP entry: `address/prefix`, or a range
/// `first/prefix~last/prefix` (or `first~last/prefix`) of at most
/// [`MAX_RANGE`] addresses within one subnet. The message says what is wrong.
fn parse_floating(text: &str) -> Result<(Vec<IpAddr>, u8), String> {
    let example = "write address/prefix, e.g. \"192.0.2.100/24\" or \"2001:db8::100/64\", or a range \"192.0.2.100/24~192.0.2.109/24\"";
    let side = |s: &str| -> Result<(IpAddr, Option<u8>), String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let Ok(addr) = addr.parse::<IpAddr>() else {
            return Err(format!("`{}` is not an IP address; {example}", clip(addr)));
        };
        let prefix = match prefix {
            None => None,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => {
                    return Err(format!("`/{}` is not a prefix length; {example}", clip(p)));
                }
            },
        };
        Ok((addr, prefix))
    };
    let (first, last) = match text.split_once('~') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let (a, pa) = side(first)?;
    let (b, pb) = match last {
        None => (a, pa),
        Some(last) => side(last)?,
    };
    if a.is_ipv4() != b.is_ipv4() {
        return Err(format!(
            "a range stays in one address family; {a} is {} but {b} is {}",
            ip_family(a.is_ipv4()),
            ip_family(b.is_ipv4())
        ));
    }
    let prefix = match (pa, pb) {
        (Some(p), Some(q)) if p != q => {
            return Err(format!(
                "both ends of a range need the same prefix length; found /{p} and /{q}"
            ));
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => {
            return Err(format!(
                "`{}` has no prefix length; {example} (a netmask of 255.255.255.0 is /24)",
                clip(text)
            ));
        }
    };
    let bits: u8 = if a.is_ipv4() { 32 } else { 128 };
    if prefix == 0 || prefix > bits {
        return Err(format!(
            "prefix length /{prefix} is out of range; allowed /1 to /{bits} for {}",
            ip_family(a.is_ipv4())
        ));
    }
    let (lo, hi) = (as_u128(a), as_u128(b));
    if lo > hi {
        return Err(format!("a range must go upwards, but {a} comes after {b}"));
    }
    let span = hi - lo;
    if span >= MAX_RANGE as u128 {
        return Err(format!(
            "the range {a}~{b} holds {} addresses; at most {MAX_RANGE} are allowed in one range",
            span.saturating_add(1)
        ));
    }
    let host_bits = u32::from(bits - prefix);
    let network = |x: u128| x.checked_shr(host_bits).unwrap_or(0);
    if network(lo) != network(hi) {
        return Err(format!(
            "{a} and {b} are not in the same /{prefix} network; a range stays within one subnet"
        ));
    }
    let mut addrs = Vec::new();
    for x in lo..=hi {
        let ip = from_u128(x, a.is_ipv4());
        check_host(ip, prefix)?;
        addrs.push(ip);
    }
    Ok((addrs, prefix))
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(x: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(x).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(x))
    }
}

/// Refuses an address no node can hold for clients.
fn check_host(ip: IpAddr, prefix: u8) -> Result<(), String> {
    let what = if ip.is_unspecified() {
        Some("the unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(format!("{ip} cannot be a floating IP: it is {what}"));
    }
    if let IpAddr::V4(v4) = ip {
        if v4.is_broadcast() {
            return Err(format!(
                "{ip} cannot be a floating IP: it is the broadcast address"
            ));
        }
        if prefix <= 30 {
            let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
            let host = u32::from(v4) & host_mask;
            let net = Ipv4Addr::from(u32::from(v4) & !host_mask);
            if host == 0 {
                return Err(format!(
                    "{ip} is the network address of {net}/{prefix}; choose a host address"
                ));
            }
            if host == host_mask {
                return Err(format!(
                    "{ip} is the broadcast address of {net}/{prefix}; choose a host address"
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Hash

/// The canonical form hashed into [`ServiceConfig::hash`].
#[derive(Serialize)]
struct Canon<'a> {
    name: &'a str,
    kind: &'static str,
    group: Option<u32>,
    active: &'a str,
    standby: &'a [String],
    ips: Vec<(String, &'a BTreeMap<String, Vec<String>>)>,
    volumes: Vec<CanonVolume<'a>>,
    storage_ping: Option<String>,
    agent: Option<&'a [String]>,
    start: Option<&'a [String]>,
    stop: Option<&'a [String]>,
    status: Option<&'a [String]>,
    start_timeout_ns: u128,
    stop_timeout_ns: u128,
    resource_release_timeout_ns: u128,
    check_interval_ns: u128,
    check_tko: u32,
    restart_times: u32,
    switchback: bool,
    onstart: bool,
    force_reboot: bool,
    /// Left out for LSB, so the hash of a file without the key is what it
    /// was before the key existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    status_codes: Option<&'static str>,
    /// The failure accounting keys, left out when not given (zero for
    /// `switchback_stable`), so that files without them hash as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    migration_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_timeout_ns: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    switchback_stable_ns: Option<u128>,
}

#[derive(Serialize)]
struct CanonVolume<'a> {
    devices: BTreeMap<&'a str, String>,
    mount_point: String,
    fstype: &'a str,
    options: &'a str,
    owner: Option<&'a str>,
    group: Option<&'a str>,
    mode: Option<u32>,
    fsck: bool,
}

impl<'a> From<&'a ServiceConfig> for Canon<'a> {
    fn from(s: &'a ServiceConfig) -> Self {
        Canon {
            name: &s.name,
            kind: s.kind.as_str(),
            group: s.group,
            active: &s.active,
            standby: &s.standby,
            ips: s.ips.iter().map(|ip| (ip.to_string(), &ip.nics)).collect(),
            volumes: s
                .volumes
                .iter()
                .map(|v| CanonVolume {
                    devices: v
                        .devices
                        .iter()
                        .map(|(k, d)| (k.as_str(), d.to_string_lossy().into_owned()))
                        .collect(),
                    mount_point: v.mount_point.to_string_lossy().into_owned(),
                    fstype: &v.fstype,
                    options: &v.options,
                    owner: v.owner.as_deref(),
                    group: v.group.as_deref(),
                    mode: v.mode,
                    fsck: v.fsck,
                })
                .collect(),
            storage_ping: s.storage_ping.map(|ip| ip.to_string()),
            agent: s.agent.as_deref(),
            start: s.start.as_deref(),
            stop: s.stop.as_deref(),
            status: s.status.as_deref(),
            start_timeout_ns: s.start_timeout.as_nanos(),
            stop_timeout_ns: s.stop_timeout.as_nanos(),
            resource_release_timeout_ns: s.resource_release_timeout.as_nanos(),
            check_interval_ns: s.check_interval.as_nanos(),
            check_tko: s.check_tko,
            restart_times: s.restart_times,
            switchback: s.switchback,
            onstart: s.onstart,
            force_reboot: s.force_reboot,
            status_codes: (s.status_codes == StatusCodes::Ocf).then_some("ocf"),
            migration_threshold: s.migration_threshold,
            failure_timeout_ns: s.failure_timeout.map(|d| d.as_nanos()),
            switchback_stable_ns: (!s.switchback_stable.is_zero())
                .then_some(s.switchback_stable.as_nanos()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toml_walk::testing::{assert_at, line_of, replace_line, replace_value};
    use std::sync::LazyLock;

    const CLUSTER: &str = include_str!("../../etc/cluster.toml");
    const WWW: &str = include_str!("../../etc/services/www.toml");
    const VIP: &str = include_str!("../../etc/services/vip.toml");
    const FILE: &str = "/etc/hacluster/services/app.toml";

    /// The sample cluster: nodes alpha and beta.
    static SAMPLE_CLUSTER: LazyLock<ClusterConfig> = LazyLock::new(|| {
        ClusterConfig::parse(CLUSTER, Path::new("/etc/hacluster/cluster.toml")).unwrap()
    });
    /// The sample cluster with a third node, gamma.
    static CLUSTER3: LazyLock<ClusterConfig> = LazyLock::new(|| {
        let text = CLUSTER
            .replace(
                "domain = 2\n",
                "domain = 2\n\n[[node]]\nname = \"gamma\"\ndomain = 3\n",
            )
            .replace(
                "beta = \"192.168.10.2:5405\" }",
                "beta = \"192.168.10.2:5405\", gamma = \"192.168.10.3:5405\" }",
            );
        ClusterConfig::parse(&text, Path::new("/etc/hacluster/cluster.toml")).unwrap()
    });

    const BASE: &str = r#"
name = "app"
active = "alpha"
standby = ["beta"]
start = ["/etc/hacluster/scripts/app", "start"]
stop = ["/etc/hacluster/scripts/app", "stop"]
status = ["/etc/hacluster/scripts/app", "status"]

[[ip]]
address = "192.0.2.10/24"
nics = { alpha = ["eth0"], beta = ["eth0"] }

[[volume]]
device = { alpha = "/dev/sdb1", beta = "/dev/sdb1" }
mount_point = "/srv/app"
fstype = "xfs"
"#;

    fn parse(text: &str) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::parse(text, Path::new(FILE), &SAMPLE_CLUSTER)
    }

    fn parse3(text: &str) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::parse(text, Path::new(FILE), &CLUSTER3)
    }

    fn err_of(r: Result<ServiceConfig, ConfigError>, text: &str) -> ConfigError {
        match r {
            Ok(s) => panic!("accepted: {s:?}\n{text}"),
            Err(e) => e,
        }
    }

    fn err(text: &str) -> ConfigError {
        err_of(parse(text), text)
    }

    /// Asserts the error is on the line holding `needle`, about `field`.
    fn check(text: &str, needle: &str, field: &str) -> ConfigError {
        assert_at(&err(text), line_of(text, needle), field)
    }

    /// BASE with `extra` root keys after `standby`.
    fn top(extra: &str) -> String {
        BASE.replace(
            "standby = [\"beta\"]\n",
            &format!("standby = [\"beta\"]\n{extra}\n"),
        )
    }

    /// BASE with the first `from` replaced by `to`.
    fn with(from: &str, to: &str) -> String {
        assert!(BASE.contains(from), "{from}");
        BASE.replacen(from, to, 1)
    }

    fn addr(a: &str) -> String {
        with("\"192.0.2.10/24\"", &format!("{a:?}"))
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("haschema-svc-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn www_sample_parses() {
        let s = parse(WWW).unwrap();
        assert_eq!(s.name, "www");
        assert_eq!(s.kind, ServiceType::Www);
        assert_eq!(s.group, None);
        assert_eq!(s.nodes(), ["alpha", "beta"]);
        assert_eq!(s.ips.len(), 1);
        let ip = &s.ips[0];
        assert_eq!(ip.to_string(), "192.0.2.100/24");
        assert_eq!(ip.nics["alpha"], ["eth0", "bond0.100"]);
        assert_eq!(ip.nics["beta"], ["eth1"]);
        let v = &s.volumes[0];
        assert_eq!(v.devices["beta"], PathBuf::from("/dev/sdc1"));
        assert_eq!(v.mount_point, PathBuf::from("/srv/www"));
        assert_eq!(
            (v.fstype.as_str(), v.options.as_str()),
            ("ext4", "noatime,nodev,nosuid")
        );
        assert_eq!(v.owner.as_deref(), Some("www-data"));
        assert_eq!(v.group.as_deref(), Some("www-data"));
        assert_eq!(v.mode, Some(0o750));
        assert!(v.fsck);
        assert_eq!(s.storage_ping, Some("198.51.100.10".parse().unwrap()));
        assert_eq!(
            s.agent.as_ref().unwrap()[0],
            "/usr/lib/hacluster/agents/www"
        );
        assert_eq!(
            s.start.as_deref(),
            Some(&["/etc/hacluster/scripts/www".to_owned(), "start".to_owned()][..])
        );
        assert!(s.stop.is_some() && s.status.is_some());
        assert_eq!(s.start_timeout, Duration::from_secs(60));
        assert_eq!(s.stop_timeout, Duration::from_secs(60));
        assert_eq!(s.resource_release_timeout, Duration::from_secs(30));
        assert_eq!(s.check_interval, Duration::from_secs(5));
        assert_eq!((s.check_tko, s.restart_times), (2, 1));
        assert_eq!(s.detection_time(), Duration::from_secs(10));
        assert!(s.onstart && !s.switchback && !s.force_reboot);
        assert_eq!(s.migration_threshold, Some(3));
        assert_eq!(s.failure_timeout, Some(Duration::from_secs(3600)));
        assert_eq!(s.switchback_stable, Duration::ZERO);
        assert_eq!(s.file, PathBuf::from(FILE));
        let src = &s.sources["ips[0]"];
        assert_eq!(
            (src.field.as_str(), src.line),
            (
                "ip[0].address",
                line_of(WWW, "address = \"192.0.2.100/24\"")
            )
        );
    }

    #[test]
    fn minimal_sample_takes_the_defaults() {
        let s = parse(VIP).unwrap();
        assert_eq!((s.name.as_str(), s.kind), ("vip", ServiceType::Userdef));
        assert_eq!(s.nodes(), ["alpha", "beta"]);
        assert_eq!(s.ips[0].to_string(), "192.0.2.200/24");
        assert!(s.volumes.is_empty() && s.storage_ping.is_none() && s.group.is_none());
        assert!(s.agent.is_none() && s.start.is_none() && s.stop.is_none() && s.status.is_none());
        assert_eq!(
            (s.start_timeout, s.stop_timeout, s.resource_release_timeout),
            (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT)
        );
        assert_eq!(s.check_interval, DEFAULT_CHECK_INTERVAL);
        assert_eq!(
            (s.check_tko, s.restart_times),
            (DEFAULT_CHECK_TKO, DEFAULT_RESTART_TIMES)
        );
        assert!(!s.onstart && !s.switchback && !s.force_reboot);
        assert_eq!((s.migration_threshold, s.failure_timeout), (None, None));
        assert_eq!(s.switchback_stable, Duration::ZERO);
        let b = parse(BASE).unwrap();
        assert_eq!(b.volumes[0].options, "");
        assert_eq!(
            (b.volumes[0].owner.as_ref(), b.volumes[0].mode),
            (None, None)
        );
        assert!(b.volumes[0].fsck);
    }

    #[test]
    fn a_lease_shorter_than_the_longest_stop_is_warned_of() {
        let svc = parse(BASE).unwrap();
        let mut wd = WatchdogConfig::default();
        assert_eq!(svc.lease_warning(&wd), None, "no watchdog");
        wd.enabled = true;
        wd.lease = svc.stop_timeout + svc.resource_release_timeout;
        assert_eq!(svc.lease_warning(&wd), None, "it just fits");
        wd.lease -= Duration::from_secs(1);
        let w = svc.lease_warning(&wd).unwrap();
        assert!(w.starts_with("service app: its longest stop"), "{w}");
        assert!(w.contains("raise the lease"), "{w}");
    }

    #[test]
    fn samples_load_from_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/services");
        let services = load_dir(&dir, &SAMPLE_CLUSTER).unwrap();
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["vip", "www"]);
        assert_eq!(services[1].file, dir.join("www.toml"));
        let one = ServiceConfig::load(&dir.join("vip.toml"), &SAMPLE_CLUSTER).unwrap();
        assert_eq!(one.hash, services[0].hash);
    }

    #[test]
    fn service_types() {
        for t in ServiceType::ALL {
            let s = parse(&top(&format!("type = \"{t}\""))).unwrap();
            assert_eq!(s.kind, t);
            assert_eq!(ServiceType::from_name(t.as_str()), Some(t));
        }
        let e = check(&top("type = \"www\""), "type", "type");
        assert!(e.message.contains("(in capitals)"), "{e}");
        let e = check(&top("type = \"APACHE\""), "type", "type");
        assert!(
            e.message
                .contains("USERDEF, WWW, MYSQL, ORACLE, SYBASE, INFORMIX, DB2, NFS"),
            "{e}"
        );
        check(&top("type = 1"), "type", "type");
    }

    #[test]
    fn display_names_file_line_and_field() {
        let t = top("check_tko = 0");
        let line = line_of(&t, "check_tko");
        assert_eq!(
            err(&t).to_string(),
            format!("{FILE}:{line}:13: check_tko: 0 is out of range; allowed 1 to 100")
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let t = top("onstart = yes");
        let e = err(&t);
        assert_eq!(e.line, Some(line_of(&t, "onstart")));
        assert!(
            e.column.is_some() && e.message.contains("TOML syntax"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = check(&top("script = \"/etc/init.d/x\""), "script", "script");
        assert!(e.message.contains("unknown key `script`"), "{e}");
        assert!(e.message.contains("check_tko"), "{e}");
        check(
            &with("nics = {", "netmask = \"255.255.255.0\"\nnics = {"),
            "netmask",
            "ip[0].netmask",
        );
        check(
            &with("fstype = \"xfs\"", "fstype = \"xfs\"\nuser = \"x\""),
            "user",
            "volume[0].user",
        );
        check(
            &format!("{BASE}\n[service]\nx = 1\n"),
            "[service]",
            "service",
        );
    }

    #[test]
    fn missing_keys() {
        let e = check_at_first(&BASE.replace("name = \"app\"\n", ""), "name");
        assert!(e.message.contains("missing required key `name`"), "{e}");
        check_at_first(&BASE.replace("active = \"alpha\"\n", ""), "active");
        check_at_first(&BASE.replace("standby = [\"beta\"]\n", ""), "standby");
        let t = with("address = \"192.0.2.10/24\"\n", "");
        assert_at(&err(&t), line_of(&t, "[[ip]]"), "ip[0].address");
        let t = with("nics = { alpha = [\"eth0\"], beta = [\"eth0\"] }\n", "");
        assert_at(&err(&t), line_of(&t, "[[ip]]"), "ip[0].nics");
        let t = with(
            "device = { alpha = \"/dev/sdb1\", beta = \"/dev/sdb1\" }\n",
            "",
        );
        assert_at(&err(&t), line_of(&t, "[[volume]]"), "volume[0].device");
        let t = with("mount_point = \"/srv/app\"\n", "");
        assert_at(&err(&t), line_of(&t, "[[volume]]"), "volume[0].mount_point");
        let t = with("fstype = \"xfs\"\n", "");
        assert_at(&err(&t), line_of(&t, "[[volume]]"), "volume[0].fstype");
    }

    /// Asserts a missing root key is reported at the top of the file.
    fn check_at_first(text: &str, field: &str) -> ConfigError {
        assert_at(&err(text), 1, field)
    }

    #[test]
    fn name_rules() {
        let e = check(&with("\"app\"", "\"my app\""), "name", "name");
        assert!(e.message.contains("A-Z a-z 0-9 _ . -"), "{e}");
        check(
            &with("\"app\"", &format!("\"{}\"", "x".repeat(33))),
            "name",
            "name",
        );
        check(&with("\"app\"", "7"), "name", "name");
        let ok = with("\"app\"", &format!("\"{}\"", "a.b_c-9".repeat(4)));
        assert_eq!(parse(&ok).unwrap().name.len(), 28);
    }

    #[test]
    fn group_rules() {
        assert_eq!(parse(&top("group = 500")).unwrap().group, Some(500));
        for bad in ["0", "65536", "\"500\""] {
            let e = check(&top(&format!("group = {bad}")), "group", "group");
            assert!(e.message.contains("allowed 1 to 65535"), "{bad}: {e}");
        }
    }

    #[test]
    fn active_and_standby_rules() {
        let e = check(
            &with("active = \"alpha\"", "active = \"gamma\""),
            "active",
            "active",
        );
        assert!(e.message.contains("declared nodes: alpha, beta"), "{e}");
        check(
            &with("active = \"alpha\"", "active = [\"alpha\"]"),
            "active",
            "active",
        );
        let e = check(&with("[\"beta\"]", "\"beta\""), "standby", "standby");
        assert!(e.message.contains("standby = [\"beta\"]"), "{e}");
        let e = check(&with("[\"beta\"]", "[]"), "standby", "standby");
        assert!(e.message.contains("at least one"), "{e}");
        let e = check(&with("[\"beta\"]", "[\"alpha\"]"), "standby", "standby[0]");
        assert!(e.message.contains("is the active node"), "{e}");
        let e = check(
            &with("[\"beta\"]", "[\"beta\", \"beta\"]"),
            "standby",
            "standby[1]",
        );
        assert!(e.message.contains("already standby[0]"), "{e}");
        check(&with("[\"beta\"]", "[\"delta\"]"), "standby", "standby[0]");
        let three = with("[\"beta\"]", "[\"gamma\", \"beta\"]")
            .replace(
                "beta = [\"eth0\"] }",
                "beta = [\"eth0\"], gamma = [\"eth2\"] }",
            )
            .replace(
                "beta = \"/dev/sdb1\" }",
                "beta = \"/dev/sdb1\", gamma = \"/dev/sdd1\" }",
            );
        let s = parse3(&three).unwrap();
        assert_eq!(s.nodes(), ["alpha", "gamma", "beta"]);
        assert_eq!(s.standby, ["gamma", "beta"]);
    }

    #[test]
    fn floating_ip_forms() {
        let s = parse(&addr("192.0.2.10/24~192.0.2.13/24")).unwrap();
        let got: Vec<String> = s.ips.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "192.0.2.10/24",
                "192.0.2.11/24",
                "192.0.2.12/24",
                "192.0.2.13/24"
            ]
        );
        assert!(s.ips.iter().all(|ip| ip.nics["alpha"] == ["eth0"]));
        assert_eq!(s.sources["ips[3]"].field, "ip[0].address");
        assert_eq!(
            parse(&addr("192.0.2.10~192.0.2.11/24")).unwrap().ips.len(),
            2
        );
        assert_eq!(
            parse(&addr("192.0.2.10/24~192.0.2.10")).unwrap().ips.len(),
            1
        );
        let s = parse(&addr("2001:db8::fe/64~2001:db8::101/64")).unwrap();
        assert_eq!(s.ips.len(), 4);
        assert_eq!(s.ips[3].addr, "2001:db8::101".parse::<IpAddr>().unwrap());
        assert_eq!(s.ips[0].prefix, 64);
        let full = parse(&addr("10.0.0.1/23~10.0.1.0/23")).unwrap();
        assert_eq!(full.ips.len(), MAX_RANGE);
        assert_eq!(parse(&addr("192.0.2.7/32")).unwrap().ips[0].prefix, 32);
        assert_eq!(parse(&addr("2001:db8::1/128")).unwrap().ips[0].prefix, 128);
        assert_eq!(parse(&addr("192.0.2.1/31")).unwrap().ips.len(), 1);
    }

    #[test]
    fn floating_ip_rules() {
        let cases = [
            ("192.0.2.10", "has no prefix length"),
            ("192.0.2.300/24", "is not an IP address"),
            ("eth0-192.0.2.10-255.255.255.0", "is not an IP address"),
            ("192.0.2.10/", "is not a prefix length"),
            ("192.0.2.10/+4", "is not a prefix length"),
            ("192.0.2.10/33", "allowed /1 to /32 for IPv4"),
            ("192.0.2.10/0", "allowed /1 to /32"),
            ("2001:db8::1/129", "allowed /1 to /128 for IPv6"),
            ("192.0.2.0/24", "network address of 192.0.2.0/24"),
            ("192.0.2.255/24", "broadcast address of 192.0.2.0/24"),
            ("255.255.255.255/32", "the broadcast address"),
            ("224.0.0.5/24", "multicast"),
            ("127.0.0.2/8", "loopback"),
            ("0.0.0.0/24", "unspecified"),
            ("::1/128", "loopback"),
            ("192.0.2.10/24~2001:db8::1/64", "one address family"),
            (
                "192.0.2.10/24~192.0.2.12/25",
                "same prefix length; found /24 and /25",
            ),
            ("192.0.2.12/24~192.0.2.10/24", "must go upwards"),
            (
                "10.0.0.1/16~10.0.1.1/16",
                "holds 257 addresses; at most 256",
            ),
            ("2001:db8::/64~2001:db9::/64", "at most 256"),
            ("192.0.2.250/24~192.0.3.2/24", "not in the same /24 network"),
            (
                "192.0.2.250/24~192.0.2.255/24",
                "broadcast address of 192.0.2.0/24",
            ),
            ("192.0.2.1~192.0.2.2~192.0.2.3/24", "is not an IP address"),
        ];
        for (bad, want) in cases {
            let t = addr(bad);
            let e = check(&t, "address", "ip[0].address");
            assert!(e.message.contains(want), "{bad}: {e}");
        }
        check(
            &with("\"192.0.2.10/24\"", "[\"192.0.2.10/24\"]"),
            "address",
            "ip[0].address",
        );
        // The same address twice in one service: in two entries, or overlapping ranges.
        let twice = format!(
            "{BASE}\n[[ip]]\naddress = \"192.0.2.8/24~192.0.2.10/24\"\nnics = {{ alpha = [\"eth0\"], beta = [\"eth0\"] }}\n"
        );
        let e = check(&twice, "192.0.2.8/24~", "ip[1].address");
        assert!(
            e.message
                .contains("192.0.2.10 is already a floating IP of this service (ip[0])"),
            "{e}"
        );
        // At most 256 addresses in all.
        let many = format!(
            "{BASE}\n[[ip]]\naddress = \"10.0.0.1/23~10.0.1.0/23\"\nnics = {{ alpha = [\"eth0\"], beta = [\"eth0\"] }}\n"
        );
        let e = check(&many, "10.0.0.1/23", "ip[1].address");
        assert!(e.message.contains("at most 256 floating IPs"), "{e}");
        let t = top("ip = \"192.0.2.1/24\"").replace(
            "[[ip]]\naddress = \"192.0.2.10/24\"\nnics = { alpha = [\"eth0\"], beta = [\"eth0\"] }\n",
            "",
        );
        let e = check(&t, "ip = ", "ip");
        assert!(e.message.contains("write each ip as a [[ip]] table"), "{e}");
    }

    #[test]
    fn nic_rules() {
        let nics = |n: &str| with("{ alpha = [\"eth0\"], beta = [\"eth0\"] }", n);
        let ok = parse(&nics(
            "{ alpha = [\"bond0.100\", \"enp3s0f1\"], beta = [\"br-lan\", \"eth0.4094\"] }",
        ))
        .unwrap();
        assert_eq!(ok.ips[0].nics["beta"], ["br-lan", "eth0.4094"]);
        let e = check(&nics("{ alpha = [\"eth0\"] }"), "nics", "ip[0].nics.beta");
        assert!(
            e.message
                .contains("every node of the service (alpha, beta)"),
            "{e}"
        );
        let e = check(&nics("[\"eth0\"]"), "nics", "ip[0].nics");
        assert!(e.message.contains("a table of node"), "{e}");
        let e = check(
            &nics("{ alpha = \"eth0\", beta = [\"eth0\"] }"),
            "nics",
            "ip[0].nics.alpha",
        );
        assert!(
            e.message.contains("expected a list of interface names"),
            "{e}"
        );
        let e = check(
            &nics("{ alpha = [], beta = [\"eth0\"] }"),
            "nics",
            "ip[0].nics.alpha",
        );
        assert!(e.message.contains("at least one interface"), "{e}");
        for bad in ["eth0:1", "my nic", "averyveryverylong", "a/b", "", ".."] {
            let t = nics(&format!(
                "{{ alpha = [\"eth0\", {bad:?}], beta = [\"eth0\"] }}"
            ));
            let e = check(&t, "nics", "ip[0].nics.alpha[1]");
            assert!(
                e.message.contains("not a valid interface name"),
                "{bad}: {e}"
            );
        }
        assert!(
            parse(&nics(
                "{ alpha = [\"abcdefghijklmno\"], beta = [\"eth0\"] }"
            ))
            .is_ok()
        );
        let e = check(
            &nics("{ alpha = [\"eth0\", \"eth0\"], beta = [\"eth0\"] }"),
            "nics",
            "ip[0].nics.alpha[1]",
        );
        assert!(e.message.contains("already listed at [0]"), "{e}");
        check(
            &nics("{ alpha = [\"eth0\", 1], beta = [\"eth0\"] }"),
            "nics",
            "ip[0].nics.alpha[1]",
        );
        let e = check(
            &nics("{ alpha = [\"eth0\"], beta = [\"eth0\"], delta = [\"eth0\"] }"),
            "nics",
            "ip[0].nics.delta",
        );
        assert!(e.message.contains("not a declared node"), "{e}");
        let t = nics("{ alpha = [\"eth0\"], beta = [\"eth0\"], gamma = [\"eth0\"] }");
        let e = assert_at(
            &err_of(parse3(&t), &t),
            line_of(&t, "nics"),
            "ip[0].nics.gamma",
        );
        assert!(
            e.message
                .contains("not a node of this service; its nodes are alpha, beta"),
            "{e}"
        );
        let list: Vec<String> = (0..=MAX_NICS).map(|i| format!("\"eth{i}\"")).collect();
        let t = nics(&format!(
            "{{ alpha = [{}], beta = [\"eth0\"] }}",
            list.join(", ")
        ));
        let e = check(&t, "nics", "ip[0].nics.alpha[16]");
        assert!(e.message.contains("at most 16"), "{e}");
    }

    #[test]
    fn volume_device_rules() {
        let dev = |d: &str| with("{ alpha = \"/dev/sdb1\", beta = \"/dev/sdb1\" }", d);
        let e = check(
            &dev("{ alpha = \"/dev/sdb1\" }"),
            "device",
            "volume[0].device.beta",
        );
        assert!(e.message.contains("needs one"), "{e}");
        let e = check(
            &dev("{ alpha = \"sdb1\", beta = \"/dev/sdb1\" }"),
            "device",
            "volume[0].device.alpha",
        );
        assert!(e.message.contains("not an absolute device path"), "{e}");
        check(
            &dev("{ alpha = \"/dev/sdb1\", beta = 1 }"),
            "device",
            "volume[0].device.beta",
        );
        check(&dev("\"/dev/sdb1\""), "device", "volume[0].device");
        let two = format!(
            "{BASE}\n[[volume]]\ndevice = {{ alpha = \"/dev/sdc1\", beta = \"/dev/sdb1\" }}\nmount_point = \"/srv/other\"\nfstype = \"ext4\"\n"
        );
        let e = check(&two, "/dev/sdc1", "volume[1].device.beta");
        assert!(
            e.message
                .contains("already the device of volume[0] on node beta"),
            "{e}"
        );
    }

    #[test]
    fn mount_point_rules() {
        let mp = |m: &str| with("\"/srv/app\"", &format!("{m:?}"));
        assert_eq!(
            parse(&mp("/srv//app/")).unwrap().volumes[0].mount_point,
            PathBuf::from("/srv/app")
        );
        assert_eq!(
            parse(&mp("/var/lib/mysql")).unwrap().volumes[0].mount_point,
            PathBuf::from("/var/lib/mysql")
        );
        for (bad, want) in [
            ("srv/app", "not an absolute directory"),
            ("/srv/../etc", "contains `..`"),
            ("/", "system directory"),
            ("/usr/", "system directory"),
            ("/proc/x", "system directory"),
            ("/run/app", "system directory"),
        ] {
            let e = check(&mp(bad), "mount_point", "volume[0].mount_point");
            assert!(e.message.contains(want), "{bad}: {e}");
        }
        let second = |m: &str| {
            format!(
                "{BASE}\n[[volume]]\ndevice = {{ alpha = \"/dev/sdc1\", beta = \"/dev/sdc1\" }}\nmount_point = \"{m}\"\nfstype = \"ext4\"\n"
            )
        };
        let e = check(
            &second("/srv/app/"),
            "\"/srv/app/\"",
            "volume[1].mount_point",
        );
        assert!(
            e.message.contains("already the mount point of volume[0]"),
            "{e}"
        );
        let e = check(&second("/srv"), "\"/srv\"", "volume[1].mount_point");
        assert!(e.message.contains("list this one before volume[0]"), "{e}");
        assert_eq!(parse(&second("/srv/app/data")).unwrap().volumes.len(), 2);
        assert!(parse(&second("/srv/application")).is_ok());
    }

    #[test]
    fn volume_field_rules() {
        let vol = |extra: &str| with("fstype = \"xfs\"", &format!("fstype = \"xfs\"\n{extra}"));
        let e = check(&with("\"xfs\"", "\"ntfs\""), "fstype", "volume[0].fstype");
        assert!(
            e.message
                .contains("ext4, ext3, ext2, xfs, btrfs, jfs, f2fs"),
            "{e}"
        );
        for fs in FS_TYPES {
            assert_eq!(
                parse(&with("\"xfs\"", &format!("\"{fs}\"")))
                    .unwrap()
                    .volumes[0]
                    .fstype,
                fs
            );
        }
        for bad in ["\"noatime, nodev\"", "\"noatime,,nodev\"", "\",\"", "7"] {
            check(
                &vol(&format!("options = {bad}")),
                "options",
                "volume[0].options",
            );
        }
        let e = check(&vol("options = \"bind\""), "options", "volume[0].options");
        assert!(e.message.contains("`bind` is not allowed"), "{e}");
        assert_eq!(
            parse(&vol(
                "options = \"noatime,data=ordered,context=system_u:object_r:x:s0\""
            ))
            .unwrap()
            .volumes[0]
                .options,
            "noatime,data=ordered,context=system_u:object_r:x:s0"
        );
        check(&vol("owner = \"-x\""), "owner", "volume[0].owner");
        let e = check(&vol("group = \"web group\""), "group", "volume[0].group");
        assert!(e.message.contains("not a valid group name"), "{e}");
        assert_eq!(
            parse(&vol("owner = \"1000\"")).unwrap().volumes[0]
                .owner
                .as_deref(),
            Some("1000")
        );
        for (ok, mode) in [
            ("\"0750\"", 0o750),
            ("\"644\"", 0o644),
            ("\"7777\"", 0o7777),
            ("0o750", 0o750),
        ] {
            assert_eq!(
                parse(&vol(&format!("mode = {ok}"))).unwrap().volumes[0].mode,
                Some(mode),
                "{ok}"
            );
        }
        for (bad, want) in [
            ("750", "read as a decimal number"),
            ("\"0758\"", "not an octal mode"),
            ("\"12345\"", "not an octal mode"),
            ("\"75\"", "not an octal mode"),
            ("0o17777", "out of range"),
            ("true", "expected a mode"),
        ] {
            let e = check(&vol(&format!("mode = {bad}")), "mode", "volume[0].mode");
            assert!(e.message.contains(want), "{bad}: {e}");
        }
        assert!(!parse(&vol("fsck = false")).unwrap().volumes[0].fsck);
        let e = check(&vol("fsck = \"yes\""), "fsck", "volume[0].fsck");
        assert!(e.message.contains("true or false"), "{e}");
        let many: String = (0..=MAX_VOLUMES)
            .map(|i| {
                format!(
                    "\n[[volume]]\ndevice = {{ alpha = \"/dev/v{i}\", beta = \"/dev/v{i}\" }}\nmount_point = \"/srv/v{i}\"\nfstype = \"xfs\"\n"
                )
            })
            .collect();
        let before_volumes = BASE.split("[[volume]]").next().unwrap_or_default();
        let t = format!("{before_volumes}{many}");
        let e = assert_at(&err(&t), line_of(&t, "/dev/v32") - 1, "volume[32]");
        assert!(e.message.contains("at most 32"), "{e}");
    }

    #[test]
    fn storage_ping_rules() {
        let ok = parse(&top("storage_ping = \"2001:db8::10\"")).unwrap();
        assert_eq!(ok.storage_ping, Some("2001:db8::10".parse().unwrap()));
        for bad in [
            "\"array\"",
            "\"224.0.0.1\"",
            "\"0.0.0.0\"",
            "[\"192.0.2.1\"]",
        ] {
            check(
                &top(&format!("storage_ping = {bad}")),
                "storage_ping",
                "storage_ping",
            );
        }
    }

    #[test]
    fn commands_are_argument_vectors() {
        let e = check(
            &with(
                "[\"/etc/hacluster/scripts/app\", \"start\"]",
                "\"/etc/init.d/apache2 start\"",
            ),
            "start",
            "start",
        );
        assert!(
            e.message
                .contains("start = [\"/etc/init.d/apache2\", \"start\"]")
                && e.message.contains("never through a shell"),
            "{e}"
        );
        let e = check(&top("agent = \"/bin/agent | logger\""), "agent", "agent");
        assert!(
            e.message
                .contains("[\"/etc/hacluster/scripts/app\", \"agent\"]"),
            "{e}"
        );
        let e = check(
            &with("[\"/etc/hacluster/scripts/app\", \"stop\"]", "[]"),
            "stop = []",
            "stop",
        );
        assert!(e.message.contains("empty"), "{e}");
        let e = check(
            &with(
                "\"/etc/hacluster/scripts/app\", \"status\"",
                "\"app\", \"status\"",
            ),
            "status",
            "status[0]",
        );
        assert!(e.message.contains("not looked up in PATH"), "{e}");
        check(
            &with(
                "\"/etc/hacluster/scripts/app\", \"status\"",
                "\"/etc/\", \"status\"",
            ),
            "status",
            "status[0]",
        );
        let e = check(&with("\"start\"]", "\"start\", 5]"), "start", "start[2]");
        assert!(e.message.contains("quote it"), "{e}");
        check(
            &with("\"start\"]", "\"start\", [\"x\"]]"),
            "start",
            "start[2]",
        );
        check(&top("agent = 3"), "agent", "agent");
        check(&top("agent = [\"/bin/a\\u0000b\"]"), "agent", "agent[0]");
        let long: Vec<&str> = std::iter::repeat_n("\"x\"", MAX_ARGS).collect();
        let e = check(
            &top(&format!("agent = [\"/bin/a\", {}]", long.join(", "))),
            "agent",
            "agent[256]",
        );
        assert!(e.message.contains("at most 256"), "{e}");
        let s = parse(&top(
            "agent = [\"/usr/lib/hacluster/agents/app\", \"--pid\", \"\", \"a b\"]",
        ))
        .unwrap();
        assert_eq!(
            s.agent.unwrap(),
            ["/usr/lib/hacluster/agents/app", "--pid", "", "a b"]
        );
    }

    #[test]
    fn start_stop_status_come_together() {
        let t = BASE.replace("stop = [\"/etc/hacluster/scripts/app\", \"stop\"]\n", "");
        let e = check(&t, "start = [", "stop");
        assert!(
            e.message
                .contains("`start` is given, so `stop` is required"),
            "{e}"
        );
        let t = BASE
            .replace("start = [\"/etc/hacluster/scripts/app\", \"start\"]\n", "")
            .replace("stop = [\"/etc/hacluster/scripts/app\", \"stop\"]\n", "");
        check(&t, "status = [", "start");
        let none = BASE
            .replace("start = [\"/etc/hacluster/scripts/app\", \"start\"]\n", "")
            .replace("stop = [\"/etc/hacluster/scripts/app\", \"stop\"]\n", "")
            .replace(
                "status = [\"/etc/hacluster/scripts/app\", \"status\"]\n",
                "",
            );
        let s = parse(&none).unwrap();
        assert!(s.start.is_none() && s.stop.is_none() && s.status.is_none());
    }

    #[test]
    fn a_service_protects_something() {
        let t = "name = \"empty\"\nactive = \"alpha\"\nstandby = [\"beta\"]\nagent = [\"/bin/agent\"]\n";
        let e = check(t, "name", "name");
        assert!(e.message.contains("protects nothing"), "{e}");
        let vol_only: String = BASE
            .lines()
            .filter(|l| {
                !l.starts_with("start")
                    && !l.starts_with("stop")
                    && !l.starts_with("status")
                    && !l.starts_with("[[ip]]")
                    && !l.starts_with("address")
                    && !l.starts_with("nics")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let s = parse(&vol_only).unwrap();
        assert!(s.ips.is_empty() && s.volumes.len() == 1);
    }

    #[test]
    fn timing_ranges() {
        for key in ["start_timeout", "stop_timeout", "resource_release_timeout"] {
            for bad in ["\"11s\"", "\"1001s\"", "\"0s\""] {
                let e = check(&top(&format!("{key} = {bad}")), key, key);
                assert!(
                    e.message.contains("allowed 12s to 16m 40s"),
                    "{key} {bad}: {e}"
                );
            }
            let e = check(&top(&format!("{key} = 30")), key, key);
            assert!(
                e.message.contains("write a time with a unit, e.g. \"30s\""),
                "{e}"
            );
            let e = check(&top(&format!("{key} = \"soon\"")), key, key);
            assert!(e.message.contains("e.g. \"30s\" or \"5m\""), "{e}");
        }
        let s = parse(&top(
            "start_timeout = \"12s\"\nstop_timeout = \"1000s\"\nresource_release_timeout = \"2m\"",
        ))
        .unwrap();
        assert_eq!(
            (s.start_timeout, s.stop_timeout, s.resource_release_timeout),
            (
                Duration::from_secs(12),
                Duration::from_secs(1000),
                Duration::from_secs(120)
            )
        );
        for bad in ["\"50ms\"", "\"121s\""] {
            let e = check(
                &top(&format!("check_interval = {bad}")),
                "check_interval",
                "check_interval",
            );
            assert!(e.message.contains("allowed 100ms to 2m"), "{bad}: {e}");
        }
        assert_eq!(
            parse(&top("check_interval = \"1s\""))
                .unwrap()
                .check_interval,
            Duration::from_secs(1)
        );
        for bad in ["0", "101", "\"2\""] {
            let e = check(
                &top(&format!("check_tko = {bad}")),
                "check_tko",
                "check_tko",
            );
            assert!(e.message.contains("allowed 1 to 100"), "{bad}: {e}");
        }
        let e = check(&top("restart_times = 6"), "restart_times", "restart_times");
        assert!(e.message.contains("allowed 0 to 5"), "{e}");
        assert_eq!(parse(&top("restart_times = 5")).unwrap().restart_times, 5);
    }

    #[test]
    fn checks_fit_in_the_start_timeout() {
        // 60s x 5 = 300s is not shorter than the default start_timeout.
        let t = top("check_interval = \"60s\"\ncheck_tko = 5");
        let e = check(&t, "check_tko", "check_tko");
        assert!(
            e.message.contains(
                "check_interval x check_tko (1m x 5 = 5m) must be shorter than start_timeout (5m)"
            ),
            "{e}"
        );
        let t = top("start_timeout = \"12s\"\ncheck_interval = \"12s\"");
        check(&t, "check_interval", "check_interval");
        let t = top("start_timeout = \"12s\"\ncheck_tko = 4");
        check(&t, "check_tko", "check_tko");
        let t = top("start_timeout = \"12s\"\ncheck_interval = \"4s\"\ncheck_tko = 2");
        assert_eq!(parse(&t).unwrap().detection_time(), Duration::from_secs(8));
        let t = top("check_interval = \"100s\"\ncheck_tko = 3\nstart_timeout = \"301s\"");
        assert!(parse(&t).is_ok());
    }

    #[test]
    fn flags() {
        let s = parse(&top(
            "switchback = true\nonstart = true\nforce_reboot = true",
        ))
        .unwrap();
        assert!(s.switchback && s.onstart && s.force_reboot);
        for key in ["switchback", "onstart", "force_reboot"] {
            let e = check(&top(&format!("{key} = \"yes\"")), key, key);
            assert!(e.message.contains("true or false without quotes"), "{e}");
            check(&top(&format!("{key} = 1")), key, key);
        }
    }

    #[test]
    fn failure_accounting_keys() {
        let s = parse(&top(
            "migration_threshold = 100\nfailure_timeout = \"10m\"\nswitchback_stable = \"30s\"",
        ))
        .unwrap();
        assert_eq!(s.migration_threshold, Some(100));
        assert_eq!(s.failure_timeout, Some(Duration::from_secs(600)));
        assert_eq!(s.switchback_stable, Duration::from_secs(30));
        let zero = parse(&top("switchback_stable = \"0s\"")).unwrap();
        assert_eq!(zero.hash, parse(BASE).unwrap().hash, "0s hashes as unset");
        assert_ne!(s.hash, zero.hash, "in the hash");
        for bad in ["0", "101", "\"3\""] {
            let t = top(&format!("migration_threshold = {bad}"));
            let e = check(&t, "migration_threshold", "migration_threshold");
            assert!(e.message.contains("allowed 1 to 100"), "{bad}: {e}");
        }
        for bad in ["\"0s\"", "\"8d\"", "60"] {
            let t = top(&format!("failure_timeout = {bad}"));
            let e = check(&t, "failure_timeout", "failure_timeout");
            assert!(e.message.contains("allowed 1s to 7days"), "{bad}: {e}");
        }
        let t = top("switchback_stable = \"8d\"");
        let e = check(&t, "switchback_stable", "switchback_stable");
        assert!(e.message.contains("allowed 0s to 7days"), "{e}");
    }

    #[test]
    fn status_codes_follow_the_monitor_action_unless_given() {
        let plain = parse(BASE).unwrap();
        assert_eq!(plain.status_codes, StatusCodes::Lsb);
        let monitor = BASE.replace(", \"status\"]", ", \"monitor\"]");
        assert_eq!(parse(&monitor).unwrap().status_codes, StatusCodes::Ocf);
        let given = parse(&top("status_codes = \"ocf\"")).unwrap();
        assert_eq!(given.status_codes, StatusCodes::Ocf);
        assert_ne!(given.hash, plain.hash, "in the hash");
        let lsb = parse(&top("status_codes = \"lsb\"")).unwrap();
        assert_eq!(lsb.hash, plain.hash, "LSB hashes as before the key");
        let e = check(
            &top("status_codes = \"OCF\""),
            "status_codes",
            "status_codes",
        );
        assert!(e.message.contains("\"lsb\""), "{e}");
        check(&top("status_codes = 7"), "status_codes", "status_codes");
    }

    #[test]
    fn hash_ignores_layout_but_not_values() {
        let base = parse(BASE).unwrap().hash;
        let relaid = r#"
# the same content, reordered and reformatted
stop = [ "/etc/hacluster/scripts/app", "stop" ]
status = ['/etc/hacluster/scripts/app', 'status']
standby = ["beta"]
name = "app"
start = ["/etc/hacluster/scripts/app", "start"]
active = "alpha"
type = "USERDEF"
start_timeout = "5m"
check_interval = "3000ms"

[[ip]]
nics = { beta = ["eth0"], alpha = ["eth0"] }
address = "192.0.2.10~192.0.2.10/24"

[[volume]]
mount_point = "/srv//app/"
fstype = "xfs"
fsck = true
device.beta = "/dev/sdb1"
device.alpha = "/dev/sdb1"
"#;
        assert_eq!(parse(relaid).unwrap().hash, base);
        let elsewhere =
            ServiceConfig::parse(BASE, Path::new("/tmp/x.toml"), &SAMPLE_CLUSTER).unwrap();
        assert_eq!(elsewhere.hash, base);
        let changes = [
            ("\"app\"", "\"app2\""),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\ntype = \"WWW\"",
            ),
            ("standby = [\"beta\"]", "standby = [\"beta\"]\ngroup = 1"),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nonstart = true",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nswitchback = true",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nforce_reboot = true",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\ncheck_tko = 2",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nrestart_times = 1",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\ncheck_interval = \"4s\"",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nstart_timeout = \"301s\"",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nstop_timeout = \"301s\"",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nresource_release_timeout = \"301s\"",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nstorage_ping = \"192.0.2.9\"",
            ),
            (
                "standby = [\"beta\"]",
                "standby = [\"beta\"]\nagent = [\"/bin/a\"]",
            ),
            ("\"start\"]", "\"start\", \"-v\"]"),
            ("192.0.2.10/24", "192.0.2.11/24"),
            ("192.0.2.10/24", "192.0.2.10/25"),
            ("alpha = [\"eth0\"]", "alpha = [\"eth1\"]"),
            ("alpha = \"/dev/sdb1\"", "alpha = \"/dev/sdc1\""),
            ("\"/srv/app\"", "\"/srv/app2\""),
            ("\"xfs\"", "\"ext4\""),
            ("fstype = \"xfs\"", "fstype = \"xfs\"\nfsck = false"),
            ("fstype = \"xfs\"", "fstype = \"xfs\"\nmode = \"0700\""),
            ("fstype = \"xfs\"", "fstype = \"xfs\"\nowner = \"x\""),
            ("fstype = \"xfs\"", "fstype = \"xfs\"\ngroup = \"x\""),
            (
                "fstype = \"xfs\"",
                "fstype = \"xfs\"\noptions = \"noatime\"",
            ),
        ];
        for (from, to) in changes {
            assert_ne!(parse(&with(from, to)).unwrap().hash, base, "{from} -> {to}");
        }
        let swapped = with(
            "active = \"alpha\"\nstandby = [\"beta\"]",
            "active = \"beta\"\nstandby = [\"alpha\"]",
        );
        assert_ne!(parse(&swapped).unwrap().hash, base);
    }

    #[test]
    fn load_names_the_file() {
        let missing = std::env::temp_dir().join(format!("haschema-nosvc-{}", std::process::id()));
        let e = ServiceConfig::load(&missing, &SAMPLE_CLUSTER).unwrap_err();
        assert_eq!((e.file.as_path(), e.line), (missing.as_path(), None));
        assert!(e.message.contains("cannot read the service file"), "{e}");
        let e = load_dir(&missing, &SAMPLE_CLUSTER).unwrap_err();
        assert!(
            e.message.contains("cannot read the service directory"),
            "{e}"
        );
    }

    #[test]
    fn load_dir_reads_toml_files_in_name_order() {
        let dir = scratch_dir("order");
        let empty = load_dir(&dir, &SAMPLE_CLUSTER).unwrap();
        assert!(empty.is_empty());
        std::fs::write(dir.join("b.toml"), VIP).unwrap();
        std::fs::write(dir.join("a.toml"), BASE).unwrap();
        std::fs::write(dir.join(".hidden.toml"), "junk").unwrap();
        std::fs::write(dir.join("notes.txt"), "junk").unwrap();
        std::fs::write(dir.join("b.toml~"), "junk").unwrap();
        std::fs::create_dir(dir.join("sub.toml")).unwrap();
        let names: Vec<String> = load_dir(&dir, &SAMPLE_CLUSTER)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["app", "vip"]);
        std::fs::write(dir.join("c.toml"), top("check_tko = 0")).unwrap();
        let e = load_dir(&dir, &SAMPLE_CLUSTER).unwrap_err();
        assert_eq!(e.file, dir.join("c.toml"));
        assert_eq!(e.field.as_deref(), Some("check_tko"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duplicate_names_across_files_name_both() {
        let dir = scratch_dir("dup");
        std::fs::write(dir.join("one.toml"), BASE).unwrap();
        let other = BASE
            .replace("192.0.2.10/24", "192.0.2.20/24")
            .replace("/dev/sdb1", "/dev/sdc1")
            .replace("/srv/app", "/srv/app2");
        std::fs::write(dir.join("two.toml"), &other).unwrap();
        let e = load_dir(&dir, &SAMPLE_CLUSTER).unwrap_err();
        assert_eq!(e.file, dir.join("two.toml"));
        assert_at(&e, line_of(&other, "name"), "name");
        let first = format!(
            "{}:{}",
            dir.join("one.toml").display(),
            line_of(BASE, "name")
        );
        assert!(
            e.message
                .contains(&format!("service name `app` is already used by {first}")),
            "{e}"
        );
        std::fs::write(dir.join("two.toml"), other.replace("\"app\"", "\"app2\"")).unwrap();
        assert_eq!(load_dir(&dir, &SAMPLE_CLUSTER).unwrap().len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A second service named `other` built from BASE with `changes`.
    fn other(changes: &[(&str, &str)]) -> (String, ServiceConfig) {
        let mut t = BASE
            .replace("\"app\"", "\"other\"")
            .replace("192.0.2.10/24", "192.0.2.20/24")
            .replace("/dev/sdb1", "/dev/sdc1")
            .replace("/srv/app", "/srv/other");
        for (from, to) in changes {
            assert!(t.contains(from), "{from}");
            t = t.replacen(from, to, 1);
        }
        let s = ServiceConfig::parse(
            &t,
            Path::new("/etc/hacluster/services/other.toml"),
            &SAMPLE_CLUSTER,
        )
        .unwrap();
        (t, s)
    }

    /// Asserts `second` conflicts with BASE at the line holding `needle`.
    fn conflict_at(second: &(String, ServiceConfig), needle: &str, field: &str) -> ConfigError {
        let first = parse(BASE).unwrap();
        assert!(check_conflicts(std::slice::from_ref(&first)).is_ok());
        let e = check_conflicts(&[first, second.1.clone()]).unwrap_err();
        assert_eq!(e.file, PathBuf::from("/etc/hacluster/services/other.toml"));
        assert_at(&e, line_of(&second.0, needle), field)
    }

    #[test]
    fn services_share_no_floating_ip() {
        assert!(check_conflicts(&[parse(BASE).unwrap(), other(&[]).1]).is_ok());
        let e = conflict_at(
            &other(&[("192.0.2.20/24", "192.0.2.10/25")]),
            "address",
            "ip[0].address",
        );
        assert!(
            e.message.contains(&format!(
                "192.0.2.10 is already a floating IP of service `app` ({FILE}:{})",
                line_of(BASE, "address")
            )),
            "{e}"
        );
        let e = conflict_at(
            &other(&[("192.0.2.20/24", "192.0.2.5/24~192.0.2.12/24")]),
            "address",
            "ip[0].address",
        );
        assert!(
            e.message.contains("192.0.2.10 is already a floating IP"),
            "{e}"
        );
    }

    #[test]
    fn services_share_no_mount_point_or_device() {
        let e = conflict_at(
            &other(&[("/srv/other", "/srv/app/")]),
            "mount_point",
            "volume[0].mount_point",
        );
        assert!(
            e.message
                .contains("/srv/app is already the mount point of a volume of service `app`"),
            "{e}"
        );
        let e = conflict_at(
            &other(&[("/srv/other", "/srv/app/data")]),
            "mount_point",
            "volume[0].mount_point",
        );
        assert!(
            e.message.contains("/srv/app/data is inside /srv/app"),
            "{e}"
        );
        let e = conflict_at(
            &other(&[("/srv/other", "/srv")]),
            "mount_point",
            "volume[0].mount_point",
        );
        assert!(e.message.contains("/srv holds /srv/app"), "{e}");
        assert!(
            check_conflicts(&[
                parse(BASE).unwrap(),
                other(&[("/srv/other", "/srv/application")]).1
            ])
            .is_ok()
        );
        let e = conflict_at(
            &other(&[("beta = \"/dev/sdc1\"", "beta = \"/dev/sdb1\"")]),
            "device",
            "volume[0].device.beta",
        );
        assert!(
            e.message
                .contains("/dev/sdb1 on node beta is already a volume of service `app`"),
            "{e}"
        );
    }

    #[test]
    fn a_group_runs_on_the_same_nodes() {
        let grouped =
            |t: &str| t.replace("standby = [\"beta\"]", "standby = [\"beta\"]\ngroup = 500");
        let first = parse(&grouped(BASE)).unwrap();
        let (t, second) = other(&[("standby = [\"beta\"]", "standby = [\"beta\"]\ngroup = 500")]);
        assert!(check_conflicts(&[first.clone(), second]).is_ok());
        let (t2, swapped) = other(&[(
            "active = \"alpha\"\nstandby = [\"beta\"]",
            "active = \"beta\"\nstandby = [\"alpha\"]\ngroup = 500",
        )]);
        let e = check_conflicts(&[first.clone(), swapped]).unwrap_err();
        let e = assert_at(&e, line_of(&t2, "group"), "group");
        assert!(
            e.message.contains("group 500 holds service `app`")
                && e.message.contains("same active and standby nodes"),
            "{e}"
        );
        let (_, elsewhere) =
            other(&[("standby = [\"beta\"]", "standby = [\"beta\"]\ngroup = 501")]);
        assert!(check_conflicts(&[first, elsewhere]).is_ok());
        assert!(t.contains("group = 500"));
    }

    #[test]
    fn lock_ids_are_fnv1a_of_the_name() {
        assert_eq!(lock_id(""), 0x811c_9dc5);
        assert_eq!(lock_id("a"), 0xe40c_292c);
        assert_eq!(lock_id("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn conflicts_of_services_built_in_code() {
        let mut a = parse(BASE).unwrap();
        a.sources.clear();
        let mut b = a.clone();
        b.name = "b".into();
        b.volumes.clear();
        let e = check_conflicts(&[a, b]).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (None, Some("ips[0]")));
        assert!(
            e.message.contains(&format!("of service `app` ({FILE})")),
            "{e}"
        );
    }

    #[test]
    fn floating_parser_edges() {
        assert!(parse_floating("").is_err());
        assert!(parse_floating("~").is_err());
        assert!(parse_floating("/24").is_err());
        assert!(parse_floating("::/64~ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/64").is_err());
        assert!(parse_floating("0.0.0.1/1~127.255.255.254/1").is_err());
        let (v, p) = parse_floating("10.1.2.3/8").unwrap();
        assert_eq!((v, p), (vec!["10.1.2.3".parse::<IpAddr>().unwrap()], 8));
        assert!(
            !valid_ifname("")
                && !valid_ifname(".")
                && valid_ifname("a.b")
                && valid_ifname("vlan@x")
        );
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
            fn toml_like_text_never_panics(text in "[\\[\\]a-z_=\"'{},.:/~0-9 \n#-]{0,200}") {
                let _ = parse(&text);
            }

            #[test]
            fn arbitrary_addresses_never_panic(text in any::<String>(), a in any::<u32>(), b in any::<u32>(), p in any::<u8>()) {
                let _ = parse_floating(&text);
                let range = format!("{}/{p}~{}/{p}", Ipv4Addr::from(a), Ipv4Addr::from(b));
                if let Ok((addrs, prefix)) = parse_floating(&range) {
                    prop_assert_eq!(prefix, p);
                    prop_assert!(!addrs.is_empty() && addrs.len() <= MAX_RANGE);
                }
            }

            #[test]
            fn mutated_sample_never_panics(line in 0usize..200, junk in any::<String>()) {
                let _ = parse(&replace_line(WWW, line, &junk));
            }

            #[test]
            fn mutated_values_have_a_position(line in 0usize..200, junk in any::<String>()) {
                let text = replace_value(WWW, line, &junk);
                if let Err(e) = parse(&text) {
                    prop_assert!(e.line.is_some() && e.column.is_some(), "{}", e);
                }
            }
        }
    }
}
