//! `GET /ack/{token}` shows one incident — its alerts, age, the escalation steps done and
//! pending — with a confirm form; `POST /ack/{token}` (optional form field `by`)
//! acknowledges it, which cancels its pending steps. Chat apps fetch links to preview
//! them, so a GET never changes anything. A token lookout did not make, or one whose
//! incident is gone, is 404: the page reveals that incident and nothing else. No other
//! authentication: the token is the credential, as in an e-mailed link.

use std::sync::{Arc, LazyLock};

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Html;
use chrono::{DateTime, Utc};
use minijinja::{Environment, context};

use super::error::Error;
use crate::alert::{Notification, view};
use crate::notify::dispatcher::Dispatcher;
use crate::outbox::{Acked, IncidentPage, now_ms};
use crate::state::AppState;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("ack.html", include_str!("templates/ack.html"))
        .unwrap_or_else(|error| unreachable!("the built-in ack template parses: {error}"));
    env
});

/// Longest `by` kept.
const MAX_BY_CHARS: usize = 64;

#[derive(Debug, serde::Deserialize)]
pub struct AckForm {
    #[serde(default)]
    by: String,
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
) -> Result<Html<String>, Error> {
    let (dispatcher, id) = incident_of(&state, &token)?;
    let page = load(&dispatcher, id).await?;
    render(&state, page, None)
}

pub async fn acknowledge(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    Form(form): Form<AckForm>,
) -> Result<Html<String>, Error> {
    let (dispatcher, id) = incident_of(&state, &token)?;
    let by: String = form.by.trim().chars().take(MAX_BY_CHARS).collect();
    let by = (!by.is_empty()).then_some(by);
    let outcome = dispatcher
        .outbox()
        .ack(id, by.clone(), now_ms())
        .await
        .map_err(|error| Error::Unavailable(error.to_string()))?;
    let page = load(&dispatcher, id).await?;
    let message = match outcome {
        Acked::Now => {
            tracing::info!(incident = id, receiver = %page.receiver, by = by.as_deref().unwrap_or("-"), "incident acknowledged");
            dispatcher.metrics().acked(&page.receiver);
            "已确认，后续升级已取消 (acknowledged; pending escalation steps cancelled)"
        }
        Acked::Already { .. } => "此前已确认 (already acknowledged)",
        Acked::Resolved => "已恢复，无需确认 (already resolved)",
        Acked::Unknown => return Err(Error::NotFound),
    };
    render(&state, page, Some(message))
}

fn incident_of(state: &AppState, token: &str) -> Result<(Arc<Dispatcher>, i64), Error> {
    let dispatcher = state.relay().dispatcher().ok_or(Error::NotFound)?;
    let id = dispatcher.verify_ack(token).ok_or(Error::NotFound)?;
    Ok((dispatcher, id))
}

async fn load(dispatcher: &Dispatcher, id: i64) -> Result<IncidentPage, Error> {
    dispatcher
        .outbox()
        .incident(id)
        .await
        .map_err(|error| Error::Unavailable(error.to_string()))?
        .ok_or(Error::NotFound)
}

fn render(
    state: &AppState,
    page: IncidentPage,
    message: Option<&str>,
) -> Result<Html<String>, Error> {
    let config = state.config();
    let tz = config.timezone;
    let time = |ms: Option<i64>| {
        ms.and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| view::local_time(t, tz))
            .unwrap_or_else(|| "—".to_owned())
    };
    let age_ms = page.resolved_at_ms.unwrap_or_else(now_ms) - page.opened_at_ms;
    let age = humantime::format_duration(std::time::Duration::from_secs(
        u64::try_from(age_ms / 1000).unwrap_or(0),
    ))
    .to_string();
    let escalate = config
        .receivers
        .get(&page.receiver)
        .map(|r| r.escalate.clone())
        .unwrap_or_default();
    let steps: Vec<_> = escalate
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let fired = page
                .escalations
                .iter()
                .find(|(n, _)| *n == i)
                .map(|(_, at)| *at);
            let state = match (fired, page.state.as_str()) {
                (Some(at), _) => format!("sent {}", time(Some(at))),
                (None, "firing") => "pending".to_owned(),
                (None, _) => "cancelled".to_owned(),
            };
            context! {
                number => i + 1,
                after => humantime::format_duration(step.after).to_string(),
                channels => step.channels.join(", "),
                state,
            }
        })
        .collect();
    let alerts = Notification::parse(page.payload.as_bytes())
        .map(|n| {
            view::build(&n, tz, Utc::now())
                .alerts
                .iter()
                .map(|a| minijinja::Value::from(minijinja::value::Serde(a)))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    TEMPLATES
        .get_template("ack.html")
        .and_then(|t| {
            t.render(context! {
                summary => page.summary, receiver => page.receiver, state => page.state,
                opened => time(Some(page.opened_at_ms)), age,
                acked_at => time(page.acked_at_ms), acked_by => page.acked_by,
                resolved_at => time(page.resolved_at_ms),
                steps, alerts, message,
            })
        })
        .map(Html)
        .map_err(|error| Error::Internal(error.to_string()))
}
