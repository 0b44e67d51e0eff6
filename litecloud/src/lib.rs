//! LiteCloud: the cluster protocol as pure state machines. No sockets, no
//! clocks, no threads: drivers pass the time in and carry the outputs out,
//! so every behaviour can be replayed in a deterministic simulator.
//!
//! - [`wire`]: authenticated, versioned frames.
//! - [`serial`]: framing of those frames on an RS-232 byte stream.
//! - [`replay`]: the per-(sender, path) anti-replay window.
//! - [`channel`]: reliable, ordered messages to one peer over every path.
//! - [`link`]: two-way health of one link.
//! - [`node`]: the heartbeat engine of one node (links, liveness,
//!   membership, stall awareness).
//! - [`view`]: agreement on one membership view, over the channel.
//! - [`lock`]: locks with one holder cluster-wide (service ownership),
//!   mastered by the view's coordinator; orphans wait for fencing.
//! - [`config`]: replicated configuration documents with logical
//!   versions (safety rule 9): commits, forced local changes, catch-up,
//!   conflicts for the operator.

pub mod channel;
pub mod config;
pub mod link;
pub mod lock;
pub mod node;
pub mod replay;
pub mod serial;
pub mod view;
pub mod wire;

/// A point in time: the time since an arbitrary origin on the driver's
/// monotonic clock (CLOCK_BOOTTIME in the daemon, virtual in the simulator).
pub type Time = std::time::Duration;
