//! Node standby on the service machine: a holder hands the service to an
//! able peer (or keeps it while there is none), a standby node never
//! queues, starts or takes over, and out of standby it wants the service
//! again under the switchback rules.

use super::*;

fn standby_on() -> Input {
    Input::Standby(Some("hactl on alpha".into()))
}

/// alpha running the service, then put in standby with beta able: it
/// stops (proven), releases and asks beta, and queues no more.
fn standby_moves_alpha_away() -> Vec<(u64, Input, &'static [&'static str])> {
    with(
        running_alpha(),
        vec![
            (5000, standby_on(), &["info", "info", "stop application"]),
            (5100, Stopped(Application), &["stop ips"]),
            (5200, Stopped(Ips), &["stop volumes"]),
            (5300, Stopped(Volumes), &["probe"]),
            (
                5400,
                StatusProbe(NotRunning),
                &["release", "ask beta", "=STANDBY"],
            ),
            (5500, owner(Some("beta")), &[]),
            // Its start timeout over: still no request.
            (60_000, Timer, &[]),
        ],
    )
}

#[test]
fn a_holder_in_standby_moves_to_its_able_peer_and_takes_nothing() {
    let mut rig = run(Scenario {
        name: "standby on the holder",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: standby_moves_alpha_away(),
        end: State::Standby,
    });
    assert_eq!(rig.svc.standby(), Some("hactl on alpha"));
    assert!(!rig.svc.can_host());
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("standby"), "{why}");
    // A forwarded TakeOver (beta asking it to take the service back) is
    // refused too.
    assert_eq!(rig.feed(ms(61_000), cmd(Op::TakeOver)), ["warning"]);
    // Said again: nothing new.
    assert_eq!(rig.feed(ms(62_000), standby_on()), Vec::<String>::new());
}

#[test]
fn out_of_standby_a_node_queues_again_and_switchback_brings_the_service_back() {
    let mut rig = run(Scenario {
        name: "standby on the holder, then off",
        me: "alpha",
        tweak: none,
        init: &["probe", "request 100"],
        steps: standby_moves_alpha_away(),
        end: State::Standby,
    });
    assert_eq!(
        rig.feed(ms(70_000), Input::Standby(None)),
        ["info", "request 100"]
    );
    assert!(rig.svc.can_host());
    assert_eq!(rig.svc.standby(), None);
    assert_eq!(
        rig.feed(ms(70_100), OwnershipGranted),
        ["start volumes", "=ACTIVESTB"]
    );
}

#[test]
fn the_holder_beta_hands_the_service_back_once_alpha_leaves_standby() {
    let mut s = base();
    s.switchback = true;
    s.switchback_stable = Duration::from_secs(10);
    let (mut rig, _) = Rig::new(s, "beta");
    rig.feed(ms(0), StatusProbe(NotRunning));
    rig.feed(ms(0), peer("alpha", true, false));
    rig.feed(ms(100), OwnershipGranted);
    for (t, step) in [(200, Volumes), (300, Ips), (400, Application)] {
        rig.feed(ms(t), Started(step));
    }
    // alpha out of standby: back after switchback_stable, not before.
    rig.feed(ms(30_000), peer("alpha", true, true));
    rig.feed(ms(30_100), StatusProbe(Running));
    let early = rig.feed(ms(39_000), Timer);
    assert!(!early.contains(&"stop application".to_owned()), "{early:?}");
    rig.feed(ms(39_100), StatusProbe(Running));
    assert_eq!(rig.feed(ms(40_000), Timer), ["info", "stop application"]);
}

#[test]
fn a_holder_without_an_able_peer_keeps_running_until_one_is() {
    let (mut rig, _) = Rig::new(base(), "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    rig.feed(ms(4500), peer("beta", false, false));
    assert_eq!(rig.feed(ms(5000), standby_on()), ["warning"]);
    assert_eq!(rig.svc.state(), State::ActiveAct);
    assert_eq!(
        rig.feed(ms(6000), peer("beta", true, true)),
        ["info", "stop application", "=ACTIVE"]
    );
}

#[test]
fn a_queued_node_withdraws_its_request_in_standby() {
    let (mut rig, _) = Rig::new(base(), "beta");
    rig.feed(ms(0), StatusProbe(NotRunning));
    rig.feed(ms(0), owner(Some("alpha")));
    assert_eq!(rig.feed(ms(100), standby_on()), ["info", "release"]);
    assert!(!rig.svc.can_host());
    // A lock granted anyway (a request already on its way) is given back.
    assert_eq!(
        rig.feed(ms(200), OwnershipGranted),
        ["info", "release", "ask -"]
    );
}

#[test]
fn a_restarted_hasvrd_in_standby_never_queues() {
    let mut svc = Service::restored(base(), "alpha", ms(0), false, 0, Some("persisted".into()));
    let outs: Vec<String> = std::iter::from_fn(|| svc.poll())
        .map(|o| short(&o))
        .collect();
    assert_eq!(outs, ["probe"]);
    assert!(!svc.can_host());
    assert_eq!(svc.standby(), Some("persisted"));
}
