//! The outbox: a durable queue of notifications to deliver — in SQLite (WAL) under
//! `state_dir/outbox.db` for one process ([`sqlite`]), or in a PostgreSQL or MySQL
//! database that replicas share ([`shared`], `relay.outbox`), behind one contract
//! ([`Store`]). The tables below are SQLite's; the shared outbox has the same ones,
//! prefixed `lookout_`, plus the unique dedupe keys, the leases of claimed rows and the
//! targets' lock rows (see [`shared`]).
//!
//! # Data
//! - `notifications`: one row per accepted webhook notification — the receiver, the raw
//!   payload as received, a dedupe key, and when it arrived.
//! - `deliveries`: one row per (notification, channel) — `pending`, `delivered` or `dead`,
//!   attempts, the next attempt time, the last error, which parts were already sent, its
//!   incident (receiver + group key, hashed) and the open digest it belongs to, if any.
//! - `digests`: a digest being delivered — its rendered messages and the parts sent so
//!   far; its rows point at it through `deliveries.digest_id`.
//! - `sends`: one row per message sent to a target, kept for an hour, so rate budgets
//!   survive a restart; `pauses`: targets paused after a rate-limit answer, until when.
//! - `delivery_counts`: rows per (channel, state), kept by triggers on `deliveries`, so
//!   the per-second statistics cost the same at 300k rows as at 3 (schema version 2).
//!   Each delivery row carries its notification's summary ("firing HighCPU ×3"),
//!   computed at accept time, so the status page never reads a payload.
//! - `incidents` (schema version 4): per escalating receiver, one row per occurrence of
//!   a group from its first firing notification to its resolution — its latest
//!   notification, `firing`/`acked`/`resolved`, who acknowledged it, how many steps
//!   fired; `escalations`: one row per fired step, keyed (incident, step).
//!
//! # Connections (SQLite)
//! The writer thread owns the only read-write connection. The status page and the
//! statistics read on a separate read-only connection (WAL readers never block the
//! writer), so no read queues in front of a webhook's commit.
//!
//! # Invariants
//! - **Invariant:** the webhook answers 2xx only after the notification and all its
//!   delivery rows are committed (`synchronous = FULL`: the commit is on disk). Concurrent
//!   webhooks are committed together (group commit) by the single writer thread.
//! - **Invariant:** a delivery row leaves `pending` only when its channel accepted every
//!   part (`delivered`) or answered with a permanent error (`dead`, with the reason).
//!   Rate limits and transient errors keep it pending.
//! - **Invariant:** the same notification (receiver, group key, status, alert fingerprints
//!   with start times) accepted again within the dedupe window creates no new rows.
//! - **Invariant:** an escalation step is recorded in the transaction that queues its
//!   deliveries, only for a `firing` incident and only as the step after the last one
//!   fired: each step fires at most once, in order, across restarts.
//! - **Invariant:** a delivery is not due while an earlier delivery of its incident on
//!   the same channel is pending, unless both go out in the same digest: a resolved
//!   message never overtakes its firing one.
//! - Parts already sent are recorded as they go — of a row or of a digest — so a retry
//!   or a restart does not resend them. A digest is stored before its first part goes out
//!   and its rows stay pending until its last part is delivered.
//! - Retention (`relay.retention`, applied by `notify::retention`): delivered rows are
//!   kept 7 days and dead letters 30 days (for the status page and the dedupe window),
//!   then pruned with their notifications. When the pages in use exceed `max_bytes`, the
//!   oldest notifications without pending rows go first — fully delivered ones, then ones
//!   with dead letters — deleted if older than the dedupe window, otherwise kept without
//!   their payload (the dedupe key and summary stay). **Invariant:** a notification with
//!   a pending delivery keeps its payload whatever the size.
//!
//! # Recovery
//! Nothing to do: on start every `pending` row whose `next_attempt_at` has passed is due
//! again (on a shared outbox, once the lease of the replica that claimed it ended), an open digest resumes at its next unsent part, and pauses still in force are
//! restored. A crash between a send and its `delivered` mark resends that message once
//! (at-least-once; duplicates are bounded by the sends in flight at the crash). SQLite's
//! WAL recovery restores the last committed state. Schema versions are tracked in
//! `PRAGMA user_version` and migrated forward in [`store::migrate`].

pub mod key;
mod model;
mod shared;
mod sqlite;
mod store;

pub use model::{
    Accepted, Acked, ChannelStats, Delivery, IncidentPage, NewNotification, OpenIncident, Redrive,
    Redriven, Row, SizePrune, Storage, StoredDigest, now_ms, summary,
};
pub use store::{Budget, Outbox, Store, TargetState};

/// Outbox failures. The webhook maps every one of them to 503 so Alertmanager retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot create the state directory {path}: {message}")]
    StateDir { path: String, message: String },
    #[error("outbox database: {0}")]
    Sqlite(String),
    /// The shared outbox's database (PostgreSQL or MySQL) failed or cannot be reached.
    #[error("shared outbox: {0}")]
    Shared(String),
    #[error("the outbox writer has stopped")]
    Stopped,
    #[error("outbox schema version {found} is newer than this lookout understands ({supported})")]
    TooNew { found: i64, supported: i64 },
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Sqlite(error.to_string())
    }
}
