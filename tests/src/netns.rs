//! Network namespaces as test nodes ([`Netns`]), the veth pairs that join
//! two of them ([`Veth`]) and the switches that join more ([`Switch`]: one
//! bridge per network in a namespace of its own). Everything is done with
//! `ip` (iproute2); a namespace is deleted, and every process inside it
//! killed, when its [`Netns`] drops.

use crate::command::{must, run_ok};
use crate::unique;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Prefix of every namespace this harness creates.
const PREFIX: &str = "hat";

/// A network namespace owned by the test. Dropping it kills the processes
/// inside and deletes it (and with it the veth ends it holds).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `hat<pid>-<n>-<tag>` (tag sanitised and shortened) with `lo`
    /// up. Namespaces left behind by dead test processes are removed first.
    #[track_caller]
    pub fn new(tag: &str) -> Netns {
        sweep_stale();
        let name = format!(
            "{PREFIX}{}-{}-{}",
            unique::pid(),
            unique::next(),
            unique::sanitize(tag, 32)
        );
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.lo_up();
        ns
    }

    /// The name given to `ip netns`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's bind mount, `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip netns exec NAME program`: add arguments and run it. The program
    /// replaces `ip` (same pid), so signals sent to the child reach it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `args[0] args[1..]` inside the namespace; panics unless it exits 0.
    /// Returns its stdout.
    #[track_caller]
    pub fn run(&self, args: &[&str]) -> String {
        let (program, rest) = args.split_first().expect("a program to run");
        must(self.command(program).args(rest))
    }

    /// `ip -n NAME args...`; panics unless it exits 0.
    #[track_caller]
    pub fn ip(&self, args: &[&str]) -> String {
        must(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Brings the loopback interface up (done by [`Netns::new`]).
    #[track_caller]
    pub fn lo_up(&self) {
        self.ip(&["link", "set", "lo", "up"]);
    }

    /// Runs `f` on a fresh thread that has joined this namespace: sockets it
    /// creates belong to the namespace and stay there when handed back.
    pub fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> std::io::Result<R> {
        let file = File::open(self.path())?;
        std::thread::scope(|s| {
            let worker = s.spawn(move || -> std::io::Result<R> {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
                Ok(f())
            });
            match worker.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Runs the future made by `make` to its end on a current-thread tokio
    /// runtime inside this namespace ([`Netns::enter`]), so every socket it
    /// opens is here.
    #[track_caller]
    pub fn block_on<R: Send, F: std::future::Future<Output = R>>(
        &self,
        make: impl FnOnce() -> F + Send,
    ) -> R {
        self.enter(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on(make())
        })
        .unwrap_or_else(|e| panic!("enter namespace {}: {e}", self.name()))
    }

    /// Pids of the processes inside (never this test process).
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }

    /// Sends SIGKILL to every process inside and waits (2 s at most) until
    /// none is left.
    pub fn kill_all(&self) {
        kill_all_in(&self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all_in(&self.name);
        if let Err(e) = run_ok(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("hatests: {e}");
        }
    }
}

fn pids_in(name: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    run_ok(Command::new("ip").args(["netns", "pids", name]))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| p != me)
        .collect()
}

fn kill_all_in(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let pids = pids_in(name);
        if pids.is_empty() || Instant::now() >= deadline {
            return;
        }
        for p in pids {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Deletes `hat<pid>-...` namespaces whose creating process is gone (a test
/// process that was killed before its destructors ran).
fn sweep_stale() {
    let Ok(list) = run_ok(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(Ok(pid)) = rest.split('-').next().map(str::parse::<u32>) else {
            continue;
        };
        if pid == unique::pid() || PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        kill_all_in(name);
        let _ = run_ok(Command::new("ip").args(["netns", "del", name]));
    }
}

/// One side of a [`Veth`].
#[derive(Debug, Clone)]
pub struct VethEnd {
    /// Namespace name.
    pub netns: String,
    /// Interface name inside that namespace.
    pub ifname: String,
    /// IPv4 address (prefix /24).
    pub addr: Ipv4Addr,
}

/// A veth pair between two namespaces, each end with an IPv4 /24 address
/// and up. Deleted on drop (also gone with either namespace).
#[derive(Debug)]
pub struct Veth {
    pub a: VethEnd,
    pub b: VethEnd,
}

impl Veth {
    /// Creates the pair: `a_if` in `a` with `a_addr/24`, `b_if` in `b` with
    /// `b_addr/24`. Interface names (at most 15 characters) only need to be
    /// unique inside each namespace.
    #[track_caller]
    pub fn new(
        a: &Netns,
        a_if: &str,
        a_addr: Ipv4Addr,
        b: &Netns,
        b_if: &str,
        b_addr: Ipv4Addr,
    ) -> Veth {
        add_veth_pair(a, a_if, b, b_if);
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", ifname]);
            ns.ip(&["link", "set", ifname, "up"]);
        }
        Veth {
            a: VethEnd {
                netns: a.name().to_owned(),
                ifname: a_if.to_owned(),
                addr: a_addr,
            },
            b: VethEnd {
                netns: b.name().to_owned(),
                ifname: b_if.to_owned(),
                addr: b_addr,
            },
        }
    }

    /// Sets end `a` (true) or `b` (false) administratively up or down: a
    /// "pulled NIC" rather than a filtered path.
    #[track_caller]
    pub fn set_link(&self, end_a: bool, up: bool) {
        let end = if end_a { &self.a } else { &self.b };
        must(Command::new("ip").args([
            "-n",
            &end.netns,
            "link",
            "set",
            &end.ifname,
            if up { "up" } else { "down" },
        ]));
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Fails harmlessly when a namespace is already gone.
        let _ =
            run_ok(Command::new("ip").args(["-n", &self.a.netns, "link", "del", &self.a.ifname]));
    }
}

/// Creates a veth pair, `a_if` in `a` and `b_if` in `b`, both down and
/// without address. Interface names (at most 15 characters) only need to
/// be unique inside each namespace.
#[track_caller]
fn add_veth_pair(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    assert!(
        a_if.len() <= 15 && b_if.len() <= 15,
        "interface names are at most 15 characters: {a_if:?}, {b_if:?}"
    );
    must(Command::new("ip").args([
        "link",
        "add",
        a_if,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]));
}

/// An Ethernet switch for more than two namespaces: a namespace of its own
/// holding one bridge per network. A node joins a network by a veth pair
/// ([`Switch::plug`]): the node's end carries its address, the switch's end
/// is a port of the bridge. Dropping the switch deletes its namespace, and
/// with it the bridges and every pair plugged in (the nodes' ends vanish).
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
}

impl Switch {
    /// Creates the switch's namespace ([`Netns::new`] with `tag`), with no
    /// bridge yet.
    #[track_caller]
    pub fn new(tag: &str) -> Switch {
        Switch {
            ns: Netns::new(tag),
        }
    }

    /// The switch's namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Adds bridge `name` (no spanning tree, ports forward at once) and
    /// brings it up.
    #[track_caller]
    pub fn add_bridge(&self, name: &str) {
        self.ns.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        self.ns.ip(&["link", "set", name, "up"]);
    }

    /// Plugs `node` into `bridge`: a veth pair with `ifname` in `node`
    /// (address `addr/24`, up) and `port` in the switch (a port of
    /// `bridge`, up). `port` must be unique in the switch.
    #[track_caller]
    pub fn plug(&self, bridge: &str, port: &str, node: &Netns, ifname: &str, addr: Ipv4Addr) {
        add_veth_pair(node, ifname, &self.ns, port);
        self.ns.ip(&["link", "set", port, "master", bridge]);
        self.ns.ip(&["link", "set", port, "up"]);
        node.ip(&["addr", "add", &format!("{addr}/24"), "dev", ifname]);
        node.ip(&["link", "set", ifname, "up"]);
    }
}
