//! Deterministic simulation of replicated configuration
//! ([`litecloud::config`]): 2 to 5 stores, seeded random operator edits
//! (normal, forced, removals, concurrent) on random nodes, partitions,
//! crashes and restarts, random delays. On every step: no version with two
//! contents, files equal documents, no node moves to a version that does
//! not descend from its own; whenever the cluster is whole and quiet: no
//! committed edit lost. A failing seed is printed, and replays with
//! `CONFIG_SIM_SEED=<seed> cargo test -p litecloud --test config_sim`.
//! Named scenarios follow the random runs.

#[path = "config_sim/history.rs"]
mod history;
#[path = "config_sim/world.rs"]
mod world;

use litecloud::Time;
use litecloud::config::{Edit, Refusal, Version};
use litecloud::wire::NodeId;
use rand::RngExt;
use world::{Outcome, World};

const NAMES: [&str; 4] = ["cluster.toml", "svc/www", "svc/db", "admin/passwd"];

/// Random steps per seed.
const STEPS: usize = 250;

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

/// A random edit on a random up node.
fn random_edit(w: &mut World, name: &str, id: NodeId) {
    let current = w.version(id, name);
    let base = match w.rng.random_range(0..10) {
        0 => None,
        1 => {
            let known = w.history.versions(name);
            (!known.is_empty()).then(|| known[w.rng.random_range(0..known.len())])
        }
        _ => current,
    };
    let content = match w.rng.random_range(0..20) {
        0..=2 => None,
        3 => Some(b"bad".to_vec()),
        4 => Some(vec![w.rng.random_range(0..=255u8); 2500]),
        _ => Some(format!("{name} {}", w.rng.random_range(0..1_000_000u32)).into_bytes()),
    };
    let e = Edit {
        name: name.into(),
        base,
        content,
        force_local: w.rng.random_range(0..8) == 0,
    };
    let _ = w.edit(id, e);
}

/// The operator resolves every conflict: a normal edit on a node showing
/// it, with its own version as the base.
fn resolve_conflicts(w: &mut World) {
    for name in NAMES {
        for _ in 0..w.up().len() {
            let Some(id) = w
                .up()
                .into_iter()
                .find(|&id| !w.store_conflicts(id, name).is_empty())
            else {
                break;
            };
            let base = w.version(id, name);
            let ticket = w.edit(id, edit(name, base, Some(b"resolved")));
            let ticket = ticket.unwrap_or_else(|r| panic!("resolution of {name} refused: {r}"));
            w.settle();
            assert!(
                matches!(w.outcome(id, ticket), Some(Outcome::Done(_))),
                "resolution of {name}: {:?}",
                w.outcome(id, ticket)
            );
        }
    }
}

fn run_seed(seed: u64) {
    let n = 2 + (seed % 4) as NodeId;
    let mut w = World::new(seed, n, |_| Vec::new());
    // Seeded documents: the same content everywhere, or absent on some.
    let present: Vec<(usize, Vec<bool>)> = (0..NAMES.len())
        .map(|i| (i, (0..n).map(|_| w.rng.random_range(0..3) > 0).collect()))
        .collect();
    w = World::new(seed, n, |id| {
        present
            .iter()
            .filter(|(_, on)| on[usize::from(id) - 1])
            .map(|&(i, _)| {
                (
                    NAMES[i].to_string(),
                    format!("seed of {}", NAMES[i]).into_bytes(),
                )
            })
            .collect()
    });
    w.crashes = true;
    for _ in 0..STEPS {
        let up = w.up();
        match w.rng.random_range(0..100) {
            0..=54 => {
                if !w.deliver_one() {
                    let dt = Time::from_millis(w.rng.random_range(1..500));
                    w.advance(dt);
                }
            }
            55..=62 => {
                let dt = if w.rng.random_range(0..4) == 0 {
                    Time::from_secs(11)
                } else {
                    Time::from_millis(w.rng.random_range(1..3000))
                };
                w.advance(dt);
            }
            63..=77 => {
                let id = up[w.rng.random_range(0..up.len())];
                let name = NAMES[w.rng.random_range(0..NAMES.len())];
                random_edit(&mut w, name, id);
            }
            78..=81 => {
                // Two nodes edit one document at once.
                let name = NAMES[w.rng.random_range(0..NAMES.len())];
                for _ in 0..2 {
                    let id = up[w.rng.random_range(0..up.len())];
                    random_edit(&mut w, name, id);
                }
            }
            82..=86 => w.random_partition(),
            87..=88 => w.heal(),
            89..=91 if up.len() > 1 => {
                let id = up[w.rng.random_range(0..up.len())];
                w.crash(id);
            }
            92..=95 => {
                let down = w.down();
                if !down.is_empty() {
                    let id = down[w.rng.random_range(0..down.len())];
                    let peer = up[w.rng.random_range(0..up.len())];
                    let join = w.rng.random_range(0..2) == 0;
                    w.restart(id, join.then_some(peer));
                }
            }
            _ => {
                w.heal();
                w.settle();
                w.check_settled();
            }
        }
    }
    w.crashes = false;
    for id in w.down() {
        w.restart(id, None);
    }
    w.heal();
    w.settle();
    w.check_settled();
    resolve_conflicts(&mut w);
    w.check_settled();
    w.check_converged();
}

fn run_checked(seed: u64) {
    if std::panic::catch_unwind(|| run_seed(seed)).is_err() {
        panic!(
            "config simulation failed for seed {seed}; replay: \
             CONFIG_SIM_SEED={seed} cargo test -p litecloud --test config_sim random"
        );
    }
}

#[test]
fn random_clusters() {
    if let Some(seed) = std::env::var("CONFIG_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return run_seed(seed);
    }
    let seeds: u64 = std::env::var("CONFIG_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    for seed in 0..seeds {
        run_checked(seed);
    }
}

fn files(names: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    names
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_vec()))
        .collect()
}

fn done(w: &World, id: NodeId, ticket: u64) -> Version {
    match w.outcome(id, ticket) {
        Some(Outcome::Done(v)) => v,
        other => panic!("edit {ticket} of node {id}: {other:?}"),
    }
}

#[test]
fn created_on_a_seen_on_b() {
    let mut w = World::new(1, 2, |_| Vec::new());
    let t = w
        .edit(1, edit("svc/www", None, Some(b"ip=10.0.0.9")))
        .unwrap();
    w.settle();
    let v = done(&w, 1, t);
    assert_eq!(w.version(2, "svc/www"), Some(v));
    assert_eq!(
        w.content(2, "svc/www").as_deref(),
        Some(&b"ip=10.0.0.9"[..])
    );
    w.check_settled();
}

#[test]
fn b_offline_during_a_forced_change_takes_it_when_it_rejoins() {
    let mut w = World::new(2, 2, |_| files(&[("cluster.toml", b"old")]));
    w.crash(2);
    w.quiet();
    let base = w.version(1, "cluster.toml");
    assert_eq!(
        w.edit(1, edit("cluster.toml", base, Some(b"new"))),
        Err(Refusal::Missing { nodes: vec![2] })
    );
    let t = w
        .edit(1, forced("cluster.toml", base, Some(b"new")))
        .unwrap();
    let v = done(&w, 1, t);
    assert!(v.epoch > 0, "a forced change opens an admin epoch: {v}");
    w.restart(2, Some(1));
    w.settle();
    assert_eq!(w.version(2, "cluster.toml"), Some(v));
    assert_eq!(w.content(2, "cluster.toml").as_deref(), Some(&b"new"[..]));
    assert!(w.conflicts.is_empty());
    w.check_settled();
    w.check_converged();
}

#[test]
fn two_concurrent_edits_one_commits_the_other_is_refused() {
    let mut w = World::new(3, 2, |_| files(&[("svc/db", b"v0")]));
    let base = w.version(1, "svc/db");
    let ta = w.edit(1, edit("svc/db", base, Some(b"from A"))).unwrap();
    let tb = w.edit(2, edit("svc/db", base, Some(b"from B"))).unwrap();
    w.settle();
    let v = done(&w, 1, ta);
    assert_eq!(
        w.outcome(2, tb),
        Some(Outcome::Refused(Refusal::Busy { by: 1 }))
    );
    for id in [1, 2] {
        assert_eq!(w.version(id, "svc/db"), Some(v));
        assert_eq!(w.content(id, "svc/db").as_deref(), Some(&b"from A"[..]));
    }
    // B retries on what it read before: refused, with the current version.
    assert_eq!(
        w.edit(2, edit("svc/db", base, Some(b"from B"))),
        Err(Refusal::Stale { current: Some(v) })
    );
}

#[test]
fn both_sides_forced_in_a_partition_conflict_until_the_operator_resolves() {
    let mut w = World::new(4, 2, |_| files(&[("svc/www", b"v0")]));
    w.partition(&[&[1], &[2]]);
    w.quiet();
    let base = w.version(1, "svc/www");
    let ta = w.edit(1, forced("svc/www", base, Some(b"A's"))).unwrap();
    let tb = w.edit(2, forced("svc/www", base, Some(b"B's"))).unwrap();
    let (va, vb) = (done(&w, 1, ta), done(&w, 2, tb));
    assert_ne!(va, vb);
    w.heal();
    w.settle();
    assert_eq!(w.conflicts.get(&1), Some(&1));
    assert_eq!(w.conflicts.get(&2), Some(&1));
    assert_eq!(w.doc(1, "svc/www").unwrap().conflict, Some((2, vb)));
    assert_eq!(w.doc(2, "svc/www").unwrap().conflict, Some((1, va)));
    assert_eq!(w.content(1, "svc/www").as_deref(), Some(&b"A's"[..]));
    assert_eq!(w.content(2, "svc/www").as_deref(), Some(&b"B's"[..]));
    // The operator keeps B's content, committing it on B with both present.
    let t = w.edit(2, edit("svc/www", Some(vb), Some(b"B's"))).unwrap();
    w.settle();
    let v = done(&w, 2, t);
    for id in [1, 2] {
        let doc = w.doc(id, "svc/www").unwrap();
        assert_eq!((doc.version, doc.conflict), (v, None));
    }
    w.check_settled();
    w.check_converged();
}

#[test]
fn a_removal_reaches_a_node_that_was_away() {
    let mut w = World::new(5, 3, |_| files(&[("svc/old", b"x")]));
    w.crash(3);
    w.quiet();
    let base = w.version(1, "svc/old");
    let t = w.edit(1, edit("svc/old", base, None)).unwrap();
    w.settle();
    let v = done(&w, 1, t);
    w.restart(3, Some(1));
    w.settle();
    for id in [1, 2, 3] {
        let doc = w.doc(id, "svc/old").unwrap();
        assert_eq!((doc.version, doc.content), (v, None));
    }
    // Node 3 comes back again: the document stays removed.
    w.crash(3);
    w.restart(3, Some(2));
    w.settle();
    assert_eq!(w.doc(1, "svc/old").unwrap().content, None);
    w.check_converged();
}

#[test]
fn an_acknowledged_edit_whose_proposer_crashed_blocks_until_the_outcome_is_known() {
    let mut w = World::new(6, 2, |_| Vec::new());
    w.edit(1, edit("svc/www", None, Some(b"x"))).unwrap();
    w.advance(Time::from_secs(1));
    assert!(w.deliver_one(), "the prepare reaches node 2");
    w.crash(1);
    w.quiet();
    assert_eq!(w.in_doubt(2, "svc/www"), Some(1));
    assert_eq!(
        w.edit(2, forced("svc/www", None, Some(b"y"))).map(|_| ()),
        Ok(()),
        "the operator may force past a proposer that is gone"
    );
    let mut w = World::new(7, 2, |_| Vec::new());
    w.edit(1, edit("svc/www", None, Some(b"x"))).unwrap();
    w.advance(Time::from_secs(1));
    assert!(w.deliver_one());
    w.crash(1);
    w.quiet();
    assert_eq!(
        w.edit(2, edit("svc/www", None, Some(b"y"))),
        Err(Refusal::Busy { by: 1 })
    );
    // Node 1 restarts without the edit (it never committed): node 2 learns
    // that from its summary, and edits again.
    w.restart(1, Some(2));
    w.settle();
    assert_eq!(w.in_doubt(2, "svc/www"), None);
    assert_eq!(w.version(2, "svc/www"), None);
    let t = w.edit(2, edit("svc/www", None, Some(b"y"))).unwrap();
    w.settle();
    done(&w, 2, t);
    w.check_converged();
}
