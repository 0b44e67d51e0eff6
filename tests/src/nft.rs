//! Cutting UDP traffic with nftables inside a namespace (this kernel has no
//! netem: loss and one-way cuts come from filters).
//!
//! Each namespace gets a table `inet hatests` with two port sets and two
//! drop rules:
//!
//! ```text
//! input:  udp dport @in_ports  drop   (datagrams arriving for these ports)
//! output: udp dport @out_ports drop   (datagrams leaving for these ports)
//! ```
//!
//! A cut adds a port to a set, a restore removes it; both are atomic nft
//! transactions and idempotent. In the test clusters every network has its
//! own port, so a port names one network.

use crate::command::run_ok;
use crate::netns::Netns;
use std::io::Write;
use std::process::Stdio;

/// Which traffic of a namespace to cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Datagrams arriving at the namespace.
    In,
    /// Datagrams leaving the namespace.
    Out,
    /// Both.
    Both,
}

impl Dir {
    fn sets(self) -> &'static [&'static str] {
        match self {
            Dir::In => &["in_ports"],
            Dir::Out => &["out_ports"],
            Dir::Both => &["in_ports", "out_ports"],
        }
    }
}

const TABLE: &str = "
table inet hatests {
    set in_ports { type inet_service; }
    set out_ports { type inet_service; }
    chain input {
        type filter hook input priority filter - 10; policy accept;
        udp dport @in_ports counter drop
    }
    chain output {
        type filter hook output priority filter - 10; policy accept;
        udp dport @out_ports counter drop
    }
}
";

/// Feeds an nft script to `nft -f -` inside `ns`.
pub fn script(ns: &Netns, text: &str) -> Result<(), String> {
    let mut child = ns
        .command("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run nft in {}: {e} (is the nftables package installed?)",
                ns.name()
            )
        })?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing to nft: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft in {} failed: {}\nscript:\n{text}",
            ns.name(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Creates the `hatests` table in `ns` unless it is there already.
pub fn install(ns: &Netns) -> Result<(), String> {
    let exists = run_ok(ns.command("nft").args(["list", "table", "inet", "hatests"])).is_ok();
    if exists { Ok(()) } else { script(ns, TABLE) }
}

/// Drops UDP datagrams to `port` in direction `dir` inside `ns`.
#[track_caller]
pub fn drop_udp(ns: &Netns, port: u16, dir: Dir) {
    let run = || -> Result<(), String> {
        install(ns)?;
        let text: String = dir
            .sets()
            .iter()
            .map(|set| format!("add element inet hatests {set} {{ {port} }}\n"))
            .collect();
        script(ns, &text)
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}

/// Removes a cut made by [`drop_udp`] (no error if there was none).
#[track_caller]
pub fn allow_udp(ns: &Netns, port: u16, dir: Dir) {
    let run = || -> Result<(), String> {
        install(ns)?;
        // Add then delete in one transaction: deleting an absent element
        // would fail, this never does.
        let text: String = dir
            .sets()
            .iter()
            .map(|set| {
                format!(
                    "add element inet hatests {set} {{ {port} }}\n\
                     delete element inet hatests {set} {{ {port} }}\n"
                )
            })
            .collect();
        script(ns, &text)
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}

/// Removes every cut in `ns`.
#[track_caller]
pub fn clear(ns: &Netns) {
    let run = || -> Result<(), String> {
        install(ns)?;
        script(
            ns,
            "flush set inet hatests in_ports\nflush set inet hatests out_ports\n",
        )
    };
    if let Err(e) = run() {
        panic!("{e}");
    }
}

/// The namespace's ruleset with counters, for failure messages.
pub fn list(ns: &Netns) -> String {
    run_ok(ns.command("nft").args(["list", "ruleset"])).unwrap_or_else(|e| e)
}
