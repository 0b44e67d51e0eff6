//! Local accounts for tests of access control: a temporary group that is
//! removed on drop ([`TempGroup`]), and running a program as another user
//! with chosen groups and capabilities ([`RunAs`], through `setpriv`).

use crate::command::{describe, run_for};
use crate::unique;
use std::ffi::OsStr;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long `groupadd`/`groupdel` are retried while another one (maybe
/// another test's) holds the lock on /etc/group.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// A system group made for one test, deleted when dropped. Create it before
/// the daemons that look it up, and drop it after them.
#[derive(Debug)]
pub struct TempGroup {
    name: String,
    gid: u32,
}

impl TempGroup {
    /// Creates the group `hat<tag>_<pid>_<n>` (at most 32 characters).
    #[track_caller]
    pub fn new(tag: &str) -> TempGroup {
        let tag = unique::sanitize(&tag.to_ascii_lowercase(), 12);
        let name = format!("hat{tag}_{}_{}", unique::pid(), unique::next());
        if let Err(e) = retry_locked(Command::new("groupadd").arg("--system").arg(&name)) {
            panic!("cannot create group {name}: {e}");
        }
        let gid = match nix::unistd::Group::from_name(&name) {
            Ok(Some(g)) => g.gid.as_raw(),
            other => panic!("group {name} created but not found: {other:?}"),
        };
        TempGroup { name, gid }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn gid(&self) -> u32 {
        self.gid
    }
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        if let Err(e) = retry_locked(Command::new("groupdel").arg(&self.name)) {
            eprintln!("hatests: cannot delete group {}: {e}", self.name);
        }
    }
}

/// Runs `cmd` until it succeeds, retrying (every 100 ms, for 10 s) while it
/// fails, as `groupadd` does when /etc/group is locked by another.
fn retry_locked(cmd: &mut Command) -> Result<(), String> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let f = run_for(cmd, LOCK_WAIT)?;
        if f.status.success() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "`{}` failed ({}): {}",
                describe(cmd),
                f.status,
                f.stderr.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Who to run a program as: user, primary group, supplementary groups and
/// ambient capabilities, applied by `setpriv` (util-linux) before it execs
/// the program. Real, effective and saved ids are all set.
#[derive(Clone, Debug)]
pub struct RunAs {
    user: String,
    group: String,
    groups: Vec<u32>,
    caps: Vec<String>,
}

impl RunAs {
    /// `nobody`, group `nogroup`, no supplementary group, no capability.
    pub fn nobody() -> RunAs {
        RunAs {
            user: "nobody".into(),
            group: "nogroup".into(),
            groups: Vec::new(),
            caps: Vec::new(),
        }
    }

    /// With this primary group (name or number).
    pub fn primary_group(mut self, group: impl Into<String>) -> RunAs {
        self.group = group.into();
        self
    }

    /// With this supplementary group too.
    pub fn supplementary_group(mut self, gid: u32) -> RunAs {
        self.groups.push(gid);
        self
    }

    /// With this capability (e.g. `dac_override`) kept across the exec, as
    /// an ambient capability.
    pub fn ambient_cap(mut self, cap: impl Into<String>) -> RunAs {
        self.caps.push(cap.into());
        self
    }

    /// `setpriv ... -- program`; add the program's arguments to it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.user))
            .arg(format!("--regid={}", self.group));
        if self.groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            let list: Vec<String> = self.groups.iter().map(u32::to_string).collect();
            cmd.arg(format!("--groups={}", list.join(",")));
        }
        if !self.caps.is_empty() {
            let caps: Vec<String> = self.caps.iter().map(|c| format!("+{c}")).collect();
            let caps = caps.join(",");
            cmd.arg(format!("--inh-caps={caps}"))
                .arg(format!("--ambient-caps={caps}"));
        }
        cmd.arg("--").arg(program);
        cmd
    }
}
