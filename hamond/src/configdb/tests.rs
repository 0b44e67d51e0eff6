//! The configuration replica's driver on one node, with the real store:
//! seeded from the files at the first start and persisted, hand edits
//! found at the next, documents listed and read, a forced local change
//! written to its file and answered, and a write cut short by a crash
//! finished at the next start.

use super::testkit::{SERVICE, fixture};
use super::*;
use std::os::unix::fs::MetadataExt as _;
use std::time::Duration;

/// Carries out the replica's work; what it left for the rest of hamond.
fn drain(db: &mut ConfigDb) -> Vec<Out> {
    std::iter::from_fn(|| db.poll()).take(1000).collect()
}

fn open(f: &testkit::Fixture, state: &Path) -> ConfigDb {
    ConfigDb::open(&f.config, 1, f.files.clone(), state).unwrap()
}

#[test]
fn seeded_from_the_files_persisted_and_hand_edits_found() {
    let f = fixture();
    let state = f.dir.path().join("state");
    let service = f.files.path("services/web.toml").unwrap();
    std::fs::create_dir_all(f.files.services_dir()).unwrap();
    std::fs::write(&service, SERVICE).unwrap();
    let mut db = open(&f, &state);
    assert_eq!(drain(&mut db), vec![], "nothing for the rest of hamond");
    let stored = state.join(STORE_FILE);
    assert_eq!(std::fs::metadata(&stored).unwrap().mode() & 0o7777, 0o600);
    let Response::ConfigList { docs } = db.list() else {
        panic!("not a list");
    };
    let names: Vec<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["cluster.toml", "services/web.toml"]);
    assert_eq!(docs[1].size, Some(SERVICE.len()));
    match db.get("services/web.toml") {
        Response::ConfigDoc { content, .. } => assert_eq!(content.as_deref(), Some(SERVICE)),
        other => panic!("{other:?}"),
    }
    let Response::Error { message } = db.get("services/none.toml") else {
        panic!("a missing document is an error");
    };
    assert!(
        message.contains("`hactl config list` shows them"),
        "{message}"
    );

    drop(db);
    assert_eq!(open(&f, &state).hand_edits(), Vec::<String>::new());
    std::fs::write(&service, format!("{SERVICE}# edited\n")).unwrap();
    let warnings = open(&f, &state).hand_edits();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("replicate it with `hactl config put services/web.toml"),
        "{warnings:?}"
    );
    std::fs::write(state.join(STORE_FILE), b"garbage").unwrap();
    let e = ConfigDb::open(&f.config, 1, f.files.clone(), &state)
        .err()
        .unwrap();
    assert!(e.contains("move it away and restart hamond"), "{e}");
}

#[test]
fn a_forced_local_change_is_written_and_answered() {
    let f = fixture();
    let state = f.dir.path().join("state");
    let mut db = open(&f, &state);
    drain(&mut db);
    let busy = |_: &str, _: bool| None;
    let cx = check::Context {
        config: &f.config,
        busy: &busy,
    };
    let put = |content: &str, force_local| Put {
        name: "services/web.toml".into(),
        base: None,
        content: Some(content.into()),
        force_local,
        by: "uid 0".into(),
    };
    let now = Duration::from_secs(100);

    // Checked here first: a bad file is refused at once, naming it.
    let (reply, mut answer) = oneshot::channel();
    db.put(now, put("name = 1\n", true), &cx, reply);
    drain(&mut db);
    match answer.try_recv() {
        Ok(Response::Error { message }) => assert!(message.contains("web.toml"), "{message}"),
        other => panic!("{other:?}"),
    }

    let (reply, mut answer) = oneshot::channel();
    db.put(now, put(SERVICE, true), &cx, reply);
    let outs = drain(&mut db);
    let version = match answer.try_recv() {
        Ok(Response::ConfigCommitted { name, version }) => {
            assert_eq!(name, "services/web.toml");
            version
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(version.epoch, 1, "a forced change bumps the admin epoch");
    let committed = Out::Committed {
        what: format!("configuration: services/web.toml changed (version {version})"),
        by: "uid 0".into(),
    };
    assert_eq!(
        outs,
        vec![Out::ServicesChanged, committed],
        "hasvrd rereads"
    );
    let file = f.files.path("services/web.toml").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SERVICE);
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o644);

    // Without --force-local beta is needed, and it is not up.
    let (reply, mut answer) = oneshot::channel();
    let change = Put {
        base: Some(version),
        ..put(&format!("{SERVICE}check_interval = \"5s\"\n"), false)
    };
    db.put(now, change, &cx, reply);
    drain(&mut db);
    match answer.try_recv() {
        Ok(Response::Error { message }) => {
            assert!(message.contains("beta is not up"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SERVICE);

    // A crash after the store was persisted, before the file was written:
    // the next start writes it (and hasvrd rereads), no hand edit.
    drop(db);
    let applied = state.join(APPLIED_FILE);
    let mut marks: BTreeMap<String, Version> =
        serde_json::from_slice(&std::fs::read(&applied).unwrap()).unwrap();
    assert_eq!(marks.remove("services/web.toml"), Some(version));
    std::fs::write(&applied, serde_json::to_vec(&marks).unwrap()).unwrap();
    std::fs::remove_file(&file).unwrap();
    let mut db = open(&f, &state);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), SERVICE);
    assert_eq!(drain(&mut db), vec![Out::ServicesChanged]);
    assert_eq!(db.hand_edits(), Vec::<String>::new());
}
