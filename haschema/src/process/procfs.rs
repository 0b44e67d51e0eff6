//! The little of `/proc` that hasvrd's process tracking and volume users,
//! and the daemons' mutual supervision, need: the pids of all processes and
//! the fields of `/proc/<pid>/stat` they read.
//!
//! A process may exit at any moment while /proc is walked: a pid whose
//! files are gone is simply skipped.

use std::fs;

/// Every pid listed in `/proc` (processes, not threads), in no particular
/// order; none when /proc cannot be read.
pub fn pids() -> impl Iterator<Item = i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
}

/// The fields of `/proc/<pid>/stat` that the daemons use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// State letter: `R`, `S`, `D` (uninterruptible I/O), `T`, `Z`, ...
    pub state: char,
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Start time in clock ticks since boot: with the pid, the process's
    /// identity.
    pub start_time: u64,
}

impl Stat {
    /// Exited but not reaped (or being reaped): no process any more.
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `pid (comm) state ppid pgrp ... starttime ...`. The command name
/// may hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(s: &str) -> Option<Stat> {
    let mut f = s[s.rfind(')')? + 1..].split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    // starttime is field 22; pgrp, the last one read, is field 5.
    let start_time = f.nth(22 - 5 - 1)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgid,
        start_time,
    })
}

/// `/proc/<pid>/stat`, if the process (or its zombie) is still there.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line with these first fields and the rest of a real one.
    fn line(head: &str) -> String {
        format!("{head} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10")
    }

    #[test]
    fn fields_after_an_odd_comm() {
        let st = parse_stat(&line("4242 (my (odd) name) S 1 4242 4242")).unwrap();
        assert_eq!((st.state, st.start_time), ('S', 987654));
        let st = parse_stat(&line("1234 (a) b (c)) Z 1 1234 1234")).unwrap();
        assert_eq!((st.ppid, st.pgid, st.is_zombie()), (1, 1234, true));
        let st = parse_stat(&line("77 (sleep) S 70 70 70")).unwrap();
        assert_eq!((st.ppid, st.pgid, st.is_zombie()), (70, 70, false));
        // Cut short (no start time) or no command name at all.
        assert_eq!(parse_stat("1 (x) Z 0"), None);
        assert_eq!(parse_stat("1 x Z 0 1 1"), None);
    }

    #[test]
    fn lists_and_reads_this_process() {
        let me = std::process::id() as i32;
        assert!(pids().any(|p| p == me));
        let st = stat(me).unwrap();
        assert_eq!(st.ppid, nix::unistd::getppid().as_raw());
        assert_eq!(st.pgid, nix::unistd::getpgrp().as_raw());
        assert!(!st.is_zombie());
        assert_eq!(stat(me).unwrap().start_time, st.start_time);
    }
}
