//! Node standby on one service's machine ([`super::Input::Standby`], see the
//! module doc of [`super`]): the facts it changes, and how a holder here
//! leaves.

use super::{Level, Service};

impl Service {
    /// The operator put this node in standby (`Some(why)`), or took it
    /// out: out of standby, the node wants the service again as after a
    /// start (switchback decides whether it comes back).
    pub(super) fn on_standby(&mut self, why: Option<String>) {
        match (why, self.standby.take()) {
            (Some(why), None) => {
                if self.owned && self.up > 0 && self.best_peer().is_none() {
                    self.alert(
                        Level::Warning,
                        format!(
                            "node standby ({why}): no peer is up and able to host, so it keeps \
                             running here until one is"
                        ),
                    );
                } else {
                    self.alert(
                        Level::Info,
                        format!("node standby ({why}): this node takes it no more"),
                    );
                }
                self.standby = Some(why);
            }
            (Some(_), was @ Some(_)) => self.standby = was,
            (None, Some(was)) => {
                self.alert(
                    Level::Info,
                    format!("node standby over (it was: {was}): this node can host again"),
                );
                if !self.leaving && !self.owned {
                    self.want_here = true;
                    self.hold_back_until = None;
                }
            }
            (None, None) => {}
        }
    }

    /// In node standby, a holder here hands the service to the most
    /// preferred able peer; with none, it keeps what runs, but a lock
    /// granted with nothing up here is released at once.
    pub(super) fn leave_for_standby(&mut self) {
        let Some(why) = self.standby.clone() else {
            return;
        };
        if !(self.owned && self.want_here && self.managed) {
            return;
        }
        let to = match self.best_peer() {
            Some(peer) => format!("failing over to {peer}"),
            None if self.up == 0 && self.proven && self.cycle.is_none() => {
                "releasing it (no peer is up and able to host)".to_owned()
            }
            None => return,
        };
        self.alert(Level::Info, format!("node standby ({why}): {to}"));
        self.move_away();
    }
}
