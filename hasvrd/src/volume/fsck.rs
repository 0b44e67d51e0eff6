//! The file system check before a mount: which checker runs for which file
//! system, and what its exit code means.
//!
//! | fstype | checker | convention |
//! |---|---|---|
//! | ext2, ext3, ext4 | `fsck.<type> -p` (e2fsck preen) | fsck(8) bits |
//! | xfs | `xfs_repair -n` (check only) | xfs_repair |
//! | btrfs | `btrfs check --readonly` | 0 clean, else damaged |
//! | jfs | `fsck.jfs -p` | fsck(8) bits |
//! | f2fs | `fsck.f2fs -a` | fsck(8) bits |
//! | anything else | `fsck -a -t <type>` | fsck(8) bits |
//!
//! fsck(8) exit bits: 1 errors corrected, 2 reboot advised (only meaningful
//! for a mounted root file system, never the case here), 4 errors left
//! uncorrected, 8 operational error, 16 usage error, 32 cancelled, 128
//! shared-library error. 0 to 3 mount; 4 and above refuse the mount: the
//! damage is not spread by writing to it, and the operator repairs it by
//! hand.
//!
//! The checker runs through [`crate::script::run`], in the service's
//! tracker, with a timeout; its output goes to the log, prefixed
//! `<service> fsck <device>:`.

use super::Error;
use crate::script::{self, ScriptSpec, Termination};
use crate::track::Tracker;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where checkers are looked for (they are run by absolute path).
const PROGRAM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// How a checker's exit code reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// fsck(8)'s bits.
    Fsck,
    /// `xfs_repair -n`: 0 clean, 1 corruption found, 2 dirty log.
    XfsRepair,
    /// `btrfs check`: 0 clean, anything else damaged or unreadable.
    BtrfsCheck,
}

/// What to run for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Program (absolute path) and arguments.
    pub argv: Vec<String>,
    pub convention: Convention,
}

/// How a passed check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Clean,
    /// Errors were found and corrected (fsck bit 1; bit 2 too).
    Corrected,
    /// xfs: the log is dirty; mounting replays it.
    DirtyLog,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Clean => "clean",
            Verdict::Corrected => "errors corrected",
            Verdict::DirtyLog => "dirty log, replayed by the mount",
        })
    }
}

/// A check that let the mount go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckReport {
    /// What ran.
    pub argv: Vec<String>,
    pub exit_code: i32,
    pub verdict: Verdict,
    pub duration: Duration,
}

/// A check that refuses the mount, before it is made into an [`Error`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Errors found and left (fsck bit 4, xfs_repair -n 1).
    Uncorrected(String),
    /// The check could not be done (fsck bits 8 and up, other codes).
    Failed(String),
}

/// The package that brings the checker of `fstype` on Debian.
pub fn package(fstype: &str) -> &'static str {
    match fstype {
        "ext2" | "ext3" | "ext4" => "e2fsprogs",
        "xfs" => "xfsprogs",
        "btrfs" => "btrfs-progs",
        "jfs" => "jfsutils",
        "f2fs" => "f2fs-tools",
        _ => "util-linux",
    }
}

/// How the operator repairs `fstype` on `device` by hand.
pub fn repair_hint(fstype: &str, device: &Path) -> String {
    let d = device.display();
    match fstype {
        "ext2" | "ext3" | "ext4" => format!("`e2fsck -f {d}` (answer its questions)"),
        "xfs" => format!("`xfs_repair {d}` (mount and unmount it first if its log is dirty)"),
        "btrfs" => format!(
            "`btrfs check {d}`, then `btrfs rescue` or `btrfs check --repair` as its \
             documentation advises"
        ),
        "jfs" => format!("`fsck.jfs -f {d}`"),
        "f2fs" => format!("`fsck.f2fs -f {d}`"),
        other => format!("`fsck -t {other} {d}`"),
    }
}

/// [`repair_hint`], and for a checker that could not even start checking
/// (an unreadable superblock, say) how to go on from there.
pub fn failed_hint(fstype: &str, device: &Path) -> String {
    let d = device.display();
    match fstype {
        "ext2" | "ext3" | "ext4" => format!(
            "{}; a damaged superblock is read from a backup with `e2fsck -b 32768 {d}` \
             (`mke2fs -n {d}` lists where the backups are)",
            repair_hint(fstype, device)
        ),
        "xfs" => format!(
            "{}; a damaged superblock is searched for by `xfs_repair` itself",
            repair_hint(fstype, device)
        ),
        _ => repair_hint(fstype, device),
    }
}

/// The checker of `fstype` and its arguments, without the device.
fn checker(fstype: &str) -> (Vec<String>, Convention) {
    let v = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect();
    match fstype {
        "ext2" | "ext3" | "ext4" => (v(&[&format!("fsck.{fstype}"), "-p"]), Convention::Fsck),
        "xfs" => (v(&["xfs_repair", "-n"]), Convention::XfsRepair),
        "btrfs" => (v(&["btrfs", "check", "--readonly"]), Convention::BtrfsCheck),
        "jfs" => (v(&["fsck.jfs", "-p"]), Convention::Fsck),
        "f2fs" => (v(&["fsck.f2fs", "-a"]), Convention::Fsck),
        other => (v(&["fsck", "-a", "-t", other]), Convention::Fsck),
    }
}

/// `name` in the first of [`PROGRAM_DIRS`] that has it.
fn find_program(name: &str) -> Option<PathBuf> {
    PROGRAM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// What to run to check `device` holding `fstype`; an error naming the
/// package when the checker is not installed.
pub fn plan(fstype: &str, device: &Path) -> Result<Plan, Error> {
    let (mut argv, convention) = checker(fstype);
    // e2fsck answers to every ext name; fsck.extN are links to it.
    let found = find_program(&argv[0]).or_else(|| {
        matches!(fstype, "ext2" | "ext3" | "ext4")
            .then(|| find_program("e2fsck"))
            .flatten()
    });
    let Some(program) = found else {
        return Err(Error::FsckMissing {
            program: argv[0].clone(),
            package: package(fstype),
            device: device.to_path_buf(),
        });
    };
    argv[0] = program.to_string_lossy().into_owned();
    argv.push(device.to_string_lossy().into_owned());
    Ok(Plan { argv, convention })
}

/// Names the fsck(8) bits set in `code`: `4 errors left uncorrected, 8
/// operational error`.
pub fn fsck_bits(code: i32) -> String {
    const BITS: [(i32, &str); 8] = [
        (1, "errors corrected"),
        (2, "reboot advised"),
        (4, "errors left uncorrected"),
        (8, "operational error"),
        (16, "usage or syntax error"),
        (32, "cancelled by request"),
        (64, "unknown bit 64"),
        (128, "shared-library error"),
    ];
    if code == 0 {
        return "no errors".into();
    }
    if !(0..=255).contains(&code) {
        return format!("unknown code {code}");
    }
    BITS.iter()
        .filter(|(bit, _)| code & bit != 0)
        .map(|(bit, what)| format!("{bit} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What exit `code` of a checker under `convention` means for the mount.
pub fn interpret(convention: Convention, code: i32) -> Result<Verdict, Refusal> {
    match convention {
        Convention::Fsck => match code {
            0 => Ok(Verdict::Clean),
            1..=3 => Ok(Verdict::Corrected),
            c if (0..=255).contains(&c) && c & 4 != 0 && c < 8 => {
                Err(Refusal::Uncorrected(fsck_bits(c)))
            }
            c => Err(Refusal::Failed(fsck_bits(c))),
        },
        Convention::XfsRepair => match code {
            0 => Ok(Verdict::Clean),
            1 => Err(Refusal::Uncorrected("corruption found".into())),
            2 => Ok(Verdict::DirtyLog),
            c => Err(Refusal::Failed(format!("unexpected exit code {c}"))),
        },
        Convention::BtrfsCheck => match code {
            0 => Ok(Verdict::Clean),
            c => Err(Refusal::Uncorrected(format!(
                "errors found or the check failed (exit {c})"
            ))),
        },
    }
}

/// Runs the checker of `fstype` on `device` (not mounted anywhere on this
/// node: the caller checked) in `tracker`, stopped after `timeout`. `Ok`
/// when the device may be mounted.
pub async fn check(
    device: &Path,
    fstype: &str,
    tracker: &Tracker,
    timeout: Duration,
) -> Result<FsckReport, Error> {
    let plan = plan(fstype, device)?;
    let mut spec = ScriptSpec::new(plan.argv.clone(), tracker.clone(), "fsck");
    spec.log.action = format!("fsck {}", device.display());
    spec.timeout = timeout;
    tracing::info!(
        "{} fsck: checking {} ({fstype}): {}",
        tracker.service(),
        device.display(),
        plan.argv.join(" ")
    );
    let outcome = script::run(spec).await.map_err(|source| Error::FsckStart {
        device: device.to_path_buf(),
        source,
    })?;
    let program = plan.argv[0].clone();
    let code = match outcome.termination {
        Termination::Exited(code) => code,
        Termination::TimedOut => {
            return Err(Error::FsckTimedOut {
                device: device.to_path_buf(),
                program,
                timeout,
                repair: repair_hint(fstype, device),
            });
        }
        other @ Termination::Signaled { .. } => {
            return Err(Error::FsckFailed {
                device: device.to_path_buf(),
                program,
                how: other.to_string(),
                repair: failed_hint(fstype, device),
            });
        }
    };
    match interpret(plan.convention, code) {
        Ok(verdict) => {
            let line = format!(
                "{} fsck: {} {verdict} (exit {code}) in {:.1?}",
                tracker.service(),
                device.display(),
                outcome.duration
            );
            if verdict == Verdict::Clean {
                tracing::info!("{line}");
            } else {
                tracing::warn!("{line}");
            }
            Ok(FsckReport {
                argv: plan.argv,
                exit_code: code,
                verdict,
                duration: outcome.duration,
            })
        }
        Err(Refusal::Uncorrected(meaning)) => Err(Error::FsckUncorrected {
            device: device.to_path_buf(),
            program,
            code,
            meaning,
            repair: repair_hint(fstype, device),
        }),
        Err(Refusal::Failed(meaning)) => Err(Error::FsckFailed {
            device: device.to_path_buf(),
            program,
            how: format!("exit {code}: {meaning}"),
            repair: failed_hint(fstype, device),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsck_bits_read_as_the_manual_says() {
        use Convention::Fsck;
        assert_eq!(interpret(Fsck, 0), Ok(Verdict::Clean));
        assert_eq!(interpret(Fsck, 1), Ok(Verdict::Corrected));
        assert_eq!(interpret(Fsck, 2), Ok(Verdict::Corrected));
        assert_eq!(interpret(Fsck, 3), Ok(Verdict::Corrected));
        assert_eq!(
            interpret(Fsck, 4),
            Err(Refusal::Uncorrected("4 errors left uncorrected".into()))
        );
        assert_eq!(
            interpret(Fsck, 5),
            Err(Refusal::Uncorrected(
                "1 errors corrected, 4 errors left uncorrected".into()
            ))
        );
        assert_eq!(
            interpret(Fsck, 8),
            Err(Refusal::Failed("8 operational error".into()))
        );
        assert_eq!(
            interpret(Fsck, 12),
            Err(Refusal::Failed(
                "4 errors left uncorrected, 8 operational error".into()
            ))
        );
        assert!(matches!(interpret(Fsck, 32), Err(Refusal::Failed(m)) if m.contains("cancelled")));
        assert!(matches!(interpret(Fsck, -1), Err(Refusal::Failed(m)) if m.contains("unknown")));
        assert!(matches!(interpret(Fsck, 256), Err(Refusal::Failed(_))));
    }

    #[test]
    fn xfs_and_btrfs_conventions() {
        assert_eq!(interpret(Convention::XfsRepair, 0), Ok(Verdict::Clean));
        assert_eq!(interpret(Convention::XfsRepair, 2), Ok(Verdict::DirtyLog));
        assert!(matches!(
            interpret(Convention::XfsRepair, 1),
            Err(Refusal::Uncorrected(_))
        ));
        assert!(matches!(
            interpret(Convention::XfsRepair, 4),
            Err(Refusal::Failed(_))
        ));
        assert_eq!(interpret(Convention::BtrfsCheck, 0), Ok(Verdict::Clean));
        assert!(matches!(
            interpret(Convention::BtrfsCheck, 1),
            Err(Refusal::Uncorrected(_))
        ));
    }

    #[test]
    fn checkers_per_file_system() {
        assert_eq!(
            checker("ext4"),
            (vec!["fsck.ext4".into(), "-p".into()], Convention::Fsck)
        );
        assert_eq!(checker("xfs").1, Convention::XfsRepair);
        assert_eq!(checker("btrfs").0, ["btrfs", "check", "--readonly"]);
        assert_eq!(checker("vfat").0, ["fsck", "-a", "-t", "vfat"]);
        assert_eq!(package("ext3"), "e2fsprogs");
        assert_eq!(package("xfs"), "xfsprogs");
        assert!(repair_hint("ext4", Path::new("/dev/sdb")).contains("e2fsck -f /dev/sdb"));
        assert!(failed_hint("ext3", Path::new("/dev/sdb")).contains("e2fsck -b 32768 /dev/sdb"));
    }

    #[test]
    fn a_missing_checker_names_its_package() {
        // jfsutils is rarely installed; if it is, the plan is complete.
        match plan("jfs", Path::new("/dev/null")) {
            Ok(p) => assert!(p.argv[0].starts_with('/') && p.argv.last().unwrap() == "/dev/null"),
            Err(e) => assert!(e.to_string().contains("jfsutils"), "{e}"),
        }
    }
}
