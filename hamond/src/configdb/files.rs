//! Where each replicated configuration document lives on this node, and
//! how its file is written: `cluster.toml` is hamond's `--config` file,
//! `services/NAME.toml` the service files in hasvrd's directory, and
//! `admin/password` the `[admin] password_file` (only when `[admin]` is
//! configured). Every write is atomic (temp file in the same directory,
//! fsync, rename, fsync of the directory), so a reader sees the old file or
//! the new one, never a part; a removal is made durable the same way.

use litecloud::config::MAX_DOC;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The cluster config's document.
pub const CLUSTER: &str = "cluster.toml";
/// The admin password hash's document.
pub const PASSWORD: &str = "admin/password";
/// The prefix of the service files' documents.
const SERVICES: &str = "services/";
/// The service files' extension.
const EXTENSION: &str = ".toml";

/// The files of this node's documents.
#[derive(Clone, Debug)]
pub struct Files {
    cluster: PathBuf,
    services: PathBuf,
    password: Option<PathBuf>,
}

/// What kind of document a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    Cluster,
    /// A service file, with the service's name.
    Service(&'a str),
    Password,
}

/// The kind of the document `name`, if it is one this node replicates
/// (`password`: whether `[admin]` is configured).
pub fn kind(name: &str, password: bool) -> Option<Kind<'_>> {
    match name {
        CLUSTER => Some(Kind::Cluster),
        PASSWORD if password => Some(Kind::Password),
        _ => {
            let service = name.strip_prefix(SERVICES)?.strip_suffix(EXTENSION)?;
            let plain = !service.is_empty() && !service.starts_with('.') && !service.contains('/');
            (plain && litecloud::config::valid_name(name)).then_some(Kind::Service(service))
        }
    }
}

/// The document of service `service`'s file.
pub fn service_doc(service: &str) -> String {
    format!("{SERVICES}{service}{EXTENSION}")
}

/// What the documents are, for an operator who named another one.
pub fn known_names(password: bool) -> String {
    let mut names = format!("{CLUSTER}, {SERVICES}NAME{EXTENSION}");
    if password {
        names.push_str(&format!(", {PASSWORD}"));
    }
    names
}

impl Files {
    /// `cluster`: hamond's config file; `services`: hasvrd's service
    /// directory; `password`: the `[admin] password_file`, if configured.
    pub fn new(cluster: PathBuf, services: PathBuf, password: Option<PathBuf>) -> Files {
        Files {
            cluster,
            services,
            password,
        }
    }

    /// The kind of the document `name`, if this node replicates it.
    pub fn kind<'a>(&self, name: &'a str) -> Option<Kind<'a>> {
        kind(name, self.password.is_some())
    }

    /// The file of document `name`; None for a name that is no document
    /// here.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        match self.kind(name)? {
            Kind::Cluster => Some(self.cluster.clone()),
            Kind::Password => self.password.clone(),
            Kind::Service(service) => Some(self.services.join(format!("{service}{EXTENSION}"))),
        }
    }

    /// The service directory.
    pub fn services_dir(&self) -> &Path {
        &self.services
    }

    /// Every document on disk now: the cluster config, each service file
    /// (`*.toml`, hidden files skipped), and the password file if it
    /// exists. Used to seed the store at the first start.
    pub fn read_all(&self) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut names = vec![CLUSTER.to_owned()];
        if self.password.is_some() {
            names.push(PASSWORD.to_owned());
        }
        match std::fs::read_dir(&self.services) {
            Ok(entries) => {
                for entry in entries.flatten() {
                    if let Some(file) = entry.file_name().to_str()
                        && entry.path().is_file()
                    {
                        let doc = format!("{SERVICES}{file}");
                        if self.kind(&doc).is_some() {
                            names.push(doc);
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", self.services.display())),
        }
        names.sort();
        let mut docs = Vec::new();
        for name in names {
            if let Some(content) = self.read(&name)? {
                docs.push((name, content));
            }
        }
        Ok(docs)
    }

    /// The content of document `name`'s file; None if it does not exist
    /// (or `name` is no document here).
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        let Some(path) = self.path(name) else {
            return Ok(None);
        };
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(fail(&e)),
        };
        let mut data = Vec::new();
        file.take(MAX_DOC as u64 + 1)
            .read_to_end(&mut data)
            .map_err(|e| fail(&e))?;
        if data.len() > MAX_DOC {
            return Err(fail(&format!(
                "larger than {MAX_DOC} bytes, too large to replicate"
            )));
        }
        Ok(Some(data))
    }

    /// Writes document `name`'s file (mode 0644, 0600 for the password),
    /// or removes it (`content` None), atomically and durably.
    pub fn apply(&self, name: &str, content: Option<&[u8]>) -> std::io::Result<PathBuf> {
        let path = self.path(name).ok_or_else(|| {
            std::io::Error::other(format!("{name} is not a configuration document here"))
        })?;
        let mode = match self.kind(name) {
            Some(Kind::Password) => 0o600,
            _ => 0o644,
        };
        match content {
            Some(data) => haschema::private_file::write_with_mode(&path, data, mode)?,
            None => remove_durably(&path)?,
        }
        Ok(path)
    }
}

/// The directory of `path` ("." for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes `path` (gone already is fine) and fsyncs its directory.
fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    match File::open(dir_of(path)) {
        Ok(dir) => dir.sync_all(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn files(dir: &Path, password: bool) -> Files {
        Files::new(
            dir.join("cluster.toml"),
            dir.join("services"),
            password.then(|| dir.join("admin.pw")),
        )
    }

    #[test]
    fn names_map_to_files() {
        let f = files(Path::new("/etc/ha"), true);
        assert_eq!(f.path(CLUSTER), Some(PathBuf::from("/etc/ha/cluster.toml")));
        assert_eq!(
            f.path("services/web.toml"),
            Some(PathBuf::from("/etc/ha/services/web.toml"))
        );
        assert_eq!(f.path(PASSWORD), Some(PathBuf::from("/etc/ha/admin.pw")));
        assert_eq!(f.kind("services/web.toml"), Some(Kind::Service("web")));
        for bad in [
            "services/web",
            "services/.web.toml",
            "services/a/b.toml",
            "services/.toml",
            "services/../x.toml",
            "/etc/passwd",
            "authkey",
            "services/web.toml/",
        ] {
            assert_eq!(f.path(bad), None, "{bad}");
        }
        let without = files(Path::new("/etc/ha"), false);
        assert_eq!(without.path(PASSWORD), None, "no [admin]: no password doc");
        assert_eq!(service_doc("web"), "services/web.toml");
        assert!(known_names(true).contains(PASSWORD));
        assert!(!known_names(false).contains(PASSWORD));
    }

    #[test]
    fn writes_atomically_with_the_documents_mode_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path(), true);
        let path = f.apply("services/web.toml", Some(b"one")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
        f.apply("services/web.toml", Some(b"two")).unwrap();
        assert_eq!(
            f.read("services/web.toml").unwrap().as_deref(),
            Some(&b"two"[..])
        );
        let leftovers = std::fs::read_dir(f.services_dir()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file left behind");
        let pw = f.apply(PASSWORD, Some(b"$argon2id$x\n")).unwrap();
        assert_eq!(std::fs::metadata(&pw).unwrap().mode() & 0o7777, 0o600);
        f.apply("services/web.toml", None).unwrap();
        assert!(!path.exists());
        f.apply("services/web.toml", None).unwrap();
        assert_eq!(f.read("services/web.toml").unwrap(), None);
        assert!(f.apply("authkey", Some(b"x")).is_err());
    }

    #[test]
    fn reads_every_document_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path(), true);
        assert_eq!(f.read_all().unwrap(), vec![], "nothing there yet");
        std::fs::write(dir.path().join("cluster.toml"), "c").unwrap();
        std::fs::create_dir(f.services_dir()).unwrap();
        for file in ["b.toml", "a.toml", ".hidden.toml", "notes.txt"] {
            std::fs::write(f.services_dir().join(file), file).unwrap();
        }
        std::fs::create_dir(f.services_dir().join("dir.toml")).unwrap();
        let names: Vec<String> = f.read_all().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["cluster.toml", "services/a.toml", "services/b.toml"]
        );
        std::fs::write(f.services_dir().join("big.toml"), vec![b'x'; MAX_DOC + 1]).unwrap();
        let e = f.read_all().unwrap_err();
        assert!(e.contains("too large to replicate"), "{e}");
    }
}
