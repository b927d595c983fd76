//! Delivery workers: one task per channel takes due rows from the outbox, spends the
//! channel's rate budget, sends, and records the outcome.
//!
//! - Within budget, rows go out one by one, oldest first, each split into parts if long.
//! - When the backlog exceeds the budget, all due rows go out as one digest sized to the
//!   budget: every alert listed or counted, and the service never sees more than its
//!   limit, so it never has to answer "send too fast".
//! - A rate-limit answer pauses the target (DingTalk: 10 min) and keeps the rows; a
//!   transient failure retries with capped, jittered backoff; a permanent one makes dead
//!   letters; "too long" re-renders at half size once, then gives up.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Outcome;
use super::message::{self, MAX_PARTS, Message, Options};
use super::metrics::{ChannelGauges, RelayMetrics, Snapshot};
use super::ratelimit::Window;
use super::retention::Retention;
use super::send::Channels;
use crate::alert::{Notification, view};
use crate::backoff::Backoff;
use crate::config::Channel;
use crate::outbox::store::now_ms;
use crate::outbox::{Delivery, Outbox};
use crate::shutdown::Shutdown;

/// At most this many due rows are folded into one digest.
const DIGEST_MAX_ROWS: usize = 5_000;
/// A digest waits at most this long for its full part budget.
const DIGEST_PATIENCE_MS: i64 = 10_000;
/// Idle workers look at the outbox at least this often.
const IDLE_POLL_MS: i64 = 5_000;

/// What the status page shows about a channel's recent deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStatus {
    pub last_success_ms: Option<i64>,
    pub last_failure: Option<(i64, String)>,
    pub paused_until_ms: Option<i64>,
}

/// The delivery side of the relay.
#[derive(Debug)]
pub struct Dispatcher {
    outbox: Outbox,
    channels: ArcSwap<Channels>,
    metrics: RelayMetrics,
    windows: Mutex<HashMap<(String, String), Window>>,
    status: Mutex<BTreeMap<String, ChannelStatus>>,
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    workers: Mutex<HashMap<String, JoinHandle<()>>>,
    shutdown: Shutdown,
}

enum Step {
    Again,
    WaitUntil(i64),
}

impl Dispatcher {
    /// Starts one worker per configured channel, and the gauge refresher.
    pub fn start(
        outbox: Outbox,
        channels: Arc<Channels>,
        metrics: RelayMetrics,
        shutdown: Shutdown,
    ) -> Arc<Dispatcher> {
        let dispatcher = Arc::new(Dispatcher {
            outbox,
            channels: ArcSwap::new(channels),
            metrics,
            windows: Mutex::new(HashMap::new()),
            status: Mutex::new(BTreeMap::new()),
            wake: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            shutdown,
        });
        dispatcher.spawn_workers();
        tokio::spawn(Arc::clone(&dispatcher).refresh_gauges());
        dispatcher
    }

    /// Takes new channel settings (reload); starts workers for new channels. Workers of
    /// removed channels stop; their rows stay pending until the channel returns.
    pub fn apply(self: &Arc<Self>, channels: Arc<Channels>) {
        self.channels.store(channels);
        self.spawn_workers();
        for notify in self
            .wake
            .lock()
            .map(|w| w.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            notify.notify_one();
        }
    }

    fn spawn_workers(self: &Arc<Self>) {
        let names: Vec<String> = self
            .channels
            .load()
            .config()
            .channels
            .keys()
            .cloned()
            .collect();
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        workers.retain(|_, handle| !handle.is_finished());
        for name in names {
            if !workers.contains_key(&name) {
                workers.insert(name.clone(), tokio::spawn(Arc::clone(self).run(name)));
            }
        }
    }

    /// Tells the workers of `channels` that new rows are waiting.
    pub fn wake(&self, channels: &[String]) {
        for name in channels {
            self.wake_handle(name).notify_one();
        }
    }

    fn wake_handle(&self, name: &str) -> Arc<Notify> {
        match self.wake.lock() {
            Ok(mut wake) => Arc::clone(wake.entry(name.to_owned()).or_default()),
            Err(_) => Arc::new(Notify::new()),
        }
    }

    /// Waits for every worker to finish its current send and stop (after shutdown).
    pub async fn stopped(&self) {
        let handles: Vec<JoinHandle<()>> = self
            .workers
            .lock()
            .map(|mut w| w.drain().map(|(_, h)| h).collect())
            .unwrap_or_default();
        for handle in handles {
            let _ = handle.await;
        }
    }

    pub fn status(&self) -> BTreeMap<String, ChannelStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    async fn run(self: Arc<Self>, name: String) {
        let wake = self.wake_handle(&name);
        self.seed_windows(&name).await;
        loop {
            if self.shutdown.is_triggered() {
                return;
            }
            let channels = self.channels.load_full();
            let Some(channel) = channels.channel(&name).cloned() else {
                return;
            };
            match self.step(&channels, &channel).await {
                Step::Again => {}
                Step::WaitUntil(until_ms) => {
                    let wait = (until_ms - now_ms()).clamp(0, IDLE_POLL_MS);
                    let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
                    tokio::select! {
                        () = wake.notified() => {}
                        () = tokio::time::sleep(wait) => {}
                        () = self.shutdown.wait() => return,
                    }
                }
            }
        }
    }

    /// Rebuilds the rate windows from the durable send log (budgets survive restarts).
    async fn seed_windows(&self, name: &str) {
        let Some(channel) = self.channels.load().channel(name).cloned() else {
            return;
        };
        let now = now_ms();
        let window = Window::new(channel.delivery.rate_limit);
        let since = now - window.per_ms();
        let sends = self
            .outbox
            .sends_since(name, since)
            .await
            .unwrap_or_default();
        if let Ok(mut windows) = self.windows.lock() {
            for (target, at) in sends {
                windows
                    .entry((name.to_owned(), target))
                    .or_insert_with(|| window.clone())
                    .record(at);
            }
        }
    }

    fn with_window<T>(
        &self,
        channel: &Channel,
        target: &str,
        f: impl FnOnce(&mut Window) -> T,
    ) -> Option<T> {
        let mut windows = self.windows.lock().ok()?;
        let window = windows
            .entry((channel.name.clone(), target.to_owned()))
            .or_insert_with(|| Window::new(channel.delivery.rate_limit));
        Some(f(window))
    }

    async fn step(&self, channels: &Channels, channel: &Channel) -> Step {
        let now = now_ms();
        // The budget first: it is in memory, so a worker waiting for its budget never
        // touches the outbox, however often new rows wake it.
        let targets = message::targets(channel);
        let mut budget = usize::MAX;
        let mut next_free = now;
        for target in &targets {
            let (available, free) = self
                .with_window(channel, target, |w| (w.available(now), w.next_free_ms(now)))
                .unwrap_or((0, now + 1_000));
            budget = budget.min(available);
            next_free = next_free.max(free);
        }
        if budget == 0 {
            return Step::WaitUntil(next_free);
        }
        let due = match self.outbox.due_count(&channel.name, now).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                return Step::WaitUntil(now + 1_000);
            }
        };
        if due == 0 {
            let next = self.outbox.next_due_ms(&channel.name).await.ok().flatten();
            return Step::WaitUntil(next.unwrap_or(now + IDLE_POLL_MS));
        }
        if due > budget {
            // A digest should get its full number of parts: if the budget is about to
            // grow to that within DIGEST_PATIENCE_MS, wait for it.
            let wanted = MAX_PARTS
                .min(usize::try_from(channel.delivery.rate_limit.count).unwrap_or(MAX_PARTS));
            if budget < wanted {
                let ready = targets
                    .iter()
                    .filter_map(|t| self.with_window(channel, t, |w| w.ready_at_ms(wanted, now)))
                    .max()
                    .unwrap_or(now);
                if ready > now && ready - now <= DIGEST_PATIENCE_MS {
                    return Step::WaitUntil(ready);
                }
            }
        }
        let limit = if due > budget { DIGEST_MAX_ROWS } else { 1 };
        let rows = match self.outbox.due(&channel.name, now, limit).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                return Step::WaitUntil(now + 1_000);
            }
        };
        if due > budget {
            self.digest(channels, channel, rows, budget).await;
        } else if let Some(row) = rows.into_iter().next() {
            self.single(channels, channel, row).await;
        }
        Step::Again
    }

    /// Sends one row's parts that were not sent yet, as far as the budget goes.
    async fn single(&self, channels: &Channels, channel: &Channel, row: Delivery) {
        let tz = channels.config().timezone;
        let notification = match Notification::parse(row.payload.as_bytes()) {
            Ok(n) => n,
            Err(error) => {
                return self
                    .fail(
                        channel,
                        &[&row],
                        &Outcome::Permanent(format!("unreadable payload: {error}")),
                    )
                    .await;
            }
        };
        // Rendered as of arrival, so a re-render after a restart splits identically.
        let at = DateTime::from_timestamp_millis(row.received_at_ms).unwrap_or_else(Utc::now);
        let view = view::build(&notification, tz, at);
        let options = Options {
            template: None,
            max_parts: MAX_PARTS,
            shrink: row.too_long,
        };
        let messages = match message::prepare_with(channel, &channels.templates, &view, &options) {
            Ok(messages) => messages,
            Err(error) => {
                return self
                    .fail(channel, &[&row], &Outcome::Permanent(error.to_string()))
                    .await;
            }
        };
        for m in messages
            .iter()
            .filter(|m| !row.sent_parts.contains(&m.key()))
        {
            let now = now_ms();
            if self
                .with_window(channel, &m.target, |w| w.available(now))
                .unwrap_or(0)
                == 0
            {
                return; // out of budget mid-way: the parts sent so far are recorded
            }
            let outcome = self.send(channels, channel, m).await;
            if !outcome.is_delivered() {
                return self.fail(channel, &[&row], &outcome).await;
            }
            if let Err(error) = self.outbox.part_sent(row.id, m.key(), now_ms()).await {
                tracing::warn!(%error, channel = %channel.name, "cannot record a sent part; it may be sent again");
            }
        }
        self.succeed(channel, &[&row]).await;
    }

    /// Folds every due row into one digest of at most `budget` parts per target.
    async fn digest(
        &self,
        channels: &Channels,
        channel: &Channel,
        rows: Vec<Delivery>,
        budget: usize,
    ) {
        let tz = channels.config().timezone;
        let mut views = Vec::with_capacity(rows.len());
        let mut included = Vec::with_capacity(rows.len());
        for row in &rows {
            match Notification::parse(row.payload.as_bytes()) {
                Ok(n) => {
                    let at = DateTime::from_timestamp_millis(row.received_at_ms)
                        .unwrap_or_else(Utc::now);
                    views.push(view::build(&n, tz, at));
                    included.push(row);
                }
                Err(error) => {
                    self.fail(
                        channel,
                        &[row],
                        &Outcome::Permanent(format!("unreadable payload: {error}")),
                    )
                    .await
                }
            }
        }
        if included.is_empty() {
            return;
        }
        let combined = view::digest(&views);
        let shrink = included.iter().any(|r| r.too_long);
        let options = Options {
            template: Some("digest"),
            max_parts: budget.min(MAX_PARTS),
            shrink,
        };
        let messages =
            match message::prepare_with(channel, &channels.templates, &combined, &options) {
                Ok(messages) => messages,
                Err(error) => {
                    return self
                        .fail(channel, &included, &Outcome::Permanent(error.to_string()))
                        .await;
                }
            };
        tracing::info!(channel = %channel.name, notifications = included.len(), alerts = combined.alerts.len(), parts = messages.len(), "backlog over the rate budget; sending a digest");
        for m in &messages {
            let outcome = self.send(channels, channel, m).await;
            if !outcome.is_delivered() {
                return self.fail(channel, &included, &outcome).await;
            }
        }
        if !messages.is_empty() {
            self.metrics.digest(&channel.name);
        }
        self.succeed(channel, &included).await;
    }

    /// Spends budget, sends, and counts the outcome.
    async fn send(&self, channels: &Channels, channel: &Channel, m: &Message) -> Outcome {
        let at = now_ms();
        self.with_window(channel, &m.target, |w| w.record(at));
        if let Err(error) = self
            .outbox
            .record_send(channel.name.clone(), m.target.clone(), at)
            .await
        {
            tracing::warn!(%error, channel = %channel.name, "cannot record a send in the outbox");
        }
        let outcome = channels.send(m).await;
        self.metrics.outcome(&channel.name, outcome.kind());
        outcome
    }

    async fn succeed(&self, channel: &Channel, rows: &[&Delivery]) {
        let now = now_ms();
        let ids = rows.iter().map(|r| r.id).collect();
        if let Err(error) = self.outbox.delivered(ids, now).await {
            tracing::error!(%error, channel = %channel.name, "delivered, but cannot mark it; it will be sent again");
            return;
        }
        for row in rows {
            self.metrics.delivered_after(
                &channel.name,
                (now - row.received_at_ms).max(0) as f64 / 1000.0,
            );
        }
        if let Ok(mut status) = self.status.lock() {
            status
                .entry(channel.name.clone())
                .or_default()
                .last_success_ms = Some(now);
        }
        tracing::debug!(channel = %channel.name, rows = rows.len(), "delivered");
    }

    /// Applies a failed outcome to `rows`.
    async fn fail(&self, channel: &Channel, rows: &[&Delivery], outcome: &Outcome) {
        let now = now_ms();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
        let reason = describe(outcome);
        let result = match outcome {
            Outcome::Delivered => return,
            Outcome::RateLimited { retry_after } => {
                // `relay.rate_limit_pause` (10 min by default, DingTalk's block) bounds the
                // pause; a shorter wait the channel names is honoured.
                let limit = self.channels.load().config().relay.rate_limit_pause;
                let pause = retry_after.map_or(limit, |wait| wait.min(limit));
                let until = now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 4);
                for target in message::targets(channel) {
                    self.with_window(channel, &target, |w| w.pause_until(until));
                }
                self.metrics.throttled(&channel.name);
                if let Ok(mut status) = self.status.lock() {
                    status
                        .entry(channel.name.clone())
                        .or_default()
                        .paused_until_ms = Some(until);
                }
                tracing::warn!(channel = %channel.name, pause = ?pause, "channel answered rate-limited; pausing it and keeping the notifications");
                self.outbox
                    .retry_later(ids, until, reason.clone(), false, false, now)
                    .await
            }
            Outcome::Transient(_) => {
                let backoff =
                    Backoff::new(channel.delivery.retry.initial, channel.delivery.retry.max)
                        .unwrap_or_else(|_| {
                            Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
                                .unwrap_or_else(|e| unreachable!("constant bounds: {e}"))
                        });
                let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
                let delay = backoff.delay_random(attempt);
                tracing::warn!(channel = %channel.name, error = %reason, attempt, retry_in = ?delay, "delivery failed; will retry");
                let next = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4);
                self.outbox
                    .retry_later(ids, next, reason.clone(), true, false, now)
                    .await
            }
            Outcome::TooLong(_) if !rows.iter().any(|r| r.too_long) => {
                tracing::warn!(channel = %channel.name, error = %reason, "message too long; re-rendering at half size");
                self.outbox
                    .retry_later(ids, now, reason.clone(), true, true, now)
                    .await
            }
            Outcome::TooLong(_) | Outcome::Permanent(_) => {
                tracing::error!(channel = %channel.name, error = %reason, rows = ids.len(), "delivery failed permanently; moved to dead letters");
                self.metrics.dead(&channel.name, ids.len() as u64);
                self.outbox.dead(ids, reason.clone(), now).await
            }
        };
        if let Err(error) = result {
            tracing::error!(%error, channel = %channel.name, "cannot record a delivery outcome");
        }
        if let Ok(mut status) = self.status.lock() {
            status.entry(channel.name.clone()).or_default().last_failure = Some((now, reason));
        }
    }

    /// Refreshes the outbox gauges every second, off the scrape path, and applies
    /// `relay.retention` (see `notify::retention`).
    async fn refresh_gauges(self: Arc<Self>) {
        let mut retention = Retention::default();
        loop {
            let now = now_ms();
            let relay = self.channels.load().config().relay.clone();
            retention
                .run(&self.outbox, &self.metrics, &relay, now)
                .await;
            match self.outbox.stats().await {
                Ok(stats) => {
                    let paused: Vec<String> = self
                        .windows
                        .lock()
                        .map(|w| {
                            w.iter()
                                .filter(|(_, window)| {
                                    window.paused_until().is_some_and(|until| until > now)
                                })
                                .map(|((channel, _), _)| channel.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    let channels = stats
                        .into_iter()
                        .map(|s| ChannelGauges {
                            paused: paused.contains(&s.channel),
                            oldest_pending_age_seconds: s
                                .oldest_pending_ms
                                .map_or(0.0, |at| (now - at).max(0) as f64 / 1000.0),
                            channel: s.channel,
                            pending: s.pending,
                            dead: s.dead,
                        })
                        .collect();
                    self.metrics.set_snapshot(Snapshot {
                        outbox_up: true,
                        channels,
                    });
                }
                Err(error) => tracing::warn!(%error, "cannot read outbox statistics"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = self.shutdown.wait() => return,
            }
        }
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Delivered => "delivered".to_owned(),
        Outcome::RateLimited { retry_after } => {
            format!("rate limited by the channel (retry after {retry_after:?})")
        }
        Outcome::Transient(e) | Outcome::Permanent(e) | Outcome::TooLong(e) => e.clone(),
    }
}
