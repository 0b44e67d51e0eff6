//! One service's steps on real kernels ([`hasvrd::steps`]): node `alpha`
//! is a network namespace (`ours`) with two NICs, `fa0` and `fa1`, each a
//! veth to a `client` namespace (`fb0`, `fb1`, on two LANs); its volume is
//! an ext4 image on a loop device; its scripts are small bash files in a
//! scratch directory.
//!
//! Covered: a full start (volume checked and mounted, floating IP probed,
//! added and answering the client's ping, start script) and stop in
//! reverse, proven (nothing left in the tracker, not even a process that
//! left the script's session; IP gone; volume unmounted), twice; the ARP
//! probe refusing an address the client holds; agent exits reported, but
//! not when a stop kills it; resume starting the agent without the start
//! script; a start script past its timeout killed and reported;
//! announcing again; the IP moving to the next NIC when its NIC loses carrier, the public network
//! reported lost when no NIC is left, and the IP coming back; the storage
//! watch: a silent storage address lost and back, a volume whose path
//! hangs (a FUSE mirror stopped) lost, its unmount failing on its timeout,
//! then back. Needs root (skips without, fails under CI), iproute2, ping,
//! e2fsprogs, losetup, bindfs.

use haschema::service::{FloatingIp, ServiceConfig, ServiceType, Volume};
use hasvrd::fip::{Fip, FipConfig, ProbeConfig};
use hasvrd::service::{Status, Step};
use hasvrd::steps::{StepEvent, Steps};
use hatests::scratch::{ScratchDir, write_script};
use hatests::{Netns, SharedDisk, Veth};
use nix::mount::MntFlags;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

mod common;
use common::Cleanup;

const NODE: &str = "alpha";
const FLOATING: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
/// What the client had cached for the floating IP: another claimant.
const OLD_MAC: &str = "02:00:00:00:00:99";
/// Bound on waiting for something that must happen.
const WAIT: Duration = Duration::from_secs(10);

fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
}

/// Node `alpha` and a client, joined by two LANs: `fa0`-`fb0`
/// (10.77.0.0/24) and `fa1`-`fb1` (10.78.0.0/24).
struct Lan {
    ours: Netns,
    client: Netns,
    lan0: Veth,
    lan1: Veth,
    scratch: ScratchDir,
}

impl Lan {
    fn new(tag: &str) -> Lan {
        init_log();
        let ours = Netns::new(&format!("{tag}-ours"));
        let client = Netns::new(&format!("{tag}-client"));
        let ip = |c, d| Ipv4Addr::new(10, c, 0, d);
        let lan0 = Veth::new(&ours, "fa0", ip(77, 1), &client, "fb0", ip(77, 2));
        let lan1 = Veth::new(&ours, "fa1", ip(78, 1), &client, "fb1", ip(78, 2));
        Lan {
            ours,
            client,
            lan0,
            lan1,
            scratch: ScratchDir::new(&format!("steps-{tag}")),
        }
    }

    /// Runs the future made by `make` on a current-thread runtime inside
    /// our namespace: the Fip's sockets, and every script, are there.
    fn run<R: Send, F: Future<Output = R>>(&self, make: impl FnOnce() -> F + Send) -> R {
        self.ours.block_on(make)
    }

    /// Whether the client gets an answer to one ping of `addr`.
    fn client_pings(&self, addr: Ipv4Addr) -> bool {
        self.client
            .command("ping")
            .args(["-c", "1", "-W", "2", &addr.to_string()])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("ping")
            .success()
    }

    fn script(&self, name: &str, body: &str) -> Vec<String> {
        vec![write_script(self.scratch.path(), name, body)]
    }
}

/// The MAC of `nic` in `ns`.
fn mac_of(ns: &Netns, nic: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", nic]);
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no link/ether in {out:?}"))
        .to_owned()
}

/// Test timing for floating IPs: the RFC's shape, in tenths of a second.
fn fip() -> Arc<Fip> {
    let cfg = FipConfig {
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
    };
    Arc::new(Fip::new(cfg).expect("Fip::new"))
}

/// A service of `alpha` and `beta` with nothing in it; a name unique to
/// this test run (it names the cgroup).
fn config(tag: &str, dir: &Path) -> ServiceConfig {
    let name = format!(
        "st-{}-{}-{}",
        hatests::unique::sanitize(tag, 12),
        hatests::unique::pid(),
        hatests::unique::next()
    );
    ServiceConfig {
        file: dir.join(format!("{name}.toml")),
        name,
        kind: ServiceType::Userdef,
        group: None,
        active: NODE.into(),
        standby: vec!["beta".into()],
        ips: Vec::new(),
        volumes: Vec::new(),
        storage_ping: None,
        agent: None,
        start: None,
        stop: None,
        status: None,
        start_timeout: Duration::from_secs(20),
        stop_timeout: Duration::from_secs(20),
        resource_release_timeout: Duration::from_secs(20),
        check_interval: Duration::from_secs(1),
        check_tko: 1,
        restart_times: 0,
        switchback: false,
        migration_threshold: None,
        failure_timeout: None,
        switchback_stable: Duration::ZERO,
        onstart: true,
        force_reboot: false,
        status_codes: haschema::service::StatusCodes::Lsb,
        hash: 0,
        sources: BTreeMap::new(),
    }
}

/// The floating IP on `fa0`, then `fa1`.
fn floating_ip() -> FloatingIp {
    FloatingIp {
        addr: IpAddr::V4(FLOATING),
        prefix: 24,
        nics: BTreeMap::from([
            (NODE.to_owned(), vec!["fa0".to_owned(), "fa1".to_owned()]),
            ("beta".to_owned(), vec!["eth0".to_owned()]),
        ]),
    }
}

/// The steps of `cfg` on alpha, with their events, the agent socket
/// `<scratch>/agent.sock`. Must run inside the test's runtime.
fn steps(lan: &Lan, cfg: ServiceConfig) -> (Arc<Steps>, UnboundedReceiver<StepEvent>, Cleanup) {
    let (tx, rx) = unbounded_channel();
    let steps = Steps::new(
        NODE,
        Arc::new(cfg),
        fip(),
        tx,
        Some(lan.scratch.join("agent.sock")),
    )
    .expect("Steps::new");
    let cleanup = Cleanup(steps.tracker().clone());
    (Arc::new(steps), rx, cleanup)
}

/// Runs `step` on a spawned task (the daemon's way: the futures are Send).
async fn start(steps: &Arc<Steps>, step: Step) -> Result<(), String> {
    let steps = steps.clone();
    tokio::spawn(async move { steps.start(step).await })
        .await
        .expect("start task")
}

async fn stop(steps: &Arc<Steps>, step: Step) -> Result<(), String> {
    let steps = steps.clone();
    tokio::spawn(async move { steps.stop(step).await })
        .await
        .expect("stop task")
}

/// The next event within [`WAIT`].
async fn event(rx: &mut UnboundedReceiver<StepEvent>) -> StepEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no step event within {WAIT:?}"))
        .expect("events channel open")
}

async fn no_event(rx: &mut UnboundedReceiver<StepEvent>, during: Duration) {
    if let Ok(e) = tokio::time::timeout(during, rx.recv()).await {
        panic!("unexpected step event {e:?}");
    }
}

/// A pid is alive while /proc has it and it is not a zombie.
fn alive(pid: i32) -> bool {
    hasvrd::procfs::stat(pid).is_some_and(|s| !matches!(s.state, 'Z' | 'X'))
}

/// Polls `check` every 20 ms until it holds or [`WAIT`] passes.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !check() {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .expect("a pid")
}

/// An ext4 image on a loop device: alpha's device of a shared disk.
/// Drop unmounts what is left under the scratch directory; the device is
/// detached after that.
struct Disk {
    shared: SharedDisk,
    under: PathBuf,
}

impl Disk {
    fn new(scratch: &ScratchDir) -> Disk {
        Disk {
            shared: SharedDisk::new(scratch.join("shared.img"), 64, &[NODE]),
            under: scratch.path().to_path_buf(),
        }
    }

    /// Alpha reaches the image through a path the test can make hang
    /// (`SharedDisk::faulty`), under `scratch/disk`; mounts go under
    /// `scratch/vol`.
    fn with_faulty_path(scratch: &ScratchDir) -> Disk {
        Disk {
            shared: SharedDisk::with_faulty_paths(&scratch.join("disk"), 64, &[NODE], &[NODE]),
            under: scratch.join("vol"),
        }
    }

    /// The volume at `mount_point`, checked before it is mounted.
    fn volume(&self, mount_point: PathBuf) -> Volume {
        Volume {
            devices: BTreeMap::from([
                (
                    NODE.to_owned(),
                    self.shared.device(NODE).path().to_path_buf(),
                ),
                ("beta".to_owned(), PathBuf::from("/dev/beta-disk")),
            ]),
            mount_point,
            fstype: "ext4".into(),
            options: String::new(),
            owner: None,
            group: None,
            mode: None,
            fsck: true,
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Cleanup only: a lazy unmount is fine here.
        let table = hasvrd::mountinfo::read().unwrap_or_default();
        let real = std::fs::canonicalize(&self.under).unwrap_or_else(|_| self.under.clone());
        for e in table.iter().rev() {
            if e.mount_point.starts_with(&real) {
                let _ = nix::mount::umount2(&e.mount_point, MntFlags::MNT_DETACH);
            }
        }
    }
}

#[test]
fn full_start_and_stop_in_reverse_are_proven() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("full");
    let disk = Disk::new(&lan.scratch);
    let vol = lan.scratch.join("data");
    let v = vol.display();
    let mut cfg = config("full", lan.scratch.path());
    cfg.volumes = vec![disk.volume(vol.clone())];
    cfg.ips = vec![floating_ip()];
    // The application: a sleep working on the volume, its pid there, and
    // a stray that leaves the script's session (only the tracker's kill
    // ends it).
    cfg.start = Some(lan.script(
        "start.sh",
        &format!(
            r#"set -e
cd {v}
printf '%s|%s|%s|%s' "$HA_SERVICE" "$HA_NODE" "$HA_ACTION" "$HA_AGENT_SOCKET" > {v}/env-seen
sleep 1000 >/dev/null 2>&1 </dev/null &
echo $! > {v}/app.pid
setsid sleep 1001 >/dev/null 2>&1 </dev/null &
echo $! > {v}/stray.pid"#
        ),
    ));
    cfg.stop = Some(lan.script(
        "stop.sh",
        &format!(
            r#"pid=$(cat {v}/app.pid 2>/dev/null) || exit 0
kill "$pid" 2>/dev/null
rm -f {v}/app.pid
exit 0"#
        ),
    ));
    cfg.status = Some(lan.script(
        "status.sh",
        &format!(
            r#"pid=$(cat {v}/app.pid 2>/dev/null) || exit 3
kill -0 "$pid" 2>/dev/null && exit 0
exit 3"#
        ),
    ));
    let name = cfg.name.clone();
    let our_mac = mac_of(&lan.ours, "fa0");
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        assert_eq!(steps.probe().await, Status::NotRunning);
        assert!(steps.held_here().await.is_empty());

        start(&steps, Step::Volumes).await.expect("start volumes");
        let mounted = hasvrd::volume::is_mounted(&vol).await.expect("mountinfo");
        assert!(mounted.is_some(), "{} not mounted", vol.display());

        start(&steps, Step::Ips).await.expect("start ips");
        assert_eq!(
            steps.tracker().service(),
            name,
            "the tracker is the service's"
        );
        assert_eq!(holder().await.as_deref(), Some("fa0"));
        assert!(
            lan.client_pings(FLOATING),
            "the client cannot ping {FLOATING}"
        );
        let neigh = lan
            .client
            .ip(&["neigh", "show", &FLOATING.to_string(), "dev", "fb0"]);
        assert!(neigh.contains(&format!("lladdr {our_mac}")), "{neigh}");

        start(&steps, Step::Application)
            .await
            .expect("start application");
        assert_eq!(steps.probe().await, Status::Running);
        let env = std::fs::read_to_string(vol.join("env-seen")).expect("env-seen");
        let socket = lan.scratch.join("agent.sock");
        assert_eq!(env, format!("{name}|{NODE}|start|{}", socket.display()));
        let app = read_pid(&vol.join("app.pid"));
        let stray = read_pid(&vol.join("stray.pid"));
        assert!(alive(app) && alive(stray));

        let held = steps.held_here().await;
        assert_eq!(held.ips, vec![(IpAddr::V4(FLOATING), "fa0".to_owned())]);
        assert_eq!(held.volumes, vec![vol.clone()]);
        assert!(
            held.pids.contains(&app) && held.pids.contains(&stray),
            "{held:?}"
        );
        assert!(held.unknown.is_empty(), "{held:?}");

        // Stop in reverse, twice: the second time nothing is up.
        for round in 0..2 {
            stop(&steps, Step::Application)
                .await
                .unwrap_or_else(|e| panic!("stop application ({round}): {e}"));
            assert_eq!(steps.probe().await, Status::NotRunning);
            assert!(steps.tracker().is_empty().unwrap(), "processes left");
            assert!(!alive(app) && !alive(stray), "the application survived");

            stop(&steps, Step::Ips).await.expect("stop ips");
            assert_eq!(holder().await, None);
            assert!(!lan.client_pings(FLOATING), "{FLOATING} still answers");

            stop(&steps, Step::Volumes).await.expect("stop volumes");
            let mounted = hasvrd::volume::is_mounted(&vol).await.expect("mountinfo");
            assert_eq!(mounted, None);
            let held = steps.held_here().await;
            assert!(held.is_empty(), "{held:?}");
        }
        no_event(&mut events, Duration::from_millis(300)).await;
    });
    drop(disk);
}

/// Which NIC of ours has the floating IP (inside our namespace).
async fn holder() -> Option<String> {
    fip().holder(IpAddr::V4(FLOATING)).await.expect("holder")
}

#[test]
fn arp_probe_refuses_an_address_the_client_holds() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("taken");
    lan.client
        .ip(&["addr", "add", &format!("{FLOATING}/24"), "dev", "fb0"]);
    let their_mac = mac_of(&lan.client, "fb0");
    let mut cfg = config("taken", lan.scratch.path());
    cfg.ips = vec![floating_ip()];
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        let err = start(&steps, Step::Ips).await.expect_err("taken");
        assert!(
            err.contains(&format!("already answered by {their_mac}")) && err.contains("rule 8"),
            "{err}"
        );
        assert_eq!(holder().await, None, "added all the same");
        stop(&steps, Step::Ips).await.expect("stop ips");
        no_event(&mut events, Duration::from_millis(300)).await;
    });
}

#[test]
fn agent_exits_are_reported_but_not_when_a_stop_kills_it() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("agent");
    let dir = lan.scratch.path().display().to_string();
    let mut cfg = config("agent", lan.scratch.path());
    cfg.start = Some(lan.script("start.sh", &format!("echo started >> {dir}/starts")));
    cfg.agent = Some(lan.script(
        "agent.sh",
        &format!(
            r#"echo "$HA_ACTION $HA_AGENT_SOCKET" > {dir}/agent-env
echo $$ > {dir}/agent.pid
while [ ! -e {dir}/exit-now ]; do sleep 0.05; done
exit 3"#
        ),
    ));
    let name = cfg.name.clone();
    let starts = lan.scratch.join("starts");
    let exit_now = lan.scratch.join("exit-now");
    let agent_pid = lan.scratch.join("agent.pid");
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        // Without a status script, the tracked processes say it.
        assert_eq!(steps.probe().await, Status::NotRunning);
        start(&steps, Step::Application).await.expect("start");
        eventually("the agent wrote its pid", || agent_pid.exists()).await;
        assert_eq!(steps.probe().await, Status::Running);
        let env = std::fs::read_to_string(lan.scratch.join("agent-env")).unwrap();
        let socket = lan.scratch.join("agent.sock");
        assert_eq!(env.trim(), format!("agent {}", socket.display()));

        // It exits by itself: reported.
        std::fs::write(&exit_now, "").unwrap();
        match event(&mut events).await {
            StepEvent::AgentExited { service, how } => {
                assert_eq!(service, name);
                assert_eq!(how, "exited 3");
            }
            e => panic!("{e:?}"),
        }
        eventually("the tracker is empty", || {
            steps.tracker().is_empty().unwrap()
        })
        .await;
        assert_eq!(steps.probe().await, Status::NotRunning);

        // Started again (the start script too), then stopped: killed, not
        // reported.
        std::fs::remove_file(&exit_now).unwrap();
        std::fs::remove_file(&agent_pid).unwrap();
        start(&steps, Step::Application).await.expect("start again");
        eventually("the agent wrote its pid", || agent_pid.exists()).await;
        let pid = read_pid(&agent_pid);
        assert!(alive(pid));
        stop(&steps, Step::Application).await.expect("stop");
        assert!(!alive(pid), "the agent survived the stop");
        no_event(&mut events, Duration::from_millis(500)).await;
        assert_eq!(steps.probe().await, Status::NotRunning);

        // Resumed after a restart: the agent, not the start script.
        std::fs::remove_file(&agent_pid).unwrap();
        steps.resume(Step::Application).await.expect("resume");
        eventually("the agent wrote its pid", || agent_pid.exists()).await;
        let lines = std::fs::read_to_string(&starts).unwrap();
        assert_eq!(lines.lines().count(), 2, "start script runs: {lines:?}");
        // A second resume keeps the running agent.
        let pid = read_pid(&agent_pid);
        steps.resume(Step::Application).await.expect("resume again");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(read_pid(&agent_pid), pid, "a second agent started");
        assert!(alive(pid));
        stop(&steps, Step::Application).await.expect("stop");
        no_event(&mut events, Duration::from_millis(300)).await;
    });
}

#[test]
fn a_start_script_past_its_timeout_is_killed_and_fails() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("slow");
    let dir = lan.scratch.path().display().to_string();
    let mut cfg = config("slow", lan.scratch.path());
    cfg.start_timeout = Duration::from_secs(1);
    cfg.start = Some(lan.script(
        "start.sh",
        &format!(
            r#"echo $$ > {dir}/script.pid
sleep 30 &
echo $! > {dir}/child.pid
sleep 30"#
        ),
    ));
    cfg.stop = Some(lan.script("stop.sh", "exit 0"));
    lan.run(|| async {
        let (steps, _events, _cleanup) = steps(&lan, cfg);
        let begun = Instant::now();
        let err = start(&steps, Step::Application)
            .await
            .expect_err("timed out");
        let took = begun.elapsed();
        assert!(
            err.contains("did not finish within the service's start_timeout (1s)"),
            "{err}"
        );
        assert!(took < Duration::from_secs(4), "took {took:?}");
        let script = read_pid(&lan.scratch.join("script.pid"));
        let child = read_pid(&lan.scratch.join("child.pid"));
        eventually("the script and its child are killed", || {
            !alive(script) && !alive(child)
        })
        .await;
        // The machine then stops the step: nothing is left.
        stop(&steps, Step::Application).await.expect("stop");
        assert!(steps.tracker().is_empty().unwrap());
    });
}

#[test]
fn carrier_loss_moves_the_ip_to_the_next_nic() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("carrier");
    let mut cfg = config("carrier", lan.scratch.path());
    cfg.ips = vec![floating_ip()];
    let name = cfg.name.clone();
    let addr = IpAddr::V4(FLOATING);
    let moved = |from: &str, to: &str| StepEvent::IpMoved {
        service: name.clone(),
        addr,
        from_nic: Some(from.to_owned()),
        to_nic: to.to_owned(),
    };
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        start(&steps, Step::Ips).await.expect("start ips");
        assert_eq!(holder().await.as_deref(), Some("fa0"));

        // The client followed another claimant: announced again, it
        // comes back to us.
        let floating = FLOATING.to_string();
        lan.client.ip(&[
            "neigh", "replace", &floating, "lladdr", OLD_MAC, "dev", "fb0", "nud", "stale",
        ]);
        steps.reannounce().await;
        let our_mac = mac_of(&lan.ours, "fa0");
        eventually("the client has our MAC for the floating IP", || {
            lan.client
                .ip(&["neigh", "show", &floating, "dev", "fb0"])
                .contains(&format!("lladdr {our_mac}"))
        })
        .await;

        // The client's end of LAN 0 goes down: fa0 loses carrier.
        lan.lan0.set_link(false, false);
        assert_eq!(event(&mut events).await, moved("fa0", "fa1"));
        assert_eq!(holder().await.as_deref(), Some("fa1"));
        lan.client
            .ip(&["route", "add", &format!("{FLOATING}/32"), "dev", "fb1"]);
        assert!(lan.client_pings(FLOATING), "not reachable on fa1");

        // LAN 1 too: nowhere to go; the IP stays where it is.
        lan.lan1.set_link(false, false);
        match event(&mut events).await {
            StepEvent::PublicNetworkLost { service, reason } => {
                assert_eq!(service, name);
                assert!(
                    reason.contains("fa0 has no carrier") && reason.contains("fa1 has no carrier"),
                    "{reason}"
                );
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(holder().await.as_deref(), Some("fa1"));

        // LAN 0 comes back: the IP goes there.
        lan.lan0.set_link(false, true);
        assert_eq!(event(&mut events).await, moved("fa1", "fa0"));
        assert_eq!(holder().await.as_deref(), Some("fa0"));
        assert!(lan.client_pings(FLOATING), "not reachable on fa0");

        // After the stop, carrier no longer matters.
        stop(&steps, Step::Ips).await.expect("stop ips");
        assert_eq!(holder().await, None);
        lan.lan0.set_link(false, false);
        lan.lan1.set_link(false, true);
        no_event(&mut events, Duration::from_millis(500)).await;
    });
}

#[test]
fn a_node_not_of_the_service_is_refused() {
    let scratch = ScratchDir::new("steps-node");
    let cfg = config("node", scratch.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        let (tx, _rx) = unbounded_channel();
        match Steps::new("gamma", Arc::new(cfg), fip(), tx, None) {
            Ok(_) => panic!("gamma is not a node of the service"),
            Err(e) => e,
        }
    });
    assert!(
        err.contains("node gamma is not one of its nodes (alpha, beta)"),
        "{err}"
    );
}

#[test]
fn the_storage_watch_reports_a_silent_storage_address_and_its_return() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("storping");
    let disk = Disk::new(&lan.scratch);
    let mut cfg = config("storping", lan.scratch.path());
    // Not mounted here: its device is read.
    cfg.volumes = vec![disk.volume(lan.scratch.join("mnt"))];
    cfg.storage_ping = Some(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)));
    let name = cfg.name.clone();
    let back = StepEvent::StorageBack {
        service: name.clone(),
    };
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        steps.watch_storage();
        assert_eq!(event(&mut events).await, back);
        // The storage address goes silent: lost (check_tko 1).
        lan.lan0.set_link(false, false);
        match event(&mut events).await {
            StepEvent::StorageLost { service, reason } => {
                assert_eq!(service, name);
                assert!(reason.contains("10.77.0.2"), "{reason}");
                assert!(!reason.contains("volume"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
        lan.lan0.set_link(false, true);
        assert_eq!(event(&mut events).await, back);
        no_event(&mut events, Duration::from_millis(1500)).await;
    });
}

#[test]
fn a_hung_volume_is_reported_lost_and_its_unmount_fails_on_its_timeout() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("storhang");
    let disk = Disk::with_faulty_path(&lan.scratch);
    let mut cfg = config("storhang", lan.scratch.path());
    cfg.volumes = vec![disk.volume(lan.scratch.join("vol").join("mnt"))];
    cfg.check_tko = 2;
    cfg.resource_release_timeout = Duration::from_secs(12);
    let name = cfg.name.clone();
    let back = StepEvent::StorageBack {
        service: name.clone(),
    };
    let path = disk.shared.faulty(NODE);
    lan.run(|| async {
        let (steps, mut events, _cleanup) = steps(&lan, cfg);
        start(&steps, Step::Volumes).await.expect("start volumes");
        steps.watch_storage();
        assert_eq!(event(&mut events).await, back);

        path.hang();
        match event(&mut events).await {
            StepEvent::StorageLost { service, reason } => {
                assert_eq!(service, name);
                assert!(reason.contains("the path to the storage hangs"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
        // The unmount cannot complete: the stop fails (on its timeout),
        // and the runtime goes on.
        let failed = stop(&steps, Step::Volumes)
            .await
            .expect_err("stop on a hung path");
        assert!(failed.contains("the path to the storage hangs"), "{failed}");
        assert!(
            hasvrd::volume::is_mounted(&lan.scratch.join("vol").join("mnt"))
                .await
                .expect("mount table")
                .is_some()
        );

        // The path is back: the check passes, and the stop succeeds.
        path.resume();
        assert_eq!(event(&mut events).await, back);
        stop(&steps, Step::Volumes)
            .await
            .expect("stop once the path is back");
    });
}

#[test]
fn an_unmount_that_hangs_in_the_kernel_fails_on_its_timeout_without_blocking() {
    if !hatests::require_root() {
        return;
    }
    let lan = Lan::new("umounthang");
    let disk = Disk::with_faulty_path(&lan.scratch);
    let mut cfg = config("umounthang", lan.scratch.path());
    let mount_point = lan.scratch.join("vol").join("mnt");
    cfg.volumes = vec![disk.volume(mount_point.clone())];
    cfg.resource_release_timeout = Duration::from_secs(12);
    let path = disk.shared.faulty(NODE);
    lan.run(|| async {
        // No storage watch: nothing of hasvrd's keeps the volume busy, so
        // the unmount itself blocks in the kernel on the hung path.
        let (steps, _events, _cleanup) = steps(&lan, cfg);
        start(&steps, Step::Volumes).await.expect("start volumes");
        std::fs::write(mount_point.join("dirty"), "not yet on the disk").expect("write");
        path.hang();
        let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let failed = stop(&steps, Step::Volumes)
            .await
            .expect_err("an unmount on a hung path");
        assert!(failed.contains("has not returned"), "{failed}");
        ticker.abort();
        assert!(
            ticks.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "the runtime was blocked while the unmount hung"
        );
        // The path is back: the abandoned unmount completes by itself, and
        // the next stop proves it.
        path.resume();
        stop(&steps, Step::Volumes)
            .await
            .expect("stop once the path is back");
        assert!(
            hasvrd::volume::is_mounted(&mount_point)
                .await
                .expect("mount table")
                .is_none()
        );
    });
}
