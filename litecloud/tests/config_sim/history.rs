//! The true history of the simulated cluster's configuration: every
//! version an edit committed, with its content and the versions it was made
//! from, so the simulator can judge descent without trusting the stores'
//! own lineages.

use litecloud::config::Version;
use litecloud::view::NodeSet;
use std::collections::{HashMap, HashSet};

/// The version of seeded documents (made by no edit).
pub const SEED: Version = Version {
    epoch: 0,
    counter: 0,
    node: 0,
};

/// A committed edit (an [`litecloud::config::Action::Done`]).
#[derive(Clone, Debug)]
pub struct Done {
    pub name: String,
    pub version: Version,
    /// The nodes whose agreement it needed (those that must hold it).
    pub needed: NodeSet,
}

struct Made {
    content: Option<Vec<u8>>,
    parents: Vec<Version>,
}

/// What was committed, and from what.
#[derive(Default)]
pub struct History {
    made: HashMap<String, HashMap<Version, Made>>,
    /// (document, base) of every normal commit: two would be a lost update.
    normal: HashSet<(String, Option<Version>)>,
    pub dones: Vec<Done>,
}

/// How a commit was made.
pub struct Commit {
    pub name: String,
    pub version: Version,
    pub content: Option<Vec<u8>>,
    /// The proposer's version when the edit was proposed.
    pub base: Option<Version>,
    /// The versions it descends from (the base, and for an operator's
    /// resolution the conflicting ones).
    pub parents: Vec<Version>,
    pub needed: NodeSet,
    /// A normal commit (not forced, not a resolution): next counter, same epoch.
    pub normal: bool,
}

impl History {
    /// The content committed as `version` of `name` (None: no edit made it).
    pub fn content(&self, name: &str, version: Version) -> Option<&Option<Vec<u8>>> {
        self.made.get(name)?.get(&version).map(|m| &m.content)
    }

    /// Every version of `name` committed so far, in a fixed order.
    pub fn versions(&self, name: &str) -> Vec<Version> {
        let mut versions: Vec<Version> = self
            .made
            .get(name)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        versions.sort_by_key(|v| (v.epoch, v.counter, v.node));
        versions
    }

    /// Whether version `a` of `name` is `b` or was made (transitively) from it.
    pub fn descends(&self, name: &str, a: Version, b: Version) -> bool {
        if a == b {
            return true;
        }
        let Some(made) = self.made.get(name) else {
            return false;
        };
        let mut seen = HashSet::from([a]);
        let mut todo = vec![a];
        while let Some(v) = todo.pop() {
            if v == b {
                return true;
            }
            let Some(made) = made.get(&v) else {
                continue;
            };
            for &p in &made.parents {
                if seen.insert(p) {
                    todo.push(p);
                }
            }
        }
        false
    }

    /// Records a commit, checking that no version is made twice and that
    /// two normal edits never commit on one base.
    pub fn commit(&mut self, c: Commit) {
        let made = self.made.entry(c.name.clone()).or_default();
        assert!(
            !made.contains_key(&c.version),
            "version {} of {} committed twice",
            c.version,
            c.name
        );
        for p in &c.parents {
            let known = *p == SEED || made.contains_key(p);
            assert!(known, "{} made from unknown version {p}", c.version);
        }
        if c.normal {
            let (epoch, counter) = c.base.map_or((0, 0), |b| (b.epoch, b.counter));
            assert_eq!(
                (c.version.epoch, c.version.counter),
                (epoch, counter + 1),
                "normal commit of {} on {:?}",
                c.name,
                c.base
            );
            assert!(
                self.normal.insert((c.name.clone(), c.base)),
                "two edits of {} committed on base {:?}",
                c.name,
                c.base
            );
        }
        self.dones.push(Done {
            name: c.name,
            version: c.version,
            needed: c.needed,
        });
        made.insert(
            c.version,
            Made {
                content: c.content,
                parents: c.parents,
            },
        );
    }
}
