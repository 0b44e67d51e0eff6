//! hamond's control socket with real daemons: the socket is mode 0660 in
//! the configured `control_group`; root and members of that group (as
//! primary or supplementary group) get a status report, anyone else is
//! refused (by the socket's mode, and by hamond's own SO_PEERCRED check
//! when the mode is bypassed) with exit code 3 and a message saying why; a
//! request that is not a valid JSON request line gets a clear error and the
//! daemon keeps running.

use haschema::ctl::Response;
use hatests::command::Finished;
use hatests::{ClusterSpec, RunAs, TempGroup, TestCluster, require_root};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

/// Longest wait for the cluster to come up.
const WAIT: Duration = Duration::from_secs(20);
/// hactl's exit code when hamond is unreachable or refuses.
const REFUSED: i32 = 3;

/// Starts alpha and beta (with `control_group` if given) and waits until
/// they see each other up; None without root (outside CI).
fn cluster_up(test: &str, control_group: Option<&TempGroup>) -> Option<TestCluster> {
    if !require_root() {
        return None;
    }
    let spec = ClusterSpec {
        control_group: control_group.map(|g| g.name().to_owned()),
        ..ClusterSpec::with_nodes(&["alpha", "beta"])
    };
    let c = TestCluster::start(test, spec);
    c.wait_until("alpha and beta see each other up", WAIT, |s| s.all_up());
    Some(c)
}

/// hactl was refused: exit code 3, nothing on stdout, and stderr saying
/// permission denied (and, if given, `also`).
#[track_caller]
fn assert_refused(who: &str, f: &Finished, also: Option<&str>) {
    let stderr = f.stderr.to_lowercase();
    assert!(
        f.code() == Some(REFUSED)
            && f.stdout.trim().is_empty()
            && stderr.contains("permission denied")
            && also.is_none_or(|a| stderr.contains(a)),
        "{who}: expected exit {REFUSED} and \"permission denied\"{}, got {}\nstdout: {}\nstderr: {}",
        also.map(|a| format!(" and {a:?}")).unwrap_or_default(),
        f.status,
        f.stdout.trim(),
        f.stderr.trim()
    );
}

#[test]
fn only_root_and_the_control_group_may_use_the_control_socket() {
    if !require_root() {
        return;
    }
    // Made before the daemons look it up, deleted after they are gone.
    let group = TempGroup::new("ctl");
    let Some(c) = cluster_up("control_group", Some(&group)) else {
        return;
    };
    let pid = c.pid("alpha");
    let meta = std::fs::metadata(c.socket("alpha")).unwrap();
    assert_eq!(
        (meta.permissions().mode() & 0o777, meta.uid(), meta.gid()),
        (0o660, 0, group.gid()),
        "socket mode 0660, owner root, group {}",
        group.name()
    );

    let root = c.status("alpha");
    assert_eq!(root.node, "alpha");

    let members = [
        (
            "nobody with the group as supplementary group",
            RunAs::nobody().supplementary_group(group.gid()),
        ),
        (
            "nobody with the group as primary group",
            RunAs::nobody().primary_group(group.gid().to_string()),
        ),
    ];
    for (who, user) in &members {
        let report = c
            .try_status_as("alpha", user)
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(
            (
                report.node.as_str(),
                report.cluster.as_str(),
                report.peers.len()
            ),
            ("alpha", c.spec().cluster_name.as_str(), 1),
            "{who} gets alpha's report"
        );
    }

    // The socket's mode keeps an outsider out...
    let outsider = c.hactl_status_as("alpha", &RunAs::nobody());
    assert_refused("nobody", &outsider, None);
    // ...and past the mode (CAP_DAC_OVERRIDE), hamond's own check does.
    let warnings = c.log_count("alpha", "control socket: permission denied");
    let bypass = RunAs::nobody().ambient_cap("dac_override");
    let refused = c.hactl_status_as("alpha", &bypass);
    assert_refused(
        "nobody with CAP_DAC_OVERRIDE",
        &refused,
        Some("run as root or as a member of the cluster's control_group"),
    );
    c.wait_for_log(
        "alpha",
        "control socket: permission denied for uid 65534",
        Duration::from_secs(5),
    );
    assert_eq!(
        c.log_count("alpha", "control socket: permission denied"),
        warnings + 1,
        "one warning per refused client"
    );

    assert!(c.snapshot().all_up(), "the cluster is unaffected");
    assert_eq!(c.pid("alpha"), pid, "alpha's hamond kept running");
}

#[test]
fn a_bad_request_gets_a_clear_error_and_the_daemon_keeps_running() {
    let Some(c) = cluster_up("control_bad_request", None) else {
        return;
    };
    let pid = c.pid("alpha");
    let mut oversized = vec![b'x'; 70 * 1024];
    oversized.push(b'\n');
    let bad: [(&str, &[u8]); 6] = [
        ("not JSON", b"this is not json\n"),
        ("an unknown command", b"{\"cmd\":\"reboot\"}\n"),
        ("JSON that is not a request", b"[1, 2, 3]\n"),
        ("a truncated line", b"{\"cmd\":"),
        ("nothing", b""),
        ("a line over 64 KiB", &oversized),
    ];
    for (what, request) in bad {
        let answer = c
            .ctl_raw("alpha", request)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let response: Response = serde_json::from_str(answer.trim_end())
            .unwrap_or_else(|e| panic!("{what}: the answer is not a response ({e}): {answer}"));
        assert!(
            answer.ends_with('\n') && answer.lines().count() == 1,
            "{what}: one line"
        );
        match response {
            Response::Error { message } => assert!(
                message.starts_with("bad request: ") && message.len() > "bad request: ".len(),
                "{what}: a clear error, got {message:?}"
            ),
            other => panic!("{what}: expected an error, got {other:?}"),
        }
    }

    // The same socket still serves a good request, raw or from hactl.
    let answer = c.ctl_raw("alpha", b"{\"cmd\":\"status\"}\n").unwrap();
    match serde_json::from_str(answer.trim_end()) {
        Ok(Response::Status(report)) => assert_eq!(report.node, "alpha"),
        other => panic!("expected a status report, got {other:?}: {answer}"),
    }
    c.wait_until("alpha and beta still up", WAIT, |s| s.all_up());
    assert_eq!(c.pid("alpha"), pid, "alpha's hamond kept running");
}
