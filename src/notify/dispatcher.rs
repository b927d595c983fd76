//! Delivery workers: one task per channel takes due rows from the outbox, spends the
//! rate budget of each target, sends, and records the outcome.
//!
//! - Budgets belong to real targets (a robot URL, a provider's phone number), shared by
//!   every channel that sends there; the channel's current `rate_limit` is applied on each
//!   check, so a reload takes effect at once.
//! - Within budget, rows go out one by one, oldest first, each split into parts if long;
//!   parts are recorded as they go. A row waits while an earlier row of its incident is
//!   pending, so a resolved message never overtakes its firing one.
//! - When the backlog exceeds the budget, due rows are read in batches bounded by bytes
//!   and folded into one digest sized to the budget; the digest is stored before its
//!   first part is sent and resumes at its next unsent part after a failure or a crash.
//! - A rate-limit answer pauses that target only (persisted; DingTalk: 10 min) and keeps
//!   the rows; a transient failure retries with capped, jittered backoff; a permanent one
//!   makes dead letters; "too long" re-renders at half size once, then gives up.
//! - With an outbox shared by replicas, every replica runs every channel's worker: the
//!   outbox hands each row and each open digest to one of them (claims with leases),
//!   and decides each send against the target's budget across all of them
//!   (`take_send`); a replica's windows are its view, restored from the outbox before a
//!   worker chooses between single messages and a digest.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Outcome;
use super::ack::AckKey;
use super::metrics::{ChannelGauges, RelayMetrics, Snapshot};
use super::ratelimit::Window;
use super::retention::Retention;
use super::send::Channels;
use crate::alert::{Notification, view};
use crate::channel::{Channel, MAX_PARTS, Message, Options};
use crate::outbox::{Budget, Delivery, Outbox, StoredDigest, TargetState, now_ms};
use crate::shutdown::Shutdown;

mod digest;
mod escalation;

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
    /// Budgets by target key (see `Channel::targets`), shared by all channels.
    windows: Mutex<HashMap<String, Window>>,
    status: Mutex<BTreeMap<String, ChannelStatus>>,
    wake: Mutex<HashMap<String, Arc<Notify>>>,
    workers: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Parsing a payload and rendering it take memory in proportion to the notification;
    /// one worker at a time does it, on a blocking thread (never on the async workers that
    /// answer webhooks and scrapes), so a storm's peak does not grow with the number of
    /// channels. Sending, the slow part, stays concurrent.
    rendering: tokio::sync::Mutex<()>,
    /// Signs ack links; `None` if `state_dir/ack.key` could not be read or made.
    ack: Option<AckKey>,
    shutdown: Shutdown,
}

enum Step {
    Again,
    WaitUntil(i64),
}

/// A target's budget at one moment.
struct TargetBudget {
    available: usize,
    next_free_ms: i64,
    paused_until_ms: Option<i64>,
}

impl Dispatcher {
    /// Restores the budgets and pauses of every target from the outbox, then starts one
    /// worker per configured channel, and the gauge refresher.
    pub async fn start(
        outbox: Outbox,
        channels: Arc<Channels>,
        metrics: RelayMetrics,
        shutdown: Shutdown,
    ) -> Arc<Dispatcher> {
        let ack = load_ack_key(&outbox).await;
        let dispatcher = Arc::new(Dispatcher {
            outbox,
            channels: ArcSwap::new(channels),
            metrics,
            windows: Mutex::new(HashMap::new()),
            status: Mutex::new(BTreeMap::new()),
            wake: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            rendering: tokio::sync::Mutex::new(()),
            ack,
            shutdown,
        });
        let configured: Vec<Channel> = dispatcher
            .channels
            .load()
            .config()
            .channels
            .values()
            .cloned()
            .collect();
        for channel in &configured {
            dispatcher.seed_windows(channel).await;
        }
        dispatcher.spawn_workers();
        tokio::spawn(Arc::clone(&dispatcher).refresh_gauges());
        tokio::spawn(Arc::clone(&dispatcher).escalate());
        dispatcher
    }

    /// The ack link of incident `id`, when its receiver escalates and links can be made.
    pub fn ack_url(
        &self,
        config: &crate::config::Config,
        receiver: &str,
        id: i64,
    ) -> Option<String> {
        let escalates = config
            .receivers
            .get(receiver)
            .is_some_and(|r| !r.escalate.is_empty());
        let base = config.web.external_url.as_deref()?;
        let key = self.ack.as_ref()?;
        escalates.then(|| format!("{base}/ack/{}", key.token(id)))
    }

    /// The incident an ack token names, if lookout made the token.
    pub fn verify_ack(&self, token: &str) -> Option<i64> {
        self.ack.as_ref()?.verify(token)
    }

    pub fn metrics(&self) -> &RelayMetrics {
        &self.metrics
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
        // Rows this process still holds go to the other replicas now, not after the lease.
        self.outbox.release().await;
    }

    pub fn status(&self) -> BTreeMap<String, ChannelStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    async fn run(self: Arc<Self>, name: String) {
        let wake = self.wake_handle(&name);
        // A channel added by a reload: its targets' budgets (a no-op for known ones).
        if let Some(channel) = self.channels.load().channel(&name).cloned() {
            self.seed_windows(&channel).await;
        }
        // A digest the worker opened stays in its hand until it closes; one it does not
        // hold (left by a failure, a crash or a replica that died) is claimed here at the
        // start and at every step.
        let mut digest = loop {
            match self.outbox.open_digest_of(&name, now_ms()).await {
                Ok(digest) => break digest,
                Err(error) => {
                    tracing::warn!(%error, channel = %name, "cannot read the outbox; will retry");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = self.shutdown.wait() => return,
                    }
                }
            }
        };
        loop {
            if self.shutdown.is_triggered() {
                return;
            }
            let channels = self.channels.load_full();
            let Some(channel) = channels.channel(&name).cloned() else {
                return;
            };
            let step = match digest.take() {
                Some(open) => {
                    self.resume_digest(&channels, &channel, open, &mut digest)
                        .await
                }
                None => self.step(&channels, &channel, &mut digest).await,
            };
            if let Step::WaitUntil(until_ms) = step {
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

    /// Rebuilds the budgets of `channel`'s targets from the durable send log and pauses
    /// (they survive restarts). A target another channel's worker already restored is
    /// left alone, so shared sends are not counted twice.
    async fn seed_windows(&self, channel: &Channel) {
        for target in channel.targets() {
            let known = self
                .windows
                .lock()
                .map_or(true, |windows| windows.contains_key(&target));
            if !known {
                self.restore_window(channel, &target, false).await;
            }
        }
    }

    /// Takes the outbox's record of `target`'s sends and pause as its window: the
    /// outbox is the record of every process that shares it, memory only of this one.
    /// With `replace` false, only a target not known yet.
    async fn restore_window(&self, channel: &Channel, target: &str, replace: bool) {
        let now = now_ms();
        let since = now - Window::per_ms(channel.delivery.rate_limit);
        let TargetState {
            sends,
            paused_until_ms,
        } = match self
            .outbox
            .target_state(target.to_owned(), since, now)
            .await
        {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read a target's budget from the outbox");
                return;
            }
        };
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        let restored = Window::restored(&sends, paused_until_ms);
        match windows.entry(target.to_owned()) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(restored);
            }
            std::collections::hash_map::Entry::Occupied(mut slot) if replace => {
                slot.insert(restored);
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }

    fn with_window<T>(&self, target: &str, f: impl FnOnce(&mut Window) -> T) -> Option<T> {
        let mut windows = self.windows.lock().ok()?;
        Some(f(windows.entry(target.to_owned()).or_default()))
    }

    fn budget_of(&self, channel: &Channel, target: &str, now: i64) -> TargetBudget {
        let rate = channel.delivery.rate_limit;
        self.with_window(target, |w| TargetBudget {
            available: w.available(now, rate),
            next_free_ms: w.next_free_ms(now, rate),
            paused_until_ms: w.paused_at(now),
        })
        .unwrap_or(TargetBudget {
            available: 0,
            next_free_ms: now + 1_000,
            paused_until_ms: None,
        })
    }

    /// How much of its rate budget the channel's busiest target has used in the current
    /// window: (used, allowed), for the console.
    pub fn budget_use(&self, channel: &Channel) -> (usize, u32) {
        let rate = channel.delivery.rate_limit;
        let now = now_ms();
        let used = channel
            .targets()
            .iter()
            .map(|target| {
                let available = self.budget_of(channel, target, now).available;
                usize::try_from(rate.count)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(available)
            })
            .max()
            .unwrap_or(0);
        (used, rate.count)
    }

    /// The channel's budget over its unpaused targets: the parts each can take now, and
    /// when that changes. `None` with the earliest pause end when every target is paused.
    fn channel_budget(&self, channel: &Channel, now: i64) -> Result<(usize, i64), i64> {
        let mut budget = usize::MAX;
        let mut next_free = now;
        let mut pause_ends = i64::MAX;
        for target in channel.targets() {
            let b = self.budget_of(channel, &target, now);
            if let Some(until) = b.paused_until_ms {
                pause_ends = pause_ends.min(until);
                continue;
            }
            budget = budget.min(b.available);
            next_free = next_free.max(b.next_free_ms);
        }
        if budget == usize::MAX {
            return Err(pause_ends);
        }
        Ok((budget, next_free))
    }

    async fn step(
        &self,
        channels: &Arc<Channels>,
        channel: &Channel,
        digest: &mut Option<StoredDigest>,
    ) -> Step {
        let now = now_ms();
        // The budget first: it is in memory, so a worker waiting for its budget never
        // touches the outbox, however often new rows wake it (the memory of one process
        // never counts more sends than the outbox has).
        match self.channel_budget(channel, now) {
            Ok((0, next_free)) => return Step::WaitUntil(next_free),
            Ok(_) => {}
            Err(pause_ends) => return Step::WaitUntil(pause_ends),
        }
        // An open digest nobody holds (a failed part, a crash, a replica that died) first.
        match self.outbox.open_digest_of(&channel.name, now).await {
            Ok(Some(open)) => {
                *digest = Some(open);
                return Step::Again;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                return Step::WaitUntil(now + 1_000);
            }
        }
        let due = match self.outbox.due_count(&channel.name, now).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                return Step::WaitUntil(now + 1_000);
            }
        };
        if due == 0 {
            let next = self
                .outbox
                .next_due_ms(&channel.name, now)
                .await
                .ok()
                .flatten();
            return Step::WaitUntil(next.unwrap_or(now + IDLE_POLL_MS).max(now));
        }
        // Other processes sharing the outbox may have spent the targets' budgets: the
        // decision between single messages and a digest takes the outbox's record.
        for target in channel.targets() {
            self.restore_window(channel, &target, true).await;
        }
        let (budget, next_free) = match self.channel_budget(channel, now) {
            Ok((0, next_free)) => return Step::WaitUntil(next_free),
            Ok(budget) => budget,
            Err(pause_ends) => return Step::WaitUntil(pause_ends),
        };
        if due <= budget {
            return match self.outbox.due(&channel.name, now, 1).await {
                Ok(rows) => {
                    if let Some(row) = rows.into_iter().next() {
                        self.single(channels, channel, row).await;
                    }
                    Step::Again
                }
                Err(error) => {
                    tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                    Step::WaitUntil(now + 1_000)
                }
            };
        }
        // A digest should get its full number of parts: if the budget is about to grow
        // to that within DIGEST_PATIENCE_MS, wait for it.
        let wanted =
            MAX_PARTS.min(usize::try_from(channel.delivery.rate_limit.count).unwrap_or(MAX_PARTS));
        if budget < wanted {
            let rate = channel.delivery.rate_limit;
            let ready = channel
                .targets()
                .iter()
                .filter_map(|t| self.with_window(t, |w| w.ready_at_ms(wanted, now, rate)))
                .max()
                .unwrap_or(now)
                .max(next_free);
            if ready > now && ready - now <= DIGEST_PATIENCE_MS {
                return Step::WaitUntil(ready);
            }
        }
        match self.build_digest(channels, channel, now, budget).await {
            Ok(built) => {
                *digest = built;
                Step::Again
            }
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot read the outbox; will retry");
                Step::WaitUntil(now + 1_000)
            }
        }
    }

    /// Sends one row's parts that were not sent yet, as far as the budget goes. Parts
    /// for a paused target wait for the pause; the others go out now.
    async fn single(&self, channels: &Arc<Channels>, channel: &Channel, mut row: Delivery) {
        let rendering = self.rendering.lock().await;
        let prepared = {
            let (channels, channel) = (Arc::clone(channels), channel.clone());
            let payload = std::mem::take(&mut row.payload);
            let (received_at_ms, too_long) = (row.received_at_ms, row.too_long);
            let ack_url = row
                .incident_id
                .and_then(|id| self.ack_url(channels.config(), &row.receiver, id));
            tokio::task::spawn_blocking(move || {
                prepare_row(
                    &channels,
                    &channel,
                    &payload,
                    received_at_ms,
                    too_long,
                    ack_url,
                )
            })
            .await
            .unwrap_or_else(|error| Err(Outcome::Permanent(format!("rendering failed: {error}"))))
        };
        drop(rendering);
        let messages = match prepared {
            Ok(messages) => messages,
            Err(outcome) => return self.fail(channel, &[&row], &outcome).await,
        };
        let mut paused_until: Option<i64> = None;
        for m in messages
            .iter()
            .filter(|m| !row.sent_parts.contains(&m.key()))
        {
            match self.send(channels, channel, m).await {
                Sent::Delivered => {
                    if let Err(error) = self.outbox.part_sent(row.id, m.key(), now_ms()).await {
                        tracing::warn!(%error, channel = %channel.name, "cannot record a sent part; it may be sent again");
                    }
                }
                Sent::Paused(until) => {
                    paused_until = Some(paused_until.map_or(until, |p| p.min(until)));
                }
                // Out of budget mid-way (another channel shares the target): the parts
                // sent so far are recorded; the row is due again when the budget allows.
                Sent::NoBudget => return,
                Sent::Failed(outcome) => {
                    return self.fail(channel, &[&row], &outcome).await;
                }
            }
        }
        match paused_until {
            None => match self.outbox.delivered(vec![row.id], now_ms()).await {
                Ok(()) => self.succeeded(channel, &[(row.id, row.received_at_ms)]),
                Err(error) => {
                    tracing::error!(%error, channel = %channel.name, "delivered, but cannot mark it; it will be sent again");
                }
            },
            Some(until) => {
                let reason = "waiting for a paused target (it answered rate-limited)".to_owned();
                if let Err(error) = self
                    .outbox
                    .retry_later(vec![row.id], until, reason, false, false, now_ms())
                    .await
                {
                    tracing::error!(%error, channel = %channel.name, "cannot record a delivery outcome");
                }
            }
        }
    }

    /// Spends the target's budget, sends, and counts the outcome; a rate-limit answer
    /// pauses the target.
    async fn send(&self, channels: &Channels, channel: &Channel, m: &Message) -> Sent {
        let at = now_ms();
        let rate = channel.delivery.rate_limit;
        if let Some(until) = self.with_window(&m.target, |w| w.paused_at(at)).flatten() {
            return Sent::Paused(until);
        }
        if !self
            .with_window(&m.target, |w| w.try_take(at, rate))
            .unwrap_or(false)
        {
            return Sent::NoBudget;
        }
        // The outbox checks and records the send in one step: the authority when several
        // processes share it (memory above is only this process's view).
        let budget = Budget {
            count: usize::try_from(rate.count).unwrap_or(usize::MAX),
            per_ms: Window::per_ms(rate),
        };
        match self
            .outbox
            .take_send(channel.name.clone(), m.target.clone(), budget, at)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                self.restore_window(channel, &m.target, true).await;
                return match self.with_window(&m.target, |w| w.paused_at(at)).flatten() {
                    Some(until) => Sent::Paused(until),
                    None => Sent::NoBudget,
                };
            }
            Err(error) => {
                tracing::warn!(%error, channel = %channel.name, "cannot record a send in the outbox; not sending");
                return Sent::NoBudget;
            }
        }
        let outcome = channels.send(m).await;
        self.metrics.outcome(&channel.name, outcome.kind());
        match outcome {
            Outcome::Delivered => Sent::Delivered,
            // Only this target is over its limit: the others go on.
            Outcome::RateLimited { retry_after } => {
                let until = self.pause_target(channel, &m.target, retry_after).await;
                self.note_failure(channel, now_ms(), describe(&outcome));
                Sent::Paused(until)
            }
            outcome => Sent::Failed(outcome),
        }
    }

    /// Counts delivered rows — (id, received at) — once the outbox has marked them.
    fn succeeded(&self, channel: &Channel, rows: &[(i64, i64)]) {
        let now = now_ms();
        for (_, received_at_ms) in rows {
            self.metrics
                .delivered_after(&channel.name, (now - received_at_ms).max(0) as f64 / 1000.0);
        }
        if let Ok(mut status) = self.status.lock() {
            status
                .entry(channel.name.clone())
                .or_default()
                .last_success_ms = Some(now);
        }
        tracing::debug!(channel = %channel.name, rows = rows.len(), "delivered");
    }

    /// Pauses `target` after a rate-limit answer, in memory and in the outbox.
    async fn pause_target(
        &self,
        channel: &Channel,
        target: &str,
        retry_after: Option<Duration>,
    ) -> i64 {
        let now = now_ms();
        // `relay.rate_limit_pause` (10 min by default, DingTalk's block) bounds the pause;
        // a shorter wait the channel names is honoured.
        let limit = self.channels.load().config().relay.rate_limit_pause;
        let pause = retry_after.map_or(limit, |wait| wait.min(limit));
        let until = now.saturating_add(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 4));
        self.with_window(target, |w| w.pause_until(until));
        if let Err(error) = self.outbox.pause(target.to_owned(), until).await {
            tracing::warn!(%error, channel = %channel.name, "cannot record a pause in the outbox; it ends at a restart");
        }
        self.metrics.throttled(&channel.name);
        if let Ok(mut status) = self.status.lock() {
            status
                .entry(channel.name.clone())
                .or_default()
                .paused_until_ms = Some(until);
        }
        tracing::warn!(channel = %channel.name, target = %target, pause = ?pause, "target answered rate-limited; pausing it and keeping the notifications");
        until
    }

    /// Milliseconds until the retry after `attempts` failed attempts.
    fn retry_delay(channel: &Channel, attempts: i64) -> i64 {
        let attempt = u32::try_from(attempts + 1).unwrap_or(u32::MAX);
        let delay = channel.delivery.retry.delay_random(attempt);
        i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// Applies a failed outcome to `rows` (a rate-limit answer has paused its target
    /// in `send`; the rows wait a second and find it paused).
    async fn fail(&self, channel: &Channel, rows: &[&Delivery], outcome: &Outcome) {
        let now = now_ms();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let attempts = rows.iter().map(|r| r.attempts).max().unwrap_or(0);
        let reason = describe(outcome);
        let result = match outcome {
            Outcome::Delivered => return,
            Outcome::RateLimited { .. } => {
                self.outbox
                    .retry_later(ids, now + 1_000, reason.clone(), false, false, now)
                    .await
            }
            Outcome::Transient(_) => {
                let delay = Self::retry_delay(channel, attempts);
                tracing::warn!(channel = %channel.name, error = %reason, attempts = attempts + 1, retry_in_ms = delay, "delivery failed; will retry");
                self.outbox
                    .retry_later(
                        ids,
                        now.saturating_add(delay),
                        reason.clone(),
                        true,
                        false,
                        now,
                    )
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
        self.note_failure(channel, now, reason);
    }

    fn note_failure(&self, channel: &Channel, now: i64, reason: String) {
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
                    let config = self.channels.load_full();
                    let paused: Vec<String> = config
                        .config()
                        .channels
                        .values()
                        .filter(|c| {
                            c.targets().iter().any(|t| {
                                self.with_window(t, |w| w.paused_at(now).is_some())
                                    .unwrap_or(false)
                            })
                        })
                        .map(|c| c.name.clone())
                        .collect();
                    // Every configured channel has its gauges, at 0 when it has no row.
                    let mut stats = stats;
                    for name in config.config().channels.keys() {
                        if !stats.iter().any(|s| &s.channel == name) {
                            stats.push(crate::outbox::ChannelStats {
                                channel: name.clone(),
                                ..Default::default()
                            });
                        }
                    }
                    stats.sort_by(|a, b| a.channel.cmp(&b.channel));
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

async fn load_ack_key(outbox: &Outbox) -> Option<AckKey> {
    AckKey::load_or_create(outbox)
        .await
        .map_err(|error| {
            tracing::error!(%error, "cannot read or create the ack key: messages go without ack links and /ack answers 404");
        })
        .ok()
}

/// Parses a stored payload and renders it for `channel`, as of its arrival (so a
/// re-render after a restart splits identically). CPU- and memory-heavy for large
/// notifications: runs on a blocking thread, one at a time.
fn prepare_row(
    channels: &Channels,
    channel: &Channel,
    payload: &str,
    received_at_ms: i64,
    too_long: bool,
    ack_url: Option<String>,
) -> Result<Vec<Message>, Outcome> {
    let notification = Notification::parse(payload.as_bytes())
        .map_err(|error| Outcome::Permanent(format!("unreadable payload: {error}")))?;
    let at = DateTime::from_timestamp_millis(received_at_ms).unwrap_or_else(Utc::now);
    let mut view = view::build(&notification, channels.config().timezone, at);
    // Only a firing message asks for an ack.
    if view.firing {
        view.ack_url = ack_url.unwrap_or_default();
    }
    drop(notification);
    let options = Options {
        template: None,
        max_parts: MAX_PARTS,
        shrink: too_long,
    };
    channel
        .prepare(&channels.templates, &view, &options)
        .map_err(|error| Outcome::Permanent(error.to_string()))
}

/// What became of one message.
enum Sent {
    Delivered,
    /// Not sent: the target is paused until then.
    Paused(i64),
    /// Not sent: the target's budget is spent (another channel shares it).
    NoBudget,
    Failed(Outcome),
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
