//! Volumes on real kernels: a 64 MiB ext4 image seen through two loop
//! devices, as two nodes see one shared disk (never one shared device: that
//! would hide a double mount). A file written through one device is read
//! back through the other; mounts are idempotent and refuse another device
//! or a second place; users of a mount are ended by the unmount, which is
//! proven; what cannot be ended (hasvrd itself, a mount below) is named, and
//! never detached lazily; fsck's verdict decides the mount; owner, group and
//! mode are applied. Needs root (skips without, fails under CI) and
//! e2fsprogs (mkfs.ext4, e2fsck, debugfs), losetup.

use haschema::service::Volume;
use hasvrd::track::Tracker;
use hasvrd::volume::{self, Error, fsck::Verdict};
use hatests::SharedDisk;
use hatests::command::must;
use hatests::scratch::ScratchDir;
use nix::mount::MntFlags;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The service's `resource_release_timeout` in these tests (the smallest a
/// service file allows).
const RELEASE: Duration = Duration::from_secs(12);
const FSCK_TIMEOUT: Duration = Duration::from_secs(60);
const ALPHA: &str = "alpha";
const BETA: &str = "beta";

/// One image file, attached as two loop devices (alpha's and beta's view
/// of the shared disk). Drop ends the children it started, unmounts what
/// is mounted under its directory, detaches the loop devices and removes
/// the service's cgroup, even when the test failed.
struct Disk {
    disk: SharedDisk,
    tracker: Tracker,
    children: Vec<Child>,
    scratch: ScratchDir,
}

fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
}

impl Disk {
    /// A fresh ext4 image with two loop devices over it.
    fn new(tag: &str) -> Disk {
        init_log();
        let scratch = ScratchDir::new(&format!("vol-{tag}"));
        let disk = SharedDisk::new(scratch.join("shared.img"), 64, &[ALPHA, BETA]);
        let service = format!(
            "vol-{}-{}-{}",
            hatests::unique::sanitize(tag, 20),
            hatests::unique::pid(),
            hatests::unique::next()
        );
        let tracker = Tracker::for_service("hatests", &service).expect("tracker");
        assert_ne!(disk.device(ALPHA).path(), disk.device(BETA).path());
        Disk {
            disk,
            tracker,
            children: Vec::new(),
            scratch,
        }
    }

    /// alpha's device of the disk.
    fn alpha(&self) -> PathBuf {
        self.disk.device(ALPHA).path().to_path_buf()
    }

    /// beta's device of the disk.
    fn beta(&self) -> PathBuf {
        self.disk.device(BETA).path().to_path_buf()
    }

    /// A volume of this disk at `<scratch>/<name>`, fsck off, defaults.
    fn volume(&self, name: &str) -> Volume {
        Volume {
            devices: BTreeMap::from([
                (ALPHA.to_owned(), self.alpha()),
                (BETA.to_owned(), self.beta()),
            ]),
            mount_point: self.scratch.join(name),
            fstype: "ext4".into(),
            options: String::new(),
            owner: None,
            group: None,
            mode: None,
            fsck: false,
        }
    }

    /// Runs `debugfs -w -R request` on the (unmounted) image.
    fn debugfs(&self, request: &str) {
        must(
            Command::new("debugfs")
                .arg("-w")
                .arg("-R")
                .arg(request)
                .arg(self.disk.image()),
        );
    }

    /// Starts `argv` with its working directory `cwd`; killed on drop.
    fn spawn(&mut self, cwd: &Path, argv: &[&str]) -> u32 {
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {argv:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }
}

/// True while anything is mounted at or below `dir`.
fn mounted_under(dir: &Path) -> Vec<PathBuf> {
    let table = hasvrd::mountinfo::read().expect("mountinfo");
    let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut below: Vec<PathBuf> = table
        .into_iter()
        .filter(|e| e.mount_point.starts_with(&real))
        .map(|e| e.mount_point)
        .collect();
    // Deepest first.
    below.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    below
}

impl Drop for Disk {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Cleanup only: a lazy unmount is fine here (the image is discarded).
        for _ in 0..20 {
            let left = mounted_under(self.scratch.path());
            if left.is_empty() {
                break;
            }
            for mp in left {
                if nix::mount::umount2(&mp, MntFlags::empty()).is_err() {
                    let _ = nix::mount::umount2(&mp, MntFlags::MNT_DETACH);
                }
            }
        }
        let _ = self.tracker.remove();
    }
}

async fn mount(disk: &Disk, vol: &Volume, node: &str) -> Result<volume::MountReport, Error> {
    volume::mount(vol, node, &disk.tracker, FSCK_TIMEOUT).await
}

/// The error as the operator reads it (printed with `--nocapture`).
fn shown(err: &Error) -> String {
    let text = err.to_string();
    eprintln!("error shown: {text}");
    text
}

/// The pid's exit status, once reaped by `Disk::children`.
fn reap(disk: &mut Disk, pid: u32) -> std::process::ExitStatus {
    let child = disk
        .children
        .iter_mut()
        .find(|c| c.id() == pid)
        .expect("our child");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {pid} still running");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_disk_moves_between_two_loop_devices() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("move");
    let vol = disk.volume("data");
    assert!(!vol.mount_point.exists(), "created by the mount");

    let report = mount(&disk, &vol, ALPHA).await.expect("mount on alpha");
    assert!(!report.already);
    assert_eq!(report.mounted.source, disk.alpha());
    assert_eq!(report.mounted.fstype, "ext4");
    // Reconcile view: the loop device and the image behind it.
    let seen = volume::is_mounted(&vol.mount_point)
        .await
        .unwrap()
        .expect("mounted");
    assert_eq!(seen.device.as_deref(), Some(disk.alpha().as_path()));
    assert_eq!(
        seen.backing_file.as_deref(),
        Some(std::fs::canonicalize(disk.disk.image()).unwrap().as_path())
    );
    assert!(seen.to_string().contains("loop device over"), "{seen}");

    std::fs::write(vol.mount_point.join("hello.txt"), b"written on alpha\n").unwrap();
    let down = volume::umount(&vol, ALPHA, RELEASE)
        .await
        .expect("umount on alpha");
    assert_eq!(down.unmounted.unwrap().source, disk.alpha());
    assert!(down.released.terminated.is_empty());
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!vol.mount_point.join("hello.txt").exists());

    // Beta's device: the same disk, another block device.
    let report = mount(&disk, &vol, BETA).await.expect("mount on beta");
    assert_eq!(report.mounted.source, disk.beta());
    assert_eq!(
        std::fs::read_to_string(vol.mount_point.join("hello.txt")).unwrap(),
        "written on alpha\n"
    );
    volume::umount(&vol, BETA, RELEASE)
        .await
        .expect("umount on beta");
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );

    // Unmounting what is not mounted is a proven stop too.
    let again = volume::umount(&vol, ALPHA, RELEASE).await.unwrap();
    assert!(again.unmounted.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_is_idempotent_and_refuses_another_device_or_place() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("idem");
    let vol = disk.volume("data");
    mount(&disk, &vol, ALPHA).await.expect("first mount");
    let again = mount(&disk, &vol, ALPHA).await.expect("second mount");
    assert!(again.already);
    assert_eq!(again.mounted.source, disk.alpha());

    // The same mount point, from beta's device: refused, naming both.
    let err = mount(&disk, &vol, BETA).await.unwrap_err();
    assert!(matches!(err, Error::MountedFromOther { .. }), "{err:?}");
    let text = shown(&err);
    for dev in [&disk.alpha(), &disk.beta()] {
        assert!(text.contains(&dev.display().to_string()), "{text}");
    }

    // The same device at a second place: refused (a disk mounted twice).
    let elsewhere = disk.volume("other");
    let err = mount(&disk, &elsewhere, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::MountedElsewhere { .. }), "{err:?}");
    assert!(shown(&err).contains(&vol.mount_point.display().to_string()));
    assert!(
        volume::is_mounted(&elsewhere.mount_point)
            .await
            .unwrap()
            .is_none()
    );

    // A symlink to the device is the same device.
    let link = disk.scratch.join("disk-link");
    std::os::unix::fs::symlink(disk.alpha(), &link).unwrap();
    let mut via_link = vol.clone();
    via_link.devices.insert(ALPHA.into(), link);
    assert!(mount(&disk, &via_link, ALPHA).await.unwrap().already);

    // Stopping beta's view of the volume leaves alpha's mount alone: it is
    // not beta's device.
    let stop = volume::umount(&vol, BETA, RELEASE).await.unwrap();
    assert!(stop.unmounted.is_none());
    assert_eq!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .map(|m| m.source),
        Some(disk.alpha().clone())
    );

    volume::umount(&vol, ALPHA, RELEASE).await.unwrap();
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );

    // The device mounted by hand somewhere else: the stop is not proven,
    // and says where.
    std::fs::create_dir(&elsewhere.mount_point).unwrap();
    nix::mount::mount(
        Some(&disk.alpha()),
        &elsewhere.mount_point,
        Some("ext4"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let err = volume::umount(&vol, ALPHA, RELEASE).await.unwrap_err();
    assert!(matches!(err, Error::MountedElsewhere { .. }), "{err:?}");
    assert!(
        shown(&err).contains(&elsewhere.mount_point.display().to_string()),
        "{err}"
    );
    assert!(
        volume::is_mounted(&elsewhere.mount_point)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn umount_ends_the_users_and_proves_the_unmount() {
    if !hatests::require_root() {
        return;
    }
    let mut disk = Disk::new("users");
    let vol = disk.volume("data");
    mount(&disk, &vol, ALPHA).await.unwrap();
    let mp = vol.mount_point.clone();
    std::fs::write(mp.join("log"), b"line\n").unwrap();
    std::fs::copy("/bin/sleep", mp.join("sleep")).unwrap();

    // Working directory there; a file open there; an executable from there;
    // and one that ignores SIGTERM (ignored signals stay ignored over exec).
    let root = PathBuf::from("/");
    let by_cwd = disk.spawn(&mp, &["/bin/sleep", "1000"]);
    let by_file = disk.spawn(
        &root,
        &["/usr/bin/tail", "-f", mp.join("log").to_str().unwrap()],
    );
    let by_exe = disk.spawn(&root, &[mp.join("sleep").to_str().unwrap(), "1000"]);
    let stubborn = disk.spawn(
        &mp,
        &["/bin/bash", "-c", "trap '' TERM; exec /bin/sleep 1000"],
    );

    // Wait until all four hold the file system (the bash has exec'd).
    let want = [by_cwd, by_file, by_exe, stubborn];
    let deadline = Instant::now() + Duration::from_secs(5);
    let users = loop {
        let users = volume::users(&mp).await.unwrap();
        let pids: Vec<u32> = users.iter().map(|u| u.pid as u32).collect();
        let settled = users
            .iter()
            .any(|u| u.pid as u32 == stubborn && u.name == "sleep");
        if want.iter().all(|p| pids.contains(p)) && settled {
            break users;
        }
        assert!(Instant::now() < deadline, "users: {users:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let how = |pid: u32| {
        users
            .iter()
            .find(|u| u.pid as u32 == pid)
            .unwrap()
            .how
            .clone()
    };
    assert_eq!(how(by_cwd), "cwd");
    assert!(how(by_file).starts_with("open file"), "{}", how(by_file));
    assert!(how(by_file).ends_with("/log"), "{}", how(by_file));
    assert_eq!(how(by_exe), "exe");
    assert!(users.iter().all(|u| !u.is_self));

    let start = Instant::now();
    let report = volume::umount(&vol, ALPHA, RELEASE).await.expect("umount");
    let took = start.elapsed();
    assert!(took < RELEASE, "took {took:?}");
    // The stubborn one outlived SIGTERM's grace: SIGKILL.
    assert!(
        took >= volume::users::TERM_GRACE,
        "SIGKILL came before the grace: {took:?}"
    );
    let termed: Vec<u32> = report
        .released
        .terminated
        .iter()
        .map(|u| u.pid as u32)
        .collect();
    let killed: Vec<u32> = report
        .released
        .killed
        .iter()
        .map(|u| u.pid as u32)
        .collect();
    for pid in want {
        assert!(termed.contains(&pid), "{pid} not sent SIGTERM: {report:?}");
    }
    assert_eq!(killed, [stubborn], "{report:?}");
    assert!(volume::is_mounted(&mp).await.unwrap().is_none(), "proven");
    assert!(volume::users(&mp).await.unwrap().is_empty());

    use nix::sys::signal::Signal::{SIGKILL, SIGTERM};
    use std::os::unix::process::ExitStatusExt as _;
    for pid in [by_cwd, by_file, by_exe] {
        assert_eq!(reap(&mut disk, pid).signal(), Some(SIGTERM as i32), "{pid}");
    }
    assert_eq!(reap(&mut disk, stubborn).signal(), Some(SIGKILL as i32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_ended_is_named_and_never_detached() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("busy");
    let vol = disk.volume("data");
    mount(&disk, &vol, ALPHA).await.unwrap();
    let mp = vol.mount_point.clone();

    // hasvrd itself (this process) holds a file open: never signalled.
    let held = std::fs::File::create(mp.join("held")).unwrap();
    let start = Instant::now();
    let err = volume::umount(&vol, ALPHA, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    let Error::Busy { users, .. } = &err else {
        panic!("{err:?}")
    };
    // (A child another test forks may share the descriptor until its exec.)
    assert!(
        users
            .0
            .iter()
            .any(|u| u.is_self && u.pid as u32 == std::process::id()),
        "{users}"
    );
    let text = shown(&err);
    assert!(text.contains("hasvrd itself"), "{text}");
    assert!(text.contains("not detached lazily"), "{text}");
    assert!(
        text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    assert!(
        volume::is_mounted(&mp).await.unwrap().is_some(),
        "still there"
    );
    drop(held);

    // A mount below it: named too.
    let sub = mp.join("sub");
    std::fs::create_dir(&sub).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    let err = volume::umount(&vol, ALPHA, Duration::from_secs(1))
        .await
        .unwrap_err();
    let text = shown(&err);
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(text.contains("mounts below it"), "{text}");
    assert!(text.contains(&sub.display().to_string()), "{text}");
    assert!(volume::is_mounted(&mp).await.unwrap().is_some());
    nix::mount::umount2(&sub, MntFlags::empty()).unwrap();

    volume::umount(&vol, ALPHA, RELEASE)
        .await
        .expect("free now");
    assert!(volume::is_mounted(&mp).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_runs_and_a_zeroed_superblock_refuses_the_mount() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("sb");
    let mut vol = disk.volume("data");
    vol.fsck = true;

    // A clean file system: checked, mounted.
    let report = mount(&disk, &vol, ALPHA).await.expect("clean mount");
    let fsck = report.fsck.expect("fsck ran");
    assert_eq!((fsck.exit_code, fsck.verdict), (0, Verdict::Clean));
    assert!(fsck.argv[0].ends_with("fsck.ext4") || fsck.argv[0].ends_with("e2fsck"));
    assert_eq!(fsck.argv[1], "-p");
    volume::umount(&vol, ALPHA, RELEASE).await.unwrap();

    // Zeros over the primary superblock (bytes 1024..2048), unmounted.
    must(
        Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", disk.disk.image().display()))
            .args(["bs=1024", "seek=1", "count=1", "conv=notrunc,fsync"]),
    );
    let err = mount(&disk, &vol, BETA).await.unwrap_err();
    let text = shown(&err);
    assert!(matches!(err, Error::FsckFailed { .. }), "{err:?}");
    assert!(text.contains("exit 8"), "{text}");
    assert!(text.contains("operational error"), "{text}");
    assert!(text.contains("NOT mounted"), "{text}");
    assert!(text.contains("e2fsck -b 32768"), "{text}");
    assert!(text.contains(&disk.beta().display().to_string()), "{text}");
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );

    // Without fsck, the kernel refuses it, and the error says what to do.
    vol.fsck = false;
    let err = mount(&disk, &vol, BETA).await.unwrap_err();
    let text = shown(&err);
    assert!(matches!(err, Error::Mount { .. }), "{err:?}");
    assert!(text.contains("dmesg"), "{text}");
    assert!(text.contains("fsck = true"), "{text}");
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_exit_code_decides_the_mount() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("fsck");
    let mut vol = disk.volume("data");
    vol.fsck = true;

    // A wrong link count, in a file system marked as having errors: fsck -p
    // corrects it (exit 1) and the mount goes on.
    disk.debugfs("sif <2> links_count 5");
    disk.debugfs("ssv state 2");
    let report = mount(&disk, &vol, ALPHA).await.expect("corrected, mounted");
    let fsck = report.fsck.unwrap();
    assert_eq!((fsck.exit_code, fsck.verdict), (1, Verdict::Corrected));
    volume::umount(&vol, ALPHA, RELEASE).await.unwrap();

    // The root directory made a regular file: fsck -p will not guess
    // (exit 4, "UNEXPECTED INCONSISTENCY"): refused.
    disk.debugfs("sif <2> mode 0100644");
    disk.debugfs("ssv state 2");
    let err = mount(&disk, &vol, BETA).await.unwrap_err();
    let text = shown(&err);
    assert!(
        matches!(err, Error::FsckUncorrected { code: 4, .. }),
        "{err:?}"
    );
    assert!(text.contains("errors left uncorrected"), "{text}");
    assert!(text.contains("NOT mounted"), "{text}");
    assert!(
        text.contains(&format!("e2fsck -f {}", disk.beta().display())),
        "{text}"
    );
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_group_and_mode_are_applied() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("own");
    let mut vol = disk.volume("data");
    vol.owner = Some("nobody".into());
    vol.group = Some("nogroup".into());
    vol.mode = Some(0o2750);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let nogroup = nix::unistd::Group::from_name("nogroup").unwrap().unwrap();

    mount(&disk, &vol, ALPHA).await.unwrap();
    let meta = std::fs::metadata(&vol.mount_point).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (nobody.uid.as_raw(), nogroup.gid.as_raw(), 0o2750)
    );

    // Changed by hand while mounted: the next (idempotent) mount restores it.
    std::fs::set_permissions(&vol.mount_point, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(mount(&disk, &vol, ALPHA).await.unwrap().already);
    let meta = std::fs::metadata(&vol.mount_point).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o2750);
    volume::umount(&vol, ALPHA, RELEASE).await.unwrap();

    // Kept on the disk: seen through the other device, numeric owner.
    vol.owner = Some("4321".into());
    vol.group = None;
    vol.mode = None;
    mount(&disk, &vol, BETA).await.unwrap();
    let meta = std::fs::metadata(&vol.mount_point).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (4321, nogroup.gid.as_raw(), 0o2750)
    );
    volume::umount(&vol, BETA, RELEASE).await.unwrap();

    // An unknown account fails before anything is mounted.
    vol.owner = Some("no-such-user-hat".into());
    let err = mount(&disk, &vol, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::NoSuchAccount { .. }), "{err:?}");
    assert!(shown(&err).contains("no-such-user-hat"));
    assert!(
        volume::is_mounted(&vol.mount_point)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_devices_and_options_are_refused_with_advice() {
    if !hatests::require_root() {
        return;
    }
    let disk = Disk::new("bad");
    let vol = disk.volume("data");

    let err = mount(&disk, &vol, "gamma").await.unwrap_err();
    assert!(matches!(err, Error::NoDevice { .. }), "{err:?}");
    assert!(shown(&err).contains("device.gamma"), "{err}");

    let mut missing = vol.clone();
    missing
        .devices
        .insert(ALPHA.into(), PathBuf::from("/dev/hat-no-such-disk"));
    let err = mount(&disk, &missing, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::DeviceMissing { .. }), "{err:?}");
    assert!(shown(&err).contains("lsblk"), "{err}");

    let mut file = vol.clone();
    file.devices
        .insert(ALPHA.into(), disk.disk.image().to_path_buf());
    let err = mount(&disk, &file, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::NotBlockDevice { .. }), "{err:?}");
    assert!(shown(&err).contains("losetup"), "{err}");

    let mut opts = vol.clone();
    opts.options = "noatime,bind".into();
    let err = mount(&disk, &opts, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::Option { .. }), "{err:?}");

    // Generic options become flags; the rest reaches ext4.
    let mut opts = vol.clone();
    opts.options = "ro,noatime,nodev,nosuid,noexec,errors=remount-ro,nofail".into();
    let report = mount(&disk, &opts, ALPHA).await.unwrap();
    assert!(report.mounted.read_only);
    let table = hasvrd::mountinfo::read().unwrap();
    let real = std::fs::canonicalize(&opts.mount_point).unwrap();
    let entry = hasvrd::mountinfo::top_at(&table, &real).unwrap();
    for o in ["ro", "noatime", "nodev", "nosuid", "noexec"] {
        assert!(
            entry.mount_options.split(',').any(|x| x == o),
            "{o} missing from {}",
            entry.mount_options
        );
    }
    volume::umount(&opts, ALPHA, RELEASE).await.unwrap();

    // A data option ext4 does not know: the kernel's refusal, explained.
    let mut opts = vol.clone();
    opts.options = "hat_no_such_option=1".into();
    let err = mount(&disk, &opts, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::Mount { .. }), "{err:?}");
    assert!(shown(&err).contains("options"), "{err}");
    assert!(
        volume::is_mounted(&opts.mount_point)
            .await
            .unwrap()
            .is_none()
    );

    // The mount point is a file: refused.
    let mut not_dir = vol.clone();
    not_dir.mount_point = disk.scratch.join("a-file");
    std::fs::write(&not_dir.mount_point, b"").unwrap();
    let err = mount(&disk, &not_dir, ALPHA).await.unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
}
