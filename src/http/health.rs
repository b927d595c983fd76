//! Liveness, readiness and configuration reload.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::{auth, error::Error};
use crate::state::AppState;

/// `GET /-/healthy`: the process is up.
pub async fn healthy() -> &'static str {
    "lookout is healthy.\n"
}

/// `GET /-/ready`: the configuration is loaded and the server accepts work.
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if state.is_ready() {
        (StatusCode::OK, "lookout is ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "lookout is not ready.\n")
    }
}

/// `POST /-/reload`: re-read the configuration file; a bad file keeps the old one. The
/// answer lists the changes that need a restart, one per line.
pub async fn reload(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<String, Error> {
    auth::check(state.config().web.auth.as_ref(), &headers)?;
    state
        .reload()
        .await
        .map(|pending| {
            let mut answer = "configuration reloaded\n".to_owned();
            for change in pending {
                answer.push_str(&format!("needs a restart: {change}\n"));
            }
            answer
        })
        .map_err(|error| {
            Error::ReloadFailed(format!(
                "configuration not reloaded; keeping the running one:\n{error}"
            ))
        })
}
