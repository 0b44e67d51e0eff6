//! Forged and replayed UDP datagrams, and capture of real ones, without
//! tcpdump.
//!
//! * Capture: a raw `IPPROTO_UDP` socket opened inside the receiving node's
//!   namespace gets a copy of every UDP datagram delivered to that
//!   namespace (after the nftables input hook, so a cut path captures
//!   nothing), IP header included. The daemons keep their own sockets and
//!   config untouched: no spy address is needed.
//! * Send: an `IPPROTO_RAW` socket (header included) inside the sending
//!   node's namespace puts any source address and port on the wire, so a
//!   forged or replayed datagram is indistinguishable from the daemon's own
//!   by address. It crosses the output hook, so nft cuts apply to it too.

use crate::netns::Netns;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, sendto, socket,
};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A UDP datagram as seen on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub payload: Vec<u8>,
}

/// Sends `payload` to `to` from an ordinary UDP socket (ephemeral port)
/// inside `ns`.
pub fn send_udp(ns: &Netns, to: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
    ns.enter(|| -> io::Result<()> {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        sock.send_to(payload, to)?;
        Ok(())
    })?
}

/// Sends a hand-built IPv4/UDP datagram from `src` to `dst` out of `ns`
/// (any source address and port, e.g. a daemon's own).
pub fn send_spoofed(
    ns: &Netns,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> io::Result<()> {
    let packet = build_ipv4_udp(src, dst, payload);
    ns.enter(|| -> io::Result<()> {
        let fd = socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Raw,
        )?;
        let to = SockaddrIn::from(SocketAddrV4::new(*dst.ip(), 0));
        let n = sendto(fd.as_raw_fd(), &packet, &to, MsgFlags::empty())?;
        if n != packet.len() {
            return Err(io::Error::other(format!(
                "sent {n} of {} bytes",
                packet.len()
            )));
        }
        Ok(())
    })?
}

/// Re-sends a captured datagram exactly (same addresses, ports, payload)
/// out of `ns`.
pub fn replay(ns: &Netns, d: &Datagram) -> io::Result<()> {
    send_spoofed(ns, d.src, d.dst, &d.payload)
}

/// A capture of the UDP datagrams delivered to one namespace, from the
/// moment it is opened.
pub struct Capture {
    fd: OwnedFd,
}

impl Capture {
    /// Opens the capture inside `ns`.
    pub fn open(ns: &Netns) -> io::Result<Capture> {
        let fd = ns.enter(|| {
            socket(
                AddressFamily::Inet,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                SockProtocol::Udp,
            )
        })??;
        Ok(Capture { fd })
    }

    /// The next datagram for which `filter` holds, waiting at most
    /// `timeout`.
    pub fn next(
        &self,
        timeout: Duration,
        mut filter: impl FnMut(&Datagram) -> bool,
    ) -> Option<Datagram> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            while let Ok(n) = nix::unistd::read(&self.fd, &mut buf) {
                if let Some(d) = parse_ipv4_udp(&buf[..n])
                    && filter(&d)
                {
                    return Some(d);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let ms = left.as_millis().clamp(1, 100) as u16;
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, ms);
        }
    }
}

/// An IPv4 header (no options, DF, TTL 64; the kernel fills in the id and
/// header checksum) and a UDP header with its checksum, then `payload`.
pub fn build_ipv4_udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    assert!(total <= 65535, "datagram too large");
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&src.ip().octets());
    p.extend_from_slice(&dst.ip().octets());
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&src.port().to_be_bytes());
    udp.extend_from_slice(&dst.port().to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12 + udp_len);
    pseudo.extend_from_slice(&src.ip().octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&udp);
    let sum = match internet_checksum(&pseudo) {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&udp);
    p
}

/// Parses an IPv4 packet carrying UDP; None for anything else.
pub fn parse_ipv4_udp(p: &[u8]) -> Option<Datagram> {
    if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 17 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
    let udp = p.get(ihl..total)?;
    if udp.len() < 8 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let payload = udp.get(8..len.max(8))?;
    let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    Some(Datagram {
        src: SocketAddrV4::new(ip(12), u16::from_be_bytes([udp[0], udp[1]])),
        dst: SocketAddrV4::new(ip(16), u16::from_be_bytes([udp[2], udp[3]])),
        payload: payload.to_vec(),
    })
}

fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_parse_round_trip() {
        let src = SocketAddrV4::new(Ipv4Addr::new(10, 91, 3, 1), 5405);
        let dst = SocketAddrV4::new(Ipv4Addr::new(10, 91, 3, 2), 5406);
        let p = build_ipv4_udp(src, dst, b"hello");
        let d = parse_ipv4_udp(&p).unwrap();
        assert_eq!(
            (d.src, d.dst, d.payload.as_slice()),
            (src, dst, &b"hello"[..])
        );
        // The UDP checksum verifies: the sum over pseudo header and
        // datagram including the checksum is 0xffff (complement 0).
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.ip().octets());
        pseudo.extend_from_slice(&dst.ip().octets());
        pseudo.extend_from_slice(&[0, 17, 0, 13]);
        pseudo.extend_from_slice(&p[20..]);
        assert_eq!(internet_checksum(&pseudo), 0);
    }
}
