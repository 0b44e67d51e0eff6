//! What a status script's exit says about the service, in the two
//! conventions users have: OCF resource agents (`monitor`) and LSB init
//! scripts (`status`). A script that timed out or was killed by a signal
//! proves nothing, so it is always [`StatusVerdict::Failed`].

use super::{Outcome, Termination};

/// The service's state according to a status script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusVerdict {
    /// The service runs (OCF 0 or 8, LSB 0).
    Running,
    /// The service does not run (OCF 7, LSB 1, 2 or 3).
    NotRunning,
    /// The script could not tell: an error code, an unknown code, a timeout
    /// or a signal. The reason names the code (`OCF_ERR_PERM (exit 4)`).
    Failed(String),
}

/// The two exit-code conventions of status scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// OCF resource agent, action `monitor`: see [`ocf_monitor`].
    Ocf,
    /// LSB init script, action `status`: see [`lsb_status`].
    Lsb,
}

impl Convention {
    /// The verdict on `outcome` in this convention.
    pub fn verdict(self, outcome: &Outcome) -> StatusVerdict {
        match self {
            Convention::Ocf => ocf_monitor(outcome),
            Convention::Lsb => lsb_status(outcome),
        }
    }
}

/// The name and meaning of an OCF exit code.
pub fn ocf_code_name(code: i32) -> Option<(&'static str, &'static str)> {
    Some(match code {
        0 => ("OCF_SUCCESS", "running"),
        1 => ("OCF_ERR_GENERIC", "generic error"),
        2 => ("OCF_ERR_ARGS", "invalid arguments"),
        3 => ("OCF_ERR_UNIMPLEMENTED", "action not implemented"),
        4 => ("OCF_ERR_PERM", "insufficient permissions"),
        5 => ("OCF_ERR_INSTALLED", "program not installed"),
        6 => ("OCF_ERR_CONFIGURED", "program not configured"),
        7 => ("OCF_NOT_RUNNING", "not running"),
        8 => ("OCF_RUNNING_MASTER", "running as master"),
        9 => ("OCF_FAILED_MASTER", "failed as master"),
        _ => return None,
    })
}

/// The meaning of an LSB `status` exit code.
pub fn lsb_status_name(code: i32) -> Option<&'static str> {
    Some(match code {
        0 => "program is running",
        1 => "program is dead and a pid file exists",
        2 => "program is dead and a lock file exists",
        3 => "program is not running",
        4 => "program or service status is unknown",
        _ => return None,
    })
}

/// OCF `monitor`: 0 and 8 (running master) are `Running`, 7 is
/// `NotRunning`; 1 to 6 (`OCF_ERR_*`), 9 (`OCF_FAILED_MASTER`) and every
/// other code are `Failed`.
pub fn ocf_monitor(outcome: &Outcome) -> StatusVerdict {
    let code = match exit_code(outcome) {
        Ok(code) => code,
        Err(reason) => return StatusVerdict::Failed(reason),
    };
    match code {
        0 | 8 => StatusVerdict::Running,
        7 => StatusVerdict::NotRunning,
        _ => StatusVerdict::Failed(match ocf_code_name(code) {
            Some((name, meaning)) => format!("{name} (exit {code}): {meaning}"),
            None => format!("exit {code}: not an OCF monitor code"),
        }),
    }
}

/// LSB `status`: 0 is `Running`; 1 (dead, pid file left), 2 (dead, lock
/// file left) and 3 are `NotRunning` (the program is dead in all three, as
/// Pacemaker reads them too); 4 (unknown) and every other code are
/// `Failed`.
pub fn lsb_status(outcome: &Outcome) -> StatusVerdict {
    let code = match exit_code(outcome) {
        Ok(code) => code,
        Err(reason) => return StatusVerdict::Failed(reason),
    };
    match code {
        0 => StatusVerdict::Running,
        1..=3 => StatusVerdict::NotRunning,
        _ => StatusVerdict::Failed(match lsb_status_name(code) {
            Some(meaning) => format!("LSB status {code}: {meaning}"),
            None => format!("exit {code}: not an LSB status code"),
        }),
    }
}

fn exit_code(outcome: &Outcome) -> Result<i32, String> {
    match outcome.termination {
        Termination::Exited(code) => Ok(code),
        Termination::Signaled { .. } | Termination::TimedOut => Err(outcome.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn exited(code: i32) -> Outcome {
        Outcome {
            pid: 1,
            termination: Termination::Exited(code),
            duration: Duration::from_millis(5),
        }
    }

    #[test]
    fn ocf_codes() {
        assert_eq!(ocf_monitor(&exited(0)), StatusVerdict::Running);
        assert_eq!(ocf_monitor(&exited(8)), StatusVerdict::Running);
        assert_eq!(ocf_monitor(&exited(7)), StatusVerdict::NotRunning);
        for (code, name) in [
            (1, "OCF_ERR_GENERIC"),
            (2, "OCF_ERR_ARGS"),
            (3, "OCF_ERR_UNIMPLEMENTED"),
            (4, "OCF_ERR_PERM"),
            (5, "OCF_ERR_INSTALLED"),
            (6, "OCF_ERR_CONFIGURED"),
            (9, "OCF_FAILED_MASTER"),
        ] {
            match ocf_monitor(&exited(code)) {
                StatusVerdict::Failed(r) => assert!(r.starts_with(name), "{code}: {r}"),
                v => panic!("{code}: {v:?}"),
            }
        }
        assert!(
            matches!(ocf_monitor(&exited(42)), StatusVerdict::Failed(r) if r.contains("exit 42"))
        );
    }

    #[test]
    fn lsb_codes() {
        assert_eq!(lsb_status(&exited(0)), StatusVerdict::Running);
        for code in 1..=3 {
            assert_eq!(lsb_status(&exited(code)), StatusVerdict::NotRunning);
        }
        assert!(
            matches!(lsb_status(&exited(4)), StatusVerdict::Failed(r) if r.contains("unknown"))
        );
        assert!(matches!(lsb_status(&exited(7)), StatusVerdict::Failed(_)));
    }

    #[test]
    fn timeouts_and_signals_fail() {
        let mut o = exited(0);
        o.termination = Termination::TimedOut;
        assert!(matches!(ocf_monitor(&o), StatusVerdict::Failed(r) if r.contains("timed out")));
        assert!(matches!(lsb_status(&o), StatusVerdict::Failed(_)));
        o.termination = Termination::Signaled {
            signal: 9,
            core_dumped: false,
        };
        assert!(matches!(ocf_monitor(&o), StatusVerdict::Failed(r) if r.contains("SIGKILL")));
        assert!(matches!(
            Convention::Lsb.verdict(&o),
            StatusVerdict::Failed(_)
        ));
    }
}
