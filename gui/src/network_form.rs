//! The PrivateNet dialogs' fields (Create RS232, Create Socket) and the
//! cluster.toml they make: the document as last read, edited with
//! toml_edit so that its comments and layout stay, then checked by the
//! daemons' own parser ([`ClusterConfig::parse`]) before anything is sent.
//! Remove takes one `[[network]]` out the same way.

use crate::model::{CLUSTER_DOC, ClusterDoc};
use haschema::config::ClusterConfig;
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
        }
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
