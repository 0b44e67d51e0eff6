//! Agreed membership and quorum with three real `hamond` daemons: alpha,
//! beta and gamma, each in its own network namespace, joined by a switch on
//! two UDP networks (`lan1`, `lan2`; no serial network with three nodes).
//! Checks that the three agree on one view of all three with quorum, that
//! an isolated node ends alone in a view without quorum while the other two
//! agree on a quorate view of their own, and that once it rejoins all three
//! agree again. No fencing device and no service is configured.

use haschema::ctl::ViewStatus;
use hatests::{Snapshot, TestCluster, require_root};
use std::time::Duration;

/// Longest wait for any view change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(30);
/// The cluster's nodes, in config order.
const NODES: [&str; 3] = ["alpha", "beta", "gamma"];

/// `node`'s installed view, if it answered and has one.
fn view<'a>(s: &'a Snapshot, node: &str) -> Option<&'a ViewStatus> {
    s.get(node)?.view.as_ref()
}

/// Every node of `group` has installed the same view (epoch and
/// coordinator), whose members are exactly `group` and whose quorum is
/// `quorum`.
fn group_agrees(s: &Snapshot, group: &[&str], quorum: bool) -> bool {
    let views: Option<Vec<&ViewStatus>> = group.iter().map(|n| view(s, n)).collect();
    let Some(views) = views else {
        return false;
    };
    let mut members: Vec<&str> = views[0].members.iter().map(String::as_str).collect();
    members.sort_unstable();
    let mut expected = group.to_vec();
    expected.sort_unstable();
    members == expected
        && views[0].quorum == quorum
        && views
            .iter()
            .all(|v| v.epoch == views[0].epoch && v.coordinator == views[0].coordinator)
}

/// One line per node with its view, for the test's output.
fn views_line(s: &Snapshot) -> String {
    NODES
        .iter()
        .map(|n| match view(s, n) {
            Some(v) => format!(
                "{n}: epoch {} by {} {:?} quorum {}",
                v.epoch, v.coordinator, v.members, v.quorum
            ),
            None => format!("{n}: no view"),
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Waits (at most [`WAIT`]) until `cond` holds, printing every change of
/// the nodes' views on the way (shown with the output of a failing test).
#[track_caller]
fn wait_views(c: &TestCluster, desc: &str, cond: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let mut last = String::new();
    let s = c.wait_until(desc, WAIT, |s| {
        let line = views_line(s);
        if line != last {
            eprintln!("views: {line}");
            last = line;
        }
        cond(s)
    });
    eprintln!("reached `{desc}`: {}", views_line(&s));
    s
}

#[test]
fn three_nodes_agree_on_a_view_and_a_cut_node_loses_quorum() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("quorum_three", &NODES);
    let first = wait_views(&c, "all three agree on a quorate view", |s| {
        group_agrees(s, &NODES, true)
    });

    c.isolate("gamma");
    let split = wait_views(
        &c,
        "alpha and beta agree on a quorate view, gamma is alone without quorum",
        |s| group_agrees(s, &["alpha", "beta"], true) && group_agrees(s, &["gamma"], false),
    );
    let pair = view(&split, "alpha").expect("alpha's view");
    let before = view(&first, "alpha").expect("alpha's first view");
    assert!(
        pair.epoch > before.epoch,
        "the pair's view {pair:?} comes after the first {before:?}"
    );

    c.rejoin("gamma");
    let again = wait_views(&c, "all three agree again on a quorate view", |s| {
        group_agrees(s, &NODES, true)
    });
    let joined = view(&again, "alpha").expect("alpha's view");
    assert!(
        joined.epoch > pair.epoch,
        "the view after the rejoin {joined:?} comes after the pair's {pair:?}"
    );
}
