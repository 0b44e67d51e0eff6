//! IPv6 on the wire: neighbour advertisements (RFC 4861 4.4) on raw ICMPv6
//! sockets. [`Sender`] sends unsolicited advertisements (override flag, to
//! all nodes, hop limit 255) so neighbours move the address to our MAC;
//! [`Listener`] hears advertisements during duplicate address detection,
//! to name the MAC of the host that defends the address.
//!
//! The kernel computes the ICMPv6 checksum of raw ICMPv6 sockets.

use super::MacAddr;
use nix::libc;
use nix::sys::socket::sockopt::{Ipv6MulticastHops, RcvBuf};
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, recv,
    sendmsg, setsockopt, socket,
};
use std::io::{self, IoSlice};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

const NEIGHBOR_ADVERT: u8 = 136;
/// Flags byte of an advertisement: router, solicited, override.
const FLAG_OVERRIDE: u8 = 0x20;
/// Option: target link-layer address.
const OPT_TARGET_LLADDR: u8 = 2;
/// An advertisement with a target link-layer address option.
pub(super) const NA_LEN: usize = 32;

/// An unsolicited advertisement of `target` at `mac`: override set,
/// solicited and router clear.
pub(super) fn advert(target: Ipv6Addr, mac: MacAddr) -> [u8; NA_LEN] {
    let mut m = [0u8; NA_LEN];
    m[0] = NEIGHBOR_ADVERT;
    // m[1] code 0, m[2..4] checksum filled by the kernel.
    m[4] = FLAG_OVERRIDE;
    m[8..24].copy_from_slice(&target.octets());
    m[24] = OPT_TARGET_LLADDR;
    m[25] = 1; // length in units of 8 bytes
    m[26..32].copy_from_slice(&mac.0);
    m
}

/// Parses an ICMPv6 message: `Some((target, mac))` for a neighbour
/// advertisement, `mac` from its target link-layer address option.
pub(super) fn parse_advert(m: &[u8]) -> Option<(Ipv6Addr, Option<MacAddr>)> {
    if m.len() < 24 || m[0] != NEIGHBOR_ADVERT || m[1] != 0 {
        return None;
    }
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&m[8..24]).ok()?);
    let mut mac = None;
    let mut opts = &m[24..];
    while opts.len() >= 2 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 || len > opts.len() {
            break;
        }
        if opts[0] == OPT_TARGET_LLADDR && len >= 8 {
            mac = Some(MacAddr(opts[2..8].try_into().expect("6 bytes")));
        }
        opts = &opts[len..];
    }
    Some((target, mac))
}

fn raw_icmpv6() -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Inet6,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        SockProtocol::IcmpV6,
    )?)
}

/// Sends unsolicited neighbour advertisements on any NIC.
pub(super) struct Sender {
    fd: AsyncFd<OwnedFd>,
}

impl Sender {
    /// Opens the socket (inside a tokio runtime, in the calling thread's
    /// network namespace).
    pub fn open() -> io::Result<Sender> {
        let fd = raw_icmpv6()?;
        // Receivers drop neighbour discovery packets with another hop limit.
        setsockopt(&fd, Ipv6MulticastHops, &255)?;
        // This socket only sends, but a raw ICMPv6 socket is handed a copy
        // of every ICMPv6 packet: keep that pile as small as the kernel
        // allows.
        setsockopt(&fd, RcvBuf, &0)?;
        Ok(Sender {
            fd: super::register(fd, Interest::WRITABLE)?,
        })
    }

    /// Advertises `addr` at `mac` to all nodes (ff02::1) on interface
    /// `ifindex`, from `addr` itself (which must be on that NIC, past DAD).
    pub async fn advertise(&self, ifindex: u32, addr: Ipv6Addr, mac: MacAddr) -> io::Result<()> {
        let msg = advert(addr, mac);
        let dst = SockaddrIn6::from(SocketAddrV6::new(
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            0,
            0,
            ifindex,
        ));
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: addr.octets(),
            },
            ipi6_ifindex: ifindex,
        };
        self.fd
            .async_io(Interest::WRITABLE, |fd| {
                sendmsg(
                    fd.as_raw_fd(),
                    &[IoSlice::new(&msg)],
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::empty(),
                    Some(&dst),
                )
                .map_err(io::Error::from)
            })
            .await?;
        Ok(())
    }
}

/// Hears neighbour advertisements while the kernel runs duplicate address
/// detection. Open it before adding the address, so that the defender's
/// answer is not missed; drop it after (closing a raw socket is cheap).
pub(super) struct Listener {
    fd: AsyncFd<OwnedFd>,
}

impl Listener {
    pub fn open() -> io::Result<Listener> {
        Ok(Listener {
            fd: super::register(raw_icmpv6()?, Interest::READABLE)?,
        })
    }

    /// Waits for an advertisement of `target` that names a MAC, and
    /// returns that MAC. Cancel-safe.
    pub async fn defender(&self, target: Ipv6Addr) -> io::Result<MacAddr> {
        let mut buf = [0u8; 1500];
        loop {
            let n = self
                .fd
                .async_io(Interest::READABLE, |fd| {
                    recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(io::Error::from)
                })
                .await?;
            if let Some((t, Some(mac))) = parse_advert(&buf[..n])
                && t == target
            {
                return Ok(mac);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_layout_and_round_trip() {
        let mac = MacAddr([2, 0, 0, 0, 0, 7]);
        let target: Ipv6Addr = "fd00::5".parse().unwrap();
        let m = advert(target, mac);
        assert_eq!(m[0], 136);
        assert_eq!(m[1], 0);
        assert_eq!(&m[4..8], &[0x20, 0, 0, 0], "override only");
        assert_eq!(&m[24..26], &[2, 1]);
        assert_eq!(parse_advert(&m), Some((target, Some(mac))));
    }

    #[test]
    fn parse_advert_without_option_or_with_bad_options() {
        let target: Ipv6Addr = "fd00::5".parse().unwrap();
        let m = advert(target, MacAddr([2, 0, 0, 0, 0, 7]));
        assert_eq!(parse_advert(&m[..24]), Some((target, None)));
        let mut zero_len = m;
        zero_len[25] = 0;
        assert_eq!(parse_advert(&zero_len), Some((target, None)));
        let mut solicit = m;
        solicit[0] = 135;
        assert_eq!(parse_advert(&solicit), None);
        assert_eq!(parse_advert(&m[..20]), None);
    }
}
