//! Framing of wire frames on a byte stream (RS-232): each frame is followed
//! by a CRC-16/X.25, COBS-encoded, and terminated by a zero byte. A reader
//! resynchronises at the next zero byte after line noise or a half-sent
//! frame, so one damaged frame costs exactly that frame.

use crate::node::Transmit;
use crate::wire::{Class, MAX_FRAME, Reject};
use crc::{CRC_16_IBM_SDLC, Crc};
use std::collections::VecDeque;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);
const DELIMITER: u8 = 0;

/// Bytes on the line for a frame of `frame_len` bytes, at most: CRC, COBS
/// overhead (one byte per 254, exact for frames shorter than that),
/// delimiter.
pub fn line_len(frame_len: usize) -> usize {
    let payload = frame_len + 2;
    payload + payload / 254 + 1 + 1
}

/// Time on the line of `bytes` bytes at `baud` (8N1: ten bits a byte).
pub fn airtime(bytes: usize, baud: u32) -> std::time::Duration {
    std::time::Duration::from_micros(bytes as u64 * 10 * 1_000_000 / u64::from(baud.max(1)))
}

/// Encodes one wire frame for the serial line.
pub fn encode(frame: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(frame.len() + 2);
    raw.extend_from_slice(frame);
    raw.extend_from_slice(&CRC16.checksum(frame).to_le_bytes());
    let mut out = cobs::encode_vec(&raw);
    out.push(DELIMITER);
    out
}

/// Splits a received byte stream back into wire frames.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
    overflow: bool,
}

impl Deframer {
    /// Feeds received bytes; returns each completed frame or the reason a
    /// run of bytes between delimiters was dropped.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, Reject>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != DELIMITER {
                if self.buf.len() < line_len(MAX_FRAME) {
                    self.buf.push(b);
                } else {
                    self.overflow = true;
                }
                continue;
            }
            if self.overflow {
                out.push(Err(Reject::Oversize));
            } else if !self.buf.is_empty() {
                out.push(unframe(&self.buf));
            }
            self.buf.clear();
            self.overflow = false;
        }
        out
    }

    /// Drops a partial frame (after the port was reopened).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }
}

/// Frames waiting for a serial line: urgent (lease, release, fence) before
/// normal before heartbeats; a newer heartbeat replaces one still waiting,
/// so a slow line never falls behind on stale heartbeats.
#[derive(Default)]
pub struct SendQueue {
    urgent: VecDeque<Transmit>,
    normal: VecDeque<Transmit>,
    heartbeats: VecDeque<Transmit>,
}

impl SendQueue {
    pub fn push(&mut self, t: Transmit) {
        match t.class {
            Class::Urgent => self.urgent.push_back(t),
            Class::Normal => self.normal.push_back(t),
            Class::Heartbeat => {
                self.heartbeats.retain(|h| h.dest != t.dest);
                self.heartbeats.push_back(t);
            }
        }
    }

    pub fn pop(&mut self) -> Option<Transmit> {
        self.urgent
            .pop_front()
            .or_else(|| self.normal.pop_front())
            .or_else(|| self.heartbeats.pop_front())
    }

    pub fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.normal.is_empty() && self.heartbeats.is_empty()
    }
}

fn unframe(encoded: &[u8]) -> Result<Vec<u8>, Reject> {
    let mut raw = cobs::decode_vec(encoded).map_err(|_| Reject::Crc)?;
    if raw.len() < 2 {
        return Err(Reject::Crc);
    }
    let crc = u16::from_le_bytes([raw[raw.len() - 2], raw[raw.len() - 1]]);
    raw.truncate(raw.len() - 2);
    if CRC16.checksum(&raw) != crc {
        return Err(Reject::Crc);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_fits_a_9600_baud_line_at_100ms_twice() {
        let len = line_len(crate::wire::HEARTBEAT_LEN);
        assert_eq!(len, encode(&[7u8; crate::wire::HEARTBEAT_LEN]).len());
        assert!(airtime(len, 9600) * 2 <= std::time::Duration::from_millis(100));
    }

    #[test]
    fn resynchronises_after_noise_and_half_frames() {
        let a = encode(b"first frame");
        let b = encode(b"second frame");
        let mut stream = Vec::new();
        stream.extend_from_slice(&a[..5]); // half-sent, then the line drops
        stream.extend_from_slice(&[0x55, 0xAA, 0x00, 0x13]); // noise
        stream.push(0);
        stream.extend_from_slice(&b);
        let mut d = Deframer::default();
        let got = d.push(&stream);
        assert_eq!(got.last(), Some(&Ok(b"second frame".to_vec())));
        assert!(got[..got.len() - 1].iter().all(|r| r == &Err(Reject::Crc)));
    }

    #[test]
    fn byte_at_a_time_equals_all_at_once() {
        let a = encode(&[0u8, 1, 2, 0, 0, 255]);
        let mut d = Deframer::default();
        let mut got = Vec::new();
        for b in &a {
            got.extend(d.push(&[*b]));
        }
        assert_eq!(got, vec![Ok(vec![0u8, 1, 2, 0, 0, 255])]);
    }

    #[test]
    fn urgent_frames_overtake_and_heartbeats_coalesce() {
        let t = |class, dest, byte| Transmit {
            path: 0,
            dest,
            class,
            bytes: vec![byte],
        };
        let mut q = SendQueue::default();
        q.push(t(Class::Heartbeat, 2, 1));
        q.push(t(Class::Heartbeat, 2, 2));
        q.push(t(Class::Normal, 2, 3));
        q.push(t(Class::Urgent, 2, 4));
        let order: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|t| t.bytes[0]).collect();
        assert_eq!(order, vec![4, 3, 2]);
        assert!(q.is_empty());
    }

    #[test]
    fn endless_garbage_is_bounded() {
        let mut d = Deframer::default();
        assert!(d.push(&vec![1u8; 10 * MAX_FRAME]).is_empty());
        assert_eq!(d.push(&[0]), vec![Err(Reject::Oversize)]);
    }
}
