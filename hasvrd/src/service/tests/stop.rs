//! The operator's Stop on the service machine: the holder stops in
//! reverse, proves it and releases without asking a peer; every node ends
//! brought out (OUTSTB) and asks for nothing until BringIn, which goes
//! through the lock again, on the preferred able node.

use super::*;

/// The holder's proven stop after Stop (at 5000 ms), ending released and
/// OUTSTB with nothing asked for.
fn alpha_stopped() -> Vec<(u64, Input, &'static [&'static str])> {
    with(
        running_alpha(),
        vec![
            (
                5000,
                cmd(Op::Stop),
                &["info", "stop application", "=OUTACT"],
            ),
            (5100, Stopped(Application), &["stop ips"]),
            (5200, Stopped(Ips), &["stop volumes"]),
            (5300, Stopped(Volumes), &["probe"]),
            (
                5400,
                StatusProbe(NotRunning),
                &["release", "info", "=OUTSTB"],
            ),
            // Nobody is asked to take it, and nothing is asked for later.
            (5500, owner(None), &[]),
            (60_000, Timer, &[]),
        ],
    )
}

#[test]
fn stop_on_the_holder_stops_in_reverse_proves_and_releases_into_outstb() {
    let mut rig = run(Scenario {
        name: "stop on the holder",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: alpha_stopped(),
        end: State::OutStb,
    });
    assert!(!rig.svc.owned());
    assert!(!rig.svc.managed());
    assert!(!rig.svc.wants_here());
    assert!(rig.svc.settled());
    // Taking it over needs a BringIn first.
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("BringIn"), "{why}");
    assert_eq!(rig.feed(ms(61_000), cmd(Op::TakeOver)), ["warning"]);
    // Said again: nothing new.
    assert_eq!(rig.feed(ms(62_000), cmd(Op::Stop)), Vec::<String>::new());
}

#[test]
fn bring_in_after_stop_asks_for_the_lock_again_and_starts_on_the_grant() {
    let mut rig = run(Scenario {
        name: "stop, then bring in",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: alpha_stopped(),
        end: State::OutStb,
    });
    assert_eq!(
        rig.feed(ms(70_000), cmd(Op::BringIn)),
        ["info", "request 100", "=STANDBY"]
    );
    assert_eq!(
        rig.feed(ms(70_100), OwnershipGranted),
        ["start volumes", "=ACTIVE"]
    );
}

#[test]
fn stop_while_a_step_runs_lets_it_finish_then_stops_what_is_up() {
    run(Scenario {
        name: "stop during the start of the IPs",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: vec![
            (0, StatusProbe(NotRunning), &[]),
            (0, peer("beta", true, true), &[]),
            (1000, OwnershipGranted, &["start volumes", "=ACTIVE"]),
            (2000, Started(Volumes), &["start ips"]),
            (2500, cmd(Op::Stop), &["info", "=OUTACT"]),
            // The application is not started: the IPs come down first.
            (3000, Started(Ips), &["stop ips"]),
            (3100, Stopped(Ips), &["stop volumes"]),
            (3200, Stopped(Volumes), &["probe"]),
            (
                3300,
                StatusProbe(NotRunning),
                &["release", "info", "=OUTSTB"],
            ),
        ],
        end: State::OutStb,
    });
}

#[test]
fn a_failed_stop_after_stop_is_erroract_and_cleanup_finishes_the_stop() {
    let mut rig = run(Scenario {
        name: "stop fails",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            vec![
                (
                    5000,
                    cmd(Op::Stop),
                    &["info", "stop application", "=OUTACT"],
                ),
                (
                    5100,
                    StopFailed(Application, "timed out".into()),
                    &["emergency", "=ERRORACT"],
                ),
                // The lock is kept: no release, however long.
                (60_000, Timer, &[]),
            ],
        ),
        end: State::ErrorAct,
    });
    assert!(rig.svc.owned());
    let why = rig.svc.refusal(Op::Stop).unwrap_or_default();
    assert!(why.contains("Cleanup"), "{why}");
    assert_eq!(rig.feed(ms(61_000), cmd(Op::Stop)), ["warning"]);
    // Cleanup once the cause is fixed: the stop goes on, proven, released.
    assert_eq!(
        rig.feed(ms(62_000), cmd(Op::Cleanup)),
        ["info", "stop application", "=OUTACT"]
    );
    for (t, i) in [
        (62_100, Stopped(Application)),
        (62_200, Stopped(Ips)),
        (62_300, Stopped(Volumes)),
    ] {
        rig.feed(ms(t), i);
    }
    assert_eq!(
        rig.feed(ms(62_400), StatusProbe(NotRunning)),
        ["release", "info", "=OUTSTB"]
    );
}

#[test]
fn a_stop_the_probe_does_not_prove_is_erroract_and_keeps_the_lock() {
    let rig = run(Scenario {
        name: "stop not proven",
        me: "alpha",
        tweak: |s| s.force_reboot = true,
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            vec![
                (
                    5000,
                    cmd(Op::Stop),
                    &["info", "stop application", "=OUTACT"],
                ),
                (5100, Stopped(Application), &["stop ips"]),
                (5200, Stopped(Ips), &["stop volumes"]),
                (5300, Stopped(Volumes), &["probe"]),
                (
                    5400,
                    StatusProbe(Running),
                    &["emergency", "watchdog", "=ERRORACT"],
                ),
            ],
        ),
        end: State::ErrorAct,
    });
    assert!(rig.svc.owned());
}

#[test]
fn stop_of_a_brought_out_running_service_still_stops_it() {
    run(Scenario {
        name: "OUTACT, then stop",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: with(
            running_alpha(),
            vec![
                (4500, cmd(Op::BringOut), &["info", "=OUTACT"]),
                (5000, cmd(Op::Stop), &["info", "stop application"]),
                (5100, Stopped(Application), &["stop ips"]),
                (5200, Stopped(Ips), &["stop volumes"]),
                (5300, Stopped(Volumes), &["probe"]),
                (
                    5400,
                    StatusProbe(NotRunning),
                    &["release", "info", "=OUTSTB"],
                ),
            ],
        ),
        end: State::OutStb,
    });
}

/// beta queued behind alpha (able), then stopped: its request withdrawn.
fn beta_stopped() -> Vec<(u64, Input, &'static [&'static str])> {
    vec![
        (0, StatusProbe(NotRunning), &[]),
        (0, owner(Some("alpha")), &[]),
        (0, peer("alpha", true, true), &[]),
        (1000, cmd(Op::Stop), &["info", "release", "=OUTSTB"]),
        (2000, owner(None), &[]),
        (60_000, Timer, &[]),
    ]
}

#[test]
fn a_queued_node_withdraws_on_stop_and_gives_back_a_late_grant() {
    let mut rig = run(Scenario {
        name: "stop on the standby",
        me: "beta",
        tweak: none,
        init: &["probe", "request 99"],
        steps: beta_stopped(),
        end: State::OutStb,
    });
    // A grant already on its way when the request was withdrawn.
    assert_eq!(rig.feed(ms(61_000), OwnershipGranted), ["release", "info"]);
    assert!(!rig.svc.owned());
    assert_eq!(rig.svc.state(), State::OutStb);
}

#[test]
fn after_stop_bring_in_lets_the_preferred_able_node_ask_first() {
    let mut rig = run(Scenario {
        name: "stop on the standby, then bring in",
        me: "beta",
        tweak: |s| s.boot_grace = Duration::from_secs(10),
        init: &["probe"],
        steps: with(vec![(10_000, Timer, &["request 99"])], beta_stopped()),
        end: State::OutStb,
    });
    assert_eq!(rig.feed(ms(70_000), cmd(Op::BringIn)), ["info", "=STANDBY"]);
    assert_eq!(rig.feed(ms(79_999), Timer), Vec::<String>::new());
    assert_eq!(rig.feed(ms(80_000), Timer), ["request 99"]);
    // Once alpha holds it, beta is its standby as usual.
    assert_eq!(
        rig.feed(ms(80_100), owner(Some("alpha"))),
        Vec::<String>::new()
    );
    // Without an able preferred node, a stopped beta asks at once.
    rig.feed(ms(81_000), owner(None));
    rig.feed(ms(81_000), peer("alpha", false, false));
    rig.feed(ms(81_100), cmd(Op::Stop));
    assert_eq!(
        rig.feed(ms(82_000), cmd(Op::BringIn)),
        ["info", "request 99", "=STANDBY"]
    );
}
