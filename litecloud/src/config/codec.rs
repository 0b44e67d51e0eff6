//! Bytes of the configuration protocol: the messages on the channel (and
//! their chunks, each within [`crate::channel::MAX_MESSAGE`]) and the
//! persisted store. Decoding never panics: malformed bytes give an error.

use super::lineage::{Head, Held, Lineage, MAX_EPOCHS, hash};
use super::{MAX_DOC, MAX_DOCS, PROTOCOL, Refusal, Ticket, Version, valid_name};
use crate::view::NodeSet;
use crate::wire::NodeId;
use std::collections::BTreeMap;

/// The largest message before chunking (a summary of [`MAX_DOCS`]
/// documents, or a document of [`MAX_DOC`] bytes with its headers).
pub(super) const MAX_LOGICAL: usize = 512 * 1024;

/// Chunk flags (the byte after [`PROTOCOL`]).
const FIRST: u8 = 1;
const LAST: u8 = 2;
const CHUNK: usize = crate::channel::MAX_MESSAGE - 2;

/// The highest epoch or counter accepted (far beyond any real use), so
/// that the next one never overflows.
const MAX_COUNT: u64 = 1 << 62;

/// Longest reason text carried in a refusal.
const MAX_REASON: usize = 512;

/// One message of the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Msg {
    /// What the sender holds: every document (`full`), sent to each member
    /// when a view is installed, or the few it just took or must tell.
    Summary {
        full: bool,
        entries: Vec<(String, Head)>,
    },
    /// Asks for the sender's version of a document (the receiver's
    /// summary showed one that descends from the sender's).
    Fetch(String),
    /// A version of a document, answering [`Msg::Fetch`].
    Transfer(String, Held),
    /// A proposed commit: `base` is the proposer's version and hash.
    Prepare {
        ticket: Ticket,
        name: String,
        base: Option<(Version, [u8; 32])>,
        new: Held,
    },
    Ack(Ticket),
    Nack(Ticket, Refusal),
    /// The edit committed; `told`: the nodes that hold it now (the
    /// proposer and its participants): a receiver tells the other members
    /// of its own view (it may be in a newer view than the proposer's).
    Commit {
        ticket: Ticket,
        name: String,
        version: Version,
        told: NodeSet,
    },
    Abort {
        ticket: Ticket,
        name: String,
    },
}

const SUMMARY: u8 = 1;
const TRANSFER: u8 = 2;
const PREPARE: u8 = 3;
const ACK: u8 = 4;
const NACK: u8 = 5;
const COMMIT: u8 = 6;
const ABORT: u8 = 7;
const FETCH: u8 = 8;

/// Splits a message into channel messages.
pub(super) fn chunks(msg: &[u8]) -> Vec<Vec<u8>> {
    let parts: Vec<&[u8]> = msg.chunks(CHUNK).collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let flags = if i == 0 { FIRST } else { 0 } | if i == last { LAST } else { 0 };
            let mut data = Vec::with_capacity(part.len() + 2);
            data.extend_from_slice(&[PROTOCOL, flags]);
            data.extend_from_slice(part);
            data
        })
        .collect()
}

/// Reassembly of one peer's chunks. The channel is ordered per peer, and
/// the first chunk of a message starts afresh, so a message cut short (a
/// reset channel, a discarded partial) is never glued to the next one.
pub(super) fn reassemble(
    partial: &mut Option<Vec<u8>>,
    data: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    let (&[protocol, flags], payload) = data.split_at_checked(2).ok_or("short config message")?
    else {
        return Err("short config message".into());
    };
    if protocol != PROTOCOL || flags & !(FIRST | LAST) != 0 {
        return Err(format!("not a config message (bytes {protocol} {flags})"));
    }
    if flags & FIRST != 0 {
        *partial = Some(Vec::new());
    }
    let Some(buf) = partial else {
        return Ok(None);
    };
    if buf.len() + payload.len() > MAX_LOGICAL {
        *partial = None;
        return Err("config message too large".into());
    }
    buf.extend_from_slice(payload);
    Ok(if flags & LAST != 0 {
        partial.take()
    } else {
        None
    })
}

impl Msg {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Msg::Summary { full, entries } => {
                w.u8(SUMMARY);
                w.u8(u8::from(*full));
                w.u32(entries.len() as u32);
                for (name, head) in entries {
                    w.name(name);
                    w.head(head);
                }
            }
            Msg::Fetch(name) => {
                w.u8(FETCH);
                w.name(name);
            }
            Msg::Transfer(name, held) => {
                w.u8(TRANSFER);
                w.name(name);
                w.held(held);
            }
            Msg::Prepare {
                ticket,
                name,
                base,
                new,
            } => {
                w.u8(PREPARE);
                w.u64(*ticket);
                w.name(name);
                match base {
                    None => w.u8(0),
                    Some((version, hash)) => {
                        w.u8(1);
                        w.version(version);
                        w.0.extend_from_slice(hash);
                    }
                }
                w.held(new);
            }
            Msg::Ack(ticket) => {
                w.u8(ACK);
                w.u64(*ticket);
            }
            Msg::Nack(ticket, refusal) => {
                w.u8(NACK);
                w.u64(*ticket);
                w.refusal(refusal);
            }
            Msg::Commit {
                ticket,
                name,
                version,
                told,
            } => {
                w.u8(COMMIT);
                w.u64(*ticket);
                w.name(name);
                w.version(version);
                w.u8(told.len() as u8);
                for id in told.iter() {
                    w.u8(id);
                }
            }
            Msg::Abort { ticket, name } => {
                w.u8(ABORT);
                w.u64(*ticket);
                w.name(name);
            }
        }
        w.0
    }

    pub(super) fn decode(data: &[u8]) -> Result<Msg, String> {
        let mut r = Reader(data);
        let msg = match r.u8()? {
            SUMMARY => {
                let full = match r.u8()? {
                    0 => false,
                    1 => true,
                    b => return Err(format!("bad summary flag {b}")),
                };
                let n = r.u32()? as usize;
                if n > MAX_DOCS {
                    return Err(format!("summary of {n} documents"));
                }
                let mut entries: Vec<(String, Head)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.name()?;
                    if entries.last().is_some_and(|(last, _)| *last >= name) {
                        return Err("summary not sorted by name".into());
                    }
                    entries.push((name, r.head()?));
                }
                Msg::Summary { full, entries }
            }
            FETCH => Msg::Fetch(r.name()?),
            TRANSFER => Msg::Transfer(r.name()?, r.held()?),
            PREPARE => Msg::Prepare {
                ticket: r.u64()?,
                name: r.name()?,
                base: match r.u8()? {
                    0 => None,
                    1 => Some((r.version()?, r.hash()?)),
                    b => return Err(format!("bad base flag {b}")),
                },
                new: r.held()?,
            },
            ACK => Msg::Ack(r.u64()?),
            NACK => Msg::Nack(r.u64()?, r.refusal()?),
            COMMIT => Msg::Commit {
                ticket: r.u64()?,
                name: r.name()?,
                version: r.version()?,
                told: {
                    let n = r.u8()?;
                    let ids: Vec<NodeId> = (0..n).map(|_| r.u8()).collect::<Result<_, _>>()?;
                    NodeSet::of(ids)
                },
            },
            ABORT => Msg::Abort {
                ticket: r.u64()?,
                name: r.name()?,
            },
            kind => return Err(format!("unknown config message kind {kind}")),
        };
        r.end()?;
        Ok(msg)
    }
}

/// First byte of the persisted store.
const FORMAT: u8 = 1;

/// What a store persists: the highest epoch seen, the documents, and the
/// prepares it acknowledged whose outcome it does not know yet.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Saved {
    pub(super) max_epoch: u64,
    pub(super) docs: BTreeMap<String, Held>,
    pub(super) doubts: BTreeMap<String, (NodeId, Ticket, Held)>,
}

impl Saved {
    pub(super) fn encode(
        max_epoch: u64,
        docs: &BTreeMap<String, Held>,
        doubts: &BTreeMap<String, (NodeId, Ticket, Held)>,
    ) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(FORMAT);
        w.u64(max_epoch);
        w.u32(docs.len() as u32);
        for (name, held) in docs {
            w.name(name);
            w.held(held);
        }
        w.u32(doubts.len() as u32);
        for (name, (from, ticket, held)) in doubts {
            w.name(name);
            w.u8(*from);
            w.u64(*ticket);
            w.held(held);
        }
        w.0
    }

    pub(super) fn decode(data: &[u8]) -> Result<Saved, String> {
        let mut r = Reader(data);
        match r.u8()? {
            FORMAT => {}
            other => return Err(format!("unknown format byte {other} (expected {FORMAT})")),
        }
        let mut saved = Saved {
            max_epoch: r.u64()?,
            ..Saved::default()
        };
        for _ in 0..r.count()? {
            let name = r.name()?;
            let held = r.held()?;
            if saved.docs.insert(name.clone(), held).is_some() {
                return Err(format!("document {name} twice"));
            }
        }
        for _ in 0..r.count()? {
            let name = r.name()?;
            let entry = (r.u8()?, r.u64()?, r.held()?);
            if saved.doubts.insert(name.clone(), entry).is_some() {
                return Err(format!("pending document {name} twice"));
            }
        }
        r.end()?;
        let seen = saved
            .docs
            .values()
            .chain(saved.doubts.values().map(|(_, _, h)| h))
            .map(|h| h.head.lineage.max_epoch())
            .max()
            .unwrap_or(0);
        if saved.max_epoch > MAX_COUNT {
            return Err(format!("implausible epoch {}", saved.max_epoch));
        }
        if seen > saved.max_epoch {
            return Err(format!(
                "epoch {seen} above the highest epoch {}",
                saved.max_epoch
            ));
        }
        Ok(saved)
    }
}

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    fn name(&mut self, name: &str) {
        self.bytes(name.as_bytes());
    }
    fn version(&mut self, v: &Version) {
        self.u64(v.epoch);
        self.u64(v.counter);
        self.u8(v.node);
    }
    /// A version and its lineage.
    fn positioned(&mut self, head: &Head) {
        self.version(&head.version);
        self.u8(head.lineage.0.len() as u8);
        for (&(epoch, origin), &counter) in &head.lineage.0 {
            self.u64(epoch);
            self.u64(origin);
            self.u64(counter);
        }
    }
    fn head(&mut self, head: &Head) {
        self.positioned(head);
        self.0.extend_from_slice(&head.hash);
    }
    fn held(&mut self, held: &Held) {
        self.positioned(&held.head);
        match &held.content {
            None => self.u8(0),
            Some(c) => {
                self.u8(1);
                self.bytes(c);
            }
        }
    }
    fn refusal(&mut self, refusal: &Refusal) {
        match refusal {
            Refusal::Stale { current } => {
                self.u8(1);
                match current {
                    None => self.u8(0),
                    Some(v) => {
                        self.u8(1);
                        self.version(v);
                    }
                }
            }
            Refusal::Busy { by } => {
                self.u8(2);
                self.u8(*by);
            }
            Refusal::Rejected { node, reason } => {
                self.u8(3);
                self.u8(*node);
                let mut end = reason.len().min(MAX_REASON);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                self.bytes(&reason.as_bytes()[..end]);
            }
            Refusal::Conflict { theirs: (node, v) } => {
                self.u8(4);
                self.u8(*node);
                self.version(v);
            }
            // Only the four above answer a prepare; anything else is sent
            // as what it means to the proposer: the receiver refused.
            other => {
                self.u8(3);
                self.u8(0);
                self.bytes(other.to_string().as_bytes());
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let (head, rest) = self.0.split_at_checked(n).ok_or("truncated")?;
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn count(&mut self) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n > MAX_DOCS {
            return Err(format!("{n} documents (at most {MAX_DOCS})"));
        }
        Ok(n)
    }
    fn bytes(&mut self, max: usize) -> Result<Vec<u8>, String> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(format!("{n} bytes (at most {max})"));
        }
        Ok(self.take(n)?.to_vec())
    }
    fn hash(&mut self) -> Result<[u8; 32], String> {
        self.take(32)?.try_into().map_err(|_| "truncated".into())
    }
    fn name(&mut self) -> Result<String, String> {
        let bytes = self.bytes(128)?;
        match String::from_utf8(bytes) {
            Ok(name) if valid_name(&name) => Ok(name),
            _ => Err("bad document name".into()),
        }
    }
    fn version(&mut self) -> Result<Version, String> {
        Ok(Version {
            epoch: self.u64()?,
            counter: self.u64()?,
            node: self.u8()?,
        })
    }
    /// A version and its lineage, which must end at that version.
    fn positioned(&mut self) -> Result<(Version, Lineage), String> {
        let version = self.version()?;
        let n = self.u8()? as usize;
        if n == 0 || n > MAX_EPOCHS {
            return Err(format!("lineage of {n} epochs"));
        }
        let mut lineage = Lineage::default();
        for _ in 0..n {
            let (epoch, origin, counter) = (self.u64()?, self.u64()?, self.u64()?);
            if epoch > MAX_COUNT || counter > MAX_COUNT {
                return Err(format!("implausible epoch {epoch} or counter {counter}"));
            }
            if lineage.0.insert((epoch, origin), counter).is_some() {
                return Err("an epoch twice in a lineage".into());
            }
        }
        let ends_there = lineage.version(version.node) == Some(version)
            && lineage
                .0
                .keys()
                .filter(|(e, _)| *e == version.epoch)
                .count()
                == 1;
        if !ends_there {
            return Err(format!("lineage does not end at version {version}"));
        }
        Ok((version, lineage))
    }
    fn head(&mut self) -> Result<Head, String> {
        let (version, lineage) = self.positioned()?;
        Ok(Head {
            version,
            lineage,
            hash: self.hash()?,
        })
    }
    fn held(&mut self) -> Result<Held, String> {
        let (version, lineage) = self.positioned()?;
        let content = match self.u8()? {
            0 => None,
            1 => Some(self.bytes(MAX_DOC)?),
            b => return Err(format!("bad content flag {b}")),
        };
        Ok(Held {
            head: Head {
                version,
                lineage,
                hash: hash(content.as_deref()),
            },
            content,
        })
    }
    fn refusal(&mut self) -> Result<Refusal, String> {
        Ok(match self.u8()? {
            1 => Refusal::Stale {
                current: match self.u8()? {
                    0 => None,
                    1 => Some(self.version()?),
                    b => return Err(format!("bad version flag {b}")),
                },
            },
            2 => Refusal::Busy { by: self.u8()? },
            3 => Refusal::Rejected {
                node: self.u8()?,
                reason: String::from_utf8_lossy(&self.bytes(MAX_REASON)?).into_owned(),
            },
            4 => Refusal::Conflict {
                theirs: (self.u8()?, self.version()?),
            },
            b => return Err(format!("unknown refusal {b}")),
        })
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the end", self.0.len()))
        }
    }
}
