//! `GET /`: the status page — endpoints, configuration, query health, channel health
//! (pending, oldest pending, last success and failure, pause; channels removed from the
//! config while rows remain are listed too), dead letters and recent notifications.
//! Rendered by minijinja with HTML auto-escaping; no secret reaches it.
//!
//! **Invariant:** the page never waits on the outbox writer: channel counts come from the
//! gauge snapshot, rows from the outbox's read-only connection with the summaries stored
//! at accept time (no payload is read or parsed).

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::response::Html;
use chrono::{DateTime, Utc};
use minijinja::{Environment, context};

use super::error::Error;
use crate::config::Config;
use crate::exporter::sql::history;
use crate::outbox::Row;
use crate::state::AppState;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("status.html", include_str!("templates/status.html"))
        .unwrap_or_else(|error| unreachable!("the built-in status template parses: {error}"));
    env
});

/// How many dead letters and recent notifications the page lists.
const ROWS: usize = 20;

pub async fn page(State(state): State<Arc<AppState>>) -> Result<Html<String>, Error> {
    let config = state.config();
    let tz = config.timezone;
    let time = |ms: Option<i64>| -> String {
        ms.and_then(DateTime::<Utc>::from_timestamp_millis)
            .map(|t| crate::alert::view::local_time(t, tz))
            .unwrap_or_else(|| "—".to_owned())
    };
    let queries: Vec<_> = state
        .exporter()
        .sql()
        .status()
        .into_iter()
        .map(|(q, s, tracks)| {
            #[allow(clippy::cast_sign_loss)]
            let now = Utc::now().timestamp().max(0) as u64;
            let values: Vec<_> = tracks
                .iter()
                .map(|t| {
                    context! {
                        name => t.name.clone(),
                        value => t.latest().map_or_else(|| "—".to_owned(), |v| format!("{v}")),
                        spark => minijinja::Value::from_safe_string(history::sparkline(t, now, 96, 20)),
                    }
                })
                .collect();
            context! {
                name => q.name, database => q.database, interval => humantime::format_duration(q.interval).to_string(),
                success => s.success, series => s.series, runs => s.runs, errors => s.errors, values,
            }
        })
        .collect();
    let snapshot = state.relay().metrics().snapshot();
    let dispatcher = state.relay().dispatcher();
    let statuses = dispatcher.as_ref().map(|d| d.status()).unwrap_or_default();
    let mut channels: Vec<_> = config
        .channels
        .values()
        .map(|c| {
            let gauges = snapshot.channels.iter().find(|g| g.channel == c.name);
            let status = statuses.get(&c.name).cloned().unwrap_or_default();
            let paused = status.paused_until_ms.filter(|until| *until > Utc::now().timestamp_millis());
            let budget = dispatcher.as_ref().map_or_else(String::new, |d| {
                let (used, allowed) = d.budget_use(c);
                format!("{used}/{allowed} per {}", humantime::format_duration(c.delivery.rate_limit.per))
            });
            context! {
                name => c.name.clone(), kind => c.kind.name(), budget,
                pending => gauges.map_or(0, |g| g.pending),
                oldest => gauges.filter(|g| g.pending > 0).map_or_else(|| "—".to_owned(), |g| format!("{:.0} s", g.oldest_pending_age_seconds)),
                dead => gauges.map_or(0, |g| g.dead),
                last_success => time(status.last_success_ms),
                last_failure => status.last_failure.map(|(at, why)| format!("{} {why}", time(Some(at)))).unwrap_or_else(|| "—".to_owned()),
                paused_until => time(paused),
            }
        })
        .collect();
    // Rows stay in the outbox when their channel leaves the config (they go out if it
    // comes back); show them rather than hide them.
    channels.extend(
        snapshot
            .channels
            .iter()
            .filter(|g| !config.channels.contains_key(&g.channel))
            .map(|g| {
                context! {
                    name => g.channel.clone(), kind => "removed from config", removed => true,
                    pending => g.pending,
                    oldest => if g.pending > 0 { format!("{:.0} s", g.oldest_pending_age_seconds) } else { "—".to_owned() },
                    dead => g.dead, last_success => "—", last_failure => "—", paused_until => "—",
                }
            }),
    );
    let (dead_letters, recent) = match &dispatcher {
        Some(d) => (
            d.outbox()
                .latest(Some("dead"), ROWS)
                .await
                .unwrap_or_default(),
            d.outbox().latest(None, ROWS).await.unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let incidents: Vec<_> = match &dispatcher {
        Some(d) => d.outbox().open_incidents().await.unwrap_or_default(),
        None => Vec::new(),
    }
    .into_iter()
    .map(|i| {
        let now = Utc::now().timestamp_millis();
        let steps = config.receivers.get(&i.receiver).map(|r| r.escalate.as_slice()).unwrap_or_default();
        let next = match steps.get(i.steps_done) {
            Some(step) if !i.acked => format!(
                "{} at +{} ({})",
                i.steps_done + 1,
                humantime::format_duration(step.after),
                step.channels.join(", ")
            ),
            _ => "—".to_owned(),
        };
        let age = std::time::Duration::from_secs(u64::try_from((now - i.opened_at_ms) / 1000).unwrap_or(0));
        context! {
            summary => i.summary, receiver => i.receiver, next,
            age => humantime::format_duration(age).to_string(),
            acked => if i.acked { format!("{} {}", i.acked_by.unwrap_or_default(), time(i.acked_at_ms)) } else { "no".to_owned() },
        }
    })
    .collect();
    let rows = |rows: Vec<Row>| -> Vec<_> {
        rows.into_iter()
            .map(|r| {
                context! {
                    id => r.id, channel => r.channel, receiver => r.receiver, summary => r.summary,
                    received => time(Some(r.received_at_ms)), state => r.state, attempts => r.attempts,
                    error => r.last_error.unwrap_or_default(),
                }
            })
            .collect()
    };
    render(
        &config,
        Tables {
            queries,
            channels,
            incidents,
            dead_letters: rows(dead_letters),
            recent: rows(recent),
        },
        state.relay().open_error(),
        state.alert_source(),
    )
}

/// The page's tables, rendered rows.
struct Tables {
    queries: Vec<minijinja::Value>,
    channels: Vec<minijinja::Value>,
    incidents: Vec<minijinja::Value>,
    dead_letters: Vec<minijinja::Value>,
    recent: Vec<minijinja::Value>,
}

fn render(
    config: &Config,
    tables: Tables,
    outbox_error: Option<String>,
    alert_source: Option<&str>,
) -> Result<Html<String>, Error> {
    let Tables {
        queries,
        channels,
        incidents,
        dead_letters,
        recent,
    } = tables;
    let template = TEMPLATES
        .get_template("status.html")
        .map_err(|error| Error::Internal(error.to_string()))?;
    template
        .render(context! {
            version => env!("CARGO_PKG_VERSION"),
            source => config.source.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string()),
            listen => config.listen.to_string(),
            timezone => config.timezone.name(),
            state_dir => config.state_dir.display().to_string(),
            outbox => match &config.relay.outbox {
                crate::config::OutboxLocation::StateDir => "SQLite in the state directory".to_owned(),
                crate::config::OutboxLocation::Shared(shared) => format!(
                    "shared by replicas: {} (lease {})",
                    crate::configfile::secret::redact_url(&shared.database.url),
                    humantime::format_duration(shared.lease)
                ),
            },
            host_enabled => config.host.enabled,
            databases => config.databases.keys().cloned().collect::<Vec<_>>(),
            receivers => config.receivers.keys().cloned().collect::<Vec<_>>(),
            escalating => config.receivers.values().any(|r| !r.escalate.is_empty()),
            queries, channels, incidents, dead_letters, recent, outbox_error, alert_source,
        })
        .map(Html)
        .map_err(|error| Error::Internal(error.to_string()))
}
