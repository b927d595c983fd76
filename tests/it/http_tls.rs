//! `web.tls`: HTTPS on the listener with certificates from a throwaway CA (`openssl`).
//! A real Prometheus scrapes over HTTPS with a `tls_config`; with `client_ca_file` a
//! client without a certificate from that CA fails, one with it succeeds; a replaced
//! certificate file is served after SIGHUP, without a restart; plain HTTP is refused.

use std::sync::Arc;
use std::time::Duration;

use crate::support::certs::Certs;
use crate::support::{Lookout, Prometheus, http_get, poll_until};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn config(certs: &Certs, client_ca: bool) -> String {
    let mut tls = format!(
        "{{ cert_file: '{}', key_file: '{}'",
        certs.path("server.pem").display(),
        certs.path("server.key").display()
    );
    if client_ca {
        tls.push_str(&format!(
            ", client_ca_file: '{}'",
            certs.path("ca.pem").display()
        ));
    }
    tls.push_str(" }");
    format!("host: {{ enabled: true }}\nweb:\n  tls: {tls}\n")
}

fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// GET `path` over HTTPS, trusting the test CA, with the client certificate if asked.
fn get(
    lookout: &Lookout,
    certs: &Certs,
    path: &str,
    identity: bool,
) -> Result<(u16, String), String> {
    runtime().block_on(async {
        let ca = std::fs::read(certs.path("ca.pem")).expect("ca");
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?);
        if identity {
            let mut pem = std::fs::read(certs.path("client.pem")).expect("client cert");
            pem.extend(std::fs::read(certs.path("client.key")).expect("client key"));
            builder =
                builder.identity(reqwest::Identity::from_pem(&pem).map_err(|e| e.to_string())?);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let url = format!("https://localhost:{}{path}", lookout.addr().port());
        let response = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    })
}

/// The certificate the server presents (its DER), from a bare TLS handshake.
fn served_certificate(lookout: &Lookout, certs: &Certs) -> Vec<u8> {
    runtime().block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_file(certs.path("ca.pem")).expect("ca");
        roots.add(ca).expect("ca root");
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(lookout.addr())
            .await
            .expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = connector.connect(name, tcp).await.expect("handshake");
        tls.get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| cert.as_ref().to_vec())
            .expect("a server certificate")
    })
}

fn pem_der(path: &std::path::Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .expect("certificate")
        .as_ref()
        .to_vec()
}

fn ready(lookout: &Lookout, certs: &Certs, identity: bool) {
    poll_until(
        Duration::from_secs(20),
        "lookout ready over HTTPS",
        || match get(lookout, certs, "/-/ready", identity) {
            Ok((200, _)) => Ok(()),
            other => Err(format!("{other:?}\n{}", lookout.logs())),
        },
    );
}

#[test]
fn prometheus_scrapes_over_https_and_plain_http_is_refused() {
    let Some(certs) = Certs::make() else { return };
    let lookout = Lookout::start_tls(&config(&certs, false));
    ready(&lookout, &certs, false);
    let (status, body) = get(&lookout, &certs, "/metrics", false).expect("HTTPS scrape");
    assert_eq!(status, 200);
    assert!(body.contains("node_load1"), "{body}");
    let plain = http_get(&lookout.url("/metrics"), &[]);
    assert!(
        !matches!(&plain, Ok(response) if response.status == 200),
        "plain HTTP must not be served"
    );

    let prometheus_config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: lookout\n    scheme: https\n    tls_config:\n      ca_file: '{}'\n      server_name: localhost\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        certs.path("ca.pem").display(),
        lookout.addr().port()
    );
    let Some(prometheus) = Prometheus::start(&prometheus_config) else {
        return;
    };
    poll_until(Duration::from_secs(30), "an HTTPS scrape", || {
        let up = prometheus.query_vector("up{job=\"lookout\"}");
        match up.first() {
            Some((_, v)) if *v == 1.0 => Ok(()),
            other => Err(format!("{other:?} {:?}", prometheus.targets("lookout"))),
        }
    });
}

#[test]
fn with_a_client_ca_only_clients_with_its_certificate_get_in() {
    let Some(certs) = Certs::make() else { return };
    let lookout = Lookout::start_tls(&config(&certs, true));
    ready(&lookout, &certs, true);
    let with = get(&lookout, &certs, "/metrics", true);
    assert!(matches!(with, Ok((200, _))), "{with:?}");
    let without = get(&lookout, &certs, "/metrics", false);
    assert!(without.is_err(), "no client certificate, yet: {without:?}");
}

#[test]
fn a_renewed_certificate_is_served_after_sighup() {
    let Some(certs) = Certs::make() else { return };
    let lookout = Lookout::start_tls(&config(&certs, false));
    ready(&lookout, &certs, false);
    let first = served_certificate(&lookout, &certs);
    assert_eq!(first, pem_der(&certs.path("server.pem")));

    certs.issue_server("renewed");
    for (from, to) in [("renewed.pem", "server.pem"), ("renewed.key", "server.key")] {
        std::fs::copy(certs.path(from), certs.path(to)).expect("replace the certificate");
    }
    let renewed = pem_der(&certs.path("server.pem"));
    assert_ne!(first, renewed, "a new serial");
    lookout.signal("HUP");
    poll_until(Duration::from_secs(10), "the renewed certificate", || {
        if served_certificate(&lookout, &certs) == renewed {
            Ok(())
        } else {
            Err(lookout.logs())
        }
    });
    assert!(lookout.logs().contains("configuration reloaded"));
}

#[test]
fn a_key_that_does_not_fit_is_a_config_error() {
    let Some(certs) = Certs::make() else { return };
    let yaml = format!(
        "web:\n  tls: {{ cert_file: '{}', key_file: '{}' }}\n",
        certs.path("server.pem").display(),
        certs.path("client.key").display()
    );
    let path = certs.dir().join("bad.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let output = std::process::Command::new(crate::support::lookout::binary())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run check-config");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("bad.yaml:2:") && stderr.contains("web.tls.key_file"),
        "{stderr}"
    );
}
