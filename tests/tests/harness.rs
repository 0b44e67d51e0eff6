//! Tests of the harness itself (no daemons needed): the serial cable
//! carries, paces, cuts and corrupts bytes, and unplugs and replugs under
//! stable names; namespaces, veths and nftables cuts behave; raw UDP
//! capture, spoofing and replay work.

use hatests::cable::{Cable, DirStats, Direction, End, random_noise};
use hatests::netns::{Netns, Veth};
use hatests::nft::{self, Dir};
use hatests::rawudp::{self, Capture};
use hatests::scratch::ScratchDir;
use hatests::{require_root, unique};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

const O_NOCTTY: i32 = 0o400;
const O_NONBLOCK: i32 = 0o4000;

/// Opens a cable end as a daemon would (non-blocking for the test).
fn open_end(cable: &Cable, end: End) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_NOCTTY | O_NONBLOCK)
        .open(cable.path(end))
        .unwrap_or_else(|e| panic!("{}: {e}", cable.path(end).display()))
}

/// Reads what arrives on `f` until `want` bytes came or `timeout` passed.
fn read_for(f: &mut File, want: usize, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want && Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

#[test]
fn cable_carries_bytes_both_ways() {
    let cable = Cable::new(19200).unwrap();
    assert!(
        cable.path(End::A).starts_with("/dev/pts/"),
        "{:?}",
        cable.path(End::A)
    );
    assert_ne!(cable.path(End::A), cable.path(End::B));
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    a.write_all(b"hello from A\0").unwrap();
    assert_eq!(
        read_for(&mut b, 13, Duration::from_secs(2)),
        b"hello from A\0"
    );
    b.write_all(b"and from B\0").unwrap();
    assert_eq!(
        read_for(&mut a, 11, Duration::from_secs(2)),
        b"and from B\0"
    );
    // Nothing echoes back to the sender (raw mode, no loop).
    assert!(read_for(&mut b, 1, Duration::from_millis(100)).is_empty());
    // A daemon closing and reopening its port does not break the cable.
    drop(a);
    let mut a = open_end(&cable, End::A);
    a.write_all(b"again").unwrap();
    assert_eq!(read_for(&mut b, 5, Duration::from_secs(2)), b"again");
    assert_eq!(cable.stats(Direction::AToB).delivered, 18);
}

#[test]
fn cable_is_paced_to_the_baud_rate() {
    // 19200 baud, 8N1: 1920 bytes a second, so 960 bytes take ~0.5 s.
    let cable = Cable::new(19200).unwrap();
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    let data: Vec<u8> = (0..960u32).map(|i| (i % 251 + 1) as u8).collect();
    let start = Instant::now();
    a.write_all(&data).unwrap();
    let early = read_for(&mut b, data.len(), Duration::from_millis(250));
    let rest = read_for(&mut b, data.len() - early.len(), Duration::from_secs(3));
    let took = start.elapsed();
    let mut all = early.clone();
    all.extend_from_slice(&rest);
    assert_eq!(all, data, "bytes arrive complete and in order");
    // After 250 ms at most ~480 bytes (plus a small burst and slack).
    assert!(
        early.len() <= 560,
        "{} bytes after 250 ms: not paced",
        early.len()
    );
    assert!(
        early.len() >= 250,
        "{} bytes after 250 ms: far too slow",
        early.len()
    );
    assert!(
        took >= Duration::from_millis(450) && took <= Duration::from_millis(1000),
        "960 bytes at 19200 baud took {took:?}, expected ~500 ms"
    );

    // And at 9600 baud, half the speed.
    let slow = Cable::new(9600).unwrap();
    let (mut a, mut b) = (open_end(&slow, End::A), open_end(&slow, End::B));
    let start = Instant::now();
    a.write_all(&data[..480]).unwrap();
    assert_eq!(read_for(&mut b, 480, Duration::from_secs(3)).len(), 480);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took <= Duration::from_millis(1000),
        "480 bytes at 9600 baud took {took:?}, expected ~500 ms"
    );
}

#[test]
fn cable_cut_discards_and_restore_reconnects() {
    let cable = Cable::new(19200).unwrap();
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    cable.cut();
    a.write_all(b"lost").unwrap();
    b.write_all(b"lost too").unwrap();
    assert!(read_for(&mut b, 1, Duration::from_millis(300)).is_empty());
    assert!(read_for(&mut a, 1, Duration::from_millis(100)).is_empty());
    assert_eq!(cable.stats(Direction::AToB).discarded, 4);
    assert_eq!(cable.stats(Direction::BToA).discarded, 8);

    cable.restore();
    a.write_all(b"back").unwrap();
    assert_eq!(
        read_for(&mut b, 4, Duration::from_secs(2)),
        b"back",
        "nothing stale arrives"
    );

    cable.cut_one_way(Direction::AToB);
    assert!(cable.is_cut(Direction::AToB) && !cable.is_cut(Direction::BToA));
    a.write_all(b"a to b").unwrap();
    b.write_all(b"b to a").unwrap();
    assert_eq!(read_for(&mut a, 6, Duration::from_secs(2)), b"b to a");
    assert!(read_for(&mut b, 1, Duration::from_millis(300)).is_empty());
    cable.restore();
    a.write_all(b"ok").unwrap();
    assert_eq!(read_for(&mut b, 2, Duration::from_secs(2)), b"ok");
}

#[test]
fn cable_noise_lands_in_the_middle_of_a_frame() {
    let cable = Cable::new(19200).unwrap();
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    // Five "frames" of 40 non-zero bytes, each ended by a zero delimiter.
    let mut stream = Vec::new();
    for f in 0..5u8 {
        stream.extend(std::iter::repeat_n(0x10 + f, 40));
        stream.push(0);
    }
    let noise = random_noise(6, false);
    assert!(noise.iter().all(|&b| b != 0));
    a.write_all(&stream).unwrap();
    assert!(
        cable.inject_noise(Direction::AToB, &noise),
        "noise went in mid-frame"
    );
    let got = read_for(&mut b, stream.len() + noise.len(), Duration::from_secs(3));
    assert_eq!(got.len(), stream.len() + noise.len());
    let at = (0..got.len() - noise.len())
        .find(|&i| got[i..i + noise.len()] == noise[..])
        .expect("noise found in the stream");
    assert!(
        at > 0 && got[at - 1] != 0,
        "a frame byte precedes the noise"
    );
    assert_ne!(got[at + noise.len()], 0, "a frame byte follows the noise");
    let mut without = got.clone();
    without.drain(at..at + noise.len());
    assert_eq!(without, stream, "only the noise was added");
    let DirStats {
        noise_bursts,
        delivered,
        ..
    } = cable.stats(Direction::AToB);
    assert_eq!((noise_bursts, delivered), (1, got.len() as u64));
    // On an idle line the noise still goes in (not mid-frame) after a while.
    assert!(!cable.inject_noise(Direction::BToA, &[0x42]));
    assert_eq!(read_for(&mut a, 1, Duration::from_secs(2)), [0x42]);
}

/// Whether `f`'s pty has hung up (a read sees end of file or an I/O error)
/// within `timeout`.
fn hung_up(f: &mut File, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        match f.read(&mut buf) {
            Ok(0) => return true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return true,
            Ok(_) => {}
        }
    }
    false
}

#[test]
fn cable_unplug_and_replug_keep_the_link_names() {
    let dir = ScratchDir::new("cable_replug");
    let cable = Cable::with_links(19200, dir.path()).unwrap();
    let (link_a, link_b) = (dir.join("ttyA"), dir.join("ttyB"));
    assert_eq!(
        (cable.path(End::A), cable.path(End::B)),
        (link_a.clone(), link_b)
    );
    let first = cable.device(End::A);
    assert!(first.starts_with("/dev/pts/"), "{first:?}");
    assert_eq!(std::fs::read_link(&link_a).unwrap(), first);
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    a.write_all(b"before").unwrap();
    assert_eq!(read_for(&mut b, 6, Duration::from_secs(2)), b"before");

    let start = Instant::now();
    cable.unplug();
    assert!(start.elapsed() < Duration::from_secs(1), "unplug is prompt");
    assert!(!cable.is_plugged());
    assert!(hung_up(&mut a, Duration::from_secs(2)), "end A hung up");
    assert!(hung_up(&mut b, Duration::from_secs(2)), "end B hung up");
    for path in [&link_a, &first] {
        let gone = std::fs::symlink_metadata(path).map_err(|e| e.kind());
        assert_eq!(gone.err(), Some(ErrorKind::NotFound), "{path:?} is gone");
    }
    assert!(
        !cable.inject_noise(Direction::AToB, b"x"),
        "no noise unplugged"
    );
    cable.unplug();

    cable.replug().unwrap();
    cable.replug().unwrap();
    assert!(cable.is_plugged());
    assert_eq!(std::fs::read_link(&link_a).unwrap(), cable.device(End::A));
    drop((a, b));
    let (mut a, mut b) = (open_end(&cable, End::A), open_end(&cable, End::B));
    a.write_all(b"after").unwrap();
    assert_eq!(read_for(&mut b, 5, Duration::from_secs(2)), b"after");
    b.write_all(b"and back").unwrap();
    assert_eq!(read_for(&mut a, 8, Duration::from_secs(2)), b"and back");
    assert_eq!(
        cable.stats(Direction::AToB).delivered,
        11,
        "counters survive"
    );
}

#[test]
fn cable_drop_stops_the_bridge() {
    let start = Instant::now();
    for _ in 0..5 {
        let cable = Cable::new(19200).unwrap();
        drop(cable);
    }
    assert!(start.elapsed() < Duration::from_secs(1), "drop is prompt");
}

/// Two namespaces joined by a veth in a fresh 10.91.X.0/24.
fn pair(test: &str) -> (Netns, Netns, Veth) {
    let x = unique::subnet_octet();
    let a = Netns::new(&format!("{test}-a"));
    let b = Netns::new(&format!("{test}-b"));
    let veth = Veth::new(
        &a,
        "lan1",
        Ipv4Addr::new(10, 91, x, 1),
        &b,
        "lan1",
        Ipv4Addr::new(10, 91, x, 2),
    );
    (a, b, veth)
}

/// A UDP socket bound inside `ns`.
fn bind_in(ns: &Netns, at: SocketAddrV4) -> UdpSocket {
    let sock = ns.enter(|| UdpSocket::bind(at)).unwrap().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    sock
}

/// The next datagram on `sock` within its read timeout.
fn recv(sock: &UdpSocket) -> Option<(Vec<u8>, SocketAddrV4)> {
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, std::net::SocketAddr::V4(from))) => Some((buf[..n].to_vec(), from)),
        Ok(_) => None,
        Err(_) => None,
    }
}

#[test]
fn veth_joins_two_namespaces() {
    if !require_root() {
        return;
    }
    let (a, b, veth) = pair("veth");
    assert!(
        a.ip(&["-4", "addr", "show", "lan1"])
            .contains(&format!("{}/24", veth.a.addr))
    );
    assert!(a.ip(&["link", "show", "lo"]).contains("UP"));
    // A "ping" over UDP both ways (iputils is not installed here).
    let rb = bind_in(&b, SocketAddrV4::new(veth.b.addr, 7000));
    let ra = bind_in(&a, SocketAddrV4::new(veth.a.addr, 7000));
    rawudp::send_udp(&a, SocketAddrV4::new(veth.b.addr, 7000), b"ping").unwrap();
    let (got, from) = recv(&rb).expect("A reaches B");
    assert_eq!((got.as_slice(), *from.ip()), (&b"ping"[..], veth.a.addr));
    assert_ne!(from.port(), 7000, "send_udp uses an ephemeral port");
    rawudp::send_udp(&b, SocketAddrV4::new(veth.a.addr, 7000), b"pong").unwrap();
    assert_eq!(recv(&ra).expect("B answers A").0, b"pong");
    // The host does not see the namespaces' interfaces.
    let host = hatests::command::must(std::process::Command::new("ip").args(["-4", "addr"]));
    assert!(!host.contains(&veth.a.addr.to_string()));
}

#[test]
fn netns_drop_kills_its_processes_and_deletes_it() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("drop");
    let path = ns.path();
    assert!(path.exists());
    let mut child = ns.command("sleep").arg("30").spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !ns.pids().contains(&(child.id() as i32)) {
        assert!(Instant::now() < deadline, "sleep not seen in the namespace");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(ns);
    let status = hatests::command::wait_deadline(&mut child, Duration::from_secs(2))
        .expect("the process was killed");
    assert!(!status.success());
    assert!(!path.exists(), "namespace deleted");
}

#[test]
fn nft_cuts_udp_by_port_and_direction() {
    if !require_root() {
        return;
    }
    let (a, b, veth) = pair("nft");
    let (pa, pb) = (
        SocketAddrV4::new(veth.a.addr, 7100),
        SocketAddrV4::new(veth.b.addr, 7100),
    );
    let ra = bind_in(&a, pa);
    let rb = bind_in(&b, pb);
    let other = bind_in(&b, SocketAddrV4::new(veth.b.addr, 7101));
    let a_to_b =
        |port: u16| rawudp::send_udp(&a, SocketAddrV4::new(veth.b.addr, port), b"x").unwrap();
    // An output cut makes the sender's send fail with EPERM: ignore it.
    let b_to_a = || {
        let _ = rawudp::send_udp(&b, pa, b"y");
    };

    // Incoming cut at B: A -> B lost, B -> A fine, another port fine.
    nft::drop_udp(&b, 7100, Dir::In);
    a_to_b(7100);
    assert!(recv(&rb).is_none(), "cut in at B drops A -> B");
    b_to_a();
    assert!(recv(&ra).is_some(), "B -> A still flows");
    a_to_b(7101);
    assert!(recv(&other).is_some(), "other ports still flow");
    nft::allow_udp(&b, 7100, Dir::In);
    nft::allow_udp(&b, 7100, Dir::In); // idempotent
    a_to_b(7100);
    assert!(recv(&rb).is_some(), "restored");

    // Outgoing cut at B: B -> A lost, A -> B fine.
    nft::drop_udp(&b, 7100, Dir::Out);
    nft::drop_udp(&b, 7100, Dir::Out); // idempotent
    b_to_a();
    assert!(recv(&ra).is_none(), "cut out at B drops B -> A");
    a_to_b(7100);
    assert!(recv(&rb).is_some());

    // Both, then clear.
    nft::drop_udp(&b, 7100, Dir::Both);
    a_to_b(7100);
    b_to_a();
    assert!(recv(&rb).is_none() && recv(&ra).is_none(), "cut both ways");
    let rules = nft::list(&b);
    assert!(rules.contains("hatests"), "{rules}");
    nft::clear(&b);
    a_to_b(7100);
    b_to_a();
    assert!(recv(&rb).is_some() && recv(&ra).is_some(), "cleared");
}

#[test]
fn raw_udp_capture_spoof_and_replay() {
    if !require_root() {
        return;
    }
    let (a, b, veth) = pair("raw");
    let daemon_a = SocketAddrV4::new(veth.a.addr, 5405);
    let daemon_b = SocketAddrV4::new(veth.b.addr, 5405);
    // Stand-ins for the two daemons' sockets.
    let sa = bind_in(&a, daemon_a);
    let sb = bind_in(&b, daemon_b);
    let cap = Capture::open(&b).unwrap();

    // A real datagram from A's "daemon" socket is captured at B.
    sa.send_to(b"real frame", daemon_b).unwrap();
    let d = cap
        .next(Duration::from_secs(2), |d| d.dst == daemon_b)
        .expect("captured");
    assert_eq!(
        (d.src, d.dst, d.payload.as_slice()),
        (daemon_a, daemon_b, &b"real frame"[..])
    );
    assert_eq!(recv(&sb).unwrap(), (b"real frame".to_vec(), daemon_a));

    // Replayed byte for byte: the receiver sees the same source.
    rawudp::replay(&a, &d).unwrap();
    assert_eq!(
        recv(&sb).expect("replay delivered"),
        (b"real frame".to_vec(), daemon_a)
    );

    // A forged datagram with the daemon's address while the daemon's
    // socket is bound (a plain socket could not use that port).
    rawudp::send_spoofed(&a, daemon_a, daemon_b, b"forged").unwrap();
    assert_eq!(
        recv(&sb).expect("forged delivered"),
        (b"forged".to_vec(), daemon_a)
    );

    // nft cuts apply to raw sends and to captures.
    nft::drop_udp(&b, 5405, Dir::In);
    rawudp::send_spoofed(&a, daemon_a, daemon_b, b"cut").unwrap();
    assert!(recv(&sb).is_none());
    assert!(
        cap.next(Duration::from_millis(300), |d| d.payload == b"cut")
            .is_none()
    );
}
