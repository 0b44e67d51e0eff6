//! The local control protocol between `hactl` and the daemons: the client
//! sends one JSON [`Request`] line on a unix socket, the daemon answers with
//! one JSON [`Response`] line and closes. `hamond` answers the cluster
//! requests (status, fence confirmation, event history, alert test,
//! replicated configuration, a node's NICs),
//! `hasvrd` the service requests and node standby.

use crate::event::{Event, Filter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default path of hamond's control socket.
pub const DEFAULT_SOCKET: &str = "/run/hacluster/hamond.sock";
/// Default path of hasvrd's control socket.
pub const DEFAULT_SERVICE_SOCKET: &str = "/run/hacluster/hasvrd.sock";

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// The node's view of the cluster (hamond).
    Status,
    /// The operator swears `node` is powered off (hamond): its orphaned
    /// services may be taken over (safety rule 1).
    FenceConfirm { node: String },
    /// Every service's state on every node (hasvrd).
    Services,
    /// An operator's command on a service (hasvrd). `node` (cleanup
    /// only): act on that node alone; absent, every node of the service.
    Service {
        op: ServiceOp,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// The newest `limit` events of the node's history that pass `filter`,
    /// oldest first (hamond).
    History {
        #[serde(default)]
        filter: Filter,
        limit: usize,
    },
    /// Send a test event through every alert hook and mail now (hamond).
    AlertTest,
    /// Run the `monitor` action of the fencing device `device`, or of every
    /// device, now (hamond).
    FenceTest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    /// Put this node in standby (`on`: its services move away and it takes
    /// none, persisted across restarts) or take it out (hasvrd).
    NodeStandby { on: bool },
    /// Every replicated configuration document with its version (hamond).
    ConfigList,
    /// One configuration document's content and version (hamond).
    ConfigGet { name: String },
    /// Change (`content`) or remove (`content` None) a configuration
    /// document on every node (hamond). `base` is the version the change
    /// was made from (None: the document must not exist yet); answered
    /// once committed, or refused with the current version (safety rule 9).
    /// `force_local` commits without the nodes that are down.
    ConfigPut {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<ConfigVersion>,
        content: Option<String>,
        #[serde(default)]
        force_local: bool,
    },
    /// A node's network interfaces and addresses, to fill dialogs (the
    /// manual's AutoGet): `node` None is this node; another node is asked
    /// over the cluster (hamond).
    Nics {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
}

/// One network interface of a node, for [`Request::Nics`] (loopback left
/// out).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nic {
    pub name: String,
    /// Administratively up with carrier (the kernel's running or lower-up
    /// flag).
    pub up: bool,
    /// Its hardware address, `aa:bb:cc:dd:ee:ff`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Its addresses with prefix length (`10.0.0.1/24`, `fe80::1/64`),
    /// IPv4 first.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// A configuration document's logical version (epoch, counter, node).
pub use litecloud::config::Version as ConfigVersion;

/// One configuration document in a [`Response::ConfigList`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDocInfo {
    pub name: String,
    pub version: ConfigVersion,
    /// Its length in bytes; None when it was removed.
    pub size: Option<usize>,
    /// Another node holds a version that neither precedes nor follows this
    /// one: the operator must choose (`hactl config put --force-local`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConfigConflict>,
}

/// The other side of a configuration conflict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigConflict {
    pub node: String,
    pub version: ConfigVersion,
}

/// Most events one [`Request::History`] answers with.
pub const MAX_HISTORY: usize = 10_000;

/// The start of a `--since AGE` window for [`Filter::since_ms`]: `now_ms`
/// less `age`, a duration such as `"90s"`, `"10min"`, `"2h 30m"` or
/// `"1day"`.
pub fn since_ms(age: &str, now_ms: u64) -> Result<u64, String> {
    let d = humantime::parse_duration(age.trim()).map_err(|e| {
        format!(
            "`{age}` is not a duration ({e}); write e.g. \"90s\", \"10min\", \"2h\" or \"1day\""
        )
    })?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    Ok(now_ms.saturating_sub(ms))
}

/// An event's time for people: UTC, RFC 3339 with milliseconds.
pub fn show_time(at_ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(at_ms);
    humantime::format_rfc3339_millis(t).to_string()
}

/// What the daemon answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Status(Box<StatusReport>),
    Services {
        services: Vec<ServiceStatus>,
    },
    /// The events asked for with [`Request::History`], oldest first.
    History {
        events: Vec<Event>,
    },
    /// How each alert hook and mail went, for [`Request::AlertTest`].
    AlertTest {
        deliveries: Vec<Delivery>,
    },
    /// Each device's check, for [`Request::FenceTest`], in config order.
    FenceTest {
        checks: Vec<DeviceCheck>,
    },
    /// The configuration documents, for [`Request::ConfigList`].
    ConfigList {
        docs: Vec<ConfigDocInfo>,
    },
    /// One configuration document, for [`Request::ConfigGet`]; `content`
    /// None when it was removed.
    ConfigDoc {
        name: String,
        version: ConfigVersion,
        content: Option<String>,
    },
    /// A [`Request::ConfigPut`] committed: the document's new version.
    ConfigCommitted {
        name: String,
        version: ConfigVersion,
    },
    /// A node's interfaces, for [`Request::Nics`]. `truncated`: the node
    /// has more interfaces or addresses than one cluster message carries,
    /// and the rest were left out.
    Nics {
        node: String,
        nics: Vec<Nic>,
        #[serde(default)]
        truncated: bool,
    },
    /// A command was accepted; `message` says what happens next.
    Done {
        message: String,
    },
    Error {
        message: String,
    },
}

/// An operator's command on a service: the manual's toolbar and Services
/// menu.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceOp {
    /// Back under cluster control (watched, moved on failure).
    BringIn,
    /// Out of cluster control: left as it is, neither watched nor moved.
    BringOut,
    /// Move it to the node that is asked.
    TakeOver,
    /// Move it away from the node that holds it.
    FailOver,
    SwitchbackOn,
    SwitchbackOff,
    /// Forget failures and clear an error after the operator fixed it.
    Cleanup,
    /// Stop it where it runs (proven stopped, then its lock released) and
    /// bring it out everywhere, so that it runs nowhere until BringIn.
    Stop,
}

impl ServiceOp {
    /// Every command.
    pub const ALL: [ServiceOp; 8] = [
        ServiceOp::BringIn,
        ServiceOp::BringOut,
        ServiceOp::TakeOver,
        ServiceOp::FailOver,
        ServiceOp::SwitchbackOn,
        ServiceOp::SwitchbackOff,
        ServiceOp::Cleanup,
        ServiceOp::Stop,
    ];

    /// The command's name on the command line: `bring-in`, `take-over`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceOp::BringIn => "bring-in",
            ServiceOp::BringOut => "bring-out",
            ServiceOp::TakeOver => "take-over",
            ServiceOp::FailOver => "fail-over",
            ServiceOp::SwitchbackOn => "switchback-on",
            ServiceOp::SwitchbackOff => "switchback-off",
            ServiceOp::Cleanup => "cleanup",
            ServiceOp::Stop => "stop",
        }
    }
}

/// One alert hook's or mail's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The hook's program, or `mail to ADDRESS,...`.
    pub target: String,
    /// Why it failed; None when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One service as one node's hasvrd sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The node holding the service's lock, if any.
    pub owner: Option<String>,
    /// The service's state on each of its nodes (the SureHA names:
    /// ACTIVE, STANDBY, ...; `unknown` for a node not heard from).
    pub nodes: Vec<ServiceNode>,
    /// Failures on this node since the last cleanup (those older than the
    /// service's `failure_timeout` left out); each node's in
    /// [`ServiceNode::failures`].
    pub failures: u32,
    /// Why the service is in error on this node, if it is; otherwise
    /// `standby ...` while this node is in standby
    /// ([`Request::NodeStandby`]).
    pub fault: Option<String>,
}

/// A service's state on one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNode {
    pub node: String,
    pub state: String,
    /// The node is up and able to host the service.
    pub can_host: bool,
    /// The service's fail count on that node, as it advertised it (0 for
    /// a node not heard from).
    #[serde(default)]
    pub failures: u32,
}

/// The first line a client sends on hamond's remote admin endpoint (TLS),
/// before any [`Request`]: `{"cmd":"login","password":"..."}`. A separate
/// type, so that the local socket can never be asked to log in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Login {
    Login { password: String },
}

/// The admin endpoint's answer to a [`Login`]: `{"result":"logged_in"}`, or
/// the same `{"result":"error","message":...}` as [`Response::Error`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LoginResponse {
    LoggedIn,
    Error { message: String },
}

/// Up or down, for nodes and links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Up,
    Down,
}

/// `hactl status`: one node's view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub cluster: String,
    pub netid: u16,
    /// This node's name and domain id.
    pub node: String,
    pub domain: u8,
    pub incarnation: u32,
    /// Boot id, as 8 hex digits.
    pub boot: String,
    /// Config hash, as 8 hex digits.
    pub config_hash: String,
    /// Local membership epoch: bumped at each change of the live set.
    pub epoch: u64,
    /// The membership view agreed with the peers, once one is installed.
    pub view: Option<ViewStatus>,
    pub uptime_ms: u64,
    /// Times this daemon found itself not scheduled for a while.
    pub stalls: u64,
    /// Length of the last stall.
    pub last_stall_ms: Option<u64>,
    /// The other nodes of the cluster.
    pub peers: Vec<PeerStatus>,
    /// This node's end of each private network, with its counters.
    pub paths: Vec<PathStatus>,
    /// This node's watchdog; None when `[watchdog]` is not enabled (or the
    /// daemon predates it).
    #[serde(default)]
    pub watchdog: Option<WatchdogStatus>,
    /// Why this node may not hold services now (it is isolated, or with
    /// three or more nodes it lost quorum): its hasvrd stops and releases
    /// them and takes none. None: it may.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// The last fences this node ran ([`FENCES_SHOWN`] per node at most),
    /// oldest first.
    #[serde(default)]
    pub fences: Vec<FenceRecord>,
    /// The last `monitor` check of each fencing device checked so far, in
    /// config order.
    #[serde(default)]
    pub fence_devices: Vec<DeviceCheck>,
}

/// Most fences per node a [`StatusReport`] shows.
pub const FENCES_SHOWN: usize = 5;

/// One fence attempt with one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    /// The node fenced.
    pub node: String,
    /// The device used.
    pub device: String,
    /// `off` or `reboot`.
    pub action: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// From the start of the call to the end of its proof.
    pub duration_ms: u64,
    /// Why it failed; None when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One `monitor` check of a fencing device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCheck {
    pub device: String,
    /// When it started, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub duration_ms: u64,
    /// Why it failed; None when the device answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// This node's watchdog, as hamond drives it (safety rule 3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogStatus {
    /// The path opened.
    pub device: String,
    /// What it is, e.g. `device "iTCO_wdt"` or `stand-in (cannot reset the
    /// node)`.
    pub kind: String,
    /// The timeout W read back from the device, in seconds.
    pub timeout_s: u64,
    /// An armed real device whose driver keeps counting if hamond dies
    /// (magic close known): the only kind peers may rely on for leases.
    pub armed_device: bool,
    /// Whether the last check petted it.
    pub petting: bool,
    /// Why the last check withheld the pet, if it did.
    pub withheld: Option<String>,
    /// Why this node stopped petting for good (a stop that failed with
    /// `force_reboot`): it resets within W.
    pub self_fence: Option<String>,
    /// This node's lease L (`[watchdog] lease`), in seconds.
    #[serde(default)]
    pub lease_s: u64,
    /// While this node holds services: how long its lease still runs (0:
    /// it ran out, the watchdog is no longer petted). None: it holds none.
    #[serde(default)]
    pub lease_left_ms: Option<u64>,
}

/// A membership view agreed by its members.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewStatus {
    /// Agreed epoch; with the coordinator it names the view.
    pub epoch: u64,
    pub coordinator: String,
    pub members: Vec<String>,
    /// A strict majority of the configured nodes.
    pub quorum: bool,
}

/// One peer as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub domain: u8,
    pub state: State,
    /// Accepted incarnation, once a nonce round trip proved it.
    pub incarnation: Option<u32>,
    /// Whether the peer's config hash equals ours (None: not heard yet).
    pub config_matches: Option<bool>,
    /// Milliseconds since the peer went up or down.
    pub since_ms: u64,
    /// Why it last went down, if it did.
    pub cause: Option<String>,
    pub links: Vec<LinkStatus>,
    /// The watchdog it advertised.
    #[serde(default)]
    pub watchdog: PeerWatchdog,
}

/// What a node advertises of its watchdog to its peers (safety rule 3):
/// sent on the cluster channel each time the peer comes up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "watchdog", rename_all = "snake_case")]
pub enum PeerWatchdog {
    /// Nothing heard from it yet.
    #[default]
    NotHeard,
    /// It runs without a watchdog (`[watchdog] enabled = false`).
    Disabled,
    /// It pets a watchdog whose timeout read back is `timeout_s`.
    Enabled {
        /// A real device that resets the node if hamond dies (not a
        /// stand-in).
        armed_device: bool,
        /// The timeout W read back, in seconds.
        timeout_s: u64,
        /// Its lease L (`[watchdog] lease`), in seconds.
        lease_s: u64,
    },
}

/// The link to one peer over one path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub path: String,
    pub state: State,
    /// Milliseconds since the last accepted frame from the peer on this path.
    pub last_heard_ms: Option<u64>,
    /// Round trip of the last acknowledged frame, in microseconds.
    pub rtt_us: Option<u64>,
    /// Why it last went down, if it did.
    pub cause: Option<String>,
}

/// This node's end of one private network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathStatus {
    pub name: String,
    /// "serial" or "udp".
    pub kind: String,
    /// Whether the port or socket is open; false while it is being reopened.
    pub open: bool,
    /// The last I/O error, if the port is not open.
    pub error: Option<String>,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Dropped frames by reason (see litecloud::wire::Reject).
    pub rejected: BTreeMap<String, u64>,
}

/// Overall health for monitoring, mapped to `hactl status` exit codes
/// (Nagios convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Every peer up on every path: exit 0.
    Ok = 0,
    /// Every peer up, some path down or closed: exit 1.
    Degraded = 1,
    /// Some peer down: exit 2.
    Critical = 2,
}

impl StatusReport {
    /// Summarises the report for monitoring.
    pub fn health(&self) -> Health {
        if self.peers.iter().any(|p| p.state == State::Down) {
            Health::Critical
        } else if !self.paths.iter().all(|p| p.open)
            || self
                .peers
                .iter()
                .flat_map(|p| &p.links)
                .any(|l| l.state == State::Down)
        {
            Health::Degraded
        } else {
            Health::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Severity};

    fn round_trip<T: Serialize + for<'a> Deserialize<'a> + PartialEq + std::fmt::Debug>(
        value: &T,
    ) -> String {
        let line = serde_json::to_string(value).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&line).unwrap(), value);
        line
    }

    #[test]
    fn history_and_alert_test_requests() {
        let all = Request::History {
            filter: Filter::default(),
            limit: 20,
        };
        assert_eq!(
            round_trip(&all),
            r#"{"cmd":"history","filter":{},"limit":20}"#
        );
        let some = Request::History {
            filter: Filter {
                service: Some("www".into()),
                kind: Some(EventKind::Failover),
                since_ms: Some(5),
                ..Filter::default()
            },
            limit: 1,
        };
        assert_eq!(
            round_trip(&some),
            r#"{"cmd":"history","filter":{"service":"www","kind":"failover","since_ms":5},"limit":1}"#
        );
        let no_filter: Request = serde_json::from_str(r#"{"cmd":"history","limit":3}"#).unwrap();
        assert_eq!(
            no_filter,
            Request::History {
                filter: Filter::default(),
                limit: 3
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"history"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"history","limit":-1}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(
                r#"{"cmd":"history","limit":1,"filter":{"kind":"nope"}}"#
            )
            .is_err()
        );
        assert_eq!(round_trip(&Request::AlertTest), r#"{"cmd":"alert_test"}"#);
    }

    #[test]
    fn node_standby_request() {
        assert_eq!(
            round_trip(&Request::NodeStandby { on: true }),
            r#"{"cmd":"node_standby","on":true}"#
        );
        assert_eq!(
            round_trip(&Request::NodeStandby { on: false }),
            r#"{"cmd":"node_standby","on":false}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"node_standby"}"#).is_err());
    }

    #[test]
    fn fence_test_request_and_response() {
        assert_eq!(
            round_trip(&Request::FenceTest { device: None }),
            r#"{"cmd":"fence_test"}"#
        );
        let one = Request::FenceTest {
            device: Some("ipmi".into()),
        };
        assert_eq!(round_trip(&one), r#"{"cmd":"fence_test","device":"ipmi"}"#);
        let line = round_trip(&Response::FenceTest {
            checks: vec![DeviceCheck {
                device: "ipmi".into(),
                at_ms: 5,
                duration_ms: 7,
                error: Some("exit 1".into()),
            }],
        });
        assert_eq!(
            line,
            r#"{"result":"fence_test","checks":[{"device":"ipmi","at_ms":5,"duration_ms":7,"error":"exit 1"}]}"#
        );
    }

    #[test]
    fn config_requests_and_responses() {
        let v = ConfigVersion {
            epoch: 0,
            counter: 8,
            node: 2,
        };
        assert_eq!(round_trip(&Request::ConfigList), r#"{"cmd":"config_list"}"#);
        assert_eq!(
            round_trip(&Request::ConfigGet {
                name: "cluster.toml".into()
            }),
            r#"{"cmd":"config_get","name":"cluster.toml"}"#
        );
        let put = Request::ConfigPut {
            name: "services/web.toml".into(),
            base: Some(v),
            content: Some("name = \"web\"\n".into()),
            force_local: false,
        };
        assert_eq!(
            round_trip(&put),
            r#"{"cmd":"config_put","name":"services/web.toml","base":{"epoch":0,"counter":8,"node":2},"content":"name = \"web\"\n","force_local":false}"#
        );
        let remove: Request = serde_json::from_str(
            r#"{"cmd":"config_put","name":"services/web.toml","content":null}"#,
        )
        .unwrap();
        assert_eq!(
            remove,
            Request::ConfigPut {
                name: "services/web.toml".into(),
                base: None,
                content: None,
                force_local: false,
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"config_get"}"#).is_err());
        let list = Response::ConfigList {
            docs: vec![
                ConfigDocInfo {
                    name: "cluster.toml".into(),
                    version: v,
                    size: Some(120),
                    conflict: None,
                },
                ConfigDocInfo {
                    name: "services/old.toml".into(),
                    version: v,
                    size: None,
                    conflict: Some(ConfigConflict {
                        node: "beta".into(),
                        version: ConfigVersion { node: 1, ..v },
                    }),
                },
            ],
        };
        let line = round_trip(&list);
        assert!(
            line.contains(r#""size":null,"conflict":{"node":"beta""#),
            "{line}"
        );
        round_trip(&Response::ConfigDoc {
            name: "admin/password".into(),
            version: v,
            content: None,
        });
        assert_eq!(
            round_trip(&Response::ConfigCommitted {
                name: "cluster.toml".into(),
                version: v
            }),
            r#"{"result":"config_committed","name":"cluster.toml","version":{"epoch":0,"counter":8,"node":2}}"#
        );
    }

    #[test]
    fn since_and_time() {
        let now = 10_000_000;
        assert_eq!(since_ms("90s", now), Ok(now - 90_000));
        assert_eq!(since_ms(" 2h 30m ", now), Ok(1_000_000));
        assert_eq!(since_ms("1day", now), Ok(0), "never before the epoch");
        assert_eq!(since_ms("10min", now), Ok(now - 600_000));
        let e = since_ms("yesterday", now).unwrap_err();
        assert!(e.contains("`yesterday` is not a duration"), "{e}");
        assert!(since_ms("", now).is_err());
        assert!(since_ms("-5s", now).is_err());
        assert_eq!(show_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(show_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn history_and_alert_test_responses() {
        let event = Event::now(
            "alpha",
            EventKind::Stall,
            Severity::Emergency,
            "www stalled",
        )
        .about("www")
        .because("beta lost, not fenced");
        let line = round_trip(&Response::History {
            events: vec![event],
        });
        assert!(
            line.starts_with(r#"{"result":"history","events":[{"at_ms":"#),
            "{line}"
        );
        let line = round_trip(&Response::AlertTest {
            deliveries: vec![
                Delivery {
                    target: "/usr/local/sbin/page".into(),
                    error: None,
                },
                Delivery {
                    target: "mail to ops@example.com".into(),
                    error: Some("exit 1".into()),
                },
            ],
        });
        assert_eq!(
            line,
            r#"{"result":"alert_test","deliveries":[{"target":"/usr/local/sbin/page"},{"target":"mail to ops@example.com","error":"exit 1"}]}"#
        );
    }
}
