//! Reading `hactl status --json` reports in tests: lookups on one report
//! ([`ReportExt`]) and the reports of every node at one poll ([`Snapshot`]).

use haschema::ctl::{LinkStatus, PathStatus, PeerStatus, State, StatusReport};
use std::collections::BTreeMap;

/// Lookups by name on a [`StatusReport`].
pub trait ReportExt {
    fn peer(&self, name: &str) -> Option<&PeerStatus>;
    fn link(&self, peer: &str, path: &str) -> Option<&LinkStatus>;
    fn path(&self, name: &str) -> Option<&PathStatus>;

    /// The state of a peer, None if the report does not list it.
    fn peer_state(&self, name: &str) -> Option<State> {
        self.peer(name).map(|p| p.state)
    }

    /// The state of the link to `peer` over `path`.
    fn link_state(&self, peer: &str, path: &str) -> Option<State> {
        self.link(peer, path).map(|l| l.state)
    }

    /// Frames received on a path (0 if unknown).
    fn received(&self, path: &str) -> u64 {
        self.path(path).map_or(0, |p| p.frames_received)
    }

    /// Frames dropped on a path for `reason` (0 if none).
    fn rejected(&self, path: &str, reason: &str) -> u64 {
        self.path(path)
            .and_then(|p| p.rejected.get(reason).copied())
            .unwrap_or(0)
    }

    /// Frames dropped on a path for any reason.
    fn rejected_total(&self, path: &str) -> u64 {
        self.path(path).map_or(0, |p| p.rejected.values().sum())
    }
}

impl ReportExt for StatusReport {
    fn peer(&self, name: &str) -> Option<&PeerStatus> {
        self.peers.iter().find(|p| p.name == name)
    }

    fn link(&self, peer: &str, path: &str) -> Option<&LinkStatus> {
        self.peer(peer)?.links.iter().find(|l| l.path == path)
    }

    fn path(&self, name: &str) -> Option<&PathStatus> {
        self.paths.iter().find(|p| p.name == name)
    }
}

/// Every node's report (or why there is none) at one poll.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub reports: BTreeMap<String, Result<StatusReport, String>>,
}

impl Snapshot {
    /// A node's report, None if it could not be read (or was not polled).
    pub fn get(&self, node: &str) -> Option<&StatusReport> {
        self.reports.get(node).and_then(|r| r.as_ref().ok())
    }

    /// `node`'s view of `peer`.
    pub fn peer_state(&self, node: &str, peer: &str) -> Option<State> {
        self.get(node)?.peer_state(peer)
    }

    /// `node`'s view of the link to `peer` over `path`.
    pub fn link_state(&self, node: &str, peer: &str, path: &str) -> Option<State> {
        self.get(node)?.link_state(peer, path)
    }

    /// `node`'s end of network `path`.
    pub fn path(&self, node: &str, path: &str) -> Option<&PathStatus> {
        self.get(node)?.path(path)
    }

    /// True when every polled node answered and sees every peer up over
    /// every link.
    pub fn all_up(&self) -> bool {
        !self.reports.is_empty()
            && self.reports.values().all(|r| {
                r.as_ref().is_ok_and(|r| {
                    !r.peers.is_empty()
                        && r.peers.iter().all(|p| {
                            p.state == State::Up && p.links.iter().all(|l| l.state == State::Up)
                        })
                })
            })
    }

    /// A compact human summary: per node, peers and links with states and
    /// path counters.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (node, r) in &self.reports {
            match r {
                Err(e) => s.push_str(&format!("{node}: no report: {e}\n")),
                Ok(r) => {
                    s.push_str(&format!(
                        "{node}: epoch {} stalls {} inc {}\n",
                        r.epoch, r.stalls, r.incarnation
                    ));
                    for p in &r.peers {
                        s.push_str(&format!(
                            "  peer {} {:?} since {} ms cause {:?}\n",
                            p.name, p.state, p.since_ms, p.cause
                        ));
                        for l in &p.links {
                            s.push_str(&format!(
                                "    link {} {:?} heard {:?} ms ago cause {:?}\n",
                                l.path, l.state, l.last_heard_ms, l.cause
                            ));
                        }
                    }
                    for p in &r.paths {
                        s.push_str(&format!(
                            "  path {} open {} sent {} recv {} rejected {:?} error {:?}\n",
                            p.name, p.open, p.frames_sent, p.frames_received, p.rejected, p.error
                        ));
                    }
                }
            }
        }
        s
    }
}
