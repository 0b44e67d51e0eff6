//! Service groups (the manual's GROUPID): the services of this node with
//! the same `group` (the loader checked they have the same nodes in the
//! same order) start in order on one node and move together. In a group
//! the services go by name (the order `load_dir` gives); the first is the
//! leader.
//!
//! * **Start in order, on one node.** A member asks for its lock only
//!   while the service before it runs here (held, every step up, watched);
//!   its machine's request waits in hasvrd until then, and a request sent
//!   is withdrawn when that service stops running here (never the lock of
//!   a member held here). Every start still passes the lock (rules 1, 7).
//! * **Stop in reverse order.** When a service held here is to leave this
//!   node (fail-over, a failure beyond `restart_times`, node standby,
//!   shutdown), its stop waits until every later service of its group is
//!   stopped here (proven, rule 7); those are asked to fail over first. One
//!   that cannot (no able peer) is not waited for, and a warning says so.
//! * **A failure moves the group.** A member that moved away from here
//!   (it asked a peer to take it over) makes the leader fail over, and the
//!   others follow it.
//! * **Operator commands act on the group.** take-over and fail-over of a
//!   member act on its leader; bring-in and bring-out on every service of
//!   the group; stop on every service of the group, the last first (so
//!   that each waits for the later ones as in any stop).
//!
//! [`Groups`] and [`targets`] are the pure rules; the `impl Daemon` below
//! applies them where the daemon loop asks for locks and stops steps.

use crate::daemon::Daemon;
use haschema::ctl::ServiceOp;
use haschema::svclink::ToHamond;
use hasvrd::service::{Input, Step};
use std::collections::BTreeMap;

/// The groups of this node's services.
#[derive(Debug, Default)]
pub struct Groups {
    /// Each service of a group of two or more: its group, in order.
    of: BTreeMap<String, Vec<String>>,
}

impl Groups {
    /// The groups of `services` (name, group).
    pub fn of<'a>(services: impl IntoIterator<Item = (&'a str, Option<u32>)>) -> Groups {
        let mut by_id: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for (name, group) in services {
            if let Some(g) = group {
                by_id.entry(g).or_default().push(name.to_owned());
            }
        }
        let mut of = BTreeMap::new();
        for mut members in by_id.into_values().filter(|m| m.len() > 1) {
            members.sort();
            for m in &members {
                of.insert(m.clone(), members.clone());
            }
        }
        Groups { of }
    }

    /// The services of `service`'s group, in order (empty if it has none).
    pub fn members(&self, service: &str) -> &[String] {
        self.of.get(service).map_or(&[], Vec::as_slice)
    }

    fn position(&self, service: &str) -> Option<usize> {
        self.members(service).iter().position(|m| m == service)
    }

    /// The service that starts before `service` in its group.
    pub fn before(&self, service: &str) -> Option<&str> {
        let i = self.position(service)?.checked_sub(1)?;
        Some(&self.members(service)[i])
    }

    /// The services that start after `service` in its group, in order.
    pub fn later(&self, service: &str) -> &[String] {
        match self.position(service) {
            Some(i) => &self.members(service)[i + 1..],
            None => &[],
        }
    }

    /// The leader of `service`'s group, when `service` is a member (not
    /// the leader).
    pub fn leader_of(&self, service: &str) -> Option<&str> {
        let first = self.members(service).first()?;
        (first != service).then_some(first.as_str())
    }
}

/// The services an operator's `op` on `service` acts on: its leader for
/// take-over and fail-over, its whole group for bring-in and bring-out,
/// its whole group in reverse for stop, else `service`.
pub fn targets(groups: &Groups, op: ServiceOp, service: &str) -> Vec<String> {
    let members = groups.members(service);
    match op {
        _ if members.is_empty() => vec![service.to_owned()],
        ServiceOp::TakeOver | ServiceOp::FailOver => vec![members[0].clone()],
        ServiceOp::BringIn | ServiceOp::BringOut => members.to_vec(),
        ServiceOp::Stop => members.iter().rev().cloned().collect(),
        _ => vec![service.to_owned()],
    }
}

/// What the group rules hold back in the daemon.
#[derive(Debug, Default)]
pub struct Held {
    /// Lock requests of members waiting for the service before them to
    /// run here, with their priority.
    requests: BTreeMap<String, u8>,
    /// The stop of a service waiting for the later services of its group
    /// to be stopped here.
    stops: BTreeMap<String, Step>,
}

impl Daemon {
    fn groups(&self) -> Groups {
        Groups::of(self.units.iter().map(|(n, u)| (n.as_str(), u.cfg.group)))
    }

    /// Held, every step up and watched here.
    fn runs_here(&self, service: &str) -> bool {
        self.units
            .get(service)
            .is_some_and(|u| u.svc.owned() && u.svc.running_here())
    }

    /// Whether `service`'s lock request (at `priority`) waits: it is a
    /// member not held here whose service before it does not run here.
    pub(crate) fn group_holds_request(&mut self, service: &str, priority: u8) -> bool {
        let groups = self.groups();
        let Some(before) = groups.before(service) else {
            return false;
        };
        let owned = self.units.get(service).is_some_and(|u| u.svc.owned());
        if owned || self.runs_here(before) {
            self.group.requests.remove(service);
            return false;
        }
        if self
            .group
            .requests
            .insert(service.to_owned(), priority)
            .is_none()
        {
            tracing::info!(
                "service {service}: waits until {before} runs here before it asks for its lock \
                 (they are one group)"
            );
        }
        self.withdraw(service);
        true
    }

    /// A lock request of `service` sent to hamond is withdrawn.
    fn withdraw(&mut self, service: &str) {
        if self.requests.remove(service).is_some() {
            self.send(ToHamond::Release {
                service: service.to_owned(),
            });
        }
    }

    /// `service` released its lock or withdrew its request.
    pub(crate) fn group_released(&mut self, service: &str) {
        self.group.requests.remove(service);
    }

    /// Whether the stop of `step` of `service` waits for the later
    /// services of its group: only when it leaves this node. Those still
    /// up here are asked to fail over first.
    pub(crate) fn group_holds_stop(&mut self, service: &str, step: Step) -> bool {
        let leaving = self
            .units
            .get(service)
            .is_some_and(|u| u.svc.owned() && !u.svc.wants_here());
        if !leaving {
            return false;
        }
        let by = format!("the group of {service}, which leaves {}", self.me);
        let mut wait = false;
        for later in self.groups().later(service).iter().rev() {
            let Some(unit) = self.units.get(later) else {
                continue;
            };
            if unit.svc.settled() {
                continue;
            }
            if unit.svc.owned() && unit.svc.wants_here() {
                if let Some(why) = unit.svc.refusal(ServiceOp::FailOver) {
                    tracing::warn!(
                        "service {later}: cannot leave with its group ({why}), so {service} \
                         stops without waiting for it; bring {later} out or fail it over by hand"
                    );
                    continue;
                }
                let op = ServiceOp::FailOver;
                self.feed(later, Input::Command { op, by: by.clone() });
            }
            wait = true;
        }
        if wait {
            tracing::info!(
                "service {service}: its stop of {step} waits until the later services of its \
                 group are stopped here"
            );
            self.group.stops.insert(service.to_owned(), step);
        }
        wait
    }

    /// `service` moved away from here (it asked a peer to take it over):
    /// a member's move makes its leader fail over, the others follow.
    pub(crate) fn group_member_left(&mut self, service: &str) {
        let groups = self.groups();
        let Some(leader) = groups.leader_of(service) else {
            return;
        };
        let Some(unit) = self.units.get(leader) else {
            return;
        };
        if !(unit.svc.owned() && unit.svc.wants_here() && unit.svc.managed()) {
            return;
        }
        if let Some(why) = unit.svc.refusal(ServiceOp::FailOver) {
            tracing::warn!(
                "service {service} moved away from here but its group's leader {leader} cannot \
                 follow ({why}); fail {leader} over by hand when a peer can host it"
            );
            return;
        }
        tracing::info!("service {service} moved away from here: its group follows ({leader})");
        let by = format!("the group of {service}, which moved away from {}", self.me);
        let op = ServiceOp::FailOver;
        self.feed(leader, Input::Command { op, by });
    }

    /// After any change: member requests go out, or are withdrawn, as the
    /// service before them runs here or not; stops held for later services
    /// go out once those are stopped here.
    pub(crate) fn regroup(&mut self) {
        let groups = self.groups();
        let waiting: Vec<(String, u8)> = self
            .group
            .requests
            .iter()
            .map(|(s, p)| (s.clone(), *p))
            .collect();
        for (service, priority) in waiting {
            if groups.before(&service).is_some_and(|b| self.runs_here(b)) {
                self.group.requests.remove(&service);
                tracing::info!("service {service}: the service before it runs here: asking for it");
                self.requests.insert(service.clone(), priority);
                self.send(ToHamond::Request { service, priority });
            }
        }
        let sent: Vec<(String, u8)> = self.requests.iter().map(|(s, p)| (s.clone(), *p)).collect();
        for (service, priority) in sent {
            let owned = self.units.get(&service).is_some_and(|u| u.svc.owned());
            let before_runs = groups.before(&service).is_none_or(|b| self.runs_here(b));
            if !owned && !before_runs {
                self.group_holds_request(&service, priority);
            }
        }
        let held: Vec<(String, Step)> = self
            .group
            .stops
            .iter()
            .map(|(s, t)| (s.clone(), *t))
            .collect();
        for (service, step) in held {
            let stopped = groups
                .later(&service)
                .iter()
                .all(|l| self.units.get(l).is_none_or(|u| u.svc.settled()));
            if stopped {
                self.group.stops.remove(&service);
                tracing::info!(
                    "service {service}: the later services of its group are stopped here: \
                     stopping {step}"
                );
                self.stop_job(&service, step);
            }
        }
    }

    /// An operator's command, on the services of `service`'s group it acts
    /// on ([`targets`]), each sent where it acts.
    pub(crate) fn command(
        &mut self,
        op: ServiceOp,
        service: &str,
        by: &str,
    ) -> Result<String, String> {
        let targets = targets(&self.groups(), op, service);
        if targets == [service] {
            return self.command_one(op, service, by);
        }
        let mut said = Vec::new();
        for target in &targets {
            said.push(self.command_one(op, target, by)?);
        }
        Ok(format!(
            "{service} is in a group with {}: {} acts on {}: {}",
            self.groups().members(service).join(", "),
            op.as_str(),
            targets.join(", "),
            said.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Groups {
        Groups::of([
            ("db", Some(7)),
            ("app", Some(7)),
            ("web", Some(7)),
            ("mail", None),
            ("lonely", Some(9)),
        ])
    }

    #[test]
    fn a_group_goes_by_name_and_its_first_leads() {
        let g = groups();
        assert_eq!(g.members("web"), ["app", "db", "web"]);
        assert_eq!(g.before("app"), None);
        assert_eq!(g.before("db"), Some("app"));
        assert_eq!(g.before("web"), Some("db"));
        assert_eq!(g.later("app"), ["db", "web"]);
        assert_eq!(g.later("web"), [] as [String; 0]);
        assert_eq!(g.leader_of("web"), Some("app"));
        assert_eq!(g.leader_of("app"), None);
    }

    #[test]
    fn a_service_alone_is_no_group() {
        let g = groups();
        for s in ["mail", "lonely", "unknown"] {
            assert!(g.members(s).is_empty(), "{s}");
            assert_eq!(g.before(s), None);
            assert!(g.later(s).is_empty());
            assert_eq!(g.leader_of(s), None);
        }
    }

    #[test]
    fn commands_act_on_the_leader_or_the_whole_group() {
        let g = groups();
        assert_eq!(targets(&g, ServiceOp::TakeOver, "web"), ["app"]);
        assert_eq!(targets(&g, ServiceOp::FailOver, "db"), ["app"]);
        assert_eq!(targets(&g, ServiceOp::BringOut, "db"), ["app", "db", "web"]);
        assert_eq!(targets(&g, ServiceOp::BringIn, "app"), ["app", "db", "web"]);
        assert_eq!(targets(&g, ServiceOp::Stop, "app"), ["web", "db", "app"]);
        assert_eq!(targets(&g, ServiceOp::Cleanup, "web"), ["web"]);
        assert_eq!(targets(&g, ServiceOp::SwitchbackOn, "web"), ["web"]);
        assert_eq!(targets(&g, ServiceOp::FailOver, "mail"), ["mail"]);
    }
}
