//! Outbox retention, run by the dispatcher's gauge refresher every second: measures the
//! outbox and the free space of its filesystem for the gauges; when the outbox uses more
//! than `relay.retention.max_bytes`, drops the oldest finished payloads (delivered first,
//! dead letters only if still needed, pending never); every ten minutes forgets rows past
//! their age (`relay.retention.delivered` / `dead`).

use std::path::Path;
use std::time::Duration;

use super::metrics::{RelayMetrics, Storage};
use crate::config::RelayConfig;
use crate::outbox::Outbox;

/// Rows past their age are forgotten this often.
const PRUNE_EVERY_MS: i64 = 600_000;
/// After a size prune that could not reach the bound, the next one waits this long
/// (or until the outbox grew by an eighth of the bound).
const STUCK_RETRY_MS: i64 = 10_000;

/// Retention state between two runs.
#[derive(Debug, Default)]
pub struct Retention {
    last_age_prune_ms: i64,
    /// Bytes in use and time after a size prune that could not reach the bound (pending
    /// rows alone exceed it): the next attempt waits (`STUCK_RETRY_MS`, or growth by an
    /// eighth of the bound) instead of rescanning the rows every second during a storm.
    stuck: Option<(u64, i64)>,
}

impl Retention {
    /// One round: prune if needed, then publish the storage gauges.
    pub async fn run(
        &mut self,
        outbox: &Outbox,
        metrics: &RelayMetrics,
        relay: &RelayConfig,
        now_ms: i64,
    ) {
        let mut storage = match outbox.storage().await {
            Ok(storage) => storage,
            Err(error) => {
                tracing::warn!(%error, "cannot measure the outbox");
                return;
            }
        };
        // A shared outbox has no size bound (only the ages).
        if let Some(limit) = relay.retention.max_bytes {
            if storage.used_bytes <= limit {
                self.stuck = None;
            } else if self.stuck.is_none_or(|(used, at)| {
                storage.used_bytes > used + limit / 8 || now_ms - at >= STUCK_RETRY_MS
            }) {
                storage.used_bytes = self
                    .prune_to_size(outbox, limit, relay, now_ms, storage.used_bytes)
                    .await;
            }
        }
        if now_ms - self.last_age_prune_ms >= PRUNE_EVERY_MS {
            self.last_age_prune_ms = now_ms;
            let keep = |age: Duration| i64::try_from(age.as_millis()).unwrap_or(i64::MAX / 4);
            match outbox
                .prune(
                    now_ms,
                    keep(relay.retention.delivered),
                    keep(relay.retention.dead),
                )
                .await
            {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "pruned old outbox rows"),
                Err(error) => tracing::warn!(%error, "cannot prune the outbox"),
            }
            // Resolved incidents are kept as long as delivered rows (their ack pages).
            let before = now_ms - keep(relay.retention.delivered);
            if let Err(error) = outbox.prune_incidents(before).await {
                tracing::warn!(%error, "cannot prune old incidents");
            }
        }
        let filesystem = match outbox.local_dir() {
            Some(dir) => {
                let dir = dir.to_owned();
                tokio::task::spawn_blocking(move || free_space(&dir))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        metrics.set_storage(Storage {
            outbox_bytes: storage.used_bytes,
            file_bytes: storage.file_bytes,
            max_bytes: relay.retention.max_bytes,
            filesystem,
        });
    }

    /// Drops payloads down to the bound; returns the bytes in use afterwards.
    async fn prune_to_size(
        &mut self,
        outbox: &Outbox,
        limit: u64,
        relay: &RelayConfig,
        now_ms: i64,
        used: u64,
    ) -> u64 {
        let window = i64::try_from(relay.dedupe_window.as_millis()).unwrap_or(i64::MAX / 4);
        match outbox.prune_to_size(limit, now_ms - window).await {
            Ok(report) => {
                if report.removed + report.emptied > 0 {
                    tracing::info!(
                        removed = report.removed,
                        payloads_dropped = report.emptied,
                        used_bytes = report.used_bytes,
                        max_bytes = limit,
                        "outbox over relay.retention.max_bytes; dropped the oldest finished notifications"
                    );
                }
                if report.used_bytes > limit {
                    if self.stuck.is_none() {
                        tracing::warn!(
                            used_bytes = report.used_bytes,
                            max_bytes = limit,
                            "pending notifications alone exceed relay.retention.max_bytes; they are kept until delivered"
                        );
                    }
                    self.stuck = Some((report.used_bytes, now_ms));
                } else {
                    self.stuck = None;
                }
                report.used_bytes
            }
            Err(error) => {
                tracing::warn!(%error, "cannot prune the outbox to its size bound");
                used
            }
        }
    }
}

/// (available to lookout, total) bytes of the filesystem holding `dir`.
fn free_space(dir: &Path) -> Option<(u64, u64)> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    let fragment = stat.f_frsize;
    Some((
        stat.f_bavail.saturating_mul(fragment),
        stat.f_blocks.saturating_mul(fragment),
    ))
}
