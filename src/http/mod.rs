//! The HTTP surface. Every route is listed here, in one place.
//!
//! | route | handler |
//! |---|---|
//! | `GET /metrics` | [`metrics::scrape`] |
//! | `GET /-/healthy` | [`health::healthy`] |
//! | `GET /-/ready` | [`health::ready`] |
//! | `POST /-/reload` | [`health::reload`] (guarded by `web.auth`) |
//! | `POST /-/outbox/redrive` | [`outbox::redrive`] (guarded by `web.auth`) |
//! | `POST /alertmanager/{receiver}` | [`webhook::receive`] (guarded by `web.auth`) |
//! | `GET /ack/{token}` | [`ack::show`] (the token is the credential) |
//! | `POST /ack/{token}` | [`ack::acknowledge`] |
//! | `GET /` | [`status::page`] |

pub mod ack;
pub mod auth;
pub mod error;
pub mod health;
pub mod metrics;
pub mod outbox;
pub mod server;
pub mod status;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

/// Builds the router over the shared application state.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config().web.max_body_bytes;
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .route("/-/healthy", get(health::healthy).head(health::healthy))
        .route("/-/ready", get(health::ready).head(health::ready))
        .route("/-/reload", post(health::reload).put(health::reload))
        .route("/-/outbox/redrive", post(outbox::redrive))
        .route(
            "/alertmanager/{receiver}",
            post(webhook::receive).layer(DefaultBodyLimit::disable()),
        )
        .route("/ack/{token}", get(ack::show).post(ack::acknowledge))
        .route("/", get(status::page))
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

#[cfg(test)]
mod tests;
