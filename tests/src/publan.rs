//! [`PublicLan`]: the public network the floating IPs live on, shared by
//! the cluster's nodes and a client. The client is its own namespace and
//! holds the switch: a bridge `br0` (address 10.93.X.254/24) with one veth
//! port per node; each node's end is called `pub` and has 10.93.X.(i+1)/24.
//! Floating IPs go in 10.93.X.100 and up ([`PublicLan::floating`]).

use crate::netns::Netns;
use crate::unique;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

/// Name of each node's NIC on the public LAN.
pub const NIC: &str = "pub";

/// The public LAN and its client.
pub struct PublicLan {
    client: Netns,
    octet: u8,
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
        let lan = PublicLan { client, octet };
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
    pub fn fetch(&self, addr: Ipv4Addr, port: u16, timeout: Duration) -> Result<String, String> {
        let secs = format!("{:.1}", timeout.as_secs_f64());
        let out = self
            .client
            .command("curl")
            .args([
                "-sS",
                "--max-time",
                &secs,
                &format!("http://{addr}:{port}/"),
            ])
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
        addr: Ipv4Addr,
        port: u16,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
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
