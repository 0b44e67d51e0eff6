//! Property tests of the wire decoder and the serial framing: arbitrary
//! bytes never panic the decoder (and go through the fuzz targets' checks,
//! `fuzz/checks.rs`), arbitrary frames round-trip, and serial framing
//! round-trips through arbitrary chunking with line noise between frames.

#[path = "../../fuzz/checks.rs"]
mod checks;

use litecloud::serial::{self, Deframer};
use litecloud::wire::{
    CRITICAL, Class, ClusterKey, Frame, HEADER_LEN, Header, Item, KNOWN_ITEMS, MAC_LEN, MAX_FRAME,
    Reject,
};
use proptest::prelude::*;

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Heartbeat),
        Just(Class::Normal),
        Just(Class::Urgent)
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        class(),
        any::<u16>(),
        1..=u8::MAX,
        any::<u8>(),
        any::<u8>(),
        any::<(u32, u32)>(),
        1..=u32::MAX,
        any::<(u32, (u16, u16), u32)>(),
    )
        .prop_map(
            |(
                class,
                netid,
                sender,
                dest,
                path,
                (boot, incarnation),
                seq,
                (ack, (ack_incarnation, ack_delay), config_hash),
            )| {
                Header {
                    class,
                    netid,
                    sender,
                    dest,
                    path,
                    boot,
                    incarnation,
                    seq,
                    ack,
                    ack_incarnation,
                    ack_delay,
                    config_hash,
                }
            },
        )
}

/// Item types a decoder keeps as unknown: not known, no critical bit.
fn unknown_kind() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), (*KNOWN_ITEMS.end() + 1)..CRITICAL]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        any::<u64>().prop_map(Item::Challenge),
        any::<u64>().prop_map(Item::Response),
        Just(Item::Leave),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200))
            .prop_map(|(seq, data)| Item::Message { seq, data }),
        any::<u32>().prop_map(Item::MessageAck),
        (
            unknown_kind(),
            proptest::collection::vec(any::<u8>(), 0..200)
        )
            .prop_map(|(kind, data)| Item::Unknown { kind, data }),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    (header(), proptest::collection::vec(item(), 0..8)).prop_map(|(header, items)| {
        // Keep it within MAX_FRAME.
        let mut frame = Frame::new(header);
        let mut len = HEADER_LEN + MAC_LEN;
        for i in items {
            let size = 3 + match &i {
                Item::Challenge(_) | Item::Response(_) => 8,
                Item::Leave => 0,
                Item::Message { data, .. } => 4 + data.len(),
                Item::MessageAck(_) => 4,
                Item::Unknown { data, .. } => data.len(),
            };
            if len + size <= MAX_FRAME {
                len += size;
                frame.items.push(i);
            }
        }
        frame
    })
}

fn key() -> ClusterKey {
    checks::key()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes: decode returns Ok or Err, never panics (and the fuzz
    /// checks hold: signed bodies reach the parser, anything that decodes
    /// round-trips).
    #[test]
    fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let _ = Frame::decode(&bytes, &key(), checks::NETID);
        checks::frame_decode(&bytes);
    }

    /// Header-shaped bytes (right version and netid) with arbitrary
    /// contents, signed: reach the item parser.
    #[test]
    fn signed_bodies_parse_or_are_refused(mut body in proptest::collection::vec(any::<u8>(), HEADER_LEN..400)) {
        body[0] = litecloud::wire::VERSION;
        body[2..4].copy_from_slice(&checks::NETID.to_be_bytes());
        let bytes = checks::sign(body);
        match Frame::decode(&bytes, &key(), checks::NETID) {
            Ok(frame) => prop_assert_eq!(Frame::decode(&frame.encode(&key()), &key(), checks::NETID), Ok(frame)),
            Err(r) => prop_assert!(matches!(r, Reject::Malformed | Reject::Unsupported), "{}", r),
        }
    }

    /// Any frame with arbitrary header fields and items round-trips, and
    /// is refused under another netid or key.
    #[test]
    fn frames_round_trip(frame in frame()) {
        let bytes = frame.encode(&key());
        prop_assert!(bytes.len() <= MAX_FRAME);
        let netid = frame.header.netid;
        prop_assert_eq!(Frame::decode(&bytes, &key(), netid), Ok(frame.clone()));
        prop_assert_eq!(Frame::decode(&bytes, &key(), netid.wrapping_add(1)), Err(Reject::Foreign));
        let other = ClusterKey::new(b"another key, also thirty-two b!!").unwrap();
        prop_assert_eq!(Frame::decode(&bytes, &other, netid), Err(Reject::Mac));
        // Any truncation is refused.
        for cut in [0, 1, HEADER_LEN, bytes.len() - 1] {
            prop_assert!(Frame::decode(&bytes[..cut], &key(), netid).is_err());
        }
    }

    /// A sender id or sequence number of 0 is malformed even when signed.
    #[test]
    fn zero_sender_or_seq_is_malformed(frame in frame(), which in any::<bool>()) {
        let mut frame = frame;
        if which { frame.header.sender = 0 } else { frame.header.seq = 0 }
        let bytes = frame.encode(&key());
        prop_assert_eq!(Frame::decode(&bytes, &key(), frame.header.netid), Err(Reject::Malformed));
    }

    /// Serial: frames with line noise between them (each noise burst ended
    /// by the line going idle, i.e. a delimiter), cut in arbitrary chunks,
    /// come out exactly: every frame whole and in order, the noise as
    /// whatever a fresh reader makes of it (CRC errors, almost always).
    #[test]
    fn serial_round_trip_with_noise_and_chunking(
        segments in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..=MAX_FRAME).prop_map(|f| (true, f)),
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut n| { n.push(0); (false, n) }),
            ],
            1..8,
        ),
        cuts in proptest::collection::vec(1usize..300, 1..50),
    ) {
        let mut line = Vec::new();
        let mut expected = Vec::new();
        for (is_frame, bytes) in &segments {
            if *is_frame {
                line.extend(serial::encode(bytes));
                expected.push(Ok(bytes.clone()));
            } else {
                line.extend(bytes);
                expected.extend(Deframer::default().push(bytes));
            }
        }
        let mut d = Deframer::default();
        let mut got = Vec::new();
        let mut rest = &line[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            got.extend(d.push(&rest[..n]));
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(got, expected);
    }

    /// Serial: a half-sent frame (the sender died mid-frame, no delimiter)
    /// merges with the next frame on the line and costs both; the reader
    /// is back in step from the frame after. (The module doc's "costs
    /// exactly that frame" holds only if something puts a delimiter on
    /// the line first, e.g. the writer after reopening the port.)
    #[test]
    fn serial_half_frame_costs_it_and_the_next(
        a in proptest::collection::vec(any::<u8>(), 1..300),
        b in proptest::collection::vec(any::<u8>(), 0..300),
        c in proptest::collection::vec(any::<u8>(), 0..300),
        keep in 1usize..1000,
    ) {
        let half = serial::encode(&a);
        let half = &half[..keep % (half.len() - 1) + 1];
        let mut line = half.to_vec();
        line.extend(serial::encode(&b));
        line.extend(serial::encode(&c));
        let got = Deframer::default().push(&line);
        prop_assert_eq!(got.len(), 2);
        prop_assert_eq!(&got[1], &Ok(c));
        // With a delimiter after the half frame, only it is lost.
        let mut line = half.to_vec();
        line.push(0);
        line.extend(serial::encode(&b));
        let got = Deframer::default().push(&line);
        prop_assert_eq!(got.last(), Some(&Ok(b)));
    }
}

/// The serial reader takes frames up to exactly [`MAX_FRAME`] bytes, of
/// any content (all zeros: the worst COBS case is all 0xff), and refuses
/// longer runs as oversize, however long.
#[test]
fn serial_takes_frames_up_to_max_frame() {
    for fill in [0u8, 0xff, 0x55] {
        let frame = vec![fill; MAX_FRAME];
        let got = Deframer::default().push(&serial::encode(&frame));
        assert_eq!(got, vec![Ok(frame)], "fill {fill:#x}");
    }
    let mut d = Deframer::default();
    assert_eq!(
        d.push(&serial::encode(&vec![0xffu8; 2 * MAX_FRAME])),
        vec![Err(Reject::Oversize)]
    );
    let frame = vec![1u8; 10];
    assert_eq!(
        d.push(&serial::encode(&frame)),
        vec![Ok(frame)],
        "back in step"
    );
}
