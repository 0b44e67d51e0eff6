//! `hactl config ...` and `hactl service remove`: the replicated
//! configuration documents (hamond): `cluster.toml`, the service files
//! `services/NAME.toml` and `admin/password`. A change is made on one node
//! and committed on every node, or refused with the reason: a change based
//! on an older version than the current one is refused showing the current
//! version (without `--base`, the version read just before is the base),
//! and a node that is down blocks a change unless `--force-local` is
//! given (it takes the new version when it returns).

use crate::{Args, Daemon, ask, failed, print_json};
use clap::Subcommand;
use haschema::ctl::{ConfigDocInfo, ConfigVersion, Request, Response};
use std::path::PathBuf;
use std::process::ExitCode;

/// `hactl config ...`.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum ConfigCommand {
    /// List every configuration document with its version and size.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a document (or write it to a file).
    Get {
        /// The document, e.g. cluster.toml or services/web.toml.
        name: String,
        /// Write it to FILE instead of printing it.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Print the document and its version as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace (or create) a document on every node with FILE's content.
    Put {
        /// The document, e.g. cluster.toml or services/web.toml.
        name: String,
        /// The new content.
        file: PathBuf,
        #[command(flatten)]
        change: Change,
    },
    /// Remove a document on every node (not cluster.toml).
    Remove {
        /// The document, e.g. services/web.toml.
        name: String,
        #[command(flatten)]
        change: Change,
    },
}

/// How a change is committed.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct Change {
    /// The version the change was made from (as `hactl config list`
    /// shows it); refused if the document is no longer at it. Default:
    /// the version current when hactl starts.
    #[arg(long, value_name = "VERSION")]
    pub base: Option<ConfigVersion>,
    /// Commit on the nodes that are up, without those that are down (they
    /// take the new version when they return).
    #[arg(long)]
    pub force_local: bool,
    /// Print the new version as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hactl service remove SERVICE`: its file removed on every node.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ServiceRemove {
    /// The service's name; it must be stopped first (`hactl service stop`).
    pub service: String,
    #[command(flatten)]
    pub change: Change,
}

/// The document of service `service`'s file.
fn service_doc(service: &str) -> String {
    format!("services/{service}.toml")
}

/// Runs `hactl config ...`.
pub fn run(args: &Args, command: &ConfigCommand) -> ExitCode {
    match command {
        ConfigCommand::List { json } => match ask(args, Daemon::Hamond, &Request::ConfigList) {
            Ok(Response::ConfigList { docs }) => {
                if *json {
                    print_json(serde_json::to_string_pretty(&docs));
                } else {
                    print!("{}", table(&docs));
                }
                ExitCode::SUCCESS
            }
            other => failed(Daemon::Hamond, other),
        },
        ConfigCommand::Get { name, output, json } => get(args, name, output.as_ref(), *json),
        ConfigCommand::Put { name, file, change } => match std::fs::read_to_string(file) {
            Ok(content) => put(args, name, Some(content), change),
            Err(e) => {
                eprintln!("hactl: cannot read {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        ConfigCommand::Remove { name, change } => put(args, name, None, change),
    }
}

/// Runs `hactl service remove`.
pub fn remove_service(args: &Args, remove: &ServiceRemove) -> ExitCode {
    put(args, &service_doc(&remove.service), None, &remove.change)
}

fn get(args: &Args, name: &str, output: Option<&PathBuf>, json: bool) -> ExitCode {
    let request = Request::ConfigGet { name: name.into() };
    let (version, content) = match ask(args, Daemon::Hamond, &request) {
        Ok(Response::ConfigDoc {
            name,
            version,
            content,
        }) => {
            if json {
                let doc = serde_json::json!({"name": name, "version": version, "content": content});
                print_json(serde_json::to_string_pretty(&doc));
                return ExitCode::SUCCESS;
            }
            (version, content)
        }
        other => return failed(Daemon::Hamond, other),
    };
    let Some(content) = content else {
        eprintln!("hactl: {name} was removed (version {version})");
        return ExitCode::FAILURE;
    };
    match output {
        None => {
            print!("{content}");
            ExitCode::SUCCESS
        }
        Some(file) => match std::fs::write(file, content) {
            Ok(()) => {
                println!("wrote {name} version {version} to {}", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hactl: cannot write {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

/// Proposes the change; exit 0 once committed, 1 when refused, 3 when
/// hamond cannot be reached.
fn put(args: &Args, name: &str, content: Option<String>, change: &Change) -> ExitCode {
    let base = match change.base {
        Some(base) => Some(base),
        None => match current(args, name) {
            Ok(base) => base,
            Err(code) => return code,
        },
    };
    let request = Request::ConfigPut {
        name: name.into(),
        base,
        content,
        force_local: change.force_local,
    };
    match ask(args, Daemon::Hamond, &request) {
        Ok(Response::ConfigCommitted { name, version }) => {
            if change.json {
                let done = serde_json::json!({"name": name, "version": version});
                print_json(serde_json::to_string_pretty(&done));
            } else {
                println!("{name} is now at version {version}");
            }
            ExitCode::SUCCESS
        }
        Ok(Response::Error { message }) => {
            eprintln!("hactl: hamond refused: {message}");
            ExitCode::FAILURE
        }
        other => failed(Daemon::Hamond, other),
    }
}

/// The version of `name` now (None: there is no such document yet).
fn current(args: &Args, name: &str) -> Result<Option<ConfigVersion>, ExitCode> {
    match ask(args, Daemon::Hamond, &Request::ConfigList) {
        Ok(Response::ConfigList { docs }) => {
            Ok(docs.into_iter().find(|d| d.name == name).map(|d| d.version))
        }
        other => Err(failed(Daemon::Hamond, other)),
    }
}

/// `hactl config list` as a table.
fn table(docs: &[ConfigDocInfo]) -> String {
    if docs.is_empty() {
        return "no configuration documents\n".into();
    }
    let mut rows = vec![["DOCUMENT", "VERSION", "SIZE", "CONFLICT"].map(String::from)];
    rows.extend(docs.iter().map(|d| {
        [
            d.name.clone(),
            d.version.to_string(),
            d.size.map_or_else(|| "removed".into(), |s| s.to_string()),
            d.conflict
                .as_ref()
                .map_or_else(String::new, |c| format!("{} has {}", c.node, c.version)),
        ]
    }));
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    rows.iter()
        .map(|r| {
            let line = format!("{:<w0$}  {:<w1$}  {:<w2$}  {}", r[0], r[1], r[2], r[3]);
            format!("{}\n", line.trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;
    use clap::Parser;
    use haschema::ctl::ConfigConflict;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("hactl").chain(args.iter().copied()))
    }

    fn version(counter: u64, node: u8) -> ConfigVersion {
        ConfigVersion {
            epoch: 0,
            counter,
            node,
        }
    }

    #[test]
    fn config_commands_parse() {
        let a = parse(&[
            "config",
            "put",
            "services/web.toml",
            "web.toml",
            "--base",
            "0.7.2",
        ]);
        match a.unwrap().command {
            Command::Config {
                command: ConfigCommand::Put { name, file, change },
            } => {
                assert_eq!(name, "services/web.toml");
                assert_eq!(file, PathBuf::from("web.toml"));
                assert_eq!(change.base, Some(version(7, 2)));
                assert!(!change.force_local);
            }
            _ => panic!("not config put"),
        }
        let e = parse(&["config", "put", "x", "f", "--base", "seven"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("is not a config version"), "{e}");
        match parse(&["config", "get", "cluster.toml", "-o", "/tmp/c"])
            .unwrap()
            .command
        {
            Command::Config {
                command: ConfigCommand::Get { output, .. },
            } => assert_eq!(output, Some(PathBuf::from("/tmp/c"))),
            _ => panic!("not config get"),
        }
        let a = parse(&["config", "remove", "services/web.toml", "--force-local"]).unwrap();
        assert!(matches!(
            a.command,
            Command::Config {
                command: ConfigCommand::Remove {
                    change: Change {
                        force_local: true,
                        ..
                    },
                    ..
                }
            }
        ));
        let a = parse(&[
            "service",
            "remove",
            "web",
            "--force-local",
            "--remote",
            "h:1",
        ])
        .unwrap();
        assert_eq!(a.remote.as_deref(), Some("h:1"));
        match a.command {
            Command::Service {
                command: crate::services::ServiceCommand::Remove(r),
            } => {
                assert_eq!(service_doc(&r.service), "services/web.toml");
                assert!(r.change.force_local);
            }
            _ => panic!("not service remove"),
        }
        assert!(parse(&["service", "remove"]).is_err());
        assert!(parse(&["config", "list", "--json"]).is_ok());
    }

    #[test]
    fn list_table() {
        assert_eq!(table(&[]), "no configuration documents\n");
        let docs = [
            ConfigDocInfo {
                name: "cluster.toml".into(),
                version: version(3, 1),
                size: Some(812),
                conflict: None,
            },
            ConfigDocInfo {
                name: "services/old.toml".into(),
                version: version(4, 2),
                size: None,
                conflict: Some(ConfigConflict {
                    node: "beta".into(),
                    version: version(4, 1),
                }),
            },
        ];
        assert_eq!(
            table(&docs),
            "DOCUMENT           VERSION  SIZE     CONFLICT\n\
             cluster.toml       0.3.1    812\n\
             services/old.toml  0.4.2    removed  beta has 0.4.1\n"
        );
    }
}
