//! Volumes: the shared disks of the protected services, mounted on the
//! node that runs the service and unmounted, provably, before another node
//! may take it over. The service state machine mounts volumes first (then
//! floating IPs, then the application) and stops in reverse.
//!
//! * [`mount`]: the node's device of the volume must exist and be a block
//!   device, mounted nowhere else on this node. With `fsck` on, its checker
//!   runs first ([`fsck`]: `fsck.ext4 -p`, `xfs_repair -n`, ...) through
//!   [`crate::script::run`] with a timeout; errors it cannot correct, or a
//!   check that could not be done, refuse the mount. Then the mount point is
//!   created if missing, the device mounted with mount(2) (generic options
//!   as flags, the rest passed to the file system: [`options`]), the mount
//!   proven from the mount table, and the mount root given the volume's
//!   owner, group and mode. Idempotent: a volume already mounted there from
//!   the same device succeeds; from another device it is an error that names
//!   both.
//! * [`is_mounted`]: what is mounted at a mount point, from
//!   `/proc/self/mountinfo` (reconcile after a restart). Devices are compared
//!   by device number, so symlinks (`/dev/disk/by-id/...`,
//!   `/dev/mapper/...`) match their device; two loop devices over one image
//!   are two devices (as two nodes see one shared disk).
//! * [`users()`] and [`release`]: the processes using a mounted file system
//!   (working directory, root, executable, open files, memory maps, like
//!   `fuser -m`), and ending them: SIGTERM, then SIGKILL, within a timeout.
//! * [`umount`]: release, then umount2(2), retrying the release while the
//!   kernel says busy, until the timeout; then an error naming the processes
//!   (and nested mounts) that hold it. Never a lazy unmount (`MNT_DETACH`):
//!   it would hide a file still open and let another node mount the disk
//!   under a process still writing to it. The result is proven: `Ok` only
//!   when the mount table shows the node's device mounted nowhere on this
//!   node any more ("stopped means proven stopped"). Another file system
//!   found at the mount point is not the volume: it is left alone. An
//!   umount(2) that does not return by the timeout (it waits in the kernel
//!   on a storage path that hangs) is left to its blocking thread and
//!   reported as an error.
//!
//! This module sees one node. That a shared disk is mounted on one node at
//! a time is the cluster's promise (fencing, leases); ext4's `mmp` feature
//! (`mkfs.ext4 -O mmp`, `tune2fs -O mmp`) makes the kernel refuse a second
//! mount from another node as a last line of defence.
//!
//! Every blocking system call runs in `spawn_blocking`. Every error says
//! what the operator should do.

pub mod fsck;
pub mod options;
pub mod users;

pub use crate::mountinfo::{DevNo, Mounted};
pub use fsck::FsckReport;
pub use options::MountOptions;
pub use users::{ReleaseReport, User, Users};

use crate::mountinfo;
use crate::script::ScriptError;
use crate::track::Tracker;
use haschema::service::Volume;
use nix::errno::Errno;
use nix::mount::MntFlags;
use nix::unistd::{Gid, Group, Uid};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// Time between unmount attempts while the file system is busy.
const BUSY_RETRY: Duration = Duration::from_millis(100);
/// Least time one umount(2) is waited for, even past the timeout.
const UMOUNT_MIN_WAIT: Duration = Duration::from_secs(1);

/// Why a volume could not be mounted, released or unmounted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "volume {}: no device is given for node {node}: add `device.{node} = \"/dev/...\"` \
         to the volume in the service file",
        mount_point.display()
    )]
    NoDevice { mount_point: PathBuf, node: String },
    #[error("the mount option `{option}` is refused: {why}; fix the volume's options")]
    Option { option: String, why: &'static str },
    #[error(
        "device {} of volume {} does not exist on this node: is the shared disk attached and \
         its path up (cabling, multipath, iSCSI login; `lsblk` lists the disks)? Otherwise fix \
         the volume's device for this node in the service file",
        device.display(), mount_point.display()
    )]
    DeviceMissing {
        device: PathBuf,
        mount_point: PathBuf,
    },
    #[error("cannot examine device {}: {source}", device.display())]
    DeviceUnreadable { device: PathBuf, source: io::Error },
    #[error(
        "{} is not a block device but {kind}: give the shared disk's block device (`lsblk` \
         lists them); an image file must first be attached with `losetup`",
        device.display()
    )]
    NotBlockDevice { device: PathBuf, kind: &'static str },
    #[error(
        "{} is already mounted from {other}, not from this volume's device {}: \
         check who uses it (`fuser -vm {}`), unmount it by hand, and start the service again; \
         or fix the volume's mount point or device",
        mount_point.display(), device.display(), mount_point.display()
    )]
    MountedFromOther {
        mount_point: PathBuf,
        device: PathBuf,
        other: Box<Mounted>,
    },
    #[error(
        "device {} of volume {} is mounted at {} on this node: a disk mounted in two places \
         (or on two nodes) is corrupted, and no other node may mount it while it is mounted \
         here; unmount it there by hand (`fuser -vm {}`, then `umount {}`) and start or stop \
         the service again",
        device.display(), mount_point.display(), elsewhere.mount_point.display(),
        elsewhere.mount_point.display(), elsewhere.mount_point.display()
    )]
    MountedElsewhere {
        device: PathBuf,
        mount_point: PathBuf,
        elsewhere: Box<Mounted>,
    },
    #[error(
        "cannot create the mount point {}: {source}; create it by hand or fix the volume's \
         mount point",
        mount_point.display()
    )]
    MountPoint {
        mount_point: PathBuf,
        source: io::Error,
    },
    #[error(
        "the mount point {} exists but is not a directory: move it away or fix the volume's \
         mount point",
        mount_point.display()
    )]
    NotADirectory { mount_point: PathBuf },
    #[error(
        "cannot examine the mount point {}: {source}; check each directory on that path \
         (`namei -l {}`) or fix the volume's mount point",
        mount_point.display(), mount_point.display()
    )]
    MountPointUnusable {
        mount_point: PathBuf,
        source: io::Error,
    },
    #[error(
        "fsck is on for {} but its checker {program} is not installed on this node: install \
         the Debian package {package} on every node, or set `fsck = false` for the volume",
        device.display()
    )]
    FsckMissing {
        program: String,
        package: &'static str,
        device: PathBuf,
    },
    #[error("cannot run the file system check of {}: {source}", device.display())]
    FsckStart {
        device: PathBuf,
        source: ScriptError,
    },
    #[error(
        "the file system check found errors on {} that it could not correct ({program} exit \
         {code}: {meaning}): the volume was NOT mounted, so the damage does not spread. \
         Repair it by hand on this node with {repair}, then start the service again; the \
         checker's output is in hasvrd's log (action `fsck {}`)",
        device.display(), device.display()
    )]
    FsckUncorrected {
        device: PathBuf,
        program: String,
        code: i32,
        meaning: String,
        repair: String,
    },
    #[error(
        "the file system check of {} could not be done ({program} {how}): the volume was NOT \
         mounted. Read the checker's output in hasvrd's log (action `fsck {}`): an unreadable \
         device is a disk or path problem; a damaged file system (a bad superblock, say) is \
         repaired by hand with {repair}; then start the service again",
        device.display(), device.display()
    )]
    FsckFailed {
        device: PathBuf,
        program: String,
        how: String,
        repair: String,
    },
    #[error(
        "the file system check of {} did not finish within {timeout:?} and was stopped: the \
         volume was NOT mounted. Run it by hand ({repair}) and start the service again, or \
         raise the service's start_timeout",
        device.display()
    )]
    FsckTimedOut {
        device: PathBuf,
        program: String,
        timeout: Duration,
        repair: String,
    },
    #[error(
        "cannot mount {} ({fstype}) at {}: {errno}: {hint}",
        device.display(), mount_point.display()
    )]
    Mount {
        device: PathBuf,
        mount_point: PathBuf,
        fstype: String,
        errno: Errno,
        hint: String,
    },
    #[error(
        "mount(2) of {} at {} succeeded but the mount table shows {}: something else changed \
         the mounts at the same time (an automounter, another tool); check `findmnt {}`",
        device.display(), mount_point.display(),
        found.as_ref().map_or("nothing there".to_owned(), |m| format!("{m} there")),
        mount_point.display()
    )]
    NotMountedAfter {
        device: PathBuf,
        mount_point: PathBuf,
        found: Option<Box<Mounted>>,
    },
    #[error(
        "no {what} named {name:?} on this node (the `{field}` of volume {}): create it, with \
         the same id on every node, or fix the volume's `{field}`",
        mount_point.display()
    )]
    NoSuchAccount {
        what: &'static str,
        field: &'static str,
        name: String,
        mount_point: PathBuf,
    },
    #[error("cannot look up the {what} {name:?}: {source}")]
    AccountLookup {
        what: &'static str,
        name: String,
        source: Errno,
    },
    #[error(
        "cannot {what} the root of volume {}: {source}; is the file system read-only or \
         damaged?",
        mount_point.display()
    )]
    Ownership {
        what: &'static str,
        mount_point: PathBuf,
        source: io::Error,
    },
    #[error("cannot read the mount table {}: {source}", mountinfo::MOUNTINFO)]
    MountTable { source: io::Error },
    #[error(
        "volume {} is still used after {waited:.1?} by {users}: they outlived SIGTERM and \
         SIGKILL (a process in uninterruptible I/O ends only when its I/O does). The volume \
         stays mounted; find them with `fuser -vm {}` and end them, or reset this node, before \
         another node takes the service",
        mount_point.display(), mount_point.display()
    )]
    StillUsed {
        mount_point: PathBuf,
        users: Users,
        waited: Duration,
    },
    #[error(
        "cannot unmount {}: still busy after {waited:.1?}; held by {users}{}.{} It was not \
         detached lazily (that would hide files still open while another node mounts the \
         disk): end what holds it (`fuser -vm {}`, `findmnt -R {}`, `swapon --show`, \
         `losetup -a`) and stop the service again",
        mount_point.display(),
        if below.is_empty() { String::new() } else {
            format!("; mounts below it: {}", below.iter().map(|p| p.display().to_string())
                .collect::<Vec<_>>().join(", "))
        },
        if users.0.iter().any(|u| u.is_self || u.state == 'D') {
            " I/O on it does not return (hasvrd's own storage check, or a process in \
             uninterruptible I/O): the path to the storage hangs, and nothing ends that I/O \
             but the path coming back or a reset of this node (fencing, force_reboot)."
        } else { "" },
        mount_point.display(), mount_point.display()
    )]
    Busy {
        mount_point: PathBuf,
        users: Users,
        below: Vec<PathBuf>,
        waited: Duration,
    },
    #[error(
        "umount(2) of {} has not returned after {waited:.1?}: it waits in the kernel for I/O \
         to its device (the path to the storage hangs), so the volume is not proven \
         unmounted; nothing ends that I/O but the path coming back or a reset of this node \
         (fencing, force_reboot): check `dmesg` and the paths to the storage",
        mount_point.display()
    )]
    UmountHangs {
        mount_point: PathBuf,
        waited: Duration,
    },
    #[error(
        "cannot unmount {}: {errno}; the volume stays mounted: check `findmnt {}` and the \
         kernel log (`dmesg`)",
        mount_point.display(), mount_point.display()
    )]
    Umount { mount_point: PathBuf, errno: Errno },
    #[error(
        "{} is still mounted ({mounted}) after unmounting it within {waited:.1?}: the volume \
         is not proven stopped; check `findmnt {}` (a mount stacked under another, an \
         automounter)",
        mount_point.display(), mount_point.display()
    )]
    StillMounted {
        mount_point: PathBuf,
        mounted: Box<Mounted>,
        waited: Duration,
    },
    #[error("the runtime is shutting down: volume operation abandoned")]
    Shutdown,
}

/// Runs a blocking system call (or several) off the async threads.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Shutdown),
    }
}

/// What [`mount`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountReport {
    /// The mount, as the mount table shows it afterwards.
    pub mounted: Mounted,
    /// It was mounted already (from the same device): nothing was checked
    /// nor mounted.
    pub already: bool,
    /// The file system check, when one ran.
    pub fsck: Option<FsckReport>,
}

/// What [`umount`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UmountReport {
    /// What was mounted there; `None` when nothing was (already stopped).
    pub unmounted: Option<Mounted>,
    /// The processes that were ended to free it.
    pub released: ReleaseReport,
    pub elapsed: Duration,
}

/// The mount point as the mount table writes it: symlinks resolved.
/// `None` when it does not exist (so nothing is mounted there).
fn canonical(mount_point: &Path) -> Result<Option<PathBuf>, Error> {
    match fs::canonicalize(mount_point) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::MountPointUnusable {
            mount_point: mount_point.to_path_buf(),
            source,
        }),
    }
}

fn read_table() -> Result<Vec<mountinfo::Entry>, Error> {
    mountinfo::read().map_err(|source| Error::MountTable { source })
}

fn is_mounted_now(mount_point: &Path) -> Result<Option<Mounted>, Error> {
    let Some(real) = canonical(mount_point)? else {
        return Ok(None);
    };
    let table = read_table()?;
    Ok(mountinfo::top_at(&table, &real).map(Mounted::from_entry))
}

/// What is mounted at `mount_point` (the top of a stack of mounts), from
/// `/proc/self/mountinfo`; `None` when nothing is.
pub async fn is_mounted(mount_point: &Path) -> Result<Option<Mounted>, Error> {
    let mp = mount_point.to_path_buf();
    blocking(move || is_mounted_now(&mp)).await?
}

/// The processes using the file system mounted at `mount_point` (none when
/// nothing is mounted there), hasvrd itself included and marked.
pub async fn users(mount_point: &Path) -> Result<Vec<User>, Error> {
    let mp = mount_point.to_path_buf();
    blocking(move || -> Result<Vec<User>, Error> {
        Ok(match is_mounted_now(&mp)? {
            Some(m) => users::scan(m.dev),
            None => Vec::new(),
        })
    })
    .await?
}

/// Ends the processes using the file system mounted at `mount_point`:
/// SIGTERM, then SIGKILL to what is left after [`users::TERM_GRACE`] (or half
/// the timeout), within `timeout` (the service's
/// `resource_release_timeout`). Nothing mounted there: nothing to do.
pub async fn release(mount_point: &Path, timeout: Duration) -> Result<ReleaseReport, Error> {
    match is_mounted(mount_point).await? {
        Some(m) => users::release(mount_point, m.dev, timeout).await,
        None => Ok(ReleaseReport::default()),
    }
}

/// What the node's device of a volume is, and where things stand.
enum Found {
    /// Mounted at the mount point from this device already.
    Already(Mounted),
    /// Free to check and mount; the device's number.
    Free(DevNo),
}

/// Checks the device and the mount table before a mount.
fn inspect(device: &Path, mount_point: &Path) -> Result<Found, Error> {
    let meta = fs::metadata(device).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::DeviceMissing {
                device: device.to_path_buf(),
                mount_point: mount_point.to_path_buf(),
            }
        } else {
            Error::DeviceUnreadable {
                device: device.to_path_buf(),
                source,
            }
        }
    })?;
    let ft = meta.file_type();
    if !ft.is_block_device() {
        let kind = if ft.is_file() {
            "a regular file"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else {
            "a socket or pipe"
        };
        return Err(Error::NotBlockDevice {
            device: device.to_path_buf(),
            kind,
        });
    }
    let dev = DevNo::from_raw(meta.rdev());
    let table = read_table()?;
    if let Some(real) = canonical(mount_point)?
        && let Some(top) = mountinfo::top_at(&table, &real)
    {
        let mounted = Mounted::from_entry(top);
        if mountinfo::is_from(top, dev) {
            return Ok(Found::Already(mounted));
        }
        return Err(Error::MountedFromOther {
            mount_point: mount_point.to_path_buf(),
            device: device.to_path_buf(),
            other: Box::new(mounted),
        });
    }
    if let Some(e) = table.iter().find(|e| mountinfo::is_from(e, dev)) {
        return Err(Error::MountedElsewhere {
            device: device.to_path_buf(),
            mount_point: mount_point.to_path_buf(),
            elsewhere: Box::new(Mounted::from_entry(e)),
        });
    }
    Ok(Found::Free(dev))
}

/// What to tell the operator about a mount(2) error.
fn mount_hint(errno: Errno, device: &Path, fstype: &str) -> String {
    let d = device.display();
    match errno {
        Errno::EBUSY => format!(
            "{d} is in use on this node: mounted in another mount namespace, held by \
             LVM, device-mapper or md, or open exclusively; see `lsblk {d}` and `fuser -v {d}`"
        ),
        Errno::EINVAL | Errno::EUCLEAN => format!(
            "the kernel found no valid {fstype} file system there, or refused an option (its \
             reason is in `dmesg`): check the volume's fstype and options and `blkid {d}`; \
             repair a damaged file system by hand with {}, or set `fsck = true`",
            fsck::repair_hint(fstype, device)
        ),
        Errno::ENODEV => format!(
            "this kernel does not support {fstype}: load its module (`modprobe {fstype}`) or \
             fix the volume's fstype"
        ),
        Errno::ENOENT | Errno::ENXIO | Errno::ENOTBLK => {
            format!("{d} went away: is the shared disk still attached (`lsblk`)?")
        }
        Errno::EACCES | Errno::EROFS => format!(
            "{d} is read-only (write-protected, or a read-only path): add `ro` to the volume's \
             options if that is intended, otherwise make the disk writable"
        ),
        Errno::EIO => format!("I/O error reading {d}: the disk or its path is failing (`dmesg`)"),
        _ => "see the kernel's reason in `dmesg`".to_owned(),
    }
}

/// Looks up a user or group by name; a name made of digits that is not
/// an account is taken as the number itself.
fn account_id(
    (what, field): (&'static str, &'static str),
    name: &str,
    mount_point: &Path,
    lookup: impl FnOnce(&str) -> nix::Result<Option<u32>>,
) -> Result<u32, Error> {
    match lookup(name) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => name.parse().map_err(|_| Error::NoSuchAccount {
            what,
            field,
            name: name.to_owned(),
            mount_point: mount_point.to_path_buf(),
        }),
        Err(source) => Err(Error::AccountLookup {
            what,
            name: name.to_owned(),
            source,
        }),
    }
}

/// The volume's owner, group and mode, looked up on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ownership {
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
}

impl Ownership {
    /// Looks the volume's accounts up, before anything is done, so that a
    /// wrong name fails the mount without leaving it half made.
    fn resolve(volume: &Volume) -> Result<Ownership, Error> {
        let mp = volume.mount_point.as_path();
        let uid = match &volume.owner {
            Some(name) => Some(account_id(("user", "owner"), name, mp, |n| {
                nix::unistd::User::from_name(n).map(|u| u.map(|u| u.uid.as_raw()))
            })?),
            None => None,
        };
        let gid = match &volume.group {
            Some(name) => Some(account_id(("group", "group"), name, mp, |n| {
                Group::from_name(n).map(|g| g.map(|g| g.gid.as_raw()))
            })?),
            None => None,
        };
        Ok(Ownership {
            uid,
            gid,
            mode: volume.mode,
        })
    }

    /// Gives the mount root this owner, group and mode, changing only what
    /// differs. On a read-only mount a difference is only logged.
    fn apply(&self, mount_point: &Path, read_only: bool) -> Result<(), Error> {
        let err = |what| {
            move |source| Error::Ownership {
                what,
                mount_point: mount_point.to_path_buf(),
                source,
            }
        };
        let meta = fs::metadata(mount_point).map_err(err("examine"))?;
        let have_mode = meta.mode() & 0o7777;
        let chown_needed =
            self.uid.is_some_and(|u| u != meta.uid()) || self.gid.is_some_and(|g| g != meta.gid());
        let chmod_needed = self.mode.is_some_and(|m| m != have_mode);
        if !(chown_needed || chmod_needed) {
            return Ok(());
        }
        let show = |id: Option<u32>| id.map_or("-".to_owned(), |i| i.to_string());
        if read_only {
            tracing::warn!(
                "volume {}: mounted read-only, so its root keeps owner {}:{} mode {have_mode:04o} \
                 (the volume asks for {}:{} mode {})",
                mount_point.display(),
                meta.uid(),
                meta.gid(),
                show(self.uid),
                show(self.gid),
                self.mode.map_or("-".to_owned(), |m| format!("{m:04o}"))
            );
            return Ok(());
        }
        // chown first: it clears the set-id bits that chmod then sets.
        if chown_needed {
            nix::unistd::chown(
                mount_point,
                self.uid.map(Uid::from_raw),
                self.gid.map(Gid::from_raw),
            )
            .map_err(|e| err("chown")(io::Error::from(e)))?;
        }
        if let Some(mode) = self.mode {
            fs::set_permissions(mount_point, fs::Permissions::from_mode(mode))
                .map_err(err("chmod"))?;
        }
        tracing::info!(
            "volume {}: root set to owner {} group {} mode {}",
            mount_point.display(),
            show(self.uid),
            show(self.gid),
            self.mode.map_or("-".to_owned(), |m| format!("{m:04o}"))
        );
        Ok(())
    }
}

/// Creates the mount point if missing, mounts, proves the mount from the
/// mount table and applies ownership.
fn mount_now(
    volume: &Volume,
    device: &Path,
    dev: DevNo,
    options: &MountOptions,
    ownership: Ownership,
) -> Result<Mounted, Error> {
    let mp = volume.mount_point.as_path();
    let mp_err = |source| Error::MountPoint {
        mount_point: mp.to_path_buf(),
        source,
    };
    match fs::metadata(mp) {
        Ok(m) if m.is_dir() => {
            if fs::read_dir(mp).map_err(mp_err)?.next().is_some() {
                tracing::warn!(
                    "volume {}: the mount point holds files of its own; they are hidden while \
                     the volume is mounted (was something written there while it was not?)",
                    mp.display()
                );
            }
        }
        Ok(_) => {
            return Err(Error::NotADirectory {
                mount_point: mp.to_path_buf(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(mp).map_err(mp_err)?;
            tracing::info!("volume {}: created the mount point", mp.display());
        }
        Err(e) => return Err(mp_err(e)),
    }
    let data = (!options.data.is_empty()).then_some(options.data.as_str());
    nix::mount::mount(
        Some(device),
        mp,
        Some(volume.fstype.as_str()),
        options.flags,
        data,
    )
    .map_err(|errno| Error::Mount {
        device: device.to_path_buf(),
        mount_point: mp.to_path_buf(),
        fstype: volume.fstype.clone(),
        errno,
        hint: mount_hint(errno, device, &volume.fstype),
    })?;
    // Proof: the mount table shows this device at the mount point.
    let real = canonical(mp)?;
    let table = read_table()?;
    let top = real.as_deref().and_then(|r| mountinfo::top_at(&table, r));
    let mounted = match top {
        Some(top) if mountinfo::is_from(top, dev) => Mounted::from_entry(top),
        other => {
            return Err(Error::NotMountedAfter {
                device: device.to_path_buf(),
                mount_point: mp.to_path_buf(),
                found: other.map(|e| Box::new(Mounted::from_entry(e))),
            });
        }
    };
    tracing::info!("volume {}: mounted {mounted}", mp.display());
    if let Err(e) = ownership.apply(mp, mounted.read_only) {
        // Nothing half made: the volume is not left mounted with the wrong
        // owner (nothing can use it yet, so no release is needed).
        match nix::mount::umount2(mp, MntFlags::empty()) {
            Ok(()) => tracing::warn!("volume {}: unmounted again: {e}", mp.display()),
            Err(errno) => tracing::warn!(
                "volume {}: {e}; unmounting it again failed too ({errno}): it stays mounted",
                mp.display()
            ),
        }
        return Err(e);
    }
    Ok(mounted)
}

/// Mounts `volume` from its device for `node` (see the module
/// documentation). The file system check, when the volume asks for one,
/// runs in the service's `tracker` and is stopped after `fsck_timeout`.
pub async fn mount(
    volume: &Volume,
    node: &str,
    tracker: &Tracker,
    fsck_timeout: Duration,
) -> Result<MountReport, Error> {
    let mp = volume.mount_point.clone();
    let device = volume
        .devices
        .get(node)
        .cloned()
        .ok_or_else(|| Error::NoDevice {
            mount_point: mp.clone(),
            node: node.to_owned(),
        })?;
    let options = options::parse(&volume.options)?;
    if !options.ignored.is_empty() {
        tracing::debug!(
            "volume {}: options for mount(8) only, ignored: {}",
            mp.display(),
            options.ignored.join(",")
        );
    }
    let (found, ownership) = {
        let (device, volume) = (device.clone(), volume.clone());
        blocking(move || -> Result<_, Error> {
            let ownership = Ownership::resolve(&volume)?;
            Ok((inspect(&device, &volume.mount_point)?, ownership))
        })
        .await??
    };
    let dev = match found {
        Found::Free(dev) => dev,
        Found::Already(mounted) => {
            tracing::info!(
                "volume {}: already mounted from {mounted}: nothing to do",
                mp.display()
            );
            if mounted.read_only != options.read_only() {
                let rw = |ro| if ro { "read-only" } else { "read-write" };
                tracing::warn!(
                    "volume {}: mounted {} but its options ask for {}: was it remounted \
                     read-only after an error? Check `dmesg`",
                    mp.display(),
                    rw(mounted.read_only),
                    rw(options.read_only())
                );
            }
            let (mp, ro) = (mp.clone(), mounted.read_only);
            blocking(move || ownership.apply(&mp, ro)).await??;
            return Ok(MountReport {
                mounted,
                already: true,
                fsck: None,
            });
        }
    };
    let fsck = if volume.fsck {
        Some(fsck::check(&device, &volume.fstype, tracker, fsck_timeout).await?)
    } else {
        None
    };
    let volume = volume.clone();
    let mounted = blocking(move || mount_now(&volume, &device, dev, &options, ownership)).await??;
    Ok(MountReport {
        mounted,
        already: false,
        fsck,
    })
}

/// Where the node's device of a volume is mounted on this node.
struct Placement {
    /// What is mounted at the mount point, and whether it is the device.
    top: Option<(Mounted, bool)>,
    /// A mount of the device somewhere else.
    elsewhere: Option<Mounted>,
}

/// Looks the device up in the mount table: by device number, or by its
/// path when the device node is gone (a disk that vanished while mounted).
fn placement(device: &Path, mount_point: &Path) -> Result<Placement, Error> {
    let dev = mountinfo::block_dev(device).ok().flatten();
    let ours = |e: &mountinfo::Entry| {
        dev.is_some_and(|d| mountinfo::is_from(e, d)) || e.source.as_path() == device
    };
    let table = read_table()?;
    let real = canonical(mount_point)?;
    let top = real
        .as_deref()
        .and_then(|r| mountinfo::top_at(&table, r))
        .map(|e| (Mounted::from_entry(e), ours(e)));
    let elsewhere = table
        .iter()
        .find(|e| ours(e) && Some(e.mount_point.as_path()) != real.as_deref())
        .map(Mounted::from_entry);
    Ok(Placement { top, elsewhere })
}

/// Whether `device` is what is mounted at `mount_point` on this node
/// (compared by device number, or by path when the device node is gone).
/// Blocking: call it off the async threads.
pub(crate) fn is_mounted_from(device: &Path, mount_point: &Path) -> Result<bool, Error> {
    Ok(placement(device, mount_point)?
        .top
        .is_some_and(|(_, ours)| ours))
}

/// Unmounts `volume`'s device for `node` from its mount point: ends its
/// users ([`release`]), then umount2(2), retrying both while the kernel
/// says busy, until `timeout` (the service's `resource_release_timeout`).
/// `Ok` only once the mount table shows the device mounted nowhere on this
/// node; it not being mounted to begin with is `Ok` too. Another file
/// system mounted at the mount point is not this volume: it is left alone
/// (logged), and never makes a stop fail.
pub async fn umount(volume: &Volume, node: &str, timeout: Duration) -> Result<UmountReport, Error> {
    let mp = volume.mount_point.clone();
    let device = volume
        .devices
        .get(node)
        .cloned()
        .ok_or_else(|| Error::NoDevice {
            mount_point: mp.clone(),
            node: node.to_owned(),
        })?;
    let start = Instant::now();
    let deadline = start + timeout;
    let mut report = UmountReport {
        unmounted: None,
        released: ReleaseReport::default(),
        elapsed: Duration::ZERO,
    };
    loop {
        let now = {
            let (device, mp) = (device.clone(), mp.clone());
            blocking(move || placement(&device, &mp)).await??
        };
        let mounted = match now.top {
            Some((mounted, true)) => mounted,
            top => {
                if let Some(elsewhere) = now.elsewhere {
                    return Err(Error::MountedElsewhere {
                        device,
                        mount_point: mp,
                        elsewhere: Box::new(elsewhere),
                    });
                }
                if let Some((foreign, _)) = top {
                    tracing::warn!(
                        "volume {}: {foreign} is mounted there, not this volume's device {}: \
                         left alone",
                        mp.display(),
                        device.display()
                    );
                }
                report.elapsed = start.elapsed();
                if report.unmounted.is_some() {
                    tracing::info!(
                        "volume {}: unmounted in {:.1?}",
                        mp.display(),
                        report.elapsed
                    );
                }
                return Ok(report);
            }
        };
        if report.unmounted.is_none() {
            report.unmounted = Some(mounted.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let released = users::release(&mp, mounted.dev, left).await?;
        report.released.terminated.extend(released.terminated);
        report.released.killed.extend(released.killed);
        report.released.elapsed += released.elapsed;
        let target = mp.clone();
        let call = blocking(move || nix::mount::umount2(&target, MntFlags::empty()));
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .max(UMOUNT_MIN_WAIT);
        let Ok(result) = tokio::time::timeout(wait, call).await else {
            return Err(Error::UmountHangs {
                mount_point: mp,
                waited: start.elapsed(),
            });
        };
        match result? {
            // Proven on the next turn, from the mount table.
            Ok(()) => {
                if Instant::now() >= deadline
                    && let Some(still) = is_mounted(&mp).await?
                {
                    return Err(Error::StillMounted {
                        mount_point: mp,
                        mounted: Box::new(still),
                        waited: start.elapsed(),
                    });
                }
            }
            Err(Errno::EBUSY) if Instant::now() < deadline => {
                tracing::debug!("volume {}: busy; releasing again", mp.display());
                tokio::time::sleep(BUSY_RETRY).await;
            }
            Err(Errno::EBUSY) => {
                let (dev, target) = (mounted.dev, mp.clone());
                let (holders, below) = blocking(move || {
                    let below = canonical(&target)
                        .ok()
                        .flatten()
                        .and_then(|real| {
                            let table = mountinfo::read().ok()?;
                            Some(
                                mountinfo::below(&table, &real)
                                    .into_iter()
                                    .map(|e| e.mount_point.clone())
                                    .collect(),
                            )
                        })
                        .unwrap_or_default();
                    (users::scan(dev), below)
                })
                .await?;
                return Err(Error::Busy {
                    mount_point: mp,
                    users: Users(holders),
                    below,
                    waited: start.elapsed(),
                });
            }
            // Not a mount point (any more): the next turn says what is
            // there, unless the mount table still shows it.
            Err(Errno::EINVAL) => {
                if let Some(still) = is_mounted(&mp).await?
                    && still.dev == mounted.dev
                {
                    return Err(Error::StillMounted {
                        mount_point: mp,
                        mounted: Box::new(still),
                        waited: start.elapsed(),
                    });
                }
            }
            Err(errno) => {
                return Err(Error::Umount {
                    mount_point: mp,
                    errno,
                });
            }
        }
    }
}
