//! Wire frames: the authenticated, versioned datagram every node sends on
//! every path (UDP datagram as is, serial line through [`crate::serial`]).
//!
//! Layout of version 1 (all integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version (major) |
//! | 1 | 1 | flags: bits 0-1 priority [`Class`], other bits reserved (ignored) |
//! | 2 | 2 | netid (cluster id, 1-1024) |
//! | 4 | 1 | sender domain id (1-64) |
//! | 5 | 1 | destination domain id (0 = every node on the path) |
//! | 6 | 1 | path index (the network's position in the config) |
//! | 7 | 4 | boot id (new at every OS boot of the sender) |
//! | 11 | 4 | incarnation (persisted, monotonic per sender) |
//! | 15 | 4 | sequence number (per sender and path, starts at 1) |
//! | 19 | 4 | ack: the latest sequence number the sender accepted from `dest` on this path (0 = none) |
//! | 23 | 2 | ack incarnation: low 16 bits of the incarnation of `dest` that sent it |
//! | 25 | 2 | ack delay: how long the sender held that ack, in 100 us units (saturating) |
//! | 27 | 4 | config hash of the sender |
//! | 31 | n | items: `type u8, length u16, value` each |
//! | 31+n | 12 | HMAC-SHA256 over everything before, truncated to 96 bits |
//!
//! A heartbeat is the bare header and MAC: 43 bytes. Sequence numbers count
//! per sender, path and destination; the ack incarnation keeps an ack of a
//! restarted node's previous life (whose numbers restart at 1) from
//! passing for proof that the peer hears the new one.
//!
//! Compatibility: a later minor revision adds item types; a decoder skips
//! item types it does not know unless their type has the [`CRITICAL`] bit,
//! in which case the frame is refused as `unsupported`. A new major version
//! is refused as `version`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Major version this code speaks.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 31;
/// Length of the truncated HMAC tag at the end of each frame.
pub const MAC_LEN: usize = 12;
/// Length of a heartbeat frame (header + MAC, no items).
pub const HEARTBEAT_LEN: usize = HEADER_LEN + MAC_LEN;
/// Largest frame accepted on any path.
pub const MAX_FRAME: usize = 1400;
/// Item types with this bit must be understood; unknown ones refuse the frame.
pub const CRITICAL: u8 = 0x80;

/// A node's domain id within the cluster (1-64).
pub type NodeId = u8;

/// Sending priority: on a serial line, higher classes go first and
/// heartbeats are coalesced behind them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Periodic liveness frame.
    Heartbeat = 0,
    /// Ordinary protocol traffic (handshakes, bus).
    Normal = 1,
    /// Lease, release and fence messages.
    Urgent = 2,
}

impl Class {
    fn from_bits(bits: u8) -> Class {
        match bits & 0b11 {
            0 => Class::Heartbeat,
            1 => Class::Normal,
            _ => Class::Urgent,
        }
    }
}

/// Fixed fields of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub class: Class,
    pub netid: u16,
    pub sender: NodeId,
    pub dest: NodeId,
    pub path: u8,
    pub boot: u32,
    pub incarnation: u32,
    pub seq: u32,
    pub ack: u32,
    pub ack_incarnation: u16,
    pub ack_delay: u16,
    pub config_hash: u32,
}

/// One typed item carried after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// "Prove you are the incarnation you claim": answer with this nonce.
    Challenge(u64),
    /// Answer to a [`Item::Challenge`] from the frame's destination.
    Response(u64),
    /// The sender is shutting down cleanly and leaves the cluster.
    Leave,
    /// A reliable message (see [`crate::channel`]), numbered per pair of
    /// incarnations.
    Message { seq: u32, data: Vec<u8> },
    /// Cumulative acknowledgement of the destination's messages.
    MessageAck(u32),
    /// An item this version does not know (non-critical); kept for relaying.
    Unknown { kind: u8, data: Vec<u8> },
}

const ITEM_CHALLENGE: u8 = 1;
const ITEM_RESPONSE: u8 = 2;
const ITEM_LEAVE: u8 = 3;
const ITEM_MESSAGE: u8 = 4;
const ITEM_MESSAGE_ACK: u8 = 5;
/// Item types this version understands (others are skipped or refused).
pub const KNOWN_ITEMS: std::ops::RangeInclusive<u8> = ITEM_CHALLENGE..=ITEM_MESSAGE_ACK;

/// A decoded, authenticated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub items: Vec<Item>,
}

/// Why a received frame (or serial byte run) was dropped. Counted by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reject {
    /// Shorter than a header and MAC.
    Short,
    /// Longer than [`MAX_FRAME`].
    Oversize,
    /// Major version this node does not speak.
    Version,
    /// Another cluster's netid.
    Foreign,
    /// HMAC does not verify under the cluster key.
    Mac,
    /// Authenticated but structurally wrong (bad item length, bad field).
    Malformed,
    /// Carries a critical item this version does not know.
    Unsupported,
    /// Serial framing: CRC or COBS error (line noise, half-sent frame).
    Crc,
    /// Sender id not in the cluster config.
    UnknownSender,
    /// Path index does not match the path it arrived on.
    WrongPath,
    /// Sequence number already seen (or too old) for this sender and path.
    Replay,
    /// Incarnation older than the one already accepted.
    OldIncarnation,
    /// New incarnation not yet proven by a nonce round trip.
    Unverified,
    /// Sent by this very node (looped back).
    Own,
    /// Addressed to another node.
    NotForUs,
}

impl Reject {
    /// Every reason, in a fixed order for reports.
    pub const ALL: [Reject; 15] = [
        Reject::Short,
        Reject::Oversize,
        Reject::Version,
        Reject::Foreign,
        Reject::Mac,
        Reject::Malformed,
        Reject::Unsupported,
        Reject::Crc,
        Reject::UnknownSender,
        Reject::WrongPath,
        Reject::Replay,
        Reject::OldIncarnation,
        Reject::Unverified,
        Reject::Own,
        Reject::NotForUs,
    ];

    /// Stable name used in counters, logs and `hactl status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Short => "short",
            Reject::Oversize => "oversize",
            Reject::Version => "version",
            Reject::Foreign => "foreign",
            Reject::Mac => "bad_mac",
            Reject::Malformed => "malformed",
            Reject::Unsupported => "unsupported",
            Reject::Crc => "crc",
            Reject::UnknownSender => "unknown_sender",
            Reject::WrongPath => "wrong_path",
            Reject::Replay => "replay",
            Reject::OldIncarnation => "old_incarnation",
            Reject::Unverified => "unverified",
            Reject::Own => "own",
            Reject::NotForUs => "not_for_us",
        }
    }
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cluster key, ready to authenticate frames.
#[derive(Clone)]
pub struct ClusterKey(Hmac<Sha256>);

impl ClusterKey {
    /// Shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// Prepares a key; refuses keys shorter than [`ClusterKey::MIN_LEN`].
    pub fn new(secret: &[u8]) -> Result<ClusterKey, KeyTooShort> {
        if secret.len() < Self::MIN_LEN {
            return Err(KeyTooShort(secret.len()));
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| KeyTooShort(secret.len()))?;
        Ok(ClusterKey(mac))
    }

    fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.0.clone();
        mac.update(data);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }

    fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// A key shorter than [`ClusterKey::MIN_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTooShort(pub usize);

impl std::fmt::Display for KeyTooShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster key has {} bytes, at least {} are required",
            self.0,
            ClusterKey::MIN_LEN
        )
    }
}

impl std::error::Error for KeyTooShort {}

impl Frame {
    /// A frame with no items.
    pub fn new(header: Header) -> Frame {
        Frame {
            header,
            items: Vec::new(),
        }
    }

    /// Serialises and authenticates the frame.
    pub fn encode(&self, key: &ClusterKey) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(HEARTBEAT_LEN);
        out.push(VERSION);
        out.push(h.class as u8);
        out.extend_from_slice(&h.netid.to_be_bytes());
        out.push(h.sender);
        out.push(h.dest);
        out.push(h.path);
        out.extend_from_slice(&h.boot.to_be_bytes());
        out.extend_from_slice(&h.incarnation.to_be_bytes());
        out.extend_from_slice(&h.seq.to_be_bytes());
        out.extend_from_slice(&h.ack.to_be_bytes());
        out.extend_from_slice(&h.ack_incarnation.to_be_bytes());
        out.extend_from_slice(&h.ack_delay.to_be_bytes());
        out.extend_from_slice(&h.config_hash.to_be_bytes());
        for item in &self.items {
            match item {
                Item::Challenge(n) => push_item(&mut out, ITEM_CHALLENGE, &n.to_be_bytes()),
                Item::Response(n) => push_item(&mut out, ITEM_RESPONSE, &n.to_be_bytes()),
                Item::Leave => push_item(&mut out, ITEM_LEAVE, &[]),
                Item::Message { seq, data } => push_item(
                    &mut out,
                    ITEM_MESSAGE,
                    &[&seq.to_be_bytes()[..], data].concat(),
                ),
                Item::MessageAck(seq) => push_item(&mut out, ITEM_MESSAGE_ACK, &seq.to_be_bytes()),
                Item::Unknown { kind, data } => push_item(&mut out, *kind, data),
            }
        }
        let tag = key.tag(&out);
        out.extend_from_slice(&tag);
        out
    }

    /// Checks and parses a received frame of cluster `netid`.
    pub fn decode(bytes: &[u8], key: &ClusterKey, netid: u16) -> Result<Frame, Reject> {
        if bytes.len() > MAX_FRAME {
            return Err(Reject::Oversize);
        }
        if bytes.is_empty() {
            return Err(Reject::Short);
        }
        if bytes[0] != VERSION {
            return Err(Reject::Version);
        }
        if bytes.len() < HEARTBEAT_LEN {
            return Err(Reject::Short);
        }
        if u16::from_be_bytes([bytes[2], bytes[3]]) != netid {
            return Err(Reject::Foreign);
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        if !key.verify(body, tag) {
            return Err(Reject::Mac);
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let header = Header {
            class: Class::from_bits(body[1]),
            netid,
            sender: body[4],
            dest: body[5],
            path: body[6],
            boot: u32_at(7),
            incarnation: u32_at(11),
            seq: u32_at(15),
            ack: u32_at(19),
            ack_incarnation: u16::from_be_bytes([body[23], body[24]]),
            ack_delay: u16::from_be_bytes([body[25], body[26]]),
            config_hash: u32_at(27),
        };
        if header.sender == 0 || header.seq == 0 {
            return Err(Reject::Malformed);
        }
        let items = decode_items(&body[HEADER_LEN..])?;
        Ok(Frame { header, items })
    }
}

fn push_item(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let len = u16::try_from(data.len()).expect("item larger than a frame");
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
}

fn decode_items(mut rest: &[u8]) -> Result<Vec<Item>, Reject> {
    let mut items = Vec::new();
    while !rest.is_empty() {
        if rest.len() < 3 {
            return Err(Reject::Malformed);
        }
        let kind = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
        let data = rest.get(3..3 + len).ok_or(Reject::Malformed)?;
        rest = &rest[3 + len..];
        let nonce = || -> Result<u64, Reject> {
            let raw: [u8; 8] = data.try_into().map_err(|_| Reject::Malformed)?;
            Ok(u64::from_be_bytes(raw))
        };
        items.push(match kind {
            ITEM_CHALLENGE => Item::Challenge(nonce()?),
            ITEM_RESPONSE => Item::Response(nonce()?),
            ITEM_LEAVE if data.is_empty() => Item::Leave,
            ITEM_LEAVE => return Err(Reject::Malformed),
            ITEM_MESSAGE if data.len() >= 4 => Item::Message {
                seq: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                data: data[4..].to_vec(),
            },
            ITEM_MESSAGE_ACK => {
                let raw: [u8; 4] = data.try_into().map_err(|_| Reject::Malformed)?;
                Item::MessageAck(u32::from_be_bytes(raw))
            }
            ITEM_MESSAGE => return Err(Reject::Malformed),
            k if k & CRITICAL != 0 => return Err(Reject::Unsupported),
            k => Item::Unknown {
                kind: k,
                data: data.to_vec(),
            },
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn key() -> ClusterKey {
        ClusterKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    pub(crate) fn header() -> Header {
        Header {
            class: Class::Heartbeat,
            netid: 7,
            sender: 1,
            dest: 2,
            path: 0,
            boot: 0xdead_beef,
            incarnation: 3,
            seq: 42,
            ack: 41,
            ack_incarnation: 5,
            ack_delay: 12,
            config_hash: 0x0102_0304,
        }
    }

    #[test]
    fn heartbeat_is_43_bytes_and_round_trips() {
        let frame = Frame::new(header());
        let bytes = frame.encode(&key());
        assert_eq!(bytes.len(), HEARTBEAT_LEN);
        assert_eq!(HEARTBEAT_LEN, 43);
        assert_eq!(Frame::decode(&bytes, &key(), 7), Ok(frame));
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let bytes = Frame::new(header()).encode(&key());
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(Frame::decode(&bad, &key(), 7).is_err(), "bit {i}");
        }
    }

    #[test]
    fn reasons_are_told_apart() {
        let bytes = Frame::new(header()).encode(&key());
        assert_eq!(Frame::decode(&bytes, &key(), 8), Err(Reject::Foreign));
        let other = ClusterKey::new(b"another key of the same length!!").unwrap();
        assert_eq!(Frame::decode(&bytes, &other, 7), Err(Reject::Mac));
        assert_eq!(Frame::decode(&bytes[..20], &key(), 7), Err(Reject::Short));
        let mut v2 = bytes.clone();
        v2[0] = 2;
        assert_eq!(Frame::decode(&v2, &key(), 7), Err(Reject::Version));
        assert_eq!(ClusterKey::new(b"short").err(), Some(KeyTooShort(5)));
    }

    #[test]
    fn a_later_minor_revision_still_talks_to_this_one() {
        // A newer sender adds a non-critical item type and sets a reserved
        // flag bit; this version skips the item and ignores the bit.
        let mut newer = Frame::new(header());
        newer.items = vec![
            Item::Challenge(9),
            Item::Unknown {
                kind: 0x21,
                data: vec![1, 2, 3],
            },
        ];
        let mut bytes = newer.encode(&key());
        bytes[1] |= 0x40;
        let body_len = bytes.len() - MAC_LEN;
        let tag = key().tag(&bytes[..body_len]);
        bytes[body_len..].copy_from_slice(&tag);
        let got = Frame::decode(&bytes, &key(), 7).unwrap();
        assert_eq!(got.header, header());
        assert_eq!(got.items, newer.items);

        let mut critical = Frame::new(header());
        critical.items = vec![Item::Unknown {
            kind: 0x90,
            data: vec![],
        }];
        let bytes = critical.encode(&key());
        assert_eq!(Frame::decode(&bytes, &key(), 7), Err(Reject::Unsupported));
    }
}
