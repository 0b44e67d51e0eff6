//! SureHA 6.2 test 5, the data path: the service's volume is one ext4
//! image seen by each node through a loop device of its own; alpha's loop
//! device reads the image through a FUSE mirror the test controls
//! ([`hatests::disk::FaultyPath`]; this kernel has no device-mapper, so
//! `dmsetup`'s `error` table and `suspend` cannot be used). nginx serves
//! and stores the volume's files through the floating IP.
//!
//! * I/O errors on alpha's path: alpha's storage check fails, the service
//!   moves to beta at once (no local restart), the client reads there the
//!   data written through alpha, and alpha says it cannot host;
//! * I/O that hangs on alpha's path: alpha's check sees no answer, the
//!   stop cannot be proven (the unmount never completes), so alpha keeps
//!   the lock in ERRORACT and asks beta to fence it (safety rule 7); beta
//!   powers it off through the fencing device (its hung I/O dies with it)
//!   and serves the same data;
//! * I/O that hangs, and the path back while alpha's stop waits for the
//!   unmount (the cable plugged back): the stop completes, beta takes
//!   over, and with switchback the service returns to alpha once its
//!   checks pass again, with the same data (the manual's checks 4 to 6).
//!
//! At every poll (a watcher thread, every 50 ms) the volume is live on at
//! most one node's device, and (the fixture's waits) the floating IP is on
//! at most one node. Needs root, nginx and bindfs.

use hatests::disk::SharedDisk;
use hatests::require_root;
use hatests::scratch::ScratchDir;
use hatests::web::{App, DATA, NODES, Reply, SERVICE, WebService, WebSpec};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The size of the shared image.
const DISK_MIB: u32 = 64;
/// How often the watcher looks at the volume's file systems.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// Longest wait for a state of the service (detection, a stop that times
/// out, fencing, start).
const WAIT: Duration = Duration::from_secs(90);

/// A two-node web service whose volume alpha reaches through a breakable
/// path.
struct Rig {
    // Dropped in this order: the web service (its processes, and with them
    // their mounts), the disk (paths failed first, so nothing stays hung),
    // the directory.
    web: WebService,
    disk: SharedDisk,
    mount_point: PathBuf,
    _dir: ScratchDir,
}

/// The service's `[[volume]]` table: the disk's device of each node at
/// `mount_point`, checked before it is mounted, owned by nginx's workers.
fn volume_table(disk: &SharedDisk, mount_point: &Path) -> String {
    let devices: Vec<String> = NODES
        .iter()
        .map(|n| format!("{n} = \"{}\"", disk.device(n).path().display()))
        .collect();
    format!(
        "[[volume]]\ndevice = {{ {} }}\nmount_point = \"{}\"\nfstype = \"ext4\"\n\
         options = \"noatime,nodev,nosuid\"\nowner = \"www-data\"\ngroup = \"www-data\"\n\
         mode = \"0755\"\nfsck = true\n",
        devices.join(", "),
        mount_point.display()
    )
}

impl Rig {
    /// The service on alpha and beta with the volume, checked every second,
    /// its path lost after two failed checks; fencing by the power switch;
    /// `extra` lines in the service file.
    #[track_caller]
    fn start(test: &str, extra: &str) -> Rig {
        let dir = ScratchDir::new(test);
        let disk = SharedDisk::with_faulty_paths(dir.path(), DISK_MIB, &NODES, &["alpha"]);
        let mount_point = dir.join("volume");
        std::fs::create_dir_all(&mount_point)
            .unwrap_or_else(|e| panic!("{}: {e}", mount_point.display()));
        let web = WebService::start_with(
            test,
            WebSpec {
                fencing: true,
                app: App::Nginx,
                check: Some((Duration::from_secs(1), 2)),
                service_extra: format!("{extra}{}", volume_table(&disk, &mount_point)),
                ..WebSpec::default()
            },
        );
        // nginx serves the fixture's document root: make it lead to the
        // volume (resolved in each node's own mount namespace).
        let docroot = web.mount_point();
        std::fs::remove_dir(docroot).unwrap_or_else(|e| panic!("{}: {e}", docroot.display()));
        std::os::unix::fs::symlink(&mount_point, docroot)
            .unwrap_or_else(|e| panic!("{}: {e}", docroot.display()));
        Rig {
            web,
            disk,
            mount_point,
            _dir: dir,
        }
    }

    /// Runs `body` while a watcher thread checks, every 50 ms, that the
    /// volume is live on at most one node's device; panics after `body`
    /// if it ever was on two.
    #[track_caller]
    fn watched<T>(&self, body: impl FnOnce() -> T) -> T {
        let done = AtomicBool::new(false);
        let twice = Mutex::new(None);
        let value = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let live = self.disk.mounted_on();
                    if live.len() > 1 {
                        *twice.lock().unwrap_or_else(|p| p.into_inner()) = Some(live);
                        return;
                    }
                    std::thread::sleep(WATCH_EVERY);
                }
            });
            // Stops the watcher however the body ends: a panic too, or the
            // scope would wait for it forever.
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = Stop(&done);
            body()
        });
        let twice = twice.into_inner().unwrap_or_else(|p| p.into_inner());
        assert!(
            twice.is_none(),
            "the volume was live on {twice:?} at once\n{}",
            self.web.cluster().log_tails(60)
        );
        value
    }

    /// The volume is mounted on `node` only, and it serves the client.
    #[track_caller]
    fn assert_serving(&self, node: &str) {
        self.web.wait_served_by(node);
        assert_eq!(
            self.disk.mounted_on(),
            [node],
            "{node} serves; the volume should be live there only\n{}",
            self.web.cluster().log_tails(40)
        );
    }

    /// PUTs `body` as `name` through the floating IP (stored by `node`),
    /// then makes it durable: fsync through `node`'s hasvrd's view of the
    /// volume.
    #[track_caller]
    fn write(&self, node: &str, name: &str, body: &str) {
        match self.web.put(&format!("{DATA}{name}"), body) {
            Ok(Reply {
                status: 201 | 204,
                served_by: Some(by),
                ..
            }) if by == node => {}
            other => panic!(
                "PUT {name} should be stored by {node}: {other:?}\n{}",
                self.web.cluster().log_tails(40)
            ),
        }
        let file = self.web.seen_by(node, &self.mount_point.join(name));
        std::fs::File::open(&file)
            .and_then(|f| f.sync_all())
            .unwrap_or_else(|e| panic!("fsync {}: {e}", file.display()));
    }

    /// GETs `name` through the floating IP: `node` must serve `body`.
    #[track_caller]
    fn read_back(&self, node: &str, name: &str, body: &str) {
        match self.web.get(&format!("{DATA}{name}")) {
            Ok(Reply {
                status: 200,
                served_by: Some(by),
                body: got,
            }) if by == node && got == body => {}
            other => panic!(
                "GET {name} should be {body:?} served by {node}: {other:?}\n{}",
                self.web.cluster().log_tails(40)
            ),
        }
    }

    /// Waits (at most [`WAIT`]) until `node` reports `state`; the floating
    /// IP stays on one node at most, and beta never serves meanwhile unless
    /// `beta_may_serve`.
    #[track_caller]
    fn wait_state(&self, node: &str, state: &str, beta_may_serve: bool) {
        let end = Instant::now() + WAIT;
        let mut last = None;
        while Instant::now() < end {
            last = self.web.cluster().service_state(node, SERVICE);
            if last.as_deref() == Some(state) {
                return;
            }
            self.web.assert_never_twice();
            assert!(
                beta_may_serve || !self.web.holders().contains(&"beta"),
                "beta took the floating IP while alpha may still run the service\n{}",
                self.web.cluster().log_tails(60)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "{node} never reported {SERVICE} {state} within {WAIT:?} (last {last:?})\n{}",
            self.web.cluster().log_tails(80)
        );
    }
}

/// A text no other run writes.
fn unique_text(what: &str) -> String {
    format!(
        "{what}: pid {} at {:?}\n",
        std::process::id(),
        std::time::SystemTime::now()
    )
}

#[test]
fn io_errors_on_the_active_nodes_path_move_the_service_to_the_standby() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let rig = Rig::start("storage_eio", "");
    rig.watched(|| {
        rig.assert_serving("alpha");
        rig.wait_state("beta", "STANDBY", false);
        let note = unique_text("written through nginx on alpha before its path failed");
        rig.write("alpha", "note.txt", &note);
        rig.read_back("alpha", "note.txt", &note);

        let ((), outage) = rig
            .web
            .outage_during("alpha", "beta", || rig.disk.faulty("alpha").fail());
        eprintln!("I/O errors on the active node's path: {outage:?}");
        rig.assert_serving("beta");
        rig.read_back("beta", "note.txt", &note);

        let log = rig.web.cluster().log("alpha");
        assert!(log.contains("storage path lost on alpha"), "{log}");
        assert!(
            !log.contains("recovering here"),
            "a lost path is no reason for a local restart: {log}"
        );
        // Alpha cannot reach the disk: it stays standby, and refuses to
        // take the service.
        rig.wait_state("alpha", "STANDBY", true);
        let refused =
            rig.web
                .cluster()
                .service_op("alpha", haschema::ctl::ServiceOp::TakeOver, SERVICE);
        assert!(
            refused.as_ref().is_err_and(|e| e.contains("storage path")),
            "{refused:?}"
        );
        rig.read_back("beta", "note.txt", &note);
    });
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn io_that_hangs_on_the_active_node_never_runs_the_service_twice() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let rig = Rig::start("storage_hang", "");
    rig.watched(|| {
        rig.assert_serving("alpha");
        rig.wait_state("beta", "STANDBY", false);
        let note = unique_text("written through nginx on alpha before its path hung");
        rig.write("alpha", "note.txt", &note);

        rig.disk.faulty("alpha").hang();
        let hung = Instant::now();
        // The stop cannot be proven: alpha keeps the lock, in error, and
        // asks beta to fence it; beta powers it off, then takes over. A real
        // power-off ends the hung I/O with the machine; the test's switch
        // cannot end I/O hung in the kernel, so the path fails as the fence
        // is asked for (alpha has given up on its stop by then).
        rig.web
            .cluster()
            .wait_for_log("alpha", "asking beta to fence this node", WAIT);
        rig.disk.faulty("alpha").fail();
        rig.assert_serving("beta");
        eprintln!("beta served {:?} after alpha's path hung", hung.elapsed());
        let log = rig.web.cluster().log("alpha");
        assert!(log.contains("storage path lost on alpha"), "{log}");
        assert!(log.contains("stop of volumes failed"), "{log}");
        assert!(log.contains("asking beta to fence this node"), "{log}");
        let log = rig.web.cluster().log("beta");
        assert!(log.contains("alpha is fenced (powered off by"), "{log}");
        assert!(
            rig.web.switch().is_off(rig.web.cluster().ns("alpha")),
            "beta serves, and alpha is not off"
        );
        rig.read_back("beta", "note.txt", &note);
    });
    eprintln!("test took {:?}", began.elapsed());
}

#[test]
fn a_path_that_hangs_and_comes_back_fails_over_then_switches_back() {
    if !require_root() {
        return;
    }
    let began = Instant::now();
    let rig = Rig::start("storage_back", "switchback = true\n");
    rig.watched(|| {
        rig.assert_serving("alpha");
        rig.wait_state("beta", "STANDBY", false);
        let note = unique_text("written through nginx on alpha before its path hung");
        rig.write("alpha", "note.txt", &note);
        let beta_log = rig.web.cluster().log_len("beta");

        // The cable out: alpha detects it and begins to stop; the cable
        // back while its unmount still waits.
        let path = rig.disk.faulty("alpha");
        path.hang();
        rig.web
            .cluster()
            .wait_for_log("alpha", "stop of volumes begins", WAIT);
        path.resume();
        // Beta takes over, then hands the service back to alpha, whose
        // checks pass again.
        rig.web.cluster().wait_for_log(
            "beta",
            "switchback: a preferred node has been up and able",
            WAIT,
        );
        let log = rig.web.cluster().log_since("beta", beta_log);
        assert!(log.contains("start of application done"), "{log}");
        rig.assert_serving("alpha");
        rig.read_back("alpha", "note.txt", &note);
        let log = rig.web.cluster().log("alpha");
        assert!(log.contains("storage path lost on alpha"), "{log}");
        assert!(log.contains("storage path back here"), "{log}");
    });
    eprintln!("test took {:?}", began.elapsed());
}
