//! Reliable messages under simulation: nodes send each other numbered
//! messages at random while faults rage; every delivery is checked to be
//! exactly once and in order, with no gap, within one pair of incarnations
//! (the sender's channel starts over whenever it proves a new incarnation
//! of the receiver), and after the heal nothing is left unacknowledged.

use super::world::SimNode;
use litecloud::node::Event;
use std::collections::HashMap;

/// First byte of the test's messages (other protocols share the channel).
const TAG: u8 = 0xee;

/// What one pair's checks need, keyed by sender, receiver and instances.
#[derive(Default)]
pub struct Mail {
    /// [from][to]: channel generation of `from`'s current engine towards `to`.
    generation: HashMap<(usize, usize), u32>,
    /// [from][to]: last counter queued in the current generation.
    queued: HashMap<(usize, usize), u32>,
    /// (from, from instance, generation, to, to instance): last delivered.
    delivered: HashMap<(usize, u32, u32, usize, u32), u32>,
    pub sent: u64,
    pub received: u64,
}

impl Mail {
    /// Node `i` starts a new engine: its channels start over.
    pub fn started(&mut self, i: usize) {
        self.generation.retain(|&(from, _), _| from != i);
        self.queued.retain(|&(from, _), _| from != i);
    }

    /// The next message from `i` (engine `instance`) to `to`, padded to
    /// `pad` extra bytes.
    pub fn compose(&self, i: usize, instance: u32, to: usize, pad: usize) -> Vec<u8> {
        let generation = self.generation.get(&(i, to)).copied().unwrap_or(0);
        let counter = self.queued.get(&(i, to)).copied().unwrap_or(0) + 1;
        let mut data = Vec::with_capacity(13 + pad);
        data.push(TAG);
        data.extend(instance.to_be_bytes());
        data.extend(generation.to_be_bytes());
        data.extend(counter.to_be_bytes());
        data.resize(13 + pad, 0xa5);
        data
    }

    /// The engine took the message composed for `to`.
    pub fn queued(&mut self, i: usize, to: usize) {
        *self.queued.entry((i, to)).or_default() += 1;
        self.sent += 1;
    }

    /// Node `i`'s events from one step; returns a violation, if any.
    pub fn observe(&mut self, i: usize, nodes: &[SimNode], events: &[Event]) -> Option<String> {
        for e in events {
            match e {
                Event::IncarnationAccepted { peer, .. } => {
                    let to = usize::from(*peer) - 1;
                    *self.generation.entry((i, to)).or_default() += 1;
                    self.queued.insert((i, to), 0);
                }
                Event::Message { from, data } if data.first() == Some(&TAG) => {
                    let from = usize::from(*from) - 1;
                    let word = |k: usize| u32::from_be_bytes(data[k..k + 4].try_into().unwrap());
                    if data.len() < 13 {
                        return Some(format!("n{} got a {}-byte message", i + 1, data.len()));
                    }
                    let (instance, generation, counter) = (word(1), word(5), word(9));
                    let key = (from, instance, generation, i, nodes[i].instance);
                    let last = self.delivered.entry(key).or_default();
                    if counter != *last + 1 {
                        return Some(format!(
                            "n{} got message #{counter} of n{} (engine #{instance}, generation {generation}) after #{}: \
                             not exactly once in order",
                            i + 1,
                            from + 1,
                            *last
                        ));
                    }
                    *last = counter;
                    self.received += 1;
                }
                _ => {}
            }
        }
        None
    }

    /// After the heal: every live node has every message acknowledged.
    pub fn heal_check(&self, nodes: &[SimNode]) -> Option<String> {
        let live: Vec<&SimNode> = nodes.iter().filter(|n| n.live()).collect();
        let stuck: Vec<String> = live
            .iter()
            .flat_map(|a| live.iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.id != b.id)
            .filter_map(|(a, b)| {
                let n = a.engine.as_ref()?.unacked(b.id);
                (n > 0).then(|| format!("n{} has {n} unacked for n{}", a.id, b.id))
            })
            .collect();
        (!stuck.is_empty()).then(|| stuck.join(", "))
    }
}
