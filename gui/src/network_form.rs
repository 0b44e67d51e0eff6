//! The PrivateNet dialogs' fields (Create RS232, Create Socket) and the
//! cluster.toml they make: the document as last read, edited with
//! toml_edit so that its comments and layout stay, then checked by the
//! daemons' own parser ([`ClusterConfig::parse`]) before anything is sent.
//! Remove takes one `[[network]]` out the same way. AutoGet fills a
//! Socket network's addresses from the nodes' interfaces ([`pick_address`]).

use crate::model::{CLUSTER_DOC, ClusterDoc};
use haschema::config::{ClusterConfig, NetworkKind};
use haschema::ctl::Nic;
use std::net::{IpAddr, Ipv4Addr};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// The medium of a new private network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Medium {
    /// An RS-232 null-modem cable between two nodes.
    Serial,
    /// UDP datagrams (the manual's Socket).
    Udp,
}

/// The fields of a new private network, as typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkForm {
    pub medium: Medium,
    pub name: String,
    pub priority: String,
    pub interval: String,
    pub maxmiss: String,
    /// Serial only.
    pub baud: u32,
    /// UDP only: the port every node binds.
    pub port: String,
    /// Each declared node's end, in the config's order: its serial device
    /// or its IP address; empty when the node is not on this network.
    pub ends: Vec<(String, String)>,
    /// What the last AutoGet could not fill, for the dialog.
    pub notes: Vec<String>,
}

impl NetworkForm {
    /// A new network of `medium` between the nodes of `config`, with the
    /// schema's defaults and a name not used yet.
    pub fn new(medium: Medium, config: &ClusterConfig) -> NetworkForm {
        let (stem, end) = match medium {
            Medium::Serial => ("rs232", "/dev/ttyS0"),
            Medium::Udp => ("sock", ""),
        };
        let taken = |n: &str| config.networks.iter().any(|x| x.name == n);
        let name = std::iter::once(stem.to_owned())
            .chain((2..).map(|i| format!("{stem}{i}")))
            .find(|n| !taken(n))
            .unwrap_or_default();
        let ends = config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let on = medium == Medium::Udp || i < 2;
                (
                    n.name.clone(),
                    if on { end.to_owned() } else { String::new() },
                )
            })
            .collect();
        NetworkForm {
            medium,
            name,
            priority: "50".into(),
            interval: "1s".into(),
            maxmiss: "10".into(),
            baud: 19200,
            port: "5410".into(),
            ends,
            notes: Vec::new(),
        }
    }

    /// AutoGet's answer for `node`: its end is set to [`pick_address`]
    /// of its interfaces, or left as typed with a note saying why.
    pub fn autoget(&mut self, node: &str, nics: Result<&[Nic], &str>, config: &ClusterConfig) {
        let picked = nics.and_then(|nics| {
            pick_address(nics, &used_addresses(config, node))
                .ok_or("no up interface with an IPv4 address that no other private network uses")
        });
        let end = self.ends.iter_mut().find(|(n, _)| n == node);
        match (picked, end) {
            (Ok(address), Some((_, value))) => *value = address.to_string(),
            (Err(why), _) => self.notes.push(format!("{node}: {why}; type its address")),
            (Ok(_), None) => {}
        }
    }

    /// `node`'s AutoGet answer left interfaces out (more than one cluster
    /// message carries): the note says where to see them all.
    pub fn autoget_truncated(&mut self, node: &str) {
        self.notes.push(format!(
            "{node}: more interfaces or addresses than one cluster message carries, only those \
             received were looked at; `hactl node nics {node}` lists them all"
        ));
    }

    /// The dialog's title.
    pub fn title(&self) -> &'static str {
        match self.medium {
            Medium::Serial => "PrivateNet Configuration (RS232)",
            Medium::Udp => "PrivateNet Configuration (Socket)",
        }
    }

    /// cluster.toml with this network added at the end, as the daemons
    /// would read it; Err: why they would refuse it.
    pub fn added_to(&self, doc: &ClusterDoc) -> Result<String, String> {
        let mut toml = parse(&doc.text)?;
        let mut net = Table::new();
        net.insert("name", text(&self.name));
        let kind = match self.medium {
            Medium::Serial => "serial",
            Medium::Udp => "udp",
        };
        net.insert("kind", text(kind));
        net.insert("priority", number(&self.priority));
        net.insert("interval", text(&self.interval));
        net.insert("maxmiss", number(&self.maxmiss));
        let ends = self.ends.iter().filter(|(_, v)| !v.trim().is_empty());
        match self.medium {
            Medium::Serial => {
                net.insert("baud", Item::Value(i64::from(self.baud).into()));
                let devices: InlineTable = ends.map(|(n, d)| (n, d.trim())).collect();
                net.insert("device", Item::Value(devices.into()));
            }
            Medium::Udp => {
                let port = self.port.trim();
                let addresses: InlineTable =
                    ends.map(|(n, a)| (n, endpoint(a.trim(), port))).collect();
                net.insert("address", Item::Value(addresses.into()));
            }
        }
        match toml
            .get_mut("network")
            .and_then(Item::as_array_of_tables_mut)
        {
            Some(networks) => networks.push(net),
            None => {
                let mut networks = ArrayOfTables::new();
                networks.push(net);
                toml.insert("network", Item::ArrayOfTables(networks));
            }
        }
        check(toml.to_string())
    }
}

/// The IPv4 address AutoGet proposes for a node: the first of an up
/// interface (`10.0.0.1/24` as listed) that is not in `used`.
pub fn pick_address(nics: &[Nic], used: &[IpAddr]) -> Option<Ipv4Addr> {
    nics.iter()
        .filter(|n| n.up)
        .flat_map(|n| &n.addresses)
        .filter_map(|a| a.split('/').next()?.parse::<Ipv4Addr>().ok())
        .find(|a| !used.contains(&IpAddr::V4(*a)))
}

/// The addresses `node` has on the private networks of `config`.
fn used_addresses(config: &ClusterConfig, node: &str) -> Vec<IpAddr> {
    config
        .networks
        .iter()
        .filter_map(|n| match &n.kind {
            NetworkKind::Udp { addresses } => addresses.get(node).map(|a| a.ip()),
            _ => None,
        })
        .collect()
}

/// cluster.toml without network `name`; Err: why the daemons would refuse
/// it (the last network, a pair of nodes left without a path ...).
pub fn removed_from(doc: &ClusterDoc, name: &str) -> Result<String, String> {
    let mut toml = parse(&doc.text)?;
    let networks = toml
        .get_mut("network")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| format!("{CLUSTER_DOC} has no [[network]]"))?;
    let index = networks
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
        .ok_or_else(|| format!("{CLUSTER_DOC} has no network {name}"))?;
    networks.remove(index);
    check(toml.to_string())
}

/// The document, for editing.
fn parse(text: &str) -> Result<DocumentMut, String> {
    text.parse()
        .map_err(|e| format!("{CLUSTER_DOC} as read cannot be edited: {e}"))
}

/// The new text if the daemons accept it, else their error.
fn check(text: String) -> Result<String, String> {
    ClusterConfig::parse(&text, std::path::Path::new(CLUSTER_DOC))
        .map(|_| text)
        .map_err(|e| e.to_string())
}

/// A string value.
fn text(s: &str) -> Item {
    Item::Value(s.trim().into())
}

/// A number as typed: an integer when it is one, else the text (which the
/// parser then refuses, saying what is allowed).
pub(crate) fn number(s: &str) -> Item {
    let s = s.trim();
    Item::Value(
        s.parse::<i64>()
            .map_or_else(|_| Value::from(s), Value::from),
    )
}

/// `address:port`, an IPv6 address in brackets.
fn endpoint(address: &str, port: &str) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../etc/cluster.toml");

    fn doc() -> ClusterDoc {
        ClusterDoc::new("0.3.1".parse().unwrap(), SAMPLE.to_owned())
    }

    #[test]
    fn a_socket_network_is_added_and_the_comments_stay() {
        let doc = doc();
        let config = doc.config.clone().unwrap();
        let mut form = NetworkForm::new(Medium::Udp, &config);
        assert_eq!(form.name, "sock");
        form.ends[0].1 = "192.168.30.1".into();
        form.ends[1].1 = "fd00::2".into();
        // One address family per network: refused by the parser.
        let e = form.added_to(&doc).unwrap_err();
        assert!(e.contains("network[3]"), "{e}");
        form.ends[1].1 = "192.168.30.2".into();
        let text = form.added_to(&doc).unwrap();
        assert!(text.contains("# One [[network]] per private network"));
        let new = ClusterConfig::parse(&text, "x".as_ref()).unwrap();
        assert_eq!(new.networks.len(), 4);
        assert_eq!(new.networks[3].name, "sock");
        assert_eq!(new.networks[3].interval, std::time::Duration::from_secs(1));
    }

    fn nic(name: &str, up: bool, addresses: &[&str]) -> Nic {
        Nic {
            name: name.into(),
            up,
            mac: None,
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn autoget_picks_the_first_free_ipv4_of_an_up_nic() {
        let nics = [
            nic("eth0", false, &["10.0.0.1/24"]),
            nic(
                "eth1",
                true,
                &["fe80::1/64", "192.168.1.5/24", "192.168.2.5/24"],
            ),
        ];
        let used: Vec<IpAddr> = vec!["192.168.1.5".parse().unwrap()];
        assert_eq!(
            pick_address(&nics, &used),
            Some(Ipv4Addr::new(192, 168, 2, 5))
        );
        assert_eq!(
            pick_address(&nics, &[]),
            Some(Ipv4Addr::new(192, 168, 1, 5))
        );
        assert_eq!(pick_address(&nics[..1], &[]), None);
        assert_eq!(pick_address(&[nic("x", true, &["garbage"])], &[]), None);
    }

    #[test]
    fn autoget_fills_each_node_or_says_why_not() {
        let doc = doc();
        let config = doc.config.clone().unwrap();
        let mut form = NetworkForm::new(Medium::Udp, &config);
        let (first, second) = (form.ends[0].0.clone(), form.ends[1].0.clone());
        let taken = used_addresses(&config, &first);
        assert!(!taken.is_empty(), "the sample has UDP networks");
        let taken = format!("{}/24", taken[0]);
        let nics = [nic("eth0", true, &[&taken, "172.16.0.1/16"])];
        form.autoget(&first, Ok(&nics), &config);
        form.autoget(&second, Err("beta did not answer"), &config);
        form.autoget(&second, Ok(&nics[..0]), &config);
        assert_eq!(form.ends[0].1, "172.16.0.1");
        assert_eq!(form.ends[1].1, "");
        form.autoget_truncated(&first);
        assert_eq!(form.notes.len(), 3);
        assert!(form.notes[0].contains("did not answer"), "{:?}", form.notes);
        assert!(
            form.notes[1].contains("no up interface"),
            "{:?}",
            form.notes
        );
        assert!(
            form.notes[2].contains(&format!("`hactl node nics {first}` lists them all")),
            "{:?}",
            form.notes
        );
    }

    #[test]
    fn a_serial_network_and_its_removal() {
        let doc = doc();
        let config = doc.config.clone().unwrap();
        let mut form = NetworkForm::new(Medium::Serial, &config);
        assert_eq!(form.name, "rs2322");
        form.name = "cable2".into();
        form.maxmiss = "many".into();
        assert!(form.added_to(&doc).unwrap_err().contains("maxmiss"));
        form.maxmiss = "5".into();
        let text = form.added_to(&doc).unwrap();
        let added = ClusterDoc::new(doc.version, text);
        let text = removed_from(&added, "lan2").unwrap();
        let names: Vec<String> = ClusterConfig::parse(&text, "x".as_ref())
            .unwrap()
            .networks
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["rs232", "lan1", "cable2"]);
        assert!(
            removed_from(&added, "nope")
                .unwrap_err()
                .contains("no network nope")
        );
    }
}
