//! A simulated watchdog "hardware" ([`FifoWatchdog`]) for the stand-in of
//! `hamond::watchdog::Watchdog`: a FIFO that the watchdog writes one byte
//! per pet into, read by a thread that "resets the node" (runs a callback,
//! e.g. [`PowerSwitch::power_off`](crate::PowerSwitch::power_off)) when no
//! byte came for its timeout.
//!
//! It follows the Linux watchdog core's rules: any byte is a pet (the
//! stand-in pets once when it opens, as opening a device arms it); a close
//! right after a `V` disarms it (the magic close); a close without one
//! leaves it armed, counting from the last pet, and a new writer may open
//! the FIFO and pet again (a restarted daemon). A new writer after a
//! disarm arms it again (hamond started again after a clean stop). It
//! resets at most once.

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a run of the simulated watchdog ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No pet for the timeout: the node was reset (the callback ran, and
    /// had returned by `at`).
    Reset {
        /// When the timeout ran out (before the callback ran).
        fired: Instant,
        /// When the callback had returned.
        at: Instant,
        /// The last pet seen.
        last_pet: Instant,
    },
    /// Closed right after a `V`: disarmed, it resets only if a new writer
    /// arms it again.
    Disarmed { at: Instant },
}

#[derive(Debug, Default)]
struct State {
    pets: u64,
    last_pet: Option<Instant>,
    outcome: Option<Outcome>,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

/// The simulated watchdog. Stops watching (without resetting) on drop.
#[derive(Debug)]
pub struct FifoWatchdog {
    path: PathBuf,
    timeout: Duration,
    shared: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FifoWatchdog {
    /// Makes the FIFO `dir/watchdog`, opens its read end (so the stand-in
    /// can open it) and starts watching. It is armed by the first byte (the
    /// stand-in's open); `reset` runs when `timeout` passes with no pet.
    #[track_caller]
    pub fn start(
        dir: &Path,
        timeout: Duration,
        reset: impl FnOnce() + Send + 'static,
    ) -> FifoWatchdog {
        let path = dir.join("watchdog");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
        let reader = open_reader(&path);
        let shared: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, shared, stop) = (path.clone(), shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("fifo-watchdog".into())
                .spawn(move || watch(&path, reader, timeout, &shared, &stop, Box::new(reset)))
                .expect("a thread")
        };
        FifoWatchdog {
            path,
            timeout,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// The FIFO, for `Watchdog::open`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Pets seen so far (bytes read).
    pub fn pets(&self) -> u64 {
        self.shared.0.lock().unwrap().pets
    }

    /// The last pet seen.
    pub fn last_pet(&self) -> Option<Instant> {
        self.shared.0.lock().unwrap().last_pet
    }

    /// How it ended, if it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.shared.0.lock().unwrap().outcome
    }

    /// Waits up to `limit` for it to reset the node: the outcome then, or
    /// the last one (None, or a disarm) if it did not.
    pub fn wait_reset(&self, limit: Duration) -> Option<Outcome> {
        let (lock, cv) = &*self.shared;
        let state = lock.lock().unwrap();
        let (state, _) = cv
            .wait_timeout_while(state, limit, |s| {
                !matches!(s.outcome, Some(Outcome::Reset { .. }))
            })
            .unwrap();
        state.outcome
    }

    /// Waits up to `limit` for it to end.
    pub fn wait_outcome(&self, limit: Duration) -> Option<Outcome> {
        let (lock, cv) = &*self.shared;
        let state = lock.lock().unwrap();
        let (state, _) = cv
            .wait_timeout_while(state, limit, |s| s.outcome.is_none())
            .unwrap();
        state.outcome
    }
}

impl Drop for FifoWatchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn open_reader(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for reading: {e}", path.display()))
}

/// The watching thread.
fn watch(
    path: &Path,
    mut reader: File,
    timeout: Duration,
    shared: &Shared,
    stop: &AtomicBool,
    reset: Box<dyn FnOnce() + Send>,
) {
    let (lock, cv) = &**shared;
    let finish = |outcome: Outcome| {
        lock.lock().unwrap().outcome = Some(outcome);
        cv.notify_all();
    };
    let mut deadline: Option<Instant> = None;
    let mut magic = false;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let Some(d) = deadline
            && now >= d
        {
            let last_pet = lock.lock().unwrap().last_pet.expect("armed by a pet");
            reset();
            finish(Outcome::Reset {
                fired: now,
                at: Instant::now(),
                last_pet,
            });
            return;
        }
        // Wake at least every 20 ms: to see `stop`, and to fire on time.
        let slice = deadline.map_or(Duration::from_millis(20), |d| {
            d.saturating_duration_since(now)
                .min(Duration::from_millis(20))
        });
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        let timeout_ms = PollTimeout::try_from(slice).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, timeout_ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("poll {}: {e}", path.display()),
        }
        match reader.read(&mut buf) {
            Ok(0) => {
                // The writer closed.
                if magic && deadline.is_some() {
                    finish(Outcome::Disarmed { at: Instant::now() });
                    deadline = None;
                    magic = false;
                }
                // Armed or not, wait for a new writer on a fresh read end
                // (the old one would report the hang-up for ever).
                reader = open_reader(path);
            }
            Ok(n) => {
                let now = Instant::now();
                magic = buf[n - 1] == b'V';
                deadline = Some(now + timeout);
                let mut s = lock.lock().unwrap();
                s.pets += n as u64;
                s.last_pet = Some(now);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read {}: {e}", path.display()),
        }
    }
}
