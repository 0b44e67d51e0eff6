//! hamond as a library: the parts of the daemon that the binary
//! (`main.rs`), `hactl` and other crates' tests share: the admin endpoint
//! ([`admin`], used by the daemon and by `hactl --remote`), the TCP accept
//! loop of the network endpoints ([`accept`]), the fencing layer
//! ([`fence`], which the daemon calls to fence lost peers) and the watchdog
//! ([`watchdog`], which the daemon does not call yet).

pub mod accept;
pub mod admin;
pub mod fence;
pub mod watchdog;
