//! The two phases of a normal commit: the proposer collects every needed
//! node's answer (then commits, or aborts everywhere); a receiver checks a
//! prepare, and acknowledges it only after persisting it (it is then in
//! doubt until it learns the outcome).

use super::codec::Msg;
use super::lineage::{Hash, Held};
use super::{Action, Check, MAX_DOCS, Refusal, Store, Ticket, Version};
use crate::view::NodeSet;
use crate::wire::NodeId;

impl Store {
    /// Aborts this node's edit `ticket` everywhere.
    pub(super) fn abort(&mut self, ticket: Ticket, refusal: Refusal) {
        if let Some(p) = self.proposals.remove(&ticket) {
            self.send(
                p.participants,
                &Msg::Abort {
                    ticket,
                    name: p.name,
                },
            );
            self.out.push_back(Action::Refused { ticket, refusal });
        }
    }

    pub(super) fn ack(&mut self, from: NodeId, ticket: Ticket) {
        let Some(p) = self.proposals.get_mut(&ticket) else {
            return;
        };
        p.waiting = NodeSet::of(p.waiting.iter().filter(|&n| n != from));
        if !p.waiting.is_empty() {
            return;
        }
        let Some(p) = self.proposals.remove(&ticket) else {
            return;
        };
        let version = p.new.head.version;
        self.install(p.name.clone(), p.new);
        let mut told = p.participants;
        told.insert(self.me);
        let commit = Msg::Commit {
            ticket,
            name: p.name,
            version,
            told,
        };
        self.send(p.participants, &commit);
        self.out.push_back(Action::Done { ticket, version });
    }

    /// A peer's prepare: acknowledged (persisted first, then this node is
    /// in doubt until it learns the outcome) or refused with the reason.
    pub(super) fn prepare(
        &mut self,
        from: NodeId,
        ticket: Ticket,
        name: String,
        base: Option<(Version, Hash)>,
        new: Held,
        check: Check,
    ) {
        self.max_epoch = self.max_epoch.max(new.head.lineage.max_epoch());
        let answer = match self.judge(from, &name, base, &new, check) {
            Err(refusal) => Msg::Nack(ticket, refusal),
            Ok(()) => {
                self.doubts.insert(name, (from, ticket, new));
                self.persist();
                Msg::Ack(ticket)
            }
        };
        self.send(NodeSet::of([from]), &answer);
    }

    fn judge(
        &mut self,
        from: NodeId,
        name: &str,
        base: Option<(Version, Hash)>,
        new: &Held,
        check: Check,
    ) -> Result<(), Refusal> {
        if let Some(&(by, _, _)) = self.doubts.get(name) {
            return Err(Refusal::Busy { by });
        }
        let mine = self.docs.get(name).map(|h| &h.head);
        let at_base = mine.map(|h| (h.version, h.hash)) == base;
        let known_conflict = self
            .conflicts
            .get(name)
            .and_then(|c| c.get(&from))
            .is_some_and(|h| Some((h.version, h.hash)) == base);
        if !at_base && !known_conflict {
            return Err(Refusal::Stale {
                current: mine.map(|h| h.version),
            });
        }
        if let Some(mine) = mine.filter(|m| !new.head.lineage.descends(&m.lineage)) {
            return Err(Refusal::Conflict {
                theirs: (self.me, mine.version),
            });
        }
        if mine.is_none() && self.docs.len() >= MAX_DOCS {
            return Err(Refusal::Rejected {
                node: self.me,
                reason: format!("node {} holds {MAX_DOCS} documents already", self.me),
            });
        }
        check(name, new.content.as_deref()).map_err(|reason| Refusal::Rejected {
            node: self.me,
            reason,
        })?;
        // Two edits crossing: the lower node's goes on (this node's could
        // not commit anyway: the other refuses it while its own is open).
        let own = self
            .proposals
            .iter()
            .find(|(_, p)| p.name == name)
            .map(|(&t, _)| t);
        match own {
            Some(_) if from > self.me => Err(Refusal::Busy { by: self.me }),
            Some(ticket) => {
                self.abort(ticket, Refusal::Busy { by: from });
                Ok(())
            }
            None => Ok(()),
        }
    }
}
