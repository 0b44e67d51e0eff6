//! hagui, the admin console of the cluster (SureHA manual, chapter 3): an
//! eframe window that logs in on any node's admin endpoint (TLS, admin
//! password, certificate pinned on first use after the operator accepted
//! its fingerprint) and shows the cluster live.
//!
//! * [`model`]: the state (connection, last reports, messages, selection,
//!   lock) and the job queue, pure.
//! * [`worker`]: the client thread that talks to the endpoint.
//! * [`console`]: [`Console`], which draws everything each frame.
//! * [`menus`], [`panel`], [`messages`], [`dialogs`]: the manual's menus
//!   and toolbar, the status panel, the message bar, the dialogs.
//! * [`timeline`]: the failovers of the history with their phases.
//! * [`edit_dialogs`], [`network_form`], [`service_form`]: the dialogs
//!   that change the configuration on every node, and the files they make.

pub mod console;
pub mod dialogs;
pub mod edit_dialogs;
pub mod menus;
pub mod messages;
pub mod model;
pub mod network_form;
pub mod panel;
pub mod service_form;
pub mod timeline;
pub mod worker;

pub use console::Console;
