//! Agreed membership under simulation: every node runs a
//! [`litecloud::view::Agreement`] fed by its engine; checked on every
//! install: a view id always has the same members wherever it is
//! installed, each node's installed ids only grow (across restarts: the
//! promised epoch is kept on its simulated disk), a node is in the views it
//! installs; and after the heal, every live node installed the same view,
//! made of exactly the live nodes.

use super::world::SimNode;
use litecloud::view::{NodeSet, View, ViewId};
use std::collections::HashMap;

#[derive(Default)]
pub struct Views {
    members: HashMap<ViewId, NodeSet>,
    last: HashMap<usize, ViewId>,
    pub installs: u64,
}

impl Views {
    /// Node `i` installed `view`; returns a violation, if any.
    pub fn installed(&mut self, i: usize, id: u8, view: View) -> Option<String> {
        self.installs += 1;
        if !view.members.contains(id) {
            return Some(format!("n{id} installed {view:?} without itself"));
        }
        if let Some(m) = self.members.insert(view.id, view.members)
            && m != view.members
        {
            return Some(format!(
                "view {:?} installed with {:?} and with {:?}",
                view.id, m, view.members
            ));
        }
        if let Some(last) = self.last.insert(i, view.id)
            && last >= view.id
        {
            return Some(format!("n{id} installed {:?} after {last:?}", view.id));
        }
        None
    }

    /// After the heal: one view everywhere, of exactly the live nodes.
    pub fn heal_check(&self, nodes: &[SimNode]) -> Option<String> {
        let live = NodeSet::of(nodes.iter().filter(|n| n.live()).map(|n| n.id));
        let views: Vec<(u8, Option<View>)> = nodes
            .iter()
            .filter(|n| n.live())
            .map(|n| (n.id, n.agreement.as_ref().and_then(|a| a.view())))
            .collect();
        if views.is_empty() {
            return None;
        }
        let first = views.first().and_then(|(_, v)| *v);
        let agreed =
            views.iter().all(|(_, v)| *v == first) && first.is_some_and(|v| v.members == live);
        (!agreed).then(|| format!("live {live:?}, views {views:?}"))
    }
}
