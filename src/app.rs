//! The running application: the server loop, its drain on shutdown, and reloads on
//! SIGHUP. The state it serves is [`AppState`].
//!
//! `cli::main` binds the listener ([`bind`]), builds the state and calls [`run`].

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{self, Config};
use crate::http;
use crate::shutdown::Shutdown;
use crate::state::AppState;

/// Errors that stop lookout.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Channels(#[from] crate::notify::send::Error),
}

/// Binds the configured listen address.
pub async fn bind(config: &Config) -> Result<TcpListener, Error> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })
}

/// Serves until `shutdown` fires, then drains: requests in flight and sends in flight get
/// until `web.shutdown_timeout` after the signal, then lookout stops regardless (rows
/// whose send was cut stay pending and go out on the next start).
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: Shutdown,
) -> Result<(), Error> {
    reload_on_sighup(Arc::clone(&state), shutdown.clone());
    let router = http::router(Arc::clone(&state));
    if let Ok(addr) = listener.local_addr() {
        let tls = state.config().web.tls.is_some();
        tracing::info!(%addr, tls, version = env!("CARGO_PKG_VERSION"), "lookout listening");
    }
    state.set_ready(true);
    let settings = {
        let state = Arc::clone(&state);
        move || http::server::Settings::from(&state.config().web)
    };
    let deadline = http::server::serve(listener, router, settings, shutdown).await;
    if tokio::time::timeout_at(deadline, state.relay().stopped())
        .await
        .is_err()
    {
        tracing::warn!(
            "web.shutdown_timeout reached with sends in flight; their rows stay pending for the next start"
        );
    }
    tracing::info!("lookout stopped");
    Ok(())
}

fn reload_on_sighup(state: Arc<AppState>, shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /-/reload");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.wait() => return,
                received = hangup.recv() => {
                    if received.is_none() {
                        return;
                    }
                    tracing::info!("received SIGHUP; reloading configuration");
                    // The outcome is logged by `reload` itself.
                    let _ = state.reload().await;
                }
            }
        }
    });
}
