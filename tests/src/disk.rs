//! Shared disks for the namespaced tests: [`LoopDevice`], an image file
//! attached as a loop device (detached on drop), and [`SharedDisk`], one
//! ext4 image seen by each node through a loop device of its own (as two
//! hosts see one LUN: a mount on each node at once is two mounts the kernel
//! can show, never one shared device hiding a double mount).

use crate::command::must;
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A shared disk: one ext4 image file, seen by each node through a loop
/// device of its own (as two hosts see one LUN), so that a mount on each
/// node at once is two mounts the kernel can show, not one.
#[derive(Debug)]
pub struct SharedDisk {
    image: PathBuf,
    devices: Vec<(&'static str, LoopDevice)>,
}

impl SharedDisk {
    /// Creates `image` (`mib` MiB, `mkfs.ext4`) and attaches one loop
    /// device per node.
    #[track_caller]
    pub fn new(image: PathBuf, mib: u32, nodes: &[&'static str]) -> SharedDisk {
        must(
            Command::new("truncate")
                .arg("-s")
                .arg(format!("{mib}M"))
                .arg(&image),
        );
        must(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let devices = nodes
            .iter()
            .map(|node| (*node, LoopDevice::attach(&image)))
            .collect();
        SharedDisk { image, devices }
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
            .map(|(_, d)| d)
            .unwrap_or_else(|| panic!("no device of {node}"))
    }

    /// The nodes whose device carries a live (mounted) file system now,
    /// in any mount namespace ([`LoopDevice::ext4_live`]).
    pub fn mounted_on(&self) -> Vec<&'static str> {
        self.devices
            .iter()
            .filter(|(_, d)| d.ext4_live())
            .map(|(n, _)| *n)
            .collect()
    }
}
