//! hamond as a library: the parts of the daemon that the binary
//! (`main.rs`), `hactl` and other crates' tests share: the admin endpoint
//! ([`admin`], used by the daemon and by `hactl --remote`), the TCP accept
//! loop of the network endpoints ([`accept`]), the fencing layer
//! ([`fence`], which the daemon calls to fence lost peers), the watchdog
//! ([`watchdog`]), the event history ([`history`]) and its alerts
//! ([`alert`]), and how helper programs are run ([`helper`]).

pub mod accept;
pub mod admin;
pub mod alert;
pub mod fence;
pub mod helper;
pub mod history;
pub mod watchdog;
