//! `POST /alertmanager/{receiver}`: Alertmanager's webhook. Answers 2xx only once the
//! notification is committed to the outbox; every refusal names its reason in JSON.
//!
//! | answer | when |
//! |---|---|
//! | 200 `{"status":"accepted"}` / `{"status":"duplicate"}` | committed (or already committed within the dedupe window) |
//! | 400 | malformed JSON or not an Alertmanager v4 payload (the body names the field) |
//! | 401 | missing or wrong credentials (`web.auth`) |
//! | 404 | no such receiver |
//! | 413 | body over `web.max_body_bytes` |
//! | 415 | not `application/json` |
//! | 503 | the outbox cannot commit — Alertmanager retries |

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;

use super::auth;
use super::error::Error;
use crate::alert::Notification;
use crate::notify::relay::AcceptError;
use crate::outbox::Accepted;
use crate::state::AppState;

pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(receiver): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), Error> {
    let result = handle(&state, &receiver, &headers, body).await;
    let code = match &result {
        Ok((status, _)) => status.as_u16(),
        Err(error) => error.status().as_u16(),
    };
    // Unknown names are not labels: anyone could mint new series by posting to them.
    let label = if state.config().receivers.contains_key(&receiver) {
        receiver.as_str()
    } else {
        "_unknown"
    };
    state.relay().metrics().webhook(label, code);
    result
}

async fn handle(
    state: &AppState,
    receiver: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), Error> {
    let config = state.config();
    auth::check(config.web.auth.as_ref(), headers)?;
    if !config.receivers.contains_key(receiver) {
        return Err(Error::webhook(
            StatusCode::NOT_FOUND,
            format!("unknown receiver `{receiver}`"),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Error::webhook(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected Content-Type application/json, got `{content_type}`"),
        ));
    }
    let limit = config.web.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        Error::webhook(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than web.max_body_bytes ({limit} bytes)"),
        )
    })?;
    let notification = Notification::parse(&bytes).map_err(|error| {
        Error::webhook(
            StatusCode::BAD_REQUEST,
            format!("not an Alertmanager notification: {error}"),
        )
    })?;
    let payload = String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::webhook(StatusCode::BAD_REQUEST, "body is not UTF-8".to_owned()))?;
    let metrics = state.relay().metrics();
    let accepted = state.relay().accept(&config, receiver, &notification, payload).await.map_err(|error| {
        tracing::error!(%error, receiver, "cannot commit a notification; answering 503 so Alertmanager retries");
        let message = match error {
            AcceptError::Unavailable(reason) => format!("outbox unavailable: {reason}"),
            AcceptError::Outbox(error) => format!("outbox cannot commit: {error}"),
        };
        Error::webhook(StatusCode::SERVICE_UNAVAILABLE, message)
    })?;
    match accepted {
        Accepted::Stored { id, deliveries } => {
            for status in ["firing", "resolved"] {
                let count = notification
                    .alerts
                    .iter()
                    .filter(|a| a.status.as_str() == status)
                    .count();
                if count > 0 {
                    metrics.alerts(receiver, status, count as u64);
                }
            }
            Ok((
                StatusCode::OK,
                Json(json!({ "status": "accepted", "notification": id, "deliveries": deliveries })),
            ))
        }
        Accepted::Duplicate { id } => {
            metrics.duplicate(receiver);
            Ok((
                StatusCode::OK,
                Json(json!({ "status": "duplicate", "notification": id })),
            ))
        }
    }
}
