//! Fencing end to end: the test power switch and its fence agent
//! (`hatests::power`), and hamond's fencing layer (`hamond::fence`) fencing
//! a real node of a two-node cluster through that agent: its daemon dies,
//! its addresses and mounts are gone, its peer sees it down, and the
//! fencer's history holds one proven `off`. Then hamond's own use of the
//! devices: `hactl fence test` (the `monitor` action) passing with the
//! switch and failing, the device named, with an agent that always fails,
//! and a peer hamond fenced shown by `hactl status --json` with its device
//! and duration.

use hamond::fence::{Action, Fencer, PowerState};
use haschema::config::ClusterConfig;
use haschema::ctl::State::{Down, Up};
use haschema::ctl::StatusReport;
use hatests::bins;
use hatests::command::{Finished, run_for};
use hatests::scratch::{ScratchDir, write_script};
use hatests::{ClusterSpec, Netns, PowerSwitch, TestCluster, Veth, require_root};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for a state change (robust on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Mounts a tmpfs on a new directory `dir/name`.
fn tmpfs(dir: &Path, name: &str) -> std::path::PathBuf {
    let at = dir.join(name);
    std::fs::create_dir_all(&at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "hatests-fence"])
        .arg(&at)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs on {}", at.display());
    at
}

fn is_mounted(at: &Path) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = at.to_string_lossy();
    mountinfo
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(at.as_ref()))
}

/// Global addresses left in `ns`.
fn addresses(ns: &Netns) -> String {
    ns.ip(&["-o", "addr", "show", "scope", "global"])
}

/// Dead: gone, or a zombie its parent has not reaped yet.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn power_switch_kills_flushes_and_unmounts() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("power_switch");
    let switch = PowerSwitch::install(dir.path());
    let node = Netns::new("pw-node");
    let other = Netns::new("pw-other");
    let _veth = Veth::new(
        &node,
        "eth0",
        Ipv4Addr::new(10, 93, 1, 1),
        &other,
        "eth0",
        Ipv4Addr::new(10, 93, 1, 2),
    );
    let mut sleeper = node
        .command("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mnt = tmpfs(dir.path(), "node-mnt");
    switch.connect(node.name(), &node, &[&mnt]);
    assert!(!switch.is_off(&node));

    switch.power_off(&node);

    assert!(switch.is_off(&node));
    let status = sleeper.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(node.pids().is_empty());
    assert_eq!(addresses(&node).trim(), "");
    assert!(!is_mounted(&mnt), "{} still mounted", mnt.display());
    // The other end is untouched.
    assert!(addresses(&other).contains("10.93.1.2"));

    let on = switch.run(&format!("action=on\nplug={}\n", node.name()));
    assert_eq!(on.code, Some(1), "{on:?}");
    let unknown = switch.run("action=status\nplug=nowhere\n");
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert_eq!(switch.run("action=monitor\n").code, Some(0));
}

#[test]
fn fence_beta_through_the_external_agent() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("fence_agent");
    let switch = PowerSwitch::install(dir.path());
    let password_file = dir.join("fence.pw");
    std::fs::write(&password_file, "not-logged\n").unwrap();
    let mut spec = ClusterSpec::with_nodes(&["alpha", "beta"]);
    spec.extra_config = format!(
        "[[fence]]\nname = \"netns\"\nagent = [\"{}\"]\nnodes = [\"beta\"]\n\
         options = {{ password_file = \"{}\", verbose = \"1\" }}\ntimeout = \"20s\"\n",
        switch.agent().display(),
        password_file.display()
    );
    let c = TestCluster::start("fence", spec);
    c.wait_until("alpha and beta see each other", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Up) && s.peer_state("beta", "alpha") == Some(Up)
    });
    let mnt = tmpfs(dir.path(), "beta-mnt");
    switch.connect("beta", c.ns("beta"), &[&mnt]);

    let config = ClusterConfig::load(c.config_path()).unwrap();
    let fencer = Fencer::from_config(&config);
    assert!(fencer.can_fence("beta") && !fencer.can_fence("alpha"));
    let beta_pid = c.pid("beta").expect("beta's hamond runs");
    let rt = runtime();

    let fenced = rt.block_on(fencer.fence("beta", Action::Off));

    assert_eq!(fenced, Ok("netns".to_owned()));
    assert!(is_dead(beta_pid), "beta's hamond {beta_pid} survived");
    assert!(c.ns("beta").pids().is_empty());
    assert_eq!(addresses(c.ns("beta")).trim(), "");
    assert!(!is_mounted(&mnt), "{} still mounted", mnt.display());
    c.crash("beta"); // reap the killed daemon: the harness knows it is gone
    c.wait_until("alpha sees beta down", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Down)
    });

    let history = fencer.history();
    assert_eq!(history.len(), 1, "{history:?}");
    let entry = &history[0];
    assert_eq!(
        (entry.node.as_str(), entry.action, entry.device.as_str()),
        ("beta", Action::Off, "netns")
    );
    assert_eq!(entry.result, Ok(()));
    assert!(
        entry.duration > Duration::ZERO && entry.duration < Duration::from_secs(20),
        "{:?}",
        entry.duration
    );
    // alpha's hamond, which saw beta go down, fences it too meanwhile:
    // its agent's run may show for a moment.
    let device = fencer.devices_for("beta").next().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    while rt.block_on(device.status("beta")) != Ok(PowerState::Off) {
        assert!(
            Instant::now() < end,
            "beta is not off: {:?}\n{}",
            switch.run("action=status\nplug=beta\n"),
            c.log_tails(40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(switch.is_off(c.ns("beta")));
    assert!(
        !c.log("alpha").contains("not-logged"),
        "the password reached a log"
    );
}

/// `hactl ARGS` against `node`'s hamond.
fn hactl(c: &TestCluster, node: &str, args: &[&str]) -> Finished {
    let mut cmd = Command::new(bins::hactl());
    cmd.arg("--socket").arg(c.socket(node)).args(args);
    run_for(&mut cmd, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}"))
}

/// `hactl status --json` on `node`, whatever its exit code (a peer down
/// gives 2).
fn status_json(c: &TestCluster, node: &str) -> StatusReport {
    let f = hactl(c, node, &["status", "--json"]);
    serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}: {f:?}"))
}

#[test]
fn fence_test_and_the_fences_in_status() {
    if !require_root() {
        return;
    }
    let dir = ScratchDir::new("fence_test");
    let switch = PowerSwitch::install(dir.path());
    let broken = write_script(
        dir.path(),
        "fence_broken",
        "cat >/dev/null; echo 'cannot reach the BMC' >&2; exit 1",
    );
    let mut spec = ClusterSpec::with_nodes(&["alpha", "beta"]);
    spec.extra_config = format!(
        "[[fence]]\nname = \"netns\"\nagent = [\"{}\"]\nnodes = [\"beta\"]\ntimeout = \"20s\"\n\n\
         [[fence]]\nname = \"broken\"\nagent = [\"{broken}\"]\nnodes = [\"alpha\"]\ntimeout = \"20s\"\n",
        switch.agent().display(),
    );
    let c = TestCluster::start("fence_test", spec);
    c.wait_until("alpha and beta see each other", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Up) && s.peer_state("beta", "alpha") == Some(Up)
    });
    switch.connect("beta", c.ns("beta"), &[]);

    let one = hactl(&c, "alpha", &["fence", "test", "netns"]);
    assert_eq!(one.code(), Some(0), "{one:?}");
    assert!(one.stdout.contains("fence device netns: ok"), "{one:?}");
    assert!(!one.stdout.contains("broken"), "{one:?}");

    let all = hactl(&c, "alpha", &["fence", "test"]);
    assert_eq!(all.code(), Some(1), "{all:?}");
    assert!(all.stdout.contains("fence device netns: ok"), "{all:?}");
    assert!(
        all.stdout.contains(
            "fence device broken: FAILED: the agent failed (exit 1): cannot reach the BMC"
        ),
        "{all:?}"
    );
    assert!(
        c.log("alpha")
            .contains("fencing device broken fails its monitor check"),
        "the failure is logged"
    );
    let unknown = hactl(&c, "alpha", &["fence", "test", "apc"]);
    assert_eq!(unknown.code(), Some(1), "{unknown:?}");
    assert!(
        unknown.stderr.contains("no fencing device apc"),
        "{unknown:?}"
    );

    let checked: Vec<(String, bool)> = status_json(&c, "alpha")
        .fence_devices
        .iter()
        .map(|d| (d.device.clone(), d.error.is_none()))
        .collect();
    assert_eq!(
        checked,
        [("netns".to_owned(), true), ("broken".to_owned(), false)]
    );

    // beta's hamond dies: alpha fences it through the switch.
    c.crash("beta");
    c.wait_until("alpha sees beta down", WAIT, |s| {
        s.peer_state("alpha", "beta") == Some(Down)
    });
    let mut report = status_json(&c, "alpha");
    for _ in 0..100 {
        if !report.fences.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        report = status_json(&c, "alpha");
    }
    assert_eq!(report.fences.len(), 1, "{:?}", report.fences);
    let fence = &report.fences[0];
    assert_eq!(
        (
            fence.node.as_str(),
            fence.device.as_str(),
            fence.action.as_str()
        ),
        ("beta", "netns", "off")
    );
    assert_eq!(fence.error, None);
    assert!(fence.duration_ms > 0, "{fence:?}");
    assert!(switch.is_off(c.ns("beta")));
    let text = hactl(&c, "alpha", &["status"]);
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("beta        netns       off")),
        "{text:?}"
    );
}
