//! What the configuration replica's unit tests share: a two-node cluster
//! config (alpha, beta) with a real key in a temp dir, its files, and a
//! valid service file.

use super::files::Files;
use haschema::config::ClusterConfig;
use std::path::Path;

/// A valid service file for the fixture's nodes.
pub const SERVICE: &str = "name = \"web\"\nactive = \"alpha\"\nstandby = [\"beta\"]\n\
    start = [\"/bin/true\"]\nstop = [\"/bin/true\"]\nstatus = [\"/bin/true\"]\n";

/// A cluster config with these nodes (name, domain) on one UDP network.
pub fn cluster_text(key: &Path, nodes: &[(&str, u8)]) -> String {
    let mut t = format!(
        "[cluster]\nname = \"t\"\nnetid = 3\nkey_file = \"{}\"\n",
        key.display()
    );
    for (name, domain) in nodes {
        t.push_str(&format!(
            "\n[[node]]\nname = \"{name}\"\ndomain = {domain}\n"
        ));
    }
    let addrs: Vec<String> = nodes
        .iter()
        .map(|(n, d)| format!("{n} = \"10.0.0.{d}:5405\""))
        .collect();
    t.push_str(&format!(
        "\n[[network]]\nname = \"lan\"\nkind = \"udp\"\naddress = {{ {} }}\n",
        addrs.join(", ")
    ));
    t
}

/// A temp dir with a cluster key and the config of alpha and beta
/// (written as `cluster.toml`, services in `services/`, no `[admin]`).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: ClusterConfig,
    pub files: Files,
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("authkey");
    haschema::key::generate(&key, false).unwrap();
    let file = dir.path().join("cluster.toml");
    let text = cluster_text(&key, &[("alpha", 1), ("beta", 2)]);
    std::fs::write(&file, &text).unwrap();
    let config = ClusterConfig::parse(&text, &file).unwrap();
    let files = Files::new(file, dir.path().join("services"), None);
    Fixture { dir, config, files }
}
