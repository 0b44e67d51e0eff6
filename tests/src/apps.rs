//! Real applications and agents for the service tests of issue 5, on the
//! two-node [`WebService`] fixture (real hamond and hasvrd on namespaced
//! nodes, a client in its own namespace on the public LAN):
//!
//! * [`Mariadb`]: Debian's MariaDB server as the service's application,
//!   its data directory on the shared ext4 volume, started, stopped and
//!   probed by the test's script (the conventions of
//!   `etc/templates/mysql.toml`), watched by the bundled `mysql` agent,
//!   and queried by the `mariadb` client in the client's namespace through
//!   the floating IP;
//! * the bundled agents and the agent API under test ([`agent_bin`],
//!   [`haapi`], `libhaapi.so`), built once per test process like the
//!   daemons ([`crate::bins`]);
//! * the manual's C and shell agent templates (`agents/templates/`) made
//!   ready to run as a service's `agent` ([`Template`]);
//! * small helpers the agent tests share: the service file's `agent` key
//!   ([`agent_key`]), the agents' timing ([`AGENT_CHECK`],
//!   [`AGENT_FLAGS`]), finding a process of a node ([`pid_in`]), log and
//!   state waits ([`wait_log_since`], [`keeps`]).
//!
//! Agents check the application on the node itself (`127.0.0.1`): the
//! floating IP is chosen by the fixture once the cluster runs, after the
//! service file is written, and it is on the same node anyway.

use crate::bins;
use crate::command::{describe, must, run_for};
use crate::netns::Netns;
use crate::publan::NIC;
use crate::scratch::{ScratchDir, write_script};
use crate::web::{Commands, SERVICE, WAIT, WebService, WebSpec};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The service's `check_interval` and `check_tko` with an agent: the
/// status probe every 2 s, and hasvrd expects an `ok` at least every 6 s.
pub const AGENT_CHECK: (Duration, u32) = (Duration::from_secs(2), 3);
/// The bundled agents' timing flags: a check every second, killed after
/// 2 s, `err` after 2 failed checks in a row (well inside
/// [`AGENT_CHECK`]'s 6 s).
pub const AGENT_FLAGS: [&str; 6] = ["--interval", "1s", "--timeout", "2s", "--failures", "2"];
/// Debian's MariaDB server (package `mariadb-server`).
pub const MARIADBD: &str = "/usr/sbin/mariadbd";
/// The port MariaDB listens on in each node's namespace.
pub const MARIADB_PORT: u16 = 3306;
/// What hasvrd logs when an agent's report, silence or exit fails the
/// service.
pub const AGENT_FAILURE: &str = "service www: agent failure:";
/// What hasvrd logs when it starts watching an agent.
pub const AGENT_OPENED: &str = "service www: agent opened";
/// The database user of the agent and the client, and its password (in
/// option files of mode 0600, never on a command line).
const DB_USER: &str = "ha";
const DB_PASSWORD: &str = "ha-test-password";

/// The directory of the binaries under test, with the bundled agents,
/// `haapi` and `libhaapi.so` built there once per test process (`cargo
/// build -p haagents -p haapi`, same profile and target directory as the
/// daemons), unless `HA_BIN_DIR` names installed binaries or `HA_NO_BUILD`
/// is set.
#[track_caller]
fn tools_dir() -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = bins::bin_dir();
        if std::env::var_os("HA_BIN_DIR").is_some() || std::env::var_os("HA_NO_BUILD").is_some() {
            return Ok(dir);
        }
        bins::build(&dir, &["haagents", "haapi"], &["--bins", "--lib"]).map(|()| dir)
    });
    match built {
        Ok(dir) => dir.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A file the build made, which must exist.
#[track_caller]
fn built(name: &str) -> PathBuf {
    let path = tools_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A bundled agent (`www`, `mysql`, ... of `agents/`).
#[track_caller]
pub fn agent_bin(name: &str) -> PathBuf {
    built(name)
}

/// The `haapi` shell tool.
#[track_caller]
pub fn haapi() -> PathBuf {
    built("haapi")
}

/// The service file's `agent` key for this argument vector.
pub fn agent_key(argv: &[String]) -> String {
    format!(
        "agent = {}\n",
        serde_json::to_string(argv).expect("strings serialize")
    )
}

/// A bundled agent's argument vector: its path, `args`, then
/// [`AGENT_FLAGS`].
#[track_caller]
pub fn bundled_agent(name: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![agent_bin(name).to_string_lossy().into_owned()];
    argv.extend(args.iter().chain(&AGENT_FLAGS).map(|a| (*a).to_owned()));
    argv
}

/// The pid of a process in `ns` (not an `env` about to exec it) with an
/// argument ending in `needle` (a program or script name).
pub fn pid_in(ns: &Netns, needle: &str) -> Option<i32> {
    ns.pids().into_iter().find(|pid| {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        comm.trim() != "env"
            && cmdline
                .split(|b| *b == 0)
                .any(|arg| arg.ends_with(needle.as_bytes()))
    })
}

/// Waits (at most [`WAIT`]) until `node`'s log has `needle` after byte
/// `offset` (see [`crate::TestCluster::log_len`]), checking the floating IP
/// and the volume on every poll.
#[track_caller]
pub fn wait_log_since(w: &WebService, node: &str, offset: u64, needle: &str) {
    let end = Instant::now() + WAIT;
    while !w.cluster().log_since(node, offset).contains(needle) {
        w.assert_never_twice();
        assert!(
            Instant::now() < end,
            "{node}'s log has no `{needle}` within {WAIT:?}\n{}",
            w.cluster().log_tails(60)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// For `span`, checks on every poll (4 a second) that `holds` holds and
/// that the floating IP and the volume are on at most one node.
#[track_caller]
pub fn keeps(w: &WebService, span: Duration, what: &str, holds: impl Fn() -> Result<(), String>) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        w.assert_never_twice();
        if let Err(e) = holds() {
            panic!("{what}: {e}\n{}", w.cluster().log_tails(60));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One of the SureHA manual's agent templates, ready to run as the `www`
/// service's agent: its home directory (`$HAHOME`, the templates'
/// CLUSTERHOME) with `tmp/` for the file it watches and, for the shell
/// template, `bin/` with the `haapi` links it calls.
pub struct Template {
    argv: Vec<String>,
    flag: PathBuf,
    process: &'static str,
}

impl Template {
    /// The C template (`agents/templates/ha_ag_tmp.c`), compiled with gcc
    /// against `api/include` and `libhaapi.so` (found at run time through
    /// an rpath to a directory of `dir` that has it under its SONAME):
    /// `ha_ag_tmp.x www 2` (a call every second), watching
    /// `$HAHOME/tmp/agent`.
    #[track_caller]
    pub fn c(dir: &Path) -> Template {
        let lib = dir.join("lib");
        std::fs::create_dir_all(&lib).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
        let so = built("libhaapi.so");
        for name in ["libhaapi.so", "libhaapi.so.0"] {
            let link = lib.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&so, &link)
                .unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        }
        let program = dir.join("ha_ag_tmp.x");
        let mut gcc = Command::new("gcc");
        gcc.arg("-I")
            .arg(bins::workspace_root().join("api/include"))
            .arg(bins::workspace_root().join("agents/templates/ha_ag_tmp.c"))
            .arg("-o")
            .arg(&program)
            .arg(format!("-L{}", lib.display()))
            .arg("-lhaapi")
            .arg(format!("-Wl,-rpath,{}", lib.display()));
        match run_for(&mut gcc, Duration::from_secs(120)) {
            Ok(f) if f.status.success() => {}
            other => panic!("`{}`: {other:?}", describe(&gcc)),
        }
        let home = Template::home(dir);
        Template {
            argv: Template::with_home(&home, &[&program.to_string_lossy(), SERVICE, "2"]),
            flag: home.join("tmp/agent"),
            process: "ha_ag_tmp.x",
        }
    }

    /// The shell template (`agents/templates/ha_ag_tmp.sh`), run unchanged
    /// by `sh` with the `haapi links` in `$HAHOME/bin`: `ha_ag_tmp.sh www
    /// 1` (a call every second), watching `$HAHOME/tmp/agent.www`.
    #[track_caller]
    pub fn shell(dir: &Path) -> Template {
        let home = Template::home(dir);
        let bin = home.join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        must(Command::new(haapi()).arg("links").arg(&bin));
        let script = bins::workspace_root().join("agents/templates/ha_ag_tmp.sh");
        Template {
            argv: Template::with_home(&home, &["sh", &script.to_string_lossy(), SERVICE, "1"]),
            flag: home.join(format!("tmp/agent.{SERVICE}")),
            process: "ha_ag_tmp.sh",
        }
    }

    /// `$HAHOME` in `dir`, with its `tmp/`.
    #[track_caller]
    fn home(dir: &Path) -> PathBuf {
        let home = dir.join("hahome");
        let tmp = home.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
        home
    }

    /// `env HAHOME=home ARGS...`: hasvrd gives the agent its own
    /// environment, HA_SERVICE and HA_AGENT_SOCKET.
    fn with_home(home: &Path, args: &[&str]) -> Vec<String> {
        let mut argv = vec![
            "/usr/bin/env".to_owned(),
            format!("HAHOME={}", home.display()),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        argv
    }

    /// The agent's argument vector (for [`agent_key`]).
    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// Creates or removes the watched file: the template heartbeats
    /// (apiok) while it exists and reports an error (apierr) while it does
    /// not.
    #[track_caller]
    pub fn set_healthy(&self, healthy: bool) {
        let done = if healthy {
            std::fs::write(&self.flag, b"")
        } else {
            std::fs::remove_file(&self.flag)
        };
        done.unwrap_or_else(|e| panic!("{}: {e}", self.flag.display()));
    }

    /// The running agent's pid on the node of `ns`, if any.
    pub fn pid(&self, ns: &Netns) -> Option<i32> {
        pid_in(ns, self.process)
    }
}

/// The MariaDB service's script: `mariadb start|stop|status`. Each node
/// keeps its pid file, socket and logs in `DIR/mariadb-ADDR/` (picked by
/// the node's address on the public LAN, as the fixture's nginx does), its
/// temporary files too; the data directory is `MOUNT/db` on the shared
/// volume, created (owned by mysql, `mariadb-install-db` into `db.new`,
/// then renamed) on the first start. mariadbd runs in the
/// foreground, in the background of the script, so it stays in the
/// script's process group and hasvrd tracks it; `--report-host` is the
/// node's address (what `SELECT @@report_host` answers); `--init-file`
/// (re)creates the agent's and the client's user. `start` returns once
/// the server answers a ping on its socket (15 s at most), `stop` once the
/// server is gone (SIGTERM, and SIGCONT for a hung one; SIGKILL after
/// 10 s), `status` follows LSB (0 running, 3 stopped) from the pid alone:
/// a hung server still runs, only the agent sees it hang.
fn mariadb_script(dir: &Path, mount: &Path) -> String {
    let (d, m) = (dir.display(), mount.display());
    let body = format!(
        r#"me=$(ip -o -4 addr show dev {NIC} scope global | awk 'NR == 1 {{ split($4, a, "/"); print a[1] }}')
d="{d}/mariadb-$me"
data="{m}/db"
pidfile="$d/mariadbd.pid"
alive() {{ s=$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }}
running() {{ [ -s "$pidfile" ] && alive "$(cat "$pidfile")"; }}
case "$1" in
start)
    running && exit 0
    mkdir -p "$d/tmp" && chown mysql:mysql "$d" "$d/tmp" || exit 1
    if [ ! -d "$data/mysql" ]; then
        # Installed beside, then renamed: a failed install leaves no half
        # data directory for the next start to take as done.
        rm -rf "$data.new" && mkdir -p "$data.new" && chown mysql:mysql "$data.new" || exit 1
        if ! mariadb-install-db --defaults-file={d}/server.cnf --user=mysql \
            --datadir="$data.new" --tmpdir="$d/tmp" --skip-test-db \
            --auth-root-authentication-method=socket >"$d/install.log" 2>&1; then
            echo "mariadb-install-db failed:" >&2
            grep -E "ERROR|Error|error" "$d/install.log" | head -n 5 >&2
            tail -n 20 "$d/install.log" >&2
            rm -rf "$data.new"
            exit 1
        fi
        rm -rf "$data" && mv "$data.new" "$data" || exit 1
    fi
    rm -f "$pidfile"
    {MARIADBD} --defaults-file={d}/server.cnf --user=mysql --datadir="$data" \
        --tmpdir="$d/tmp" \
        --socket="$d/mysqld.sock" --pid-file="$pidfile" --log-error="$d/error.log" \
        --report-host="$me" --init-file={d}/init.sql \
        </dev/null >/dev/null 2>>"$d/stderr.log" &
    pid=$!
    for _ in $(seq 150); do
        if [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ] &&
            mariadb-admin --no-defaults --user=root --socket="$d/mysqld.sock" \
                --connect-timeout=2 ping >/dev/null 2>&1; then
            exit 0
        fi
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    echo "mariadbd did not start:" >&2
    tail -n 20 "$d/stderr.log" "$d/error.log" >&2
    exit 1 ;;
stop)
    if running; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        kill -CONT "$pid"
        for _ in $(seq 100); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -KILL "$pid"
    fi
    rm -f "$pidfile"
    exit 0 ;;
status)
    running && exit 0
    exit 3 ;;
esac
exit 2"#
    );
    write_script(dir, "mariadb", &body)
}

/// The server's options: small InnoDB files (the volume has 64 MiB), no
/// name resolution (the client has no DNS), every address of the node's
/// namespace.
fn server_cnf() -> String {
    format!(
        "[mariadbd]\nport = {MARIADB_PORT}\nbind-address = 0.0.0.0\nskip-name-resolve\n\
         innodb_log_file_size = 4M\ninnodb_data_file_path = ibdata1:10M:autoextend\n\
         innodb_buffer_pool_size = 16M\n"
    )
}

/// Writes `text` to `path` with `mode`.
#[track_caller]
fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The `www` service as a MariaDB database: the [`WebService`] fixture
/// (fencing by the power switch, a shared volume) with [`mariadb_script`]
/// as its start, stop and status, and the bundled `mysql` agent running
/// `SELECT 1` on the node every second. The client asks through the
/// floating IP as user `ha`. Dropping it tears everything down.
pub struct Mariadb {
    // Dropped first: the daemons and the server, the volume.
    web: WebService,
    client_cnf: PathBuf,
    dir: ScratchDir,
}

impl Mariadb {
    /// Starts the cluster with the database service (`restart_times`
    /// local restarts before a failover); returns without waiting for it
    /// to run.
    #[track_caller]
    pub fn start(test: &str, restart_times: u32) -> Mariadb {
        for program in [MARIADBD, "/usr/bin/mariadb", "/usr/bin/mariadb-install-db"] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install Debian's mariadb-server and mariadb-client \
                 (scripts/install-deps)"
            );
        }
        let dir = ScratchDir::new(&format!("{test}-db"));
        // mysql reaches its per-node directories inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
        let mount = dir.join("volume");
        write_mode(&dir.join("server.cnf"), &server_cnf(), 0o644);
        write_mode(
            &dir.join("init.sql"),
            &format!(
                "CREATE USER IF NOT EXISTS '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}';\n\
                 GRANT ALL ON *.* TO '{DB_USER}'@'%';\n"
            ),
            0o644,
        );
        let client_cnf = dir.join("client.cnf");
        write_mode(
            &client_cnf,
            &format!("[client]\nuser = {DB_USER}\npassword = {DB_PASSWORD}\n"),
            0o600,
        );
        let script = mariadb_script(dir.path(), &mount);
        let cnf = client_cnf.to_string_lossy();
        let agent = bundled_agent(
            "mysql",
            &[
                "--defaults-file",
                &cnf,
                "--host",
                "127.0.0.1",
                "--port",
                &MARIADB_PORT.to_string(),
            ],
        );
        let web = WebService::start_with(
            test,
            WebSpec {
                fencing: true,
                volume: true,
                commands: Some(Commands::script(&script)),
                mount_point: Some(mount),
                check: Some(AGENT_CHECK),
                restart_times: Some(restart_times),
                service_extra: agent_key(&agent),
                ..WebSpec::default()
            },
        );
        Mariadb {
            web,
            client_cnf,
            dir,
        }
    }

    /// The fixture: cluster, public LAN, power switch, volume.
    pub fn web(&self) -> &WebService {
        &self.web
    }

    /// Runs `sql` with the `mariadb` client in the client's namespace,
    /// through the floating IP (3 s to connect, 10 s in all): its output
    /// in batch mode without column names (tab-separated rows), or why it
    /// failed.
    pub fn sql(&self, sql: &str) -> Result<String, String> {
        let mut cmd = self.web.lan().client().command("mariadb");
        cmd.arg(format!("--defaults-file={}", self.client_cnf.display()))
            .args(["--batch", "--skip-column-names", "--connect-timeout=3"])
            .arg(format!("--host={}", self.web.fip()))
            .arg(format!("--port={MARIADB_PORT}"))
            .arg("--execute")
            .arg(sql);
        let out = run_for(&mut cmd, Duration::from_secs(10))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!("{}: {}", out.status, out.stderr.trim()))
        }
    }

    /// [`Mariadb::sql`], panicking with the log tails if it fails.
    #[track_caller]
    pub fn must_sql(&self, sql: &str) -> String {
        self.sql(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}\n{}", self.web.cluster().log_tails(40)))
    }

    /// Waits (at most [`WAIT`]) until the server behind the floating IP is
    /// `node`'s (`@@report_host`), checking the floating IP and the volume
    /// on every poll; then the volume must be mounted there alone.
    #[track_caller]
    pub fn wait_served_by(&self, node: &str) {
        let want = self.web.addr(node);
        let end = Instant::now() + WAIT;
        let mut last = String::from("no answer yet");
        while Instant::now() < end {
            self.web.assert_never_twice();
            match self.sql("SELECT @@report_host") {
                Ok(host) if host.trim() == want => {
                    self.web.assert_volume_on(node);
                    return;
                }
                Ok(host) => last = format!("answered by {host:?}"),
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "MariaDB on {node} ({want}) did not answer through the floating IP within \
             {WAIT:?}; last: {last}\n{}",
            self.web.cluster().log_tails(60)
        );
    }

    /// The pid of `node`'s mariadbd (from its pid file), if it runs.
    pub fn server_pid(&self, node: &str) -> Option<i32> {
        let file = self
            .dir
            .join(format!("mariadb-{}", self.web.addr(node)))
            .join("mariadbd.pid");
        let pid: i32 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }
}
