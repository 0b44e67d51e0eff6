//! AutoGet with real daemons (`hactl node nics [NODE]`): alpha reads its
//! own interfaces, and beta's by asking beta's hamond over the cluster
//! (beta's veth with beta's address on that LAN); a node that is not in
//! the config is refused by name; a beta that hangs gets the timeout, a
//! beta that is gone gets "down", both naming it, neither hanging hactl.

use haschema::ctl::{Nic, State};
use hatests::cluster::{LAN1, LAN2};
use hatests::command::{Finished, run_for};
use hatests::{TestCluster, bins, require_root};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest wait for the cluster to come up, or for a loss to be seen.
const WAIT: Duration = Duration::from_secs(20);

/// `hactl node nics ARGS` against `node`'s hamond.
fn nics(c: &TestCluster, node: &str, args: &[&str]) -> Finished {
    let mut cmd = Command::new(bins::hactl());
    cmd.arg("--socket")
        .arg(c.socket(node))
        .args(["node", "nics"])
        .args(args);
    run_for(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
}

/// `hactl node nics [NODE] --json` on alpha: the node named and its NICs.
#[track_caller]
fn listed(c: &TestCluster, node: Option<&str>) -> (String, Vec<Nic>) {
    let mut args: Vec<&str> = node.into_iter().collect();
    args.push("--json");
    let f = nics(c, "alpha", &args);
    assert_eq!(f.code(), Some(0), "{f:?}");
    let v: serde_json::Value =
        serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}: {}", f.stdout));
    let named = v["node"].as_str().unwrap_or_default().to_owned();
    let list = serde_json::from_value(v["nics"].clone()).unwrap_or_else(|e| panic!("{e}: {v}"));
    assert_eq!(v["truncated"], false, "{v}");
    (named, list)
}

/// `node`'s end of both LANs is in `list`, up, with its MAC and address.
#[track_caller]
fn has_lans(c: &TestCluster, node: &str, list: &[Nic]) {
    assert!(list.iter().all(|n| n.name != "lo"), "{list:#?}");
    for lan in [LAN1, LAN2] {
        let want = format!("{}/24", c.addr(node, lan).ip());
        let nic = list
            .iter()
            .find(|n| n.addresses.contains(&want))
            .unwrap_or_else(|| panic!("no NIC with {want} in {node}'s {list:#?}"));
        assert!(nic.up && nic.mac.is_some(), "{nic:?}");
    }
}

/// `hactl node nics ARGS` on alpha failed (exit 1, nothing on stdout)
/// with a message holding every one of `words`... or of `or_words`;
/// returns how long it took.
#[track_caller]
fn refused(c: &TestCluster, args: &[&str], words: &[&[&str]]) -> Duration {
    let start = Instant::now();
    let f = nics(c, "alpha", args);
    let took = start.elapsed();
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stdout.trim().is_empty(), "{f:?}");
    assert!(
        words
            .iter()
            .any(|all| all.iter().all(|w| f.stderr.contains(w))),
        "expected {words:?} in {:?}",
        f.stderr
    );
    took
}

#[test]
fn autoget_reads_a_peers_nics_and_names_unknown_hung_and_down_nodes() {
    if !require_root() {
        return;
    }
    let c = TestCluster::new("autoget", &["alpha", "beta"]);
    c.wait_until("alpha and beta see each other up", WAIT, |s| s.all_up());

    let (named, own) = listed(&c, None);
    assert_eq!(named, "alpha");
    has_lans(&c, "alpha", &own);
    let (named, peer) = listed(&c, Some("beta"));
    assert_eq!(named, "beta");
    has_lans(&c, "beta", &peer);
    assert!(
        !peer.iter().any(|n| n.addresses.iter().any(|a| own
            .iter()
            .any(|o| o.addresses.contains(a) && !a.starts_with("fe80")))),
        "beta's list holds alpha's addresses: {peer:#?}"
    );
    let table = nics(&c, "alpha", &["beta"]);
    assert_eq!(table.code(), Some(0), "{table:?}");
    assert!(
        table.stdout.starts_with("beta:\n")
            && table
                .stdout
                .contains(&c.addr("beta", LAN1).ip().to_string()),
        "{table:?}"
    );

    refused(&c, &["gamma"], &[&["no node gamma", "hactl status"]]);

    // Hung: frozen before alpha can tell. Asked at once, alpha either
    // still sees beta up (the ask times out) or already lost it.
    c.stop("beta");
    let took = refused(
        &c,
        &["beta"],
        &[&["beta did not answer", "is it up?"], &["beta is down"]],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // Gone: once alpha lost it, refused at once.
    c.crash("beta");
    c.wait_until("alpha sees beta down", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(State::Down)
    });
    let took = refused(&c, &["beta"], &[&["beta is down", "start its daemons"]]);
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
