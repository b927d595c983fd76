//! `POST /-/outbox/redrive`: dead letters back to pending (see `outbox::Redrive`),
//! guarded like `/-/reload`. The body names what: JSON `{"channel": "ops"}` or
//! `{"ids": [12, 13]}`, or the same as a form (`channel=ops`, `id=12&id=13`) — what the
//! buttons on `/` send; a form post is answered with a redirect back to `/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth;
use super::error::Error;
use crate::outbox::{Redrive, now_ms};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    channel: Option<String>,
    ids: Option<Vec<i64>>,
}

pub async fn redrive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Error> {
    auth::check(state.config().web.auth.as_ref(), &headers)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let which = if form {
        parse_form(&body)?
    } else {
        parse_json(&body)?
    };
    if let Redrive::Channel(channel) = &which
        && !state.config().channels.contains_key(channel)
    {
        return Err(Error::BadRequest(format!("no channel named `{channel}`")));
    }
    let dispatcher = state
        .relay()
        .dispatcher()
        .ok_or_else(|| Error::Unavailable("the outbox is not open".to_owned()))?;
    let done = dispatcher
        .outbox()
        .redrive(which, now_ms())
        .await
        .map_err(|error| Error::Unavailable(error.to_string()))?;
    let channels: Vec<String> = done.channels.keys().cloned().collect();
    for (channel, count) in &done.channels {
        dispatcher.metrics().redriven(channel, *count);
    }
    dispatcher.wake(&channels);
    tracing::info!(redriven = done.total(), skipped = done.skipped, channels = ?channels, "dead letters redriven");
    if form {
        return Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response());
    }
    let by_channel: BTreeMap<&str, usize> = done
        .channels
        .iter()
        .map(|(c, n)| (c.as_str(), *n))
        .collect();
    Ok(Json(serde_json::json!({
        "redriven": done.total(),
        "channels": by_channel,
        "skipped_payload_gone": done.skipped,
    }))
    .into_response())
}

fn parse_json(body: &[u8]) -> Result<Redrive, Error> {
    let parsed: Body = serde_json::from_slice(body).map_err(|error| {
        Error::BadRequest(format!(
            "expected {{\"channel\": \"…\"}} or {{\"ids\": [ … ]}}: {error}"
        ))
    })?;
    choose(parsed.channel, parsed.ids.unwrap_or_default())
}

fn parse_form(body: &[u8]) -> Result<Redrive, Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::BadRequest("the form is not UTF-8".to_owned()))?;
    let (mut channel, mut ids) = (None, Vec::new());
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(&value.replace('+', " "))
            .decode_utf8()
            .map_err(|_| Error::BadRequest(format!("`{key}` is not UTF-8")))?
            .into_owned();
        match key {
            "channel" => channel = Some(value),
            "id" => ids.push(
                value
                    .parse()
                    .map_err(|_| Error::BadRequest(format!("id `{value}` is not a number")))?,
            ),
            other => return Err(Error::BadRequest(format!("unknown field `{other}`"))),
        }
    }
    choose(channel, ids)
}

fn choose(channel: Option<String>, ids: Vec<i64>) -> Result<Redrive, Error> {
    match (channel, ids.is_empty()) {
        (Some(channel), true) => Ok(Redrive::Channel(channel)),
        (None, false) => Ok(Redrive::Ids(ids)),
        (Some(_), false) => Err(Error::BadRequest(
            "name either a channel or ids, not both".to_owned(),
        )),
        (None, true) => Err(Error::BadRequest(
            "name the dead letters to redrive: a channel or ids".to_owned(),
        )),
    }
}
