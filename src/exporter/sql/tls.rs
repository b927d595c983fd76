//! rustls for database connections: one client configuration per [`SslMode`] (used as is
//! by PostgreSQL; MySQL's driver builds its own from the same settings), and a way to find
//! the TLS failure inside a driver's error.
//!
//! | mode | chain checked | host name checked |
//! |---|---|---|
//! | `prefer`, `require` without `ca_file` | no (encryption only) | no |
//! | `require` with `ca_file`, `verify-ca` | yes | no |
//! | `verify-full` | yes | yes |

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::Error;
use crate::config::{DatabaseTls, SslMode};

/// The client configuration for `tls` (any mode: with `disable` it is simply not used).
pub(crate) fn client_config(tls: &DatabaseTls) -> Result<ClientConfig, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = if tls.mode.verifies(tls.ca_pem.is_some()) {
        let webpki = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(tls)?),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|error| Error::Config(format!("TLS: {error}")))?;
        if tls.mode == SslMode::VerifyFull {
            webpki
        } else {
            Arc::new(AnyName(webpki))
        }
    } else {
        Arc::new(Unverified(provider.signature_verification_algorithms))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Config(format!("TLS: {error}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &tls.identity {
        None => Ok(builder.with_no_client_auth()),
        Some(identity) => {
            let chain = certificates(&identity.cert_pem)?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.expose().as_bytes())
                .map_err(|error| Error::Config(format!("tls.key_file: {error}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|error| Error::Config(format!("tls.cert_file/key_file: {error}")))
        }
    }
}

/// `tls.ca_file`'s certificates, or the Mozilla roots without one.
fn roots(tls: &DatabaseTls) -> Result<RootCertStore, Error> {
    let Some(pem) = &tls.ca_pem else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut roots = RootCertStore::empty();
    for cert in certificates(pem)? {
        roots
            .add(cert)
            .map_err(|error| Error::Config(format!("tls.ca_file: {error}")))?;
    }
    Ok(roots)
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|error| Error::Config(format!("TLS certificate: {error}")))
}

/// The TLS failure somewhere in `error`'s chain, including inside an `io::Error` (how
/// both drivers pass a failed handshake on).
pub(super) fn rustls_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| rustls_cause(inner))
        {
            return Some(inner);
        }
        next = current.source();
    }
    None
}

/// A name the certificate is valid for, when verification failed on the host name only
/// (rustls checks the chain first, so the chain was good). rustls reports the presented
/// names as text (`DnsName("db.example")`, `IpAddress(10.0.0.5)`); a wildcard yields a
/// name it covers. `None` when there is no such name: then nothing is accepted.
pub(super) fn presented_name(error: &rustls::Error) -> Option<String> {
    let rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
        presented,
        ..
    }) = error
    else {
        return None;
    };
    presented.iter().find_map(|entry| {
        if let Some(dns) = entry
            .strip_prefix("DnsName(\"")
            .and_then(|rest| rest.strip_suffix("\")"))
        {
            let name = match dns.strip_prefix("*.") {
                Some(parent) => format!("lookout.{parent}"),
                None => dns.to_owned(),
            };
            return ServerName::try_from(name.as_str()).is_ok().then_some(name);
        }
        let ip = entry.strip_prefix("IpAddress(")?.strip_suffix(')')?;
        ip.parse::<std::net::IpAddr>()
            .is_ok()
            .then(|| ip.to_owned())
    })
}

/// `verify-ca`: the chain is checked, any host name is accepted.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: encryption against a passive listener only, as
/// libpq and the MySQL client do; the handshake's signatures are still checked.
#[derive(Debug)]
struct Unverified(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch(presented: &[&str]) -> rustls::Error {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("127.0.0.1").expect("ip").to_owned(),
            presented: presented.iter().map(|p| (*p).to_owned()).collect(),
        })
    }

    #[test]
    fn a_presented_name_is_one_the_certificate_covers() {
        assert_eq!(
            presented_name(&mismatch(&[r#"DnsName("db.internal")"#])).as_deref(),
            Some("db.internal")
        );
        assert_eq!(
            presented_name(&mismatch(&[r#"DnsName("*.rds.example")"#])).as_deref(),
            Some("lookout.rds.example")
        );
        assert_eq!(
            presented_name(&mismatch(&["DirectoryName", "IpAddress(10.0.0.5)"])).as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(presented_name(&mismatch(&["Unsupported(0x88)"])), None);
        assert_eq!(
            presented_name(&rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            None
        );
    }
}
