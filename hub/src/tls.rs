//! HTTPS and `wss://` when the organiser has a certificate: the
//! certificate chain and key read from PEM files, and the TLS settings the
//! server accepts connections with. On plain `http://`, anyone on the
//! venue's network can read codes and choices in transit (docs/SECRECY.md).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::net::IpAddr;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why the certificate cannot be used; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read the private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the certificate {cert} does not go with the key {key}: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A certificate the hub serves with: the TLS settings, and what the
/// certificate says about the names participants may open.
#[derive(Clone)]
pub struct Certificate {
    pub config: Arc<rustls::ServerConfig>,
    end_entity: CertificateDer<'static>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("names", &self.dns_names())
            .finish_non_exhaustive()
    }
}

impl Certificate {
    /// Reads a certificate chain (`cert`, PEM, the server's certificate
    /// first) and its private key (`key`, PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Certificate, TlsError> {
        let (config, end_entity) = server_config(cert, key)?;
        Ok(Certificate { config, end_entity })
    }

    /// The host names the certificate is for (wildcards left out: they
    /// name no one host to open).
    pub fn dns_names(&self) -> Vec<String> {
        let Ok(cert) = webpki::EndEntityCert::try_from(&self.end_entity) else {
            return Vec::new();
        };
        cert.valid_dns_names()
            .filter(|n| !n.starts_with('*'))
            .map(str::to_owned)
            .collect()
    }

    /// Whether a browser opening `https://ip/` would accept it.
    pub fn covers(&self, ip: IpAddr) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(&self.end_entity) else {
            return false;
        };
        cert.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
            .is_ok()
    }
}

fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<rustls::ServerConfig>, CertificateDer<'static>), TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    let Some(end_entity) = certs.first().cloned() else {
        return Err(TlsError::Cert {
            path: cert.to_owned(),
            reason: "no PEM certificate in it".into(),
        });
    };
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_owned(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
    // The server speaks HTTP/1.1 only (the live door upgrades from it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), end_entity))
}
