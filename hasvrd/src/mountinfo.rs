//! This node's mount table as the kernel shows it to hasvrd
//! (`/proc/self/mountinfo`, see proc_pid_mountinfo(5)), and which block
//! device a mount comes from.
//!
//! A device is recognised by its device number, never by its name: the
//! same disk may be written `/dev/disk/by-id/...`, `/dev/mapper/...` or
//! `/dev/dm-3`, and mountinfo shows whatever name it was mounted by. Two
//! loop devices over one image file are two devices (as two nodes see one
//! shared disk); a loop device's backing file is shown for the operator.

use nix::sys::stat::{major, minor};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};

/// Where the mount table is read from.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// A device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNo {
    pub major: u64,
    pub minor: u64,
}

impl DevNo {
    /// From a `dev_t` (`st_dev`, `st_rdev`).
    pub fn from_raw(dev: u64) -> DevNo {
        DevNo {
            major: major(dev),
            minor: minor(dev),
        }
    }

    /// Parses `major:minor` in decimal (mountinfo) or, with `radix` 16,
    /// in hex (`/proc/<pid>/maps`).
    pub fn parse(s: &str, radix: u32) -> Option<DevNo> {
        let (ma, mi) = s.split_once(':')?;
        Some(DevNo {
            major: u64::from_str_radix(ma, radix).ok()?,
            minor: u64::from_str_radix(mi, radix).ok()?,
        })
    }
}

impl fmt::Display for DevNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The mount's id (unique while it is mounted).
    pub id: u64,
    /// The id of the mount it sits on.
    pub parent: u64,
    /// The file system's device number (`st_dev` of its files).
    pub dev: DevNo,
    /// Where it is mounted, in hasvrd's mount namespace.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,noatime`).
    pub mount_options: String,
    pub fstype: String,
    /// What it was mounted from, as given to mount(2) (`/dev/loop0`).
    pub source: PathBuf,
}

impl Entry {
    /// True when mounted read-only.
    pub fn read_only(&self) -> bool {
        self.mount_options.split(',').any(|o| o == "ro")
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012`
/// newline, `\134` backslash), byte for byte: a path need not be UTF-8.
fn unescape(field: &str) -> OsString {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let digits = tail
            .get(..3)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match digits {
            Some(d) if b == b'\\' => {
                let value = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                rest = &tail[3..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    OsString::from_vec(out)
}

/// One mountinfo line: `id parent maj:min root mount_point options
/// [optional fields...] - fstype source super_options`.
fn parse_line(line: &str) -> Option<Entry> {
    let (mount, fs) = line.split_once(" - ")?;
    let mut m = mount.split(' ');
    let id = m.next()?.parse().ok()?;
    let parent = m.next()?.parse().ok()?;
    let dev = DevNo::parse(m.next()?, 10)?;
    let _root = m.next()?;
    let mount_point = PathBuf::from(unescape(m.next()?));
    let mount_options = m.next()?.to_owned();
    let mut f = fs.split(' ');
    let fstype = f.next()?.to_owned();
    let source = PathBuf::from(unescape(f.next()?));
    Some(Entry {
        id,
        parent,
        dev,
        mount_point,
        mount_options,
        fstype,
        source,
    })
}

/// Every well-formed line of a mountinfo text, in its order.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

/// Reads this process's mount table.
pub fn read() -> io::Result<Vec<Entry>> {
    Ok(parse(&fs::read_to_string(MOUNTINFO)?))
}

/// The mount that is visible at `mount_point` (the top one when several are
/// stacked there), if any. `mount_point` must be canonical, as mountinfo
/// shows real paths.
pub fn top_at<'a>(table: &'a [Entry], mount_point: &Path) -> Option<&'a Entry> {
    let here: Vec<&Entry> = table
        .iter()
        .filter(|e| e.mount_point == mount_point)
        .collect();
    // The top one is the one no other mount at the same point sits on.
    here.iter()
        .rev()
        .find(|e| !here.iter().any(|o| o.parent == e.id))
        .or(here.last())
        .copied()
}

/// Mounts strictly below `mount_point` (they keep it busy).
pub fn below<'a>(table: &'a [Entry], mount_point: &Path) -> Vec<&'a Entry> {
    table
        .iter()
        .filter(|e| e.mount_point != mount_point && e.mount_point.starts_with(mount_point))
        .collect()
}

/// The device number of the block device at `path` (symlinks followed);
/// `None` when it is something else.
pub fn block_dev(path: &Path) -> io::Result<Option<DevNo>> {
    let meta = fs::metadata(path)?;
    Ok(meta
        .file_type()
        .is_block_device()
        .then(|| DevNo::from_raw(meta.rdev())))
}

/// True when `entry` is a mount of the block device `dev`: its file system
/// has that device number, or its source names that device (file systems
/// such as btrfs show an anonymous device number).
pub fn is_from(entry: &Entry, dev: DevNo) -> bool {
    entry.dev == dev
        || (entry.source.is_absolute() && block_dev(&entry.source).ok().flatten() == Some(dev))
}

/// The file a loop device reads and writes, when `dev` is one.
pub fn loop_backing_file(dev: DevNo) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/sys/dev/block/{dev}/loop/backing_file")).ok()?;
    let text = text.trim_end_matches('\n');
    (!text.is_empty()).then(|| PathBuf::from(text))
}

/// A mounted file system, as [`crate::volume::is_mounted`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// Where it is mounted (canonical path).
    pub mount_point: PathBuf,
    /// What it was mounted from, as the kernel names it (`/dev/loop0`,
    /// `/dev/mapper/vg-data`).
    pub source: PathBuf,
    /// The block device `source` resolves to (symlinks followed:
    /// `/dev/dm-3`), when it is one.
    pub device: Option<PathBuf>,
    /// The file system's device number.
    pub dev: DevNo,
    pub fstype: String,
    pub read_only: bool,
    /// The image file behind a loop device.
    pub backing_file: Option<PathBuf>,
}

impl Mounted {
    /// Describes `entry`, resolving its device.
    pub fn from_entry(entry: &Entry) -> Mounted {
        let device = if entry.source.is_absolute() {
            fs::canonicalize(&entry.source)
                .ok()
                .filter(|p| block_dev(p).ok().flatten().is_some())
        } else {
            None
        };
        // The loop device is the source's, or (same thing for ext4, xfs)
        // the file system's device number.
        let loop_dev = device
            .as_deref()
            .and_then(|d| block_dev(d).ok().flatten())
            .unwrap_or(entry.dev);
        Mounted {
            mount_point: entry.mount_point.clone(),
            source: entry.source.clone(),
            device,
            dev: entry.dev,
            fstype: entry.fstype.clone(),
            read_only: entry.read_only(),
            backing_file: loop_backing_file(loop_dev),
        }
    }
}

impl fmt::Display for Mounted {
    /// `/dev/loop0 (7:0, ext4, loop device over /srv/disk.img)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.source.display())?;
        if let Some(device) = &self.device
            && device != &self.source
        {
            write!(f, "= {}, ", device.display())?;
        }
        write!(f, "{}, {}", self.dev, self.fstype)?;
        if self.read_only {
            f.write_str(", read-only")?;
        }
        if let Some(file) = &self.backing_file {
            write!(f, ", loop device over {}", file.display())?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
90 27 7:0 / /srv/my\\040data rw,noatime shared:12 master:3 - ext4 /dev/loop0 rw
91 90 7:1 / /srv/my\\040data ro,relatime - ext4 /dev/loop1 ro
92 91 0:50 / /srv/my\\040data/tmp rw - tmpfs tmpfs rw
95 27 0:60 /sub /srv/b\\134s rw - btrfs /dev/sdb rw
";

    #[test]
    fn parses_fields_and_escapes() {
        let t = parse(TABLE);
        assert_eq!(t.len(), 6);
        let e = &t[2];
        assert_eq!((e.id, e.parent), (90, 27));
        assert_eq!(e.dev, DevNo { major: 7, minor: 0 });
        assert_eq!(e.mount_point, Path::new("/srv/my data"));
        assert_eq!(e.source, Path::new("/dev/loop0"));
        assert_eq!(e.fstype, "ext4");
        assert!(!e.read_only());
        assert!(t[3].read_only());
        assert_eq!(t[5].mount_point, Path::new("/srv/b\\s"));
        assert!(parse("garbage\n1 2 3\n").is_empty());
    }

    #[test]
    fn unescapes_bytes_not_utf8() {
        use std::os::unix::ffi::OsStrExt as _;
        assert_eq!(unescape("a\\377b").as_bytes(), b"a\xffb");
        assert_eq!(unescape("a\\12").as_bytes(), b"a\\12");
        assert_eq!(unescape("tab\\011").as_bytes(), b"tab\t");
    }

    #[test]
    fn top_of_a_stack_and_mounts_below() {
        let t = parse(TABLE);
        let top = top_at(&t, Path::new("/srv/my data")).unwrap();
        assert_eq!(top.id, 91);
        assert!(top_at(&t, Path::new("/srv")).is_none());
        let below: Vec<u64> = below(&t, Path::new("/srv/my data"))
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(below, [92]);
        // Path prefixes are by component: /srv/b\s is not below /srv/b.
        assert!(super::below(&t, Path::new("/srv/b")).is_empty());
    }

    #[test]
    fn devno_in_decimal_and_hex() {
        assert_eq!(
            DevNo::parse("254:16", 10),
            Some(DevNo {
                major: 254,
                minor: 16
            })
        );
        assert_eq!(
            DevNo::parse("fe:10", 16),
            Some(DevNo {
                major: 254,
                minor: 16
            })
        );
        assert_eq!(DevNo::parse("fe10", 16), None);
        let d = DevNo::from_raw(nix::sys::stat::makedev(259, 70000));
        assert_eq!(d.to_string(), "259:70000");
    }
}
