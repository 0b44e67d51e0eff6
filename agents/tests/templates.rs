//! The service templates of etc/templates: each parses and validates
//! against the sample cluster (etc/cluster.toml) with haschema's
//! service-file loader, names the bundled agent of its type, whose flags
//! accept the template's arguments, and the vendor ones say they are not
//! validated against vendor software.

use haschema::config::ClusterConfig;
use haschema::service::ServiceConfig;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each template, its type's name, and the agent binary it uses.
const TEMPLATES: [(&str, &str, &str, &str); 8] = [
    (
        "oracle.toml",
        "ORACLE",
        "oracle",
        env!("CARGO_BIN_EXE_oracle"),
    ),
    (
        "sybase.toml",
        "SYBASE",
        "sybase",
        env!("CARGO_BIN_EXE_sybase"),
    ),
    (
        "informix.toml",
        "INFORMIX",
        "informix",
        env!("CARGO_BIN_EXE_informix"),
    ),
    ("db2.toml", "DB2", "db2", env!("CARGO_BIN_EXE_db2")),
    ("mysql.toml", "MYSQL", "mysql", env!("CARGO_BIN_EXE_mysql")),
    ("www.toml", "WWW", "www", env!("CARGO_BIN_EXE_www")),
    ("nfs.toml", "NFS", "nfs", env!("CARGO_BIN_EXE_nfs")),
    (
        "userdef.toml",
        "USERDEF",
        "generic",
        env!("CARGO_BIN_EXE_generic"),
    ),
];

/// The templates whose agents are not validated against vendor software.
const VENDOR: [&str; 4] = ["oracle.toml", "sybase.toml", "informix.toml", "db2.toml"];

fn etc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc")
}

#[test]
fn every_template_validates_against_the_sample_cluster() {
    let cluster = ClusterConfig::load(&etc().join("cluster.toml")).unwrap();
    let mut listed: Vec<String> = std::fs::read_dir(etc().join("templates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    let mut expected: Vec<&str> = TEMPLATES.iter().map(|t| t.0).collect();
    expected.sort();
    assert_eq!(
        listed, expected,
        "a template without a test, or a test without a template"
    );

    for (file, kind, agent, _) in TEMPLATES {
        let path = etc().join("templates").join(file);
        let service = ServiceConfig::load(&path, &cluster).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(service.kind.as_str(), kind, "{file}");
        let argv = service.agent.unwrap_or_else(|| panic!("{file}: no agent"));
        assert_eq!(
            argv[0],
            format!("/usr/lib/hacluster/agents/{agent}"),
            "{file}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let note = text.contains("Not validated against vendor software");
        assert_eq!(
            note,
            VENDOR.contains(&file),
            "{file}: the not-validated note"
        );
    }
}

#[test]
fn every_agent_accepts_its_template_arguments() {
    let cluster = ClusterConfig::load(&etc().join("cluster.toml")).unwrap();
    for (file, _, _, exe) in TEMPLATES {
        let service = ServiceConfig::load(&etc().join("templates").join(file), &cluster).unwrap();
        let argv = service.agent.unwrap();
        // The flags parse (a usage error exits 2); then the agent finds no
        // hasvrd and gives up at once (exit 1).
        let out = Command::new(exe)
            .args(&argv[1..])
            .env("HA_SERVICE", &service.name)
            .env("HA_AGENT_SOCKET", "/nonexistent/agent.sock")
            .env("HA_AGENT_GRACE", "0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(stderr.contains("open failed"), "{file}: {stderr}");
    }
}
