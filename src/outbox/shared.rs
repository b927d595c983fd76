//! The shared outbox: PostgreSQL or MySQL/MariaDB that any number of lookout replicas
//! use at once (`relay.outbox`). The same rows as the SQLite outbox, plus what sharing
//! needs:
//!
//! - **Commit before 2xx**: a webhook's notification, delivery rows and incident are one
//!   transaction on the database; the webhook answers after it commits.
//! - **Dedupe by a unique key** (`lookout_dedupe`): a replica takes the key's row (insert,
//!   or renew it once the dedupe window has passed) and locks it; a second replica
//!   accepting the same notification waits for that row and finds it taken.
//! - **Claims with leases**: due rows are selected `FOR UPDATE SKIP LOCKED` (replicas
//!   claiming at once take disjoint rows) and marked leased by this replica until now +
//!   `relay.lease`, in one transaction. A background task renews this replica's leases
//!   every third of `lease`; a replica that dies stops renewing and its rows are claimable
//!   again once the leases end. Parts already sent are recorded, so the replica that
//!   resumes a row or a digest does not send them again. Finishing a row ends its lease;
//!   a clean shutdown releases the rest at once.
//! - **Shared budgets**: a target's sends are rows in `lookout_sends`; spending one locks
//!   the target's row in `lookout_targets`, counts its sends in the window and records the
//!   new one in one transaction, so N replicas together stay within one robot's budget.
//!   Pauses after a rate-limit answer are in the same row.
//! - **Escalations and acks** are conditional updates of the incident row (`steps_done`,
//!   `state`): of two replicas firing one step, one updates the row and the other finds
//!   it advanced.
//! - Transactions the engine aborts to break a deadlock are run again (a few times).

mod schema;
mod sql;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::Error;
use super::model::{
    Accepted, Acked, ChannelStats, Delivery, IncidentPage, NewNotification, OpenIncident, Redrive,
    Redriven, Row, SizePrune, Storage, StoredDigest, now_ms, parts_sent,
};
use super::store::{Budget, Store, TargetState};
use crate::config::SharedOutbox;
use crate::configfile::secret::redact_url;
use sql::{Dialect, Pool, SqlError, Tx, Value, params};

/// Rows claimed per transaction (a digest claims its backlog in several).
const CLAIM_BATCH: usize = 256;
/// Sends older than this are forgotten (no rate window is longer).
const SENDS_KEPT_MS: i64 = 3_600_000;
/// A transaction the engine aborted to break a deadlock is run this many times in all.
const ATTEMPTS: u32 = 5;

/// Claimable by this replica: nobody holds it, its lease ended, or it is ours
/// (parameters: now, holder).
const CLAIMABLE: &str = "(d.leased_until_ms IS NULL OR d.leased_until_ms < ? OR d.leased_by = ?)";
/// No earlier delivery of `d`'s incident holds it back when it goes out alone.
const UNBLOCKED_ALONE: &str = "NOT EXISTS (SELECT 1 FROM lookout_deliveries e
    WHERE e.channel = d.channel AND e.incident = d.incident AND e.state = 'pending' AND e.id < d.id)";
/// ... when it goes into a digest: only an earlier one that is not due, is in a digest,
/// or is claimed by another replica (parameters: now, now, holder).
const UNBLOCKED_IN_DIGEST: &str = "NOT EXISTS (SELECT 1 FROM lookout_deliveries e
    WHERE e.channel = d.channel AND e.incident = d.incident AND e.state = 'pending' AND e.id < d.id
    AND (e.next_attempt_at_ms > ? OR e.digest_id IS NOT NULL
         OR (e.leased_until_ms >= ? AND e.leased_by <> ?)))";

/// Runs `body` (with `tx`, the transaction) and commits: `in_tx!(inner, "what", |tx|
/// { … Ok(value) })`. A transaction the engine aborted to break a deadlock runs again.
/// (A macro rather than a function taking an async closure: the futures of such closures
/// cannot yet be proven `Send` for every lifetime of the transaction they borrow.)
macro_rules! in_tx {
    ($inner:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let inner: &Inner = $inner;
        let mut attempt = 1;
        loop {
            let result: Result<_, SqlError> = async {
                let mut conn = inner.pool.conn().await?;
                let mut transaction = conn.begin().await?;
                let value = {
                    let $tx = &mut transaction;
                    let value: Result<_, SqlError> = async { $body }.await;
                    value?
                };
                transaction.commit().await?;
                Ok(value)
            }
            .await;
            match result {
                Ok(value) => break Ok(value),
                Err(error) if error.conflict && attempt < ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(5..50))).await;
                }
                Err(error) => break Err(Error::Shared(format!("{}: {error}", $what))),
            }
        }
    }};
}

/// A shared outbox: cheap to share (the pool and the lease renewal live in `Inner`).
#[derive(Debug)]
pub(super) struct Shared {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: Pool,
    dialect: Dialect,
    /// This replica's name in leases: host, process and a random part.
    holder: String,
    lease_ms: i64,
    location: String,
    accept_commits: AtomicU64,
}

impl Shared {
    /// Connects, migrates the schema (once, whichever replica comes first) and starts
    /// renewing this replica's leases.
    pub(super) async fn open(config: &SharedOutbox) -> Result<Shared, Error> {
        let location = redact_url(&config.database.url);
        let failed = |error: SqlError| Error::Shared(format!("{location}: {error}"));
        let pool = Pool::open(&config.database).await.map_err(failed)?;
        let dialect = pool.dialect();
        {
            let mut conn = pool.conn().await.map_err(failed)?;
            match schema::migrate(&mut conn, dialect).await {
                Ok(()) => {}
                Err(schema::Migration::Sql(error)) => return Err(failed(error)),
                Err(schema::Migration::TooNew(found)) => {
                    return Err(Error::TooNew {
                        found,
                        supported: schema::VERSION,
                    });
                }
            }
        }
        let inner = Arc::new(Inner {
            pool,
            dialect,
            holder: holder_name(),
            lease_ms: i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX / 4),
            location,
            accept_commits: AtomicU64::new(0),
        });
        tokio::spawn(renew_leases(Arc::downgrade(&inner)));
        Ok(Shared { inner })
    }
}

/// `host-pid-random`: unique per process, readable in the tables.
fn holder_name() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Targets are stored as hashes: robot URLs carry tokens.
fn target_key(target: &str) -> String {
    hex::encode(Sha256::digest(target.as_bytes()))
}

/// `?, ?, ?` for `n` values.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Renews this replica's leases every third of the lease, until the outbox is dropped.
async fn renew_leases(inner: Weak<Inner>) {
    loop {
        let Some(period) = inner.upgrade().map(|i| i.lease_ms / 3) else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(period.max(100)).unwrap_or(100),
        ))
        .await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let until = now_ms() + inner.lease_ms;
        let holder = inner.holder.clone();
        let renewed = in_tx!(&inner, "renew leases", |tx| {
            tx.execute(
                    "UPDATE lookout_deliveries SET leased_until_ms = ? WHERE leased_by = ? AND state = 'pending'",
                    params![until, &holder],
                )
                .await?;
            tx.execute(
                "UPDATE lookout_digests SET leased_until_ms = ? WHERE leased_by = ?",
                params![until, &holder],
            )
            .await
        });
        if let Err(error) = renewed {
            tracing::warn!(%error, "cannot renew outbox leases; other replicas take over this replica's rows when they end");
        }
    }
}

impl Inner {
    fn lease_until(&self, now: i64) -> i64 {
        now + self.lease_ms
    }

    /// Locks `name`'s row in `table` (`target` or `name` column `key`), creating it first.
    async fn lock_row(
        &self,
        tx: &mut Tx<'_>,
        table: &str,
        key: &str,
        name: &str,
    ) -> Result<(), SqlError> {
        let select = format!("SELECT {key} FROM {table} WHERE {key} = ? FOR UPDATE");
        if tx.query_opt(&select, params![name]).await?.is_some() {
            return Ok(());
        }
        let insert = match self.dialect {
            Dialect::Postgres => {
                format!("INSERT INTO {table} ({key}) VALUES (?) ON CONFLICT ({key}) DO NOTHING")
            }
            Dialect::Mysql => format!("INSERT IGNORE INTO {table} ({key}) VALUES (?)"),
        };
        tx.execute(&insert, params![name]).await?;
        tx.query_one(&select, params![name]).await.map(drop)
    }

    /// Claims due rows of `channel` (see [`Store::due`] and [`Store::due_batch`]).
    async fn claim(
        &self,
        channel: &str,
        now: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
        alone: bool,
    ) -> Result<Vec<Delivery>, Error> {
        let limit = limit.min(CLAIM_BATCH);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let holder = self.holder.clone();
        let until = self.lease_until(now);
        in_tx!(self, "claim deliveries", |tx| {
            let mut values: Vec<Value> = params![channel, now, after_id, now, &holder].to_vec();
            let unblocked = if alone {
                UNBLOCKED_ALONE
            } else {
                values.extend_from_slice(params![now, now, &holder]);
                UNBLOCKED_IN_DIGEST
            };
            values.push(Value::from(limit));
            let ids: Vec<i64> = tx
                .query(
                    &format!(
                        "SELECT d.id FROM lookout_deliveries d
                         WHERE d.channel = ? AND d.state = 'pending' AND d.next_attempt_at_ms <= ?
                           AND d.digest_id IS NULL AND d.id > ? AND {CLAIMABLE} AND {unblocked}
                         ORDER BY d.id LIMIT ? FOR UPDATE SKIP LOCKED"
                    ),
                    &values,
                )
                .await?
                .iter()
                .map(|r| r.int(0))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let ids_values: Vec<Value> = ids.iter().map(|id| Value::from(*id)).collect();
            let rows = tx
                .query(
                    &format!(
                        "SELECT d.id, d.notification_id, d.channel, n.receiver, n.payload, d.attempts,
                                n.received_at_ms, d.sent_parts, d.too_long, n.incident_id
                         FROM lookout_deliveries d JOIN lookout_notifications n ON n.id = d.notification_id
                         WHERE d.id IN ({}) ORDER BY d.id",
                        placeholders(ids.len())
                    ),
                    &ids_values,
                )
                .await?;
            let (mut out, mut bytes) = (Vec::new(), 0usize);
            for r in rows {
                if bytes >= max_bytes {
                    break;
                }
                let payload = r.text(4)?;
                bytes = bytes.saturating_add(payload.len());
                out.push(Delivery {
                    id: r.int(0)?,
                    notification_id: r.int(1)?,
                    channel: r.text(2)?,
                    receiver: r.text(3)?,
                    payload,
                    attempts: r.int(5)?,
                    received_at_ms: r.int(6)?,
                    sent_parts: parts_sent(&r.text(7)?),
                    too_long: r.int(8)? != 0,
                    incident_id: r.opt_int(9)?,
                });
            }
            let mut lease: Vec<Value> = params![&holder, until].to_vec();
            lease.extend(out.iter().map(|d| Value::from(d.id)));
            tx.execute(
                &format!(
                    "UPDATE lookout_deliveries SET leased_by = ?, leased_until_ms = ? WHERE id IN ({})",
                    placeholders(out.len())
                ),
                &lease,
            )
            .await?;
            Ok(out)
        })
    }

    /// Runs `sql` once per id (`?` last) with `rest` before it, in one transaction.
    async fn update_each(
        &self,
        what: &str,
        sql: &str,
        ids: &[i64],
        rest: &[Value],
    ) -> Result<(), Error> {
        in_tx!(self, what, |tx| {
            for id in ids {
                let mut values = rest.to_vec();
                values.push(Value::from(*id));
                tx.execute(sql, &values).await?;
            }
            Ok(())
        })
    }
}

/// Opens, updates or resolves `n`'s incident, in the transaction that stores `n`. The
/// incident's lock row serializes two replicas accepting notifications of one group.
async fn record_incident(
    inner: &Inner,
    tx: &mut Tx<'_>,
    notification_id: i64,
    n: &NewNotification,
) -> Result<(), SqlError> {
    inner
        .lock_row(
            tx,
            "lookout_locks",
            "name",
            &format!("incident:{}", n.incident),
        )
        .await?;
    let open = tx
        .query_opt(
            "SELECT id FROM lookout_incidents WHERE incident = ? AND state <> 'resolved' ORDER BY id DESC LIMIT 1",
            params![&n.incident],
        )
        .await?
        .map(|r| r.int(0))
        .transpose()?;
    let now = n.received_at_ms;
    let incident_id = match (open, n.firing) {
        (Some(id), true) => {
            tx.execute(
                "UPDATE lookout_incidents SET notification_id = ?, summary = ?, updated_at_ms = ? WHERE id = ?",
                params![notification_id, &n.summary, now, id],
            )
            .await?;
            id
        }
        (None, true) => {
            tx.insert(
                "INSERT INTO lookout_incidents (incident, receiver, summary, notification_id, state, steps_done, opened_at_ms, updated_at_ms)
                 VALUES (?, ?, ?, ?, 'firing', 0, ?, ?)",
                params![&n.incident, &n.receiver, &n.summary, notification_id, now, now],
            )
            .await?
        }
        (Some(id), false) => {
            tx.execute(
                "UPDATE lookout_incidents SET state = 'resolved', resolved_at_ms = ?, updated_at_ms = ? WHERE id = ?",
                params![now, now, id],
            )
            .await?;
            id
        }
        (None, false) => return Ok(()),
    };
    tx.execute(
        "UPDATE lookout_notifications SET incident_id = ? WHERE id = ?",
        params![incident_id, notification_id],
    )
    .await
    .map(drop)
}

#[async_trait::async_trait]
impl Store for Shared {
    fn location(&self) -> String {
        self.inner.location.clone()
    }

    fn local_dir(&self) -> Option<&std::path::Path> {
        None
    }

    fn accept_commits(&self) -> u64 {
        self.inner.accept_commits.load(Ordering::Relaxed)
    }

    async fn accept(&self, n: NewNotification) -> Result<Accepted, Error> {
        let inner = &*self.inner;
        let upsert = inner.dialect.pick(
            "INSERT INTO lookout_dedupe (dedupe_key, notification_id, received_at_ms) VALUES (?, NULL, ?)
             ON CONFLICT (dedupe_key) DO UPDATE SET notification_id = NULL, received_at_ms = EXCLUDED.received_at_ms
             WHERE lookout_dedupe.received_at_ms < ?",
            "INSERT INTO lookout_dedupe (dedupe_key, notification_id, received_at_ms) VALUES (?, NULL, ?)
             ON DUPLICATE KEY UPDATE notification_id = IF(received_at_ms < ?, NULL, notification_id),
                                     received_at_ms = IF(received_at_ms < ?, VALUES(received_at_ms), received_at_ms)",
        );
        let accepted = in_tx!(inner, "accept", |tx| {
            let mut values = params![&n.dedupe_key, n.received_at_ms, n.dedupe_since_ms].to_vec();
            if inner.dialect == Dialect::Mysql {
                values.push(Value::from(n.dedupe_since_ms));
            }
            tx.execute(upsert, &values).await?;
            // The key's row is ours (fresh or renewed: no notification yet) or taken.
            let taken = tx
                .query_one(
                    "SELECT notification_id FROM lookout_dedupe WHERE dedupe_key = ? FOR UPDATE",
                    params![&n.dedupe_key],
                )
                .await?
                .opt_int(0)?;
            if let Some(id) = taken {
                return Ok(Accepted::Duplicate { id });
            }
            let id = tx
                    .insert(
                        "INSERT INTO lookout_notifications (receiver, dedupe_key, payload, summary, received_at_ms) VALUES (?, ?, ?, ?, ?)",
                        params![&n.receiver, &n.dedupe_key, &n.payload, &n.summary, n.received_at_ms],
                    )
                    .await?;
            for channel in &n.channels {
                tx.execute(
                        "INSERT INTO lookout_deliveries (notification_id, channel, state, attempts, next_attempt_at_ms, sent_parts, too_long, created_at_ms, updated_at_ms, summary, incident)
                         VALUES (?, ?, 'pending', 0, ?, '', 0, ?, ?, ?, ?)",
                        params![id, channel, n.received_at_ms, n.received_at_ms, n.received_at_ms, &n.summary, &n.incident],
                    )
                    .await?;
            }
            if n.escalates {
                record_incident(inner, tx, id, &n).await?;
            }
            tx.execute(
                "UPDATE lookout_dedupe SET notification_id = ? WHERE dedupe_key = ?",
                params![id, &n.dedupe_key],
            )
            .await?;
            Ok(Accepted::Stored {
                id,
                deliveries: n.channels.len(),
            })
        })?;
        inner.accept_commits.fetch_add(1, Ordering::Relaxed);
        Ok(accepted)
    }

    async fn due(&self, channel: &str, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, Error> {
        self.inner
            .claim(channel, now_ms, 0, limit, usize::MAX, true)
            .await
    }

    async fn due_batch(
        &self,
        channel: &str,
        now_ms: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.inner
            .claim(channel, now_ms, after_id, limit, max_bytes, false)
            .await
    }

    async fn due_count(&self, channel: &str, now_ms: i64) -> Result<usize, Error> {
        let holder = self.inner.holder.clone();
        in_tx!(&self.inner, "count due deliveries", |tx| {
            tx.query_one(
                    &format!(
                        "SELECT COUNT(*) FROM lookout_deliveries d WHERE d.channel = ? AND d.state = 'pending'
                         AND d.next_attempt_at_ms <= ? AND d.digest_id IS NULL AND {CLAIMABLE} AND {UNBLOCKED_IN_DIGEST}"
                    ),
                    params![channel, now_ms, now_ms, &holder, now_ms, now_ms, &holder],
                )
                .await?
                .int(0)
                .map(|n| usize::try_from(n).unwrap_or(0))
        })
    }

    async fn next_due_ms(&self, channel: &str, now_ms: i64) -> Result<Option<i64>, Error> {
        let holder = self.inner.holder.clone();
        in_tx!(&self.inner, "next due delivery", |tx| {
            // A row another replica holds is due for us when its lease ends.
            tx.query_one(
                    &format!(
                        "SELECT MIN(CASE WHEN d.leased_by <> ? AND d.leased_until_ms > d.next_attempt_at_ms
                                         THEN d.leased_until_ms ELSE d.next_attempt_at_ms END)
                         FROM lookout_deliveries d WHERE d.channel = ? AND d.state = 'pending'
                           AND d.digest_id IS NULL AND {UNBLOCKED_IN_DIGEST}"
                    ),
                    params![&holder, channel, now_ms, now_ms, &holder],
                )
                .await?
                .opt_int(0)
        })
    }

    async fn delivered(&self, ids: Vec<i64>, now_ms: i64) -> Result<(), Error> {
        self.inner
            .update_each(
                "mark delivered",
                "UPDATE lookout_deliveries SET state = 'delivered', delivered_at_ms = ?, updated_at_ms = ?, last_error = NULL,
                 leased_by = NULL, leased_until_ms = NULL WHERE id = ?",
                &ids,
                params![now_ms, now_ms],
            )
            .await
    }

    async fn part_sent(&self, id: i64, key: String, now_ms: i64) -> Result<(), Error> {
        let sql = self.inner.dialect.pick(
            "UPDATE lookout_deliveries SET sent_parts = sent_parts || ? || ',', updated_at_ms = ? WHERE id = ?",
            "UPDATE lookout_deliveries SET sent_parts = CONCAT(sent_parts, ?, ','), updated_at_ms = ? WHERE id = ?",
        );
        self.inner
            .update_each("record a sent part", sql, &[id], params![key, now_ms])
            .await
    }

    async fn retry_later(
        &self,
        ids: Vec<i64>,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        too_long: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.inner
            .update_each(
                "retry later",
                "UPDATE lookout_deliveries SET next_attempt_at_ms = ?, last_error = ?, attempts = attempts + ?,
                 too_long = CASE WHEN ? = 1 THEN 1 ELSE too_long END, updated_at_ms = ?,
                 leased_by = NULL, leased_until_ms = NULL
                 WHERE state = 'pending' AND id = ?",
                &ids,
                params![next_at_ms, error, attempted, too_long, now_ms],
            )
            .await
    }

    async fn dead(&self, ids: Vec<i64>, error: String, now_ms: i64) -> Result<(), Error> {
        self.inner
            .update_each(
                "move to dead letters",
                "UPDATE lookout_deliveries SET state = 'dead', last_error = ?, attempts = attempts + 1, updated_at_ms = ?,
                 leased_by = NULL, leased_until_ms = NULL WHERE id = ?",
                &ids,
                params![error, now_ms],
            )
            .await
    }

    async fn take_send(
        &self,
        channel: String,
        target: String,
        budget: Budget,
        at_ms: i64,
    ) -> Result<bool, Error> {
        let inner = &*self.inner;
        let key = target_key(&target);
        in_tx!(inner, "spend a send", |tx| {
            inner
                .lock_row(tx, "lookout_targets", "target", &key)
                .await?;
            let paused = tx
                .query_one(
                    "SELECT paused_until_ms FROM lookout_targets WHERE target = ?",
                    params![&key],
                )
                .await?
                .opt_int(0)?
                .is_some_and(|until| until > at_ms);
            let recent = tx
                .query_one(
                    "SELECT COUNT(*) FROM lookout_sends WHERE target = ? AND at_ms > ?",
                    params![&key, at_ms - budget.per_ms],
                )
                .await?
                .int(0)?;
            if paused || usize::try_from(recent).unwrap_or(usize::MAX) >= budget.count {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO lookout_sends (channel, target, at_ms) VALUES (?, ?, ?)",
                params![&channel, &key, at_ms],
            )
            .await?;
            Ok(true)
        })
    }

    async fn target_state(
        &self,
        target: String,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<TargetState, Error> {
        let key = target_key(&target);
        in_tx!(&self.inner, "read a target's budget", |tx| {
            let sends = tx
                    .query(
                        "SELECT at_ms FROM lookout_sends WHERE target = ? AND at_ms >= ? ORDER BY at_ms",
                        params![&key, since_ms],
                    )
                    .await?
                    .iter()
                    .map(|r| r.int(0))
                    .collect::<Result<_, _>>()?;
            let paused_until_ms = tx
                    .query_opt(
                        "SELECT paused_until_ms FROM lookout_targets WHERE target = ? AND paused_until_ms > ?",
                        params![&key, now_ms],
                    )
                    .await?
                    .map(|r| r.int(0))
                    .transpose()?;
            Ok(TargetState {
                sends,
                paused_until_ms,
            })
        })
    }

    async fn pause(&self, target: String, until_ms: i64) -> Result<(), Error> {
        let inner = &*self.inner;
        let key = target_key(&target);
        in_tx!(inner, "pause a target", |tx| {
            inner
                .lock_row(tx, "lookout_targets", "target", &key)
                .await?;
            tx.execute(
                    "UPDATE lookout_targets SET paused_until_ms = ? WHERE target = ? AND (paused_until_ms IS NULL OR paused_until_ms < ?)",
                    params![until_ms, &key, until_ms],
                )
                .await
                .map(drop)
        })
    }

    async fn open_digest(
        &self,
        channel: String,
        rows: Vec<i64>,
        messages: String,
        now_ms: i64,
    ) -> Result<i64, Error> {
        let inner = &*self.inner;
        let until = inner.lease_until(now_ms);
        in_tx!(inner, "store a digest", |tx| {
            let id = tx
                    .insert(
                        "INSERT INTO lookout_digests (channel, messages, sent_parts, attempts, next_attempt_at_ms, created_at_ms, leased_by, leased_until_ms)
                         VALUES (?, ?, '', 0, ?, ?, ?, ?)",
                        params![&channel, &messages, now_ms, now_ms, &inner.holder, until],
                    )
                    .await?;
            for row in &rows {
                tx.execute(
                        "UPDATE lookout_deliveries SET digest_id = ?, updated_at_ms = ?, leased_by = NULL, leased_until_ms = NULL
                         WHERE id = ? AND state = 'pending' AND digest_id IS NULL",
                        params![id, now_ms, *row],
                    )
                    .await?;
            }
            Ok(id)
        })
    }

    async fn open_digest_of(
        &self,
        channel: &str,
        now_ms: i64,
    ) -> Result<Option<StoredDigest>, Error> {
        let inner = &*self.inner;
        let until = inner.lease_until(now_ms);
        in_tx!(inner, "claim a digest", |tx| {
            let Some(r) = tx
                    .query_opt(
                        &format!(
                            "SELECT d.id, d.channel, d.messages, d.sent_parts, d.attempts, d.next_attempt_at_ms
                             FROM lookout_digests d WHERE d.channel = ? AND {CLAIMABLE}
                             ORDER BY d.id LIMIT 1 FOR UPDATE SKIP LOCKED"
                        ),
                        params![channel, now_ms, &inner.holder],
                    )
                    .await?
                else {
                    return Ok(None);
                };
            let mut digest = StoredDigest {
                id: r.int(0)?,
                channel: r.text(1)?,
                messages: r.text(2)?,
                sent_parts: parts_sent(&r.text(3)?),
                attempts: r.int(4)?,
                next_attempt_at_ms: r.int(5)?,
                rows: Vec::new(),
            };
            tx.execute(
                "UPDATE lookout_digests SET leased_by = ?, leased_until_ms = ? WHERE id = ?",
                params![&inner.holder, until, digest.id],
            )
            .await?;
            digest.rows = tx
                    .query(
                        "SELECT d.id, n.received_at_ms FROM lookout_deliveries d JOIN lookout_notifications n ON n.id = d.notification_id
                         WHERE d.digest_id = ? AND d.state = 'pending' ORDER BY d.id",
                        params![digest.id],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((r.int(0)?, r.int(1)?)))
                    .collect::<Result<_, SqlError>>()?;
            Ok(Some(digest))
        })
    }

    async fn digest_part_sent(&self, id: i64, key: String) -> Result<(), Error> {
        let sql = self.inner.dialect.pick(
            "UPDATE lookout_digests SET sent_parts = sent_parts || ? || ',' WHERE id = ?",
            "UPDATE lookout_digests SET sent_parts = CONCAT(sent_parts, ?, ',') WHERE id = ?",
        );
        self.inner
            .update_each("record a sent digest part", sql, &[id], params![key])
            .await
    }

    async fn digest_retry_later(
        &self,
        id: i64,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        in_tx!(&self.inner, "retry a digest later", |tx| {
            tx.execute(
                    "UPDATE lookout_digests SET next_attempt_at_ms = ?, last_error = ?, attempts = attempts + ? WHERE id = ?",
                    params![next_at_ms, &error, attempted, id],
                )
                .await?;
            tx.execute(
                    "UPDATE lookout_deliveries SET next_attempt_at_ms = ?, last_error = ?, attempts = attempts + ?, updated_at_ms = ?
                     WHERE digest_id = ? AND state = 'pending'",
                    params![next_at_ms, &error, attempted, now_ms, id],
                )
                .await
                .map(drop)
        })
    }

    async fn close_digest(&self, id: i64, dead: Option<String>, now_ms: i64) -> Result<(), Error> {
        in_tx!(&self.inner, "close a digest", |tx| {
            match &dead {
                    None => tx.execute(
                        "UPDATE lookout_deliveries SET state = 'delivered', delivered_at_ms = ?, updated_at_ms = ?, last_error = NULL
                         WHERE digest_id = ? AND state = 'pending'",
                        params![now_ms, now_ms, id],
                    )
                    .await?,
                    Some(error) => tx.execute(
                        "UPDATE lookout_deliveries SET state = 'dead', last_error = ?, attempts = attempts + 1, updated_at_ms = ?
                         WHERE digest_id = ? AND state = 'pending'",
                        params![error, now_ms, id],
                    )
                    .await?,
                };
            tx.execute("DELETE FROM lookout_digests WHERE id = ?", params![id])
                .await
                .map(drop)
        })
    }

    async fn dissolve_digest(&self, id: i64, too_long: bool, now_ms: i64) -> Result<(), Error> {
        in_tx!(&self.inner, "dissolve a digest", |tx| {
            tx.execute(
                    "UPDATE lookout_deliveries SET digest_id = NULL, too_long = CASE WHEN ? = 1 THEN 1 ELSE too_long END, updated_at_ms = ?
                     WHERE digest_id = ?",
                    params![too_long, now_ms, id],
                )
                .await?;
            tx.execute("DELETE FROM lookout_digests WHERE id = ?", params![id])
                .await
                .map(drop)
        })
    }

    async fn prune(
        &self,
        now_ms: i64,
        keep_delivered_ms: i64,
        keep_dead_ms: i64,
    ) -> Result<usize, Error> {
        const OLD: &str = "((state = 'delivered' AND updated_at_ms < ?) OR (state = 'dead' AND updated_at_ms < ?))";
        /// Notifications per transaction: webhooks commit between batches.
        const BATCH: i64 = 256;
        let (delivered_before, dead_before) = (now_ms - keep_delivered_ms, now_ms - keep_dead_ms);
        let mut removed = 0;
        loop {
            let (batch_removed, notifications) = in_tx!(&self.inner, "prune old rows", |tx| {
                let ids: Vec<i64> = tx
                        .query(
                            &format!("SELECT DISTINCT notification_id FROM lookout_deliveries WHERE {OLD} LIMIT ?"),
                            params![delivered_before, dead_before, BATCH],
                        )
                        .await?
                        .iter()
                        .map(|r| r.int(0))
                        .collect::<Result<_, _>>()?;
                let mut removed = 0;
                for &id in &ids {
                    removed += tx
                        .execute(
                            &format!(
                                "DELETE FROM lookout_deliveries WHERE notification_id = ? AND {OLD}"
                            ),
                            params![id, delivered_before, dead_before],
                        )
                        .await?;
                    removed += tx
                            .execute(
                                "DELETE FROM lookout_notifications WHERE id = ?
                                 AND NOT EXISTS (SELECT 1 FROM lookout_deliveries d WHERE d.notification_id = ?)",
                                params![id, id],
                            )
                            .await?;
                }
                Ok((removed, ids.len()))
            })?;
            removed += usize::try_from(batch_removed).unwrap_or(usize::MAX);
            if i64::try_from(notifications).unwrap_or(i64::MAX) < BATCH {
                break;
            }
        }
        // Keys past every window, sends past every rate window, pauses that ended.
        in_tx!(&self.inner, "prune dedupe keys and sends", |tx| {
            tx.execute(
                "DELETE FROM lookout_dedupe WHERE received_at_ms < ?",
                params![delivered_before],
            )
            .await?;
            tx.execute(
                "DELETE FROM lookout_sends WHERE at_ms < ?",
                params![now_ms - SENDS_KEPT_MS],
            )
            .await?;
            tx.execute(
                "UPDATE lookout_targets SET paused_until_ms = NULL WHERE paused_until_ms < ?",
                params![now_ms],
            )
            .await
            .map(drop)
        })?;
        Ok(removed)
    }

    /// A shared outbox has no size bound (`relay.retention.max_bytes` is SQLite's).
    async fn prune_to_size(
        &self,
        _max_bytes: u64,
        _dedupe_since_ms: i64,
    ) -> Result<SizePrune, Error> {
        let used_bytes = self.storage().await?.used_bytes;
        Ok(SizePrune {
            used_bytes,
            ..SizePrune::default()
        })
    }

    async fn storage(&self) -> Result<Storage, Error> {
        let sql = self.inner.dialect.pick(
            "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT)
             FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
             WHERE c.relkind = 'r' AND c.relname LIKE 'lookout\\_%' AND s.nspname = current_schema()",
            "SELECT CAST(COALESCE(SUM(data_length + index_length), 0) AS SIGNED)
             FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'lookout\\_%'",
        );
        let bytes = in_tx!(&self.inner, "measure the outbox", |tx| tx
            .query_one(sql, &[])
            .await?
            .int(0))?;
        let bytes = u64::try_from(bytes).unwrap_or(0);
        Ok(Storage {
            used_bytes: bytes,
            file_bytes: bytes,
        })
    }

    async fn stats(&self) -> Result<Vec<ChannelStats>, Error> {
        let rows = in_tx!(&self.inner, "count deliveries", |tx| {
            tx.query(
                "SELECT channel, state, COUNT(*), MIN(created_at_ms) FROM lookout_deliveries
                     WHERE state IN ('pending', 'dead') GROUP BY channel, state ORDER BY channel",
                &[],
            )
            .await
        })?;
        let mut stats: Vec<ChannelStats> = Vec::new();
        for r in rows {
            let read = || -> Result<(String, String, i64, Option<i64>), SqlError> {
                Ok((r.text(0)?, r.text(1)?, r.int(2)?, r.opt_int(3)?))
            };
            let (channel, state, count, oldest) =
                read().map_err(|error| Error::Shared(error.to_string()))?;
            if stats.last().is_none_or(|s| s.channel != channel) {
                stats.push(ChannelStats {
                    channel,
                    ..ChannelStats::default()
                });
            }
            if let Some(entry) = stats.last_mut() {
                if state == "pending" {
                    entry.pending = count;
                    entry.oldest_pending_ms = oldest;
                } else {
                    entry.dead = count;
                }
            }
        }
        Ok(stats)
    }

    async fn latest(&self, state: Option<&'static str>, limit: usize) -> Result<Vec<Row>, Error> {
        let select = "SELECT d.id, d.channel, n.receiver, d.state, d.attempts, d.last_error, d.created_at_ms, d.updated_at_ms, d.summary
             FROM lookout_deliveries d JOIN lookout_notifications n ON n.id = d.notification_id";
        in_tx!(&self.inner, "read the latest rows", |tx| {
            let rows = match state {
                Some(state) => {
                    tx.query(
                        &format!("{select} WHERE d.state = ? ORDER BY d.id DESC LIMIT ?"),
                        params![state, limit],
                    )
                    .await?
                }
                None => {
                    tx.query(
                        &format!("{select} ORDER BY d.id DESC LIMIT ?"),
                        params![limit],
                    )
                    .await?
                }
            };
            rows.iter()
                .map(|r| {
                    Ok(Row {
                        id: r.int(0)?,
                        channel: r.text(1)?,
                        receiver: r.text(2)?,
                        state: r.text(3)?,
                        attempts: r.int(4)?,
                        last_error: r.opt_text(5)?,
                        received_at_ms: r.int(6)?,
                        updated_at_ms: r.int(7)?,
                        summary: r.text(8)?,
                    })
                })
                .collect()
        })
    }

    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, Error> {
        in_tx!(&self.inner, "read open incidents", |tx| {
            tx.query(
                    "SELECT id, receiver, summary, state, acked_by, acked_at_ms, steps_done, opened_at_ms
                     FROM lookout_incidents WHERE state <> 'resolved' ORDER BY id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(OpenIncident {
                        id: r.int(0)?,
                        receiver: r.text(1)?,
                        summary: r.text(2)?,
                        acked: r.text(3)? == "acked",
                        acked_by: r.opt_text(4)?,
                        acked_at_ms: r.opt_int(5)?,
                        steps_done: usize::try_from(r.int(6)?).unwrap_or(0),
                        opened_at_ms: r.int(7)?,
                    })
                })
                .collect()
        })
    }

    async fn incident(&self, id: i64) -> Result<Option<IncidentPage>, Error> {
        in_tx!(&self.inner, "read an incident", |tx| {
            let Some(r) = tx
                    .query_opt(
                        "SELECT i.id, i.receiver, i.summary, i.state, i.opened_at_ms, i.resolved_at_ms,
                                i.acked_at_ms, i.acked_by, COALESCE(n.payload, '')
                         FROM lookout_incidents i LEFT JOIN lookout_notifications n ON n.id = i.notification_id
                         WHERE i.id = ?",
                        params![id],
                    )
                    .await?
                else {
                    return Ok(None);
                };
            let mut page = IncidentPage {
                id: r.int(0)?,
                receiver: r.text(1)?,
                summary: r.text(2)?,
                state: r.text(3)?,
                opened_at_ms: r.int(4)?,
                resolved_at_ms: r.opt_int(5)?,
                acked_at_ms: r.opt_int(6)?,
                acked_by: r.opt_text(7)?,
                escalations: Vec::new(),
                payload: r.text(8)?,
            };
            page.escalations = tx
                    .query(
                        "SELECT step, at_ms FROM lookout_escalations WHERE incident_id = ? ORDER BY step",
                        params![id],
                    )
                    .await?
                    .iter()
                    .map(|r| Ok((usize::try_from(r.int(0)?).unwrap_or(0), r.int(1)?)))
                    .collect::<Result<_, SqlError>>()?;
            Ok(Some(page))
        })
    }

    async fn fire_step(
        &self,
        id: i64,
        step: usize,
        channels: Vec<String>,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let step = i64::try_from(step).unwrap_or(i64::MAX - 1);
        in_tx!(&self.inner, "fire an escalation step", |tx| {
            let advanced = tx
                .execute(
                    "UPDATE lookout_incidents SET steps_done = ?, updated_at_ms = ?
                         WHERE id = ? AND state = 'firing' AND steps_done = ?",
                    params![step + 1, now_ms, id, step],
                )
                .await?;
            if advanced == 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO lookout_escalations (incident_id, step, at_ms) VALUES (?, ?, ?)",
                params![id, step, now_ms],
            )
            .await?;
            let r = tx
                    .query_one(
                        "SELECT i.notification_id, i.incident, i.summary,
                                (SELECT COUNT(*) FROM lookout_notifications n WHERE n.id = i.notification_id AND n.payload <> '')
                         FROM lookout_incidents i WHERE i.id = ?",
                        params![id],
                    )
                    .await?;
            let (notification_id, incident, summary) = (r.int(0)?, r.text(1)?, r.text(2)?);
            if r.int(3)? > 0 {
                for channel in &channels {
                    tx.execute(
                            "INSERT INTO lookout_deliveries (notification_id, channel, state, attempts, next_attempt_at_ms, sent_parts, too_long, created_at_ms, updated_at_ms, summary, incident)
                             VALUES (?, ?, 'pending', 0, ?, '', 0, ?, ?, ?, ?)",
                            params![
                                notification_id,
                                channel,
                                now_ms,
                                now_ms,
                                now_ms,
                                format!("escalation {}: {summary}", step + 1),
                                &incident
                            ],
                        )
                        .await?;
                }
            } else {
                tracing::warn!(
                    incident = id,
                    "escalation step has no notification left to send (retention dropped it)"
                );
            }
            Ok(true)
        })
    }

    async fn ack(&self, id: i64, by: Option<String>, now_ms: i64) -> Result<Acked, Error> {
        in_tx!(&self.inner, "acknowledge", |tx| {
            let Some(r) = tx
                    .query_opt(
                        "SELECT state, acked_by, acked_at_ms FROM lookout_incidents WHERE id = ? FOR UPDATE",
                        params![id],
                    )
                    .await?
                else {
                    return Ok(Acked::Unknown);
                };
            Ok(match r.text(0)?.as_str() {
                "resolved" => Acked::Resolved,
                "acked" => Acked::Already {
                    by: r.opt_text(1)?,
                    at_ms: r.opt_int(2)?,
                },
                _ => {
                    tx.execute(
                            "UPDATE lookout_incidents SET state = 'acked', acked_at_ms = ?, acked_by = ?, updated_at_ms = ? WHERE id = ?",
                            params![now_ms, by.clone(), now_ms, id],
                        )
                        .await?;
                    Acked::Now
                }
            })
        })
    }

    async fn prune_incidents(&self, before_ms: i64) -> Result<usize, Error> {
        in_tx!(&self.inner, "prune incidents", |tx| {
            let ids: Vec<Value> = tx
                    .query(
                        "SELECT id FROM lookout_incidents WHERE state = 'resolved' AND updated_at_ms < ? LIMIT 1000",
                        params![before_ms],
                    )
                    .await?
                    .iter()
                    .map(|r| r.int(0).map(Value::from))
                    .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(0);
            }
            let list = placeholders(ids.len());
            tx.execute(
                &format!("DELETE FROM lookout_escalations WHERE incident_id IN ({list})"),
                &ids,
            )
            .await?;
            let removed = tx
                .execute(
                    &format!("DELETE FROM lookout_incidents WHERE id IN ({list})"),
                    &ids,
                )
                .await?;
            Ok(usize::try_from(removed).unwrap_or(usize::MAX))
        })
    }

    async fn redrive(&self, which: Redrive, now_ms: i64) -> Result<Redriven, Error> {
        in_tx!(&self.inner, "redrive dead letters", |tx| {
            let select = "SELECT d.id, d.channel, CASE WHEN n.payload <> '' THEN 1 ELSE 0 END
                     FROM lookout_deliveries d JOIN lookout_notifications n ON n.id = d.notification_id
                     WHERE d.state = 'dead' AND ";
            let mut candidates = Vec::new();
            match &which {
                Redrive::Channel(channel) => {
                    candidates.extend(
                        tx.query(
                            &format!("{select} d.channel = ? ORDER BY d.id"),
                            params![channel],
                        )
                        .await?,
                    );
                }
                Redrive::Ids(ids) => {
                    for id in ids {
                        candidates.extend(
                            tx.query(&format!("{select} d.id = ?"), params![*id])
                                .await?,
                        );
                    }
                }
            }
            let mut done = Redriven::default();
            for r in candidates {
                let (id, channel, has_payload) = (r.int(0)?, r.text(1)?, r.int(2)? != 0);
                if !has_payload {
                    done.skipped += 1;
                    continue;
                }
                let revived = tx
                        .execute(
                            "UPDATE lookout_deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?,
                                 last_error = NULL, digest_id = NULL, updated_at_ms = ?, leased_by = NULL, leased_until_ms = NULL
                             WHERE id = ? AND state = 'dead'",
                            params![now_ms, now_ms, id],
                        )
                        .await?;
                if revived == 1 {
                    *done.channels.entry(channel).or_default() += 1;
                }
            }
            Ok(done)
        })
    }

    async fn keep_secret(&self, name: &str, fresh: String) -> Result<String, Error> {
        let insert = self.inner.dialect.pick(
            "INSERT INTO lookout_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            "INSERT IGNORE INTO lookout_secrets (name, value) VALUES (?, ?)",
        );
        in_tx!(&self.inner, "keep a secret", |tx| {
            tx.execute(insert, params![name, &fresh]).await?;
            tx.query_one(
                "SELECT value FROM lookout_secrets WHERE name = ?",
                params![name],
            )
            .await?
            .text(0)
        })
    }

    async fn release(&self) {
        let holder = self.inner.holder.clone();
        let released = in_tx!(&self.inner, "release leases", |tx| {
            tx.execute(
                    "UPDATE lookout_deliveries SET leased_by = NULL, leased_until_ms = NULL WHERE leased_by = ?",
                    params![&holder],
                )
                .await?;
            tx.execute(
                    "UPDATE lookout_digests SET leased_by = NULL, leased_until_ms = NULL WHERE leased_by = ?",
                    params![&holder],
                )
                .await
        });
        if let Err(error) = released {
            tracing::warn!(%error, "cannot release outbox leases; other replicas take over when they end");
        }
        self.inner.pool.close().await;
    }
}
