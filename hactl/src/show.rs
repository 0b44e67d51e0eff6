//! Human-readable rendering of hamond's reports.

use haschema::ctl::{
    DeviceCheck, FenceRecord, PeerWatchdog, State, StatusReport, WatchdogStatus, show_time,
};
use std::fmt::Write;

fn state(s: State) -> &'static str {
    match s {
        State::Up => "UP",
        State::Down => "DOWN",
    }
}

fn age(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "never".into(),
        |ms| format!("{:.1}s ago", ms as f64 / 1000.0),
    )
}

/// "  (cause)" after a state, or nothing.
fn because(cause: Option<&str>) -> String {
    cause.map(|c| format!("  ({c})")).unwrap_or_default()
}

/// `hactl status` as a table.
pub fn status(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} (netid {})  node {} (domain {})  incarnation {}  epoch {}  config {}",
        r.cluster, r.netid, r.node, r.domain, r.incarnation, r.epoch, r.config_hash
    );
    match &r.view {
        Some(v) => {
            let quorum = if v.quorum { "quorum" } else { "no quorum" };
            let _ = writeln!(
                out,
                "view {}.{} agreed: {} ({quorum})",
                v.epoch,
                v.coordinator,
                v.members.join(", ")
            );
        }
        None => {
            let _ = writeln!(out, "view: none agreed yet");
        }
    }
    if r.stalls > 0 {
        let _ = writeln!(
            out,
            "stalls: {} (last {} ms)",
            r.stalls,
            r.last_stall_ms.unwrap_or(0)
        );
    }
    if let Some(why) = &r.withdrawn {
        let _ = writeln!(
            out,
            "SERVICES WITHDRAWN: {why}; this node stops its services and takes none"
        );
    }
    if let Some(w) = &r.watchdog {
        let _ = writeln!(out, "{}", watchdog(w));
    }
    let _ = writeln!(out, "\nNODE        STATE  SINCE     INCARNATION  CONFIG");
    for p in &r.peers {
        let config = match p.config_matches {
            Some(true) => "same",
            Some(false) => "DIFFERENT",
            None => "-",
        };
        let cause = because(p.cause.as_deref());
        let _ = writeln!(
            out,
            "{:<11} {:<6} {:<9} {:<12} {config}{cause}",
            p.name,
            state(p.state),
            format!("{}s", p.since_ms / 1000),
            p.incarnation.map_or_else(|| "-".into(), |i| i.to_string()),
        );
        if let Some(line) = peer_watchdog(&p.watchdog) {
            let _ = writeln!(out, "  {line}");
        }
        for l in &p.links {
            let rtt = l
                .rtt_us
                .map_or_else(|| "-".into(), |us| format!("{:.2}ms", us as f64 / 1000.0));
            let cause = because(l.cause.as_deref());
            let _ = writeln!(
                out,
                "  via {:<10} {:<5} heard {:<12} rtt {rtt}{cause}",
                l.path,
                state(l.state),
                age(l.last_heard_ms)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nPATH        KIND    PORT    SENT      RECEIVED  REJECTED"
    );
    for p in &r.paths {
        let rejected: Vec<String> = p.rejected.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let port = if p.open { "open" } else { "CLOSED" };
        let _ = writeln!(
            out,
            "{:<11} {:<7} {:<7} {:<9} {:<9} {}",
            p.name,
            p.kind,
            port,
            p.frames_sent,
            p.frames_received,
            if rejected.is_empty() {
                "-".into()
            } else {
                rejected.join(" ")
            }
        );
        if let Some(e) = &p.error {
            let _ = writeln!(out, "  error: {e}");
        }
    }
    if !r.fences.is_empty() {
        let _ = writeln!(out, "\n{}", fences(&r.fences));
    }
    if !r.fence_devices.is_empty() {
        let _ = writeln!(out, "\nlast fence device checks:");
        out.push_str(&device_checks(&r.fence_devices));
    }
    out
}

/// "ok", or "FAILED: why".
fn outcome(error: Option<&str>) -> String {
    error.map_or_else(|| "ok".to_owned(), |e| format!("FAILED: {e}"))
}

/// The table of the last fences of each node.
fn fences(records: &[FenceRecord]) -> String {
    let mut out =
        "NODE        DEVICE      ACTION  STARTED                   TOOK      RESULT".to_owned();
    for f in records {
        let _ = write!(
            out,
            "\n{:<11} {:<11} {:<7} {:<25} {:<9} {}",
            f.node,
            f.device,
            f.action,
            show_time(f.at_ms),
            format!("{}ms", f.duration_ms),
            outcome(f.error.as_deref())
        );
    }
    out
}

/// One line per device check: `hactl fence test` and `hactl status`.
pub fn device_checks(checks: &[DeviceCheck]) -> String {
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(
            out,
            "fence device {}: {} (checked {}, took {}ms)",
            c.device,
            outcome(c.error.as_deref()),
            show_time(c.at_ms),
            c.duration_ms
        );
    }
    out
}

/// The line of `hactl status` for a peer's advertised watchdog, once it
/// advertised one.
fn peer_watchdog(w: &PeerWatchdog) -> Option<String> {
    match w {
        PeerWatchdog::NotHeard => None,
        PeerWatchdog::Disabled => Some("watchdog: none".to_owned()),
        PeerWatchdog::Enabled {
            armed_device,
            timeout_s,
            lease_s,
        } => Some(format!(
            "watchdog: {}, timeout {timeout_s}s, lease {lease_s}s",
            if *armed_device {
                "armed device"
            } else {
                "not a reliable device"
            }
        )),
    }
}

/// The watchdog line of `hactl status`.
fn watchdog(w: &WatchdogStatus) -> String {
    let armed = if w.armed_device {
        "armed device"
    } else {
        "not a reliable device (it cannot reset this node)"
    };
    let lease = match w.lease_left_ms {
        None => format!("lease {}s (no service held)", w.lease_s),
        Some(0) => format!("lease {}s RAN OUT with services held", w.lease_s),
        Some(ms) => format!("lease {}s ({}s left)", w.lease_s, ms.div_ceil(1000)),
    };
    let state = match (&w.self_fence, &w.withheld) {
        (Some(why), _) => format!("SELF-FENCING, no more pets: {why}"),
        (None, Some(why)) => format!("NOT PETTED: {why}"),
        (None, None) if w.petting => "petted".to_owned(),
        (None, None) => "not petted yet".to_owned(),
    };
    format!(
        "watchdog {} {}: timeout {}s, {armed}, {lease}, {state}",
        w.device, w.kind, w.timeout_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_device_checks() {
        let record = FenceRecord {
            node: "beta".into(),
            device: "ipmi".into(),
            action: "off".into(),
            at_ms: 1_700_000_000_123,
            duration_ms: 840,
            error: None,
        };
        let failed = FenceRecord {
            error: Some("the agent failed (exit 1)".into()),
            ..record.clone()
        };
        let table = fences(&[record, failed]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(
            lines[1].starts_with("beta        ipmi        off"),
            "{table}"
        );
        assert!(lines[1].contains("2023-11-14T22:13:20.123Z") && lines[1].contains("840ms"));
        assert!(lines[1].ends_with(" ok"), "{table}");
        assert!(
            lines[2].ends_with("FAILED: the agent failed (exit 1)"),
            "{table}"
        );
        let check = DeviceCheck {
            device: "pdu".into(),
            at_ms: 0,
            duration_ms: 3,
            error: Some("no route to host".into()),
        };
        assert_eq!(
            device_checks(&[check]),
            "fence device pdu: FAILED: no route to host (checked 1970-01-01T00:00:00.000Z, took 3ms)\n"
        );
    }

    #[test]
    fn peer_watchdog_lines() {
        assert_eq!(peer_watchdog(&PeerWatchdog::NotHeard), None);
        assert_eq!(
            peer_watchdog(&PeerWatchdog::Disabled).as_deref(),
            Some("watchdog: none")
        );
        let w = PeerWatchdog::Enabled {
            armed_device: true,
            timeout_s: 10,
            lease_s: 60,
        };
        assert_eq!(
            peer_watchdog(&w).as_deref(),
            Some("watchdog: armed device, timeout 10s, lease 60s")
        );
    }

    #[test]
    fn watchdog_line() {
        let mut w = WatchdogStatus {
            device: "/dev/watchdog".into(),
            kind: "device \"iTCO_wdt\"".into(),
            timeout_s: 10,
            armed_device: true,
            petting: true,
            lease_s: 60,
            ..WatchdogStatus::default()
        };
        assert_eq!(
            watchdog(&w),
            "watchdog /dev/watchdog device \"iTCO_wdt\": timeout 10s, armed device, lease 60s \
             (no service held), petted"
        );
        w.lease_left_ms = Some(41_200);
        assert!(
            watchdog(&w).contains("lease 60s (42s left)"),
            "{}",
            watchdog(&w)
        );
        w.lease_left_ms = Some(0);
        assert!(
            watchdog(&w).contains("lease 60s RAN OUT"),
            "{}",
            watchdog(&w)
        );
        w.petting = false;
        w.withheld = Some("hasvrd has not reported healthy yet".into());
        assert!(watchdog(&w).ends_with("NOT PETTED: hasvrd has not reported healthy yet"));
        w.self_fence = Some("stop of www failed".into());
        w.armed_device = false;
        let line = watchdog(&w);
        assert!(line.contains("cannot reset this node"), "{line}");
        assert!(
            line.ends_with("SELF-FENCING, no more pets: stop of www failed"),
            "{line}"
        );
    }
}
