//! A volume's option string (`"noatime,nodev,data=ordered"`) split as
//! mount(8) does: the generic options become `MS_*` flags of mount(2), the
//! rest is the file system's own data string, passed through unchanged.

use super::Error;
use nix::mount::MsFlags;

/// What a volume's options ask of mount(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// The generic flags (`ro`, `noatime`, `nodev`, ...).
    pub flags: MsFlags,
    /// The file system's own options, comma-separated in the order given
    /// (`data=ordered,errors=remount-ro`); empty for none.
    pub data: String,
    /// Options that only mean something to mount(8) or fstab (`auto`,
    /// `nofail`, `_netdev`, `x-*`, ...): accepted and left out.
    pub ignored: Vec<String>,
}

impl MountOptions {
    /// True when the file system is mounted read-only.
    pub fn read_only(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }
}

/// What one generic option does to the flags.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
}

/// The generic options mount(8) turns into flags, with their opposites.
fn generic(option: &str) -> Option<Effect> {
    use Effect::{Clear, Set};
    Some(match option {
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        _ => return None,
    })
}

/// Options of fstab and mount(8) alone: the kernel never sees them.
fn userspace_only(option: &str) -> bool {
    matches!(
        option,
        "defaults"
            | "auto"
            | "noauto"
            | "user"
            | "nouser"
            | "users"
            | "owner"
            | "group"
            | "_netdev"
            | "nofail"
    ) || option.starts_with("x-")
        || option.starts_with("comment=")
}

/// Options that would make mount(2) do something else than mount the
/// volume's device where it belongs.
fn refused(option: &str) -> Option<&'static str> {
    let name = option.split_once('=').map_or(option, |(name, _)| name);
    Some(match name {
        "bind" | "rbind" | "move" | "remount" => {
            "a volume is mounted from its device; bind, move and remount are not volume mounts"
        }
        "loop" => {
            "the device must be a block device: attach an image with `losetup` and give the \
             loop device (or the shared disk itself) as the volume's device"
        }
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" | "make-private" | "make-rprivate" | "make-shared" | "make-rshared"
        | "make-slave" | "make-rslave" | "make-unbindable" | "make-runbindable" => {
            "mount propagation is not a volume option"
        }
        _ => return None,
    })
}

/// Splits a volume's comma-separated option string; the empty string gives
/// the defaults (read-write, relatime). A later option overrides an earlier
/// one (`ro,rw` is read-write), as with mount(8).
pub fn parse(options: &str) -> Result<MountOptions, Error> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut ignored = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        if let Some(why) = refused(option) {
            return Err(Error::Option {
                option: option.to_owned(),
                why,
            });
        }
        match generic(option) {
            Some(Effect::Set(f)) => flags.insert(f),
            Some(Effect::Clear(f)) => flags.remove(f),
            None if userspace_only(option) => ignored.push(option.to_owned()),
            None => data.push(option),
        }
    }
    Ok(MountOptions {
        flags,
        data: data.join(","),
        ignored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_read_write_defaults() {
        let o = parse("").unwrap();
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.data, "");
        assert!(!o.read_only());
    }

    #[test]
    fn generic_options_become_flags_and_the_rest_is_data() {
        let o = parse("ro,noatime,nodev,nosuid,noexec,sync,data=ordered,errors=remount-ro,nofail")
            .unwrap();
        assert_eq!(
            o.flags,
            MsFlags::MS_RDONLY
                | MsFlags::MS_NOATIME
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_SYNCHRONOUS
        );
        assert_eq!(o.data, "data=ordered,errors=remount-ro");
        assert_eq!(o.ignored, ["nofail"]);
        assert!(o.read_only());
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = parse("ro,noexec,rw,exec,defaults,x-systemd.automount").unwrap();
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.ignored, ["defaults", "x-systemd.automount"]);
        let o = parse("rw,ro").unwrap();
        assert!(o.read_only());
    }

    #[test]
    fn data_keeps_its_order_and_values() {
        let o = parse("context=system_u:object_r:x:s0,noatime,discard,commit=30").unwrap();
        assert_eq!(o.data, "context=system_u:object_r:x:s0,discard,commit=30");
        assert_eq!(o.flags, MsFlags::MS_NOATIME);
    }

    #[test]
    fn bind_loop_and_propagation_are_refused_with_a_reason() {
        for bad in [
            "bind",
            "remount",
            "move",
            "rbind",
            "loop",
            "loop=/dev/loop3",
            "shared",
        ] {
            let e = parse(&format!("noatime,{bad}")).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("`{bad}`")), "{text}");
        }
        assert!(parse("loop").unwrap_err().to_string().contains("losetup"));
    }
}
