//! TLS material from PEM files: server configs for the ingest and admin listeners (optionally
//! requiring client certificates), and the roots and identity for `https://` cluster endpoints.
//!
//! Certificates are always verified; nothing here can turn verification off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {}: {reason}", path.display())]
    File {
        /// What the file should hold (`certificate`, `private key`, `CA bundle`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificates and key do not make a valid configuration (e.g. the key does not match).
    #[error("TLS configuration from {}: {source}", cert.display())]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// Cause.
        #[source]
        source: rustls::Error,
    },
}

fn file_error(what: &'static str, path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Every certificate in a PEM file; an error when there is none.
pub fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))?;
    if certs.is_empty() {
        return Err(file_error(what, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error("private key", path, e))
}

/// Root store from a CA bundle.
pub fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in certificates("CA bundle", path)? {
        store
            .add(cert)
            .map_err(|e| file_error("CA bundle", path, e))?;
    }
    Ok(store)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config for a listener: its certificate chain and key, HTTP/1.1 by ALPN, and client
/// certificates required and verified against `client_ca` when it is set.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates("certificate", &tls.cert)?;
    let key = private_key(&tls.key)?;
    let config_error = |source| TlsError::Config {
        cert: tls.cert.clone(),
        source,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| file_error("CA bundle", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(config_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_a_generated_certificate_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls = TlsConfig {
            cert: write(dir.path(), "cert.pem", &cert.pem()),
            key: write(dir.path(), "key.pem", &key.serialize_pem()),
            client_ca: Some(write(dir.path(), "ca.pem", &cert.pem())),
        };
        let config = server_config(&tls).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn names_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.pem", "not pem at all\n");
        let missing = dir.path().join("missing.pem");
        let tls = TlsConfig {
            cert: empty.clone(),
            key: missing.clone(),
            client_ca: None,
        };
        let e = server_config(&tls).unwrap_err().to_string();
        assert!(e.contains("certificate") && e.contains("empty.pem"), "{e}");
        assert!(e.contains("no PEM certificate"), "{e}");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let tls = TlsConfig {
            cert: write(dir.path(), "cert.pem", &cert.pem()),
            key: missing,
            client_ca: None,
        };
        let e = server_config(&tls).unwrap_err().to_string();
        assert!(
            e.contains("private key") && e.contains("missing.pem"),
            "{e}"
        );
        // A key that does not belong to the certificate.
        let other = rcgen::KeyPair::generate().unwrap();
        let tls = TlsConfig {
            cert: tls.cert,
            key: write(dir.path(), "other.pem", &other.serialize_pem()),
            client_ca: None,
        };
        let e = server_config(&tls).unwrap_err().to_string();
        assert!(e.contains("TLS configuration from"), "{e}");
    }
}
