//! Cluster events: what the event history keeps and what alert hooks are
//! told. Every state change of a node or a service, every failover, fence,
//! stall and operator action becomes one [`Event`] with its cause, and for a
//! failover how long each phase took. The daemons write them to the
//! persisted history, share them with the other nodes, and hand the
//! emergency ones to the alert hooks; `hactl history` selects them with a
//! [`Filter`].
//!
//! On disk and on the wire an event is one JSON object (one line of the
//! history file). Unknown fields are ignored, so a newer node's events stay
//! readable by an older one.

use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much an event matters; alert hooks run for [`Severity::Emergency`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Normal operation: a service started, an operator moved it.
    #[default]
    Info,
    /// Something failed and the cluster handled it: a local restart, a
    /// failover, a fence that worked.
    Warning,
    /// The operator must act: a stall, a fence that failed, a node reset.
    Emergency,
}

impl Severity {
    /// The lowercase name, as in the JSON and in alert environments.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Emergency => "emergency",
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A node joined, left cleanly or was lost.
    Node,
    /// A service changed state on a node.
    Service,
    /// A service moved to another node after a failure.
    Failover,
    /// A node was fenced, or fencing it failed.
    Fence,
    /// A service cannot be run until the operator acts.
    Stall,
    /// An operator command (hactl, the GUI, `apicmd`).
    Operator,
    /// A test event sent by `hactl alert test`.
    Test,
}

impl EventKind {
    /// The kebab-case name, as in the JSON and in alert environments.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Node => "node",
            EventKind::Service => "service",
            EventKind::Failover => "failover",
            EventKind::Fence => "fence",
            EventKind::Stall => "stall",
            EventKind::Operator => "operator",
            EventKind::Test => "test",
        }
    }
}

/// One phase of a failover (detection, fencing, stop, start) and how long
/// it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    /// Milliseconds.
    pub ms: u64,
}

/// One event of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Wall-clock time, milliseconds since the Unix epoch (for people and
    /// for ordering the nodes' histories; never for deciding anything).
    pub at_ms: u64,
    /// The node that recorded it.
    pub node: String,
    pub kind: EventKind,
    #[serde(default)]
    pub severity: Severity,
    /// The service it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened, in a few words ("started", "failed over to beta").
    pub what: String,
    /// Why it happened ("application check failed 3 times", "operator").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cause: String,
    /// For a failover: how long each phase took, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
}

impl Event {
    /// An event recorded now by `node`.
    pub fn now(node: &str, kind: EventKind, severity: Severity, what: impl Into<String>) -> Event {
        Event {
            at_ms: unix_ms(SystemTime::now()),
            node: node.to_owned(),
            kind,
            severity,
            service: None,
            what: what.into(),
            cause: String::new(),
            phases: Vec::new(),
        }
    }

    /// The same event about `service`.
    pub fn about(mut self, service: &str) -> Event {
        self.service = Some(service.to_owned());
        self
    }

    /// The same event with its cause.
    pub fn because(mut self, cause: impl Into<String>) -> Event {
        self.cause = cause.into();
        self
    }

    /// The same event with one more phase.
    pub fn phase(mut self, name: &str, took: Duration) -> Event {
        self.phases.push(Phase {
            name: name.to_owned(),
            ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        });
        self
    }

    /// The whole duration of the phases, if there are any.
    pub fn duration(&self) -> Option<Duration> {
        (!self.phases.is_empty())
            .then(|| Duration::from_millis(self.phases.iter().map(|p| p.ms).sum()))
    }

    /// One line of text for logs and `hactl history`.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {}", self.node, self.kind.as_str());
        if let Some(service) = &self.service {
            s.push_str(&format!(" {service}"));
        }
        s.push_str(&format!(": {}", self.what));
        if !self.cause.is_empty() {
            s.push_str(&format!(" ({})", self.cause));
        }
        if let Some(total) = self.duration() {
            let phases: Vec<String> = self
                .phases
                .iter()
                .map(|p| format!("{} {} ms", p.name, p.ms))
                .collect();
            s.push_str(&format!(
                " in {} ms: {}",
                total.as_millis(),
                phases.join(", ")
            ));
        }
        s
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Which events `hactl history` shows; every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<EventKind>,
    /// At least this severe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Recorded at or after this time (milliseconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

impl Filter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        self.service
            .as_ref()
            .is_none_or(|s| event.service.as_ref() == Some(s))
            && self.node.as_ref().is_none_or(|n| &event.node == n)
            && self.kind.is_none_or(|k| event.kind == k)
            && self.severity.is_none_or(|s| event.severity >= s)
            && self.since_ms.is_none_or(|t| event.at_ms >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover() -> Event {
        Event::now(
            "beta",
            EventKind::Failover,
            Severity::Warning,
            "took over www",
        )
        .about("www")
        .because("alpha lost")
        .phase("detection", Duration::from_millis(3000))
        .phase("fencing", Duration::from_millis(500))
        .phase("start", Duration::from_millis(250))
    }

    #[test]
    fn json_round_trip_and_unknown_fields() {
        let e = failover();
        let line = serde_json::to_string(&e).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        let newer = line.replacen('{', r#"{"future":[1,2],"#, 1);
        assert_eq!(serde_json::from_str::<Event>(&newer).unwrap(), e);
        let minimal = r#"{"at_ms":1,"node":"a","kind":"stall","what":"x"}"#;
        let m: Event = serde_json::from_str(minimal).unwrap();
        assert_eq!(m.severity, Severity::Info);
        assert!(m.service.is_none() && m.phases.is_empty());
        assert!(serde_json::from_str::<Event>(r#"{"node":"a"}"#).is_err());
    }

    #[test]
    fn summary_says_what_why_and_how_long() {
        let s = failover().summary();
        assert_eq!(
            s,
            "beta failover www: took over www (alpha lost) in 3750 ms: \
             detection 3000 ms, fencing 500 ms, start 250 ms"
        );
        assert_eq!(failover().duration(), Some(Duration::from_millis(3750)));
    }

    #[test]
    fn filters_combine() {
        let e = failover();
        assert!(Filter::default().matches(&e));
        let by = |f: Filter| f.matches(&e);
        assert!(by(Filter {
            service: Some("www".into()),
            node: Some("beta".into()),
            kind: Some(EventKind::Failover),
            severity: Some(Severity::Warning),
            since_ms: Some(e.at_ms),
        }));
        assert!(!by(Filter {
            service: Some("db".into()),
            ..Filter::default()
        }));
        assert!(!by(Filter {
            severity: Some(Severity::Emergency),
            ..Filter::default()
        }));
        assert!(!by(Filter {
            since_ms: Some(e.at_ms + 1),
            ..Filter::default()
        }));
        assert!(!by(Filter {
            kind: Some(EventKind::Fence),
            ..Filter::default()
        }));
    }
}
