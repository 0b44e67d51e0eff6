//! The link between the two daemons of a node: `hasvrd` connects to a unix
//! socket of `hamond` (root only) and both send JSON lines on it for as long
//! as they run. hasvrd asks for the ownership of its services (the cluster's
//! lock service, in hamond) and tells the other nodes what it can host;
//! hamond tells it what the lock table, the membership and fencing decide,
//! and relays the other nodes' messages.
//!
//! A service's lock is [`crate::service::lock_id`] of its name, the same on
//! every node. Lines are at most [`MAX_LINE`] bytes.

use crate::ctl::ServiceOp;
use crate::event::Event;
use serde::{Deserialize, Serialize};

/// Default path of the socket hamond serves for hasvrd.
pub const DEFAULT_LINK: &str = "/run/hacluster/hamond.link";

/// Longest line either side sends.
pub const MAX_LINE: usize = 64 * 1024;

/// What hasvrd tells hamond.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToHamond {
    /// The first line: the services hasvrd runs. hamond answers with
    /// [`ToHasvrd::Welcome`].
    Hello { services: Vec<String> },
    /// The services hasvrd runs changed (it reread its service files): the
    /// whole new list, which replaces the hello's. hamond forgets the
    /// services left out and registers the new ones' locks (one whose lock
    /// id collides with another's is refused, logged and left out).
    Services { services: Vec<String> },
    /// Queue for the service's lock, or change the queued priority (higher
    /// first, 0 to 255).
    Request { service: String, priority: u8 },
    /// Give the lock back (proven stopped, rule 7), or withdraw the request.
    Release { service: String },
    /// This node's state of a service, for every other node's hasvrd,
    /// with its fail count here (absent from older hasvrds: 0).
    Advertise {
        service: String,
        state: String,
        can_host: bool,
        #[serde(default)]
        failures: u32,
    },
    /// An operator's command for another node's hasvrd.
    Forward {
        node: String,
        service: String,
        op: ServiceOp,
        by: String,
    },
    /// The answer to [`ToHasvrd::Ping`] with its `seq`, sent by hasvrd's
    /// daemon loop (not its link reader): hasvrd is healthy, and hamond may
    /// keep petting the watchdog.
    Pong { seq: u64 },
    /// A stop of `service` failed and its file says `force_reboot` (safety
    /// rule 7): hamond stops petting the watchdog for good, so the node
    /// resets within its timeout.
    SelfFence { service: String, reason: String },
    /// A stop of `service` failed while this node holds its lock, with a
    /// fencing device and no `force_reboot` (safety rule 7): hamond asks
    /// `peer` (the node that takes the service over) to fence this node.
    /// Only that peer shoots (rule 4); a node that asked this itself
    /// shoots nobody on request.
    FenceMe {
        service: String,
        peer: String,
        reason: String,
    },
    /// Something happened to a service here (a state change with its
    /// cause, a failover, a stall, an operator's command): hamond records
    /// it in the history, shares it with the other nodes and alerts.
    Event(Event),
}

/// What hamond tells hasvrd.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToHasvrd {
    /// The answer to [`ToHamond::Hello`]: this node's name, the services
    /// whose locks this node still holds (hasvrd restarted while they ran),
    /// and the other nodes that are up.
    Welcome {
        node: String,
        held: Vec<String>,
        up: Vec<String>,
    },
    /// The hello was refused (unknown service, two services with one lock
    /// id): hasvrd must not run.
    Refused { reason: String },
    /// This node now holds the service's lock.
    Granted { service: String },
    /// This node no longer holds it.
    Lost { service: String },
    /// Who holds the service's lock now, as the lock table says.
    Owner {
        service: String,
        holder: Option<String>,
    },
    /// The holder left the membership without releasing the lock: it is
    /// orphaned until that node is fenced (or confirmed off).
    OwnerLost { service: String, node: String },
    /// A node joined (`up`) or left the agreed membership.
    Peer { node: String, up: bool },
    /// A node's state of a service, as its hasvrd advertised it, with
    /// its fail count there.
    PeerService {
        node: String,
        service: String,
        state: String,
        can_host: bool,
        #[serde(default)]
        failures: u32,
    },
    /// The fence device confirmed `node` powered off.
    Fenced { node: String },
    /// The operator swore `node` is off (`hactl fence confirm`).
    FenceConfirmed { node: String },
    /// An operator's command forwarded from another node.
    Command {
        service: String,
        op: ServiceOp,
        by: String,
    },
    /// This node may not hold services now (`isolated`, `reason` says
    /// why: it is isolated, i.e. it sees no other node on any heartbeat path
    /// and reaches none of the cluster's ping addresses; or, with three or
    /// more nodes, it lost quorum), or may again. Meanwhile hasvrd stops
    /// and releases every service here and takes none (the ping addresses
    /// and quorum decide only who releases).
    Isolation { isolated: bool, reason: String },
    /// The cluster's ping addresses (`[cluster] ping`, maybe none), sent
    /// after the welcome: hasvrd asks them through each NIC of its
    /// services' floating IPs.
    PingAddresses { addresses: Vec<std::net::IpAddr> },
    /// Are you healthy? hasvrd's daemon loop answers [`ToHamond::Pong`]
    /// with the same `seq`. Sent only after the welcome.
    Ping { seq: u64 },
    /// The service files changed (configuration replication): reread the services directory.
    ServicesChanged,
    /// The cluster config file changed (configuration replication): hasvrd
    /// restarts in place to load it, adopting what runs, as hamond does.
    ClusterChanged,
}

/// Encodes one message as a line.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(msg).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Decodes one line (with or without its newline).
pub fn decode<'a, T: Deserialize<'a>>(line: &'a str) -> Result<T, String> {
    if line.len() > MAX_LINE {
        return Err(format!("line of {} bytes (at most {MAX_LINE})", line.len()));
    }
    serde_json::from_str(line.trim_end()).map_err(|e| format!("bad message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let msgs = [
            ToHamond::Hello {
                services: vec!["www".into()],
            },
            ToHamond::Request {
                service: "www".into(),
                priority: 100,
            },
            ToHamond::Forward {
                node: "beta".into(),
                service: "www".into(),
                op: ServiceOp::FailOver,
                by: "root".into(),
            },
            ToHamond::Pong { seq: 7 },
            ToHamond::Services {
                services: vec!["www".into(), "db".into()],
            },
            ToHamond::FenceMe {
                service: "www".into(),
                peer: "beta".into(),
                reason: "stop failed".into(),
            },
            ToHamond::Event(
                Event::now(
                    "beta",
                    crate::event::EventKind::Failover,
                    crate::event::Severity::Warning,
                    "took over www",
                )
                .about("www")
                .because("alpha lost")
                .phase("start", std::time::Duration::from_millis(250)),
            ),
            ToHamond::SelfFence {
                service: "www".into(),
                reason: "stop failed".into(),
            },
        ];
        for m in msgs {
            let line = encode(&m);
            let text = std::str::from_utf8(&line).unwrap();
            assert_eq!(decode::<ToHamond>(text).unwrap(), m);
        }
        for m in [
            ToHasvrd::OwnerLost {
                service: "www".into(),
                node: "alpha".into(),
            },
            ToHasvrd::Ping { seq: 7 },
            ToHasvrd::ServicesChanged,
            ToHasvrd::ClusterChanged,
            ToHasvrd::Isolation {
                isolated: true,
                reason: "no ping address answers".into(),
            },
        ] {
            let line = encode(&m);
            assert_eq!(
                decode::<ToHasvrd>(std::str::from_utf8(&line).unwrap()).unwrap(),
                m
            );
        }
        assert_eq!(
            std::str::from_utf8(&encode(&ToHamond::Pong { seq: 3 })).unwrap(),
            "{\"msg\":\"pong\",\"seq\":3}\n"
        );
    }

    #[test]
    fn an_advert_without_a_fail_count_counts_none() {
        let old = r#"{"msg":"advertise","service":"www","state":"ACTIVE","can_host":true}"#;
        assert_eq!(
            decode::<ToHamond>(old).unwrap(),
            ToHamond::Advertise {
                service: "www".into(),
                state: "ACTIVE".into(),
                can_host: true,
                failures: 0,
            }
        );
    }

    #[test]
    fn bad_lines_are_refused() {
        assert!(decode::<ToHamond>("").is_err());
        assert!(decode::<ToHamond>("{\"msg\":\"nope\"}").is_err());
        assert!(decode::<ToHasvrd>(&"x".repeat(MAX_LINE + 1)).is_err());
    }
}
