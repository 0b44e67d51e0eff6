//! hamond as a library: the parts of the daemon that other crates' tests
//! drive directly. Today that is [`fence`] (the fencing layer), which the
//! daemon does not call yet; the daemon binary (`main.rs`) will reach it as
//! `hamond::fence`.

pub mod admin;
pub mod fence;
pub mod watchdog;
