//! The checks both fuzz targets run on each input, shared with the corpus
//! replay test (`litecloud/tests/fuzz_corpus.rs` includes this file), so
//! that every corpus file is re-checked by an ordinary `cargo test`.
//!
//! - [`frame_decode`]: `Frame::decode` on arbitrary bytes returns Ok or Err
//!   and never panics; since random bytes almost never carry a valid MAC,
//!   the input is also signed under the key as a frame body (as is, and
//!   with version and netid set) so that the header and item parsers are
//!   reached. Whatever decodes round-trips: `decode(encode(f)) == f`,
//!   encoding is canonical and of the documented length, and any flipped
//!   bit of an encoded frame is refused.
//! - [`serial_deframe`]: `Deframer::push` on an arbitrary byte stream cut
//!   in arbitrary chunks gives the same results as in one push, never more
//!   results than delimiters, and every frame it yields re-encodes to
//!   exactly itself and goes through `Frame::decode` without panicking.

// Each includer uses a part of it.
#![allow(dead_code)]

use hmac::{Hmac, KeyInit, Mac};
use litecloud::serial::{self, Deframer};
use litecloud::wire::{
    CRITICAL, ClusterKey, Frame, HEADER_LEN, Item, KNOWN_ITEMS, MAC_LEN, MAX_FRAME, Reject, VERSION,
};
use sha2::Sha256;

/// The cluster key and netid the targets decode with.
pub const SECRET: &[u8] = b"litecloud fuzzing key, 32 bytes!";
pub const NETID: u16 = 7;

pub fn key() -> ClusterKey {
    ClusterKey::new(SECRET).expect("key is long enough")
}

/// Appends the frame MAC (HMAC-SHA256 truncated to 96 bits) to `body`.
pub fn sign(mut body: Vec<u8>) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(&body);
    let tag = mac.finalize().into_bytes();
    body.extend_from_slice(&tag[..MAC_LEN]);
    body
}

/// Checks one input of the `frame_decode` target.
pub fn frame_decode(data: &[u8]) {
    let key = key();
    // 1. The raw bytes, as received from the network.
    if let Ok(frame) = Frame::decode(data, &key, NETID) {
        // It consumed every byte: the same frame encodes to the same length.
        round_trip(&frame, &key, data.len());
    }
    // 2. The bytes as a frame body, signed: as is, and with a valid
    //    version and netid.
    let body = &data[..data.len().min(MAX_FRAME - MAC_LEN)];
    signed(body.to_vec(), &key);
    if body.len() >= 4 {
        let mut fixed = body.to_vec();
        fixed[0] = VERSION;
        fixed[2..4].copy_from_slice(&NETID.to_be_bytes());
        signed(fixed, &key);
    }
}

fn signed(body: Vec<u8>, key: &ClusterKey) {
    let len = body.len();
    let bytes = sign(body);
    match Frame::decode(&bytes, key, NETID) {
        Ok(frame) => round_trip(&frame, key, len + MAC_LEN),
        Err(Reject::Mac) => panic!("a correctly signed frame was refused as bad_mac"),
        Err(Reject::Short) => assert!(
            bytes.is_empty() || bytes[0] != VERSION || len < HEADER_LEN,
            "refused as short: {len} body bytes"
        ),
        Err(Reject::Oversize) => panic!("{} bytes refused as oversize", bytes.len()),
        Err(Reject::Version | Reject::Foreign | Reject::Malformed | Reject::Unsupported) => {}
        Err(other) => panic!("the decoder gave a reason it does not own: {other}"),
    }
}

/// `received`: the length of the frame it was decoded from.
fn round_trip(frame: &Frame, key: &ClusterKey, received: usize) {
    let h = &frame.header;
    assert_eq!(h.netid, NETID);
    assert!(h.sender != 0 && h.seq != 0, "accepted {h:?}");
    for item in &frame.items {
        if let Item::Unknown { kind, .. } = item {
            assert!(kind & CRITICAL == 0, "kept a critical item {kind:#x}");
            assert!(
                !KNOWN_ITEMS.contains(kind),
                "kept a known item as unknown: {kind}"
            );
        }
    }
    let bytes = frame.encode(key);
    let items: usize = frame
        .items
        .iter()
        .map(|i| {
            3 + match i {
                Item::Challenge(_) | Item::Response(_) => 8,
                Item::Leave => 0,
                Item::Message { data, .. } => 4 + data.len(),
                Item::MessageAck(_) => 4,
                Item::Unknown { data, .. } => data.len(),
            }
        })
        .sum();
    assert_eq!(bytes.len(), HEADER_LEN + items + MAC_LEN);
    assert_eq!(bytes.len(), received, "the frame was {received} bytes");
    let again = Frame::decode(&bytes, key, NETID).expect("an encoded frame decodes");
    assert_eq!(&again, frame, "decode(encode(f)) != f");
    assert_eq!(again.encode(key), bytes, "encoding is not canonical");
    // Any flipped bit is refused (which bit: from the frame itself).
    let bit = (h.seq as usize ^ received) % (bytes.len() * 8);
    let mut bad = bytes;
    bad[bit / 8] ^= 1 << (bit % 8);
    assert!(
        Frame::decode(&bad, key, NETID).is_err(),
        "bit {bit} flipped, accepted"
    );
}

/// Checks one input of the `serial_deframe` target: the first byte seeds
/// the chunk sizes, the rest is the line.
pub fn serial_deframe(data: &[u8]) {
    let Some((&seed, line)) = data.split_first() else {
        return;
    };
    let mut whole = Deframer::default();
    let all = whole.push(line);
    let mut chunked = Deframer::default();
    let mut got = Vec::new();
    let mut rest = line;
    let mut state = u32::from(seed) | 1;
    while !rest.is_empty() {
        // xorshift: chunk sizes 1..=64, a few larger.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = if state % 8 == 0 {
            state % 2000
        } else {
            state % 64
        } as usize
            + 1;
        let (a, b) = rest.split_at(n.min(rest.len()));
        got.extend(chunked.push(a));
        rest = b;
    }
    assert_eq!(got, all, "chunking changed the result");
    let delimiters = line.iter().filter(|&&b| b == 0).count();
    assert!(all.len() <= delimiters, "more results than delimiters");
    let key = key();
    for frame in all.iter().flatten() {
        let line = serial::encode(frame);
        let mut fresh = Deframer::default();
        assert_eq!(fresh.push(&line), vec![Ok(frame.clone())]);
        let _ = Frame::decode(frame, &key, NETID);
    }
    for r in &all {
        if let Err(reason) = r {
            assert!(
                matches!(reason, Reject::Crc | Reject::Oversize),
                "the deframer gave a reason it does not own: {reason}"
            );
        }
    }
}
