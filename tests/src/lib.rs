//! Harness for the namespaced integration tests: real `hamond` daemons run
//! as cluster nodes, each in its own network namespace, joined by veth UDP
//! networks and a paced virtual null-modem cable.
//!
//! * [`netns`]: namespaces ([`Netns`]) and veth pairs ([`Veth`]).
//! * [`nft`]: UDP cuts with nftables, per port and direction.
//! * [`cable`]: the serial cable ([`Cable`]): pacing, cuts, line noise.
//! * [`rawudp`]: capture, forge and replay UDP datagrams.
//! * [`cluster`]: [`TestCluster`], which puts it all together.
//! * [`disk`]: shared disks: one image, one loop device per node
//!   ([`SharedDisk`], [`LoopDevice`]).
//! * [`publan`]: the public LAN of the floating IPs, with a client
//!   ([`PublicLan`]).
//! * [`power`]: a power switch for namespaced nodes ([`PowerSwitch`]) and
//!   its fence agent.
//! * [`ipmi`]: a simulated BMC per node (ipmi_sim) for fence_ipmilan
//!   ([`ipmi::Bmc`]).
//! * [`web`]: a protected web service on a two-node cluster, reached by a
//!   client through its floating IP ([`web::WebService`]).
//! * [`apps`]: the real applications and agents run as services (MariaDB,
//!   the bundled agents, the manual's C and shell agent templates).
//! * [`never_twice`]: the never-twice checker of the web service's tests,
//!   and the wait for the one claimant left once the dust settles.
//! * [`boot`]: a powered-off node booted again (its addresses, a new boot
//!   id, its daemons).
//! * [`report`]: lookups on `hactl status` reports.
//! * [`stream`]: waiting for one matching item of a stream of observations.
//! * [`account`]: temporary groups ([`TempGroup`]) and running programs as
//!   another user ([`RunAs`]), for access-control tests.
//! * [`require_root`]: skip (or, under CI, fail) without root.

pub mod account;
pub mod apps;
pub mod bins;
pub mod boot;
pub mod cable;
pub mod cluster;
pub mod command;
pub mod disk;
pub mod ipmi;
pub mod netns;
pub mod never_twice;
pub mod nft;
pub mod power;
pub mod publan;
pub mod rawudp;
pub mod report;
pub mod root;
pub mod scratch;
pub mod stream;
pub mod unique;
pub mod watchdog;
pub mod web;

pub use account::{RunAs, TempGroup};
pub use cable::{Cable, Direction, End};
pub use cluster::{ClusterSpec, LAN1, LAN2, SERIAL, TestCluster};
pub use disk::{LoopDevice, SharedDisk};
pub use netns::{Netns, Veth};
pub use power::PowerSwitch;
pub use publan::PublicLan;
pub use report::{ReportExt, Snapshot};
pub use root::require_root;
