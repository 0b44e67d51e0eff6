//! NIC carrier: whether a NIC can carry traffic (administratively up and
//! with carrier, `IFF_UP` and `IFF_LOWER_UP`), and a watcher of its changes
//! from the kernel's link notifications (rtnetlink group `RTNLGRP_LINK`).

use super::{Task, errno_of};
use futures_util::{Stream, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use std::collections::HashMap;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A NIC whose carrier changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarrierEvent {
    /// Interface name.
    pub nic: String,
    /// True: up with carrier. False: down, without carrier, or removed.
    pub up: bool,
}

/// Whether a link message shows the NIC up with carrier.
pub(super) fn link_up(link: &LinkMessage) -> bool {
    link.header
        .flags
        .contains(LinkFlags::Up | LinkFlags::LowerUp)
}

pub(super) fn link_name(link: &LinkMessage) -> Option<&str> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// Carrier changes of every NIC, as they happen: up to down and back,
/// and a NIC that goes away (reported down). Made by
/// [`super::Fip::watch_carrier`]; the state when it was made is what
/// [`super::Fip::carrier`] reads after it, and only changes from that
/// state are reported. Stops (returns `None`) only if the kernel's
/// notification socket fails. Dropping it stops the watch.
///
/// Also a [`Stream`] of [`CarrierEvent`]s.
pub struct CarrierWatch {
    rx: mpsc::UnboundedReceiver<CarrierEvent>,
    _conn: Task,
    _task: Task,
}

impl CarrierWatch {
    /// Subscribes to link notifications, then reads the state of every
    /// link, so no change after this returns is missed.
    pub(super) async fn start() -> io::Result<CarrierWatch> {
        let (conn, handle, mut messages) =
            rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])?;
        let conn = Task(tokio::spawn(conn));
        let mut known: HashMap<u32, (String, bool)> = HashMap::new();
        {
            let mut links = pin!(handle.link().get().execute());
            while let Some(link) = links.try_next().await.map_err(|e| match errno_of(&e) {
                Some(n) => io::Error::from_raw_os_error(n),
                None => io::Error::other(e.to_string()),
            })? {
                if let Some(name) = link_name(&link) {
                    known.insert(link.header.index, (name.to_owned(), link_up(&link)));
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let task = Task(tokio::spawn(async move {
            // Keeps the request side of the connection alive.
            let _handle = handle;
            use futures_util::StreamExt;
            while let Some((msg, _)) = messages.next().await {
                let NetlinkPayload::InnerMessage(msg) = msg.payload else {
                    continue;
                };
                let events = match msg {
                    RouteNetlinkMessage::NewLink(link) => changed(&mut known, &link, false),
                    RouteNetlinkMessage::DelLink(link) => changed(&mut known, &link, true),
                    _ => Vec::new(),
                };
                for e in events {
                    tracing::info!(
                        "NIC {} {}",
                        e.nic,
                        if e.up { "has carrier" } else { "lost carrier" }
                    );
                    if tx.send(e).is_err() {
                        return;
                    }
                }
            }
            tracing::warn!("link notifications stopped: NIC carrier is no longer watched");
        }));
        Ok(CarrierWatch {
            rx,
            _conn: conn,
            _task: task,
        })
    }

    /// The next change; `None` if the watch stopped.
    pub async fn recv(&mut self) -> Option<CarrierEvent> {
        self.rx.recv().await
    }
}

impl Stream for CarrierWatch {
    type Item = CarrierEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<CarrierEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Updates `known` with a link message and returns the changes to report:
/// a NIC that went from up to down or back, renamed, or removed.
fn changed(
    known: &mut HashMap<u32, (String, bool)>,
    link: &LinkMessage,
    deleted: bool,
) -> Vec<CarrierEvent> {
    let index = link.header.index;
    let before = known.remove(&index);
    let now = if deleted {
        None
    } else {
        link_name(link)
            .map(|n| (n.to_owned(), link_up(link)))
            .or_else(|| before.clone())
    };
    let mut events = Vec::new();
    match (&before, &now) {
        (Some((old, true)), Some((new, up))) if old != new || !up => {
            events.push(CarrierEvent {
                nic: old.clone(),
                up: false,
            });
            if *up {
                events.push(CarrierEvent {
                    nic: new.clone(),
                    up: true,
                });
            }
        }
        (Some((_, false)) | None, Some((new, true))) => events.push(CarrierEvent {
            nic: new.clone(),
            up: true,
        }),
        (Some((old, true)), None) => events.push(CarrierEvent {
            nic: old.clone(),
            up: false,
        }),
        _ => {}
    }
    if let Some(state) = now {
        known.insert(index, state);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(index: u32, name: &str, up: bool, lower_up: bool) -> LinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags |= LinkFlags::Up;
        }
        if lower_up {
            m.header.flags |= LinkFlags::LowerUp;
        }
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m
    }

    fn ev(nic: &str, up: bool) -> CarrierEvent {
        CarrierEvent {
            nic: nic.into(),
            up,
        }
    }

    #[test]
    fn reports_changes_only() {
        let mut known = HashMap::new();
        known.insert(2, ("eth0".to_owned(), true));
        // Same state again (a statistics update): nothing.
        assert_eq!(changed(&mut known, &link(2, "eth0", true, true), false), []);
        // Carrier lost, admin up: down.
        assert_eq!(
            changed(&mut known, &link(2, "eth0", true, false), false),
            [ev("eth0", false)]
        );
        // Admin down too: still down, nothing new.
        assert_eq!(
            changed(&mut known, &link(2, "eth0", false, false), false),
            []
        );
        assert_eq!(
            changed(&mut known, &link(2, "eth0", true, true), false),
            [ev("eth0", true)]
        );
        // Renamed while up: the old name goes down, the new one comes up.
        assert_eq!(
            changed(&mut known, &link(2, "lan0", true, true), false),
            [ev("eth0", false), ev("lan0", true)]
        );
        // Removed while up.
        assert_eq!(
            changed(&mut known, &link(2, "lan0", true, true), true),
            [ev("lan0", false)]
        );
        assert!(known.is_empty());
        // A new NIC: reported when it comes up.
        assert_eq!(
            changed(&mut known, &link(3, "eth1", false, false), false),
            []
        );
        assert_eq!(
            changed(&mut known, &link(3, "eth1", true, true), false),
            [ev("eth1", true)]
        );
    }
}
