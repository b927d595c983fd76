//! The range every duration and number key accepts, in one table.
//!
//! A value outside its range is an error, never clamped: zero makes timers spin or panic
//! (`tokio::time::interval` refuses a zero period), and a huge value overflows the
//! arithmetic that turns it into a deadline (`interval * 3`, `now + timeout`), which
//! aborts the release build. The ranges are wide enough for any real deployment.
//! Relations between keys (`timeout ≤ interval ≤ stale_after`, `retry.initial ≤
//! retry.max`) are checked where the keys are validated.

use std::ops::RangeInclusive;
use std::time::Duration;

/// Inclusive bounds of a duration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub min: Duration,
    pub max: Duration,
}

const SECOND: u64 = 1;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

const fn span(min: Duration, max_seconds: u64) -> Span {
    Span {
        min,
        max: Duration::from_secs(max_seconds),
    }
}

/// The smallest positive duration: "must be positive".
const POSITIVE: Duration = Duration::from_nanos(1);

/// `host.max_age`: 0 collects on every scrape.
pub const HOST_MAX_AGE: Span = span(Duration::ZERO, HOUR);
/// `host.filesystem.mount_timeout`.
pub const MOUNT_TIMEOUT: Span = span(POSITIVE, 5 * MINUTE);
/// `databases.*.connect_timeout`.
pub const CONNECT_TIMEOUT: Span = span(POSITIVE, 5 * MINUTE);
/// `databases.*.collect_interval`: the packs' schedule.
pub const COLLECT_INTERVAL: Span = span(Duration::from_secs(1), DAY);
/// `queries[].interval`: from a tenth of a second to a weekly report.
pub const QUERY_INTERVAL: Span = span(Duration::from_millis(100), 7 * DAY);
/// `queries[].timeout`, also at most the interval.
pub const QUERY_TIMEOUT: Span = span(POSITIVE, 7 * DAY);
/// `queries[].stale_after`, also at least the interval (default 3 × interval).
pub const STALE_AFTER: Span = span(POSITIVE, 30 * DAY);
/// `channels.*.timeout`.
pub const SEND_TIMEOUT: Span = span(POSITIVE, 10 * MINUTE);
/// `channels.*.retry.initial`, also at most `retry.max`.
pub const RETRY_INITIAL: Span = span(POSITIVE, DAY);
/// `channels.*.retry.max`.
pub const RETRY_MAX: Span = span(POSITIVE, DAY);
/// `relay.dedupe_window`: 0 turns deduplication off; delivered rows are kept 7 days.
/// `receivers.*.escalate[].after`.
pub const ESCALATE_AFTER: Span = span(POSITIVE, 7 * DAY);
pub const DEDUPE_WINDOW: Span = span(Duration::ZERO, 7 * DAY);
/// `relay.rate_limit_pause`: at least a second, or a rate-limited robot is hammered.
pub const RATE_LIMIT_PAUSE: Span = span(Duration::from_secs(1), DAY);
/// `relay.lease`: how long a replica's claim on a row outlives the replica. Under a
/// second, renewals would not keep up with a busy database; past an hour, a dead
/// replica's rows wait an hour.
pub const LEASE: Span = span(Duration::from_secs(1), HOUR);

/// `web.header_read_timeout`, `body_read_timeout`, `idle_timeout`: zero would close
/// every connection at once; beyond an hour a slow client holds its socket for hours.
pub const WEB_TIMEOUT: Span = span(POSITIVE, HOUR);
/// `web.shutdown_timeout`: systemd and Kubernetes kill after 30 s by default.
pub const SHUTDOWN_TIMEOUT: Span = span(POSITIVE, 10 * MINUTE);

/// `web.max_connections`.
pub const WEB_CONNECTIONS: RangeInclusive<u32> = 1..=1_000_000;
/// `relay.retention.delivered` / `.dead` (also at least `relay.dedupe_window`).
pub const RETENTION_AGE: Span = span(POSITIVE, 365 * DAY);
/// `relay.retention.max_bytes`: below a MiB the outbox could not hold one large webhook.
pub const RETENTION_BYTES: RangeInclusive<usize> = 1024 * 1024..=1024 * 1024 * 1024 * 1024;

/// `databases.*.max_connections`.
pub const MAX_CONNECTIONS: RangeInclusive<u32> = 1..=100;
/// `queries[].max_series`.
pub const MAX_SERIES: RangeInclusive<u32> = 1..=1_000_000;
/// The `N` of `rate_limit: N/<unit>`.
pub const RATE_COUNT: RangeInclusive<u32> = 1..=100_000;
/// `web.max_body_bytes`: a webhook body is held in memory and stored in the outbox.
pub const BODY_BYTES: RangeInclusive<usize> = 1..=64 * 1024 * 1024;

impl Span {
    /// `Err(message)` when `value` (written as `text`) is outside the span.
    pub fn check(&self, value: Duration, text: &str) -> Result<(), String> {
        if value < self.min {
            return Err(if self.min == POSITIVE {
                format!("must be positive (got `{text}`)")
            } else {
                format!("must be at least {} (got `{text}`)", show(self.min))
            });
        }
        if value > self.max {
            return Err(format!("must be at most {} (got `{text}`)", show(self.max)));
        }
        Ok(())
    }
}

/// A bound as the file would write it: `100ms`, `5m`, `7d`.
pub fn show(d: Duration) -> String {
    let seconds = d.as_secs();
    if d.subsec_nanos() != 0 || seconds == 0 {
        return format!("{}ms", d.as_millis());
    }
    for (size, unit) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m")] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

/// `Err(message)` when `value` is outside `range`.
pub fn check_number<T>(range: &RangeInclusive<T>, value: T) -> Result<(), String>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < *range.start() {
        Err(format!("must be at least {} (got {value})", range.start()))
    } else if value > *range.end() {
        Err(format!("must be at most {} (got {value})", range.end()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_read_as_the_file_writes_them() {
        assert_eq!(show(Duration::from_millis(100)), "100ms");
        assert_eq!(show(Duration::from_secs(300)), "5m");
        assert_eq!(show(Duration::from_secs(7 * DAY)), "7d");
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(
            QUERY_INTERVAL.check(Duration::ZERO, "0s").unwrap_err(),
            "must be at least 100ms (got `0s`)"
        );
        assert_eq!(
            SEND_TIMEOUT.check(Duration::ZERO, "0s").unwrap_err(),
            "must be positive (got `0s`)"
        );
        assert!(HOST_MAX_AGE.check(Duration::ZERO, "0s").is_ok());
        assert_eq!(
            check_number(&MAX_SERIES, 0).unwrap_err(),
            "must be at least 1 (got 0)"
        );
    }

    #[test]
    fn every_span_is_well_formed() {
        for span in [
            WEB_TIMEOUT,
            SHUTDOWN_TIMEOUT,
            HOST_MAX_AGE,
            MOUNT_TIMEOUT,
            CONNECT_TIMEOUT,
            QUERY_INTERVAL,
            QUERY_TIMEOUT,
            STALE_AFTER,
            SEND_TIMEOUT,
            RETRY_INITIAL,
            RETRY_MAX,
            DEDUPE_WINDOW,
            RATE_LIMIT_PAUSE,
            LEASE,
            RETENTION_AGE,
        ] {
            assert!(
                span.min <= span.max && span.max <= Duration::from_secs(365 * DAY),
                "{span:?}"
            );
        }
        // The default stale_after (3 × interval) of the longest interval is allowed.
        assert!(QUERY_INTERVAL.max * 3 <= STALE_AFTER.max);
    }
}
