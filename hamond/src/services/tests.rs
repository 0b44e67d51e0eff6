//! The services' cluster side on two nodes wired back to back: hasvrd is
//! greeted before it hears anything, grants reach it only after the
//! replica was persisted, a lost holder is reported and its lock freed only
//! by a fence, advertisements and commands cross to the other node, and a
//! reload of hasvrd's services registers, refuses and forgets services.

use super::*;
use litecloud::view::ViewId;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// One node: its services, what its hasvrd received, and what its daemon
/// did, in order ("persist", "tell:<msg>").
struct Side {
    s: Services,
    rx: UnboundedReceiver<ToHasvrd>,
    log: Vec<String>,
}

fn side(me: NodeId) -> Side {
    let names = [(1, "alpha".to_owned()), (2, "beta".to_owned())].into();
    let nodes = NodeSet::of([1, 2]);
    let mut s = Services::new(me, names, LockTable::new(me, nodes, 7));
    let (tx, rx) = unbounded_channel();
    s.attach(tx);
    Side {
        s,
        rx,
        log: Vec::new(),
    }
}

fn view(epoch: u64, members: &[NodeId]) -> View {
    View {
        id: ViewId {
            epoch,
            coordinator: members[0],
        },
        members: NodeSet::of(members.iter().copied()),
    }
}

impl Side {
    fn note_told(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.log.push(format!("tell:{m:?}"));
        }
    }
}

/// Runs both sides until quiet, delivering messages between them while
/// `connected`.
fn settle(a: &mut Side, b: &mut Side, connected: bool) {
    for _ in 0..100 {
        let mut busy = false;
        for from in [1, 2] {
            let (src, dst) = if from == 1 {
                (&mut *a, &mut *b)
            } else {
                (&mut *b, &mut *a)
            };
            src.note_told();
            while let Some(out) = src.s.poll() {
                busy = true;
                src.note_told();
                match out {
                    Out::Persist(_) => src.log.push("persist".into()),
                    Out::Send { data, .. } if connected => dst.s.message(from, &data).unwrap(),
                    Out::Send { .. } => {}
                    Out::Fence { node, .. } => src.log.push(format!("fence:{node}")),
                }
            }
            src.note_told();
        }
        if !busy {
            return;
        }
    }
    panic!("no quiet after 100 rounds");
}

fn hello(x: &mut Side) {
    x.s.on_hasvrd(ToHamond::Hello {
        services: vec!["www".into()],
    });
}

fn request(x: &mut Side, priority: u8) {
    x.s.on_hasvrd(ToHamond::Request {
        service: "www".into(),
        priority,
    });
}

fn told(x: &Side, needle: &str) -> Option<usize> {
    x.log.iter().position(|l| l.contains(needle))
}

/// Both greeted, in one view.
fn joined() -> (Side, Side) {
    let (mut a, mut b) = (side(1), side(2));
    hello(&mut a);
    hello(&mut b);
    a.s.view_installed(view(2, &[1, 2]));
    b.s.view_installed(view(2, &[1, 2]));
    settle(&mut a, &mut b, true);
    (a, b)
}

#[test]
fn hasvrd_hears_nothing_before_its_welcome() {
    let (mut a, mut b) = (side(1), side(2));
    a.s.view_installed(view(2, &[1, 2]));
    b.s.view_installed(view(2, &[1, 2]));
    settle(&mut a, &mut b, true);
    assert!(!a.log.iter().any(|l| l.starts_with("tell:")), "{:?}", a.log);
    hello(&mut a);
    settle(&mut a, &mut b, true);
    let first = a.log.iter().find(|l| l.starts_with("tell:")).unwrap();
    assert!(first.contains("Welcome"), "{:?}", a.log);
}

#[test]
fn a_grant_is_told_after_the_replica_is_persisted() {
    let (mut a, mut b) = joined();
    a.log.clear();
    request(&mut a, 100);
    settle(&mut a, &mut b, true);
    let granted = told(&a, "Granted").expect("granted");
    let persisted = told(&a, "persist").expect("persisted");
    assert!(persisted < granted, "{:?}", a.log);
    assert!(told(&b, "holder: Some(\"alpha\")").is_some(), "{:?}", b.log);
    assert_eq!(a.s.held_by(1), 1);
}

#[test]
fn a_lost_holder_is_reported_and_its_lock_freed_only_by_a_fence() {
    let (mut a, mut b) = joined();
    request(&mut a, 100);
    settle(&mut a, &mut b, true);
    request(&mut b, 99);
    settle(&mut a, &mut b, true);
    // alpha is cut off: beta alone.
    b.log.clear();
    b.s.node_lost(1);
    b.s.view_installed(view(3, &[2]));
    settle(&mut a, &mut b, false);
    assert!(told(&b, "OwnerLost").is_some(), "{:?}", b.log);
    assert!(told(&b, "Granted").is_none(), "{:?}", b.log);
    b.s.node_fenced(1, false);
    settle(&mut a, &mut b, false);
    let fenced = told(&b, "Fenced").expect("fenced told");
    let granted = told(&b, "Granted").expect("granted after the fence");
    assert!(fenced < granted, "{:?}", b.log);
}

#[test]
fn a_holder_not_seen_since_start_is_not_reported_lost_and_one_back_is_told_again() {
    let (mut a, mut b) = joined();
    request(&mut a, 100);
    settle(&mut a, &mut b, true);
    // beta alone, alpha never lost (e.g. beta's daemon just restarted).
    b.log.clear();
    b.s.view_installed(view(3, &[2]));
    settle(&mut a, &mut b, false);
    assert!(told(&b, "OwnerLost").is_none(), "{:?}", b.log);
    // Lost, then back in the view: the owner is told again.
    b.s.node_lost(1);
    b.s.view_installed(view(4, &[2]));
    settle(&mut a, &mut b, false);
    assert!(told(&b, "OwnerLost").is_some(), "{:?}", b.log);
    b.log.clear();
    a.s.view_installed(view(5, &[1, 2]));
    b.s.view_installed(view(5, &[1, 2]));
    settle(&mut a, &mut b, true);
    assert!(told(&b, "holder: Some(\"alpha\")").is_some(), "{:?}", b.log);
}

#[test]
fn advertisements_and_commands_reach_the_other_hasvrd() {
    let (mut a, mut b) = joined();
    a.s.on_hasvrd(ToHamond::Advertise {
        service: "www".into(),
        state: "ACTIVE".into(),
        can_host: true,
        failures: 2,
    });
    a.s.on_hasvrd(ToHamond::Forward {
        node: "beta".into(),
        service: "www".into(),
        op: ServiceOp::TakeOver,
        by: "root".into(),
    });
    settle(&mut a, &mut b, true);
    assert!(told(&b, "PeerService").is_some(), "{:?}", b.log);
    assert!(told(&b, "failures: 2").is_some(), "{:?}", b.log);
    assert!(told(&b, "TakeOver").is_some(), "{:?}", b.log);
    assert!(b.s.message(1, &[PROTOCOL, b'{']).is_err());
}

fn fence_me(x: &mut Side, peer: &str) {
    x.s.on_hasvrd(ToHamond::FenceMe {
        service: "www".into(),
        peer: peer.into(),
        reason: "stop failed".into(),
    });
}

fn advertise(x: &mut Side, state: &str) {
    x.s.on_hasvrd(ToHamond::Advertise {
        service: "www".into(),
        state: state.into(),
        can_host: false,
        failures: 0,
    });
}

#[test]
fn a_holder_whose_stop_failed_is_fenced_by_the_peer_it_names() {
    let (mut a, mut b) = joined();
    advertise(&mut a, "ERRORACT");
    fence_me(&mut a, "beta");
    settle(&mut a, &mut b, true);
    assert_eq!(told(&b, "fence:1"), Some(b.log.len() - 1), "{:?}", b.log);
    assert_eq!(told(&a, "fence:"), None, "{:?}", a.log);
}

#[test]
fn two_nodes_that_both_asked_to_be_fenced_shoot_nobody() {
    let (mut a, mut b) = joined();
    for x in [&mut a, &mut b] {
        advertise(x, "ERRORACT");
    }
    fence_me(&mut a, "beta");
    fence_me(&mut b, "alpha");
    settle(&mut a, &mut b, true);
    assert_eq!(told(&a, "fence:"), None, "{:?}", a.log);
    assert_eq!(told(&b, "fence:"), None, "{:?}", b.log);
    // Once out of error (Cleanup), a node shoots on request again.
    advertise(&mut b, "ACTIVE");
    fence_me(&mut a, "beta");
    settle(&mut a, &mut b, true);
    assert!(told(&b, "fence:1").is_some(), "{:?}", b.log);
}

#[test]
fn a_reload_registers_new_services_refuses_collisions_and_forgets_removed_ones() {
    let (mut a, mut b) = joined();
    assert_eq!(
        haschema::service::lock_id("s31597"),
        haschema::service::lock_id("s618190")
    );
    a.s.on_hasvrd(ToHamond::Services {
        services: vec!["www".into(), "s31597".into(), "s618190".into()],
    });
    settle(&mut a, &mut b, true);
    assert!(told(&a, "service: \"s31597\"").is_some(), "{:?}", a.log);
    assert_eq!(told(&a, "s618190"), None, "{:?}", a.log);
    a.s.on_hasvrd(ToHamond::Request {
        service: "s31597".into(),
        priority: 100,
    });
    settle(&mut a, &mut b, true);
    assert!(
        told(&a, "Granted { service: \"s31597\" }").is_some(),
        "{:?}",
        a.log
    );
    a.s.on_hasvrd(ToHamond::Release {
        service: "s31597".into(),
    });
    a.s.on_hasvrd(ToHamond::Advertise {
        service: "s31597".into(),
        state: "OUTSTB".into(),
        can_host: true,
        failures: 0,
    });
    settle(&mut a, &mut b, true);
    assert!(b.s.advertised().iter().any(|s| s.name == "s31597"));
    a.s.on_hasvrd(ToHamond::Services {
        services: vec!["www".into()],
    });
    settle(&mut a, &mut b, true);
    for x in [&a, &b] {
        assert!(!x.s.advertised().iter().any(|s| s.name == "s31597"));
    }
    a.log.clear();
    a.s.on_hasvrd(ToHamond::Request {
        service: "s31597".into(),
        priority: 100,
    });
    settle(&mut a, &mut b, true);
    assert_eq!(told(&a, "s31597"), None, "a forgotten service: {:?}", a.log);
}
