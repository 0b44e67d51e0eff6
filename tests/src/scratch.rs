//! A per-test temporary directory for configs, keys, state and logs. It is
//! removed when the test passes and kept (its path printed) when the test
//! fails or `HA_KEEP_TMP` is set, so the daemon logs can be read.

use crate::unique;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory under the system temp dir, unique to this test.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates `$TMPDIR/hatests-<tag>-<pid>-<n>`.
    #[track_caller]
    pub fn new(tag: &str) -> ScratchDir {
        let path = std::env::temp_dir().join(format!(
            "hatests-{}-{}-{}",
            unique::sanitize(tag, 40),
            unique::pid(),
            unique::next()
        ));
        if let Err(e) = std::fs::create_dir_all(&path) {
            panic!("cannot create {}: {e}", path.display());
        }
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("HA_KEEP_TMP").is_some() {
            let _ = writeln!(
                std::io::stderr(),
                "hatests: kept {} (logs, config, state)",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The body of an LSB-style `start|stop|status` script whose application
/// is one background `command`, its pid kept in `pidfile` (a shell word,
/// expanded by the script): `start` runs it unless it runs (after the
/// shell line `on_start`, if any), `stop` kills it while it runs (after
/// `on_stop`, if any) and removes the pid file, `status` answers 0 running,
/// 3 stopped. `prelude` (shell lines: variables, functions) comes first.
pub fn pidfile_script(
    prelude: &str,
    pidfile: &str,
    command: &str,
    on_start: &str,
    on_stop: &str,
) -> String {
    let hook = |line: &str, indent: &str| {
        if line.is_empty() {
            String::new()
        } else {
            format!("{indent}{line}\n")
        }
    };
    let (on_start, on_stop) = (hook(on_start, "    "), hook(on_stop, "        "));
    let prelude = hook(prelude, "");
    format!(
        r#"{prelude}pidfile="{pidfile}"
running() {{ [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }}
case "$1" in
start)
    running && exit 0
{on_start}    {command} </dev/null >/dev/null 2>&1 &
    echo $! > "$pidfile"
    exit 0 ;;
stop)
    if running; then
{on_stop}        kill "$(cat "$pidfile")"
    fi
    rm -f "$pidfile"
    exit 0 ;;
status)
    running && exit 0
    exit 3 ;;
esac
exit 2"#
    )
}

/// The service file of a service `name` run by the `start|stop|status`
/// script `script` on `nodes` (the active node first, then its standbys):
/// 20 s start and 15 s stop timeouts, checked every second (one failed
/// check fails it), started at boot; `extra` lines (e.g. `restart_times =
/// 0`, `group = 1`) follow.
pub fn script_service(name: &str, script: &str, nodes: &[&str], extra: &str) -> String {
    let argv = |action: &str| format!("[\"{script}\", \"{action}\"]");
    let standby: Vec<String> = nodes[1..].iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"name = "{name}"
active = "{}"
standby = [{}]
start = {}
stop = {}
status = {}
start_timeout = "20s"
stop_timeout = "15s"
check_interval = "1s"
check_tko = 1
onstart = true
{extra}
"#,
        nodes[0],
        standby.join(", "),
        argv("start"),
        argv("stop"),
        argv("status")
    )
}

/// Writes an executable bash script `name` into `dir`; returns its path.
///
/// The script file is written by a child process (`install`, copying a draft
/// written here), never through a descriptor of this process: the tests run
/// in parallel threads, and another thread forking a script at that moment
/// would inherit such a descriptor until its child reaches execve. While
/// that copy is open for writing the kernel refuses to execute the file
/// (ETXTBSY, "Text file busy"), which failed other tests' runs at random.
pub fn write_script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    let draft = dir.join(format!(".{name}.draft"));
    std::fs::write(&draft, format!("#!/bin/bash\n{body}\n")).unwrap();
    let status = std::process::Command::new("install")
        .args(["-m", "0755"])
        .arg(&draft)
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "install {}: {status}", path.display());
    path.to_str().unwrap().to_owned()
}
