//! Service files changed while hasvrd runs, on namespaced nodes: the test
//! writes, changes and removes files in the services directory both
//! hasvrds read, then sends each hasvrd SIGHUP (the reload that hamond's
//! configuration replication triggers with `ServicesChanged`).
//!
//! * A directory with a broken file changes nothing, and the error names
//!   the file.
//! * Two new services appear brought out (OUTSTB) on both nodes, even with
//!   `onstart = true`; one brought in runs on alpha (hamond learned its
//!   lock) and is ACTIVE.
//! * The web service's file changed while it runs on alpha: alpha keeps it
//!   running untouched (same application pid) and warns; beta, which does
//!   not run it, takes the new definition at once. Failed over to beta and
//!   taken back, it starts with the new definition on each node.
//! * A removed file of a brought-out service: gone from both nodes' status.
//!   A removed file of a service running on alpha: it keeps running there,
//!   with an error that says to bring it out first; beta forgets it.
//!
//! The control socket's commands are in hasvrd's audit log.

use haschema::ctl::ServiceOp;
use hatests::require_root;
use hatests::scratch::{pidfile_script, write_script};
use hatests::web::{SERVICE, WebService};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The new service brought in, and the one left out.
const RUNS: &str = "extra";
const IDLE: &str = "idle";

/// A script-only service: a `sleep` whose pid file is per service and
/// node (`DIR/SERVICE-NODE.pid`, from hasvrd's `HA_SERVICE` and `HA_NODE`),
/// so a node's status never sees the other's.
fn sleeper(dir: &Path) -> String {
    let pidfile = format!("{}/$HA_SERVICE-$HA_NODE.pid", dir.display());
    let body = pidfile_script("", &pidfile, "sleep 100000", "", "");
    write_script(dir, "sleeper", &body)
}

/// The file of a script-only service `name` on alpha then beta, with
/// `onstart = true` (which a service added by a reload does not honour).
fn service_file(name: &str, script: &str) -> String {
    format!(
        r#"name = "{name}"
active = "alpha"
standby = ["beta"]
start = ["{script}", "start"]
stop = ["{script}", "stop"]
status = ["{script}", "status"]
start_timeout = "20s"
stop_timeout = "15s"
check_interval = "1s"
onstart = true
"#
    )
}

/// SIGHUP to both nodes' hasvrd: reread the service files.
fn reload(w: &WebService) {
    for node in ["alpha", "beta"] {
        let pid = w
            .hasvrd_pid(node)
            .unwrap_or_else(|| panic!("{node}'s hasvrd is not running"));
        kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap_or_else(|e| panic!("kill -HUP: {e}"));
    }
}

/// Waits until `node` reports `service` in a state that passes `ok`.
#[track_caller]
fn wait_service(w: &WebService, node: &str, service: &str, what: &str, ok: fn(&str) -> bool) {
    w.wait_for(&format!("{node} reports {service} {what}"), || {
        w.cluster()
            .service_state(node, service)
            .is_some_and(|s| ok(&s))
    });
}

/// Whether `node`'s service status lists `service`.
fn listed(w: &WebService, node: &str, service: &str) -> bool {
    w.cluster()
        .services(node)
        .is_ok_and(|all| all.iter().any(|s| s.name == service))
}

/// The pid the sleeper of `service` wrote on `node`, if it runs.
fn sleeper_pid(dir: &Path, service: &str, node: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join(format!("{service}-{node}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The web service's file with its start wrapped so that it first leaves
/// `DIR/marker-NODE`: the mark of the new definition.
fn marked(text: &str, dir: &Path) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let Some(argv) = line.strip_prefix("start = ") else {
                return line.to_owned();
            };
            let argv: Vec<String> = serde_json::from_str(argv).expect("the start argv");
            let wrapper = format!(
                "touch {}/marker-$HA_NODE; exec \"$0\" \"$@\"",
                dir.display()
            );
            let wrapped: Vec<String> = ["/bin/sh", "-c", &wrapper]
                .into_iter()
                .map(str::to_owned)
                .chain(argv)
                .collect();
            format!("start = {}", serde_json::to_string(&wrapped).unwrap())
        })
        .collect();
    lines.join("\n") + "\n"
}

fn marker(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("marker-{node}"))
}

#[test]
fn services_are_added_changed_and_removed_at_run_time() {
    if !require_root() {
        return;
    }
    let w = WebService::start("service_reload", false);
    let c = w.cluster();
    let dir = c.dir().to_owned();
    let services = c.services_dir();
    w.wait_served_by("alpha");
    w.wait_state("beta", "STANDBY");
    let out = |s: &str| s.starts_with("OUT");

    // Two new services, and a broken file: nothing changes.
    let script = sleeper(&dir);
    for name in [RUNS, IDLE] {
        let file = services.join(format!("{name}.toml"));
        std::fs::write(&file, service_file(name, &script))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let broken = services.join("broken.toml");
    let text = service_file("broken", &script).replace("check_interval", "check_intervall");
    std::fs::write(&broken, text).unwrap();
    reload(&w);
    let wait = Duration::from_secs(20);
    for node in ["alpha", "beta"] {
        c.wait_for_log(node, "broken.toml", wait);
        assert!(c.log(node).contains("nothing changed: fix the file"));
        assert!(!listed(&w, node, RUNS) && !listed(&w, node, IDLE));
    }

    // Fixed: brought out on both nodes, nothing started.
    std::fs::remove_file(&broken).unwrap();
    reload(&w);
    for node in ["alpha", "beta"] {
        for name in [RUNS, IDLE] {
            wait_service(&w, node, name, "brought out", out);
        }
    }
    for node in ["alpha", "beta"] {
        assert_eq!(sleeper_pid(&dir, RUNS, node), None, "started on {node}");
        assert_eq!(
            c.service_state(node, SERVICE).as_deref().map(out),
            Some(false)
        );
    }

    // Brought in, it gets its lock and runs on alpha.
    c.service_op("alpha", ServiceOp::BringIn, RUNS)
        .unwrap_or_else(|e| panic!("bring in {RUNS}: {e}"));
    wait_service(&w, "alpha", RUNS, "ACTIVE", |s| s == "ACTIVE");
    wait_service(&w, "beta", RUNS, "STANDBY", |s| s == "STANDBY");
    let running = sleeper_pid(&dir, RUNS, "alpha").expect("the new service runs on alpha");
    let audit = std::fs::read_to_string(c.hasvrd_state_dir("alpha").join("audit.log"))
        .expect("hasvrd's audit log");
    assert!(
        audit
            .lines()
            .any(|l| l.contains(r#""service":"extra""#) && l.contains(r#""result":"ok""#)),
        "{audit}"
    );

    // The running web service's file changes: alpha keeps running it as it
    // is; beta takes the new definition now.
    let app = w.app_pid("alpha");
    let www = services.join(format!("{SERVICE}.toml"));
    let text = std::fs::read_to_string(&www).unwrap();
    std::fs::write(&www, marked(&text, &dir)).unwrap();
    let since = (c.log_len("alpha"), c.log_len("beta"));
    reload(&w);
    let changed = format!("service {SERVICE}: its file changed while this node holds it");
    c.wait_for_log("alpha", &changed, wait);
    let applies = format!("service {SERVICE}: its new definition applies");
    c.wait_for_log("beta", &applies, wait);
    assert!(!c.log_since("alpha", since.0).contains(&applies));
    assert!(!c.log_since("beta", since.1).contains(&changed));
    w.wait_served_by("alpha");
    assert_eq!(w.app_pid("alpha"), app, "a reload never restarts a service");
    assert!(!marker(&dir, "alpha").exists());

    // Started on beta with the new definition; alpha takes it once stopped,
    // and starts it with it when the service comes back.
    let (moved, _) = w.outage_during("alpha", "beta", || {
        c.service_op("alpha", ServiceOp::FailOver, SERVICE)
    });
    moved.unwrap_or_else(|e| panic!("fail over: {e}"));
    assert!(
        marker(&dir, "beta").exists(),
        "beta started the old definition"
    );
    c.wait_for_log("alpha", &applies, wait);
    let (back, _) = w.outage_during("beta", "alpha", || {
        c.service_op("alpha", ServiceOp::TakeOver, SERVICE)
    });
    back.unwrap_or_else(|e| panic!("take over: {e}"));
    assert!(
        marker(&dir, "alpha").exists(),
        "alpha started the old definition"
    );

    // Removed files: the brought-out service is gone everywhere; the one
    // running on alpha keeps running there, and beta forgets it.
    for name in [RUNS, IDLE] {
        std::fs::remove_file(services.join(format!("{name}.toml"))).unwrap();
    }
    reload(&w);
    for node in ["alpha", "beta"] {
        w.wait_for(&format!("{IDLE} gone from {node}'s status"), || {
            !listed(&w, node, IDLE)
        });
    }
    w.wait_for(&format!("{RUNS} gone from beta's status"), || {
        !listed(&w, "beta", RUNS)
    });
    c.wait_for_log(
        "alpha",
        &format!("service {RUNS}: its file was removed, but this node holds it"),
        wait,
    );
    assert!(
        c.log("alpha")
            .contains(&format!("hactl service bring-out {RUNS}"))
    );
    assert_eq!(c.service_state("alpha", RUNS).as_deref(), Some("ACTIVE"));
    assert_eq!(sleeper_pid(&dir, RUNS, "alpha"), Some(running));
    w.wait_served_by("alpha");
}
