//! Heartbeat with real `hamond` daemons: two nodes, alpha and beta, each in
//! its own network namespace, joined by a paced serial cable (`rs232`) and
//! two veth UDP networks (`lan1`, `lan2`). Checks that every path comes up,
//! that a cut path (even one way) is down on both sides while the peer stays
//! up, that losing every path loses the peer, that line noise and forged or
//! replayed frames are counted and ignored, and that a stalled daemon is
//! noticed by itself but not mistaken for dead by its peer.

use haschema::ctl::State::{Down, Up};
use hatests::cable::random_noise;
use hatests::{LAN1, LAN2, ReportExt, SERIAL, Snapshot, TestCluster, require_root};
use litecloud::wire::{Class, ClusterKey, Frame, Header, VERSION};
use std::time::{Duration, Instant};

/// Longest wait for any state change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(20);
/// Every path between the two nodes.
const PATHS: [&str; 3] = [SERIAL, LAN1, LAN2];
/// (node, its peer) both ways.
const SIDES: [(&str, &str); 2] = [("alpha", "beta"), ("beta", "alpha")];

/// Both nodes see each other up over every path, with frames received on
/// every path.
fn all_paths_up(s: &Snapshot) -> bool {
    SIDES.iter().all(|&(node, peer)| {
        s.peer_state(node, peer) == Some(Up)
            && PATHS.iter().all(|&p| {
                s.link_state(node, peer, p) == Some(Up)
                    && s.get(node).is_some_and(|r| r.received(p) > 0)
            })
    })
}

/// Both nodes see each other up.
fn peers_up(s: &Snapshot) -> bool {
    SIDES
        .iter()
        .all(|&(node, peer)| s.peer_state(node, peer) == Some(Up))
}

/// The link over `path` is `state` on both sides.
fn link_both(s: &Snapshot, path: &str, state: haschema::ctl::State) -> bool {
    SIDES
        .iter()
        .all(|&(node, peer)| s.link_state(node, peer, path) == Some(state))
}

/// Starts alpha and beta and waits until every path is up; None without
/// root (outside CI).
fn cluster_up(test: &str) -> Option<TestCluster> {
    if !require_root() {
        return None;
    }
    let c = TestCluster::new(test, &["alpha", "beta"]);
    c.wait_until("every path up on both sides", WAIT, all_paths_up);
    Some(c)
}

#[test]
fn every_path_comes_up_with_counters_moving() {
    let Some(c) = cluster_up("paths_up") else {
        return;
    };
    let first = c.snapshot();
    std::thread::sleep(Duration::from_millis(1500));
    let later = c.wait_until("every path still up", WAIT, all_paths_up);
    for (node, _) in SIDES {
        let (a, b) = (first.get(node).unwrap(), later.get(node).unwrap());
        for path in PATHS {
            let (pa, pb) = (a.path(path).unwrap(), b.path(path).unwrap());
            assert!(pb.open, "{node}'s {path} is open");
            assert!(
                pb.frames_received > pa.frames_received && pb.frames_sent > pa.frames_sent,
                "{node}'s {path} counters move: {pa:?} then {pb:?}"
            );
            assert!(
                pb.bytes_received > pa.bytes_received,
                "{node}'s {path} bytes move"
            );
        }
    }
}

/// Both nodes installed the same agreed view, of exactly `members`.
fn one_view_of(s: &Snapshot, members: &[&str]) -> bool {
    let views: Vec<_> = SIDES
        .iter()
        .map(|(node, _)| s.get(node).and_then(|r| r.view.clone()))
        .collect();
    views.iter().all(|v| *v == views[0])
        && views[0]
            .as_ref()
            .is_some_and(|v| v.members == members && v.quorum == (members.len() == 2))
}

#[test]
fn both_nodes_agree_on_one_view_and_again_after_a_partition() {
    let Some(c) = cluster_up("views") else {
        return;
    };
    let before = c.wait_until("one view of both", WAIT, |s| {
        one_view_of(s, &["alpha", "beta"])
    });
    let epoch = before
        .get("alpha")
        .and_then(|r| r.view.as_ref())
        .map(|v| v.epoch);
    c.cut_all();
    c.wait_until("each side alone in its view", WAIT, |s| {
        SIDES.iter().all(|&(node, _)| {
            s.get(node)
                .and_then(|r| r.view.as_ref())
                .is_some_and(|v| v.members == [node] && !v.quorum)
        })
    });
    c.restore_all();
    let after = c.wait_until("one view of both again", WAIT, |s| {
        one_view_of(s, &["alpha", "beta"])
    });
    let again = after
        .get("alpha")
        .and_then(|r| r.view.as_ref())
        .map(|v| v.epoch);
    assert!(
        again > epoch,
        "the new view has a higher epoch: {epoch:?} then {again:?}"
    );
}

#[test]
fn one_path_cut_is_down_on_both_sides_and_the_peer_stays_up() {
    let Some(c) = cluster_up("one_path_cut") else {
        return;
    };
    type Action = fn(&TestCluster);
    let cases: [(&str, &str, Action, Action); 3] = [
        (
            SERIAL,
            "serial cable cut",
            |c| c.cut_serial(),
            |c| c.restore_serial(),
        ),
        (
            LAN1,
            "lan1 cut both ways",
            |c| c.cut_udp(LAN1),
            |c| c.restore_udp(LAN1),
        ),
        (
            LAN2,
            "lan2 cut from alpha to beta only",
            |c| c.cut_udp_one_way(LAN2, "alpha", "beta"),
            |c| c.restore_udp(LAN2),
        ),
    ];
    for (path, what, cut, restore) in cases {
        let others: Vec<&str> = PATHS.iter().copied().filter(|&p| p != path).collect();
        let keep = |s: &Snapshot| peers_up(s) && others.iter().all(|&p| link_both(s, p, Up));
        cut(&c);
        c.wait_until_keeping(
            &format!("{what}: {path} down on both sides"),
            WAIT,
            "peer and the other paths stay up",
            keep,
            |s| link_both(s, path, Down),
        );
        restore(&c);
        c.wait_until_keeping(
            &format!("{what}, restored: {path} up on both sides"),
            WAIT,
            "peer and the other paths stay up",
            keep,
            |s| link_both(s, path, Up),
        );
    }
}

#[test]
fn every_path_cut_loses_the_peer_on_both_sides() {
    let Some(c) = cluster_up("all_cut") else {
        return;
    };
    c.cut_all();
    c.wait_until("peer down on both sides", WAIT, |s| {
        SIDES
            .iter()
            .all(|&(node, peer)| s.peer_state(node, peer) == Some(Down))
    });
    c.restore_all();
    c.wait_until("every path up again on both sides", WAIT, all_paths_up);
}

#[test]
fn serial_line_noise_is_rejected_and_never_downs_the_link() {
    let Some(c) = cluster_up("noise") else { return };
    let crc = |s: &Snapshot, node: &str| s.get(node).map_or(0, |r| r.rejected(SERIAL, "crc"));
    let before = c.snapshot();
    let steady = |s: &Snapshot| peers_up(s) && link_both(s, SERIAL, Up);
    // Noise without zero bytes damages exactly the frame it lands in.
    let mut landed = [0u64; 2];
    for i in 0..12 {
        let (from, side) = if i % 2 == 0 {
            ("alpha", 0)
        } else {
            ("beta", 1)
        };
        if c.serial_noise(from, &random_noise(8, false)) {
            landed[side] += 1;
        }
        c.assert_always(
            "serial link up on both sides",
            Duration::from_millis(300),
            steady,
        );
    }
    assert!(
        landed.iter().all(|&n| n >= 4),
        "noise should land mid-frame most times (landed {landed:?}): is serial traffic flowing?"
    );
    c.wait_until_keeping(
        "every damaged frame counted as crc",
        Duration::from_secs(5),
        "serial link up on both sides",
        steady,
        |s| {
            crc(s, "beta") >= crc(&before, "beta") + landed[0]
                && crc(s, "alpha") >= crc(&before, "alpha") + landed[1]
        },
    );
}

/// A 41-byte heartbeat from alpha to beta on `path`, well formed but
/// authenticated with the wrong key.
fn bad_mac_frame(c: &TestCluster, path: &str, netid: u16, incarnation: u32) -> Vec<u8> {
    let header = Header {
        class: Class::Heartbeat,
        netid,
        sender: c.domain("alpha"),
        dest: c.domain("beta"),
        path: c.path_index(path),
        boot: 0x0bad_0bad,
        incarnation,
        seq: 1_000_000,
        ack: 0,
        ack_incarnation: 0,
        ack_delay: 0,
        config_hash: 0,
    };
    let wrong = ClusterKey::new(b"this is not the cluster key at all").unwrap();
    Frame::new(header).encode(&wrong)
}

#[test]
fn forged_and_replayed_udp_frames_are_counted_and_ignored() {
    let Some(c) = cluster_up("forged") else {
        return;
    };
    let b0 = c.status("beta");
    let alpha_seen = b0.peer("alpha").unwrap().clone();
    let netid = c.spec().netid;
    let to = c.addr("beta", LAN1);

    // Sent as if by alpha's daemon (its address and port), to beta's lan1.
    let short = vec![VERSION, 0, (netid >> 8) as u8, netid as u8];
    let mut version = random_noise(60, true);
    version[0] = VERSION.wrapping_add(0x40);
    let incarnation = alpha_seen.incarnation.unwrap_or(1);
    let bad_mac = bad_mac_frame(&c, LAN1, netid, incarnation);
    let foreign = bad_mac_frame(&c, LAN1, netid + 1, incarnation);
    for frame in [&short, &version, &bad_mac, &foreign] {
        assert!(c.send_raw_udp("alpha", to, frame));
    }
    let mut sizes = [0u8; 20];
    getrandom::fill(&mut sizes).unwrap();
    for len in sizes {
        assert!(c.send_raw_udp("alpha", to, &random_noise(usize::from(len) + 1, true)));
    }
    let forged = 4 + sizes.len() as u64;

    let unchanged = |s: &Snapshot| {
        s.get("beta").is_some_and(|r| {
            let p = r.peer("alpha");
            p.is_some_and(|p| p.state == Up && p.incarnation == alpha_seen.incarnation)
                && r.link_state("alpha", LAN1) == Some(Up)
                && r.epoch == b0.epoch
        }) && peers_up(s)
    };
    c.wait_until_keeping(
        "forged frames counted by reason on beta's lan1",
        Duration::from_secs(5),
        "alpha stays up, same incarnation and epoch, on beta",
        unchanged,
        |s| {
            let Some(r) = s.get("beta") else { return false };
            ["short", "version", "bad_mac", "foreign"]
                .iter()
                .all(|&why| r.rejected(LAN1, why) > b0.rejected(LAN1, why))
                && r.rejected_total(LAN1) >= b0.rejected_total(LAN1) + forged
        },
    );

    // A real frame of alpha's, captured on arrival at beta, sent again.
    let real = c.capture_frame(LAN1, "alpha", "beta", Duration::from_secs(5));
    let replays = c.status("beta").rejected(LAN1, "replay");
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.replay(&real));
    c.wait_until_keeping(
        "the replayed frame counted as replay",
        Duration::from_secs(5),
        "alpha stays up, same incarnation and epoch, on beta",
        unchanged,
        |s| {
            s.get("beta")
                .is_some_and(|r| r.rejected(LAN1, "replay") > replays)
        },
    );
}

#[test]
fn a_stopped_daemon_notices_its_stall_and_its_peer_keeps_it_up() {
    let Some(c) = cluster_up("stall") else { return };
    let b0 = c.status("beta");
    let stalls = c.status("alpha").stalls;
    let downs = c.log_count("beta", "NodeDown");
    let beta_keeps_alpha = |s: &Snapshot| {
        s.get("beta")
            .is_some_and(|r| r.peer_state("alpha") == Some(Up) && r.epoch == b0.epoch)
    };

    // 5 x the UDP interval: well inside every deadtime (10 x interval).
    let interval = Duration::from_millis(c.spec().udp_interval_ms);
    let stopped = Instant::now();
    c.stop("alpha");
    c.assert_always(
        "beta keeps alpha up while alpha is stopped",
        interval * 5,
        beta_keeps_alpha,
    );
    let held = stopped.elapsed();
    c.cont("alpha");
    assert!(held >= interval * 5);

    c.assert_always("beta keeps alpha up after", Duration::from_secs(2), |s| {
        beta_keeps_alpha(s) && peers_up(s)
    });
    c.wait_until("alpha counts the stall", Duration::from_secs(5), |s| {
        s.get("alpha").is_some_and(|r| r.stalls > stalls)
    });
    c.wait_for_log("alpha", "stall", Duration::from_secs(5));
    assert_eq!(
        c.log_count("beta", "NodeDown"),
        downs,
        "beta never logged alpha down"
    );
}
