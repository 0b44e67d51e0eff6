//! `hactl history` (the event history of a node: state changes, failovers,
//! fences, stalls, operator commands, with filters) and `hactl alert test`
//! (a test event through every alert hook and mail): the requests and how
//! their answers are shown.

use clap::{Args, Subcommand};
use haschema::ctl::{self, Delivery, Request};
use haschema::event::{Event, EventKind, Filter, unix_ms};
use std::fmt::Write;
use std::time::SystemTime;

/// `hactl history`'s options.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct HistoryArgs {
    /// Only the events of this service.
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Only the events recorded by this node.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Only events of this kind: node, service, failover, fence, stall,
    /// operator or test.
    #[arg(long, value_name = "KIND", value_parser = kind)]
    pub kind: Option<EventKind>,
    /// Only events of the last DURATION, e.g. 90s, 10min, 2h, 1day.
    #[arg(long, value_name = "DURATION", value_parser = age)]
    pub since: Option<String>,
    /// At most this many events, the newest.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=ctl::MAX_HISTORY as u64))]
    pub limit: u64,
    /// Print the events as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hactl alert ...`.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum AlertCommand {
    /// Send a test event through every alert hook and mail of `[alerts]`
    /// now. Exit 0 when every one succeeded.
    Test,
}

/// An event kind by its name.
fn kind(name: &str) -> Result<EventKind, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).map_err(|_| {
        format!("`{name}` is not an event kind; use node, service, failover, fence, stall, operator or test")
    })
}

/// A `--since` duration, checked.
fn age(text: &str) -> Result<String, String> {
    ctl::since_ms(text, 0).map(|_| text.to_owned())
}

impl HistoryArgs {
    /// The request, with `--since` counted back from `now`.
    pub fn request(&self, now: SystemTime) -> Result<Request, String> {
        let since_ms = match &self.since {
            Some(age) => Some(ctl::since_ms(age, unix_ms(now))?),
            None => None,
        };
        Ok(Request::History {
            filter: Filter {
                service: self.service.clone(),
                node: self.node.clone(),
                kind: self.kind,
                severity: None,
                since_ms,
            },
            limit: usize::try_from(self.limit).unwrap_or(ctl::MAX_HISTORY),
        })
    }
}

/// The events, one line each: time, severity, summary.
pub fn lines(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        let _ = writeln!(
            out,
            "{}  {:<9}  {}",
            ctl::show_time(e.at_ms),
            e.severity.as_str(),
            e.summary()
        );
    }
    if events.is_empty() {
        out.push_str("no events\n");
    }
    out
}

/// The alert test's results, one line each; true when there was at least
/// one and every one succeeded.
pub fn deliveries(deliveries: &[Delivery]) -> (String, bool) {
    if deliveries.is_empty() {
        return (
            "no alert hooks or mail are configured: add them to the [alerts] section of the \
             cluster config\n"
                .into(),
            false,
        );
    }
    let mut out = String::new();
    for d in deliveries {
        let _ = match &d.error {
            None => writeln!(out, "ok      {}", d.target),
            Some(e) => writeln!(out, "FAILED  {}: {e}", d.target),
        };
    }
    (out, deliveries.iter().all(|d| d.error.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::event::Severity;
    use std::time::{Duration, UNIX_EPOCH};

    fn args() -> HistoryArgs {
        HistoryArgs {
            service: Some("www".into()),
            node: None,
            kind: Some(EventKind::Failover),
            since: Some("10s".into()),
            limit: 5,
            json: false,
        }
    }

    #[test]
    fn the_request_carries_the_filters() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let r = args().request(now).unwrap();
        assert_eq!(
            r,
            Request::History {
                filter: Filter {
                    service: Some("www".into()),
                    kind: Some(EventKind::Failover),
                    since_ms: Some(90_000),
                    ..Filter::default()
                },
                limit: 5
            }
        );
        assert_eq!(kind("stall"), Ok(EventKind::Stall));
        assert!(kind("boom").unwrap_err().contains("not an event kind"));
        assert!(age("soon").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        use clap::Parser as _;
        let parse = |line: &[&str]| crate::Args::try_parse_from(line.iter().copied());
        let a = parse(&[
            "hactl",
            "history",
            "--service",
            "www",
            "--kind",
            "failover",
            "--since",
            "10s",
            "--limit",
            "5",
        ])
        .unwrap();
        assert!(matches!(a.command, crate::Command::History(h) if h == args()));
        let a = parse(&["hactl", "history", "--json"]).unwrap();
        assert!(matches!(a.command, crate::Command::History(h) if h.json && h.limit == 100));
        for bad in [
            &["hactl", "history", "--kind", "boom"][..],
            &["hactl", "history", "--since", "soon"],
            &["hactl", "history", "--limit", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let a = parse(&["hactl", "--remote", "10.0.0.1:7405", "alert", "test"]).unwrap();
        assert!(matches!(
            a.command,
            crate::Command::Alert {
                command: AlertCommand::Test
            }
        ));
    }

    #[test]
    fn events_and_deliveries_are_shown() {
        let mut e = Event::now("beta", EventKind::Stall, Severity::Emergency, "www stalled");
        e.at_ms = 1_700_000_000_123;
        assert_eq!(
            lines(&[e]),
            "2023-11-14T22:13:20.123Z  emergency  beta stall: www stalled\n"
        );
        assert_eq!(lines(&[]), "no events\n");
        let ok = Delivery {
            target: "/hook".into(),
            error: None,
        };
        let bad = Delivery {
            target: "mail to a@b".into(),
            error: Some("exit 1".into()),
        };
        assert_eq!(
            deliveries(std::slice::from_ref(&ok)),
            ("ok      /hook\n".into(), true)
        );
        let (text, all) = deliveries(&[ok, bad]);
        assert!(!all && text.ends_with("FAILED  mail to a@b: exit 1\n"));
        assert!(!deliveries(&[]).1);
    }
}
