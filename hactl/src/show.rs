//! Human-readable rendering of hamond's reports.

use haschema::ctl::{State, StatusReport, WatchdogStatus};
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
    out
}

/// The watchdog line of `hactl status`.
fn watchdog(w: &WatchdogStatus) -> String {
    let armed = if w.armed_device {
        "armed device (peers may rely on it)"
    } else {
        "not a reliable device (fencing required)"
    };
    let state = match (&w.self_fence, &w.withheld) {
        (Some(why), _) => format!("SELF-FENCING, no more pets: {why}"),
        (None, Some(why)) => format!("NOT PETTED: {why}"),
        (None, None) if w.petting => "petted".to_owned(),
        (None, None) => "not petted yet".to_owned(),
    };
    format!(
        "watchdog {} {}: timeout {}s, {armed}, {state}",
        w.device, w.kind, w.timeout_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_line() {
        let mut w = WatchdogStatus {
            device: "/dev/watchdog".into(),
            kind: "device \"iTCO_wdt\"".into(),
            timeout_s: 10,
            armed_device: true,
            petting: true,
            withheld: None,
            self_fence: None,
        };
        assert_eq!(
            watchdog(&w),
            "watchdog /dev/watchdog device \"iTCO_wdt\": timeout 10s, armed device (peers may \
             rely on it), petted"
        );
        w.petting = false;
        w.withheld = Some("hasvrd has not reported healthy yet".into());
        assert!(watchdog(&w).ends_with("NOT PETTED: hasvrd has not reported healthy yet"));
        w.self_fence = Some("stop of www failed".into());
        w.armed_device = false;
        let line = watchdog(&w);
        assert!(line.contains("fencing required"), "{line}");
        assert!(
            line.ends_with("SELF-FENCING, no more pets: stop of www failed"),
            "{line}"
        );
    }
}
