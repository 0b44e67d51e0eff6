//! The watchdog advertisement (safety rule 3: "advertises the read-back
//! timeout"): what this node tells each peer of its watchdog when the peer
//! comes up, on the cluster channel, and what `hactl status` shows of each
//! peer's. A JSON [`PeerWatchdog`] after [`PROTOCOL`].
//!
//! It informs the operator (and a future taker that would rely on lease
//! expiry, rule 3's lease path, which is off): no decision of this node
//! depends on a peer's advertisement.

use haschema::ctl::PeerWatchdog;

/// First byte of this protocol's messages on the channel.
pub const PROTOCOL: u8 = 7;

/// The message advertising `watchdog`.
pub fn encode(watchdog: &PeerWatchdog) -> Vec<u8> {
    let mut data = vec![PROTOCOL];
    serde_json::to_writer(&mut data, watchdog).expect("plain fields serialize");
    data
}

/// A peer's advertisement; an error says what is wrong with it.
pub fn decode(data: &[u8]) -> Result<PeerWatchdog, String> {
    match data.split_first() {
        Some((&PROTOCOL, json)) => match serde_json::from_slice(json) {
            Ok(PeerWatchdog::NotHeard) => Err("a watchdog advertisement of nothing".into()),
            Ok(w) => Ok(w),
            Err(e) => Err(format!("a malformed watchdog advertisement ({e})")),
        },
        _ => Err("not a watchdog advertisement".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        for w in [
            PeerWatchdog::Disabled,
            PeerWatchdog::Enabled {
                armed_device: true,
                timeout_s: 10,
                lease_s: 60,
            },
        ] {
            assert_eq!(decode(&encode(&w)), Ok(w));
        }
        assert!(decode(&encode(&PeerWatchdog::NotHeard)).is_err());
        for bad in [
            &b""[..],
            b"\x07",
            b"\x07{",
            b"\x07{\"watchdog\":\"x\"}",
            b"\x03{}",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
