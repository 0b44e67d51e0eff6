//! The node's watchdog (safety rule 3, "Leases and the watchdog"): a device
//! that resets the node unless hamond pets it in time, and the gate that
//! decides whether hamond may pet it now.
//!
//! * [`Watchdog`] ([`device`]): opens the device, asks for a timeout and
//!   reads the real one back ([`Watchdog::timeout`], the W advertised to
//!   peers), pets it ([`Watchdog::pet`]), and disarms it on a clean stop
//!   ([`Watchdog::close_cleanly`], the magic `V`). Dropped any other way
//!   (hamond dies or hangs and is killed), it stays armed and the node
//!   resets: that is the point.
//! * [`PetGate`] ([`gate`]): pure (no I/O, time passed in). A pet is allowed
//!   only while hamond's own loop runs on time, the other daemon (hasvrd)
//!   has reported healthy within its deadline, the loop has not stalled,
//!   and every lease this node holds is valid. It never allows a pet at or
//!   past the earliest lease deadline, so a holder whose lease ran out is
//!   reset within W of that deadline (rule 3 would let a peer rely on that
//!   after `L x (1 + rho) + W + margin`; none does yet).
//!
//! # Real device and stand-in
//!
//! On a character device (`/dev/watchdog`, `/dev/watchdogN`) [`Watchdog`]
//! uses the Linux watchdog ioctls: `WDIOC_GETSUPPORT` (identity, whether
//! the driver knows the magic close), `WDIOC_SETTIMEOUT`,
//! `WDIOC_GETTIMEOUT` (the timeout actually set, which the driver may have
//! rounded) and `WDIOC_KEEPALIVE`. On a FIFO or a regular file it is a
//! **stand-in** for tests: each pet writes one byte, a clean close writes
//! `V`, the timeout asked is taken as the read-back one, and it logs loudly
//! that it cannot reset anything. [`Watchdog::kind`] says which one it is:
//! only a [`WatchdogKind::Device`] may be advertised to peers as an armed
//! watchdog (without one the lease path is off and fencing is required).
//!
//! **The ioctl path is not exercised by CI**: the test machines have no
//! watchdog device, and loading `softdog` there would reset the machine
//! running the tests. The integration tests (`tests/tests/watchdog.rs`)
//! drive the stand-in through a FIFO read by a simulated watchdog that
//! powers a namespaced node off when the pets stop.
//!
//! # In the daemon
//!
//! * [`Keeper`] ([`keeper`]): the two wired together as hamond's daemon
//!   loop drives them: opened when `[watchdog] enabled = true` (a device
//!   that cannot be opened stops hamond's start), ticked every W/4, fed
//!   hasvrd's answers to pings, self-fenced when a stop fails with
//!   `force_reboot` (the pets stop for good), closed with the magic `V` at
//!   a clean stop, after hasvrd stopped and the node left the cluster.
//!
//! * [`advert`]: the watchdog's timeout W and the lease L, advertised to
//!   each peer when it comes up (shown by `hactl status`).
//! * [`Lease`] ([`lease`]): this node's lease deadline, renewed while it
//!   has the right to hold services and kept in the state directory across
//!   a hamond restart; the keeper gives it to the gate while services are
//!   held here. It binds this node only: the lease path of rule 3 (a peer
//!   relying on lease expiry instead of fencing) stays off.

pub mod advert;
pub mod device;
pub mod gate;
pub mod keeper;
pub mod lease;

pub use device::{Watchdog, WatchdogKind};
pub use gate::{Check, GateLimits, PetGate, Verdict, Withheld, pet_interval};
pub use keeper::{Keeper, Standing};
pub use lease::Lease;
