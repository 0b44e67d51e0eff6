//! hasvrd's library: everything that touches this node's resources for the
//! protected services. The binary wires these together; integration tests
//! drive them directly in network namespaces.

pub mod agent;
pub mod fip;
pub mod mountinfo;
pub mod procfs;
pub mod script;
pub mod service;
pub mod steps;
pub mod track;
pub mod volume;
