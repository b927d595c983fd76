//! Digests: when a channel's backlog exceeds its budget, due rows are folded into one
//! set of messages, stored before the first part goes out, and sent part by part; a
//! failed part or a crash resumes at the next unsent part.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Dispatcher, Sent, Step, describe};
use crate::alert::{Notification, view};
use crate::channel::{Channel, MAX_PARTS, Message, Options, Outcome};
use crate::notify::send::Channels;
use crate::outbox::{StoredDigest, now_ms};

/// At most this many due rows are folded into one digest.
const DIGEST_MAX_ROWS: usize = 5_000;
/// A digest reads the backlog's payloads in batches of about this many bytes, and parses
/// one payload at a time: a storm's memory is bounded by this and `MAX_VIEW_ALERTS`.
const DIGEST_BATCH_BYTES: usize = 2 << 20;

impl Dispatcher {
    /// Folds due rows (up to `DIGEST_MAX_ROWS`, read in byte-bounded batches and parsed
    /// one at a time) into one digest of at most `budget` parts per target, and stores
    /// it before anything is sent.
    pub(super) async fn build_digest(
        &self,
        channels: &Arc<Channels>,
        channel: &Channel,
        now: i64,
        budget: usize,
    ) -> Result<Option<StoredDigest>, crate::outbox::Error> {
        let tz = channels.config().timezone;
        let rendering = self.rendering.lock().await;
        let mut builder = view::Digest::new(tz);
        let mut included: Vec<(i64, i64)> = Vec::new();
        let mut shrink = false;
        let mut after = 0;
        while included.len() < DIGEST_MAX_ROWS {
            let batch = self
                .outbox
                .due_batch(
                    &channel.name,
                    now,
                    after,
                    DIGEST_MAX_ROWS - included.len(),
                    DIGEST_BATCH_BYTES,
                )
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.id;
            // Parsing a batch is CPU work: off the async workers.
            let parsed = tokio::task::spawn_blocking(move || {
                let mut unreadable = Vec::new();
                for row in batch {
                    match Notification::parse(row.payload.as_bytes()) {
                        Ok(n) => {
                            let at = DateTime::from_timestamp_millis(row.received_at_ms)
                                .unwrap_or_else(Utc::now);
                            builder.add(&n, at);
                            shrink |= row.too_long;
                            included.push((row.id, row.received_at_ms));
                        }
                        Err(error) => unreadable.push((row, error.to_string())),
                    }
                }
                ((builder, included, shrink), unreadable)
            })
            .await;
            // Only a panic ends the task early (and aborts in release builds).
            let Ok((back, unreadable)) = parsed else {
                tracing::error!(channel = %channel.name, "digest parsing failed; will retry");
                return Ok(None);
            };
            (builder, included, shrink) = back;
            for (mut row, error) in unreadable {
                row.payload = String::new();
                let outcome = Outcome::Permanent(format!("unreadable payload: {error}"));
                self.fail(channel, &[&row], &outcome).await;
            }
        }
        if included.is_empty() {
            return Ok(None);
        }
        let ids: Vec<i64> = included.iter().map(|(id, _)| *id).collect();
        let rendered = {
            let (channels, channel) = (Arc::clone(channels), channel.clone());
            tokio::task::spawn_blocking(move || {
                let combined = builder.finish();
                let options = Options {
                    template: Some("digest"),
                    max_parts: budget.min(MAX_PARTS),
                    shrink,
                };
                channel
                    .prepare(&channels.templates, &combined, &options)
                    .map(|messages| (messages, combined.alert_count))
                    .map_err(|error| error.to_string())
            })
            .await
            .unwrap_or_else(|error| Err(format!("rendering failed: {error}")))
        };
        drop(rendering);
        let (messages, alerts) = match rendered {
            Ok(rendered) => rendered,
            Err(reason) => {
                tracing::error!(channel = %channel.name, error = %reason, rows = ids.len(), "cannot render a digest; moved to dead letters");
                self.metrics.dead(&channel.name, ids.len() as u64);
                self.outbox.dead(ids, reason, now_ms()).await?;
                return Ok(None);
            }
        };
        tracing::info!(channel = %channel.name, notifications = included.len(), alerts, parts = messages.len(), "backlog over the rate budget; sending a digest");
        let json = serde_json::to_string(&messages)
            .unwrap_or_else(|error| unreachable!("messages serialize to JSON: {error}"));
        let id = self
            .outbox
            .open_digest(channel.name.clone(), ids, json.clone(), now_ms())
            .await?;
        Ok(Some(StoredDigest {
            id,
            channel: channel.name.clone(),
            messages: json,
            sent_parts: Vec::new(),
            attempts: 0,
            next_attempt_at_ms: now,
            rows: included,
        }))
    }

    /// Sends the parts of an open digest not sent yet. `slot` gets the digest back while
    /// it stays open.
    pub(super) async fn resume_digest(
        &self,
        channels: &Channels,
        channel: &Channel,
        mut digest: StoredDigest,
        slot: &mut Option<StoredDigest>,
    ) -> Step {
        let now = now_ms();
        if digest.next_attempt_at_ms > now {
            let wait = digest.next_attempt_at_ms;
            *slot = Some(digest);
            return Step::WaitUntil(wait);
        }
        let messages: Vec<Message> = match serde_json::from_str(&digest.messages) {
            Ok(messages) => messages,
            Err(error) => {
                // Written by this program; unreadable only if the file was damaged.
                tracing::error!(%error, channel = %channel.name, "stored digest is unreadable; its rows are digested again");
                if let Err(error) = self.outbox.dissolve_digest(digest.id, false, now).await {
                    tracing::error!(%error, channel = %channel.name, "cannot record a delivery outcome");
                    *slot = Some(digest);
                }
                return Step::Again;
            }
        };
        let mut paused_until: Option<i64> = None;
        let unsent: Vec<&Message> = messages
            .iter()
            .filter(|m| !digest.sent_parts.contains(&m.key()))
            .collect();
        for m in unsent {
            match self.send(channels, channel, m).await {
                Sent::Delivered => {
                    if let Err(error) = self.outbox.digest_part_sent(digest.id, m.key()).await {
                        tracing::warn!(%error, channel = %channel.name, "cannot record a sent part; it may be sent again");
                    }
                    digest.sent_parts.push(m.key());
                }
                Sent::Paused(until) => {
                    paused_until = Some(paused_until.map_or(until, |p| p.min(until)));
                }
                Sent::NoBudget => {
                    let rate = channel.delivery.rate_limit;
                    let next = self
                        .with_window(&m.target, |w| w.next_free_ms(now_ms(), rate))
                        .unwrap_or(now + 1_000);
                    *slot = Some(digest);
                    return Step::WaitUntil(next);
                }
                Sent::Failed(outcome) => {
                    self.fail_digest(channel, digest, &outcome, slot).await;
                    return Step::Again;
                }
            }
        }
        if let Some(until) = paused_until {
            let reason = "digest waiting for a paused target (it answered rate-limited)";
            if let Err(error) = self
                .outbox
                .digest_retry_later(digest.id, until, reason.to_owned(), false, now_ms())
                .await
            {
                tracing::error!(%error, channel = %channel.name, "cannot record a delivery outcome");
            }
            digest.next_attempt_at_ms = until;
            *slot = Some(digest);
            return Step::WaitUntil(until);
        }
        if let Err(error) = self.outbox.close_digest(digest.id, None, now_ms()).await {
            tracing::error!(%error, channel = %channel.name, "delivered, but cannot mark it; it will be sent again");
            *slot = Some(digest);
            return Step::WaitUntil(now + 1_000);
        }
        if !messages.is_empty() {
            self.metrics.digest(&channel.name);
        }
        self.succeeded(channel, &digest.rows);
        Step::Again
    }

    /// Applies a failed outcome of one digest part: the digest stays open (its sent parts
    /// recorded) unless the failure is permanent or "too long".
    async fn fail_digest(
        &self,
        channel: &Channel,
        mut digest: StoredDigest,
        outcome: &Outcome,
        slot: &mut Option<StoredDigest>,
    ) {
        let now = now_ms();
        let reason = describe(outcome);
        let (result, keep) = match outcome {
            Outcome::Delivered => return,
            Outcome::RateLimited { .. } => {
                digest.next_attempt_at_ms = now + 1_000;
                let result = self
                    .outbox
                    .digest_retry_later(digest.id, now + 1_000, reason.clone(), false, now)
                    .await;
                (result, true)
            }
            Outcome::Transient(_) => {
                let delay = Self::retry_delay(channel, digest.attempts);
                tracing::warn!(channel = %channel.name, error = %reason, attempts = digest.attempts + 1, retry_in_ms = delay, "digest part failed; will retry the parts not sent");
                digest.attempts += 1;
                digest.next_attempt_at_ms = now.saturating_add(delay);
                let result = self
                    .outbox
                    .digest_retry_later(
                        digest.id,
                        digest.next_attempt_at_ms,
                        reason.clone(),
                        true,
                        now,
                    )
                    .await;
                (result, true)
            }
            Outcome::TooLong(_) => {
                tracing::warn!(channel = %channel.name, error = %reason, "digest too long; its rows are digested again at half size");
                (
                    self.outbox.dissolve_digest(digest.id, true, now).await,
                    false,
                )
            }
            Outcome::Permanent(_) => {
                tracing::error!(channel = %channel.name, error = %reason, rows = digest.rows.len(), "delivery failed permanently; moved to dead letters");
                self.metrics.dead(&channel.name, digest.rows.len() as u64);
                (
                    self.outbox
                        .close_digest(digest.id, Some(reason.clone()), now)
                        .await,
                    false,
                )
            }
        };
        if let Err(error) = &result {
            tracing::error!(%error, channel = %channel.name, "cannot record a delivery outcome");
        }
        if keep || result.is_err() {
            *slot = Some(digest);
        }
        self.note_failure(channel, now, reason);
    }
}
