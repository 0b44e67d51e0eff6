//! The local check of a proposed configuration document, run on this node
//! for its own operator's edits and for every peer's proposal before it is
//! accepted: nothing is replicated that this node could not load.
//!
//! - `cluster.toml` parses and validates, keeps every node of the running
//!   config with its domain (replication neither removes nodes nor renumbers
//!   them), and names a cluster key file this node can read; it is never
//!   removed.
//! - `services/NAME.toml` parses and validates against the running cluster
//!   config, names service NAME, and clashes with no other service file
//!   here; an existing service is changed only while it is brought out on
//!   every node and its lock holder (if any) is up, and removed only once
//!   it is stopped everywhere (`hactl service stop`: OUTSTB on every node,
//!   nobody holds its lock), as the Skyge manual asks: stop, then remove.
//! - `admin/password` holds an argon2 hash, as `hactl passwd` writes it.

use super::files::{Files, Kind, known_names};
use argon2::password_hash::phc::PasswordHash;
use haschema::config::ClusterConfig;
use haschema::ctl::ServiceStatus;
use haschema::service::ServiceConfig;

/// What the check knows of this node besides its files.
pub struct Context<'a> {
    /// The cluster config hamond runs with.
    pub config: &'a ClusterConfig,
    /// Why a service may not change (`false`) or be removed (`true`) now
    /// (see [`busy`]); None when it may.
    pub busy: &'a dyn Fn(&str, bool) -> Option<String>,
}

/// Checks `content` (None: a removal) as the new document `name`.
pub fn document(
    cx: &Context,
    files: &Files,
    name: &str,
    content: Option<&[u8]>,
) -> Result<(), String> {
    let kind = files.kind(name).ok_or_else(|| {
        format!(
            "{name} is not a configuration document; the documents are {}",
            known_names(cx.config.admin.is_some())
        )
    })?;
    let text = content
        .map(|c| std::str::from_utf8(c).map_err(|_| format!("{name} is not UTF-8 text")))
        .transpose()?;
    match (kind, text) {
        (Kind::Cluster, None) => Err(format!(
            "{name} cannot be removed: every node needs it; put a changed one instead"
        )),
        (Kind::Cluster, Some(text)) => cluster(cx.config, text),
        (Kind::Service(service), text) => {
            let removal = text.is_none();
            if let Some(why) = (cx.busy)(service, removal) {
                let first = if removal {
                    format!("stop it first (hactl service stop {service})")
                } else {
                    format!("bring it out everywhere first (hactl service bring-out {service})")
                };
                return Err(format!(
                    "service {service} cannot {} now: {why}; {first}, then redo the change",
                    if removal { "be removed" } else { "change" }
                ));
            }
            match text {
                None => Ok(()),
                Some(text) => self::service(cx, files, name, service, text),
            }
        }
        (Kind::Password, None) => Err(format!(
            "{name} cannot be removed while [admin] is configured; set a new password with \
             `hactl passwd` instead"
        )),
        (Kind::Password, Some(text)) => match PasswordHash::new(text.trim()) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => Ok(()),
            _ => Err(format!(
                "{name} must hold an argon2 password hash, as `hactl passwd --file FILE` \
                 writes it"
            )),
        },
    }
}

/// A new cluster config: valid, every running node kept with its domain,
/// its key readable here.
fn cluster(running: &ClusterConfig, text: &str) -> Result<(), String> {
    let new = ClusterConfig::parse(text, &running.file).map_err(|e| e.to_string())?;
    for node in &running.nodes {
        match new.node(&node.name) {
            Some(n) if n.domain == node.domain => {}
            found => {
                let what = match found {
                    Some(n) => format!("gives node {} domain {}", node.name, n.domain),
                    None => format!("has no node {}", node.name),
                };
                return Err(format!(
                    "the new cluster.toml {what} (now domain {}): replication neither removes \
                     nodes nor changes their domains; to do that, stop the cluster and edit \
                     cluster.toml on every node",
                    node.domain
                ));
            }
        }
    }
    haschema::key::load(&new.key_file).map(drop).map_err(|e| {
        format!("the new cluster.toml's key_file cannot be used here: {e}; copy the cluster key to every node first")
    })
}

/// A new service file: valid against the running config, named after its
/// service, clashing with no other service file.
fn service(
    cx: &Context,
    files: &Files,
    name: &str,
    service: &str,
    text: &str,
) -> Result<(), String> {
    let path = files.path(name).unwrap_or_default();
    let new = ServiceConfig::parse(text, &path, cx.config).map_err(|e| e.to_string())?;
    if new.name != service {
        return Err(format!(
            "{name} defines service `{}`: a service file is named after its service; put it as \
             {}",
            new.name,
            super::files::service_doc(&new.name)
        ));
    }
    // The others as they are here; one that does not load is hasvrd's
    // error to report, not this change's.
    let mut all: Vec<ServiceConfig> = std::fs::read_dir(files.services_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != &path && p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|f| f.as_encoded_bytes().starts_with(b"."))
        })
        .filter_map(|p| ServiceConfig::load(&p, cx.config).ok())
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.push(new);
    haschema::service::check_conflicts(&all).map_err(|e| e.to_string())
}

/// Why the service of `status` may not be changed (`removal` false) or
/// removed now. A change waits while it is brought in (or failed, or
/// stalled) on some node, or its lock is held by a node that is not up
/// (`up` says which are), an orphan until fenced; brought out everywhere
/// (OUTACT, OUTSTB) it may change: hasvrd leaves what runs as it is and
/// applies the new definition at its next start. A removal waits until
/// nothing of it runs anywhere: OUTSTB on every node and no lock holder.
pub fn busy(status: &ServiceStatus, up: impl Fn(&str) -> bool, removal: bool) -> Option<String> {
    let settled = |state: &str| {
        if removal {
            state == "OUTSTB"
        } else {
            state.starts_with("OUT")
        }
    };
    if let Some(n) = status.nodes.iter().find(|n| !settled(&n.state)) {
        return Some(format!("it is {} on {}", n.state, n.node));
    }
    match &status.owner {
        Some(holder) if removal => Some(format!("its lock is held by {holder}")),
        Some(holder) if !up(holder) => Some(format!(
            "its lock is held by {holder}, which is down (orphaned until fenced or confirmed off)"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configdb::testkit::{Fixture, SERVICE, cluster_text, fixture};
    use haschema::ctl::ServiceNode;

    fn check(
        f: &Fixture,
        busy: Option<&str>,
        name: &str,
        content: Option<&str>,
    ) -> Result<(), String> {
        let busy = |_: &str, _: bool| busy.map(str::to_owned);
        let cx = Context {
            config: &f.config,
            busy: &busy,
        };
        document(&cx, &f.files, name, content.map(str::as_bytes))
    }

    #[test]
    fn a_cluster_config_keeps_every_node_and_its_domain() {
        let f = fixture();
        let key = f.dir.path().join("authkey");
        let more = cluster_text(&key, &[("alpha", 1), ("beta", 2), ("gamma", 3)]);
        assert_eq!(check(&f, None, "cluster.toml", Some(&more)), Ok(()));
        let fewer = cluster_text(&key, &[("alpha", 1), ("gamma", 3)]);
        let e = check(&f, None, "cluster.toml", Some(&fewer)).unwrap_err();
        assert!(e.contains("has no node beta (now domain 2)"), "{e}");
        let renumbered = cluster_text(&key, &[("alpha", 1), ("beta", 3)]);
        let e = check(&f, None, "cluster.toml", Some(&renumbered)).unwrap_err();
        assert!(e.contains("gives node beta domain 3"), "{e}");
        let e = check(&f, None, "cluster.toml", Some("[cluster]\nname = 1\n")).unwrap_err();
        assert!(e.contains("cluster.toml:2"), "names file and line: {e}");
        let e = check(&f, None, "cluster.toml", None).unwrap_err();
        assert!(e.contains("cannot be removed"), "{e}");
        let nokey = cluster_text(&f.dir.path().join("nokey"), &[("alpha", 1), ("beta", 2)]);
        let e = check(&f, None, "cluster.toml", Some(&nokey)).unwrap_err();
        assert!(
            e.contains("copy the cluster key to every node first"),
            "{e}"
        );
    }

    #[test]
    fn a_service_file_validates_and_waits_for_bring_out() {
        let f = fixture();
        let doc = "services/web.toml";
        assert_eq!(check(&f, None, doc, Some(SERVICE)), Ok(()));
        let e = check(&f, None, "services/www.toml", Some(SERVICE)).unwrap_err();
        assert!(e.contains("put it as services/web.toml"), "{e}");
        let bad = SERVICE.replace("beta", "gamma");
        let e = check(&f, None, doc, Some(&bad)).unwrap_err();
        assert!(e.contains("web.toml:"), "names the file: {e}");
        let e = check(&f, Some("it is ACTIVE on alpha"), doc, None).unwrap_err();
        assert!(
            e.contains("cannot be removed now: it is ACTIVE on alpha; stop it first (hactl service stop web)"),
            "{e}"
        );
        let e = check(&f, Some("it is ACTIVE on alpha"), doc, Some(SERVICE)).unwrap_err();
        assert!(
            e.contains("cannot change now: it is ACTIVE on alpha; bring it out everywhere first (hactl service bring-out web)"),
            "{e}"
        );
        assert_eq!(check(&f, None, doc, None), Ok(()));
        // Two service files may not share a name (nor an address, ...).
        std::fs::create_dir(f.files.services_dir()).unwrap();
        std::fs::write(f.files.services_dir().join("other.toml"), SERVICE).unwrap();
        let e = check(&f, None, doc, Some(SERVICE)).unwrap_err();
        assert!(e.contains("already used"), "{e}");
        let e = check(&f, None, "authkey", Some("x")).unwrap_err();
        assert!(e.contains("is not a configuration document"), "{e}");
        let e = check(&f, None, "admin/password", Some("x")).unwrap_err();
        assert!(
            e.contains("is not a configuration document"),
            "no [admin]: {e}"
        );
    }

    #[test]
    fn a_password_document_holds_an_argon2_hash() {
        let mut f = fixture();
        f.files = Files::new(
            f.config.file.clone(),
            f.dir.path().join("services"),
            Some(f.dir.path().join("admin.pw")),
        );
        let hash = hamond::admin::password::hash("long enough").unwrap();
        assert_eq!(
            check(&f, None, "admin/password", Some(&format!("{hash}\n"))),
            Ok(())
        );
        let e = check(&f, None, "admin/password", Some("secret")).unwrap_err();
        assert!(e.contains("argon2 password hash"), "{e}");
        assert!(check(&f, None, "admin/password", None).is_err());
    }

    #[test]
    fn a_service_changes_once_brought_out_and_goes_once_stopped() {
        let node = |node: &str, state: &str| ServiceNode {
            node: node.into(),
            state: state.into(),
            can_host: true,
            failures: 0,
        };
        let mut s = ServiceStatus {
            name: "web".into(),
            owner: Some("alpha".into()),
            nodes: vec![node("alpha", "ACTIVE"), node("beta", "STANDBY")],
            failures: 0,
            fault: None,
        };
        assert_eq!(
            busy(&s, |_| true, false).as_deref(),
            Some("it is ACTIVE on alpha")
        );
        s.nodes = vec![node("alpha", "OUTACT"), node("beta", "OUTSTB")];
        assert_eq!(
            busy(&s, |_| true, false),
            None,
            "brought out: it may change"
        );
        assert_eq!(
            busy(&s, |_| true, true).as_deref(),
            Some("it is OUTACT on alpha"),
            "still running: it may not be removed"
        );
        let e = busy(&s, |n| n != "alpha", false).unwrap();
        assert!(e.contains("held by alpha, which is down"), "{e}");
        s.nodes = vec![node("alpha", "OUTSTB"), node("beta", "OUTSTB")];
        assert_eq!(
            busy(&s, |_| true, true).as_deref(),
            Some("its lock is held by alpha")
        );
        s.owner = None;
        assert_eq!(busy(&s, |_| false, false), None);
        assert_eq!(
            busy(&s, |_| false, true),
            None,
            "stopped everywhere: it may go"
        );
    }
}
