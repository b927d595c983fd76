//! `web.tls`: the listener's certificate, key and optional client CA, read and checked at
//! load time into the rustls server configuration the accept loop uses. Reloading the
//! configuration reads the files again, so a renewed certificate applies without a
//! restart.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::raw::RawWebTls;
use crate::configfile::{Checker, join};

const PATH: &str = "web.tls";

/// The listener's TLS, as loaded.
#[derive(Debug, Clone)]
pub struct WebTls {
    pub server: Arc<ServerConfig>,
    /// Whether clients must present a certificate signed by `client_ca_file`.
    pub client_auth: bool,
}

impl Checker<'_> {
    pub(super) fn web_tls(&mut self, raw: &RawWebTls) -> Option<WebTls> {
        let cert_file = self.required(PATH, "cert_file", raw.cert_file.as_deref());
        let key_file = self.required(PATH, "key_file", raw.key_file.as_deref());
        let certs = cert_file.and_then(|file| self.certificates(PATH, "cert_file", file));
        let key = key_file.and_then(|file| self.private_key(PATH, "key_file", file));
        let client_roots = match raw.client_ca_file.as_deref() {
            None => None,
            Some(file) => {
                let certs = self.certificates(PATH, "client_ca_file", file)?;
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    if let Err(error) = roots.add(cert) {
                        self.error(
                            &join(PATH, "client_ca_file"),
                            format!("`{file}`: not a usable CA certificate: {error}"),
                        );
                        return None;
                    }
                }
                Some(roots)
            }
        };
        let (certs, key) = (certs?, key?);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| self.error(PATH, format!("TLS: {error}")))
            .ok()?;
        let client_auth = client_roots.is_some();
        let builder = match client_roots {
            None => builder.with_no_client_auth(),
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|error| {
                            self.error(&join(PATH, "client_ca_file"), format!("{error}"));
                        })
                        .ok()?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder
            .with_single_cert(certs, key)
            .map_err(|error| {
                self.error(
                    &join(PATH, "key_file"),
                    format!("the key does not fit the certificate: {error}"),
                );
            })
            .ok()?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(WebTls {
            server: Arc::new(server),
            client_auth,
        })
    }

    /// The PEM certificates in `file`, named at `path.key`.
    pub(super) fn certificates(
        &mut self,
        path: &str,
        key: &str,
        file: &str,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let pem = self.file(path, key, file)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .filter_map(Result::ok)
            .collect();
        if certs.is_empty() {
            self.error(
                &join(path, key),
                format!("`{file}` holds no PEM certificate"),
            );
            return None;
        }
        Some(certs)
    }

    /// The PEM private key in `file` (PKCS#8, PKCS#1 or SEC1), named at `path.key`.
    pub(super) fn private_key(
        &mut self,
        path: &str,
        key: &str,
        file: &str,
    ) -> Option<PrivateKeyDer<'static>> {
        let name = key.strip_suffix("_file").unwrap_or(key);
        let pem = self.secret(path, name, None, Some(&file.to_owned()))?;
        PrivateKeyDer::from_pem_slice(pem.expose().as_bytes())
            .map_err(|error| {
                self.error(
                    &join(path, key),
                    format!("`{file}` holds no PEM private key: {error}"),
                );
            })
            .ok()
    }
}
