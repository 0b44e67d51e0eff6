//! Who may act through a local unix socket: root, or a member of one
//! configured group. Shared by hamond's control socket (every request) and
//! hasvrd's agent socket (the `cmd` requests).
//!
//! The caller reads the peer's credentials with SO_PEERCRED (never from the
//! request) and passes them in as a [`PeerCred`]; membership counts the
//! peer's primary group and its supplementary groups, which SO_PEERCRED does
//! not carry and which are read from `/proc/PID/status` of the connecting
//! process. The credentials are those of the process at `connect` time.

/// The credentials of a socket peer, as SO_PEERCRED gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    /// The connecting process, when the kernel names it.
    pub pid: Option<i32>,
}

impl PeerCred {
    /// Whether the peer runs as root.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Whether the peer is root, or a member of `group` (primary group or
    /// supplementary group). With no group configured, only root is.
    pub fn root_or_member(&self, group: Option<u32>) -> bool {
        self.is_root() || group.is_some_and(|g| self.member_of(g))
    }

    /// Whether `group` is the peer's primary group or one of its
    /// supplementary groups (read from `/proc/PID/status`; none when the
    /// kernel gave no pid or the process is gone).
    pub fn member_of(&self, group: u32) -> bool {
        self.gid == group
            || self
                .pid
                .is_some_and(|pid| supplementary_groups(pid).contains(&group))
    }
}

/// The supplementary groups of a process (`Groups:` of
/// `/proc/PID/status`); empty if it cannot be read.
pub fn supplementary_groups(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    groups_of_status(&status)
}

/// The `Groups:` line of a `/proc/PID/status` text.
fn groups_of_status(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, pid: Option<i32>) -> PeerCred {
        PeerCred { uid, gid, pid }
    }

    #[test]
    fn root_is_always_allowed() {
        assert!(peer(0, 0, None).root_or_member(None));
        assert!(peer(0, 5, None).root_or_member(Some(77)));
    }

    #[test]
    fn others_need_the_group() {
        assert!(!peer(1000, 1000, None).root_or_member(None));
        assert!(!peer(1000, 1000, None).root_or_member(Some(77)));
        assert!(peer(1000, 77, None).root_or_member(Some(77)));
    }

    #[test]
    fn supplementary_groups_of_this_process() {
        let me = peer(1000, u32::MAX, Some(std::process::id() as i32));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        for g in groups_of_status(&status) {
            assert!(me.member_of(g), "group {g}");
        }
        assert!(
            !peer(1000, 1, Some(i32::MAX)).member_of(2),
            "no such process"
        );
    }

    #[test]
    fn groups_line_is_parsed() {
        let status = "Name:\tsh\nUid:\t0\t0\t0\t0\nGroups:\t4 24 27 1000 \nNgid:\t0\n";
        assert_eq!(groups_of_status(status), [4, 24, 27, 1000]);
        assert_eq!(groups_of_status("Groups:\n"), Vec::<u32>::new());
        assert_eq!(groups_of_status("Name: x\n"), Vec::<u32>::new());
    }
}
