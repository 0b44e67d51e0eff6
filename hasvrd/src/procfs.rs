//! The little of `/proc` that process tracking and volume users need,
//! shared with hamond: see [`haschema::process::procfs`].

pub use haschema::process::procfs::{Stat, parse_stat, pids, stat};
