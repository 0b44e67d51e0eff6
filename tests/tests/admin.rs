//! The remote admin endpoint with real daemons: alpha and beta serve
//! `[admin] listen = "0.0.0.0:7405"`, and `hactl --remote` runs in beta's
//! namespace against alpha's lan1 address. Without a password every login
//! is refused with advice to run `hactl passwd`; after `hactl passwd
//! --stdin`, a wrong password is refused (and logged), the right one gets
//! alpha's status with the local exit code, a request before the login is
//! refused, 5 wrong passwords lock the address out even for the right one,
//! and after alpha's certificate is regenerated the pinned fingerprint makes
//! hactl refuse to talk to it, saying how to accept the change. Logins are
//! in alpha's audit log with their source and result, never the password.
//!
//! With the web service (`hatests::web`), the service requests go through
//! alpha's endpoint to its hasvrd: `hactl --remote` brings `www` out and
//! back in, reads the service status as JSON with the local exit codes,
//! and each command is logged on alpha, and written to its audit log,
//! with its source and result.

use hamond::admin::client::{Client, KNOWN_HOSTS_ENV};
use haschema::ctl::{Health, ServiceStatus};
use hatests::bins;
use hatests::command::{Finished, run_for};
use hatests::web::{NODES, SERVICE, WebService, WebSpec};
use hatests::{ClusterSpec, LAN1, TestCluster, require_root};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PORT: u16 = 7405;
const PASSWORD: &str = "correct horse battery";
const HACTL_TIMEOUT: Duration = Duration::from_secs(30);

/// `hactl --remote ALPHA:7405 ARGS...` from beta's namespace.
fn remote(c: &TestCluster, password: &str, args: &[&str]) -> Finished {
    let server = format!("{}:{PORT}", c.addr("alpha", LAN1).ip());
    let mut cmd = c.ns("beta").command(bins::hactl());
    cmd.args(["--remote", &server])
        .args(args)
        .env(KNOWN_HOSTS_ENV, c.dir().join("known_hosts"))
        .env("HA_ADMIN_PASSWORD", password);
    run_for(&mut cmd, HACTL_TIMEOUT).unwrap_or_else(|e| panic!("{e}\n{}", c.log_tails(20)))
}

/// `hactl --remote ALPHA:7405 status --json` from beta's namespace.
fn remote_status(c: &TestCluster, password: &str) -> Finished {
    remote(c, password, &["status", "--json"])
}

/// The `[admin]` table of both tests.
fn admin_config() -> String {
    format!("[admin]\nlisten = \"0.0.0.0:{PORT}\"")
}

/// The lines of `node`'s hamond audit log (in its state directory), with
/// the whole text (to check that no password is in it).
fn audit_log(c: &TestCluster, node: &str) -> (Vec<serde_json::Value>, String) {
    let path = c
        .dir()
        .join(format!("{node}.state"))
        .join(haschema::audit::FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (lines, text)
}

/// Whether an audit line is by the admin from `ip` (any port), about
/// `cmd`, with a result that starts with `result`.
fn audited(line: &serde_json::Value, ip: &str, cmd: &str, result: &str) -> bool {
    line["who"] == "admin"
        && line["from"]
            .as_str()
            .is_some_and(|f| f.starts_with(&format!("{ip}:")))
        && line["what"]["cmd"] == cmd
        && line["result"]
            .as_str()
            .is_some_and(|r| r.starts_with(result))
}

/// `hactl passwd --stdin --config CONFIG` with `password` on stdin.
fn passwd(config: &Path, password: &str) -> std::process::Output {
    let mut child = Command::new(bins::hactl())
        .args(["passwd", "--stdin", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hactl runs");
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn remote_admin_login_lockout_and_pinning() {
    if !require_root() {
        return;
    }
    let spec = ClusterSpec {
        extra_config: admin_config(),
        ..ClusterSpec::with_nodes(&["alpha", "beta"])
    };
    let c = TestCluster::start("admin", spec);
    c.wait_until(
        "alpha and beta see each other up",
        Duration::from_secs(20),
        |s| s.all_up(),
    );
    c.wait_for_log("alpha", "admin: serving on", Duration::from_secs(10));

    // No password yet: refused, with what to do.
    let f = remote_status(&c, PASSWORD);
    assert_eq!(f.code(), Some(3), "{f:?}");
    assert!(f.stderr.contains("hactl passwd"), "{}", f.stderr);
    assert!(f.stderr.contains("first connection to"), "{}", f.stderr);

    // Set it (NewPass).
    let out = passwd(c.config_path(), "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
    let out = passwd(c.config_path(), PASSWORD);
    assert!(out.status.success(), "{out:?}");
    let pw_file = c.dir().join("admin.pw");
    let meta = std::fs::metadata(&pw_file).expect("hactl passwd wrote admin.pw");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&pw_file)
            .unwrap()
            .starts_with("$argon2id$")
    );

    // A wrong password is refused (after a delay) and logged with its source.
    let beta_ip = c.addr("beta", LAN1).ip().to_string();
    let f = remote_status(&c, "wrong password");
    assert_eq!(f.code(), Some(3), "{f:?}");
    assert!(f.stderr.contains("wrong password"), "{}", f.stderr);
    assert!(f.stdout.is_empty());
    c.wait_for_log(
        "alpha",
        &format!("failed login from {beta_ip}"),
        Duration::from_secs(5),
    );

    // The right one gets alpha's status, with the exit code hactl gives
    // locally.
    let f = remote_status(&c, PASSWORD);
    let local = c.status("alpha");
    assert_eq!(f.code(), Some(local.health() as i32), "{f:?}");
    let report: haschema::ctl::StatusReport =
        serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}: {f:?}"));
    assert_eq!(report.node, "alpha");
    assert!(
        !f.stderr.contains("first connection"),
        "pinned already: {}",
        f.stderr
    );
    c.wait_for_log(
        "alpha",
        &format!("admin: login from {beta_ip}"),
        Duration::from_secs(5),
    );
    let (lines, text) = audit_log(&c, "alpha");
    let failed = "refused: wrong password";
    assert!(
        lines.iter().any(|l| audited(l, &beta_ip, "login", failed)),
        "{text}"
    );
    assert!(
        lines.iter().any(|l| audited(l, &beta_ip, "login", "ok")),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

    // A request before the login is refused.
    let server = format!("{}:{PORT}", c.addr("alpha", LAN1).ip());
    let known = c.dir().join("known_hosts");
    let answer = c
        .ns("beta")
        .enter(|| -> Result<String, String> {
            let mut client = Client::connect(&server, &known, Duration::from_secs(10))?;
            client.exchange(br#"{"cmd":"status"}"#)
        })
        .unwrap()
        .unwrap();
    assert!(answer.contains("log in first"), "{answer}");
    assert!(answer.contains(r#""result":"error""#), "{answer}");

    // Five wrong passwords lock beta's address out, even for the right one.
    for i in 1..=5 {
        let f = remote_status(&c, "guess guess");
        assert_eq!(f.code(), Some(3), "{f:?}");
        assert!(f.stderr.contains("wrong password"), "{i}: {}", f.stderr);
    }
    let f = remote_status(&c, PASSWORD);
    assert_eq!(f.code(), Some(3), "{f:?}");
    assert!(
        f.stderr.contains("too many failed logins, try again in "),
        "{}",
        f.stderr
    );
    assert!(c.log("alpha").contains("locked out for 60 s"));

    // A new certificate on alpha: the pinned fingerprint no longer matches.
    c.shutdown("alpha");
    let cert = c
        .dir()
        .join("alpha.state")
        .join(hamond::admin::tls::CERT_FILE);
    std::fs::remove_file(&cert).unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let serving = c.log_count("alpha", "admin: serving on");
    c.start_node("alpha");
    c.wait_until("alpha serves admin again", Duration::from_secs(20), |_| {
        c.log_count("alpha", "admin: serving on") > serving
    });
    assert!(c.log("alpha").contains("admin: made a new TLS certificate"));
    let f = remote_status(&c, PASSWORD);
    assert_eq!(f.code(), Some(3), "{f:?}");
    assert!(f.stderr.contains("has CHANGED"), "{}", f.stderr);
    assert!(f.stderr.contains("remove line 1 from"), "{}", f.stderr);
}

/// `hactl --remote ... service status --json`: alpha's view of the
/// service, and the exit code.
fn remote_services(c: &TestCluster) -> (ServiceStatus, Option<i32>) {
    let f = remote(c, PASSWORD, &["service", "status", "--json"]);
    let services: Vec<ServiceStatus> =
        serde_json::from_str(&f.stdout).unwrap_or_else(|e| panic!("{e}: {f:?}"));
    let www = services.into_iter().find(|s| s.name == SERVICE);
    (
        www.unwrap_or_else(|| panic!("no {SERVICE}: {f:?}")),
        f.code(),
    )
}

/// The state of `service` on `node`, as a report shows it.
fn state_on<'a>(s: &'a ServiceStatus, node: &str) -> Option<&'a str> {
    s.nodes
        .iter()
        .find(|n| n.node == node)
        .map(|n| n.state.as_str())
}

#[test]
fn remote_service_bring_out_and_in() {
    if !require_root() {
        return;
    }
    let web = WebService::start_with(
        "admin-svc",
        WebSpec {
            hamond_runs_hasvrd: true,
            cluster: Some(ClusterSpec {
                extra_config: admin_config(),
                ..ClusterSpec::with_nodes(&NODES)
            }),
            ..WebSpec::default()
        },
    );
    let c = web.cluster();
    web.wait_state("alpha", "ACTIVE");
    web.wait_served_by("alpha");
    let out = passwd(c.config_path(), PASSWORD);
    assert!(out.status.success(), "{out:?}");
    c.wait_for_log("alpha", "admin: serving on", Duration::from_secs(10));

    let (www, code) = remote_services(c);
    assert_eq!(state_on(&www, "alpha"), Some("ACTIVE"), "{www:?}");
    assert_eq!(www.owner.as_deref(), Some("alpha"));
    assert_eq!(code, Some(Health::Ok as i32));

    // Out of cluster control: left running as it is.
    let f = remote(c, PASSWORD, &["service", "bring-out", SERVICE]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    web.wait_state("alpha", "OUTACT");
    let (www, code) = remote_services(c);
    assert_eq!(state_on(&www, "alpha"), Some("OUTACT"), "{www:?}");
    assert_eq!(code, Some(Health::Degraded as i32));
    web.wait_served_by("alpha");
    let beta_ip = c.addr("beta", LAN1).ip().to_string();
    c.wait_for_log(
        "alpha",
        &format!("admin: service bring-out {SERVICE} by admin from {beta_ip}"),
        Duration::from_secs(5),
    );

    // A command hasvrd refuses is an error with its reason (exit 1).
    let f = remote(c, PASSWORD, &["service", "bring-out", "nosuch"]);
    assert_eq!(f.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("no service nosuch"), "{}", f.stderr);

    // Back under control.
    let f = remote(c, PASSWORD, &["service", "bring-in", SERVICE]);
    assert_eq!(f.code(), Some(0), "{f:?}");
    web.wait_state("alpha", "ACTIVE");
    web.wait_state("beta", "STANDBY");
    let (www, code) = remote_services(c);
    assert_eq!(state_on(&www, "alpha"), Some("ACTIVE"), "{www:?}");
    assert_eq!(code, Some(Health::Ok as i32));
    let needle = format!("admin: service bring-in {SERVICE} by admin from {beta_ip}:");
    c.wait_for_log("alpha", &needle, Duration::from_secs(5));
    let (lines, text) = audit_log(c, "alpha");
    let done = |l: &&serde_json::Value| {
        audited(l, &beta_ip, "service", "ok") && l["what"]["service"] == SERVICE
    };
    assert_eq!(lines.iter().filter(done).count(), 2, "out and in: {text}");
    assert!(
        lines
            .iter()
            .any(|l| audited(l, &beta_ip, "service", "refused: ")
                && l["what"]["service"] == "nosuch"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    c.assert_logged("alpha", &[&needle, ": done: "]);
}
