//! Failure accounting on the service machine: the fail count with the time
//! of each failure, `migration_threshold`, `failure_timeout`, Cleanup, and
//! the `switchback_stable` time of a returning preferred node.

use super::*;

fn crash() -> Input {
    AgentFailed(Cause::Application("crashed".into()))
}

/// The holder's stop after it decided to move, proven, then released.
fn moved_away(t: u64) -> Vec<(u64, Input, &'static [&'static str])> {
    vec![
        (t + 100, Stopped(Application), &["stop ips"]),
        (t + 200, Stopped(Ips), &["stop volumes"]),
        (t + 300, Stopped(Volumes), &["probe"]),
        (
            t + 400,
            StatusProbe(NotRunning),
            &["release", "ask beta", "=STANDBY"],
        ),
        (t + 500, owner(Some("beta")), &["request 1"]),
    ]
}

/// Local restarts left (restart_times 5), two failures allowed here.
fn threshold_2(s: &mut Settings) {
    s.restart_times = 5;
    s.migration_threshold = Some(2);
}

#[test]
fn the_migration_threshold_moves_the_service_after_n_failures() {
    let rig = run(Scenario {
        name: "threshold 2: restarted once, then moved; the node then queues last",
        me: "alpha",
        tweak: threshold_2,
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            with(
                vec![
                    (5000, crash(), &["warning", "stop application"]),
                    (5100, Stopped(Application), &["start application"]),
                    (5200, Started(Application), &[]),
                    (6000, crash(), &["error", "stop application"]),
                ],
                moved_away(6000),
            ),
        ),
        end: State::Standby,
    });
    assert_eq!(rig.svc.fail_count(), 2);
    assert_eq!(
        rig.svc.failure_times().collect::<Vec<_>>(),
        [ms(5000), ms(6000)]
    );
    assert!(!rig.svc.can_host());
    assert!(!rig.svc.failed_here(), "restart_times was not used up");
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("migration_threshold 2"), "{why}");
}

#[test]
fn a_holder_over_the_threshold_stays_without_an_able_peer_and_moves_when_one_is() {
    let mut s = base();
    threshold_2(&mut s);
    let (mut rig, _) = Rig::new(s, "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    rig.feed(ms(4500), peer("beta", false, false));
    rig.feed(ms(5000), crash());
    rig.feed(ms(5100), Stopped(Application));
    rig.feed(ms(5200), Started(Application));
    // Over the threshold with no able peer: it stays, with an emergency.
    let out = rig.feed(ms(6000), crash());
    assert_eq!(out, ["emergency", "stop application"]);
    rig.feed(ms(6100), Stopped(Application));
    rig.feed(ms(6200), Started(Application));
    assert_eq!(rig.svc.fail_count(), 2);
    // A peer becomes able: the service moves at once.
    let out = rig.feed(ms(7000), peer("beta", true, true));
    assert_eq!(out, ["error", "stop application", "=ACTIVE"]);
}

#[test]
fn expired_failures_restore_eligibility() {
    let mut rig = run(Scenario {
        name: "threshold 1, failures expire after 60 s",
        me: "alpha",
        tweak: |s| {
            threshold_2(s);
            s.migration_threshold = Some(1);
            s.failure_timeout = Some(Duration::from_secs(60));
        },
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            with(
                vec![(5000, crash(), &["error", "stop application"])],
                moved_away(5000),
            ),
        ),
        end: State::Standby,
    });
    assert_eq!(rig.svc.next_deadline(), Some(ms(65_000)));
    assert_eq!(rig.feed(ms(64_999), Timer), Vec::<String>::new());
    assert!(!rig.svc.can_host());
    assert_eq!(rig.feed(ms(65_000), Timer), ["info", "request 100"]);
    assert!(rig.svc.can_host());
    assert_eq!(rig.svc.fail_count(), 0);
    assert_eq!(rig.svc.next_deadline(), None);
}

#[test]
fn the_ban_after_restart_times_ends_when_every_failure_expired() {
    let mut rig = run(Scenario {
        name: "restart_times 0, failures expire after 60 s",
        me: "alpha",
        tweak: |s| {
            s.restart_times = 0;
            s.failure_timeout = Some(Duration::from_secs(60));
        },
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            with(
                vec![(5000, crash(), &["error", "stop application"])],
                moved_away(5000),
            ),
        ),
        end: State::Standby,
    });
    assert!(rig.svc.failed_here() && !rig.svc.can_host());
    assert_eq!(rig.feed(ms(65_000), Timer), ["info", "request 100"]);
    assert!(!rig.svc.failed_here() && rig.svc.can_host());
}

#[test]
fn without_failure_timeout_failures_count_until_cleanup() {
    let mut rig = run(Scenario {
        name: "threshold 1, no failure_timeout",
        me: "alpha",
        tweak: |s| {
            threshold_2(s);
            s.migration_threshold = Some(1);
        },
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            with(
                vec![(5000, crash(), &["error", "stop application"])],
                moved_away(5000),
            ),
        ),
        end: State::Standby,
    });
    assert_eq!(rig.svc.next_deadline(), None, "nothing expires");
    assert_eq!(rig.feed(ms(10_000_000), Timer), Vec::<String>::new());
    assert!(!rig.svc.can_host());
    assert_eq!(rig.feed(ms(10_000_100), cmd(Op::Cleanup)), ["request 100"]);
    assert_eq!(rig.svc.fail_count(), 0);
    assert!(rig.svc.can_host());
    assert_eq!(rig.svc.failure_times().count(), 0);
}

/// beta holds and runs the service from 4000 ms, alpha down; switchback on,
/// alpha must be able for 30 s before it gets the service back.
fn running_beta_with_stable_switchback() -> Rig {
    let mut s = base();
    s.switchback = true;
    s.switchback_stable = Duration::from_secs(30);
    let (mut rig, init) = Rig::new(s, "beta");
    assert_eq!(init, ["probe", "request 99"]);
    for (t, i) in [
        (0, StatusProbe(NotRunning)),
        (0, peer("alpha", false, false)),
        (1000, OwnershipGranted),
        (2000, Started(Volumes)),
        (3000, Started(Ips)),
        (4000, Started(Application)),
    ] {
        rig.feed(ms(t), i);
    }
    assert_eq!(rig.svc.state(), State::ActiveAct);
    rig
}

fn hands_back(out: &[String]) -> bool {
    out.iter().any(|o| o == "stop application")
}

#[test]
fn a_flapping_preferred_node_gets_no_switchback_before_the_stable_time() {
    let mut rig = running_beta_with_stable_switchback();
    assert!(!hands_back(
        &rig.feed(ms(10_000), peer("alpha", true, true))
    ));
    // A repeated advert does not restart the time; a break does.
    rig.feed(ms(20_000), peer("alpha", true, true));
    rig.feed(ms(25_000), peer("alpha", true, false));
    assert!(!hands_back(
        &rig.feed(ms(30_000), peer("alpha", true, true))
    ));
    rig.feed(ms(35_000), peer("alpha", false, false));
    rig.feed(ms(45_000), peer("alpha", true, true));
    for t in [50_000, 60_000, 74_000] {
        let out = rig.feed(ms(t), Timer);
        assert!(!hands_back(&out), "at {t} ms: {out:?}");
        rig.feed(ms(t + 1), StatusProbe(Running));
    }
    assert_eq!(rig.svc.next_deadline(), Some(ms(75_000)));
    assert!(!hands_back(&rig.feed(ms(74_999), Timer)));
    let out = rig.feed(ms(75_000), Timer);
    assert_eq!(out[..2], ["info", "stop application"]);
}

#[test]
fn a_stable_preferred_node_gets_the_service_back_after_the_stable_time() {
    let mut rig = running_beta_with_stable_switchback();
    assert!(!hands_back(
        &rig.feed(ms(10_000), peer("alpha", true, true))
    ));
    // A probe is out: the next deadline is the switchback's.
    assert_eq!(rig.svc.next_deadline(), Some(ms(40_000)));
    let out = rig.feed(ms(40_000), Timer);
    assert_eq!(out[..2], ["info", "stop application"]);
}

#[test]
fn restored_failures_keep_the_migration_threshold_and_expire() {
    let mut s = base();
    threshold_2(&mut s);
    s.failure_timeout = Some(Duration::from_secs(60));
    let svc = Service::restored(s, "alpha", ms(100_000), false, 0, None);
    let chk = Checker::new("alpha", svc.state());
    let mut rig = Rig { svc, chk };
    rig.drain();
    assert!(rig.svc.can_host());
    // One of the three is older than failure_timeout: two still count.
    rig.svc
        .restore_failures(ms(100_000), &[ms(90_000), ms(30_000), ms(50_000)]);
    let out = rig.drain();
    assert!(out.contains(&"info".to_owned()), "{out:?}");
    assert_eq!(rig.svc.fail_count(), 2);
    assert_eq!(
        rig.svc.failure_times().collect::<Vec<_>>(),
        [ms(50_000), ms(90_000)]
    );
    assert!(!rig.svc.can_host(), "at migration_threshold 2");
    rig.feed(ms(110_000), Timer);
    assert_eq!(rig.svc.fail_count(), 1);
    assert!(rig.svc.can_host());
    // Nothing to restore: nothing happens.
    rig.svc.restore_failures(ms(110_001), &[]);
    assert_eq!(rig.drain(), Vec::<String>::new());
}
