//! Shared schemas used by the daemons, `hactl`, the agents and the tests:
//! the cluster config file and the service files (TOML), the cluster key
//! file, the local control protocol, the link between hamond and hasvrd, the
//! agent heartbeat protocol, the cluster events of the history and the
//! alerts, the audit log of admin actions, and who may use the local sockets
//! (SO_PEERCRED). With the `daemon` feature, what hamond and hasvrd share:
//! the control socket server, logging, and processes (mutual supervision).

pub mod access;
pub mod agent;
pub mod audit;
pub mod config;
pub mod ctl;
#[cfg(feature = "daemon")]
pub mod ctl_server;
pub mod event;
pub mod key;
#[cfg(feature = "daemon")]
pub mod logging;
pub mod private_file;
#[cfg(feature = "daemon")]
pub mod process;
pub mod service;
pub mod svclink;
mod toml_walk;
