//! The never-twice checker of the service tests on the [`WebService`]
//! fixture (invariant 1), and the wait for the one claimant left once the
//! dust settles.
//!
//! * [`watched`] runs a test body while a thread of its own looks at every
//!   node every [`EVERY`]: the floating IP, the shared volume and the
//!   application must be on one node at most at each look. The first
//!   violation is kept (with the daemons' log tails of that moment) and
//!   fails the test when the body ends, or at once at the body's next
//!   [`Watch::check`].
//! * [`one_claimant`] waits until exactly one node holds the floating IP
//!   and runs the application, and every node's hasvrd names it the owner.
//! * [`poll_until`]: the bounded poll both are built on.

use crate::web::{NODES, SERVICE, WebService};
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the watcher looks.
pub const EVERY: Duration = Duration::from_millis(100);
/// How often [`poll_until`] looks.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait of [`one_claimant`]: generous for a loaded machine.
const SETTLE_WAIT: Duration = Duration::from_secs(60);
/// The watcher's own bound: no test body runs this long.
const LONGEST_WATCH: Duration = Duration::from_secs(1800);

/// What a running watcher found ([`watched`]).
pub struct Watch<'a> {
    w: &'a WebService,
    found: Mutex<Option<String>>,
}

impl Watch<'_> {
    /// Panics with the first violation found so far, if any.
    #[track_caller]
    pub fn check(&self) {
        if let Some(found) = self.found.lock().unwrap_or_else(|p| p.into_inner()).take() {
            panic!("{found}");
        }
    }

    /// One look at every node: what runs twice, if anything.
    fn look(&self) -> Option<String> {
        let w = self.w;
        let running: Vec<&str> = NODES.into_iter().filter(|n| w.app_running(n)).collect();
        let twice = [
            ("the floating IP is on", fip_holders(w)),
            ("the shared volume is mounted on", w.volume_holders()),
            ("the application runs on", running),
        ];
        twice
            .into_iter()
            .find(|(_, nodes)| nodes.len() > 1)
            .map(|(what, nodes)| format!("{what} {nodes:?} at once"))
    }
}

/// The nodes that hold the floating IP now, as [`WebService::holders`],
/// but an IPv4 one is looked up from a thread of this process that joined
/// each node's namespace, never by a process in it: the power switch
/// counts those to tell a node is off, and a look that many times a second
/// would make its fences fail. (An IPv6 one goes through
/// [`WebService::holders`], which tells a tentative address from a held
/// one.) A namespace that cannot be looked into (gone at teardown) holds
/// nothing.
fn fip_holders(w: &WebService) -> Vec<&'static str> {
    let IpAddr::V4(fip) = w.fip() else {
        return w.holders();
    };
    let holds = |node: &str| {
        w.cluster()
            .ns(node)
            .enter(|| {
                nix::ifaddrs::getifaddrs().is_ok_and(|mut addrs| {
                    addrs.any(|a| {
                        a.address.and_then(|s| s.as_sockaddr_in().map(|i| i.ip())) == Some(fip)
                    })
                })
            })
            .unwrap_or(false)
    };
    NODES.into_iter().filter(|n| holds(n)).collect()
}

/// Runs `body` while a thread checks, every [`EVERY`], that the service
/// (floating IP, volume, application) is on one node at most; panics,
/// once `body` is done, with the first violation and the log tails of
/// that moment. `body` gets the [`Watch`], to fail at once with
/// [`Watch::check`].
#[track_caller]
pub fn watched<T>(w: &WebService, body: impl FnOnce(&Watch) -> T) -> T {
    let watch = Watch {
        w,
        found: Mutex::new(None),
    };
    let done = AtomicBool::new(false);
    let began = Instant::now();
    let value = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) && began.elapsed() < LONGEST_WATCH {
                if let Some(twice) = watch.look() {
                    let found = format!(
                        "never twice broken {:?} into the watch: {twice}\n{}",
                        began.elapsed(),
                        w.cluster().log_tails(60)
                    );
                    *watch.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(found);
                    return;
                }
                std::thread::sleep(EVERY);
            }
        });
        // Stops the watcher however the body ends: a panic too, or the
        // scope would wait for it.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&done);
        body(&watch)
    });
    watch.check();
    value
}

/// Polls until `done` holds (every 200 ms, at most `timeout`), checking
/// `keep` at every poll first; panics naming `what`, with the log tails.
#[track_caller]
pub fn poll_until(
    w: &WebService,
    what: &str,
    timeout: Duration,
    keep: impl Fn(),
    done: impl Fn() -> bool,
) {
    let end = Instant::now() + timeout;
    loop {
        keep();
        if done() {
            return;
        }
        assert!(
            Instant::now() < end,
            "{what}: not within {timeout:?}\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep(POLL);
    }
}

/// The owner each node's hasvrd reports for the service (None where it
/// does not answer).
pub fn owners(w: &WebService) -> Vec<Option<String>> {
    NODES
        .iter()
        .map(|n| {
            w.cluster()
                .services(n)
                .ok()
                .and_then(|s| s.into_iter().find(|s| s.name == SERVICE))
                .and_then(|s| s.owner)
        })
        .collect()
}

/// Waits (at most 60 s) until the floating IP and the application are on
/// one node only and every hasvrd names the same owner, checking `keep`
/// at every poll; returns that node. A node that is off (no hasvrd
/// answers there) is not asked: `alive` are the nodes whose hasvrd must
/// name the owner.
#[track_caller]
pub fn one_claimant(w: &WebService, alive: &[&str], keep: impl Fn()) -> &'static str {
    poll_until(
        w,
        "one claimant left once the dust settled",
        SETTLE_WAIT,
        keep,
        || {
            let holders = w.holders();
            let running: Vec<&str> = NODES.into_iter().filter(|n| w.app_running(n)).collect();
            let owners = owners(w);
            holders.len() == 1
                && running == holders
                && NODES
                    .iter()
                    .zip(&owners)
                    .filter(|(n, _)| alive.contains(n))
                    .all(|(_, o)| o.as_deref() == Some(holders[0]))
        },
    );
    w.holders()[0]
}
