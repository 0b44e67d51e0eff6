//! Floating IP addresses: probe, add, announce, remove, NIC carrier.
//!
//! One [`Fip`] per daemon does it all. It holds an rtnetlink connection
//! for addresses and links, one AF_PACKET socket per NIC it has used for
//! ARP (kept open: closing one costs ~11 ms), and one raw ICMPv6 socket
//! for neighbour advertisements.
//!
//! # Taking a floating IP (safety rule 8)
//!
//! * IPv4: [`Fip::probe`] sends RFC 5227 ARP probes (sender IP 0.0.0.0)
//!   and listens for any other host using or probing the address
//!   ([`Probe::Taken`] with its MAC); only a [`Probe::Free`] address may be
//!   added with [`Fip::add`].
//! * IPv6: the kernel's duplicate address detection is the probe.
//!   [`Fip::add`] adds the address without `NODAD` and waits until it is no
//!   longer tentative; if DAD fails, it removes the address again and
//!   returns [`Error::Taken`] (with the defender's MAC when its
//!   advertisement was heard). A NIC with `accept_dad=0` does no DAD.
//! * [`Fip::claim`] does both in one call for either family: probe then
//!   add for IPv4, add with DAD for IPv6. A foreign holder is always
//!   [`Error::Taken`] (see [`Error::is_taken`]): refuse and raise an alert.
//! * Then [`Fip::announce`]: gratuitous ARP (IPv4) or unsolicited
//!   neighbour advertisements (IPv6), so neighbours that cached the old
//!   holder's MAC switch to ours.
//!
//! [`Fip::add`] and [`Fip::remove`] are idempotent: adding an address the
//! NIC already has, or removing one it does not have, succeeds.
//! [`Fip::holder`] finds which local NIC has an address (reconcile after a
//! restart). [`Fip::carrier`] and [`Fip::watch_carrier`] follow NIC links.
//!
//! # Namespaces
//!
//! Sockets are made in the network namespace of the thread that makes
//! them: the netlink connection in [`Fip::new`], packet and ICMPv6 sockets
//! when first needed. Use one `Fip` from one namespace (the daemon has
//! one; tests run a current-thread runtime inside the node's namespace).
//!
//! # IPv4 labels
//!
//! IPv4 addresses get a label `NIC:NAME` (as `ip addr` shows it), cut to
//! the kernel's 15 characters by [`short_label`].

mod arp;
mod carrier;
mod nd;

pub use carrier::{CarrierEvent, CarrierWatch};

use arp::{Arp, Port};
use futures_util::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::pin::pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest interface name or address label the kernel takes.
pub const IFNAME_MAX: usize = 15;

/// An Ethernet (MAC) address, shown as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const ZERO: MacAddr = MacAddr([0; 6]);
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = String;

    /// Parses `aa:bb:cc:dd:ee:ff` (either case).
    fn from_str(s: &str) -> std::result::Result<MacAddr, String> {
        let bad = || format!("{s:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

/// What an ARP probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nobody answered or claimed the address: it may be added.
    Free,
    /// Another host answered for the address, used it, or probed for it
    /// at the same time: refuse to add it (rule 8).
    Taken {
        /// The other host's MAC (the ARP sender).
        mac: MacAddr,
    },
}

/// What [`ProbeConfig::limit`] must leave beyond the timing's worst case
/// (sending and scheduling take time too).
pub const PROBE_MARGIN: Duration = Duration::from_millis(100);

/// RFC 5227 probe timing. The defaults are the RFC's constants: a random
/// 0-1 s wait (PROBE_WAIT), 3 probes (PROBE_NUM) 1-2 s apart (PROBE_MIN,
/// PROBE_MAX), then 2 s of listening (ANNOUNCE_WAIT): 7 s at worst.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeConfig {
    /// The first probe goes after a random wait in `0..=initial_wait`.
    pub initial_wait: Duration,
    /// Probes sent (at least 1).
    pub count: u32,
    /// Random gap between probes, in `spacing_min..=spacing_max`.
    pub spacing_min: Duration,
    pub spacing_max: Duration,
    /// Listening after the last probe before the address counts as free.
    pub final_wait: Duration,
    /// Bound on one whole probe: past it the probe fails with
    /// [`Error::ProbeTimeout`] (never "free"). Must exceed the worst case
    /// of the timing above by [`PROBE_MARGIN`].
    pub limit: Duration,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig {
            initial_wait: Duration::from_secs(1),
            count: 3,
            spacing_min: Duration::from_secs(1),
            spacing_max: Duration::from_secs(2),
            final_wait: Duration::from_secs(2),
            limit: Duration::from_secs(10),
        }
    }
}

impl ProbeConfig {
    /// The timing hasvrd uses when it takes a service over: the RFC's
    /// shape (a short random wait, 3 probes at random gaps, a final
    /// listen), compressed to about 1 s at worst. The address's previous
    /// holder is already proven stopped or fenced; the probe is the last
    /// line of defence (rule 8) against a host that answers ARP at all,
    /// which any live host does within milliseconds, not a wait for a slow
    /// booting one.
    pub fn failover() -> ProbeConfig {
        ProbeConfig {
            initial_wait: Duration::from_millis(100),
            count: 3,
            spacing_min: Duration::from_millis(200),
            spacing_max: Duration::from_millis(300),
            final_wait: Duration::from_millis(400),
            limit: Duration::from_secs(3),
        }
    }

    /// The longest a probe can take with this timing (no answer heard).
    pub fn worst_case(&self) -> Duration {
        self.initial_wait + self.spacing_max * self.count.saturating_sub(1) + self.final_wait
    }

    /// Checks the settings; the error says which one is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.count == 0 {
            return Err(Error::Config(
                "probe count is 0: at least one ARP probe must be sent".into(),
            ));
        }
        if self.spacing_min > self.spacing_max {
            return Err(Error::Config(format!(
                "probe spacing minimum {:?} is above its maximum {:?}",
                self.spacing_min, self.spacing_max
            )));
        }
        if self.worst_case() + PROBE_MARGIN > self.limit {
            return Err(Error::Config(format!(
                "probe limit {:?} does not cover the probe timing's worst case {:?} \
                 (initial wait + (count - 1) x maximum spacing + final wait) plus {:?}: \
                 raise the limit",
                self.limit,
                self.worst_case(),
                PROBE_MARGIN
            )));
        }
        Ok(())
    }
}

/// Settings of a [`Fip`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FipConfig {
    pub probe: ProbeConfig,
    /// Gap between announcements (RFC 5227 ANNOUNCE_INTERVAL: 2 s).
    pub announce_interval: Duration,
    /// How long [`Fip::add`] waits for IPv6 duplicate address detection
    /// (the kernel needs up to ~2 s with its defaults).
    pub dad_timeout: Duration,
}

impl Default for FipConfig {
    fn default() -> FipConfig {
        FipConfig {
            probe: ProbeConfig::default(),
            announce_interval: Duration::from_secs(2),
            dad_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a floating-IP operation failed; each message says what the operator
/// can do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid floating-IP settings: {0}")]
    Config(String),
    #[error(
        "no network interface named {nic:?} on this node: check the service's NIC \
         in the cluster config (`ip link` lists the NICs)"
    )]
    NoSuchNic { nic: String },
    #[error(
        "{nic} has no Ethernet address: a floating IP needs an Ethernet NIC \
         (ARP and neighbour discovery); check the service's NIC"
    )]
    NotEthernet { nic: String },
    #[error(
        "{nic} has no carrier (down, or its cable or switch port is dead): nobody could \
         answer a probe there, so no floating IP is taken on it; bring the link up \
         (`ip link set {nic} up`, check the cable) or move the service to another NIC"
    )]
    NoCarrier { nic: String },
    #[error(
        "address {addr} is already answered by {}: another host uses it; refusing to \
         add it to {nic} (rule 8). Remove it from that host or change the service's address",
        who(.mac)
    )]
    Taken {
        addr: IpAddr,
        nic: String,
        mac: Option<MacAddr>,
    },
    #[error(
        "address {addr} is already on {other} of this node, not on {nic}: remove it from \
         {other} (`ip addr del {addr}/PREFIX dev {other}`) or fix the service's NIC"
    )]
    OnOtherNic {
        addr: IpAddr,
        nic: String,
        other: String,
    },
    #[error(
        "duplicate address detection of {addr} on {nic} did not finish within {timeout:?}: \
         is {nic} up, with carrier? The address was removed again"
    )]
    DadTimeout {
        addr: Ipv6Addr,
        nic: String,
        timeout: Duration,
    },
    #[error(
        "address {addr} vanished from {nic} during duplicate address detection: \
         something else removed it; retry"
    )]
    Vanished { addr: Ipv6Addr, nic: String },
    #[error(
        "the ARP probe of {addr} on {nic} missed frames (too much ARP traffic, or the \
         NIC went away): whether the address is free is unknown; retry"
    )]
    ProbeIncomplete { addr: Ipv4Addr, nic: String },
    #[error("the ARP probe of {addr} on {nic} did not finish within {limit:?}: is {nic} up? retry")]
    ProbeTimeout {
        addr: Ipv4Addr,
        nic: String,
        limit: Duration,
    },
    #[error("{what}: {source}{}", hint(.source))]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// True when another host holds the address (rule 8: refuse, alert).
    pub fn is_taken(&self) -> bool {
        matches!(self, Error::Taken { .. })
    }

    fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    fn netlink(what: impl Into<String>, e: rtnetlink::Error) -> Error {
        Error::io(what, nl_io(e))
    }
}

fn who(mac: &Option<MacAddr>) -> String {
    match mac {
        Some(m) => m.to_string(),
        None => "another host (its MAC was not heard)".into(),
    }
}

fn hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(nix::libc::EPERM | nix::libc::EACCES) => {
            " (hasvrd needs root: CAP_NET_ADMIN and CAP_NET_RAW)"
        }
        Some(nix::libc::ENETDOWN) => " (the NIC is down: `ip link set NIC up`)",
        _ => "",
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// The errno of a netlink error answer, if it is one.
fn errno_of(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_io(e: rtnetlink::Error) -> io::Error {
    match errno_of(&e) {
        Some(n) => io::Error::from_raw_os_error(n),
        None => io::Error::other(e.to_string()),
    }
}

/// A spawned task aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The label for an IPv4 address of service `name` on `nic`: `NIC:NAME`
/// if that fits the kernel's 15 characters; else `NIC:` + the start of the
/// name + 4 hex digits of a hash of the whole name (so two long names that
/// start alike still differ); `NIC` alone for an empty name or when the
/// NIC's name leaves no room. Characters other than ASCII letters, digits,
/// `-`, `_` and `.` become `_`.
pub fn short_label(nic: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        return nic.to_owned();
    }
    let full = format!("{nic}:{clean}");
    if full.len() <= IFNAME_MAX {
        return full;
    }
    let tag = format!("{:04x}", fnv1a(name.as_bytes()) & 0xffff);
    let room = IFNAME_MAX.saturating_sub(nic.len() + 1 + tag.len());
    if nic.len() + 1 + tag.len() > IFNAME_MAX {
        return nic.to_owned();
    }
    format!("{nic}:{}{tag}", &clean[..room.min(clean.len())])
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// A random duration in `min..=max`.
fn jitter(min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    let span = u64::try_from((max - min).as_nanos()).unwrap_or(u64::MAX);
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    min + Duration::from_nanos(r % span.saturating_add(1).max(1))
}

/// Hands an owned socket to tokio's reactor (inside a runtime).
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is a valid, open descriptor that only its owner
    // closes, and its raw value never changes; the AsyncFd owns it from
    // here on.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(|e| e.into_parts().1)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One address found on this node.
struct Present {
    index: u32,
    prefix: u8,
    flags: AddressFlags,
}

fn address_flags(m: &AddressMessage) -> AddressFlags {
    m.attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(m.header.flags.bits())))
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The MAC of an Ethernet NIC; `None` for any other kind (loopback, tun).
fn link_mac(link: &LinkMessage) -> Option<MacAddr> {
    if link.header.link_layer_type != LinkLayerType::Ether {
        return None;
    }
    link.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok().map(MacAddr),
            _ => None,
        })
        .filter(|m| *m != MacAddr::ZERO)
}

/// The floating-IP driver of one daemon; see the module documentation.
pub struct Fip {
    config: FipConfig,
    handle: rtnetlink::Handle,
    _conn: Task,
    /// ARP sockets by NIC name, kept for the daemon's life.
    ports: Mutex<HashMap<String, Arc<Port>>>,
    /// The neighbour advertisement socket, opened on first use.
    nd: Mutex<Option<Arc<nd::Sender>>>,
}

impl Fip {
    /// Opens the rtnetlink connection, in the network namespace of the
    /// calling thread. Must be called inside a tokio runtime.
    pub fn new(config: FipConfig) -> Result<Fip> {
        config.probe.validate()?;
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| Error::io("cannot open an rtnetlink socket", e))?;
        Ok(Fip {
            config,
            handle,
            _conn: Task(tokio::spawn(conn)),
            ports: Mutex::new(HashMap::new()),
            nd: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &FipConfig {
        &self.config
    }

    /// RFC 5227 ARP probe of `addr` on `nic` with the configured timing:
    /// [`Probe::Taken`] as soon as another host answers for, uses or
    /// probes `addr`; [`Probe::Free`] if none did until the end. An
    /// address this node already has is not answered by this node. A NIC
    /// without carrier is [`Error::NoCarrier`], never "free".
    pub async fn probe(&self, nic: &str, addr: Ipv4Addr) -> Result<Probe> {
        let cfg = &self.config.probe;
        let link = self.link(nic).await?;
        let own = link_mac(&link).ok_or_else(|| Error::NotEthernet { nic: nic.into() })?;
        if !carrier::link_up(&link) {
            return Err(Error::NoCarrier { nic: nic.into() });
        }
        let port = self.port(nic, link.header.index)?;
        let mut heard = port.listen();
        let run = async {
            let mut sent = 0;
            let mut next = Instant::now() + jitter(Duration::ZERO, cfg.initial_wait);
            loop {
                tokio::select! {
                    biased;
                    got = heard.recv() => match got {
                        Ok(arp) if arp.conflicts(addr, own) => {
                            tracing::warn!(
                                "ARP probe of {addr} on {nic}: answered by {} (ARP {})",
                                arp.sha,
                                if arp.op == arp::OP_REPLY { "reply" } else { "request" }
                            );
                            return Ok(Probe::Taken { mac: arp.sha });
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_) | RecvError::Closed) => {
                            return Err(Error::ProbeIncomplete { addr, nic: nic.into() });
                        }
                    },
                    () = tokio::time::sleep_until(next) => {
                        if sent == cfg.count {
                            tracing::debug!("ARP probe of {addr} on {nic}: free");
                            return Ok(Probe::Free);
                        }
                        let frame = Arp::probe(own, addr).frame(own, MacAddr::BROADCAST);
                        port.send(&frame).await.map_err(|e| {
                            Error::io(format!("cannot send an ARP probe for {addr} on {nic}"), e)
                        })?;
                        sent += 1;
                        next = Instant::now() + if sent == cfg.count {
                            cfg.final_wait
                        } else {
                            jitter(cfg.spacing_min, cfg.spacing_max)
                        };
                    }
                }
            }
        };
        match tokio::time::timeout(cfg.limit, run).await {
            Ok(r) => r,
            Err(_) => Err(Error::ProbeTimeout {
                addr,
                nic: nic.into(),
                limit: cfg.limit,
            }),
        }
    }

    /// Rule 8 in one call: for IPv4, [`Fip::probe`] then [`Fip::add`]; for
    /// IPv6, [`Fip::add`] (the kernel's DAD probes). Another holder is
    /// [`Error::Taken`] and nothing is left added. Announce afterwards.
    pub async fn claim(&self, nic: &str, addr: IpAddr, prefix: u8, label: &str) -> Result<()> {
        if let IpAddr::V4(v4) = addr {
            // Fail early on a bad NIC or prefix, before seconds of probing.
            check_prefix(addr, prefix)?;
            self.refuse_other_nic(nic, addr, self.link(nic).await?.header.index)
                .await?;
            if let Probe::Taken { mac } = self.probe(nic, v4).await? {
                return Err(Error::Taken {
                    addr,
                    nic: nic.into(),
                    mac: Some(mac),
                });
            }
        }
        self.add(nic, addr, prefix, label).await
    }

    /// Adds `addr/prefix` to `nic` (exclusive create; already there counts
    /// as success). IPv4 gets the label [`short_label`]`(nic, label)`;
    /// IPv6 has no labels, and waits for duplicate address detection: see
    /// the module documentation. Refuses an address another NIC of this
    /// node has ([`Error::OnOtherNic`]), and IPv6 on a NIC without carrier
    /// ([`Error::NoCarrier`]). IPv4 is not probed here: use [`Fip::probe`]
    /// first, or [`Fip::claim`].
    pub async fn add(&self, nic: &str, addr: IpAddr, prefix: u8, label: &str) -> Result<()> {
        check_prefix(addr, prefix)?;
        let link = self.link(nic).await?;
        let index = link.header.index;
        self.refuse_other_nic(nic, addr, index).await?;
        if addr.is_ipv6() && !carrier::link_up(&link) {
            // DAD would not run until the link is back: nothing could be
            // detected, and the address would go live later unchecked.
            return Err(Error::NoCarrier { nic: nic.into() });
        }
        match addr {
            IpAddr::V4(_) => {
                let label = short_label(nic, label);
                let mut req = self.handle.address().add(index, addr, prefix);
                req.message_mut()
                    .attributes
                    .push(AddressAttribute::Label(label.clone()));
                match req.execute().await {
                    Ok(()) => tracing::info!("added {addr}/{prefix} to {nic} (label {label})"),
                    Err(e) if errno_of(&e) == Some(nix::libc::EEXIST) => {
                        tracing::info!("{addr}/{prefix} is already on {nic}");
                    }
                    Err(e) => {
                        return Err(Error::netlink(
                            format!("cannot add {addr}/{prefix} to {nic}"),
                            e,
                        ));
                    }
                }
                Ok(())
            }
            IpAddr::V6(v6) => {
                // Listening before the add, so the defender is heard.
                let listener = nd::Listener::open()
                    .map_err(|e| Error::io("cannot open an ICMPv6 socket", e))?;
                match self
                    .handle
                    .address()
                    .add(index, addr, prefix)
                    .execute()
                    .await
                {
                    Ok(()) => tracing::info!("added {addr}/{prefix} to {nic}, DAD running"),
                    Err(e) if errno_of(&e) == Some(nix::libc::EEXIST) => {
                        tracing::info!("{addr} is already on {nic}");
                    }
                    Err(e) => {
                        return Err(Error::netlink(
                            format!("cannot add {addr}/{prefix} to {nic}"),
                            e,
                        ));
                    }
                }
                self.wait_dad(nic, index, v6, &listener).await
            }
        }
    }

    /// Waits until `addr` on NIC `index` is past DAD; removes it again on
    /// failure or timeout (nothing half-applies).
    async fn wait_dad(
        &self,
        nic: &str,
        index: u32,
        addr: Ipv6Addr,
        listener: &nd::Listener,
    ) -> Result<()> {
        const POLL: Duration = Duration::from_millis(50);
        let deadline = Instant::now() + self.config.dad_timeout;
        let mut defender = None;
        let mut listening = true;
        loop {
            let mine = self
                .find(IpAddr::V6(addr))
                .await?
                .into_iter()
                .find(|p| p.index == index);
            let Some(mine) = mine else {
                return Err(Error::Vanished {
                    addr,
                    nic: nic.into(),
                });
            };
            if mine.flags.contains(AddressFlags::Dadfailed) {
                if defender.is_none() && listening {
                    // The kernel may mark the failure before this loop has
                    // read the defender's advertisement from the socket.
                    const DRAIN: Duration = Duration::from_millis(250);
                    if let Ok(Ok(mac)) = tokio::time::timeout(DRAIN, listener.defender(addr)).await
                    {
                        defender = Some(mac);
                    }
                }
                tracing::warn!(
                    "duplicate address detection of {addr} on {nic} failed (defended by {})",
                    who(&defender)
                );
                self.remove_after_dad(nic, addr, mine.prefix).await;
                return Err(Error::Taken {
                    addr: IpAddr::V6(addr),
                    nic: nic.into(),
                    mac: defender,
                });
            }
            if !mine.flags.contains(AddressFlags::Tentative) {
                tracing::info!("{addr} on {nic} passed duplicate address detection");
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.remove_after_dad(nic, addr, mine.prefix).await;
                return Err(Error::DadTimeout {
                    addr,
                    nic: nic.into(),
                    timeout: self.config.dad_timeout,
                });
            }
            let pause = tokio::time::sleep(POLL.min(deadline - Instant::now()));
            tokio::select! {
                () = pause => {}
                heard = listener.defender(addr), if listening => match heard {
                    Ok(mac) => {
                        defender = Some(mac);
                        listening = false;
                    }
                    Err(e) => {
                        tracing::debug!("ICMPv6 listener failed: {e}");
                        listening = false;
                    }
                },
            }
        }
    }

    /// Removes an address that failed DAD; a failure is logged, not
    /// returned, so that the DAD outcome is what the caller sees.
    async fn remove_after_dad(&self, nic: &str, addr: Ipv6Addr, prefix: u8) {
        if let Err(e) = self.remove(nic, IpAddr::V6(addr), prefix).await {
            tracing::error!("{addr} failed duplicate address detection and stays on {nic}: {e}");
        }
    }

    /// Removes `addr` from `nic`; an address (or NIC) that is not there
    /// counts as success. Also removes `addr` with another prefix length
    /// on that NIC (a floating IP must never stay behind), with a warning.
    pub async fn remove(&self, nic: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        let index = match self.link(nic).await {
            Ok(link) => link.header.index,
            Err(Error::NoSuchNic { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        for p in self
            .find(addr)
            .await?
            .into_iter()
            .filter(|p| p.index == index)
        {
            if p.prefix != prefix {
                tracing::warn!(
                    "{addr} is on {nic} as /{} rather than /{prefix}: removing it anyway",
                    p.prefix
                );
            }
            let mut msg = AddressMessage::default();
            msg.header.family = family(addr);
            msg.header.prefix_len = p.prefix;
            msg.header.index = index;
            msg.attributes.push(AddressAttribute::Local(addr));
            msg.attributes.push(AddressAttribute::Address(addr));
            match self.handle.address().del(msg).execute().await {
                Ok(()) => tracing::info!("removed {addr}/{} from {nic}", p.prefix),
                Err(e)
                    if matches!(
                        errno_of(&e),
                        Some(nix::libc::EADDRNOTAVAIL | nix::libc::ENOENT | nix::libc::ENODEV)
                    ) => {}
                Err(e) => {
                    return Err(Error::netlink(
                        format!("cannot remove {addr}/{} from {nic}", p.prefix),
                        e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The local NIC that has `addr` (one that failed IPv6 DAD does not
    /// count), for reconciling after a restart.
    pub async fn holder(&self, addr: IpAddr) -> Result<Option<String>> {
        let present = self.find(addr).await?;
        let Some(p) = present
            .iter()
            .find(|p| !p.flags.contains(AddressFlags::Dadfailed))
        else {
            return Ok(None);
        };
        if present.len() > 1 {
            tracing::warn!("{addr} is on {} NICs of this node", present.len());
        }
        // None if the NIC went away since the address dump: so did the address.
        self.name_of(p.index).await
    }

    /// Announces `addr` on `nic` `count` times, the configured interval
    /// apart: each time a gratuitous ARP request and reply for IPv4 (42-byte
    /// broadcast frames), or an unsolicited neighbour advertisement with
    /// the override flag to ff02::1 for IPv6 (the address must be on `nic`
    /// and past DAD). Neighbours that cached another MAC for `addr` switch
    /// to this NIC's.
    pub async fn announce(&self, nic: &str, addr: IpAddr, count: u32) -> Result<()> {
        let link = self.link(nic).await?;
        let index = link.header.index;
        let own = link_mac(&link).ok_or_else(|| Error::NotEthernet { nic: nic.into() })?;
        let what = || format!("cannot announce {addr} on {nic}");
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(self.config.announce_interval).await;
            }
            match addr {
                IpAddr::V4(v4) => {
                    let port = self.port(nic, index)?;
                    for arp in [Arp::announce_request(own, v4), Arp::announce_reply(own, v4)] {
                        let frame = arp.frame(own, MacAddr::BROADCAST);
                        port.send(&frame).await.map_err(|e| Error::io(what(), e))?;
                    }
                }
                IpAddr::V6(v6) => {
                    self.nd_sender()?
                        .advertise(index, v6, own)
                        .await
                        .map_err(|e| Error::io(what(), e))?;
                }
            }
        }
        tracing::info!("announced {addr} on {nic} ({count} times, at {own})");
        Ok(())
    }

    /// Whether `nic` is up and has carrier (`IFF_UP` and `IFF_LOWER_UP`).
    pub async fn carrier(&self, nic: &str) -> Result<bool> {
        Ok(carrier::link_up(&self.link(nic).await?))
    }

    /// Starts watching carrier changes of all NICs (its own netlink socket,
    /// subscribed to RTNLGRP_LINK). Changes after this returns are all
    /// reported; read [`Fip::carrier`] afterwards for the starting state.
    pub async fn watch_carrier(&self) -> Result<CarrierWatch> {
        CarrierWatch::start()
            .await
            .map_err(|e| Error::io("cannot watch NIC carrier (rtnetlink link group)", e))
    }

    /// The link message of `nic`.
    async fn link(&self, nic: &str) -> Result<LinkMessage> {
        if nic.is_empty() || nic.len() > IFNAME_MAX {
            return Err(Error::NoSuchNic { nic: nic.into() });
        }
        let mut links = pin!(self.handle.link().get().match_name(nic).execute());
        match links.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(Error::NoSuchNic { nic: nic.into() }),
            Err(e) if errno_of(&e) == Some(nix::libc::ENODEV) => {
                Err(Error::NoSuchNic { nic: nic.into() })
            }
            Err(e) => Err(Error::netlink(format!("cannot read NIC {nic}"), e)),
        }
    }

    /// Every local instance of `addr`.
    async fn find(&self, addr: IpAddr) -> Result<Vec<Present>> {
        let mut req = self.handle.address().get().set_address_filter(addr);
        req.message_mut().header.family = family(addr);
        let mut found = Vec::new();
        let mut msgs = pin!(req.execute());
        while let Some(m) = msgs
            .try_next()
            .await
            .map_err(|e| Error::netlink("cannot list this node's addresses", e))?
        {
            found.push(Present {
                index: m.header.index,
                prefix: m.header.prefix_len,
                flags: address_flags(&m),
            });
        }
        Ok(found)
    }

    /// Fails with [`Error::OnOtherNic`] if another NIC than `index` has
    /// `addr` (it failed DAD there or not: it must go first).
    async fn refuse_other_nic(&self, nic: &str, addr: IpAddr, index: u32) -> Result<()> {
        for p in self.find(addr).await? {
            if p.index != index
                && let Some(other) = self.name_of(p.index).await?
            {
                return Err(Error::OnOtherNic {
                    addr,
                    nic: nic.into(),
                    other,
                });
            }
        }
        Ok(())
    }

    /// The name of interface `index`; `None` if it is gone.
    async fn name_of(&self, index: u32) -> Result<Option<String>> {
        let mut links = pin!(self.handle.link().get().match_index(index).execute());
        match links.try_next().await {
            Ok(Some(link)) => Ok(carrier::link_name(&link).map(str::to_owned)),
            Ok(None) => Ok(None),
            Err(e) if errno_of(&e) == Some(nix::libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::netlink(format!("cannot read interface {index}"), e)),
        }
    }

    /// The ARP socket of `nic` (interface `index`), opened on first use and
    /// again if the NIC was recreated or its reader stopped.
    fn port(&self, nic: &str, index: u32) -> Result<Arc<Port>> {
        let mut ports = lock(&self.ports);
        if let Some(p) = ports.get(nic)
            && p.ifindex == index
            && p.alive()
        {
            return Ok(p.clone());
        }
        let port = Arc::new(
            Port::open(nic, index)
                .map_err(|e| Error::io(format!("cannot open an ARP socket on {nic}"), e))?,
        );
        ports.insert(nic.to_owned(), port.clone());
        Ok(port)
    }

    fn nd_sender(&self) -> Result<Arc<nd::Sender>> {
        let mut nd = lock(&self.nd);
        if let Some(s) = nd.as_ref() {
            return Ok(s.clone());
        }
        let s =
            Arc::new(nd::Sender::open().map_err(|e| Error::io("cannot open an ICMPv6 socket", e))?);
        *nd = Some(s.clone());
        Ok(s)
    }
}

fn check_prefix(addr: IpAddr, prefix: u8) -> Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(Error::Config(format!(
            "prefix length /{prefix} of {addr} is over {max}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_parse() {
        let m = MacAddr([0xaa, 0xbb, 0x0c, 0, 1, 0xff]);
        assert_eq!(m.to_string(), "aa:bb:0c:00:01:ff");
        assert_eq!("AA:bb:0c:00:01:FF".parse::<MacAddr>(), Ok(m));
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb:cc:dd:ee:f",
            "g0:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn both_probe_timings_are_valid() {
        assert!(ProbeConfig::default().validate().is_ok());
        let fast = ProbeConfig::failover();
        assert!(fast.validate().is_ok());
        assert!(fast.worst_case() <= Duration::from_millis(1200));
    }

    #[test]
    fn labels_fit_the_kernel() {
        assert_eq!(short_label("eth0", "web"), "eth0:web");
        assert_eq!(short_label("eth0", ""), "eth0");
        assert_eq!(short_label("eth0", "a b/c"), "eth0:a_b_c");
        assert_eq!(short_label("eth0", "0123456789"), "eth0:0123456789");
        let long = short_label("eth0", "oracle-production");
        assert_eq!(long.len(), IFNAME_MAX, "{long}");
        assert!(long.starts_with("eth0:orac"), "{long}");
        let other = short_label("eth0", "oracle-productio2");
        assert_ne!(long, other, "long names that start alike differ");
        let cut = short_label("enp0s31f6", "database");
        assert!(
            cut.len() == IFNAME_MAX && cut.starts_with("enp0s31f6:d"),
            "{cut}"
        );
        assert_eq!(short_label("verylongnic0123", "x"), "verylongnic0123");
        assert_eq!(short_label("verylongnic01", "web"), "verylongnic01");
        // Never over 15, whatever the input.
        for nic in ["e", "eth0", "enp0s31f6", "abcdefghij", "abcdefghijklmno"] {
            for name in [
                "",
                "w",
                "service",
                "ünïcödé-näme-that-is-long",
                &"x".repeat(40),
            ] {
                let l = short_label(nic, name);
                assert!(
                    l.len() <= IFNAME_MAX && l.starts_with(nic),
                    "{nic} {name} -> {l}"
                );
            }
        }
    }

    #[test]
    fn probe_config_validation() {
        let rfc = ProbeConfig::default();
        assert_eq!(rfc.worst_case(), Duration::from_secs(7));
        rfc.validate().unwrap();
        let zero = ProbeConfig {
            count: 0,
            ..rfc.clone()
        };
        assert!(zero.validate().unwrap_err().to_string().contains("count"));
        let inverted = ProbeConfig {
            spacing_min: Duration::from_secs(3),
            ..rfc.clone()
        };
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .contains("spacing")
        );
        let tight = ProbeConfig {
            limit: Duration::from_secs(7),
            ..rfc
        };
        assert!(
            tight
                .validate()
                .unwrap_err()
                .to_string()
                .contains("raise the limit")
        );
    }

    #[test]
    fn jitter_stays_in_range() {
        let (lo, hi) = (Duration::from_millis(10), Duration::from_millis(20));
        for _ in 0..1000 {
            let j = jitter(lo, hi);
            assert!(j >= lo && j <= hi, "{j:?}");
        }
        assert_eq!(jitter(hi, lo), hi);
        assert_eq!(jitter(Duration::ZERO, Duration::ZERO), Duration::ZERO);
    }

    /// Type-checked, never run: the daemon shares one `Fip` between tasks
    /// and spawns its operations.
    #[allow(dead_code)]
    fn futures_are_send(fip: &Fip) {
        fn send<T: Send>(_: T) {}
        fn shared<T: Send + Sync>() {}
        shared::<Fip>();
        shared::<Error>();
        send(fip.probe("eth0", Ipv4Addr::LOCALHOST));
        send(fip.claim("eth0", IpAddr::V4(Ipv4Addr::LOCALHOST), 24, "x"));
        send(fip.add("eth0", IpAddr::V6(Ipv6Addr::LOCALHOST), 64, "x"));
        send(fip.remove("eth0", IpAddr::V4(Ipv4Addr::LOCALHOST), 24));
        send(fip.holder(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        send(fip.announce("eth0", IpAddr::V6(Ipv6Addr::LOCALHOST), 3));
        send(fip.carrier("eth0"));
        send(fip.watch_carrier());
        fn stream<T: futures_util::Stream<Item = CarrierEvent> + Send>() {}
        stream::<CarrierWatch>();
    }

    #[test]
    fn taken_message_says_what_to_do() {
        let e = Error::Taken {
            addr: "10.0.0.5".parse().unwrap(),
            nic: "eth0".into(),
            mac: Some(MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])),
        };
        assert!(e.is_taken());
        let text = e.to_string();
        assert!(
            text.starts_with(
                "address 10.0.0.5 is already answered by aa:bb:cc:dd:ee:ff: another host uses it; \
                 refusing to add it to eth0 (rule 8)"
            ),
            "{text}"
        );
    }
}
