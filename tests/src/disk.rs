//! Shared disks for the namespaced tests: [`LoopDevice`], an image file
//! attached as a loop device (detached on drop), and [`SharedDisk`], one
//! ext4 image seen by each node through a loop device of its own (as two
//! hosts see one LUN: a mount on each node at once is two mounts the kernel
//! can show, never one shared device hiding a double mount).
//!
//! A node's path to the disk can be made breakable ([`FaultyPath`]): its
//! loop device then reads the image through a FUSE mirror (Debian's
//! `bindfs`) the test controls: stopped, every I/O of that node hangs;
//! ended, every I/O fails with EIO. (This kernel has no device-mapper, so
//! `dmsetup`'s `error` target and `suspend` are not available.)

use crate::command::{must, run_ok, wait_deadline};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Debian's bindfs, the FUSE mirror of a [`FaultyPath`].
pub const BINDFS: &str = "/usr/bin/bindfs";
/// Longest wait for the mirror to be mounted, or its server to end.
const MIRROR_WAIT: Duration = Duration::from_secs(10);

/// A loop device attached to an image file (`losetup -f --show`), detached
/// again when dropped.
#[derive(Debug)]
pub struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    /// Attaches the first free loop device to `image`.
    #[track_caller]
    pub fn attach(image: &Path) -> LoopDevice {
        let out = must(Command::new("losetup").arg("-f").arg("--show").arg(image));
        LoopDevice {
            path: PathBuf::from(out.trim()),
        }
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `loopN`: the kernel's name of the device.
    pub fn name(&self) -> &str {
        self.path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }

    /// `major:minor`, as mountinfo shows a file system of this device.
    #[track_caller]
    pub fn devno(&self) -> String {
        let file = format!("/sys/block/{}/dev", self.name());
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .trim()
            .to_owned()
    }

    /// Whether an ext4 file system of this device is live in the kernel:
    /// mounted in any mount namespace (or not yet released). The kernel
    /// keeps `/sys/fs/ext4/loopN` from the mount to the end of the
    /// unmount, whoever mounted it.
    pub fn ext4_live(&self) -> bool {
        Path::new("/sys/fs/ext4").join(self.name()).exists()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = crate::command::run_ok(Command::new("losetup").arg("-d").arg(&self.path)) {
            eprintln!("hatests: {e}");
        }
    }
}

/// A node's breakable path to an image: a FUSE mirror (`bindfs`, run by
/// the test) of the image's directory, and a loop device over the mirrored
/// image. [`FaultyPath::hang`] stops the mirror's server (every I/O through
/// it waits, uninterruptibly, as on a dead fibre-channel path),
/// [`FaultyPath::resume`] lets it go on, [`FaultyPath::fail`] ends it (the
/// kernel fails every I/O through it with EIO, for good: what hung fails
/// too). Dropped, it fails the path (nothing stays hung), detaches the loop
/// device and unmounts the mirror.
#[derive(Debug)]
pub struct FaultyPath {
    device: Option<LoopDevice>,
    mirror: PathBuf,
    pid: Pid,
    server: Mutex<Child>,
}

impl FaultyPath {
    /// Mirrors the directory of `image` at `mirror` (created) and attaches
    /// a loop device to the mirrored image.
    #[track_caller]
    pub fn attach(image: &Path, mirror: PathBuf) -> FaultyPath {
        assert!(
            Path::new(BINDFS).exists(),
            "{BINDFS} is missing: install Debian's bindfs (scripts/install-deps)"
        );
        let (Some(dir), Some(name)) = (image.parent(), image.file_name()) else {
            panic!("{} is not a file in a directory", image.display());
        };
        std::fs::create_dir_all(&mirror).unwrap_or_else(|e| panic!("{}: {e}", mirror.display()));
        let server = Command::new(BINDFS)
            .arg("-f")
            .arg(dir)
            .arg(&mirror)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINDFS}: {e}"));
        let mut path = FaultyPath {
            device: None,
            mirror,
            pid: Pid::from_raw(server.id() as i32),
            server: Mutex::new(server),
        };
        let mirrored = path.mirror.join(name);
        let end = Instant::now() + MIRROR_WAIT;
        while !mirrored.exists() {
            assert!(
                Instant::now() < end,
                "bindfs did not mirror {} at {} within {MIRROR_WAIT:?}",
                dir.display(),
                path.mirror.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        path.device = Some(LoopDevice::attach(&mirrored));
        path
    }

    /// The loop device over the mirrored image.
    #[track_caller]
    pub fn device(&self) -> &LoopDevice {
        self.device
            .as_ref()
            .unwrap_or_else(|| panic!("the path's loop device is detached"))
    }

    /// Every I/O through the path hangs from now on (the server is
    /// stopped), until [`FaultyPath::resume`] or [`FaultyPath::fail`].
    #[track_caller]
    pub fn hang(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// The path works again after [`FaultyPath::hang`].
    #[track_caller]
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Every I/O through the path fails with EIO from now on, what hangs
    /// included: the server is killed, so the kernel aborts its FUSE
    /// connection. Idempotent.
    pub fn fail(&self) {
        let mut server = self.server.lock().unwrap_or_else(|p| p.into_inner());
        let _ = server.kill();
        if wait_deadline(&mut server, MIRROR_WAIT).is_none() {
            eprintln!("hatests: bindfs (pid {}) did not end", self.pid);
        }
    }

    #[track_caller]
    fn signal(&self, signal: Signal) {
        let pid = self.pid;
        kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to bindfs ({pid}): {e}"));
    }
}

impl Drop for FaultyPath {
    fn drop(&mut self) {
        self.fail();
        drop(self.device.take());
        // The mirror is the test's own: lazily if a loop device still
        // holds the image (a node's mount not yet released).
        if run_ok(Command::new("umount").arg(&self.mirror)).is_err()
            && let Err(e) = run_ok(Command::new("umount").arg("-l").arg(&self.mirror))
        {
            eprintln!("hatests: {e}");
        }
    }
}

/// A node's device of a [`SharedDisk`].
#[derive(Debug)]
enum NodeDevice {
    Direct(LoopDevice),
    Faulty(FaultyPath),
}

/// A shared disk: one ext4 image file, seen by each node through a loop
/// device of its own (as two hosts see one LUN), so that a mount on each
/// node at once is two mounts the kernel can show, not one.
#[derive(Debug)]
pub struct SharedDisk {
    image: PathBuf,
    devices: Vec<(&'static str, NodeDevice)>,
}

/// Creates `image` (`mib` MiB) with an ext4 file system.
#[track_caller]
fn make_image(image: &Path, mib: u32) {
    must(
        Command::new("truncate")
            .arg("-s")
            .arg(format!("{mib}M"))
            .arg(image),
    );
    must(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image));
}

impl SharedDisk {
    /// Creates `image` (`mib` MiB, `mkfs.ext4`) and attaches one loop
    /// device per node.
    #[track_caller]
    pub fn new(image: PathBuf, mib: u32, nodes: &[&'static str]) -> SharedDisk {
        make_image(&image, mib);
        let devices = nodes
            .iter()
            .map(|node| (*node, NodeDevice::Direct(LoopDevice::attach(&image))))
            .collect();
        SharedDisk { image, devices }
    }

    /// Like [`SharedDisk::new`] in directory `dir` (the image is
    /// `dir/store/shared.img`), but the nodes in `faulty` reach it through
    /// a [`FaultyPath`] of their own (mirror `dir/path-NODE`).
    #[track_caller]
    pub fn with_faulty_paths(
        dir: &Path,
        mib: u32,
        nodes: &[&'static str],
        faulty: &[&'static str],
    ) -> SharedDisk {
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap_or_else(|e| panic!("{}: {e}", store.display()));
        let image = store.join("shared.img");
        make_image(&image, mib);
        let devices = nodes
            .iter()
            .map(|node| {
                let path = if faulty.contains(node) {
                    NodeDevice::Faulty(FaultyPath::attach(&image, dir.join(format!("path-{node}"))))
                } else {
                    NodeDevice::Direct(LoopDevice::attach(&image))
                };
                (*node, path)
            })
            .collect();
        SharedDisk { image, devices }
    }

    /// `node`'s breakable path ([`SharedDisk::with_faulty_paths`]).
    #[track_caller]
    pub fn faulty(&self, node: &str) -> &FaultyPath {
        match self.devices.iter().find(|(n, _)| *n == node) {
            Some((_, NodeDevice::Faulty(path))) => path,
            _ => panic!("{node} has no faulty path"),
        }
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    /// `node`'s loop device.
    #[track_caller]
    pub fn device(&self, node: &str) -> &LoopDevice {
        self.devices
            .iter()
            .find(|(n, _)| *n == node)
            .map(|(_, d)| match d {
                NodeDevice::Direct(dev) => dev,
                NodeDevice::Faulty(path) => path.device(),
            })
            .unwrap_or_else(|| panic!("no device of {node}"))
    }

    /// The nodes whose device carries a live (mounted) file system now,
    /// in any mount namespace ([`LoopDevice::ext4_live`]).
    pub fn mounted_on(&self) -> Vec<&'static str> {
        self.devices
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| self.device(n).ext4_live())
            .collect()
    }
}
