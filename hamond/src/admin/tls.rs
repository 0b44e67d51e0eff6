//! The admin endpoint's TLS identity: a self-signed certificate and its
//! key, made with `rcgen` on first start into hamond's state dir
//! ([`CERT_FILE`], and [`KEY_FILE`] mode 0600), and the rustls settings of
//! both ends (TLS 1.3 only, the `ring` provider). Clients trust the
//! certificate by its SHA-256 [`fingerprint`] (pinned on first use), so its
//! names and dates do not matter.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

/// The certificate, in the state dir (PEM).
pub const CERT_FILE: &str = "admin-cert.pem";
/// Its private key, in the state dir (PEM, mode 0600).
pub const KEY_FILE: &str = "admin-key.pem";

/// The crypto provider of both ends.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// SHA-256 of a certificate (DER) as colon-separated uppercase hex, the
/// form `openssl x509 -noout -fingerprint -sha256` prints.
pub fn fingerprint(der: &[u8]) -> String {
    let mut out = String::with_capacity(95);
    for (i, b) in Sha256::digest(der).iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The endpoint's certificate and key.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// Made just now (there was none).
    pub created: bool,
}

impl Identity {
    /// The certificate's [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }
}

/// Loads the certificate and key from `state_dir`, or makes new ones if
/// either file is missing. A key file that group or others may access, or
/// files that do not parse, are errors that say what to do.
pub fn load_or_create(state_dir: &Path) -> Result<Identity, String> {
    let cert_path = state_dir.join(CERT_FILE);
    let key_path = state_dir.join(KEY_FILE);
    let key = haschema::private_file::read(&key_path, "the admin endpoint's TLS key")?;
    let cert = match std::fs::read(&cert_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{}: cannot read: {e}", cert_path.display())),
    };
    let (Some(key), Some(cert)) = (key, cert) else {
        return create(&cert_path, &key_path);
    };
    let redo = format!(
        "remove {} and {} to have hamond make a new certificate (clients then refuse it until its new fingerprint is accepted)",
        cert_path.display(),
        key_path.display()
    );
    let cert = CertificateDer::from_pem_slice(&cert).map_err(|e| {
        format!(
            "{}: not a PEM certificate ({e}); {redo}",
            cert_path.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
        format!(
            "{}: not a PEM private key ({e}); {redo}",
            key_path.display()
        )
    })?;
    Ok(Identity {
        cert,
        key,
        created: false,
    })
}

/// Makes and stores a new self-signed certificate and key.
fn create(cert_path: &Path, key_path: &Path) -> Result<Identity, String> {
    let made = rcgen::generate_simple_self_signed(vec!["hamond-admin".to_owned()])
        .map_err(|e| format!("cannot make a TLS certificate: {e}"))?;
    let key_pem = made.signing_key.serialize_pem();
    // The key first: a certificate on disk always has its key.
    haschema::private_file::write(key_path, key_pem.as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", key_path.display()))?;
    haschema::private_file::write(cert_path, made.cert.pem().as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("the new TLS key does not parse: {e}"))?;
    Ok(Identity {
        cert: made.cert.der().clone(),
        key,
        created: true,
    })
}

/// The server side: TLS 1.3, this identity, no client certificates.
pub fn server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, String> {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![id.cert.clone()], id.key.clone_key())
        })
        .map(Arc::new)
        .map_err(|e| format!("cannot set up TLS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn made_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert!(first.created);
        let key_mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().mode();
        assert_eq!(key_mode & 0o777, 0o600);
        server_config(&first).unwrap();
        let again = load_or_create(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.fingerprint(), first.fingerprint());
        // Without the certificate, a new identity.
        std::fs::remove_file(dir.path().join(CERT_FILE)).unwrap();
        let new = load_or_create(dir.path()).unwrap();
        assert!(new.created);
        assert_ne!(new.fingerprint(), first.fingerprint());
    }

    #[test]
    fn refuses_a_readable_key() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(dir.path()).err().unwrap();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::write(dir.path().join(CERT_FILE), "junk").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_or_create(dir.path()).err().unwrap();
        assert!(e.contains("to have hamond make a new certificate"), "{e}");
    }

    #[test]
    fn fingerprint_format() {
        let f = fingerprint(b"abc");
        assert_eq!(f.len(), 95);
        assert!(f.starts_with("BA:78:16:BF:8F:01:CF:EA"), "{f}");
    }
}
