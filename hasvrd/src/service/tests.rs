//! Tests of the service state machine: a table of scenarios driven with
//! virtual time, each also run through the invariant checker, and a
//! randomized property test (seeded, replayable) of the safety rules.

use super::*;
use std::path::PathBuf;

fn ms(n: u64) -> Time {
    Duration::from_millis(n)
}

fn base() -> Settings {
    Settings {
        name: "www".into(),
        nodes: vec!["alpha".into(), "beta".into()],
        check_interval: Duration::from_secs(5),
        check_tko: 1,
        restart_times: 1,
        switchback: false,
        onstart: true,
        force_reboot: false,
        start_timeout: Duration::from_secs(30),
        stop_timeout: Duration::from_secs(30),
        resource_release_timeout: Duration::from_secs(30),
        fencing: false,
        boot_grace: Duration::ZERO,
        migration_threshold: None,
        failure_timeout: None,
        switchback_stable: Duration::ZERO,
    }
}

fn short(o: &Output) -> String {
    match o {
        Output::Start(s) => format!("start {s}"),
        Output::Stop(s) => format!("stop {s}"),
        Output::Probe => "probe".into(),
        Output::RequestOwnership { priority } => format!("request {priority}"),
        Output::ReleaseOwnership => "release".into(),
        Output::AskPeerToTakeOver { node } => format!("ask {}", node.as_deref().unwrap_or("-")),
        Output::AskPeerToFence { node } => format!("fence me {node}"),
        Output::Alert { level, .. } => format!("{level:?}").to_lowercase(),
        Output::StopPettingWatchdog => "watchdog".into(),
        Output::StateChanged { to, .. } => format!("={to}"),
    }
}

fn cmd(op: Op) -> Input {
    Input::Command {
        op,
        by: "root".into(),
    }
}

fn peer(node: &str, up: bool, can_host: bool) -> Input {
    Input::PeerState {
        node: node.into(),
        up,
        can_host,
    }
}

fn owner(node: Option<&str>) -> Input {
    Input::OwnerIs(node.map(str::to_owned))
}

use Input::{
    AgentFailed, FenceConfirmed, Fenced, OwnerIs, OwnerLostUncleanly, OwnershipGranted,
    OwnershipLost, PublicNetworkBack as NetBack, StartFailed, Started, StatusProbe, StopFailed,
    Stopped, Timer,
};
use Status::{Failed, NotRunning, Running};
use Step::{Application, Ips, Volumes};

// ---- the invariant checker -----------------------------------------------

/// Follows inputs and outputs independently of the machine and asserts the
/// safety rules on every output.
struct Checker {
    me: String,
    granted: bool,
    /// Steps started and not yet reported stopped, in start order.
    stack: Vec<usize>,
    /// (is a start, step) outstanding.
    outstanding: Option<(bool, usize)>,
    in_flight: u32,
    /// A probe went out while nothing was up and nothing was running.
    armed: bool,
    /// Something may run here that no proof covered.
    dirty: bool,
    last: State,
    /// The holder lost uncleanly and not fenced (safety rule 1).
    stall: Option<String>,
    fenced: std::collections::BTreeSet<String>,
    /// What is lost on this node (until it is back).
    lost: std::collections::BTreeSet<Loss>,
    /// The other nodes of the service (those of [`base`]) last said up and
    /// able to host.
    able: std::collections::BTreeSet<String>,
    /// This node is in node standby.
    standby: bool,
}

impl Checker {
    fn new(me: &str, initial: State) -> Checker {
        Checker {
            me: me.into(),
            granted: false,
            stack: Vec::new(),
            outstanding: None,
            in_flight: 0,
            armed: false,
            dirty: false,
            last: initial,
            stall: None,
            fenced: Default::default(),
            lost: Default::default(),
            able: Default::default(),
            standby: false,
        }
    }

    fn input(&mut self, i: &Input) {
        match i {
            Input::OwnershipGranted => self.granted = true,
            Input::OwnershipLost => self.granted = false,
            Input::OwnerIs(o) if o.as_deref() != Some(self.me.as_str()) => {
                self.granted = false;
                if let Some(x) = o {
                    if self.stall.as_ref() == Some(x) {
                        self.stall = None;
                    }
                    self.fenced.remove(x);
                }
            }
            Input::OwnerLostUncleanly(x)
                if *x != self.me && !self.granted && !self.fenced.remove(x) =>
            {
                self.stall = Some(x.clone());
            }
            Input::AgentFailed(Cause::PublicNetwork(_)) => {
                self.lost.insert(Loss::PublicNetwork);
            }
            Input::AgentFailed(Cause::Storage(_)) => {
                self.lost.insert(Loss::Storage);
            }
            Input::PublicNetworkBack => {
                self.lost.remove(&Loss::PublicNetwork);
            }
            Input::StorageBack => {
                self.lost.remove(&Loss::Storage);
            }
            Input::Standby(why) => self.standby = why.is_some(),
            Input::PeerState { node, up, can_host }
                if *node != self.me && base().nodes.contains(node) =>
            {
                if *up && *can_host {
                    self.able.insert(node.clone());
                } else {
                    self.able.remove(node);
                }
            }
            Input::Fenced(x) | Input::FenceConfirmed(x) => {
                if self.stall.as_ref() == Some(x) {
                    self.stall = None;
                } else if *x != self.me {
                    self.fenced.insert(x.clone());
                }
            }
            Input::Started(s) | Input::StartFailed(s, _)
                if self.outstanding == Some((true, s.index())) =>
            {
                self.outstanding = None;
            }
            Input::Stopped(s) if self.outstanding == Some((false, s.index())) => {
                self.outstanding = None;
                assert_eq!(self.stack.pop(), Some(s.index()), "stopped out of order");
            }
            Input::StopFailed(s, _) if self.outstanding == Some((false, s.index())) => {
                self.outstanding = None;
            }
            Input::StatusProbe(st) if self.in_flight > 0 => {
                self.in_flight -= 1;
                if self.in_flight == 0
                    && self.armed
                    && self.stack.is_empty()
                    && self.outstanding.is_none()
                    && *st == Status::NotRunning
                {
                    self.dirty = false;
                }
            }
            _ => {}
        }
    }

    fn output(&mut self, o: &Output) {
        match o {
            Output::Start(s) => {
                assert!(self.granted, "Start({s}) without ownership");
                assert!(
                    self.stall.is_none(),
                    "Start({s}) while the holder is not fenced"
                );
                assert!(self.outstanding.is_none(), "two steps at once");
                assert_eq!(self.stack.len(), s.index(), "Start({s}) out of order");
                assert!(!self.standby, "Start({s}) in node standby");
                assert!(
                    self.lost.is_empty() || self.able.is_empty(),
                    "Start({s}) with {:?} lost while {:?} can host",
                    self.lost,
                    self.able
                );
                self.stack.push(s.index());
                self.outstanding = Some((true, s.index()));
                self.dirty = true;
                self.armed = false;
            }
            Output::Stop(s) => {
                assert!(self.outstanding.is_none(), "two steps at once");
                if self.stack.is_empty() {
                    // A copy found running without ownership: all of it.
                    assert!(!self.granted, "stop of nothing while owned");
                    assert_eq!(*s, Step::Application, "stray stop must begin at the top");
                    self.stack = vec![0, 1, 2];
                    self.dirty = true;
                    self.armed = false;
                } else {
                    assert_eq!(
                        self.stack.last(),
                        Some(&s.index()),
                        "Stop({s}) not in reverse"
                    );
                }
                self.outstanding = Some((false, s.index()));
            }
            Output::RequestOwnership { priority } => {
                assert!(
                    self.lost.is_empty() || *priority == PRIORITY_FAILED,
                    "request at {priority} with {:?} lost",
                    self.lost
                );
                assert!(!self.standby, "request at {priority} in node standby");
            }
            Output::Probe => {
                self.in_flight += 1;
                if self.stack.is_empty() && self.outstanding.is_none() {
                    self.armed = true;
                }
            }
            Output::ReleaseOwnership => {
                assert!(
                    self.stack.is_empty() && self.outstanding.is_none() && !self.dirty,
                    "ReleaseOwnership before a proven stop"
                );
                self.granted = false;
            }
            Output::StateChanged { from, to, .. } => {
                assert_eq!(*from, self.last, "StateChanged from a state not reported");
                assert_ne!(from, to);
                assert!(State::ALL.contains(to));
                self.last = *to;
            }
            _ => {}
        }
    }
}

/// The machine with its checker.
struct Rig {
    svc: Service,
    chk: Checker,
}

impl Rig {
    fn new(s: Settings, me: &str) -> (Rig, Vec<String>) {
        let svc = Service::with_settings(s, me, ms(0));
        let chk = Checker::new(me, svc.state());
        let mut rig = Rig { svc, chk };
        let out = rig.drain();
        (rig, out)
    }

    fn drain(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(o) = self.svc.poll() {
            self.chk.output(&o);
            v.push(short(&o));
        }
        assert!(State::ALL.contains(&self.svc.state()));
        v
    }

    fn feed(&mut self, now: Time, i: Input) -> Vec<String> {
        self.chk.input(&i);
        self.svc.handle(now, i);
        self.drain()
    }
}

// ---- scenarios ---------------------------------------------------------------

struct Scenario {
    name: &'static str,
    me: &'static str,
    tweak: fn(&mut Settings),
    init: &'static [&'static str],
    /// (ms, input, expected outputs)
    steps: Vec<(u64, Input, &'static [&'static str])>,
    end: State,
}

fn none(_: &mut Settings) {}

/// alpha, onstart, probe answered, peer beta able, granted and running at
/// 4000 ms (first monitor probe due at 9000 ms).
fn running_alpha() -> Vec<(u64, Input, &'static [&'static str])> {
    vec![
        (0, StatusProbe(NotRunning), &[]),
        (0, peer("beta", true, true), &[]),
        (1000, OwnershipGranted, &["start volumes", "=ACTIVE"]),
        (2000, Started(Volumes), &["start ips"]),
        (3000, Started(Ips), &["start application"]),
        (4000, Started(Application), &[]),
    ]
}

fn with(
    mut a: Vec<(u64, Input, &'static [&'static str])>,
    b: Vec<(u64, Input, &'static [&'static str])>,
) -> Vec<(u64, Input, &'static [&'static str])> {
    a.extend(b);
    a
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "a standby lets the active node ask first at boot",
            me: "beta",
            tweak: |s| s.boot_grace = Duration::from_secs(10),
            init: &["probe"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (9_999, Timer, &[]),
                (10_000, Timer, &["request 99"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "shutdown stops in reverse, proves, releases for the peer and never asks again",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, Input::Shutdown, &["stop application"]),
                    (5100, cmd(Op::TakeOver), &["warning"]),
                    (6000, Stopped(Application), &["stop ips"]),
                    (7000, Stopped(Ips), &["stop volumes"]),
                    (8000, Stopped(Volumes), &["probe"]),
                    (
                        8100,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (9000, owner(Some("beta")), &[]),
                    (9500, owner(None), &[]),
                    (60000, Timer, &[]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "onstart only requests; the grant opens the gate, volumes first",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (500, Timer, &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (9000, Timer, &["probe"]),
                (9100, StatusProbe(Running), &[]),
                (9200, peer("beta", true, true), &["=ACTIVE"]),
                (14000, Timer, &["probe"]),
            ],
            end: State::Active,
        },
        Scenario {
            name: "BringIn only requests",
            me: "alpha",
            tweak: |s| s.onstart = false,
            init: &["probe"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (1000, cmd(Op::BringIn), &["info", "request 100", "=STANDBY"]),
                (2000, Timer, &[]),
                (3000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "TakeOver requests with the takeover priority; starts on the grant",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (500, peer("alpha", true, true), &[]),
                (1000, cmd(Op::TakeOver), &["request 1000", "info"]),
                (2000, Timer, &[]),
                (3000, OwnershipGranted, &["start volumes", "=ACTIVESTB"]),
            ],
            end: State::ActiveStb,
        },
        Scenario {
            name: "a failed start step stops what may be up in reverse, proves, retries",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (
                    3000,
                    StartFailed(Ips, "address in use".into()),
                    &["warning", "stop ips"],
                ),
                (3100, Stopped(Ips), &["stop volumes"]),
                (3200, Stopped(Volumes), &["probe"]),
                (3300, StatusProbe(NotRunning), &[]),
                (8000, Timer, &["start volumes"]),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "FailOver: reverse stop, proof, then release and ask the peer",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (
                        5400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (5500, Timer, &[]),
                    (6000, owner(Some("beta")), &["request 100"]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "a stop not proven by the probe is an error: no release until Cleanup",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (5400, StatusProbe(Running), &["emergency", "=ERRORACT"]),
                    (6000, cmd(Op::TakeOver), &["warning"]),
                    (7000, cmd(Op::FailOver), &["warning"]),
                    (60000, Timer, &[]),
                    (61000, cmd(Op::Cleanup), &["info", "probe", "=ACTIVE"]),
                    (
                        61100,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "stop failed, no fencing, no force_reboot: ERRORACT, lock kept, Cleanup stops again",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (
                        5100,
                        StopFailed(Application, "timed out".into()),
                        &["emergency", "=ERRORACT"],
                    ),
                    (5200, Stopped(Application), &[]),
                    (9000, Timer, &[]),
                    (
                        10000,
                        cmd(Op::Cleanup),
                        &["info", "stop application", "=ACTIVE"],
                    ),
                ],
            ),
            end: State::Active,
        },
        Scenario {
            name: "stop failed with a fencing device: lock kept, alert, the peer is asked (and fences)",
            me: "alpha",
            tweak: |s| s.fencing = true,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (
                        5100,
                        StopFailed(Application, "timed out".into()),
                        &["emergency", "emergency", "fence me beta", "=ERRORACT"],
                    ),
                    (99000, Timer, &[]),
                ],
            ),
            end: State::ErrorAct,
        },
        Scenario {
            name: "stop failed with force_reboot: stop petting the watchdog",
            me: "alpha",
            tweak: |s| s.force_reboot = true,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (
                        5200,
                        StopFailed(Ips, "busy".into()),
                        &["emergency", "watchdog", "=ERRORACT"],
                    ),
                ],
            ),
            end: State::ErrorAct,
        },
        Scenario {
            name: "application failure: restart here restart_times, then fail over to the able peer",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (9000, Timer, &["probe"]),
                    (9100, StatusProbe(Failed), &["warning", "stop application"]),
                    (9200, Stopped(Application), &["start application"]),
                    (9300, Started(Application), &[]),
                    (
                        10000,
                        AgentFailed(Cause::Application("hung".into())),
                        &["error", "stop application"],
                    ),
                    (10100, Stopped(Application), &["stop ips"]),
                    (10200, Stopped(Ips), &["stop volumes"]),
                    (10300, Stopped(Volumes), &["probe"]),
                    (
                        10400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (11000, owner(Some("beta")), &["request 1"]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "application failure, restarts used up, no able peer: recover here + emergency",
            me: "alpha",
            tweak: |s| s.restart_times = 0,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (
                    5000,
                    AgentFailed(Cause::Application("crashed".into())),
                    &["emergency", "stop application"],
                ),
                (5100, Stopped(Application), &["start application"]),
                (5200, Started(Application), &[]),
                (5300, peer("beta", true, false), &[]),
                (
                    6000,
                    AgentFailed(Cause::Application("crashed".into())),
                    &["emergency", "stop application"],
                ),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "check_tko: only that many bad probes in a row count as a failure",
            me: "alpha",
            tweak: |s| s.check_tko = 3,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (9000, Timer, &["probe"]),
                    (9100, StatusProbe(Failed), &[]),
                    (14100, Timer, &["probe"]),
                    (14200, StatusProbe(Running), &[]),
                    (19200, Timer, &["probe"]),
                    (19300, StatusProbe(NotRunning), &[]),
                    (24300, Timer, &["probe"]),
                    (24400, StatusProbe(Failed), &[]),
                    (29400, Timer, &["probe"]),
                    (29500, StatusProbe(Failed), &["warning", "stop application"]),
                ],
            ),
            end: State::Active,
        },
        Scenario {
            name: "public network failure without an able peer: stay, emergency",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (4500, peer("beta", true, false), &["=ACTIVEACT"]),
                    (
                        5000,
                        AgentFailed(Cause::PublicNetwork("eth0: no carrier".into())),
                        &["emergency"],
                    ),
                    (9000, Timer, &["probe"]),
                ],
            ),
            end: State::ActiveAct,
        },
        Scenario {
            name: "public network failure with an able peer: fail over",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![(
                    5000,
                    AgentFailed(Cause::PublicNetwork("eth0: no carrier".into())),
                    &["error", "stop application"],
                )],
            ),
            end: State::Active,
        },
        Scenario {
            name: "switchback off: the holder keeps it when the active node returns",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (5000, peer("alpha", true, true), &["=ACTIVE"]),
                (9000, Timer, &["probe"]),
            ],
            end: State::Active,
        },
        Scenario {
            name: "switchback off: the returning active node waits queued, starts nothing",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("beta")), &[]),
                (100, peer("beta", true, true), &[]),
                (60000, Timer, &[]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "switchback on: the holder stops, proves and releases for the active node",
            me: "beta",
            tweak: |s| s.switchback = true,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (
                    5000,
                    peer("alpha", true, true),
                    &["info", "stop application", "=ACTIVE"],
                ),
                (5100, Stopped(Application), &["stop ips"]),
                (5200, Stopped(Ips), &["stop volumes"]),
                (5300, Stopped(Volumes), &["probe"]),
                (
                    5400,
                    StatusProbe(NotRunning),
                    &["release", "ask alpha", "=STANDBY"],
                ),
                (5500, owner(Some("alpha")), &["request 99"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "SwitchbackOn at run time hands the service back",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, peer("alpha", true, true), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVE"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (5000, cmd(Op::SwitchbackOn), &["info", "stop application"]),
            ],
            end: State::Active,
        },
        Scenario {
            name: "found running without ownership: stopped at once, proven, never released",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, owner(Some("alpha")), &[]),
                (
                    100,
                    StatusProbe(Running),
                    &["emergency", "stop application", "=ACTIVEACT"],
                ),
                (200, Stopped(Application), &["stop ips"]),
                (300, Stopped(Ips), &["stop volumes"]),
                (400, Stopped(Volumes), &["probe"]),
                (500, StatusProbe(NotRunning), &["=STANDBY"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "STALLED: holder lost uncleanly; even a grant starts nothing until fenced",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (
                    1000,
                    OwnerLostUncleanly("alpha".into()),
                    &["emergency", "=STALLED"],
                ),
                (2000, OwnershipGranted, &[]),
                (60000, Timer, &[]),
                (61000, Fenced("gamma".into()), &[]),
                (
                    62000,
                    FenceConfirmed("alpha".into()),
                    &["info", "start volumes", "=ACTIVEACT"],
                ),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "a fence reported before the loss leaves nothing stalled",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (1000, Fenced("alpha".into()), &[]),
                (1100, OwnerLostUncleanly("alpha".into()), &[]),
                (2000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "ownership lost while running: stop at once, no release, queue again",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (
                        5000,
                        OwnershipLost,
                        &["emergency", "stop application", "request 100"],
                    ),
                    (5050, OwnershipGranted, &[]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (5400, StatusProbe(NotRunning), &["start volumes"]),
                ],
            ),
            end: State::Active,
        },
        Scenario {
            name: "BringOut keeps it running unwatched (OUTACT); BringIn probes at once",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::BringOut), &["info", "=OUTACT"]),
                    (9000, Timer, &[]),
                    (9500, AgentFailed(Cause::Application("crashed".into())), &[]),
                    (9600, cmd(Op::FailOver), &["warning"]),
                    (10000, cmd(Op::BringIn), &["info", "probe", "=ACTIVE"]),
                ],
            ),
            end: State::Active,
        },
        Scenario {
            name: "BringOut on the standby withdraws its request (OUTSTB)",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (1000, cmd(Op::BringOut), &["info", "release", "=OUTSTB"]),
                (2000, cmd(Op::TakeOver), &["warning"]),
                (3000, cmd(Op::BringIn), &["info", "request 99", "=STANDBY"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "after a release nobody took: queue again after start_timeout",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, cmd(Op::FailOver), &["info", "stop application"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (
                        5400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (35399, Timer, &[]),
                    (35400, Timer, &["request 100"]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "public network lost on the holder: fail over (no restart), queue last; back: own priority again",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, net_lost(), &["error", "stop application"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5150, net_lost(), &[]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (
                        5400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (6000, owner(Some("beta")), &["request 1"]),
                    (6500, cmd(Op::TakeOver), &["warning"]),
                    (7000, NetBack, &["info", "request 100"]),
                    (7100, NetBack, &[]),
                    (60000, Timer, &[]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "public network lost, no able peer: stay (one emergency); fail over once a peer can host",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (4500, peer("beta", true, false), &["=ACTIVEACT"]),
                    (5000, net_lost(), &["emergency"]),
                    (5100, net_lost(), &[]),
                    (9000, Timer, &["probe"]),
                    (9100, StatusProbe(Running), &[]),
                    (
                        10000,
                        peer("beta", true, true),
                        &["error", "stop application", "=ACTIVE"],
                    ),
                    (10100, Stopped(Application), &["stop ips"]),
                ],
            ),
            end: State::Active,
        },
        Scenario {
            name: "public network lost on the holder, back before it is gone: it still moves",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (5000, net_lost(), &["error", "stop application"]),
                    (5050, NetBack, &["info"]),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (
                        5400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (6000, owner(Some("beta")), &["request 100"]),
                ],
            ),
            end: State::Standby,
        },
        Scenario {
            name: "a standby without public network queues last, refuses TakeOver, drops a TakeOver's priority",
            me: "beta",
            tweak: none,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (500, peer("alpha", true, true), &[]),
                (1000, net_lost(), &["warning", "request 1"]),
                (2000, cmd(Op::TakeOver), &["warning"]),
                (3000, NetBack, &["info", "request 99"]),
                (4000, cmd(Op::TakeOver), &["request 1000", "info"]),
                (5000, net_lost(), &["warning", "request 1"]),
                (6000, NetBack, &["info", "request 99"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "granted without public network while a peer can host: released unstarted",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, peer("beta", true, true), &[]),
                (500, net_lost(), &["warning", "request 1"]),
                (1000, OwnershipGranted, &["error", "release", "ask beta"]),
            ],
            end: State::Standby,
        },
        Scenario {
            name: "granted without public network and no able peer: the last resort starts it",
            me: "alpha",
            tweak: none,
            init: &["probe", "request 100"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, peer("beta", true, false), &[]),
                (500, net_lost(), &["warning", "request 1"]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
            ],
            end: State::ActiveAct,
        },
        Scenario {
            name: "switchback waits while the preferred node's network is lost, hands back when it is back",
            me: "beta",
            tweak: |s| s.switchback = true,
            init: &["probe", "request 99"],
            steps: vec![
                (0, StatusProbe(NotRunning), &[]),
                (0, owner(Some("alpha")), &[]),
                (0, peer("alpha", true, true), &[]),
                (500, OwnerIs(None), &[]),
                // alpha failed over for its network: it advertises unable.
                (600, peer("alpha", true, false), &[]),
                (1000, OwnershipGranted, &["start volumes", "=ACTIVEACT"]),
                (2000, Started(Volumes), &["start ips"]),
                (3000, Started(Ips), &["start application"]),
                (4000, Started(Application), &[]),
                (9000, Timer, &["probe"]),
                (9100, StatusProbe(Running), &[]),
                (
                    10000,
                    peer("alpha", true, true),
                    &["info", "stop application", "=ACTIVESTB"],
                ),
            ],
            end: State::ActiveStb,
        },
        Scenario {
            name: "failed away after its failures: TakeOver refused until Cleanup, which restores the priority",
            me: "alpha",
            tweak: |s| s.restart_times = 0,
            init: &["probe", "request 100"],
            steps: with(
                running_alpha(),
                vec![
                    (
                        5000,
                        AgentFailed(Cause::Application("crashed".into())),
                        &["error", "stop application"],
                    ),
                    (5100, Stopped(Application), &["stop ips"]),
                    (5200, Stopped(Ips), &["stop volumes"]),
                    (5300, Stopped(Volumes), &["probe"]),
                    (
                        5400,
                        StatusProbe(NotRunning),
                        &["release", "ask beta", "=STANDBY"],
                    ),
                    (6000, owner(Some("beta")), &["request 1"]),
                    (7000, cmd(Op::TakeOver), &["warning"]),
                    (8000, cmd(Op::Cleanup), &["request 100"]),
                    (9000, cmd(Op::TakeOver), &["request 1000", "info"]),
                ],
            ),
            end: State::Standby,
        },
    ]
}

fn net_lost() -> Input {
    AgentFailed(Cause::PublicNetwork("pub: no carrier".into()))
}

fn storage_lost() -> Input {
    AgentFailed(Cause::Storage("vol: I/O error".into()))
}

/// Runs one scenario, asserting each step's outputs and the final state;
/// returns the rig for more checks.
fn run(sc: Scenario) -> Rig {
    let mut s = base();
    (sc.tweak)(&mut s);
    let (mut rig, init) = Rig::new(s, sc.me);
    assert_eq!(init, sc.init, "{}: initial outputs", sc.name);
    for (i, (t, input, want)) in sc.steps.into_iter().enumerate() {
        let what = format!("{input:?}");
        let got = rig.feed(ms(t), input);
        assert_eq!(got, want, "{}: step {i} ({what} at {t} ms)", sc.name);
    }
    assert_eq!(rig.svc.state(), sc.end, "{}: final state", sc.name);
    rig
}

#[test]
fn scenario_table() {
    for sc in scenarios() {
        run(sc);
    }
}

/// The public network's input as the storage path's: its loss and its
/// return; any other input as it is.
fn as_storage(input: Input) -> Input {
    match input {
        AgentFailed(Cause::PublicNetwork(why)) => AgentFailed(Cause::Storage(why)),
        NetBack => Input::StorageBack,
        other => other,
    }
}

#[test]
fn a_lost_storage_path_is_handled_as_a_lost_public_network() {
    // Fail over at once without a restart, or stay with an emergency; queue
    // last and refuse TakeOver while lost; back by itself, no Cleanup.
    let mut ran = 0;
    for sc in scenarios() {
        let net =
            |(_, i, _): &(u64, Input, &[&str])| matches!(i, AgentFailed(Cause::PublicNetwork(_)));
        if !sc.steps.iter().any(net) {
            continue;
        }
        let name = sc.name;
        let steps = sc
            .steps
            .into_iter()
            .map(|(t, i, w)| (t, as_storage(i), w))
            .collect();
        let rig = run(Scenario { steps, ..sc });
        assert_eq!(rig.svc.public_network_down(), None, "{name}");
        ran += 1;
    }
    assert!(ran >= 8, "only {ran} public network scenarios");
}

#[test]
fn storage_and_public_network_losses_are_separate_facts() {
    let (mut rig, _) = Rig::new(base(), "beta");
    rig.feed(ms(0), StatusProbe(NotRunning));
    rig.feed(ms(0), owner(Some("alpha")));
    rig.feed(ms(100), peer("alpha", true, true));
    let lost = rig.feed(ms(1000), storage_lost());
    assert_eq!(lost, ["warning", "request 1"]);
    assert_eq!(rig.svc.storage_down(), Some("vol: I/O error"));
    assert!(!rig.svc.can_host());
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(
        why.contains("storage path") && why.contains("I/O error"),
        "{why}"
    );
    assert_eq!(rig.feed(ms(1100), net_lost()), ["warning"]);
    // The path is back, the network is not: still unable, still last.
    assert_eq!(rig.feed(ms(2000), Input::StorageBack), ["info"]);
    assert_eq!(rig.svc.storage_down(), None);
    assert!(!rig.svc.can_host());
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("public network"), "{why}");
    assert_eq!(rig.feed(ms(2100), Input::StorageBack), Vec::<String>::new());
    assert_eq!(rig.feed(ms(3000), NetBack), ["info", "request 99"]);
    assert!(rig.svc.can_host());
}

#[test]
fn a_stop_that_hangs_after_a_lost_storage_path_is_a_failed_stop() {
    // The volumes' unmount hangs on the dead path: the driver reports it
    // failed on its timeout; with fencing the lock stays here (ERRORACT)
    // and the peer is asked, which fences this node before it starts.
    let mut s = base();
    s.fencing = true;
    let (mut rig, _) = Rig::new(s, "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    assert_eq!(
        rig.feed(ms(5000), storage_lost()),
        ["error", "stop application"]
    );
    assert_eq!(rig.feed(ms(5100), Stopped(Application)), ["stop ips"]);
    assert_eq!(rig.feed(ms(5200), Stopped(Ips)), ["stop volumes"]);
    let failed = rig.feed(
        ms(50_000),
        StopFailed(Volumes, "the stop of volumes did not finish".into()),
    );
    assert_eq!(
        failed,
        ["emergency", "emergency", "fence me beta", "=ERRORACT"]
    );
    assert!(rig.svc.owned() && !rig.svc.can_host());
    // The path coming back does not clear the error: Cleanup does.
    rig.feed(ms(60_000), Input::StorageBack);
    assert_eq!(rig.svc.state(), State::ErrorAct);
    assert!(!rig.svc.can_host());
}

#[test]
fn a_failed_stop_asks_the_first_able_peer_to_fence_this_node_once() {
    let mut s = base();
    s.fencing = true;
    let (mut rig, _) = Rig::new(s, "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    assert_eq!(
        rig.feed(ms(5000), cmd(Op::FailOver)),
        ["info", "stop application"]
    );
    // beta cannot host when the stop fails: nobody to ask yet.
    rig.feed(ms(5050), peer("beta", true, false));
    assert_eq!(
        rig.feed(ms(5100), StopFailed(Application, "exit 1".into())),
        ["emergency", "=ERRORACT"]
    );
    // As soon as it can, it is asked, once.
    assert_eq!(
        rig.feed(ms(6000), peer("beta", true, true)),
        ["emergency", "fence me beta"]
    );
    assert_eq!(
        rig.feed(ms(7000), peer("beta", true, true)),
        Vec::<String>::new()
    );
    assert!(rig.svc.owned());
    assert_eq!(rig.svc.state(), State::ErrorAct);
}

#[test]
fn a_failed_stop_with_force_reboot_or_without_fencing_asks_nobody_to_fence() {
    let mut forced = base();
    forced.fencing = true;
    forced.force_reboot = true;
    for s in [forced, base()] {
        let (mut rig, _) = Rig::new(s, "alpha");
        for (t, i, _) in running_alpha() {
            rig.feed(ms(t), i);
        }
        rig.feed(ms(5000), cmd(Op::FailOver));
        let failed = rig.feed(ms(5100), StopFailed(Application, "exit 1".into()));
        assert!(
            !failed.iter().any(|o| o.starts_with("fence me")),
            "{failed:?}"
        );
    }
}

#[test]
fn an_isolated_holder_stops_and_releases_and_takes_nothing_until_it_is_over() {
    let (mut rig, _) = Rig::new(base(), "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    let isolated = || {
        Input::Isolation(Some(
            "this node is isolated: no ping address answers".into(),
        ))
    };
    assert_eq!(
        rig.feed(ms(5000), isolated()),
        ["emergency", "stop application"]
    );
    assert!(!rig.svc.can_host());
    assert_eq!(rig.feed(ms(5100), Stopped(Application)), ["stop ips"]);
    assert_eq!(rig.feed(ms(5200), Stopped(Ips)), ["stop volumes"]);
    assert_eq!(rig.feed(ms(5300), Stopped(Volumes)), ["probe"]);
    let released = rig.feed(ms(5400), StatusProbe(NotRunning));
    assert_eq!(released[..2], ["release", "ask beta"], "{released:?}");
    // Free, and its start timeout over: still nothing while isolated.
    assert_eq!(rig.feed(ms(60_000), owner(None)), Vec::<String>::new());
    assert_eq!(rig.feed(ms(61_000), Timer), Vec::<String>::new());
    let refused = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(refused.contains("isolated"), "{refused}");
    assert_eq!(rig.feed(ms(62_000), isolated()), Vec::<String>::new());
    // Over: it queues again, and starts only when granted.
    assert_eq!(
        rig.feed(ms(63_000), Input::Isolation(None)),
        ["info", "request 100"]
    );
    assert!(rig.svc.can_host());
}

#[test]
fn state_names_are_the_documented_ones() {
    let names: Vec<_> = State::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "ACTIVE",
            "ACTIVEACT",
            "ACTIVESTB",
            "STANDBY",
            "OUTACT",
            "OUTSTB",
            "ERRORACT",
            "ERRORSTB",
            "STALLED"
        ]
    );
    assert_eq!(State::ActiveStb.to_string(), "ACTIVESTB");
}

#[test]
fn settings_come_from_the_service_file() {
    let cfg = ServiceConfig {
        file: PathBuf::from("/etc/hacluster/services/www.toml"),
        name: "www".into(),
        kind: haschema::service::ServiceType::Www,
        group: None,
        active: "alpha".into(),
        standby: vec!["beta".into(), "gamma".into()],
        ips: vec![],
        volumes: vec![],
        storage_ping: None,
        agent: None,
        start: None,
        stop: None,
        status: None,
        start_timeout: Duration::from_secs(150),
        stop_timeout: Duration::from_secs(60),
        resource_release_timeout: Duration::from_secs(20),
        check_interval: Duration::from_secs(20),
        check_tko: 2,
        restart_times: 3,
        switchback: true,
        migration_threshold: Some(4),
        failure_timeout: Some(Duration::from_secs(600)),
        switchback_stable: Duration::from_secs(90),
        onstart: true,
        force_reboot: true,
        status_codes: haschema::service::StatusCodes::Lsb,
        hash: 0,
        sources: Default::default(),
    };
    let svc = Service::new(&cfg, "gamma", true, ms(0));
    let s = svc.settings();
    assert_eq!(s.nodes, ["alpha", "beta", "gamma"]);
    assert_eq!((s.check_tko, s.restart_times), (2, 3));
    assert!(s.switchback && s.onstart && s.force_reboot && s.fencing);
    assert_eq!(s.migration_threshold, Some(4));
    assert_eq!(s.failure_timeout, Some(Duration::from_secs(600)));
    assert_eq!(s.switchback_stable, Duration::from_secs(90));
    assert_eq!(s.step_timeout(Step::Ips, true), Duration::from_secs(150));
    assert_eq!(
        s.step_timeout(Step::Application, false),
        Duration::from_secs(60)
    );
    assert_eq!(
        s.step_timeout(Step::Volumes, false),
        Duration::from_secs(20)
    );
    // The second standby asks with the lowest node priority, once the
    // nodes before it had their boot grace.
    let mut svc = svc;
    assert_eq!(svc.poll(), Some(Output::Probe));
    assert_eq!(svc.poll(), None);
    assert_eq!(svc.settings().boot_grace, Duration::from_secs(40));
    svc.handle(ms(39_000), Input::Timer);
    assert_eq!(svc.poll(), None);
    svc.handle(ms(40_000), Input::Timer);
    assert_eq!(svc.poll(), Some(Output::RequestOwnership { priority: 98 }));
}

#[test]
fn a_restarted_hasvrd_adopts_what_runs_without_restarting_it() {
    let svc = Service::restored(base(), "alpha", ms(0), true, 3, None);
    let mut chk = Checker::new("alpha", svc.state());
    chk.granted = true;
    chk.stack = vec![0, 1, 2];
    chk.dirty = true;
    let mut rig = Rig { svc, chk };
    assert_eq!(rig.drain(), ["probe"]);
    assert_eq!(rig.feed(ms(10), StatusProbe(Running)), Vec::<String>::new());
    assert_eq!(rig.svc.state(), State::ActiveAct);
    assert_eq!(rig.feed(ms(20), Timer), Vec::<String>::new());
    assert_eq!(rig.feed(ms(5000), Timer), ["probe"]);
}

#[test]
fn a_restarted_hasvrd_starts_only_the_missing_steps() {
    let svc = Service::restored(base(), "alpha", ms(0), true, 1, None);
    let mut chk = Checker::new("alpha", svc.state());
    chk.granted = true;
    chk.stack = vec![0];
    chk.dirty = true;
    let mut rig = Rig { svc, chk };
    assert_eq!(rig.drain(), ["probe", "start ips"]);
}

#[test]
fn a_restarted_hasvrd_stops_what_it_does_not_own() {
    let svc = Service::restored(base(), "beta", ms(0), false, 3, None);
    let mut chk = Checker::new("beta", svc.state());
    chk.stack = vec![0, 1, 2];
    chk.dirty = true;
    let mut rig = Rig { svc, chk };
    let out = rig.drain();
    assert_eq!(out[..2], ["probe", "stop application"]);
}

#[test]
fn a_node_outside_the_service_never_requests_but_still_stops_a_stray_copy() {
    let (mut rig, init) = Rig::new(base(), "gamma");
    assert_eq!(init, ["probe"]);
    assert_eq!(rig.feed(ms(10), cmd(Op::TakeOver)), ["warning"]);
    let out = rig.feed(ms(20), StatusProbe(Running));
    assert_eq!(out, ["emergency", "stop application", "=ACTIVEACT"]);
}

#[test]
fn a_stray_copy_that_will_not_stop_with_force_reboot_self_fences() {
    let mut s = base();
    s.force_reboot = true;
    let (mut rig, _) = Rig::new(s, "beta");
    rig.feed(ms(0), owner(Some("alpha")));
    rig.feed(ms(1), StatusProbe(Running));
    let out = rig.feed(ms(2), StopFailed(Application, "EBUSY".into()));
    assert_eq!(out, ["emergency", "watchdog", "=ERRORSTB"]);
    // In error the queued request is not withdrawn while the stop is unproven.
    assert_eq!(rig.feed(ms(3), Timer), Vec::<String>::new());
}

#[test]
fn results_for_other_steps_are_ignored() {
    let (mut rig, _) = Rig::new(base(), "alpha");
    rig.feed(ms(0), StatusProbe(NotRunning));
    rig.feed(ms(1), OwnershipGranted);
    for i in [
        Started(Ips),
        Started(Application),
        Stopped(Volumes),
        StopFailed(Volumes, "x".into()),
        StartFailed(Application, "x".into()),
    ] {
        assert_eq!(rig.feed(ms(2), i), Vec::<String>::new());
    }
    assert_eq!(rig.feed(ms(3), Started(Volumes)), ["start ips"]);
}

#[test]
fn can_host_follows_failures_the_public_network_and_cleanup() {
    let mut s = base();
    s.restart_times = 0;
    let (mut rig, _) = Rig::new(s, "alpha");
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    assert!(rig.svc.can_host());
    assert_eq!(rig.svc.refusal(Op::TakeOver), None);
    // The network: lost, then back; no Cleanup needed.
    rig.feed(ms(5000), peer("beta", true, false));
    rig.feed(ms(5100), net_lost());
    assert!(!rig.svc.can_host());
    assert_eq!(rig.svc.public_network_down(), Some("pub: no carrier"));
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("public network"), "{why}");
    rig.feed(ms(5200), NetBack);
    assert!(rig.svc.can_host());
    assert_eq!(rig.svc.public_network_down(), None);
    // Failures: unable until Cleanup.
    rig.feed(ms(5300), peer("beta", true, true));
    rig.feed(ms(5400), AgentFailed(Cause::Application("crashed".into())));
    assert!(rig.svc.failed_here() && !rig.svc.can_host());
    assert_eq!(
        rig.svc.refusal(Op::FailOver),
        None,
        "the holder can still be asked to move"
    );
    for (t, i) in [
        (5500, Stopped(Application)),
        (5600, Stopped(Ips)),
        (5700, Stopped(Volumes)),
        (5800, StatusProbe(NotRunning)),
    ] {
        rig.feed(ms(t), i);
    }
    let why = rig.svc.refusal(Op::TakeOver).unwrap_or_default();
    assert!(why.contains("Cleanup"), "{why}");
    let why = rig.svc.refusal(Op::FailOver).unwrap_or_default();
    assert!(why.contains("not held here"), "{why}");
    rig.feed(ms(6000), cmd(Op::Cleanup));
    assert!(rig.svc.can_host());
    // Shutting down: unable.
    rig.feed(ms(7000), Input::Shutdown);
    assert!(!rig.svc.can_host());
}

#[test]
fn next_deadline_follows_the_probe_and_the_retry() {
    let (mut rig, _) = Rig::new(base(), "alpha");
    assert_eq!(rig.svc.next_deadline(), None);
    for (t, i, _) in running_alpha() {
        rig.feed(ms(t), i);
    }
    assert_eq!(rig.svc.next_deadline(), Some(ms(9000)));
    rig.feed(ms(9000), Timer);
    assert_eq!(rig.svc.next_deadline(), None, "no probe while one is out");
    rig.feed(ms(9100), StatusProbe(Running));
    assert_eq!(rig.svc.next_deadline(), Some(ms(14000)));
}

// ---- property test -------------------------------------------------------------

/// splitmix64: small, seeded, replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// An input, biased towards answers the machine is waiting for so that runs
/// reach deep states, with plenty of noise.
fn gen_input(rng: &mut Rng, chk: &Checker) -> Input {
    let nodes = ["alpha", "beta", "gamma"];
    let steps = Step::ORDER;
    let statuses = [Running, NotRunning, Failed];
    let ops = Op::ALL;
    let roll = rng.below(100);
    if roll < 35
        && let Some((start, k)) = chk.outstanding
    {
        let step = Step::ORDER[k];
        let ok = rng.chance(85);
        return match (start, ok) {
            (true, true) => Started(step),
            (true, false) => StartFailed(step, "boom".into()),
            (false, true) => Stopped(step),
            (false, false) => StopFailed(step, "stuck".into()),
        };
    }
    if roll < 50 && chk.in_flight > 0 {
        let r = rng.below(100);
        return StatusProbe(if r < 60 {
            NotRunning
        } else if r < 85 {
            Running
        } else {
            Failed
        });
    }
    match rng.below(20) {
        0 | 1 => OwnershipGranted,
        2 => OwnershipLost,
        3 => {
            let o = if rng.chance(30) {
                None
            } else {
                Some(rng.pick(&nodes).to_owned())
            };
            Input::OwnerIs(o)
        }
        4 => OwnerLostUncleanly(rng.pick(&nodes).into()),
        5 | 6 => peer(rng.pick(&nodes), rng.chance(70), rng.chance(70)),
        7 | 8 => Input::Command {
            op: rng.pick(&ops),
            by: "prop".into(),
        },
        9 => {
            if rng.chance(50) {
                Fenced(rng.pick(&nodes).into())
            } else {
                FenceConfirmed(rng.pick(&nodes).into())
            }
        }
        10 => AgentFailed(match rng.below(3) {
            0 => Cause::Application("x".into()),
            1 => Cause::PublicNetwork("x".into()),
            _ => Cause::Storage("x".into()),
        }),
        11 => {
            let s = rng.pick(&steps);
            match rng.below(4) {
                0 => Started(s),
                1 => StartFailed(s, "noise".into()),
                2 => Stopped(s),
                _ => StopFailed(s, "noise".into()),
            }
        }
        12 => StatusProbe(rng.pick(&statuses)),
        13 if rng.chance(10) => Input::Shutdown,
        14 => Input::PublicNetworkBack,
        15 => Input::StorageBack,
        16 => Input::Isolation(rng.chance(50).then(|| "cut off".to_owned())),
        17 => Input::Standby(rng.chance(50).then(|| "by prop".to_owned())),
        _ => Timer,
    }
}

#[test]
fn property_safety_rules_hold_for_random_inputs() {
    let mut reached_running = 0;
    let mut released = 0;
    let mut errors = 0;
    for seed in 0..3000u64 {
        let mut rng = Rng(seed);
        let mut s = base();
        s.onstart = rng.chance(70);
        s.switchback = rng.chance(50);
        s.fencing = rng.chance(50);
        s.force_reboot = rng.chance(30);
        s.restart_times = rng.below(3) as u32;
        s.check_tko = 1 + rng.below(3) as u32;
        // Failure accounting from its own stream, so that the other draws
        // stay those of each seed.
        let mut acct = Rng(seed ^ 0xfa11);
        s.migration_threshold = acct.chance(50).then(|| 1 + acct.below(3) as u32);
        s.failure_timeout = acct.chance(50).then(|| ms(1000 * (1 + acct.below(60))));
        s.switchback_stable = ms(1000 * acct.below(20));
        let me = rng.pick(&["alpha", "beta", "alpha", "beta", "gamma"]);
        let (mut rig, _) = Rig::new(s, me);
        let mut now = ms(0);
        let mut trace = Vec::new();
        let mut ran = false;
        let mut rel = false;
        for _ in 0..300 {
            now += if rng.chance(20) {
                rig.svc
                    .next_deadline()
                    .map_or(ms(1000), |d| d.saturating_sub(now))
            } else {
                ms(rng.below(2000))
            };
            let input = gen_input(&mut rng, &rig.chk);
            trace.push(format!("{:?} {input:?}", now));
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rig.feed(now, input)));
            match outcome {
                Ok(out) => {
                    trace.push(format!("    -> {out:?}"));
                    ran |= out.iter().any(|o| o == "start application");
                    rel |= out.iter().any(|o| o == "release");
                }
                Err(e) => {
                    let tail = trace[trace.len().saturating_sub(80)..].join("\n");
                    panic!("seed {seed} ({me}): {e:?}\nlast inputs:\n{tail}");
                }
            }
            if rig.svc.fault().is_some() {
                errors += 1;
            }
        }
        reached_running += ran as u32;
        released += rel as u32;
    }
    // The generator is not vacuous: runs reach the deep states.
    assert!(
        reached_running > 500,
        "only {reached_running} runs started the application"
    );
    assert!(released > 300, "only {released} runs released the lock");
    assert!(errors > 0, "no run reached an error state");
}

mod failcount;
mod handover;
mod standby;
mod stop;
