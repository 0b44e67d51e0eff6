//! A test power switch for namespaced nodes ([`PowerSwitch`]) and the fence
//! agent that drives it, so fencing can be tested end to end.
//!
//! Powering a node off kills every process in its network namespace
//! (SIGKILL, until none is left; an `ip -n` command that entered it for a
//! moment is not the node's and is left to end), flushes the addresses of every interface
//! but `lo`, and unmounts the mount points registered for it. The switch is
//! one shell script, `fence_netns`, written at test time, which follows the
//! fence-agents convention (`key=value` lines on stdin: `action=off|reboot|
//! on|status|monitor`, `plug=` or `port=`; exit 0 success, for `status` 0 on
//! and 2 off, 1 failure). The Rust side runs that same script, so the agent
//! hamond's fencer calls and [`PowerSwitch::power_off`] are one code path.
//!
//! A plug is a namespace name, or a name mapped to one with
//! [`PowerSwitch::connect`] (a line `PLUG NETNS [MOUNT...]` in `plugs`,
//! next to the script). `on` always fails: a powered-off test node comes
//! back only when the test starts its daemon again.

use crate::command::describe;
use crate::netns::Netns;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The agent script (POSIX sh).
const AGENT: &str = r#"#!/bin/sh
# fence_netns: fence agent (fence-agents convention) that powers off a
# namespaced test node: kills its processes, flushes its addresses,
# unmounts its registered mount points.
action=reboot
plug=
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        action=*) action=${line#action=} ;;
        plug=* | port=*) plug=${line#*=} ;;
    esac
done

# PLUG NETNS [MOUNT...] lines map a plug to a namespace and its mounts.
ns=$plug
mounts=
entry=$(awk -v p="$plug" '$1 == p || $2 == p { print; exit }' "$(dirname "$0")/plugs" 2>/dev/null)
if [ -n "$entry" ]; then
    set -- $entry
    ns=$2
    shift 2
    mounts="$*"
fi

need_plug() {
    if [ -z "$ns" ] || [ ! -e "/run/netns/$ns" ]; then
        echo "no such plug: '$plug'" >&2
        exit 1
    fi
}
# The namespace's processes, but `ip -n` commands that entered it for a
# moment (another run of this agent, a test's check): they are not the
# node's and end by themselves.
pids() {
    for p in $(ip netns pids "$ns"); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = ip ] || echo "$p"
    done
}
addrs() { ip -n "$ns" -o addr show scope global; }
is_off() { [ -z "$(pids)" ] && [ -z "$(addrs)" ]; }

power_off() {
    tries=0
    while [ -n "$(pids)" ]; do
        pids | xargs -r kill -9
        tries=$((tries + 1))
        if [ "$tries" -gt 250 ]; then
            echo "processes left in $ns: $(pids | tr '\n' ' ')" >&2
            exit 1
        fi
        sleep 0.02
    done
    for dev in $(ip -n "$ns" -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        [ "$dev" = lo ] || ip -n "$ns" addr flush dev "$dev" || exit 1
    done
    for m in $mounts; do
        if mountpoint -q "$m"; then
            umount "$m" || exit 1
        fi
    done
    is_off || { echo "$ns is not off" >&2; exit 1; }
    echo "$ns is off"
}

case "$action" in
    off | reboot) need_plug; power_off; exit 0 ;;
    status)
        need_plug
        if is_off; then echo "$ns: off"; exit 2; fi
        # What keeps it on, for a test that did not expect it.
        echo "$ns: on: processes: $(for p in $(pids); do printf '%s(%s) ' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)"; done)addresses: $(addrs | awk '{ print $2, $4 }' | tr '\n' ' ')"
        exit 0 ;;
    monitor) command -v ip > /dev/null || exit 1; exit 0 ;;
    on) echo "cannot power $ns on: the test restarts its daemons itself" >&2; exit 1 ;;
    *) echo "unknown action '$action'" >&2; exit 1 ;;
esac
"#;

/// What one run of the agent returned.
#[derive(Debug, Clone)]
pub struct AgentRun {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The switch: the agent script and its plug map, in a directory of the test.
#[derive(Debug)]
pub struct PowerSwitch {
    agent: PathBuf,
    plugs: PathBuf,
}

impl PowerSwitch {
    /// Writes `DIR/fence_netns` (mode 0755) and an empty `DIR/plugs`.
    #[track_caller]
    pub fn install(dir: &Path) -> PowerSwitch {
        // Through write_script: never "Text file busy" when a parallel
        // test forks while it is written.
        let body = AGENT
            .split_once('\n')
            .map_or(AGENT, |(_shebang, body)| body);
        let agent = PathBuf::from(crate::scratch::write_script(dir, "fence_netns", body));
        let plugs = dir.join("plugs");
        std::fs::write(&plugs, "").unwrap_or_else(|e| panic!("{}: {e}", plugs.display()));
        PowerSwitch { agent, plugs }
    }

    /// The agent program, for a `[[fence]]` `agent`.
    pub fn agent(&self) -> &Path {
        &self.agent
    }

    /// Maps `plug` (e.g. a node name) to `ns`; `mounts` are unmounted when
    /// it is powered off (paths without spaces).
    #[track_caller]
    pub fn connect(&self, plug: &str, ns: &Netns, mounts: &[&Path]) {
        let mut line = format!("{plug} {}", ns.name());
        for m in mounts {
            line.push(' ');
            line.push_str(&m.to_string_lossy());
        }
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.plugs)
            .unwrap_or_else(|e| panic!("{}: {e}", self.plugs.display()));
        writeln!(file, "{line}").unwrap_or_else(|e| panic!("{}: {e}", self.plugs.display()));
    }

    /// Runs the agent with `stdin` (key=value lines) and waits for it.
    #[track_caller]
    pub fn run(&self, stdin: &str) -> AgentRun {
        let mut cmd = Command::new(&self.agent);
        let what = describe(&cmd);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(stdin.as_bytes());
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("`{what}`: {e}"));
        AgentRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Powers the node in `ns` off; panics if the switch fails.
    #[track_caller]
    pub fn power_off(&self, ns: &Netns) {
        let r = self.run(&format!("action=off\nplug={}\n", ns.name()));
        assert_eq!(r.code, Some(0), "power off {}: {r:?}", ns.name());
    }

    /// Whether the node in `ns` is off: no process and no global address left.
    #[track_caller]
    pub fn is_off(&self, ns: &Netns) -> bool {
        let r = self.run(&format!("action=status\nplug={}\n", ns.name()));
        match r.code {
            Some(2) => true,
            Some(0) => false,
            _ => panic!("status of {}: {r:?}", ns.name()),
        }
    }
}
