//! Configuration replication on two namespaced nodes (issue 6, invariant
//! 5, safety rule 9), through `hactl config ...` and `hactl service remove`.
//!
//! The harness's nodes share one config file and one service directory;
//! here each node gets its own (`DIR/NODE.etc/cluster.toml` and
//! `DIR/NODE.etc/services/`): the harness's daemons are stopped once the
//! cluster is up, and each node's hamond (which runs its hasvrd) is started
//! again by this test with its own files ([`Replicated`]).
//!
//! * A service file put on alpha appears on beta with the same content and
//!   beta's hasvrd lists the service brought out; a put based on an older
//!   version is refused showing the current one, and changes nothing;
//!   the service brought in starts; `hactl service remove` is refused while
//!   it is brought in, and while brought out but still running, and
//!   accepted once it is stopped (`hactl service stop`), the file gone on
//!   both nodes.
//! * With beta stopped (both daemons), a change on alpha is refused naming
//!   beta, and goes through with `--force-local`; beta, started again,
//!   takes the newer version. A changed `cluster.toml` (a heartbeat
//!   interval) reaches beta, both hamonds restart in place to load it
//!   (same pid, new incarnation), and both hasvrds (same pid), and see each
//!   other up with the same config;
//!   changed again with `--force-local` while beta is down, beta takes the
//!   newer one when it returns and restarts on it.

use haschema::ctl::{ServiceOp, State};
use hatests::command::{Finished, run_for, wait_deadline};
use hatests::{ClusterSpec, TestCluster, require_root};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The service the tests replicate.
const SERVICE: &str = "replicated";
/// Its document.
const DOC: &str = "services/replicated.toml";
/// The longest wait for anything here.
const WAIT: Duration = Duration::from_secs(30);
/// The longest a `hactl` run may take (a put waits for its commit).
const HACTL_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a stopping hamond may take (it stops its hasvrd first).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A two-node cluster whose nodes each have their own config files, their
/// hamonds (each running its hasvrd) started by this fixture.
struct Replicated {
    cluster: TestCluster,
    daemons: Mutex<BTreeMap<String, Child>>,
}

impl Replicated {
    #[track_caller]
    fn start(test: &str) -> Replicated {
        let spec = ClusterSpec {
            hamond_runs_hasvrd: true,
            ..ClusterSpec::default()
        };
        let r = Replicated {
            cluster: TestCluster::start(test, spec),
            daemons: Mutex::new(BTreeMap::new()),
        };
        let text = r.cluster.config_text();
        for node in ["alpha", "beta"] {
            r.cluster.shutdown(node);
            std::fs::create_dir_all(r.services(node)).unwrap();
            std::fs::write(r.config(node), &text).unwrap();
            r.start_node(node);
        }
        r.wait("both nodes up with their own files", || {
            ["alpha", "beta"].iter().all(|&n| r.peer_up(n))
        });
        r
    }

    /// `node`'s own config directory.
    fn etc(&self, node: &str) -> PathBuf {
        self.cluster.dir().join(format!("{node}.etc"))
    }

    fn config(&self, node: &str) -> PathBuf {
        self.etc(node).join("cluster.toml")
    }

    fn services(&self, node: &str) -> PathBuf {
        self.etc(node).join("services")
    }

    /// The service file on `node`, if it is there.
    fn service_file(&self, node: &str) -> Option<String> {
        std::fs::read_to_string(self.services(node).join(format!("{SERVICE}.toml"))).ok()
    }

    /// Starts `node`'s hamond (and with it its hasvrd) with its own files,
    /// its output appended to the node's log.
    #[track_caller]
    fn start_node(&self, node: &str) {
        let harness = self.cluster.hamond_command(node);
        let shared_services = format!("--hasvrd-arg={}", self.cluster.services_dir().display());
        let mut args: Vec<OsString> = harness.get_args().map(OsString::from).collect();
        for i in 0..args.len() {
            if args[i] == "--config" && i + 1 < args.len() {
                args[i + 1] = self.config(node).into();
            } else if args[i] == shared_services.as_str() {
                args[i] = format!("--hasvrd-arg={}", self.services(node).display()).into();
            }
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cluster.dir().join(format!("{node}.log")))
            .unwrap();
        let child = std::process::Command::new(harness.get_program())
            .args(args)
            .arg("--no-syslog")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {node}'s hamond: {e}"));
        self.daemons.lock().unwrap().insert(node.to_owned(), child);
    }

    /// SIGTERM to `node`'s hamond, which stops its hasvrd, then leaves.
    #[track_caller]
    fn stop_node(&self, node: &str) {
        let mut child = self.daemons.lock().unwrap().remove(node).unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let status = wait_deadline(&mut child, STOP_TIMEOUT);
        assert!(
            status.is_some_and(|s| s.success()),
            "{node}'s hamond did not stop cleanly: {status:?}"
        );
    }

    /// The pid of `node`'s hamond (restarts in place keep it).
    fn pid(&self, node: &str) -> u32 {
        self.daemons.lock().unwrap()[node].id()
    }

    /// Whether `node` sees its peer up, with the same config.
    fn peer_up(&self, node: &str) -> bool {
        self.cluster.try_status(node).is_ok_and(|s| {
            s.peers
                .iter()
                .all(|p| p.state == State::Up && p.config_matches == Some(true))
        })
    }

    /// `hactl ARGS` against `node`'s hamond.
    #[track_caller]
    fn hactl(&self, node: &str, args: &[&str]) -> Finished {
        let mut cmd = std::process::Command::new(hatests::bins::hactl());
        cmd.arg("--socket")
            .arg(self.cluster.socket(node))
            .args(args);
        run_for(&mut cmd, HACTL_TIMEOUT).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `hactl ARGS` that must exit 0; its stdout.
    #[track_caller]
    fn hactl_ok(&self, node: &str, args: &[&str]) -> String {
        let f = self.hactl(node, args);
        assert_eq!(f.code(), Some(0), "hactl {args:?} on {node}: {f:?}");
        f.stdout
    }

    /// `hactl ARGS` that must be refused (exit 1); its stderr.
    #[track_caller]
    fn hactl_refused(&self, node: &str, args: &[&str]) -> String {
        let f = self.hactl(node, args);
        assert_eq!(f.code(), Some(1), "hactl {args:?} on {node}: {f:?}");
        f.stderr
    }

    /// The version of `doc` on `node` (`hactl config list --json`).
    #[track_caller]
    fn version(&self, node: &str, doc: &str) -> String {
        let list = self.hactl_ok(node, &["config", "list", "--json"]);
        let docs: Vec<haschema::ctl::ConfigDocInfo> = serde_json::from_str(&list).unwrap();
        let found = docs.into_iter().find(|d| d.name == doc);
        found
            .unwrap_or_else(|| panic!("no {doc} in {list}"))
            .version
            .to_string()
    }

    /// Puts `content` as `doc` on `node` with `extra` options.
    fn put(&self, node: &str, doc: &str, content: &str, extra: &[&str]) -> Finished {
        let file = self.cluster.dir().join("put.toml");
        std::fs::write(&file, content).unwrap();
        let file = file.to_string_lossy().into_owned();
        let args: Vec<&str> = ["config", "put", doc, &file]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        self.hactl(node, &args)
    }

    /// Polls `cond` every 200 ms until it holds, at most [`WAIT`].
    #[track_caller]
    fn wait(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "not within {WAIT:?}: {what}\n{}",
                self.cluster.log_tails(60)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `node`'s hasvrd's state of the service, once it lists it.
    fn state(&self, node: &str) -> Option<String> {
        self.cluster.service_state(node, SERVICE)
    }
}

impl Drop for Replicated {
    /// Stops the daemons cleanly (a killed hamond would be restarted by its
    /// hasvrd), killing those that do not stop in time.
    fn drop(&mut self) {
        let daemons = self.daemons.get_mut().unwrap_or_else(|p| p.into_inner());
        for child in daemons.values_mut() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            if wait_deadline(child, STOP_TIMEOUT).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A service whose scripts keep a flag file per node (`HA_NODE`).
fn service_text(dir: &Path, check_interval: &str) -> String {
    let flag = dir.join("running").to_string_lossy().into_owned();
    let script = |body: &str| format!(r#"["/bin/sh", "-c", "{body}", "{flag}"]"#);
    format!(
        "name = \"{SERVICE}\"\nactive = \"alpha\"\nstandby = [\"beta\"]\nstart = {}\nstop = {}\n\
         status = {}\ncheck_interval = \"{check_interval}\"\n",
        script("touch \\\"$0.$HA_NODE\\\""),
        script("rm -f \\\"$0.$HA_NODE\\\""),
        script("test -e \\\"$0.$HA_NODE\\\""),
    )
}

#[test]
fn a_service_file_put_on_one_node_reaches_the_other_and_is_removed_once_brought_out() {
    if !require_root() {
        return;
    }
    let r = Replicated::start("config_services");
    let first = service_text(r.cluster.dir(), "2s");

    // Put on alpha: the file and the service reach beta, brought out.
    let put = r.put("alpha", DOC, &first, &[]);
    assert_eq!(put.code(), Some(0), "{put:?}");
    assert!(put.stdout.contains("is now at version"), "{put:?}");
    r.wait("the file on beta", || {
        r.service_file("beta").as_deref() == Some(&first)
    });
    assert_eq!(r.service_file("alpha").as_deref(), Some(&*first));
    r.wait("beta's hasvrd lists the service, brought out", || {
        r.state("beta").is_some_and(|s| s.starts_with("OUT"))
    });
    let v1 = r.version("alpha", DOC);
    assert_eq!(r.version("beta", DOC), v1);
    let got = r.hactl_ok("beta", &["config", "get", DOC]);
    assert_eq!(got, first);

    // A change based on v1 commits; a second one based on v1 is stale.
    let second = service_text(r.cluster.dir(), "1s");
    let put = r.put("beta", DOC, &second, &["--base", &v1]);
    assert_eq!(put.code(), Some(0), "{put:?}");
    let v2 = r.version("beta", DOC);
    assert_ne!(v2, v1);
    r.wait("the change on alpha", || {
        r.service_file("alpha").as_deref() == Some(&second)
    });
    let stale = r.put("alpha", DOC, &first, &["--base", &v1]);
    assert_eq!(stale.code(), Some(1), "{stale:?}");
    assert!(
        stale
            .stderr
            .contains(&format!("changed meanwhile: it is now at {v2}")),
        "{stale:?}"
    );
    for node in ["alpha", "beta"] {
        assert_eq!(r.version(node, DOC), v2, "{node}");
        assert_eq!(r.service_file(node).as_deref(), Some(&*second), "{node}");
    }

    // Brought in, it starts on alpha; it cannot be removed meanwhile.
    r.wait("both hasvrds know the service", || {
        r.state("alpha").is_some() && r.state("beta").is_some()
    });
    r.cluster
        .service_op("alpha", ServiceOp::BringIn, SERVICE)
        .unwrap();
    r.wait("the service active on alpha", || {
        r.state("alpha").is_some_and(|s| s.starts_with("ACTIVE"))
    });
    let refused = r.hactl_refused("beta", &["service", "remove", SERVICE]);
    assert!(
        refused.contains(&format!("hactl service stop {SERVICE}")),
        "{refused}"
    );
    assert!(r.service_file("beta").is_some() && r.service_file("alpha").is_some());

    // Brought out, it still runs on alpha: still refused.
    r.cluster
        .service_op("alpha", ServiceOp::BringOut, SERVICE)
        .unwrap();
    r.wait("the service brought out on both nodes", || {
        ["alpha", "beta"]
            .iter()
            .all(|&n| r.state(n).is_some_and(|s| s.starts_with("OUT")))
    });
    let refused = r.hactl_refused("beta", &["service", "remove", SERVICE]);
    assert!(refused.contains("it is OUTACT on alpha"), "{refused}");

    // Stopped everywhere, it is removed on both nodes.
    r.cluster
        .service_op("beta", ServiceOp::Stop, SERVICE)
        .unwrap();
    r.wait("the service stopped on both nodes", || {
        ["alpha", "beta"]
            .iter()
            .all(|&n| r.state(n).as_deref() == Some("OUTSTB"))
    });
    r.hactl_ok("beta", &["service", "remove", SERVICE]);
    r.wait("the file gone on both nodes", || {
        r.service_file("alpha").is_none() && r.service_file("beta").is_none()
    });
    let list = r.hactl_ok("alpha", &["config", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with(DOC) && l.contains("removed")),
        "{list}"
    );
}

#[test]
fn a_node_away_takes_the_newer_version_and_a_cluster_config_change_restarts_both() {
    if !require_root() {
        return;
    }
    let r = Replicated::start("config_offline");
    let text = service_text(r.cluster.dir(), "2s");

    // beta down: a change needs it, or --force-local.
    r.stop_node("beta");
    r.wait("alpha sees beta down", || {
        r.cluster
            .try_status("alpha")
            .is_ok_and(|s| s.peers.iter().all(|p| p.state == State::Down))
    });
    let refused = r.put("alpha", DOC, &text, &[]);
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    assert!(refused.stderr.contains("beta is not up"), "{refused:?}");
    assert!(r.service_file("alpha").is_none());
    let forced = r.put("alpha", DOC, &text, &["--force-local"]);
    assert_eq!(forced.code(), Some(0), "{forced:?}");
    assert_eq!(r.service_file("alpha").as_deref(), Some(&*text));
    assert!(r.service_file("beta").is_none());

    // beta back: it takes the newer version.
    r.start_node("beta");
    r.wait("the file on beta", || {
        r.service_file("beta").as_deref() == Some(&text)
    });
    r.wait("beta's hasvrd lists the service", || {
        r.state("beta").is_some()
    });
    r.wait("both at one version", || {
        r.version("alpha", DOC) == r.version("beta", DOC)
    });

    // A new heartbeat interval: both hamonds restart in place to load it,
    // and both hasvrds too.
    let pids = [r.pid("alpha"), r.pid("beta")];
    let hasvrds = ["alpha", "beta"].map(|n| r.cluster.daemon_pid(n, "hasvrd"));
    assert!(hasvrds.iter().all(Option::is_some), "{hasvrds:?}");
    let incarnations: Vec<u32> = ["alpha", "beta"]
        .iter()
        .map(|n| r.cluster.try_status(n).unwrap().incarnation)
        .collect();
    let old = std::fs::read_to_string(r.config("alpha")).unwrap();
    let new = old.replace("interval = \"100ms\"", "interval = \"120ms\"");
    assert_ne!(
        new, old,
        "the harness's UDP interval changed: update this test"
    );
    let put = r.put("alpha", "cluster.toml", &new, &[]);
    assert_eq!(put.code(), Some(0), "{put:?}");
    r.wait("the new cluster.toml on beta", || {
        std::fs::read_to_string(r.config("beta")).is_ok_and(|t| t == new)
    });
    for (i, node) in ["alpha", "beta"].into_iter().enumerate() {
        r.wait(&format!("{node} restarted on the new config"), || {
            r.cluster
                .try_status(node)
                .is_ok_and(|s| s.incarnation > incarnations[i])
        });
        assert_eq!(r.cluster.log_count(node, RESTARTING), 1, "{node}");
        assert_eq!(r.pid(node), pids[i], "{node} restarted in place");
        r.wait(
            &format!("{node}'s hasvrd restarted on the new config"),
            || {
                r.cluster.log_count(node, HASVRD_RESTARTING) == 1
                    && r.cluster.services(node).is_ok()
            },
        );
        assert_eq!(
            r.cluster.daemon_pid(node, "hasvrd"),
            hasvrds[i],
            "{node}'s hasvrd restarted in place"
        );
    }
    r.wait("both up again with the same config", || {
        r.peer_up("alpha") && r.peer_up("beta")
    });
    assert_eq!(hash(&r, "alpha"), hash(&r, "beta"));

    // Changed again while beta is down: beta takes it when it returns,
    // and restarts on it.
    r.stop_node("beta");
    let newer = new.replace("interval = \"120ms\"", "interval = \"150ms\"");
    let put = r.put("alpha", "cluster.toml", &newer, &["--force-local"]);
    assert_eq!(put.code(), Some(0), "{put:?}");
    r.wait("alpha restarted on it", || {
        r.cluster.log_count("alpha", RESTARTING) == 2 && r.cluster.try_status("alpha").is_ok()
    });
    r.start_node("beta");
    r.wait("beta took it and restarted on it", || {
        r.cluster.log_count("beta", RESTARTING) == 2
            && std::fs::read_to_string(r.config("beta")).is_ok_and(|t| t == newer)
    });
    r.wait("both up again with the newer config", || {
        r.peer_up("alpha") && r.peer_up("beta")
    });
    assert_eq!(hash(&r, "alpha"), hash(&r, "beta"));
}

/// What a hamond logs when it restarts on a new cluster config.
const RESTARTING: &str = "restarting hamond to load it";
/// What a hasvrd logs when it does.
const HASVRD_RESTARTING: &str = "restarting hasvrd in place to load it";

/// `node`'s config hash as its status reports it.
#[track_caller]
fn hash(r: &Replicated, node: &str) -> String {
    r.cluster.try_status(node).unwrap().config_hash
}
