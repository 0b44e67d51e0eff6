//! Floating IPs on real kernels: two network namespaces joined by a veth,
//! `ours` (where `hasvrd::fip` runs, on `fa0`) and `theirs` (another host,
//! on `fb0`). ARP probes find the other host's addresses and its MAC,
//! add/holder/remove round trips, gratuitous ARP and unsolicited neighbour
//! advertisements move the other host's neighbour entry to our MAC, the
//! carrier watcher sees the peer end go down and up, and IPv6 duplicate
//! address detection passes or fails. Needs root (skips without, fails
//! under CI).

use hasvrd::fip::{Error, Fip, FipConfig, MacAddr, Probe, ProbeConfig, short_label};
use hatests::{Netns, Veth};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const OURS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const THEIRS: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const FLOATING: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
/// What the other host had cached for a floating IP: the old holder.
const OLD_MAC: &str = "02:00:00:00:00:99";
/// Bound on waiting for the kernel to show something.
const WAIT: Duration = Duration::from_secs(5);

/// Two namespaces and the veth between them.
struct Lan {
    ours: Netns,
    theirs: Netns,
    veth: Veth,
}

impl Lan {
    fn new(tag: &str) -> Lan {
        let ours = Netns::new(&format!("{tag}-ours"));
        let theirs = Netns::new(&format!("{tag}-theirs"));
        let veth = Veth::new(&ours, "fa0", OURS, &theirs, "fb0", THEIRS);
        Lan { ours, theirs, veth }
    }

    /// Runs the future made by `make` on a current-thread runtime inside
    /// our namespace, so every socket `hasvrd::fip` opens is there.
    fn run<R: Send, F: Future<Output = R>>(&self, make: impl FnOnce() -> F + Send) -> R {
        self.ours.block_on(make)
    }
}

/// Test timing: the RFC's shape, in tenths of a second.
fn fast() -> FipConfig {
    FipConfig {
        probe: ProbeConfig {
            initial_wait: Duration::from_millis(20),
            count: 3,
            spacing_min: Duration::from_millis(50),
            spacing_max: Duration::from_millis(100),
            final_wait: Duration::from_millis(300),
            limit: Duration::from_secs(3),
        },
        announce_interval: Duration::from_millis(100),
        dad_timeout: Duration::from_secs(10),
    }
}

fn fip() -> Fip {
    Fip::new(fast()).expect("Fip::new")
}

/// The MAC of `nic` in `ns`, from `ip -o link`.
fn mac_of(ns: &Netns, nic: &str) -> MacAddr {
    let out = ns.ip(&["-o", "link", "show", "dev", nic]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no link/ether in {out:?}"));
    mac.parse().expect("MAC")
}

/// `ip -o addr show dev NIC` in `ns`.
fn addrs(ns: &Netns, nic: &str) -> String {
    ns.ip(&["-o", "addr", "show", "dev", nic])
}

/// Polls `check` every 50 ms until it returns true or [`WAIT`] passes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn probe_finds_the_other_host_and_its_mac() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("probetaken");
    let their_mac = mac_of(&lan.theirs, "fb0");
    // A secondary address of the other host is found the same way.
    let secondary = Ipv4Addr::new(10, 77, 0, 50);
    lan.theirs
        .ip(&["addr", "add", &format!("{secondary}/24"), "dev", "fb0"]);
    // A long final wait, to see that the answer ends the probe early.
    let mut cfg = fast();
    cfg.probe.final_wait = Duration::from_secs(2);
    cfg.probe.limit = Duration::from_secs(3);
    lan.run(|| async {
        let fip = Fip::new(cfg).expect("Fip::new");
        for addr in [THEIRS, secondary] {
            let started = Instant::now();
            let got = fip.probe("fa0", addr).await.expect("probe");
            assert_eq!(got, Probe::Taken { mac: their_mac }, "{addr}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{addr}: {:?}",
                started.elapsed()
            );
        }
    });
}

#[test]
fn probe_of_a_free_address_is_free() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("probefree");
    let cfg = fast().probe;
    lan.run(|| async {
        let fip = fip();
        let started = Instant::now();
        let got = fip
            .probe("fa0", Ipv4Addr::new(10, 77, 0, 99))
            .await
            .expect("probe");
        let took = started.elapsed();
        assert_eq!(got, Probe::Free);
        let least = cfg.spacing_min * (cfg.count - 1) + cfg.final_wait;
        assert!(
            took >= least && took <= cfg.limit,
            "probe took {took:?}, expected {least:?}..{:?}",
            cfg.limit
        );
        // An address we have ourselves is not answered by ourselves.
        assert_eq!(fip.probe("fa0", OURS).await.expect("probe"), Probe::Free);
        // Two probes on the same NIC at once both hear the answers.
        let (a, b) = tokio::join!(fip.probe("fa0", THEIRS), fip.probe("fa0", FLOATING));
        assert!(matches!(a, Ok(Probe::Taken { .. })), "{a:?}");
        assert_eq!(b.expect("probe"), Probe::Free);
    });
}

#[test]
fn claim_refuses_an_address_another_host_answers() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("claimtaken");
    let their_mac = mac_of(&lan.theirs, "fb0");
    let err = lan.run(|| async {
        let fip = fip();
        let err = fip
            .claim("fa0", IpAddr::V4(THEIRS), 24, "web")
            .await
            .expect_err("the other host has it");
        assert_eq!(fip.holder(IpAddr::V4(THEIRS)).await.expect("holder"), None);
        // A free address is claimed.
        fip.claim("fa0", IpAddr::V4(FLOATING), 24, "web")
            .await
            .expect("claim a free address");
        assert_eq!(
            fip.holder(IpAddr::V4(FLOATING)).await.expect("holder"),
            Some("fa0".to_owned())
        );
        err
    });
    assert!(err.is_taken(), "{err}");
    assert!(
        matches!(err, Error::Taken { mac: Some(m), .. } if m == their_mac),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "address {THEIRS} is already answered by {their_mac}: another host uses it"
        )) && text.contains("rule 8"),
        "{text}"
    );
    assert!(!addrs(&lan.ours, "fa0").contains(&format!("{THEIRS}/")));
}

#[test]
fn add_holder_remove_round_trip() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("addremove");
    // A second NIC of ours, on another LAN.
    let _other = Veth::new(
        &lan.ours,
        "fa1",
        Ipv4Addr::new(10, 78, 0, 1),
        &lan.theirs,
        "fb1",
        Ipv4Addr::new(10, 78, 0, 2),
    );
    let addr = IpAddr::V4(FLOATING);
    let long = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11));
    lan.run(|| async {
        let fip = fip();
        assert_eq!(fip.holder(addr).await.expect("holder"), None);
        fip.add("fa0", addr, 24, "web").await.expect("add");
        assert_eq!(fip.holder(addr).await.expect("holder"), Some("fa0".into()));
        let shown = addrs(&lan.ours, "fa0");
        assert!(
            shown.contains(&format!("inet {FLOATING}/24")) && shown.contains("fa0:web"),
            "{shown}"
        );
        // Idempotent.
        fip.add("fa0", addr, 24, "web").await.expect("add again");
        assert_eq!(
            addrs(&lan.ours, "fa0")
                .matches(&format!("inet {FLOATING}/"))
                .count(),
            1
        );
        // A label over 15 characters is shortened, not refused.
        fip.add("fa0", long, 24, "a-service-with-a-long-name")
            .await
            .expect("add with a long label");
        let label = short_label("fa0", "a-service-with-a-long-name");
        assert_eq!(label.len(), 15);
        assert!(addrs(&lan.ours, "fa0").contains(&label), "{label}");
        // Not on a second NIC of ours at the same time.
        let err = fip
            .add("fa1", addr, 24, "web")
            .await
            .expect_err("on fa0 already");
        assert!(
            matches!(&err, Error::OnOtherNic { other, .. } if other == "fa0"),
            "{err:?}"
        );
        assert!(err.to_string().contains("remove it from fa0"), "{err}");
        // Unknown NIC.
        let err = fip
            .add("nosuch0", addr, 24, "web")
            .await
            .expect_err("no such NIC");
        assert!(matches!(err, Error::NoSuchNic { .. }), "{err:?}");
        assert!(err.to_string().contains("\"nosuch0\""), "{err}");
        // Not an Ethernet NIC.
        let err = fip
            .probe("lo", Ipv4Addr::new(127, 0, 0, 9))
            .await
            .expect_err("loopback");
        assert!(matches!(err, Error::NotEthernet { .. }), "{err:?}");
        // Remove, and again (absent is success), also on a missing NIC.
        fip.remove("fa0", addr, 24).await.expect("remove");
        assert_eq!(fip.holder(addr).await.expect("holder"), None);
        fip.remove("fa0", addr, 24).await.expect("remove again");
        fip.remove("nosuch0", addr, 24)
            .await
            .expect("remove from a missing NIC");
        fip.remove("fa0", long, 24).await.expect("remove");
        // Now it may go on the other NIC.
        fip.add("fa1", addr, 24, "web").await.expect("add on fa1");
        assert_eq!(fip.holder(addr).await.expect("holder"), Some("fa1".into()));
    });
    let shown = addrs(&lan.ours, "fa0");
    assert!(!shown.contains(&format!("{FLOATING}/")), "{shown}");
    assert!(!shown.contains("10.77.0.11/"), "{shown}");
    // The NIC's own address is untouched.
    assert!(shown.contains(&format!("inet {OURS}/24")), "{shown}");
}

/// The other host's neighbour entry for `addr` on fb0, as `ip neigh` shows it.
fn their_neighbour(lan: &Lan, addr: &str) -> String {
    lan.theirs.ip(&["neigh", "show", addr, "dev", "fb0"])
}

#[test]
fn gratuitous_arp_moves_the_other_hosts_entry_to_our_mac() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("garp");
    let our_mac = mac_of(&lan.ours, "fa0");
    let addr = FLOATING.to_string();
    // The other host still knows the old holder's MAC (as after a
    // failover); Linux takes a gratuitous ARP only over an existing entry.
    lan.theirs.ip(&[
        "neigh", "replace", &addr, "lladdr", OLD_MAC, "dev", "fb0", "nud", "stale",
    ]);
    lan.run(|| async {
        let fip = fip();
        fip.add("fa0", IpAddr::V4(FLOATING), 24, "web")
            .await
            .expect("add");
        let started = Instant::now();
        fip.announce("fa0", IpAddr::V4(FLOATING), 2)
            .await
            .expect("announce");
        let took = started.elapsed();
        assert!(
            took >= fast().announce_interval && took < WAIT,
            "two announcements took {took:?}"
        );
    });
    eventually(&format!("{addr} at {our_mac} in the other host"), || {
        their_neighbour(&lan, &addr).contains(&format!("lladdr {our_mac}"))
    });
}

#[test]
fn carrier_follows_the_peer_end() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("carrier");
    lan.run(|| async {
        let fip = fip();
        assert!(fip.carrier("fa0").await.expect("carrier"));
        let mut watch = fip.watch_carrier().await.expect("watch");
        for up in [false, true] {
            // A veth loses carrier when its peer goes down.
            lan.veth.set_link(false, up);
            let event = tokio::time::timeout(WAIT, async {
                loop {
                    let e = watch.recv().await.expect("watch stopped");
                    if e.nic == "fa0" {
                        return e;
                    }
                }
            })
            .await
            .unwrap_or_else(|_| panic!("no carrier event for fa0 within {WAIT:?}"));
            assert_eq!(event.up, up, "{event:?}");
            assert_eq!(fip.carrier("fa0").await.expect("carrier"), up);
            if !up {
                // Nobody could answer: a probe must not say "free".
                let err = fip
                    .probe("fa0", FLOATING)
                    .await
                    .expect_err("probe without carrier");
                assert!(matches!(err, Error::NoCarrier { .. }), "{err:?}");
                assert!(err.to_string().contains("fa0 has no carrier"), "{err}");
            }
        }
        // Our own end down: no carrier, and IPv6 DAD could not run.
        lan.ours.ip(&["link", "set", "fa0", "down"]);
        assert!(!fip.carrier("fa0").await.expect("carrier"));
        let v6: IpAddr = V6_OURS.parse().unwrap();
        let err = fip
            .add("fa0", v6, 64, "web")
            .await
            .expect_err("IPv6 add on a down NIC");
        assert!(matches!(err, Error::NoCarrier { .. }), "{err:?}");
        assert_eq!(fip.holder(v6).await.expect("holder"), None);
        assert!(
            matches!(fip.carrier("nosuch0").await, Err(Error::NoSuchNic { .. })),
            "unknown NIC"
        );
    });
}

const V6_OURS: &str = "fd77::10";
const V6_THEIRS: &str = "fd77::2";

#[test]
fn ipv6_add_passes_dad_and_announces() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("dadok");
    let our_mac = mac_of(&lan.ours, "fa0");
    let addr: IpAddr = V6_OURS.parse().unwrap();
    lan.theirs.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{V6_THEIRS}/64"),
        "dev",
        "fb0",
        "nodad",
    ]);
    lan.theirs.ip(&[
        "-6", "neigh", "replace", V6_OURS, "lladdr", OLD_MAC, "dev", "fb0", "nud", "stale",
    ]);
    lan.run(|| async {
        let fip = fip();
        fip.add("fa0", addr, 64, "web").await.expect("add with DAD");
        let shown = lan.ours.ip(&["-6", "-o", "addr", "show", "dev", "fa0"]);
        let line = shown
            .lines()
            .find(|l| l.contains(&format!("{V6_OURS}/64")))
            .unwrap_or_else(|| panic!("{V6_OURS} not on fa0: {shown}"));
        assert!(
            !line.contains("tentative") && !line.contains("dadfailed"),
            "{line}"
        );
        assert_eq!(fip.holder(addr).await.expect("holder"), Some("fa0".into()));
        // Idempotent.
        fip.add("fa0", addr, 64, "web").await.expect("add again");
        fip.announce("fa0", addr, 1).await.expect("announce");
    });
    eventually(&format!("{V6_OURS} at {our_mac} in the other host"), || {
        lan.theirs
            .ip(&["-6", "neigh", "show", V6_OURS, "dev", "fb0"])
            .contains(&format!("lladdr {our_mac}"))
    });
    lan.run(|| async {
        let fip = fip();
        fip.remove("fa0", addr, 64).await.expect("remove");
        fip.remove("fa0", addr, 64).await.expect("remove again");
        assert_eq!(fip.holder(addr).await.expect("holder"), None);
    });
}

#[test]
fn ipv6_add_fails_dad_when_the_other_host_has_it() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("dadfail");
    let their_mac = mac_of(&lan.theirs, "fb0");
    let addr: IpAddr = V6_THEIRS.parse().unwrap();
    lan.theirs.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{V6_THEIRS}/64"),
        "dev",
        "fb0",
        "nodad",
    ]);
    let err = lan.run(|| async {
        let fip = fip();
        let err = fip
            .add("fa0", addr, 64, "web")
            .await
            .expect_err("DAD must fail");
        assert_eq!(fip.holder(addr).await.expect("holder"), None);
        err
    });
    assert!(
        matches!(err, Error::Taken { mac: Some(m), .. } if m == their_mac),
        "{err:?}"
    );
    assert!(err.to_string().contains("rule 8"), "{err}");
    let shown = lan.ours.ip(&["-6", "-o", "addr", "show", "dev", "fa0"]);
    assert!(!shown.contains(V6_THEIRS), "left behind: {shown}");
}
