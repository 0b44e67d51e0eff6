//! A virtual RS-232 null-modem cable between two daemons.
//!
//! Each end is a pty pair: the daemon opens the slave (see [`Cable::path`]);
//! a background thread reads what each daemon writes on its master and
//! writes it to the other master, paced to the line speed (ptys ignore the
//! baud rate: at B baud, 8N1, at most B/10 bytes a second). The test can cut
//! the cable (both ways or one way), restore it, inject line noise in the
//! middle of a frame, and unplug and replug it.
//!
//! Line model: the sending side is back-pressured (the bridge takes at most
//! a small queue from a master, like a UART transmitting at line speed); the
//! receiving side never blocks the line (bytes a daemon does not read pile
//! up in its pty and, past the kernel's buffer, are lost as an overrun). A
//! cut line silently discards what is sent, as a pulled 3-wire cable does.
//!
//! The harness keeps both slaves open itself, so a daemon that closes and
//! reopens its port never hangs the pty up.
//!
//! Device names: a cable made by [`Cable::with_links`] names its ends by
//! symlinks in a directory (`DIR/ttyA`, `DIR/ttyB`) pointing at the current
//! slaves (`/dev/pts/N`), so the names in a daemon's config survive a
//! replug, as a udev by-id name does. [`Cable::unplug`] removes the links
//! first (a daemon retrying its port meanwhile gets "no such file", never a
//! reused `/dev/pts/N` of another test), then closes both masters and the
//! harness's slaves: the daemons' ports hang up and the slave devices
//! vanish. [`Cable::replug`] opens fresh pty pairs, bridges them and points
//! the links at them (atomically, by rename). Cuts and counters survive a
//! replug.

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
use nix::poll::{PollFd, PollFlags, poll};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::stat::Mode;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Direction of travel on the cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Written at end A, read at end B.
    AToB,
    /// Written at end B, read at end A.
    BToA,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::AToB => 0,
            Direction::BToA => 1,
        }
    }
}

/// One end of the cable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    A,
    B,
}

impl End {
    fn index(self) -> usize {
        match self {
            End::A => 0,
            End::B => 1,
        }
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Bytes delivered to the receiving end (noise included).
    pub delivered: u64,
    /// Bytes discarded because the direction was cut.
    pub discarded: u64,
    /// Bytes lost because the receiving pty was full.
    pub overrun: u64,
    /// Noise bursts injected.
    pub noise_bursts: u64,
}

/// Bytes the bridge takes from a sending master before it stops reading.
const QUEUE_CAP: usize = 256;
/// Longest wait for a mid-frame moment before noise goes in anyway.
const NOISE_WAIT: Duration = Duration::from_secs(3);
/// Poll period while the line is idle (bounds the reaction to stop/cut).
const IDLE_TICK_MS: u16 = 20;

struct Noise {
    bytes: Vec<u8>,
    /// Inject at the next chance even if not mid-frame.
    force: bool,
}

#[derive(Default)]
struct Ctl {
    cut: [bool; 2],
    noise: [Option<Noise>; 2],
    /// Set by the bridge when a noise burst went in: whether mid-frame.
    noise_done: [Option<bool>; 2],
    stats: [DirStats; 2],
}

struct Shared {
    ctl: Mutex<Ctl>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ctl> {
        lock(&self.ctl)
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not
/// hide the cable from the cleanup).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Names of the links made by [`Cable::with_links`], end A then end B.
pub const LINK_NAMES: [&str; 2] = ["ttyA", "ttyB"];

/// A paced, cuttable, unpluggable null-modem cable between two pty slaves.
pub struct Cable {
    baud: u32,
    /// Stable names of the ends (symlinks to the slaves), if any.
    links: Option<[PathBuf; 2]>,
    shared: Arc<Shared>,
    /// The plugged-in pty pairs and their bridge; None while unplugged.
    plug: Mutex<Option<Plug>>,
    /// The slave devices of the last plug (kept while unplugged).
    devices: Mutex<[PathBuf; 2]>,
}

/// The pty pairs of a plugged-in cable and the thread bridging them.
struct Plug {
    /// Held open so the ptys never hang up while daemons reopen them.
    _slaves: [OwnedFd; 2],
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Plug {
    /// Opens both pty pairs and starts bridging them; returns the slaves'
    /// device paths too.
    fn start(baud: u32, shared: &Arc<Shared>) -> std::io::Result<(Plug, [PathBuf; 2])> {
        let (master_a, slave_a, path_a) = open_pair()?;
        let (master_b, slave_b, path_b) = open_pair()?;
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = Bridge {
            masters: [master_a, master_b],
            shared: Arc::clone(shared),
            stop: Arc::clone(&stop),
            bytes_per_sec: f64::from(baud) / 10.0,
        };
        let thread = std::thread::Builder::new()
            .name("cable".into())
            .spawn(move || bridge.run())?;
        let plug = Plug {
            _slaves: [slave_a, slave_b],
            stop,
            thread,
        };
        Ok((plug, [path_a, path_b]))
    }

    /// Stops the bridge, which closes both masters, then closes the slaves.
    fn pull(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

impl Cable {
    /// Creates both pty pairs and starts bridging them at `baud` (8N1). The
    /// ends are named by their slave devices, `/dev/pts/N`, which change at
    /// each [`Cable::replug`].
    pub fn new(baud: u32) -> std::io::Result<Cable> {
        Cable::build(baud, None)
    }

    /// Like [`Cable::new`], with the ends named by symlinks `dir/ttyA` and
    /// `dir/ttyB` ([`LINK_NAMES`]) that follow the slaves across replugs.
    pub fn with_links(baud: u32, dir: &Path) -> std::io::Result<Cable> {
        Cable::build(baud, Some(LINK_NAMES.map(|name| dir.join(name))))
    }

    fn build(baud: u32, links: Option<[PathBuf; 2]>) -> std::io::Result<Cable> {
        assert!(baud >= 10, "baud rate too low");
        let shared = Arc::new(Shared {
            ctl: Mutex::new(Ctl::default()),
            changed: Condvar::new(),
        });
        let (plug, devices) = Plug::start(baud, &shared)?;
        let cable = Cable {
            baud,
            links,
            shared,
            plug: Mutex::new(Some(plug)),
            devices: Mutex::new(devices),
        };
        cable.point_links()?;
        Ok(cable)
    }

    /// The configured line speed.
    pub fn baud(&self) -> u32 {
        self.baud
    }

    /// The name of an end for the daemon's config: its link if the cable has
    /// links, else its slave device (`/dev/pts/N`).
    pub fn path(&self, end: End) -> PathBuf {
        match &self.links {
            Some(links) => links[end.index()].clone(),
            None => self.device(end),
        }
    }

    /// The slave device of an end (`/dev/pts/N`); while unplugged, the one
    /// it had (gone now).
    pub fn device(&self, end: End) -> PathBuf {
        lock(&self.devices)[end.index()].clone()
    }

    /// Whether the cable is plugged in.
    pub fn is_plugged(&self) -> bool {
        lock(&self.plug).is_some()
    }

    /// Pulls the cable out at both ends: removes the links, closes both
    /// masters and the harness's slaves. A daemon's open port hangs up (its
    /// reads see end of file or an I/O error) and the slave devices vanish.
    /// Does nothing if already unplugged.
    pub fn unplug(&self) {
        let mut plug = lock(&self.plug);
        let Some(p) = plug.take() else { return };
        // Links first: no daemon may reopen a device number the kernel is
        // about to free (and may give to another test).
        for link in self.links.iter().flatten() {
            let _ = std::fs::remove_file(link);
        }
        p.pull();
    }

    /// Plugs a fresh cable in: new pty pairs, bridged, and (with links) the
    /// links pointed at the new slaves. Does nothing if plugged in.
    pub fn replug(&self) -> std::io::Result<()> {
        let mut plug = lock(&self.plug);
        if plug.is_some() {
            return Ok(());
        }
        let (p, devices) = Plug::start(self.baud, &self.shared)?;
        *plug = Some(p);
        *lock(&self.devices) = devices;
        self.point_links()
    }

    /// Points each link (if any) at its end's current slave, atomically: a
    /// daemon opening it sees the old target or the new one, never nothing.
    fn point_links(&self) -> std::io::Result<()> {
        let Some(links) = &self.links else {
            return Ok(());
        };
        for (link, end) in links.iter().zip([End::A, End::B]) {
            let name = link
                .file_name()
                .map_or_else(|| "tty".into(), |n| n.to_string_lossy().into_owned());
            let tmp = link.with_file_name(format!(".{name}.new"));
            match std::fs::remove_file(&tmp) {
                Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            std::os::unix::fs::symlink(self.device(end), &tmp)?;
            std::fs::rename(&tmp, link)?;
        }
        Ok(())
    }

    /// Stops forwarding both ways; bytes sent meanwhile are lost.
    pub fn cut(&self) {
        self.shared.lock().cut = [true, true];
    }

    /// Stops forwarding in one direction only.
    pub fn cut_one_way(&self, dir: Direction) {
        self.shared.lock().cut[dir.index()] = true;
    }

    /// Forwards both ways again.
    pub fn restore(&self) {
        self.shared.lock().cut = [false, false];
    }

    /// Whether a direction is cut.
    pub fn is_cut(&self, dir: Direction) -> bool {
        self.shared.lock().cut[dir.index()]
    }

    /// Inserts `bytes` into the stream of `dir`, between two bytes of a
    /// frame in flight (a non-zero byte already sent and a non-zero byte
    /// next: serial frames end with a zero byte). Waits for such a moment,
    /// at most 3 s, then injects anyway. Returns whether the noise went in
    /// mid-frame; false also when the direction is cut or the cable is
    /// unplugged (noise is lost).
    pub fn inject_noise(&self, dir: Direction, bytes: &[u8]) -> bool {
        let i = dir.index();
        if !self.is_plugged() {
            return false;
        }
        let mut ctl = self.shared.lock();
        if ctl.cut[i] || bytes.is_empty() {
            return false;
        }
        ctl.noise_done[i] = None;
        ctl.noise[i] = Some(Noise {
            bytes: bytes.to_vec(),
            force: false,
        });
        let start = Instant::now();
        // Bounded: at most NOISE_WAIT then one more second once forced.
        loop {
            if let Some(mid) = ctl.noise_done[i].take() {
                return mid;
            }
            let waited = start.elapsed();
            if waited >= NOISE_WAIT + Duration::from_secs(1) {
                ctl.noise[i] = None;
                return false;
            }
            if waited >= NOISE_WAIT
                && let Some(n) = ctl.noise[i].as_mut()
            {
                n.force = true;
            }
            let (guard, _) = self
                .shared
                .changed
                .wait_timeout(ctl, Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner());
            ctl = guard;
        }
    }

    /// Counters of one direction.
    pub fn stats(&self, dir: Direction) -> DirStats {
        self.shared.lock().stats[dir.index()]
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.unplug();
    }
}

impl std::fmt::Debug for Cable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cable")
            .field("baud", &self.baud)
            .field("links", &self.links)
            .field("devices", &*lock(&self.devices))
            .field("plugged", &self.is_plugged())
            .finish()
    }
}

/// Random noise bytes; with `allow_zero` false, no frame delimiter (0) is
/// among them, so one burst damages exactly the one frame it lands in.
pub fn random_noise(len: usize, allow_zero: bool) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("getrandom");
    if !allow_zero {
        for b in &mut bytes {
            if *b == 0 {
                *b = 0x55;
            }
        }
    }
    bytes
}

/// Opens a pty pair, close-on-exec on both sides (daemons started by other
/// tests must not inherit them), the slave in raw mode, the master
/// non-blocking.
fn open_pair() -> std::io::Result<(OwnedFd, OwnedFd, PathBuf)> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let path = PathBuf::from(ptsname_r(&master)?);
    let master: OwnedFd = master.into();
    let slave = open(
        &path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut t = tcgetattr(&slave)?;
    cfmakeraw(&mut t);
    tcsetattr(&slave, SetArg::TCSANOW, &t)?;
    let flags = OFlag::from_bits_retain(fcntl(&master, FcntlArg::F_GETFL)?);
    fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    fcntl(&master, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok((master, slave, path))
}

/// The bridging thread's state.
struct Bridge {
    masters: [OwnedFd; 2],
    shared: Arc<Shared>,
    /// Set to end the thread (which then closes the masters).
    stop: Arc<AtomicBool>,
    bytes_per_sec: f64,
}

/// One direction's line state inside the bridge.
#[derive(Default)]
struct Line {
    queue: VecDeque<u8>,
    /// Bytes the line may send now (token bucket).
    credit: f64,
    /// The last byte put on the receiving end.
    last: Option<u8>,
}

impl Bridge {
    fn run(self) {
        let mut lines = [Line::default(), Line::default()];
        // Allow a tiny burst so one wakeup can send a few bytes, never more.
        let burst = (self.bytes_per_sec * 0.004).max(2.0);
        let mut last_tick = Instant::now();
        let mut buf = [0u8; QUEUE_CAP];
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let dt = now.duration_since(last_tick).as_secs_f64();
            last_tick = now;
            let mut notify = false;
            {
                let mut ctl = self.shared.lock();
                for (d, line) in lines.iter_mut().enumerate() {
                    let (src, dst) = (&self.masters[d], &self.masters[1 - d]);
                    if ctl.cut[d] {
                        // Bounded drain: the pty holds a finite amount.
                        for _ in 0..64 {
                            match nix::unistd::read(src, &mut buf) {
                                Ok(n) if n > 0 => ctl.stats[d].discarded += n as u64,
                                _ => break,
                            }
                        }
                        ctl.stats[d].discarded += line.queue.len() as u64;
                        line.queue.clear();
                        line.credit = 0.0;
                        line.last = None;
                        continue;
                    }
                    let room = QUEUE_CAP.saturating_sub(line.queue.len());
                    if room > 0
                        && let Ok(n) = nix::unistd::read(src, &mut buf[..room])
                    {
                        line.queue.extend(&buf[..n]);
                    }
                    if let Some(noise) = ctl.noise[d].as_ref() {
                        let mid = line.last.is_some_and(|b| b != 0)
                            && line.queue.front().is_some_and(|&b| b != 0);
                        if mid || noise.force {
                            let noise = ctl.noise[d].take().expect("checked");
                            for &b in noise.bytes.iter().rev() {
                                line.queue.push_front(b);
                            }
                            ctl.noise_done[d] = Some(mid);
                            ctl.stats[d].noise_bursts += 1;
                            notify = true;
                        }
                    }
                    line.credit = if line.queue.is_empty() {
                        line.credit.min(burst)
                    } else {
                        (line.credit + dt * self.bytes_per_sec).min(burst.max(1.0))
                    };
                    let n = (line.credit.floor() as usize).min(line.queue.len());
                    if n == 0 {
                        continue;
                    }
                    line.credit -= n as f64;
                    let out: Vec<u8> = line.queue.drain(..n).collect();
                    line.last = out.last().copied();
                    match nix::unistd::write(dst, &out) {
                        Ok(w) => {
                            ctl.stats[d].delivered += w as u64;
                            ctl.stats[d].overrun += (n - w) as u64;
                        }
                        Err(_) => ctl.stats[d].overrun += n as u64,
                    }
                }
            }
            if notify {
                self.shared.changed.notify_all();
            }
            // Sleep until a master has input (if we would take it) or the
            // next byte is due on a busy line.
            let busy = lines.iter().any(|l| !l.queue.is_empty());
            let timeout_ms: u16 = if busy {
                let per_byte_ms = 1000.0 / self.bytes_per_sec;
                per_byte_ms.clamp(1.0, f64::from(IDLE_TICK_MS)) as u16
            } else {
                IDLE_TICK_MS
            };
            let wants = |l: &Line| {
                if l.queue.len() < QUEUE_CAP {
                    PollFlags::POLLIN
                } else {
                    PollFlags::empty()
                }
            };
            let mut fds = [
                PollFd::new(self.masters[0].as_fd(), wants(&lines[0])),
                PollFd::new(self.masters[1].as_fd(), wants(&lines[1])),
            ];
            let _ = poll(&mut fds, timeout_ms);
            // Input that arrives while bytes are still due should not make
            // the loop spin: at most one extra pass per millisecond.
            if busy {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    }
}
