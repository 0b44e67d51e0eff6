//! Shared schemas used by the daemons, `hactl` and the tests: the cluster
//! config file (TOML), the cluster key file and the local control protocol.

pub mod config;
pub mod ctl;
pub mod key;
pub mod service;
mod toml_walk;
