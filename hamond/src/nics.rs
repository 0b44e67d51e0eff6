//! AutoGet (`hactl node nics [NODE]`, the console's AutoGet button): a
//! node's network interfaces and addresses, read on that node.
//!
//! This node's are read with `getifaddrs` ([`local`]). A peer's are asked
//! over the cluster's message channel with a small request/answer protocol
//! of its own ([`PROTOCOL`], [`encode`], [`decode`]); the answer is cut to
//! fit one channel message ([`fit`]) and says so. The operator's call waits
//! for the answer in [`Pending`], at most [`ANSWER_TIMEOUT`].

use haschema::ctl::{Nic, Response};
use litecloud::channel::MAX_MESSAGE;
use litecloud::wire::NodeId;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::SockaddrStorage;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

/// First byte of an AutoGet message on the cluster's message channel
/// (after the view's 1, the locks' 2, the services' 3, the history's 4 and
/// the configuration's 5).
pub const PROTOCOL: u8 = 6;

/// How long an operator waits for a peer's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Most interfaces an answer carries.
const MAX_NICS: usize = 16;
/// Most addresses per interface an answer carries.
const MAX_ADDRESSES: usize = 8;
/// Most operators' asks waiting at once: more are refused.
const MAX_PENDING: usize = 64;

/// One AutoGet message between two hamonds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// Send me your interfaces; `id` comes back in the answer.
    Ask { id: u64 },
    /// The interfaces of the node that was asked (`error`: why it could
    /// not read them).
    Answer {
        id: u64,
        nics: Vec<Nic>,
        #[serde(default)]
        truncated: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// A message as channel data: [`PROTOCOL`], then its JSON.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut data = vec![PROTOCOL];
    data.extend(serde_json::to_vec(message).unwrap_or_default());
    data
}

/// The message of channel data made by [`encode`]; anything else (another
/// protocol, oversized, not JSON of a message) is refused.
pub fn decode(data: &[u8]) -> Result<Message, String> {
    if data.len() > MAX_MESSAGE {
        return Err(format!(
            "AutoGet message of {} bytes (at most {MAX_MESSAGE})",
            data.len()
        ));
    }
    match data.split_first() {
        Some((&PROTOCOL, json)) => {
            serde_json::from_slice(json).map_err(|e| format!("malformed AutoGet message: {e}"))
        }
        _ => Err("not an AutoGet message".into()),
    }
}

/// Cuts `nics` to fit one answer message: at most [`MAX_NICS`] interfaces
/// and [`MAX_ADDRESSES`] addresses each, then, while the message is still
/// longer than [`MAX_MESSAGE`], the last address of the interface with the
/// most (IPv6 goes first, as addresses are listed IPv4 first), then the
/// last interface. Returns whether anything was left out.
pub fn fit(mut nics: Vec<Nic>) -> (Vec<Nic>, bool) {
    let mut truncated = nics.len() > MAX_NICS;
    nics.truncate(MAX_NICS);
    for nic in &mut nics {
        truncated |= nic.addresses.len() > MAX_ADDRESSES;
        nic.addresses.truncate(MAX_ADDRESSES);
    }
    let size = |nics: &Vec<Nic>| {
        encode(&Message::Answer {
            id: u64::MAX,
            nics: nics.clone(),
            truncated: true,
            error: None,
        })
        .len()
    };
    while size(&nics) > MAX_MESSAGE {
        truncated = true;
        let most = nics
            .iter_mut()
            .filter(|n| n.addresses.len() > 1)
            .max_by_key(|n| n.addresses.len());
        match most {
            Some(nic) => {
                nic.addresses.pop();
            }
            None => {
                nics.pop();
            }
        }
    }
    (nics, truncated)
}

/// This node's interfaces, loopback left out, in the kernel's order, each
/// with its IPv4 then IPv6 addresses.
pub fn local() -> Result<Vec<Nic>, String> {
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| format!("cannot list the network interfaces (getifaddrs): {e}"))?;
    let mut nics: Vec<Nic> = Vec::new();
    for a in addrs {
        if a.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        let at = match nics.iter().position(|n| n.name == a.interface_name) {
            Some(at) => at,
            None => {
                nics.push(Nic {
                    name: a.interface_name.clone(),
                    up: up(a.flags),
                    mac: None,
                    addresses: Vec::new(),
                });
                nics.len() - 1
            }
        };
        let nic = &mut nics[at];
        let Some(address) = &a.address else { continue };
        if let Some(mac) = address.as_link_addr().and_then(|l| l.addr()) {
            nic.mac = Some(mac_text(mac)).filter(|_| mac != [0; 6]);
        } else if let Some(text) = address_text(address, a.netmask.as_ref()) {
            nic.addresses.push(text);
        }
    }
    for nic in &mut nics {
        // Stable: IPv4 (no colon) before IPv6.
        nic.addresses.sort_by_key(|a| a.contains(':'));
    }
    Ok(nics)
}

/// Administratively up with carrier: the operational state (running),
/// or the driver's carrier alone, as the operational state follows it
/// only after the kernel's link watch ran (up to seconds on a busy node).
fn up(flags: InterfaceFlags) -> bool {
    flags.contains(InterfaceFlags::IFF_UP)
        && flags.intersects(InterfaceFlags::IFF_RUNNING | InterfaceFlags::IFF_LOWER_UP)
}

/// `aa:bb:cc:dd:ee:ff`.
fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

/// An IPv4 or IPv6 address with its prefix length, `10.0.0.1/24`.
fn address_text(address: &SockaddrStorage, netmask: Option<&SockaddrStorage>) -> Option<String> {
    if let Some(v4) = address.as_sockaddr_in() {
        let prefix = netmask
            .and_then(|m| m.as_sockaddr_in())
            .map_or(32, |m| m.ip().to_bits().count_ones());
        return Some(format!("{}/{prefix}", v4.ip()));
    }
    let v6 = address.as_sockaddr_in6()?;
    let prefix = netmask
        .and_then(|m| m.as_sockaddr_in6())
        .map_or(128, |m| m.ip().to_bits().count_ones());
    Some(format!("{}/{prefix}", v6.ip()))
}

/// One operator's ask waiting for a peer's answer.
#[derive(Debug)]
struct Waiting {
    peer: NodeId,
    node: String,
    reply: oneshot::Sender<Response>,
}

/// The operators' asks waiting for peers' answers. Each is answered by
/// [`Pending::answered`], or with a timeout error after
/// [`ANSWER_TIMEOUT`] (by a task of its own, so this loop keeps no timer).
#[derive(Debug, Default)]
pub struct Pending {
    next: u64,
    waiting: HashMap<u64, Waiting>,
}

impl Pending {
    /// Registers an ask of `node` (`peer`), whose answer goes to `reply`:
    /// the id to send in [`Message::Ask`], or None when too many asks wait
    /// already (`reply` then has the refusal). Asks that timed out are
    /// forgotten here.
    pub fn wait(
        &mut self,
        peer: NodeId,
        node: &str,
        reply: oneshot::Sender<Response>,
    ) -> Option<u64> {
        self.waiting.retain(|_, w| !w.reply.is_closed());
        if self.waiting.len() >= MAX_PENDING {
            let _ = reply.send(Response::Error {
                message: format!(
                    "{MAX_PENDING} AutoGet asks are already waiting for answers; try again in {} s",
                    ANSWER_TIMEOUT.as_secs()
                ),
            });
            return None;
        }
        self.next = self.next.wrapping_add(1);
        let id = self.next;
        let (tx, rx) = oneshot::channel();
        self.waiting.insert(
            id,
            Waiting {
                peer,
                node: node.to_owned(),
                reply: tx,
            },
        );
        let node = node.to_owned();
        tokio::spawn(async move {
            let response = match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(response)) => response,
                _ => Response::Error {
                    message: format!(
                        "{node} did not answer within {} s; is it up? (`hactl status` shows the nodes)",
                        ANSWER_TIMEOUT.as_secs()
                    ),
                },
            };
            let _ = reply.send(response);
        });
        Some(id)
    }

    /// Gives up the ask `id` at once with `message` (it could not be sent).
    pub fn fail(&mut self, id: u64, message: String) {
        if let Some(w) = self.waiting.remove(&id) {
            let _ = w.reply.send(Response::Error { message });
        }
    }

    /// `from` sent `answer`: passed to the operator who asked. An answer
    /// nobody waits for, or from another node than the one asked, is
    /// ignored (false).
    pub fn answered(&mut self, from: NodeId, answer: Message) -> bool {
        let Message::Answer {
            id,
            nics,
            truncated,
            error,
        } = answer
        else {
            return false;
        };
        if self.waiting.get(&id).is_none_or(|w| w.peer != from) {
            return false;
        }
        let Some(w) = self.waiting.remove(&id) else {
            return false;
        };
        let response = match error {
            Some(e) => Response::Error {
                message: format!("{}: {e}", w.node),
            },
            None => Response::Nics {
                node: w.node,
                nics,
                truncated,
            },
        };
        let _ = w.reply.send(response);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, addresses: usize) -> Nic {
        Nic {
            name: name.into(),
            up: true,
            mac: Some("02:00:00:00:00:01".into()),
            addresses: (0..addresses)
                .map(|i| format!("2001:db8::{i:x}:ffff:ffff:ffff/64"))
                .collect(),
        }
    }

    #[test]
    fn messages_round_trip() {
        let answer = Message::Answer {
            id: 7,
            nics: vec![nic("eth0", 2)],
            truncated: false,
            error: None,
        };
        for m in [Message::Ask { id: 3 }, answer] {
            assert_eq!(decode(&encode(&m)), Ok(m));
        }
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[5, b'{', b'}']).is_err());
        assert!(decode(&[PROTOCOL]).is_err());
        assert!(decode(&[PROTOCOL, 0xff, 0xfe]).is_err());
        assert!(decode(b"\x06{\"kind\":\"ask\"}").is_err());
        assert!(decode(b"\x06{\"kind\":\"steal\",\"id\":1}").is_err());
        let mut big = vec![PROTOCOL];
        big.extend(std::iter::repeat_n(b' ', MAX_MESSAGE));
        assert!(decode(&big).unwrap_err().contains("at most"));
    }

    #[test]
    fn small_answers_are_kept_whole() {
        let nics = vec![nic("eth0", 2), nic("eth1", 1)];
        assert_eq!(fit(nics.clone()), (nics, false));
    }

    #[test]
    fn big_answers_are_cut_to_one_message() {
        let nics: Vec<Nic> = (0..40).map(|i| nic(&format!("eth{i}"), 20)).collect();
        let (kept, truncated) = fit(nics);
        assert!(truncated);
        assert!(!kept.is_empty() && kept.len() <= MAX_NICS);
        assert!(kept.iter().all(|n| n.addresses.len() <= MAX_ADDRESSES));
        let message = Message::Answer {
            id: u64::MAX,
            nics: kept,
            truncated,
            error: None,
        };
        let data = encode(&message);
        assert!(data.len() <= MAX_MESSAGE, "{} bytes", data.len());
        assert_eq!(decode(&data), Ok(message));
    }

    #[test]
    fn up_needs_admin_up_and_carrier() {
        use InterfaceFlags as F;
        assert!(up(F::IFF_UP | F::IFF_RUNNING));
        assert!(up(F::IFF_UP | F::IFF_LOWER_UP));
        assert!(!up(F::IFF_UP));
        assert!(!up(F::IFF_RUNNING | F::IFF_LOWER_UP));
    }

    #[test]
    fn local_leaves_loopback_out() {
        let nics = local().expect("getifaddrs works here");
        assert!(nics.iter().all(|n| n.name != "lo"));
        for a in nics.iter().flat_map(|n| &n.addresses) {
            let (ip, prefix) = a.split_once('/').expect("address/prefix");
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{a}");
            assert!(prefix.parse::<u8>().is_ok_and(|p| p <= 128), "{a}");
        }
    }

    #[tokio::test]
    async fn answers_reach_the_asker_only_from_the_node_asked() {
        let mut pending = Pending::default();
        let (tx, rx) = oneshot::channel();
        let id = pending.wait(2, "beta", tx).unwrap();
        let answer = |id| Message::Answer {
            id,
            nics: vec![nic("eth0", 1)],
            truncated: false,
            error: None,
        };
        assert!(!pending.answered(3, answer(id)));
        assert!(!pending.answered(2, answer(id + 1)));
        assert!(!pending.answered(2, Message::Ask { id }));
        assert!(pending.answered(2, answer(id)));
        match rx.await.unwrap() {
            Response::Nics { node, nics, .. } => {
                assert_eq!(node, "beta");
                assert_eq!(nics.len(), 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
