//! The storage contract: what the relay asks of its outbox, implemented by the SQLite
//! file of one process ([`super::sqlite`]) and by a PostgreSQL or MySQL database that
//! several replicas share ([`super::shared`]). The dispatcher, the webhook and the
//! status page hold an [`Outbox`] and never learn which one it is.
//!
//! Claims: `due` and `due_batch` hand rows to the caller, and `open_digest_of` a digest.
//! In one process that is a read (one worker per channel); on a shared database each is
//! a claim with a lease (`FOR UPDATE SKIP LOCKED`, then leased until now + `lease`), so
//! replicas never work the same row at once, and the rows of a replica that died are
//! claimable again once its leases end. Finishing a row (`delivered`, `retry_later`,
//! `dead`, into a digest) ends its lease.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::Error;
use super::model::{
    Accepted, Acked, ChannelStats, Delivery, IncidentPage, NewNotification, OpenIncident, Redrive,
    Redriven, Row, SizePrune, Storage, StoredDigest,
};
use crate::config::OutboxLocation;

/// A target's rate budget: at most `count` messages in any `per_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub count: usize,
    pub per_ms: i64,
}

/// What the outbox knows of one target's budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetState {
    /// When messages were sent to it, oldest first.
    pub sends: Vec<i64>,
    pub paused_until_ms: Option<i64>,
}

/// The outbox's storage. Every method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the outbox lives, for logs and the status page: a path or a URL without
    /// its password.
    fn location(&self) -> String;

    /// The local directory that holds the outbox, if it is a local file (its
    /// filesystem's free space is a gauge).
    fn local_dir(&self) -> Option<&Path>;

    /// Transactions that stored accepted notifications (fewer than the notifications
    /// when concurrent webhooks share a commit).
    fn accept_commits(&self) -> u64;

    /// Stores a notification and its delivery rows (and its incident); resolves once
    /// committed. A notification with the same dedupe key accepted since
    /// `dedupe_since_ms` — by this process or another replica — is a duplicate.
    async fn accept(&self, notification: NewNotification) -> Result<Accepted, Error>;

    /// Claims the oldest deliveries of `channel` that may go out alone at `now_ms`: due,
    /// not in a digest, not claimed by another replica, and with no earlier delivery of
    /// their incident pending (a resolved message never overtakes its firing one).
    async fn due(&self, channel: &str, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, Error>;

    /// Claims the due deliveries of `channel` a digest may fold together, after delivery
    /// `after_id`: those whose earlier deliveries of the same incident are due too.
    /// Stops once the payloads read reach `max_bytes` (at least one row is read).
    async fn due_batch(
        &self,
        channel: &str,
        now_ms: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Delivery>, Error>;

    /// How many deliveries [`Store::due_batch`] could claim without limits.
    async fn due_count(&self, channel: &str, now_ms: i64) -> Result<usize, Error>;

    /// When the next delivery [`Store::due_batch`] could claim becomes due, if any.
    async fn next_due_ms(&self, channel: &str, now_ms: i64) -> Result<Option<i64>, Error>;

    async fn delivered(&self, ids: Vec<i64>, now_ms: i64) -> Result<(), Error>;

    /// Records that one part of a delivery was sent (so it is not sent again).
    async fn part_sent(&self, id: i64, key: String, now_ms: i64) -> Result<(), Error>;

    /// Keeps deliveries pending until `next_at_ms`, counting an attempt if `attempted`.
    async fn retry_later(
        &self,
        ids: Vec<i64>,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        too_long: bool,
        now_ms: i64,
    ) -> Result<(), Error>;

    /// Moves deliveries to the dead letters with `error`.
    async fn dead(&self, ids: Vec<i64>, error: String, now_ms: i64) -> Result<(), Error>;

    /// Spends one message of `target`'s budget at `at_ms` if it has one and is not
    /// paused: checked and recorded in one transaction, so processes that share the
    /// outbox never overspend a target together. False when spent or paused.
    async fn take_send(
        &self,
        channel: String,
        target: String,
        budget: Budget,
        at_ms: i64,
    ) -> Result<bool, Error>;

    /// What the outbox knows of `target`'s budget: its sends, by any channel and any
    /// replica, since `since_ms`, and the end of a pause in force at `now_ms`.
    async fn target_state(
        &self,
        target: String,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<TargetState, Error>;

    /// Pauses `target` until `until_ms` (a later pause wins).
    async fn pause(&self, target: String, until_ms: i64) -> Result<(), Error>;

    /// Stores a digest of `rows` (claimed pending deliveries of `channel`) before it is
    /// sent; the caller holds it.
    async fn open_digest(
        &self,
        channel: String,
        rows: Vec<i64>,
        messages: String,
        now_ms: i64,
    ) -> Result<i64, Error>;

    /// Claims the oldest open digest of `channel` that nobody holds (left by a failure,
    /// a crash or a replica that died), if any.
    async fn open_digest_of(
        &self,
        channel: &str,
        now_ms: i64,
    ) -> Result<Option<StoredDigest>, Error>;

    async fn digest_part_sent(&self, id: i64, key: String) -> Result<(), Error>;

    /// Keeps a digest open until `next_at_ms`; its rows show `error` meanwhile.
    async fn digest_retry_later(
        &self,
        id: i64,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        now_ms: i64,
    ) -> Result<(), Error>;

    /// Closes a digest: its rows become `delivered`, or `dead` with `error`.
    async fn close_digest(&self, id: i64, dead: Option<String>, now_ms: i64) -> Result<(), Error>;

    /// Gives a digest's rows back to the queue (digested again, at half size when
    /// `too_long`).
    async fn dissolve_digest(&self, id: i64, too_long: bool, now_ms: i64) -> Result<(), Error>;

    /// Forgets finished rows past their age, in batches.
    async fn prune(
        &self,
        now_ms: i64,
        keep_delivered_ms: i64,
        keep_dead_ms: i64,
    ) -> Result<usize, Error>;

    /// Brings the space in use down to `max_bytes` by dropping the oldest payloads no
    /// pending row needs (see `relay.retention.max_bytes`).
    async fn prune_to_size(&self, max_bytes: u64, dedupe_since_ms: i64)
    -> Result<SizePrune, Error>;

    async fn storage(&self) -> Result<Storage, Error>;

    /// Pending and dead rows per channel.
    async fn stats(&self) -> Result<Vec<ChannelStats>, Error>;

    /// The latest rows in `state` (or of any state), newest first.
    async fn latest(&self, state: Option<&'static str>, limit: usize) -> Result<Vec<Row>, Error>;

    /// Incidents firing or acknowledged, oldest first.
    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, Error>;

    async fn incident(&self, id: i64) -> Result<Option<IncidentPage>, Error>;

    /// Fires escalation step `step` of incident `id` (queues its latest notification for
    /// `channels`, with the record that the step fired): false if the incident is no
    /// longer firing unacknowledged or the step is not the next one.
    async fn fire_step(
        &self,
        id: i64,
        step: usize,
        channels: Vec<String>,
        now_ms: i64,
    ) -> Result<bool, Error>;

    async fn ack(&self, id: i64, by: Option<String>, now_ms: i64) -> Result<Acked, Error>;

    /// Forgets incidents resolved before `before_ms`, with their fired steps.
    async fn prune_incidents(&self, before_ms: i64) -> Result<usize, Error>;

    /// Dead letters back to pending.
    async fn redrive(&self, which: Redrive, now_ms: i64) -> Result<Redriven, Error>;

    /// The secret kept under `name` (hex), storing `fresh` first if there is none: every
    /// process that shares the outbox signs with the same key.
    async fn keep_secret(&self, name: &str, fresh: String) -> Result<String, Error>;

    /// Gives up this process's claims (at shutdown), so another replica resumes them
    /// without waiting for the leases to end.
    async fn release(&self);
}

/// Handle to the outbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbox(Arc<dyn Store>);

impl std::ops::Deref for Outbox {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Outbox {
    /// Opens the outbox `location` names (creating and migrating its schema if needed):
    /// SQLite in `state_dir`, or the shared database.
    pub async fn open(location: &OutboxLocation, state_dir: &Path) -> Result<Outbox, Error> {
        match location {
            OutboxLocation::StateDir => {
                let dir = state_dir.to_owned();
                let store = tokio::task::spawn_blocking(move || super::sqlite::Sqlite::open(&dir))
                    .await
                    .map_err(|error| Error::Sqlite(format!("outbox opener: {error}")))??;
                Ok(Outbox(Arc::new(store)))
            }
            OutboxLocation::Shared(shared) => {
                let store = super::shared::Shared::open(shared).await?;
                Ok(Outbox(Arc::new(store)))
            }
        }
    }

    /// The SQLite outbox in `state_dir`, opened on the calling thread (tools, benches).
    pub fn open_local(state_dir: &Path) -> Result<Outbox, Error> {
        Ok(Outbox(Arc::new(super::sqlite::Sqlite::open(state_dir)?)))
    }
}
