//! The event history of a node (`hactl history`): every
//! [`Event`](haschema::event::Event) this node recorded or heard from a
//! peer, appended as one JSON line to `history.jsonl` in hamond's state
//! directory and synced, so it survives daemon restarts and power loss.
//!
//! The file is bounded: once it passes [`Limits::file_bytes`] it is rotated
//! to `history.jsonl.1` (the older ones shift up to
//! `history.jsonl.`[`Limits::rotated`], the oldest is dropped). At start the
//! rotated files and the current one are read back, oldest first, and the
//! newest [`Limits::in_memory`] events are kept for queries; a line that is
//! not an event (a torn last write, a hand edit) is skipped and counted, not
//! fatal. The same event heard twice (from two peers, or after a resync) is
//! kept once.
//!
//! Nodes share the events they record first-hand as reliable cluster
//! messages of their own protocol ([`PROTOCOL`], [`encode`], [`decode`]),
//! so every node's history holds the cluster's events.

use haschema::event::{Event, Filter};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The history file's name in the state directory.
pub const FILE: &str = "history.jsonl";

/// First byte of a shared event on the cluster's message channel (after
/// the view's 1, the locks' 2 and the services' 3).
pub const PROTOCOL: u8 = 4;

/// Longest cause or description kept in a shared event, so that the
/// message fits the channel's limit (`litecloud::channel::MAX_MESSAGE`).
const SHARED_TEXT: usize = 300;

/// An event as a cluster message: [`PROTOCOL`], then its JSON, with a long
/// description or cause cut short (at a character boundary) to fit.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut event = event.clone();
    for text in [&mut event.what, &mut event.cause] {
        if text.len() > SHARED_TEXT {
            let mut end = SHARED_TEXT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("...");
        }
    }
    let mut data = vec![PROTOCOL];
    data.extend(serde_json::to_vec(&event).unwrap_or_default());
    data
}

/// The event of a cluster message made by [`encode`].
pub fn decode(data: &[u8]) -> Result<Event, String> {
    match data.split_first() {
        Some((&PROTOCOL, json)) => {
            serde_json::from_slice(json).map_err(|e| format!("malformed shared event: {e}"))
        }
        _ => Err("not a shared event".into()),
    }
}

/// How much history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size after which the file is rotated.
    pub file_bytes: u64,
    /// Rotated files kept.
    pub rotated: usize,
    /// Newest events kept in memory for queries.
    pub in_memory: usize,
}

impl Default for Limits {
    /// 1 MiB x 5 files on disk (some 20,000 events), 10,000 in memory.
    fn default() -> Limits {
        Limits {
            file_bytes: 1 << 20,
            rotated: 4,
            in_memory: 10_000,
        }
    }
}

/// The node's event history.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    limits: Limits,
    file: File,
    size: u64,
    events: VecDeque<Event>,
    /// Lines skipped when reading the files back.
    pub skipped: usize,
}

impl History {
    /// Opens (creating it if needed) the history in `dir` and reads back
    /// what it holds.
    pub fn open(dir: &Path, limits: Limits) -> io::Result<History> {
        let path = dir.join(FILE);
        let mut history = History {
            file: append(&path)?,
            size: 0,
            path,
            limits,
            events: VecDeque::new(),
            skipped: 0,
        };
        for n in (1..=limits.rotated).rev() {
            history.read_back(&rotated(&history.path, n))?;
        }
        history.read_back(&history.path.clone())?;
        history.size = history.file.metadata()?.len();
        if history.size > 0 && !ends_with_newline(&history.path)? {
            // A torn last write: end it, so the next event is a line of
            // its own.
            history.file.write_all(b"\n")?;
            history.size += 1;
        }
        Ok(history)
    }

    /// Records `event` (unless it is already there): appended and synced
    /// before this returns. The file is rotated first if it is full.
    pub fn record(&mut self, event: Event) -> io::Result<bool> {
        if self.events.contains(&event) {
            return Ok(false);
        }
        let mut line = serde_json::to_string(&event).map_err(io::Error::other)?;
        line.push('\n');
        if self.size > 0 && self.size + line.len() as u64 > self.limits.file_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.size += line.len() as u64;
        self.keep(event);
        Ok(true)
    }

    /// The newest `limit` events that pass `filter`, oldest first.
    pub fn query(&self, filter: &Filter, limit: usize) -> Vec<Event> {
        let mut found: Vec<Event> = self
            .events
            .iter()
            .rev()
            .filter(|e| filter.matches(e))
            .take(limit)
            .cloned()
            .collect();
        found.reverse();
        found
    }

    fn keep(&mut self, event: Event) {
        if self.events.len() == self.limits.in_memory {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn read_back(&mut self, path: &Path) -> io::Result<()> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            match serde_json::from_str::<Event>(&line?) {
                Ok(event) => self.keep(event),
                Err(_) => self.skipped += 1,
            }
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.limits.rotated == 0 {
            self.file.set_len(0)?;
        } else {
            for n in (1..self.limits.rotated).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
            self.file = append(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use haschema::event::{EventKind, Severity};

    fn event(n: usize) -> Event {
        Event::now(
            "alpha",
            EventKind::Service,
            Severity::Info,
            format!("event {n}"),
        )
        .about(if n.is_multiple_of(2) { "www" } else { "db" })
    }

    #[test]
    fn survives_a_restart_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(dir.path(), Limits::default()).unwrap();
        let first = event(0);
        assert!(h.record(first.clone()).unwrap());
        for n in 1..10 {
            assert!(h.record(event(n)).unwrap());
        }
        assert!(!h.record(first).unwrap(), "the same event is kept once");
        drop(h);
        let h = History::open(dir.path(), Limits::default()).unwrap();
        assert_eq!(h.query(&Filter::default(), 100).len(), 10);
        let www = Filter {
            service: Some("www".into()),
            ..Filter::default()
        };
        let newest: Vec<String> = h.query(&www, 2).into_iter().map(|e| e.what).collect();
        assert_eq!(newest, ["event 6", "event 8"]);
    }

    #[test]
    fn rotates_within_its_bounds_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            file_bytes: 600,
            rotated: 2,
            in_memory: 1000,
        };
        let mut h = History::open(dir.path(), limits).unwrap();
        for n in 0..100 {
            h.record(event(n)).unwrap();
        }
        let files = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 3, "the current file and 2 rotated ones");
        for entry in fs::read_dir(dir.path()).unwrap() {
            assert!(entry.unwrap().metadata().unwrap().len() <= 600);
        }
        drop(h);
        let mut f = append(&dir.path().join(FILE)).unwrap();
        f.write_all(b"{\"at_ms\":1,\"node\"").unwrap();
        let mut h = History::open(dir.path(), limits).unwrap();
        assert_eq!(h.skipped, 1);
        h.record(event(100)).unwrap();
        drop(h);
        let h = History::open(dir.path(), limits).unwrap();
        assert_eq!(h.skipped, 1, "the torn line stays alone");
        let all = h.query(&Filter::default(), 1000);
        assert_eq!(all.last().unwrap().what, "event 100", "newest kept");
        assert!(all.len() < 101, "the oldest were rotated away");
        let whats: Vec<&str> = all.iter().map(|e| e.what.as_str()).collect();
        let mut sorted = whats.clone();
        sorted.sort_by_key(|w| w[6..].parse::<u32>().unwrap());
        assert_eq!(whats, sorted, "read back oldest first");
    }

    #[test]
    fn shared_events_fit_a_message_and_read_back() {
        let e = event(1).because("x".repeat(2000));
        let data = encode(&e);
        assert_eq!(data[0], PROTOCOL);
        assert!(
            data.len() <= litecloud::channel::MAX_MESSAGE,
            "{}",
            data.len()
        );
        let back = decode(&data).unwrap();
        assert_eq!((back.at_ms, &back.what), (e.at_ms, &e.what));
        assert!(back.cause.ends_with("...") && back.cause.len() < 400);
        let short = event(2);
        assert_eq!(decode(&encode(&short)).unwrap(), short);
        let wide = event(3).because("é".repeat(400));
        assert!(decode(&encode(&wide)).unwrap().cause.ends_with("é..."));
        assert!(decode(&[PROTOCOL, b'{']).is_err());
        assert!(decode(&[3, b'{', b'}']).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn memory_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            in_memory: 5,
            ..Limits::default()
        };
        let mut h = History::open(dir.path(), limits).unwrap();
        for n in 0..20 {
            h.record(event(n)).unwrap();
        }
        let all = h.query(&Filter::default(), 100);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].what, "event 15");
    }
}
