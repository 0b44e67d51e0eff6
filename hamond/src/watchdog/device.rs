//! [`Watchdog`]: the watchdog device itself (Linux ioctls), or a stand-in
//! for tests (a FIFO or regular file that gets one byte per pet).
//!
//! Opening a real device arms it. From then on the node resets unless it is
//! petted within the timeout, or closed cleanly: `V` written, then closed
//! (the "magic close"). A drop without [`Watchdog::close_cleanly`] — hamond
//! panicked, was killed, or the kernel closed its descriptors at its death
//! — leaves the device armed. If the driver was loaded with `nowayout`, even
//! a clean close leaves it armed; hamond cannot tell (the operator chose it).
//!
//! The descriptor is opened close-on-exec, so scripts and agents that
//! hamond starts never hold the device open.

use std::fmt;
use std::fs::File;
use std::io::{self, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::libc::c_int;

/// The Linux watchdog API (`linux/watchdog.h`).
mod ioctl {
    use nix::libc::c_int;

    /// `struct watchdog_info`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct WatchdogInfo {
        pub options: u32,
        pub firmware_version: u32,
        pub identity: [u8; 32],
    }

    /// `WDIOF_SETTIMEOUT`: the timeout can be set.
    pub const WDIOF_SETTIMEOUT: u32 = 0x0080;
    /// `WDIOF_MAGICCLOSE`: the driver stops only after a `V` was written.
    pub const WDIOF_MAGICCLOSE: u32 = 0x0100;

    nix::ioctl_read!(wdioc_getsupport, b'W', 0, WatchdogInfo);
    nix::ioctl_read!(wdioc_keepalive, b'W', 5, c_int);
    nix::ioctl_readwrite!(wdioc_settimeout, b'W', 6, c_int);
    nix::ioctl_read!(wdioc_gettimeout, b'W', 7, c_int);
}

/// What the path turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchdogKind {
    /// A real watchdog device, driven by ioctls.
    Device {
        /// The driver's identity (`WDIOC_GETSUPPORT`), e.g. `Software Watchdog`.
        identity: String,
        /// Whether the driver honours the magic close. Without it, any
        /// close stops the watchdog, so hamond's death would disarm it:
        /// such a watchdog must not be advertised to peers.
        magic_close: bool,
    },
    /// A FIFO or regular file standing in for a device in tests: one byte
    /// per pet, `V` on a clean close. It cannot reset anything.
    StandIn,
}

/// An open, armed watchdog. See the [module](self) documentation.
#[derive(Debug)]
pub struct Watchdog {
    /// None once closed cleanly.
    file: Option<File>,
    path: PathBuf,
    kind: WatchdogKind,
    timeout: Duration,
}

/// The byte a stand-in pet writes (anything but `V`).
const PET_BYTE: &[u8] = b".";
/// The magic close byte.
const MAGIC: &[u8] = b"V";

impl Watchdog {
    /// Opens (and so arms) the watchdog at `path`, asking for
    /// `wanted_timeout` (whole seconds, at least 1s; a fraction rounds up)
    /// and reading back the timeout actually set.
    ///
    /// A character device must answer the watchdog ioctls. A FIFO (which
    /// must have a reader: the open does not wait for one) or a regular
    /// file is taken as a stand-in (logged as such), pet once at open like
    /// a device. Anything else is refused. If the device cannot be set up,
    /// it is closed with the magic `V` before the error is returned, so a
    /// failed start does not reset the node.
    pub fn open(path: &Path, wanted_timeout: Duration) -> io::Result<Watchdog> {
        let secs = wanted_secs(wanted_timeout).ok_or_else(|| {
            invalid(format!(
                "watchdog {}: timeout {wanted_timeout:?} is out of range; ask for 1s or more",
                path.display()
            ))
        })?;
        // Non-blocking: a FIFO without a reader fails at once (ENXIO) rather
        // than hanging the daemon, and a full FIFO makes a pet fail rather
        // than block. A watchdog device ignores the flag.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| {
                let hint = if e.raw_os_error() == Some(nix::libc::ENXIO) {
                    " (a FIFO standing in for the watchdog needs a reader first)"
                } else {
                    ""
                };
                io::Error::new(
                    e.kind(),
                    format!("watchdog {}: cannot open: {e}{hint}", path.display()),
                )
            })?;
        let ft = file
            .metadata()
            .map_err(|e| context(path, "cannot stat", e))?
            .file_type();
        let mut wd = Watchdog {
            file: Some(file),
            path: path.to_path_buf(),
            kind: WatchdogKind::StandIn,
            timeout: Duration::from_secs(secs.unsigned_abs().into()),
        };
        if ft.is_char_device() {
            if let Err(e) = wd.setup_device(secs) {
                // Opening armed it: disarm before giving up.
                let _ = wd.disarm();
                return Err(e);
            }
        } else if ft.is_fifo() || ft.is_file() {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else {
                "a regular file"
            };
            tracing::warn!(
                "watchdog {}: {what}, not a device: using a STAND-IN for tests that writes one \
                 byte per pet and CANNOT RESET THIS NODE; its timeout {}s is the one asked, not \
                 read back from hardware",
                path.display(),
                secs
            );
            wd.write(PET_BYTE)?;
        } else {
            return Err(invalid(format!(
                "watchdog {}: not a watchdog device (a character device such as /dev/watchdog), \
                 nor a FIFO or regular file standing in for one",
                path.display()
            )));
        }
        Ok(wd)
    }

    /// Identity, timeout (set, then read back) and a first keepalive.
    fn setup_device(&mut self, secs: c_int) -> io::Result<()> {
        let fd = self.fd()?;
        let mut info = ioctl::WatchdogInfo::default();
        // SAFETY: `fd` is open for the call and `info` is a valid
        // `struct watchdog_info` the kernel fills.
        unsafe { ioctl::wdioc_getsupport(fd, &mut info) }.map_err(|e| {
            let e = io::Error::from(e);
            context(
                &self.path,
                "does not answer WDIOC_GETSUPPORT (not a watchdog device?)",
                e,
            )
        })?;
        let end = info.identity.iter().position(|&b| b == 0);
        let identity = String::from_utf8_lossy(&info.identity[..end.unwrap_or(32)])
            .trim()
            .to_owned();
        let magic_close = info.options & ioctl::WDIOF_MAGICCLOSE != 0;
        let mut asked = secs;
        // SAFETY: as above; `asked` is a valid int the kernel reads and writes.
        if let Err(e) = unsafe { ioctl::wdioc_settimeout(fd, &mut asked) } {
            let can = info.options & ioctl::WDIOF_SETTIMEOUT != 0;
            tracing::warn!(
                "watchdog {} ({identity}): cannot set the timeout to {secs}s: {e}{}; using the \
                 device's own timeout",
                self.path.display(),
                if can {
                    ""
                } else {
                    " (the driver cannot change it)"
                }
            );
        }
        let mut real: c_int = 0;
        // SAFETY: as above; `real` is a valid int the kernel writes.
        unsafe { ioctl::wdioc_gettimeout(fd, &mut real) }
            .map_err(|e| context(&self.path, "cannot read the timeout back", e.into()))?;
        if real <= 0 {
            return Err(invalid(format!(
                "watchdog {} ({identity}): the device reports a timeout of {real}s",
                self.path.display()
            )));
        }
        self.timeout = Duration::from_secs(real.unsigned_abs().into());
        self.kind = WatchdogKind::Device {
            identity: identity.clone(),
            magic_close,
        };
        self.pet()?;
        if real != secs {
            tracing::warn!(
                "watchdog {} ({identity}): asked for {secs}s, the device set {real}s",
                self.path.display()
            );
        }
        if magic_close {
            tracing::info!(
                "watchdog {} ({identity}): armed, timeout {real}s",
                self.path.display()
            );
        } else {
            tracing::error!(
                "watchdog {} ({identity}): armed, timeout {real}s, but the driver has no magic \
                 close: any close, hamond's death included, stops it; it must not be relied on",
                self.path.display()
            );
        }
        Ok(())
    }

    /// The timeout W actually in force: read back from the device (a
    /// stand-in: the one asked). This is the W to advertise to peers.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A real device or a stand-in.
    pub fn kind(&self) -> &WatchdogKind {
        &self.kind
    }

    /// Whether this is a real device whose driver keeps it armed when
    /// hamond dies: the only kind a peer may rely on.
    pub fn is_reliable(&self) -> bool {
        matches!(
            self.kind,
            WatchdogKind::Device {
                magic_close: true,
                ..
            }
        )
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Pets it: the timeout starts again. Never blocks. Call it only when
    /// [`PetGate`](super::PetGate) says so.
    pub fn pet(&mut self) -> io::Result<()> {
        match self.kind {
            WatchdogKind::Device { .. } => {
                let fd = self.fd()?;
                let mut dummy: c_int = 0;
                // SAFETY: `fd` is open; `dummy` is a valid int (unused by
                // the kernel).
                unsafe { ioctl::wdioc_keepalive(fd, &mut dummy) }
                    .map(drop)
                    .map_err(|e| context(&self.path, "keepalive failed", e.into()))
            }
            WatchdogKind::StandIn => self.write(PET_BYTE),
        }
    }

    /// Disarms and closes it: writes the magic `V`, then closes. For a
    /// clean stop of hamond only (after its services are stopped or handed
    /// over), never on an error path that should reset the node.
    pub fn close_cleanly(mut self) -> io::Result<()> {
        let result = self.disarm();
        match &result {
            Ok(()) => tracing::info!(
                "watchdog {}: closed cleanly (magic close), disarmed",
                self.path.display()
            ),
            Err(e) => tracing::error!("{e}; the watchdog may still be armed"),
        }
        result
    }

    /// `V`, then close (the close error too is reported).
    fn disarm(&mut self) -> io::Result<()> {
        let written = self.write(MAGIC);
        let Some(file) = self.file.take() else {
            return written;
        };
        let closed =
            nix::unistd::close(file).map_err(|e| context(&self.path, "close failed", e.into()));
        written.and(closed)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let path = &self.path;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| invalid(format!("watchdog {}: already closed", path.display())))?;
        match file.write(bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "watchdog {}: wrote {n} of {} bytes",
                    path.display(),
                    bytes.len()
                ),
            )),
            Err(e) => Err(context(path, "write failed", e)),
        }
    }

    fn fd(&self) -> io::Result<c_int> {
        self.file
            .as_ref()
            .map(|f| f.as_raw_fd())
            .ok_or_else(|| invalid(format!("watchdog {}: already closed", self.path.display())))
    }
}

impl Drop for Watchdog {
    /// Closes without the magic `V`: the watchdog stays armed.
    fn drop(&mut self) {
        if self.file.take().is_some() {
            tracing::error!(
                "watchdog {}: closed without the magic close: it stays armed and resets the node \
                 within {}s unless it is petted again",
                self.path.display(),
                self.timeout.as_secs()
            );
        }
    }
}

impl fmt::Display for WatchdogKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchdogKind::Device {
                identity,
                magic_close,
            } => {
                write!(f, "device \"{identity}\"")?;
                if !magic_close {
                    f.write_str(" (no magic close)")?;
                }
                Ok(())
            }
            WatchdogKind::StandIn => f.write_str("stand-in (cannot reset the node)"),
        }
    }
}

/// Whole seconds, a fraction rounded up; None below 1s or beyond an int.
fn wanted_secs(t: Duration) -> Option<c_int> {
    let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
    c_int::try_from(secs).ok().filter(|&s| s >= 1)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn context(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("watchdog {}: {what}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory for one test.
    fn scratch(tag: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hamond-watchdog-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn regular_file_stand_in_writes_a_byte_per_pet_and_v_on_close() {
        let dir = scratch("file");
        let path = dir.join("wd");
        std::fs::write(&path, "").unwrap();
        let mut wd = Watchdog::open(&path, Duration::from_secs(7)).unwrap();
        assert_eq!(wd.kind(), &WatchdogKind::StandIn);
        assert!(!wd.is_reliable());
        assert_eq!(wd.timeout(), Duration::from_secs(7));
        assert_eq!(wd.path(), path);
        wd.pet().unwrap();
        wd.pet().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"...");
        wd.close_cleanly().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"...V");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn drop_without_close_writes_no_magic() {
        let dir = scratch("drop");
        let path = dir.join("wd");
        std::fs::write(&path, "").unwrap();
        let mut wd = Watchdog::open(&path, Duration::from_secs(1)).unwrap();
        wd.pet().unwrap();
        drop(wd);
        assert_eq!(std::fs::read(&path).unwrap(), b"..");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fractional_timeout_rounds_up() {
        assert_eq!(wanted_secs(Duration::from_millis(1500)), Some(2));
        assert_eq!(wanted_secs(Duration::from_secs(1)), Some(1));
        assert_eq!(wanted_secs(Duration::from_millis(1)), Some(1));
        assert_eq!(wanted_secs(Duration::ZERO), None);
        assert_eq!(wanted_secs(Duration::from_secs(u64::MAX)), None);
    }

    #[test]
    fn refuses_what_is_no_watchdog() {
        let dir = scratch("refuse");
        let e = Watchdog::open(&dir, Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("cannot open"), "{e}");
        let e = Watchdog::open(&dir.join("missing"), Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("missing"), "{e}");
        let path = dir.join("wd");
        std::fs::write(&path, "").unwrap();
        let e = Watchdog::open(&path, Duration::ZERO).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        // A character device that is no watchdog: refused, after a `V`
        // (harmless on /dev/null).
        let e = Watchdog::open(Path::new("/dev/null"), Duration::from_secs(5)).unwrap_err();
        assert!(e.to_string().contains("WDIOC_GETSUPPORT"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn fifo_stand_in_needs_a_reader_and_never_blocks() {
        let dir = scratch("fifo");
        let path = dir.join("wd");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = Watchdog::open(&path, Duration::from_secs(3)).unwrap_err();
        assert!(e.to_string().contains("needs a reader"), "{e}");
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut wd = Watchdog::open(&path, Duration::from_secs(3)).unwrap();
        assert_eq!(wd.timeout(), Duration::from_secs(3));
        wd.pet().unwrap();
        // Nobody reads: the pipe fills and a pet fails instead of blocking.
        let mut failed = None;
        for _ in 0..1_000_000 {
            if let Err(e) = wd.pet() {
                failed = Some(e);
                break;
            }
        }
        let failed = failed.expect("a full FIFO refuses a pet");
        assert_eq!(failed.kind(), io::ErrorKind::WouldBlock, "{failed}");
        let mut got = Vec::new();
        let _ = io::Read::read_to_end(&mut reader, &mut got);
        assert!(got.len() > 2 && got.iter().all(|&b| b == b'.'));
        wd.close_cleanly().unwrap();
        let mut tail = Vec::new();
        io::Read::read_to_end(&mut reader, &mut tail).unwrap();
        assert_eq!(tail, b"V");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
