//! Tests of [`Fencer`] with scripted in-memory devices: device choice and
//! order, the proof after `off`, the history, and the device checks.

use super::*;
use crate::fence::BoxFuture;
use std::sync::Mutex;

/// A device that answers from a script and records its calls.
struct Fake {
    name: &'static str,
    nodes: &'static [&'static str],
    /// Answer to off/reboot.
    action: Result<FenceOutcome, FenceError>,
    /// Answer to status.
    status: Result<FenceOutcome, FenceError>,
    /// Answer to monitor.
    monitor: Result<(), FenceError>,
    calls: Mutex<Vec<Action>>,
}

impl Fake {
    fn new(name: &'static str, nodes: &'static [&'static str]) -> Fake {
        Fake {
            name,
            nodes,
            action: Ok(FenceOutcome::Done),
            status: Ok(FenceOutcome::Power(PowerState::Off)),
            monitor: Ok(()),
            calls: Mutex::default(),
        }
    }
}

impl FenceDevice for Fake {
    fn name(&self) -> &str {
        self.name
    }
    fn fences(&self, node: &str) -> bool {
        self.nodes.contains(&node)
    }
    fn fence<'a>(
        &'a self,
        _node: &'a str,
        action: Action,
    ) -> BoxFuture<'a, Result<FenceOutcome, FenceError>> {
        self.calls.lock().unwrap().push(action);
        let answer = if action == Action::Status {
            self.status.clone()
        } else {
            self.action.clone()
        };
        Box::pin(async move { answer })
    }
    fn monitor(&self) -> BoxFuture<'_, Result<(), FenceError>> {
        self.calls.lock().unwrap().push(Action::Monitor);
        let answer = self.monitor.clone();
        Box::pin(async move { answer })
    }
}

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn failed() -> FenceError {
    FenceError::Failed {
        code: Some(1),
        detail: "no route to host".into(),
    }
}

#[test]
fn off_is_proven_by_status() {
    let f = Fencer::new(vec![Box::new(Fake::new("ipmi", &["beta"]))]);
    assert!(f.can_fence("beta") && !f.can_fence("alpha"));
    assert_eq!(run(f.fence("beta", Action::Off)), Ok("ipmi".to_owned()));
    let h = f.history();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (h[0].node.as_str(), h[0].action, h[0].device.as_str()),
        ("beta", Action::Off, "ipmi")
    );
    assert_eq!(h[0].result, Ok(()));
    assert!(h[0].time <= SystemTime::now());

    // Off reported done but the node is still on: not a fence.
    let mut on = Fake::new("liar", &["beta"]);
    on.status = Ok(FenceOutcome::Power(PowerState::On));
    let f = Fencer::new(vec![Box::new(on)]);
    let e = run(f.fence("beta", Action::Off)).unwrap_err();
    assert!(matches!(e, FenceError::NotProven(_)), "{e}");
    assert_eq!(f.history()[0].result, Err(e));

    // Status failing after off is not a proof either.
    let mut mute = Fake::new("mute", &["beta"]);
    mute.status = Err(failed());
    let f = Fencer::new(vec![Box::new(mute)]);
    assert!(matches!(
        run(f.fence("beta", Action::Off)),
        Err(FenceError::NotProven(_))
    ));

    // Reboot needs no status (the node comes back on).
    let mut on = Fake::new("pdu", &["beta"]);
    on.status = Ok(FenceOutcome::Power(PowerState::On));
    let f = Fencer::new(vec![Box::new(on)]);
    assert_eq!(run(f.fence("beta", Action::Reboot)), Ok("pdu".to_owned()));
}

#[test]
fn devices_are_tried_in_order_until_one_succeeds() {
    let mut first = Fake::new("ipmi", &["alpha", "beta"]);
    first.action = Err(failed());
    let other = Fake::new("other", &["alpha"]);
    let second = Fake::new("pdu", &["beta"]);
    let f = Fencer::new(vec![Box::new(first), Box::new(other), Box::new(second)]);
    let names: Vec<&str> = f.devices_for("beta").map(|d| d.name()).collect();
    assert_eq!(names, ["ipmi", "pdu"]);
    assert_eq!(run(f.fence("beta", Action::Off)), Ok("pdu".to_owned()));
    let history = f.history();
    let h: Vec<(&str, bool)> = history
        .iter()
        .map(|e| (e.device.as_str(), e.result.is_ok()))
        .collect();
    assert_eq!(h, [("ipmi", false), ("pdu", true)]);

    // All fail: the last error, every attempt recorded.
    let mut a = Fake::new("a", &["beta"]);
    a.action = Err(FenceError::TimedOut(Duration::from_secs(1)));
    let mut b = Fake::new("b", &["beta"]);
    b.action = Err(failed());
    let f = Fencer::new(vec![Box::new(a), Box::new(b)]);
    assert_eq!(run(f.fence("beta", Action::Off)), Err(failed()));
    assert_eq!(f.history().len(), 2);
}

#[test]
fn no_device_and_wrong_actions() {
    let f = Fencer::new(vec![Box::new(Fake::new("ipmi", &["alpha"]))]);
    let e = run(f.fence("beta", Action::Off)).unwrap_err();
    assert_eq!(
        e,
        FenceError::NoDevice {
            node: "beta".into()
        }
    );
    assert!(e.to_string().contains("hactl fence confirm beta"), "{e}");
    assert!(f.history().is_empty());
    for action in [Action::On, Action::Status, Action::Monitor] {
        assert_eq!(
            run(f.fence("alpha", action)),
            Err(FenceError::Unsupported(action))
        );
    }
}

#[test]
fn history_is_bounded() {
    let f = Fencer::new(vec![Box::new(Fake::new("ipmi", &["beta"]))]);
    for _ in 0..HISTORY_LEN + 3 {
        run(f.fence("beta", Action::Reboot)).unwrap();
    }
    assert_eq!(f.history().len(), HISTORY_LEN);
}

#[test]
fn monitor_checks_one_or_every_device_and_keeps_the_last() {
    let mut broken = Fake::new("pdu", &["beta"]);
    broken.monitor = Err(failed());
    let f = Fencer::new(vec![
        Box::new(Fake::new("ipmi", &["beta"])),
        Box::new(broken),
    ]);
    assert!(f.checks().is_empty(), "nothing checked yet");

    let all = run(f.monitor(None)).unwrap();
    let results: Vec<(&str, bool)> = all
        .iter()
        .map(|c| (c.device.as_str(), c.result.is_ok()))
        .collect();
    assert_eq!(results, [("ipmi", true), ("pdu", false)], "config order");
    assert_eq!(all[1].result, Err(failed()));
    assert_eq!(f.checks(), all);

    let one = run(f.monitor(Some("ipmi"))).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(f.checks()[0], one[0], "the newest check is kept");
    assert_eq!(f.checks()[1], all[1]);
    assert!(f.history().is_empty(), "a check is not a fence");

    let e = run(f.monitor(Some("apc"))).unwrap_err();
    assert!(
        e.contains("no fencing device apc") && e.contains("ipmi, pdu"),
        "{e}"
    );
    let none = Fencer::new(Vec::new());
    assert!(!none.has_devices());
    assert!(
        run(none.monitor(None))
            .unwrap_err()
            .contains("no [[fence]] device")
    );
}
