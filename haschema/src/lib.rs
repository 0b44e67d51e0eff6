//! Shared schemas used by the daemons, `hactl`, the agents and the tests:
//! the cluster config file and the service files (TOML), the cluster key
//! file, the local control protocol, the agent heartbeat protocol, and who
//! may use the local sockets (SO_PEERCRED).

pub mod access;
pub mod agent;
pub mod config;
pub mod ctl;
pub mod key;
pub mod private_file;
pub mod service;
mod toml_walk;
