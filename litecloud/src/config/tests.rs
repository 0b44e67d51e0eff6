//! Unit tests of the configuration store: two or three stores joined by
//! an instant, lossless network (the seeded simulator with loss, crashes
//! and partitions is `tests/config_sim.rs`).

use super::*;
use crate::view::ViewId;

fn check(_: &str, content: Option<&[u8]>) -> Result<(), String> {
    match content {
        Some(b"bad") => Err("bad content".into()),
        _ => Ok(()),
    }
}

/// Stores joined by an instant network; each partition group has a view.
struct Net {
    stores: BTreeMap<NodeId, Store>,
    group: BTreeMap<NodeId, NodeSet>,
    epoch: u64,
    queue: VecDeque<(NodeId, NodeId, Vec<u8>)>,
    /// Every action polled, with its node.
    log: Vec<(NodeId, Action)>,
    persisted: BTreeMap<NodeId, Vec<u8>>,
}

impl Net {
    fn new(n: NodeId, files: &[(&str, &[u8])]) -> Net {
        let nodes = NodeSet::of(1..=n);
        let files: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.to_vec()))
            .collect();
        let mut net = Net {
            stores: (1..=n)
                .map(|id| (id, Store::seed(id, nodes, files.clone())))
                .collect(),
            group: BTreeMap::new(),
            epoch: 0,
            queue: VecDeque::new(),
            log: Vec::new(),
            persisted: BTreeMap::new(),
        };
        net.partition(&[&(1..=n).collect::<Vec<_>>()]);
        net
    }

    /// Installs one view per group and runs until quiet. Messages between
    /// groups are lost.
    fn partition(&mut self, groups: &[&[NodeId]]) {
        self.run();
        for members in groups {
            self.epoch += 1;
            let view = View {
                id: ViewId {
                    epoch: self.epoch,
                    coordinator: members[0],
                },
                members: NodeSet::of(members.iter().copied()),
            };
            for &id in members.iter() {
                self.group.insert(id, view.members);
                self.stores
                    .get_mut(&id)
                    .unwrap()
                    .view_installed(Time::ZERO, &view);
            }
        }
        self.run();
    }

    fn store(&mut self, id: NodeId) -> &mut Store {
        self.stores.get_mut(&id).unwrap()
    }

    fn propose(&mut self, id: NodeId, edit: Edit) -> Result<Ticket, Refusal> {
        self.store(id).propose(Time::ZERO, edit, &check)
    }

    fn poll_all(&mut self) {
        for (&id, store) in self.stores.iter_mut() {
            while let Some(action) = store.poll() {
                match &action {
                    Action::Send { to, data } if self.group[&id].contains(*to) => {
                        assert!(data.len() <= crate::channel::MAX_MESSAGE);
                        self.queue.push_back((id, *to, data.clone()));
                    }
                    Action::Persist(bytes) => {
                        self.persisted.insert(id, bytes.clone());
                    }
                    _ => {}
                }
                self.log.push((id, action));
            }
        }
    }

    /// Delivers one message (None: the network is quiet).
    fn step(&mut self) -> Option<()> {
        self.poll_all();
        let (from, to, data) = self.queue.pop_front()?;
        self.store(to)
            .message(Time::ZERO, from, &data, &check)
            .unwrap();
        Some(())
    }

    fn run(&mut self) {
        for _ in 0..100_000 {
            if self.step().is_none() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    fn content(&self, id: NodeId, name: &str) -> Option<Vec<u8>> {
        self.stores[&id].get(name).and_then(|d| d.content)
    }

    fn version(&self, id: NodeId, name: &str) -> Option<Version> {
        self.stores[&id].get(name).map(|d| d.version)
    }

    fn outcome(&self, ticket: Ticket, id: NodeId) -> Option<Result<Version, Refusal>> {
        self.log.iter().find_map(|(n, a)| match a {
            Action::Done { ticket: t, version } if *t == ticket && *n == id => Some(Ok(*version)),
            Action::Refused { ticket: t, refusal } if *t == ticket && *n == id => {
                Some(Err(refusal.clone()))
            }
            _ => None,
        })
    }

    fn conflicts(&self, id: NodeId) -> usize {
        self.log
            .iter()
            .filter(|(n, a)| *n == id && matches!(a, Action::Conflict { .. }))
            .count()
    }

    /// Restarts `id` from its last persisted bytes.
    fn restart(&mut self, id: NodeId) {
        let nodes = NodeSet::of(self.stores.keys().copied());
        let store = Store::restore(id, nodes, &self.persisted[&id]).unwrap();
        self.stores.insert(id, store);
        self.queue.retain(|(f, t, _)| *f != id && *t != id);
    }
}

fn edit(name: &str, base: Option<Version>, content: Option<&[u8]>) -> Edit {
    Edit {
        name: name.into(),
        base,
        content: content.map(<[u8]>::to_vec),
        force_local: false,
    }
}

fn forced(name: &str, base: Option<Version>, content: Option<&[u8]>) -> Edit {
    Edit {
        force_local: true,
        ..edit(name, base, content)
    }
}

#[test]
fn version_display_round_trips() {
    let v = Version {
        epoch: 0,
        counter: 7,
        node: 2,
    };
    assert_eq!(v.to_string(), "0.7.2");
    assert_eq!("0.7.2".parse::<Version>(), Ok(v));
    for bad in ["", "1.2", "1.2.3.4", "a.b.c", "1.2.300", "-1.2.3", "1..3"] {
        let err = bad.parse::<Version>().unwrap_err();
        assert!(err.contains("epoch.counter.node"), "{bad}: {err}");
    }
}

#[test]
fn names() {
    for good in [
        "cluster.toml",
        "services/www.toml",
        "a",
        "a-b_c.D/e",
        &"x".repeat(128),
    ] {
        assert!(valid_name(good), "{good}");
    }
    for bad in [
        "",
        "/etc",
        "a//b",
        "a/",
        "../x",
        "a/../b",
        "a b",
        "é",
        &"x".repeat(129),
    ] {
        assert!(!valid_name(bad), "{bad}");
    }
}

#[test]
fn a_change_on_one_node_reaches_the_other() {
    let mut net = Net::new(2, &[]);
    let t = net.propose(1, edit("svc/www", None, Some(b"one"))).unwrap();
    net.run();
    let v = net.outcome(t, 1).unwrap().unwrap();
    assert_eq!(
        v,
        Version {
            epoch: 0,
            counter: 1,
            node: 1
        }
    );
    assert_eq!(net.content(2, "svc/www").as_deref(), Some(&b"one"[..]));
    assert_eq!(net.version(2, "svc/www"), Some(v));
    // Persisted before applied, on both nodes.
    for id in [1, 2] {
        let kinds: Vec<&Action> = net
            .log
            .iter()
            .filter(|(n, _)| *n == id)
            .map(|(_, a)| a)
            .collect();
        let apply = kinds
            .iter()
            .position(|a| matches!(a, Action::Apply { .. }))
            .unwrap();
        assert!(matches!(kinds[apply - 1], Action::Persist(_)));
    }
}

#[test]
fn a_receiver_persists_before_it_acknowledges() {
    let mut net = Net::new(2, &[]);
    net.propose(1, edit("a", None, Some(b"x"))).unwrap();
    net.step();
    net.poll_all();
    let b: Vec<&Action> = net
        .log
        .iter()
        .filter(|(n, _)| *n == 2)
        .map(|(_, a)| a)
        .collect();
    let n = b.len();
    assert!(matches!(b[n - 2], Action::Persist(_)));
    assert!(matches!(b[n - 1], Action::Send { .. }));
    assert_eq!(net.stores[&2].in_doubt("a"), Some(1));
}

#[test]
fn a_stale_edit_shows_the_current_version() {
    let mut net = Net::new(2, &[]);
    net.propose(1, edit("a", None, Some(b"1"))).unwrap();
    net.run();
    let v1 = net.version(2, "a");
    net.propose(2, edit("a", v1, Some(b"2"))).unwrap();
    net.run();
    let v2 = net.version(1, "a");
    assert_eq!(
        net.propose(1, edit("a", v1, Some(b"3"))),
        Err(Refusal::Stale { current: v2 })
    );
    assert_eq!(
        net.propose(1, edit("a", None, Some(b"3"))),
        Err(Refusal::Stale { current: v2 })
    );
}

#[test]
fn concurrent_edits_one_commits_the_other_is_refused() {
    let mut net = Net::new(2, &[]);
    let ta = net.propose(1, edit("a", None, Some(b"from 1"))).unwrap();
    let tb = net.propose(2, edit("a", None, Some(b"from 2"))).unwrap();
    net.run();
    assert!(net.outcome(ta, 1).unwrap().is_ok());
    assert_eq!(net.outcome(tb, 2), Some(Err(Refusal::Busy { by: 1 })));
    assert_eq!(net.content(2, "a").as_deref(), Some(&b"from 1"[..]));
    // A prepare seen first makes a later local edit busy at once.
    let v = net.version(1, "a");
    net.propose(2, edit("a", v, Some(b"x"))).unwrap();
    net.step();
    assert_eq!(
        net.propose(1, edit("a", v, Some(b"y"))),
        Err(Refusal::Busy { by: 2 })
    );
}

#[test]
fn a_check_that_fails_anywhere_commits_nothing() {
    let mut net = Net::new(2, &[]);
    assert_eq!(
        net.propose(1, edit("a", None, Some(b"bad"))),
        Err(Refusal::Rejected {
            node: 1,
            reason: "bad content".into()
        })
    );
    let picky = |_: &str, _: Option<&[u8]>| Err::<(), _>("service www is running here".to_string());
    let t = net.propose(1, edit("a", None, Some(b"ok"))).unwrap();
    net.poll_all();
    let (from, to, data) = net.queue.pop_front().unwrap();
    net.store(to)
        .message(Time::ZERO, from, &data, &picky)
        .unwrap();
    net.run();
    assert_eq!(
        net.outcome(t, 1),
        Some(Err(Refusal::Rejected {
            node: 2,
            reason: "service www is running here".into()
        }))
    );
    assert_eq!(net.version(1, "a"), None);
    assert_eq!(net.version(2, "a"), None);
}

#[test]
fn a_timeout_aborts_everywhere() {
    let mut net = Net::new(2, &[]);
    let t = net.propose(1, edit("a", None, Some(b"x"))).unwrap();
    assert_eq!(net.stores[&1].next_deadline(), Some(TIMEOUT));
    net.step(); // B acknowledges; the ack is never delivered
    net.poll_all();
    net.queue.clear();
    net.store(1).tick(TIMEOUT);
    net.run();
    assert_eq!(net.outcome(t, 1), Some(Err(Refusal::Timeout)));
    assert_eq!(net.stores[&2].in_doubt("a"), None);
    assert_eq!(net.version(2, "a"), None);
    assert_eq!(net.stores[&1].next_deadline(), None);
}

#[test]
fn two_nodes_need_both_or_force_local() {
    let mut net = Net::new(2, &[("a", b"seed")]);
    net.partition(&[&[1], &[2]]);
    let base = net.version(1, "a");
    assert_eq!(
        net.propose(1, edit("a", base, Some(b"new"))),
        Err(Refusal::Missing { nodes: vec![2] })
    );
    let t = net.propose(1, forced("a", base, Some(b"new"))).unwrap();
    net.run();
    let v = net.outcome(t, 1).unwrap().unwrap();
    assert_eq!(
        v,
        Version {
            epoch: 1,
            counter: 1,
            node: 1
        }
    );
    assert_eq!(net.content(2, "a").as_deref(), Some(&b"seed"[..]));
    net.partition(&[&[1, 2]]);
    assert_eq!(net.version(2, "a"), Some(v));
    assert_eq!(net.content(2, "a").as_deref(), Some(&b"new"[..]));
    assert_eq!(net.conflicts(1) + net.conflicts(2), 0);
}

#[test]
fn both_sides_forced_is_a_conflict_until_the_operator_resolves_it() {
    let mut net = Net::new(2, &[("a", b"seed")]);
    net.partition(&[&[1], &[2]]);
    let base = net.version(1, "a");
    net.propose(1, forced("a", base, Some(b"one"))).unwrap();
    net.propose(2, forced("a", base, Some(b"two"))).unwrap();
    net.partition(&[&[1, 2]]);
    assert_eq!(net.content(1, "a").as_deref(), Some(&b"one"[..]));
    assert_eq!(net.content(2, "a").as_deref(), Some(&b"two"[..]));
    assert_eq!((net.conflicts(1), net.conflicts(2)), (1, 1));
    let (v1, v2) = (net.version(1, "a").unwrap(), net.version(2, "a").unwrap());
    assert_eq!(net.stores[&1].get("a").unwrap().conflict, Some((2, v2)));
    assert_eq!(net.stores[&2].get("a").unwrap().conflict, Some((1, v1)));
    // Reported once: another view does not report it again.
    net.partition(&[&[1, 2]]);
    assert_eq!((net.conflicts(1), net.conflicts(2)), (1, 1));
    let t = net.propose(2, edit("a", Some(v2), Some(b"kept"))).unwrap();
    net.run();
    let v = net.outcome(t, 2).unwrap().unwrap();
    assert!(v.epoch > v1.epoch.max(v2.epoch));
    for id in [1, 2] {
        let doc = net.stores[&id].get("a").unwrap();
        assert_eq!(
            (doc.version, doc.conflict, doc.content.as_deref()),
            (v, None, Some(&b"kept"[..]))
        );
    }
    net.partition(&[&[1, 2]]);
    assert_eq!((net.conflicts(1), net.conflicts(2)), (1, 1));
}

#[test]
fn seeds_agree_or_conflict() {
    let nodes = NodeSet::of([1, 2]);
    let mut a = Store::seed(
        1,
        nodes,
        vec![("x".into(), b"same".to_vec()), ("y".into(), b"1".to_vec())],
    );
    let b = Store::seed(
        2,
        nodes,
        vec![("x".into(), b"same".to_vec()), ("y".into(), b"2".to_vec())],
    );
    let mut net = Net::new(2, &[]);
    net.stores.insert(1, std::mem::replace(&mut a, b));
    net.stores.insert(2, a);
    net.partition(&[&[1, 2]]);
    assert_eq!(net.conflicts(1), 1);
    assert_eq!(net.conflicts(2), 1);
    assert_eq!(net.stores[&1].get("x").unwrap().conflict, None);
    assert_eq!(
        net.stores[&1].get("y").unwrap().conflict.map(|c| c.0),
        Some(2)
    );
    let normal = net.propose(1, edit("y", net.version(1, "y"), Some(b"3")));
    assert!(normal.is_ok(), "{normal:?}: the resolution");
}

#[test]
fn a_removal_reaches_a_node_that_was_away() {
    let mut net = Net::new(3, &[("a", b"x")]);
    net.partition(&[&[1, 2], &[3]]);
    let t = net
        .propose(1, edit("a", net.version(1, "a"), None))
        .unwrap();
    net.run();
    let v = net.outcome(t, 1).unwrap().unwrap();
    assert_eq!(net.content(3, "a").as_deref(), Some(&b"x"[..]));
    assert_eq!(
        net.propose(3, edit("a", net.version(3, "a"), Some(b"y"))),
        Err(Refusal::Missing { nodes: vec![1, 2] })
    );
    net.partition(&[&[1, 2, 3]]);
    assert_eq!(
        net.stores[&3].get("a").map(|d| (d.version, d.content)),
        Some((v, None))
    );
    // Created again on top of the tombstone, with base None.
    assert!(net.propose(3, edit("a", None, Some(b"again"))).is_ok());
    net.run();
    assert_eq!(net.content(1, "a").as_deref(), Some(&b"again"[..]));
}

#[test]
fn restore_keeps_what_was_acknowledged() {
    let mut net = Net::new(2, &[]);
    net.propose(1, edit("a", None, Some(b"x"))).unwrap();
    net.step(); // B acknowledged
    net.poll_all();
    net.queue.clear();
    net.restart(2);
    assert_eq!(net.stores[&2].in_doubt("a"), Some(1));
    assert_eq!(
        net.propose(2, edit("a", None, Some(b"y"))),
        Err(Refusal::Busy { by: 1 })
    );
    // The proposer's summary tells the outcome: it committed nothing.
    net.partition(&[&[1, 2]]);
    assert_eq!(net.stores[&2].in_doubt("a"), None);
    assert_eq!(net.version(2, "a"), None);
    let bytes = net.persisted[&2].clone();
    for bad in [&[][..], &[9], &bytes[..bytes.len() - 1]] {
        let err = Store::restore(2, NodeSet::of([1, 2]), bad).err().unwrap();
        assert!(err.contains("corrupt"), "{err}");
    }
}

#[test]
fn a_committed_prepare_in_doubt_is_learnt_from_a_summary() {
    let mut net = Net::new(2, &[]);
    let t = net.propose(1, edit("a", None, Some(b"x"))).unwrap();
    net.step(); // B acknowledged
    net.step(); // A committed; the commit to B is lost
    net.poll_all();
    net.queue.clear();
    assert!(net.outcome(t, 1).unwrap().is_ok());
    assert_eq!(net.stores[&2].in_doubt("a"), Some(1));
    net.partition(&[&[1, 2]]);
    assert_eq!(net.stores[&2].in_doubt("a"), None);
    assert_eq!(net.content(2, "a").as_deref(), Some(&b"x"[..]));
}

#[test]
fn three_nodes_commit_on_a_quorum_and_the_third_catches_up() {
    let mut net = Net::new(3, &[]);
    net.partition(&[&[1, 3], &[2]]);
    let t = net.propose(3, edit("a", None, Some(b"x"))).unwrap();
    net.run();
    let v = net.outcome(t, 3).unwrap().unwrap();
    assert_eq!(net.version(1, "a"), Some(v));
    assert_eq!(
        net.propose(2, edit("b", None, Some(b"y"))),
        Err(Refusal::Missing { nodes: vec![1, 3] })
    );
    net.partition(&[&[1, 2, 3]]);
    assert_eq!(net.version(2, "a"), Some(v));
}

#[test]
fn a_large_document_is_chunked() {
    let mut net = Net::new(2, &[]);
    let big: Vec<u8> = (0..MAX_DOC).map(|i| i as u8).collect();
    net.propose(1, edit("big", None, Some(&big))).unwrap();
    net.run();
    assert_eq!(net.content(2, "big"), Some(big));
    assert_eq!(
        net.propose(1, edit("c", None, Some(&vec![0; MAX_DOC + 1]))),
        Err(Refusal::TooLarge { len: MAX_DOC + 1 })
    );
    assert_eq!(
        net.propose(1, edit("/c", None, Some(b""))),
        Err(Refusal::BadName { name: "/c".into() })
    );
}

#[test]
fn garbage_gives_errors_never_panics() {
    let mut store = Store::seed(1, NodeSet::of([1, 2]), vec![]);
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    for len in 0..2000 {
        let mut data = vec![PROTOCOL, 3];
        for _ in 0..len % 300 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            data.push(rng as u8);
        }
        let _ = store.message(Time::ZERO, 2, &data, &check);
    }
    assert!(
        store
            .message(Time::ZERO, 1, &[PROTOCOL, 3, 1], &check)
            .is_err()
    );
    assert!(store.message(Time::ZERO, 2, &[1, 3, 1], &check).is_err());
    assert!(
        store
            .message(Time::ZERO, 2, &[PROTOCOL, 3, 99], &check)
            .is_err()
    );
}

#[test]
fn refusals_say_what_to_do() {
    let missing = Refusal::Missing { nodes: vec![2] }.to_string();
    assert!(missing.contains("--force-local"), "{missing}");
    let stale = Refusal::Stale {
        current: Some(Version {
            epoch: 0,
            counter: 3,
            node: 1,
        }),
    };
    assert!(stale.to_string().contains("0.3.1"));
}

#[test]
fn each_node_opens_its_own_epochs() {
    let mut store = Store::seed(2, NodeSet::of([1, 2]), vec![]);
    assert_eq!(store.new_epoch(), 2);
    store.max_epoch = 2;
    assert_eq!(store.new_epoch(), 66);
    let mut store = Store::seed(64, NodeSet::of([1, 64]), vec![]);
    assert_eq!(store.new_epoch(), 64);
    store.max_epoch = 64;
    assert_eq!(store.new_epoch(), 128);
}

#[test]
fn every_message_decodes_to_what_was_encoded() {
    let lineage = Lineage::default().next();
    let head = Head {
        version: lineage.version(1).unwrap(),
        lineage,
        hash: lineage::hash(Some(b"x")),
    };
    let held = Held {
        head: head.clone(),
        content: Some(b"x".to_vec()),
    };
    let messages = [
        Msg::Summary {
            full: true,
            entries: vec![("a".into(), head.clone()), ("b".into(), head.clone())],
        },
        Msg::Fetch("a".into()),
        Msg::Transfer("a".into(), held.clone()),
        Msg::Prepare {
            ticket: 7,
            name: "a/b".into(),
            base: Some((head.version, head.hash)),
            new: held,
        },
        Msg::Ack(7),
        Msg::Nack(7, Refusal::Busy { by: 2 }),
        Msg::Nack(7, Refusal::Stale { current: None }),
        Msg::Commit {
            ticket: 7,
            name: "a".into(),
            version: head.version,
            told: NodeSet::of([1, 3]),
        },
        Msg::Abort {
            ticket: 7,
            name: "a".into(),
        },
    ];
    for msg in messages {
        let bytes = msg.encode();
        assert_eq!(Msg::decode(&bytes), Ok(msg.clone()));
        for cut in 0..bytes.len() {
            assert!(Msg::decode(&bytes[..cut]).is_err(), "{msg:?} cut at {cut}");
        }
    }
}
