//! IPv4 on the wire: ARP frames (RFC 826) as RFC 5227 uses them (probes,
//! announcements, conflict detection), and the AF_PACKET socket that sends
//! them and hears every ARP frame of one NIC.
//!
//! One [`Port`] per NIC lives as long as the [`super::Fip`] that opened it:
//! closing an AF_PACKET socket waits for an RCU grace period (~11 ms here).
//! A reader task parses every ARP frame the NIC receives and hands it to
//! whoever listens ([`Port::listen`]), so probes of several addresses on
//! the same NIC run at the same time, each seeing every frame.

use super::MacAddr;
use nix::libc;
use nix::sys::socket::{
    AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType, SockaddrLike, bind, recvfrom, send,
    socket,
};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// An Ethernet ARP frame for IPv4: 14 bytes of Ethernet header, 28 of ARP.
pub(super) const FRAME_LEN: usize = 42;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const HTYPE_ETHER: u16 = 1;
pub(super) const OP_REQUEST: u16 = 1;
pub(super) const OP_REPLY: u16 = 2;
/// ARP frames kept for a listener that falls behind; past this it misses
/// frames and knows it (the probe then fails rather than guess).
const BACKLOG: usize = 1024;

/// The fields of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Arp {
    pub op: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender protocol address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target protocol address.
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// The Ethernet frame carrying this packet to `dst`.
    pub fn frame(&self, src: MacAddr, dst: MacAddr) -> [u8; FRAME_LEN] {
        let mut f = [0u8; FRAME_LEN];
        f[0..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
        f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        f[14..16].copy_from_slice(&HTYPE_ETHER.to_be_bytes());
        f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
        f[18] = 6;
        f[19] = 4;
        f[20..22].copy_from_slice(&self.op.to_be_bytes());
        f[22..28].copy_from_slice(&self.sha.0);
        f[28..32].copy_from_slice(&self.spa.octets());
        f[32..38].copy_from_slice(&self.tha.0);
        f[38..42].copy_from_slice(&self.tpa.octets());
        f
    }

    /// Parses an Ethernet frame; `None` unless it is an Ethernet/IPv4 ARP
    /// packet (trailing padding is ignored).
    pub fn parse(f: &[u8]) -> Option<Arp> {
        if f.len() < FRAME_LEN
            || f[12..14] != ETH_P_ARP.to_be_bytes()
            || f[14..16] != HTYPE_ETHER.to_be_bytes()
            || f[16..18] != ETH_P_IP.to_be_bytes()
            || f[18] != 6
            || f[19] != 4
        {
            return None;
        }
        let mac = |at: usize| MacAddr(f[at..at + 6].try_into().expect("6 bytes"));
        let ip = |at: usize| Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3]);
        Some(Arp {
            op: u16::from_be_bytes([f[20], f[21]]),
            sha: mac(22),
            spa: ip(28),
            tha: mac(32),
            tpa: ip(38),
        })
    }

    /// RFC 5227 ARP probe for `addr`: a request with sender IP 0.0.0.0.
    pub fn probe(own: MacAddr, addr: Ipv4Addr) -> Arp {
        Arp {
            op: OP_REQUEST,
            sha: own,
            spa: Ipv4Addr::UNSPECIFIED,
            tha: MacAddr::ZERO,
            tpa: addr,
        }
    }

    /// Gratuitous ARP request (RFC 5227 "ARP announcement"): sender and
    /// target IP both `addr`.
    pub fn announce_request(own: MacAddr, addr: Ipv4Addr) -> Arp {
        Arp {
            op: OP_REQUEST,
            sha: own,
            spa: addr,
            tha: MacAddr::ZERO,
            tpa: addr,
        }
    }

    /// Gratuitous ARP reply, for older stacks that only learn from replies
    /// (Linux accepts a gratuitous reply only with target MAC = sender MAC).
    pub fn announce_reply(own: MacAddr, addr: Ipv4Addr) -> Arp {
        Arp {
            op: OP_REPLY,
            sha: own,
            spa: addr,
            tha: own,
            tpa: addr,
        }
    }

    /// Whether this packet, heard while probing `addr` from a NIC with MAC
    /// `own`, shows another host using or claiming `addr` (RFC 5227
    /// 2.1.1): any ARP packet whose sender IP is `addr`, or another host's
    /// probe for `addr`.
    pub fn conflicts(&self, addr: Ipv4Addr, own: MacAddr) -> bool {
        if self.sha == own {
            return false;
        }
        self.spa == addr || (self.op == OP_REQUEST && self.spa.is_unspecified() && self.tpa == addr)
    }
}

/// The AF_PACKET socket of one NIC, bound to its ARP traffic.
pub(super) struct Port {
    /// The NIC's interface index when the port was opened: a NIC deleted
    /// and created again has a new index, and needs a new port.
    pub ifindex: u32,
    fd: Arc<AsyncFd<OwnedFd>>,
    /// Kept only to make new listeners; closed when the reader stops.
    template: broadcast::Receiver<Arp>,
    reader: JoinHandle<()>,
}

impl Port {
    /// Opens the socket on interface `ifindex` and starts its reader.
    /// Must run inside a tokio runtime; the socket belongs to the network
    /// namespace of the calling thread.
    pub fn open(nic: &str, ifindex: u32) -> io::Result<Port> {
        // Protocol 0: hears nothing until bound to ARP on this NIC, so no
        // frame of another NIC is ever queued.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let sll = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: ETH_P_ARP.to_be(),
            sll_ifindex: i32::try_from(ifindex)
                .map_err(|_| io::Error::other("interface index out of range"))?,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        // SAFETY: `sll` is a fully initialised sockaddr_ll and the length
        // given is its size; from_raw copies it.
        let addr = unsafe {
            LinkAddr::from_raw(
                (&raw const sll).cast::<libc::sockaddr>(),
                Some(size_of::<libc::sockaddr_ll>() as libc::socklen_t),
            )
        }
        .ok_or_else(|| io::Error::other("cannot make an AF_PACKET address"))?;
        bind(fd.as_raw_fd(), &addr)?;
        let fd = Arc::new(super::register(
            fd,
            Interest::READABLE | Interest::WRITABLE,
        )?);
        let (tx, template) = broadcast::channel(BACKLOG);
        let reader = tokio::spawn(read_loop(nic.to_owned(), fd.clone(), tx));
        Ok(Port {
            ifindex,
            fd,
            template,
            reader,
        })
    }

    /// False once the reader stopped (the NIC went away): open a new port.
    pub fn alive(&self) -> bool {
        !self.reader.is_finished()
    }

    /// A receiver of every ARP frame the NIC receives from now on. It
    /// reports `Lagged` if it fell behind and `Closed` if the reader
    /// stopped: either way some frames were not seen.
    pub fn listen(&self) -> broadcast::Receiver<Arp> {
        self.template.resubscribe()
    }

    /// Sends one Ethernet frame on the NIC.
    pub async fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = self
            .fd
            .async_io(Interest::WRITABLE, |fd| {
                send(fd.as_raw_fd(), frame, MsgFlags::empty()).map_err(io::Error::from)
            })
            .await?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short send: {n} of {} bytes",
                frame.len()
            )))
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Reads ARP frames until the socket fails (NIC unregistered), publishing
/// each one received from the wire.
async fn read_loop(nic: String, fd: Arc<AsyncFd<OwnedFd>>, tx: broadcast::Sender<Arp>) {
    // Room for a full Ethernet frame; ARP needs 42 (60 with padding).
    let mut buf = [0u8; 1514];
    loop {
        let got = fd
            .async_io(Interest::READABLE, |fd| {
                recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf).map_err(io::Error::from)
            })
            .await;
        match got {
            Ok((n, from)) => {
                if from.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING) {
                    continue;
                }
                if let Some(arp) = Arp::parse(&buf[..n]) {
                    // No listener: nobody is probing, the frame is dropped.
                    let _ = tx.send(arp);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("stopped reading ARP on {nic}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const OTHER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

    #[test]
    fn probe_frame_layout() {
        let f = Arp::probe(OWN, ADDR).frame(OWN, MacAddr::BROADCAST);
        assert_eq!(f.len(), 42);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &OWN.0);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &OWN.0);
        assert_eq!(&f[28..32], &[0, 0, 0, 0]);
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &[10, 0, 0, 5]);
    }

    #[test]
    fn parse_round_trips_and_ignores_padding() {
        for arp in [
            Arp::probe(OWN, ADDR),
            Arp::announce_request(OWN, ADDR),
            Arp::announce_reply(OWN, ADDR),
        ] {
            let mut f = arp.frame(OWN, MacAddr::BROADCAST).to_vec();
            assert_eq!(Arp::parse(&f), Some(arp));
            f.resize(60, 0);
            assert_eq!(Arp::parse(&f), Some(arp));
        }
    }

    #[test]
    fn parse_rejects_other_frames() {
        let f = Arp::probe(OWN, ADDR).frame(OWN, MacAddr::BROADCAST);
        assert_eq!(Arp::parse(&f[..41]), None);
        let mut ipv4 = f;
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(Arp::parse(&ipv4), None);
        let mut ipv6_arp = f;
        ipv6_arp[19] = 16;
        assert_eq!(Arp::parse(&ipv6_arp), None);
    }

    #[test]
    fn conflicts_per_rfc_5227() {
        // The holder answers our probe.
        let reply = Arp {
            op: OP_REPLY,
            sha: OTHER,
            spa: ADDR,
            tha: OWN,
            tpa: Ipv4Addr::UNSPECIFIED,
        };
        assert!(reply.conflicts(ADDR, OWN));
        // A host using the address asks for someone else.
        let request = Arp {
            op: OP_REQUEST,
            sha: OTHER,
            spa: ADDR,
            tha: MacAddr::ZERO,
            tpa: Ipv4Addr::new(10, 0, 0, 1),
        };
        assert!(request.conflicts(ADDR, OWN));
        // Another host probes the same address at the same time.
        assert!(Arp::probe(OTHER, ADDR).conflicts(ADDR, OWN));
        // Our own frames, other addresses, and ordinary lookups of ADDR.
        assert!(!Arp::probe(OWN, ADDR).conflicts(ADDR, OWN));
        assert!(!Arp::announce_request(OWN, ADDR).conflicts(ADDR, OWN));
        assert!(!Arp::probe(OTHER, Ipv4Addr::new(10, 0, 0, 6)).conflicts(ADDR, OWN));
        let lookup = Arp {
            op: OP_REQUEST,
            sha: OTHER,
            spa: Ipv4Addr::new(10, 0, 0, 9),
            tha: MacAddr::ZERO,
            tpa: ADDR,
        };
        assert!(!lookup.conflicts(ADDR, OWN));
    }
}
