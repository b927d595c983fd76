//! `lookout outbox redrive`: asks the running lookout (the one `--config` describes) to
//! send its dead letters again, through `POST /-/outbox/redrive` with the configured
//! `web.auth` credentials. The outbox has one writer — the server — so the command never
//! opens the database itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;

use crate::config::{Config, InboundAuth};

/// Redrives the dead letters of `channel`, or those with `ids`.
pub fn redrive(config: &Config, channel: Option<&str>, ids: &[i64], url: Option<&str>) -> ExitCode {
    let body = match (channel, ids.is_empty()) {
        (Some(channel), true) => serde_json::json!({ "channel": channel }),
        (None, false) => serde_json::json!({ "ids": ids }),
        _ => {
            eprintln!("name the dead letters: --channel C, or --id N (repeatable)");
            return ExitCode::FAILURE;
        }
    };
    let base = url.map_or_else(|| own_url(config), |u| u.trim_end_matches('/').to_owned());
    let endpoint = format!("{base}/-/outbox/redrive");
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Its own server on loopback: the request never leaves the host, so a certificate
    // made for the public name is not checked here.
    let client = match reqwest::Client::builder()
        .danger_accept_invalid_certs(config.web.tls.is_some() && url.is_none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("cannot build an HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut request = client.post(&endpoint).json(&body);
    request = match &config.web.auth {
        Some(InboundAuth::Bearer(token)) => request.bearer_auth(token.expose()),
        Some(InboundAuth::Basic { username, password }) => {
            request.basic_auth(username, Some(password.expose()))
        }
        None => request,
    };
    let answer = runtime.block_on(async {
        let response = request.send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    });
    match answer {
        Ok((status, text)) if status.is_success() => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Ok((status, text)) => {
            eprintln!("{endpoint}: {status}: {}", text.trim_end());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("{endpoint}: {error} (is lookout running with this configuration?)");
            ExitCode::FAILURE
        }
    }
}

/// The configured listener, as reached from this host.
fn own_url(config: &Config) -> String {
    let scheme = if config.web.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let host = match config.listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(host, config.listen.port()))
}
