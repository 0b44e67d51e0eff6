//! [`PublicLan`]: the public network the floating IPs live on, shared by
//! the cluster's nodes and a client. The client is its own namespace and
//! holds the switch: a bridge `br0` (address 10.93.X.254/24) with one veth
//! port per node; each node's end is called `pub` and has 10.93.X.(i+1)/24.
//! Floating IPs go in 10.93.X.100 and up ([`PublicLan::floating`]).
//!
//! With [`PublicLan::with_ipv6`] the LAN is dual-stack: `br0` also has
//! fd93:X::fe/64 and node `i`'s `pub` fd93:X::(i+1)/64 (both without
//! duplicate address detection, so they are usable at once); IPv6 floating
//! IPs go in fd93:X::100 and up ([`PublicLan::floating6`]). The client's
//! neighbour table can be read and forged ([`PublicLan::neighbour`],
//! [`PublicLan::forge_neighbour`]) to watch announcements, and the nodes'
//! ports can be isolated from each other while each still reaches the
//! client ([`PublicLan::isolate_nodes`]).

use crate::command::must;
use crate::netns::Netns;
use crate::unique;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

/// Name of each node's NIC on the public LAN.
pub const NIC: &str = "pub";

/// The public LAN and its client.
pub struct PublicLan {
    client: Netns,
    octet: u8,
    /// The number of node ports (`p0`, `p1`, ...).
    ports: usize,
}

impl PublicLan {
    /// Builds the LAN between `nodes` (in order: `.1`, `.2`, ...) and a
    /// new client namespace.
    #[track_caller]
    pub fn new(tag: &str, nodes: &[&Netns]) -> PublicLan {
        PublicLan::with_octet(tag, nodes, unique::subnet_octet())
    }

    /// [`PublicLan::new`] on 10.93.`octet`.0/24, an octet taken from
    /// [`unique::subnet_octet`] beforehand (to name the nodes' addresses in
    /// a config written before the LAN exists).
    #[track_caller]
    pub fn with_octet(tag: &str, nodes: &[&Netns], octet: u8) -> PublicLan {
        let client = Netns::new(&format!("{tag}-client"));
        let lan = PublicLan {
            client,
            octet,
            ports: nodes.len(),
        };
        let c = lan.client.name().to_owned();
        ip(&["-n", &c, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &c,
            "addr",
            "add",
            &format!("{}/24", lan.host(254)),
            "dev",
            "br0",
        ]);
        ip(&["-n", &c, "link", "set", "br0", "up"]);
        for (i, ns) in nodes.iter().enumerate() {
            let port = format!("p{i}");
            ip(&[
                "link",
                "add",
                NIC,
                "netns",
                ns.name(),
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &c,
            ]);
            ip(&["-n", &c, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &c, "link", "set", &port, "up"]);
            let addr = format!("{}/24", lan.host(i as u8 + 1));
            ip(&["-n", ns.name(), "addr", "add", &addr, "dev", NIC]);
            ip(&["-n", ns.name(), "link", "set", NIC, "up"]);
        }
        lan
    }

    /// [`PublicLan::with_octet`], dual-stack: the IPv6 addresses of the
    /// module docs too, without duplicate address detection.
    #[track_caller]
    pub fn with_ipv6(tag: &str, nodes: &[&Netns], octet: u8) -> PublicLan {
        let lan = PublicLan::with_octet(tag, nodes, octet);
        let mut ends = vec![(lan.client.name(), "br0", lan.host6(0xfe))];
        ends.extend(
            nodes
                .iter()
                .enumerate()
                .map(|(i, ns)| (ns.name(), NIC, lan.host6(i as u16 + 1))),
        );
        for (ns, dev, addr) in ends {
            let addr = format!("{addr}/64");
            ip(&["-n", ns, "-6", "addr", "add", &addr, "dev", dev, "nodad"]);
        }
        lan
    }

    /// The client's namespace.
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// 10.93.X.`n`.
    pub fn host(&self, n: u8) -> Ipv4Addr {
        host(self.octet, n)
    }

    /// The `k`th floating IP of the LAN (10.93.X.(100 + k)).
    pub fn floating(&self, k: u8) -> Ipv4Addr {
        self.host(100 + k)
    }

    /// fd93:X::`n` (hex) on a dual-stack LAN ([`PublicLan::with_ipv6`]).
    pub fn host6(&self, n: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfd93, u16::from(self.octet), 0, 0, 0, 0, 0, n)
    }

    /// The `k`th IPv6 floating IP of the LAN (fd93:X::100 + k, hex).
    pub fn floating6(&self, k: u8) -> Ipv6Addr {
        self.host6(0x100 + u16::from(k))
    }

    /// The link-layer address the client's neighbour table has for `addr`
    /// (on `br0`), if it has an entry with one.
    #[track_caller]
    pub fn neighbour(&self, addr: IpAddr) -> Option<String> {
        let shown = self
            .client
            .ip(&["neigh", "show", &addr.to_string(), "dev", "br0"]);
        let mut words = shown.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_owned)
    }

    /// Replaces the client's neighbour entry for `addr` with `mac`, in the
    /// STALE state: the client keeps it, without probing, until it sends
    /// to `addr` or a (gratuitous) announcement overrides it.
    #[track_caller]
    pub fn forge_neighbour(&self, addr: IpAddr, mac: &str) {
        let addr = addr.to_string();
        self.client.ip(&[
            "neigh", "replace", &addr, "lladdr", mac, "dev", "br0", "nud", "stale",
        ]);
    }

    /// Isolates (or rejoins) the nodes' ports on the switch from each
    /// other: the nodes no longer hear each other on the public LAN (no
    /// ARP, no neighbour discovery) but each still reaches the client, and
    /// keeps its carrier.
    #[track_caller]
    pub fn isolate_nodes(&self, isolated: bool) {
        let state = if isolated { "on" } else { "off" };
        for i in 0..self.ports {
            let port = format!("p{i}");
            must(Command::new("bridge").args([
                "-n",
                self.client.name(),
                "link",
                "set",
                "dev",
                &port,
                "isolated",
                state,
            ]));
        }
    }

    /// Sets node `i`'s port on the switch up or down (its `pub` NIC loses
    /// carrier: a public cable unplugged).
    pub fn set_port(&self, i: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            self.client.name(),
            "link",
            "set",
            &format!("p{i}"),
            state,
        ]);
    }

    /// One TCP request from the client to `addr:port`: what the server
    /// sent before closing, or why there was none. Bounded by `timeout`.
    /// IPv6 addresses go in brackets (and curl's URL globbing is off).
    pub fn fetch(
        &self,
        addr: impl Into<IpAddr>,
        port: u16,
        timeout: Duration,
    ) -> Result<String, String> {
        let secs = format!("{:.1}", timeout.as_secs_f64());
        let url = format!("http://{}/", SocketAddr::new(addr.into(), port));
        let out = self
            .client
            .command("curl")
            .args(["-sS", "-g", "--max-time", &secs, &url])
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Polls [`PublicLan::fetch`] until `ok` holds for its answer, for at
    /// most `timeout`; the last answer (or error) when it never did.
    pub fn wait_answer(
        &self,
        addr: impl Into<IpAddr>,
        port: u16,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let addr = addr.into();
        let end = Instant::now() + timeout;
        let mut last = Err("never asked".to_owned());
        while Instant::now() < end {
            last = self.fetch(addr, port, Duration::from_secs(2));
            if let Ok(body) = &last
                && ok(body)
            {
                return last;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "no fitting answer within {timeout:?}; last: {last:?}"
        ))
    }
}

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// 10.93.`octet`.`n`: node `i` of a public LAN is `n = i + 1`.
pub fn host(octet: u8, n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 93, octet, n)
}
