//! The Service > Create dialog's fields and the service file they make.
//! A new form is filled from the service type's template
//! (`etc/templates/`, the manual's example values) with the cluster's
//! nodes; the file is that template, comments and all, with the typed
//! values put in by toml_edit, then checked by the daemons' own parser
//! ([`ServiceConfig::parse`], against the cluster config as read) before
//! anything is sent.

use crate::model::service_doc;
use crate::network_form::number;
use haschema::config::ClusterConfig;
use haschema::service::{ServiceConfig, ServiceType};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// The template of each service type.
fn template(kind: ServiceType) -> &'static str {
    match kind {
        ServiceType::Userdef => include_str!("../../etc/templates/userdef.toml"),
        ServiceType::Www => include_str!("../../etc/templates/www.toml"),
        ServiceType::Mysql => include_str!("../../etc/templates/mysql.toml"),
        ServiceType::Oracle => include_str!("../../etc/templates/oracle.toml"),
        ServiceType::Sybase => include_str!("../../etc/templates/sybase.toml"),
        ServiceType::Informix => include_str!("../../etc/templates/informix.toml"),
        ServiceType::Db2 => include_str!("../../etc/templates/db2.toml"),
        ServiceType::Nfs => include_str!("../../etc/templates/nfs.toml"),
    }
}

/// A template as a document (they are part of the program: they parse).
fn template_doc(kind: ServiceType) -> DocumentMut {
    template(kind)
        .parse()
        .unwrap_or_else(|e| panic!("the {kind} template does not parse: {e}"))
}

/// The fields of a new service, as typed. Lists (standby servers, NICs,
/// commands) are words separated by spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceForm {
    pub kind: ServiceType,
    pub name: String,
    /// Empty: no group.
    pub group: String,
    pub active: String,
    pub standby: String,
    /// `address/prefix` or a range; empty: no floating IP.
    pub address: String,
    /// Each node's NICs for the floating IP.
    pub nics: Vec<(String, String)>,
    /// Each node's volume device.
    pub devices: Vec<(String, String)>,
    /// Empty: no volume.
    pub mount_point: String,
    pub fstype: String,
    pub agent: String,
    pub start: String,
    pub stop: String,
    pub status: String,
    pub start_timeout: String,
    pub stop_timeout: String,
    pub check_interval: String,
    pub check_tko: String,
    pub restart_times: String,
    pub switchback: bool,
    pub onstart: bool,
}

/// A string of the template.
fn get_str(t: &Table, key: &str) -> String {
    t.get(key)
        .map(|i| match i {
            Item::Value(Value::String(s)) => s.value().clone(),
            Item::Value(Value::Array(a)) => words(a),
            other => other.to_string().trim().to_owned(),
        })
        .unwrap_or_default()
}

/// An array of strings as words.
fn words(a: &Array) -> String {
    a.iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first table of the template's `[[key]]`.
fn first<'a>(doc: &'a DocumentMut, key: &str) -> Option<&'a Table> {
    doc.get(key)?.as_array_of_tables()?.get(0)
}

/// The template's value for its active node in inline table `key` of
/// `table`, given to every node.
fn per_node(table: Option<&Table>, key: &str, nodes: &[String]) -> Vec<(String, String)> {
    let value = table
        .and_then(|t| t.get(key))
        .and_then(Item::as_inline_table)
        .and_then(|t| t.iter().next().map(|(_, v)| v.clone()))
        .map(|v| match v {
            Value::Array(a) => words(&a),
            Value::String(s) => s.value().clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    nodes.iter().map(|n| (n.clone(), value.clone())).collect()
}

impl ServiceForm {
    /// A new service of type `kind` on `nodes` (the first active, the
    /// others standby in order), with its template's values.
    pub fn new(kind: ServiceType, nodes: &[String]) -> ServiceForm {
        let doc = template_doc(kind);
        let t = doc.as_table();
        let ip = first(&doc, "ip");
        let volume = first(&doc, "volume");
        let flag = |key: &str| t.get(key).and_then(Item::as_bool).unwrap_or(false);
        ServiceForm {
            kind,
            name: get_str(t, "name"),
            group: String::new(),
            active: nodes.first().cloned().unwrap_or_default(),
            standby: nodes.get(1..).unwrap_or_default().join(" "),
            address: ip.map(|t| get_str(t, "address")).unwrap_or_default(),
            nics: per_node(ip, "nics", nodes),
            devices: per_node(volume, "device", nodes),
            mount_point: volume
                .map(|t| get_str(t, "mount_point"))
                .unwrap_or_default(),
            fstype: volume.map(|t| get_str(t, "fstype")).unwrap_or_default(),
            agent: get_str(t, "agent"),
            start: get_str(t, "start"),
            stop: get_str(t, "stop"),
            status: get_str(t, "status"),
            start_timeout: get_str(t, "start_timeout"),
            stop_timeout: get_str(t, "stop_timeout"),
            check_interval: get_str(t, "check_interval"),
            check_tko: get_str(t, "check_tko"),
            restart_times: get_str(t, "restart_times"),
            switchback: flag("switchback"),
            onstart: flag("onstart"),
        }
    }

    /// The service file: the template with the typed values.
    pub fn text(&self) -> String {
        let mut doc = template_doc(self.kind);
        let t = doc.as_table_mut();
        t["name"] = Item::Value(self.name.trim().into());
        t["type"] = Item::Value(self.kind.as_str().into());
        set_or_remove(
            t,
            "group",
            (!self.group.trim().is_empty()).then(|| number(&self.group)),
        );
        t["active"] = Item::Value(self.active.trim().into());
        t["standby"] = Item::Value(Value::Array(self.standby.split_whitespace().collect()));
        t["onstart"] = Item::Value(self.onstart.into());
        t["switchback"] = Item::Value(self.switchback.into());
        for (key, words) in [
            ("agent", &self.agent),
            ("start", &self.start),
            ("stop", &self.stop),
            ("status", &self.status),
        ] {
            let argv: Array = words.split_whitespace().collect();
            set_or_remove(t, key, (!argv.is_empty()).then(|| Item::Value(argv.into())));
        }
        for (key, value) in [
            ("start_timeout", &self.start_timeout),
            ("stop_timeout", &self.stop_timeout),
            ("check_interval", &self.check_interval),
        ] {
            t[key] = Item::Value(value.trim().into());
        }
        t["check_tko"] = number(&self.check_tko);
        t["restart_times"] = number(&self.restart_times);
        let ip = (!self.address.trim().is_empty()).then(|| {
            let nics: InlineTable = self
                .nics
                .iter()
                .filter(|(_, n)| !n.trim().is_empty())
                .map(|(node, n)| (node, Value::Array(n.split_whitespace().collect())))
                .collect();
            [
                ("address", Item::Value(self.address.trim().into())),
                ("nics", Item::Value(nics.into())),
            ]
        });
        first_table(t, "ip", ip);
        let volume = (!self.mount_point.trim().is_empty()).then(|| {
            let devices: InlineTable = self
                .devices
                .iter()
                .filter(|(_, d)| !d.trim().is_empty())
                .map(|(node, d)| (node, d.trim()))
                .collect();
            [
                ("device", Item::Value(devices.into())),
                ("mount_point", Item::Value(self.mount_point.trim().into())),
                ("fstype", Item::Value(self.fstype.trim().into())),
            ]
        });
        first_table(t, "volume", volume);
        doc.to_string()
    }

    /// The service file, if the daemons would accept it on a cluster
    /// configured as `cluster`; Err: the parser's error.
    pub fn check(&self, cluster: &ClusterConfig) -> Result<String, String> {
        let text = self.text();
        let file = service_doc(self.name.trim());
        ServiceConfig::parse(&text, file.as_ref(), cluster)
            .map(|_| text)
            .map_err(|e| e.to_string())
    }
}

/// Sets `key` to `item`, or removes it (None).
fn set_or_remove(t: &mut Table, key: &str, item: Option<Item>) {
    match item {
        Some(item) => t[key] = item,
        None => drop(t.remove(key)),
    }
}

/// Sets `fields` in the first table of `[[key]]` (its other fields kept
/// from the template), or removes every `[[key]]` (None).
fn first_table<const N: usize>(t: &mut Table, key: &str, fields: Option<[(&str, Item); N]>) {
    let Some(fields) = fields else {
        t.remove(key);
        return;
    };
    if t.get(key)
        .and_then(Item::as_array_of_tables)
        .is_none_or(|a| a.is_empty())
    {
        let mut tables = ArrayOfTables::new();
        tables.push(Table::new());
        t.insert(key, Item::ArrayOfTables(tables));
    }
    if let Some(table) = t
        .get_mut(key)
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|a| a.get_mut(0))
    {
        for (k, v) in fields {
            table[k] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterConfig {
        ClusterConfig::parse(include_str!("../../etc/cluster.toml"), "c".as_ref()).unwrap()
    }

    fn nodes() -> Vec<String> {
        vec!["alpha".into(), "beta".into()]
    }

    #[test]
    fn every_template_makes_a_valid_service_with_its_comments() {
        for kind in ServiceType::ALL {
            let form = ServiceForm::new(kind, &nodes());
            let text = form
                .check(&cluster())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(
                text.contains("# The manual's START TIMEOUT"),
                "{kind}: {text}"
            );
        }
    }

    #[test]
    fn typed_values_reach_the_file_and_bad_ones_get_the_parsers_error() {
        let mut form = ServiceForm::new(ServiceType::Userdef, &nodes());
        form.name = "app".into();
        form.group = "7".into();
        form.address = String::new();
        form.mount_point = String::new();
        form.check_tko = "3".into();
        form.check_interval = "5s".into();
        form.start = "/bin/true start".into();
        let text = form.check(&cluster()).unwrap();
        let s = ServiceConfig::parse(&text, "x".as_ref(), &cluster()).unwrap();
        assert_eq!(
            (
                s.name.as_str(),
                s.group,
                s.check_tko,
                s.ips.len(),
                s.volumes.len()
            ),
            ("app", Some(7), 3, 0, 0)
        );
        assert_eq!(s.start, Some(vec!["/bin/true".into(), "start".into()]));
        form.restart_times = "9".into();
        let e = form.check(&cluster()).unwrap_err();
        assert!(
            e.starts_with("services/app.toml:") && e.contains("restart_times"),
            "{e}"
        );
    }
}
