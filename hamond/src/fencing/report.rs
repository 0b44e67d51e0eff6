//! What hamond tells the operator about its fencing devices: the fences it
//! ran and each device's last `monitor` check, as `hactl status` shows them
//! (haschema's [`FenceRecord`] and [`DeviceCheck`]), and the periodic
//! checks themselves ([`checks`]), run beside the daemon loop.

use hamond::fence::{Check, Fencer, HistoryEntry};
use haschema::ctl::{DeviceCheck, FENCES_SHOWN, FenceRecord};
use haschema::event::unix_ms;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The first check of every device, this long after the start.
pub const FIRST_CHECK: Duration = Duration::from_secs(30);
/// The checks after the first, this far apart.
pub const CHECK_EVERY: Duration = Duration::from_secs(5 * 60);

/// Checks every device of `fencer` after [`FIRST_CHECK`], then every
/// [`CHECK_EVERY`], for as long as hamond runs (nothing without devices).
/// Failures are logged by [`Fencer::monitor`]; the last check of each
/// device is kept there for `hactl status`.
pub fn checks(fencer: Arc<Fencer>) {
    if !fencer.has_devices() {
        return;
    }
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_CHECK).await;
        loop {
            if let Err(e) = fencer.monitor(None).await {
                tracing::error!("cannot check the fencing devices: {e}; see the [[fence]] tables");
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
}

/// The last [`FENCES_SHOWN`] attempts of each node in `history` (oldest
/// first), as `hactl status` shows them.
pub fn fences(history: &[HistoryEntry]) -> Vec<FenceRecord> {
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    let mut shown: Vec<FenceRecord> = history
        .iter()
        .rev()
        .filter(|e| {
            let n = per_node.entry(e.node.as_str()).or_default();
            *n += 1;
            *n <= FENCES_SHOWN
        })
        .map(|e| FenceRecord {
            node: e.node.clone(),
            device: e.device.clone(),
            action: e.action.to_string(),
            at_ms: unix_ms(e.time),
            duration_ms: millis(e.duration),
            error: e.result.as_ref().err().map(ToString::to_string),
        })
        .collect();
    shown.reverse();
    shown
}

/// A device check as `hactl status` and `hactl fence test` show it.
pub fn device_check(c: &Check) -> DeviceCheck {
    DeviceCheck {
        device: c.device.clone(),
        at_ms: unix_ms(c.time),
        duration_ms: millis(c.duration),
        error: c.result.as_ref().err().map(ToString::to_string),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamond::fence::{Action, FenceError};
    use std::time::SystemTime;

    fn entry(node: &str, n: u64, result: Result<(), FenceError>) -> HistoryEntry {
        HistoryEntry {
            node: node.into(),
            action: Action::Off,
            device: "ipmi".into(),
            result,
            duration: Duration::from_millis(n),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(n),
        }
    }

    #[test]
    fn the_last_fences_of_each_node_oldest_first() {
        let mut history: Vec<HistoryEntry> = (1..=7).map(|n| entry("beta", n, Ok(()))).collect();
        history.insert(
            2,
            entry(
                "gamma",
                100,
                Err(FenceError::TimedOut(Duration::from_secs(20))),
            ),
        );
        let shown = fences(&history);
        let seen: Vec<(&str, u64)> = shown
            .iter()
            .map(|r| (r.node.as_str(), r.duration_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("gamma", 100),
                ("beta", 3),
                ("beta", 4),
                ("beta", 5),
                ("beta", 6),
                ("beta", 7)
            ]
        );
        assert_eq!(shown[0].at_ms, 100_000);
        assert_eq!(
            (shown[1].action.as_str(), shown[1].device.as_str()),
            ("off", "ipmi")
        );
        assert_eq!(shown[1].error, None);
        let e = shown[0].error.as_deref().unwrap();
        assert!(e.contains("did not finish within 20s"), "{e}");
    }

    #[test]
    fn a_check_shows_its_error() {
        let c = Check {
            device: "pdu".into(),
            result: Err(FenceError::Setup("pdu: no agent program".into())),
            duration: Duration::from_millis(12),
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(5),
        };
        let shown = device_check(&c);
        assert_eq!(
            (shown.device.as_str(), shown.at_ms, shown.duration_ms),
            ("pdu", 5, 12)
        );
        assert_eq!(shown.error.as_deref(), Some("pdu: no agent program"));
    }
}
