//! The web service with a real HTTP server (Debian's nginx) and a shared
//! ext4 volume: one image file, one loop device per node (never one shared
//! device, which would hide a double mount). nginx serves and stores (PUT)
//! the volume's files, and says which node served ([`WebService::get`]).
//! Every poll checks that the floating IP is on at most one node and the
//! volume live on at most one loop device (safety rule 1).
//!
//! * data written before an operator's fail-over is read after it from the
//!   other node, and data written there is read back after a take-over;
//! * data written before the active node is powered off is served by its
//!   peer once that peer has fenced it (the power-off drops the mount);
//! * without fencing, a lost owner that still has the volume mounted (its
//!   mount namespace kept: a node not really off) is never joined by a
//!   second mount while the service is STALLED; once the operator has
//!   unmounted it and confirmed the fence, the peer mounts and serves the
//!   same data.

use haschema::ctl::{Request, Response, ServiceOp};
use hatests::require_root;
use hatests::web::{App, DATA, Reply, SERVICE, WebService, WebSpec};
use std::time::{Duration, Instant};

/// How long the stalled service is watched for a second mount.
const STALL_WATCH: Duration = Duration::from_secs(5);

/// The web service with nginx and a shared volume.
#[track_caller]
fn start(test: &str, fencing: bool) -> WebService {
    WebService::start_with(
        test,
        WebSpec {
            fencing,
            volume: true,
            app: App::Nginx,
            ..WebSpec::default()
        },
    )
}

/// A text no other run writes.
fn unique_text(what: &str) -> String {
    format!(
        "{what}: pid {} at {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

/// PUTs `body` at `DATA/name` through the floating IP; `node` must store it.
#[track_caller]
fn put(w: &WebService, node: &str, name: &str, body: &str) {
    let path = format!("{DATA}{name}");
    match w.put(&path, body) {
        Ok(Reply {
            status: 201 | 204,
            served_by: Some(by),
            ..
        }) if by == node => {}
        other => panic!(
            "PUT {path} should be stored by {node}: {other:?}\n{}",
            w.cluster().log_tails(40)
        ),
    }
}

/// GETs `DATA/name` through the floating IP; `node` must serve `body`.
#[track_caller]
fn read_back(w: &WebService, node: &str, name: &str, body: &str) {
    let path = format!("{DATA}{name}");
    match w.get(&path) {
        Ok(Reply {
            status: 200,
            served_by: Some(by),
            body: got,
        }) if by == node && got == body => {}
        other => panic!(
            "GET {path} should be {body:?} served by {node}: {other:?}\n{}",
            w.cluster().log_tails(40)
        ),
    }
}

#[test]
fn data_written_before_an_operator_failover_is_read_after_it_on_the_other_node() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let w = start("vol_failover", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    w.assert_volume_on("alpha");

    // Written through the application, and straight onto alpha's mount.
    let note = unique_text("written through nginx on alpha");
    put(&w, "alpha", "note.txt", &note);
    let direct = unique_text("written on alpha's mount");
    let file = w.volume_file("alpha", "direct.txt");
    std::fs::write(&file, &direct).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    read_back(&w, "alpha", "note.txt", &note);
    read_back(&w, "alpha", "direct.txt", &direct);

    let (done, outage) = w.outage_during("alpha", "beta", || {
        w.cluster().service_op("beta", ServiceOp::FailOver, SERVICE)
    });
    assert!(done.is_ok(), "{done:?}");
    eprintln!("operator fail-over with a volume: {outage:?}");
    w.assert_volume_on("beta");
    read_back(&w, "beta", "note.txt", &note);
    read_back(&w, "beta", "direct.txt", &direct);
    // Alpha unmounted it: its hasvrd sees the bare directory.
    assert!(!w.volume_file("alpha", "note.txt").exists());
    assert_eq!(
        std::fs::read_to_string(w.volume_file("beta", "direct.txt")).ok(),
        Some(direct.clone())
    );

    // The other way: written on beta, read on alpha after a take-over.
    let back = unique_text("written through nginx on beta");
    put(&w, "beta", "back.txt", &back);
    let done = w
        .cluster()
        .service_op("alpha", ServiceOp::TakeOver, SERVICE);
    assert!(done.is_ok(), "{done:?}");
    w.wait_served_by("alpha");
    w.assert_volume_on("alpha");
    read_back(&w, "alpha", "back.txt", &back);
    read_back(&w, "alpha", "note.txt", &note);
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn data_written_before_a_power_off_is_served_by_the_peer_that_fenced_it() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let w = start("vol_fence", true);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    w.assert_volume_on("alpha");
    let note = unique_text("written through nginx on alpha before its power-off");
    put(&w, "alpha", "note.txt", &note);
    read_back(&w, "alpha", "note.txt", &note);

    // The power-off drops alpha's mount (its mount namespaces die with its
    // processes), well before beta may mount.
    let (dropped, outage) = w.outage_during("alpha", "beta", || {
        w.switch().power_off(w.cluster().ns("alpha"));
        let off = Instant::now();
        let alpha = w.disk().device("alpha");
        while alpha.ext4_live() {
            assert!(
                off.elapsed() < Duration::from_secs(5),
                "alpha's file system is still live 5 s after its power-off"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        off.elapsed()
    });
    eprintln!("power-off with a volume: mount gone {dropped:?} after it; {outage:?}");
    w.assert_volume_on("beta");
    read_back(&w, "beta", "note.txt", &note);
    let log = w.cluster().log("beta");
    assert!(log.contains("fenced (powered off by switch)"), "{log}");
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn a_lost_owner_still_mounting_the_volume_is_never_joined_by_a_second_mount() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let w = start("vol_stale", false);
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    w.assert_volume_on("alpha");
    let note = unique_text("written through nginx on alpha before it was lost");
    put(&w, "alpha", "note.txt", &note);

    // Alpha's processes die but its mount stays, as on a node that is not
    // really off: no fencing device can prove otherwise.
    let stale = w.hold_mounts("alpha");
    w.switch().power_off(w.cluster().ns("alpha"));
    w.wait_state("beta", "STALLED");
    let end = Instant::now() + STALL_WATCH;
    while Instant::now() < end {
        w.assert_never_twice();
        assert_eq!(
            w.volume_holders(),
            ["alpha"],
            "beta mounted a stalled volume"
        );
        assert!(w.holders().is_empty(), "{:?}", w.holders());
        assert_eq!(
            w.cluster().service_state("beta", SERVICE).as_deref(),
            Some("STALLED")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(w.mounted_in("beta"), None, "beta's hasvrd mounted it");

    // The operator cleans the lost node up, then swears it is off.
    stale.unmount();
    drop(stale);
    assert!(w.volume_holders().is_empty(), "{:?}", w.volume_holders());
    match w.cluster().ask(
        "beta",
        &Request::FenceConfirm {
            node: "alpha".into(),
        },
    ) {
        Ok(Response::Done { .. }) => {}
        other => panic!("fence confirm: {other:?}"),
    }
    w.wait_served_by("beta");
    w.assert_volume_on("beta");
    read_back(&w, "beta", "note.txt", &note);
    eprintln!("test took {:?}", began.elapsed());
}
