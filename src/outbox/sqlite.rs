//! The outbox's SQLite store, owned by one writer thread. Callers send it operations over
//! a channel and await the answer; consecutive webhook inserts are committed in one
//! transaction (group commit), so durability costs one fsync per batch, not per request.
//! Reads for the status page and the gauges go to a second, read-only connection (WAL
//! lets it read while the writer commits), so they never queue in front of a webhook.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};
use tokio::sync::oneshot;

use super::Error;
use super::model::{
    Accepted, ChannelStats, Delivery, NewNotification, Row, SizePrune, Storage, now_ms, summary,
};
use super::model::{
    Acked, IncidentPage, OpenIncident, Redrive, Redriven, StoredDigest, parts_sent,
};
use super::store::{Budget, Store, TargetState};
use crate::alert::Notification;

/// The schema version this build writes.
pub(super) const SCHEMA_VERSION: i64 = 4;

/// Sends older than this are forgotten (no rate window is longer).
const SENDS_KEPT_MS: i64 = 3_600_000;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Op {
    Accept(NewNotification, oneshot::Sender<Result<Accepted, Error>>),
    Run(Job),
}

/// The SQL condition "no earlier delivery of `d`'s incident on its channel holds it back"
/// (`?2` is now): for a delivery going out alone, any earlier pending one holds it back;
/// for one going into a digest, only an earlier one that is not due or is in an open
/// digest (the others go out in the same digest, before it).
macro_rules! unblocked {
    (UNBLOCKED_ALONE) => {
        "NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel = d.channel
         AND e.incident = d.incident AND e.state = 'pending' AND e.id < d.id)"
    };
    (UNBLOCKED_IN_DIGEST) => {
        "NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.channel = d.channel
         AND e.incident = d.incident AND e.state = 'pending' AND e.id < d.id
         AND (e.next_attempt_at_ms > ?2 OR e.digest_id IS NOT NULL))"
    };
}

/// Due deliveries of channel `?1` at `?2` after id `?3`, oldest first, with their payload.
macro_rules! due_query {
    ($unblocked:ident) => {
        concat!(
            "SELECT d.id, d.notification_id, d.channel, n.receiver, n.payload, d.attempts,
                    n.received_at_ms, d.sent_parts, d.too_long, n.incident_id
             FROM deliveries d JOIN notifications n ON n.id = d.notification_id
             WHERE d.channel = ?1 AND d.state = 'pending' AND d.next_attempt_at_ms <= ?2
               AND d.digest_id IS NULL AND d.id > ?3 AND ",
            unblocked!($unblocked),
            " ORDER BY d.id"
        )
    };
}

/// The outbox of one process: SQLite in `state_dir/outbox.db`.
#[derive(Debug, Clone)]
pub(super) struct Sqlite {
    ops: mpsc::Sender<Op>,
    /// The read-only connection for the status page and statistics.
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// Transactions that stored accepted notifications (one per group commit).
    accept_commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::Accept(..) => "Accept",
            Op::Run(_) => "Run",
        })
    }
}

impl Sqlite {
    /// Opens (creating and migrating if needed) `state_dir/outbox.db` and starts its
    /// writer thread.
    pub(super) fn open(state_dir: &Path) -> Result<Sqlite, Error> {
        std::fs::create_dir_all(state_dir).map_err(|e| Error::StateDir {
            path: state_dir.display().to_string(),
            message: e.to_string(),
        })?;
        let path = state_dir.join("outbox.db");
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // The working set is the pending rows; 1 MiB of page cache is plenty.
        conn.pragma_update(None, "cache_size", -1024)?;
        // Truncate the WAL after a checkpoint, so a burst does not keep its size on disk.
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        migrate(&mut conn)?;
        let reader = Arc::new(Mutex::new(open_reader(&path)?));
        // Prove the directory is writable now, not at the first webhook.
        conn.execute(
            "DELETE FROM sends WHERE at_ms < ?1",
            params![now_ms() - SENDS_KEPT_MS],
        )?;
        let (ops, receiver) = mpsc::channel::<Op>();
        let accept_commits = Arc::new(AtomicU64::new(0));
        let commits = Arc::clone(&accept_commits);
        std::thread::Builder::new()
            .name("lookout-outbox".to_owned())
            .spawn(move || writer(conn, &receiver, &commits))
            .map_err(|e| Error::Sqlite(format!("cannot start the writer thread: {e}")))?;
        Ok(Sqlite {
            ops,
            reader,
            path,
            accept_commits,
        })
    }

    /// How many transactions have stored accepted notifications: fewer than the
    /// notifications when concurrent webhooks share a commit.
    pub(super) fn accept_commits(&self) -> u64 {
        self.accept_commits.load(Ordering::Relaxed)
    }

    /// Stores a notification and its delivery rows; resolves once committed to disk.
    pub(super) async fn accept(&self, notification: NewNotification) -> Result<Accepted, Error> {
        let (tx, rx) = oneshot::channel();
        self.ops
            .send(Op::Accept(notification, tx))
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Runs `f` on the writer thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn).map_err(Error::from));
        });
        self.ops.send(Op::Run(job)).map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// The oldest deliveries of `channel` that may go out alone at `now_ms`: due, not in
    /// an open digest, and with no earlier delivery of their incident pending (a
    /// resolved message never overtakes its firing one). At most `limit`.
    pub(super) async fn due(
        &self,
        channel: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.read_due(channel, now_ms, 0, limit, usize::MAX, true)
            .await
    }

    /// The due deliveries of `channel` a digest may fold together, after delivery
    /// `after_id`: those whose earlier deliveries of the same incident are due too (and
    /// so go out in the same digest, in order). Stops once the payloads read reach
    /// `max_bytes` (at least one row is read): a digest reads a storm in bounded batches.
    pub(super) async fn due_batch(
        &self,
        channel: &str,
        now_ms: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Delivery>, Error> {
        self.read_due(channel, now_ms, after_id, limit, max_bytes, false)
            .await
    }

    async fn read_due(
        &self,
        channel: &str,
        now_ms: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
        alone: bool,
    ) -> Result<Vec<Delivery>, Error> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            let mut statement = conn.prepare_cached(if alone {
                due_query!(UNBLOCKED_ALONE)
            } else {
                due_query!(UNBLOCKED_IN_DIGEST)
            })?;
            let mut rows = statement.query(params![channel, now_ms, after_id])?;
            let (mut out, mut bytes) = (Vec::new(), 0usize);
            while out.len() < limit && bytes < max_bytes {
                let Some(r) = rows.next()? else { break };
                let sent: String = r.get(7)?;
                let payload: String = r.get(4)?;
                bytes = bytes.saturating_add(payload.len());
                out.push(Delivery {
                    id: r.get(0)?,
                    notification_id: r.get(1)?,
                    channel: r.get(2)?,
                    receiver: r.get(3)?,
                    payload,
                    attempts: r.get(5)?,
                    received_at_ms: r.get(6)?,
                    sent_parts: parts_sent(&sent),
                    too_long: r.get(8)?,
                    incident_id: r.get(9)?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// How many deliveries [`Self::due_batch`] would return without limits (index-only).
    pub(super) async fn due_count(&self, channel: &str, now_ms: i64) -> Result<usize, Error> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            conn.prepare_cached(concat!(
                "SELECT COUNT(*) FROM deliveries d WHERE d.channel = ?1 AND d.state = 'pending'
                     AND d.next_attempt_at_ms <= ?2 AND d.digest_id IS NULL AND ",
                unblocked!(UNBLOCKED_IN_DIGEST)
            ))?
            .query_row(params![channel, now_ms], |r| r.get::<_, i64>(0))
            .map(|n| usize::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// When the next delivery [`Self::due_batch`] would return becomes due, if any
    /// (none is due at `now_ms` when this is asked).
    pub(super) async fn next_due_ms(
        &self,
        channel: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, Error> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            conn.query_row(
                concat!(
                    "SELECT MIN(d.next_attempt_at_ms) FROM deliveries d WHERE d.channel = ?1
                     AND d.state = 'pending' AND d.digest_id IS NULL AND ",
                    unblocked!(UNBLOCKED_IN_DIGEST)
                ),
                params![channel, now_ms],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Marks deliveries delivered.
    pub(super) async fn delivered(&self, ids: Vec<i64>, now_ms: i64) -> Result<(), Error> {
        self.run(move |conn| {
            update_each(
                conn,
                "UPDATE deliveries SET state = 'delivered', delivered_at_ms = ?2, updated_at_ms = ?2, last_error = NULL WHERE id = ?1",
                &ids,
                &[&now_ms],
            )
        })
        .await
    }

    /// Records that one part of a delivery was sent (so it is not sent again).
    pub(super) async fn part_sent(&self, id: i64, key: String, now_ms: i64) -> Result<(), Error> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE deliveries SET sent_parts = sent_parts || ?2 || ',', updated_at_ms = ?3 WHERE id = ?1",
                params![id, key, now_ms],
            )
            .map(drop)
        })
        .await
    }

    /// Keeps deliveries pending until `next_at_ms`, counting an attempt if `attempted`.
    pub(super) async fn retry_later(
        &self,
        ids: Vec<i64>,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        too_long: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.run(move |conn| {
            update_each(
                conn,
                "UPDATE deliveries SET next_attempt_at_ms = ?2, last_error = ?3, attempts = attempts + ?4,
                 too_long = too_long OR ?5, updated_at_ms = ?6 WHERE id = ?1 AND state = 'pending'",
                &ids,
                &[&next_at_ms, &error, &i64::from(attempted), &too_long, &now_ms],
            )
        })
        .await
    }

    /// Moves deliveries to the dead letters with `error`.
    pub(super) async fn dead(
        &self,
        ids: Vec<i64>,
        error: String,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.run(move |conn| {
            update_each(
                conn,
                "UPDATE deliveries SET state = 'dead', last_error = ?2, attempts = attempts + 1, updated_at_ms = ?3 WHERE id = ?1",
                &ids,
                &[&error, &now_ms],
            )
        })
        .await
    }

    /// Spends one message of `target`'s budget if it has one and is not paused, and
    /// records it (budgets survive restarts); on the writer thread, so check and record
    /// are one step.
    pub(super) async fn take_send(
        &self,
        channel: String,
        target: String,
        budget: Budget,
        at_ms: i64,
    ) -> Result<bool, Error> {
        self.run(move |conn| {
            let paused: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM pauses WHERE target = ?1 AND until_ms > ?2)",
                )?
                .query_row(params![target, at_ms], |r| r.get(0))?;
            let recent: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM sends WHERE target = ?1 AND at_ms > ?2")?
                .query_row(params![target, at_ms - budget.per_ms], |r| r.get(0))?;
            if paused || usize::try_from(recent).unwrap_or(usize::MAX) >= budget.count {
                return Ok(false);
            }
            conn.execute(
                "INSERT INTO sends (channel, target, at_ms) VALUES (?1, ?2, ?3)",
                params![channel, target, at_ms],
            )?;
            conn.execute(
                "DELETE FROM sends WHERE at_ms < ?1",
                params![at_ms - SENDS_KEPT_MS],
            )?;
            Ok(true)
        })
        .await
    }

    /// When messages were sent to `target`, by any channel, since `since_ms`, oldest
    /// first: channels that share a target share its budget.
    pub(super) async fn sends_to(&self, target: String, since_ms: i64) -> Result<Vec<i64>, Error> {
        self.run(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT at_ms FROM sends WHERE target = ?1 AND at_ms >= ?2 ORDER BY at_ms",
            )?;
            let rows = statement.query_map(params![target, since_ms], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    /// Forgets delivered rows older than `keep_delivered_ms` and dead letters older than
    /// `keep_dead_ms`, then their notifications once no delivery row refers to them — a
    /// few hundred notifications per transaction, so a first prune of a large backlog
    /// never holds the writer (and the webhooks behind it) for long.
    pub(super) async fn prune(
        &self,
        now_ms: i64,
        keep_delivered_ms: i64,
        keep_dead_ms: i64,
    ) -> Result<usize, Error> {
        const OLD: &str = "((state = 'delivered' AND updated_at_ms < ?1) OR (state = 'dead' AND updated_at_ms < ?2))";
        /// Notifications per transaction: webhooks commit between batches.
        const BATCH: i64 = 256;
        let mut removed = 0;
        loop {
            let (batch_removed, notifications) = self
                .run(move |conn| {
                    let tx = conn.transaction()?;
                    let cutoffs = params![now_ms - keep_delivered_ms, now_ms - keep_dead_ms, BATCH];
                    // The notifications to look at come from the narrow deliveries rows:
                    // reading `notifications.received_at_ms`, stored after the payload,
                    // would walk every payload's overflow pages.
                    let ids: Vec<i64> = tx
                        .prepare_cached(&format!(
                            "SELECT DISTINCT notification_id FROM deliveries WHERE {OLD} LIMIT ?3"
                        ))?
                        .query_map(cutoffs, |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    let mut removed = 0;
                    {
                        let mut old_rows = tx.prepare_cached(&format!(
                            "DELETE FROM deliveries WHERE notification_id = ?3 AND {OLD}"
                        ))?;
                        let mut forget = tx.prepare_cached(
                            "DELETE FROM notifications WHERE id = ?1
                             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = ?1)",
                        )?;
                        for &id in &ids {
                            removed += old_rows.execute(params![
                                now_ms - keep_delivered_ms,
                                now_ms - keep_dead_ms,
                                id
                            ])?;
                            removed += forget.execute([id])?;
                        }
                    }
                    tx.commit()?;
                    Ok((removed, ids.len()))
                })
                .await?;
            removed += batch_removed;
            if i64::try_from(notifications).unwrap_or(i64::MAX) < BATCH {
                return Ok(removed);
            }
        }
    }

    /// Brings the database's pages in use down to `max_bytes` by dropping the oldest
    /// payloads no pending row needs: first of notifications whose every delivery was
    /// delivered, then — only if still over — of those with dead letters. A notification
    /// older than `dedupe_since_ms` goes with its delivery rows; a newer one keeps its row
    /// (and summary) without its payload, so the dedupe window still recognises it.
    /// Pending rows are never touched: if they alone exceed the bound, it stays exceeded.
    /// Works in batches, each its own transaction, so webhooks commit in between.
    pub(super) async fn prune_to_size(
        &self,
        max_bytes: u64,
        dedupe_since_ms: i64,
    ) -> Result<SizePrune, Error> {
        let mut report = SizePrune::default();
        for with_dead in [false, true] {
            let mut after = 0;
            loop {
                let batch = self
                    .run(move |conn| {
                        prune_batch(conn, max_bytes, dedupe_since_ms, with_dead, after)
                    })
                    .await?;
                report.removed += batch.removed;
                report.emptied += batch.emptied;
                report.used_bytes = batch.used_bytes;
                if report.used_bytes <= max_bytes {
                    return Ok(report);
                }
                match batch.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// How much room the outbox takes, read on the read-only connection.
    pub(super) async fn storage(&self) -> Result<Storage, Error> {
        let files = [
            self.path.clone(),
            PathBuf::from(format!("{}-wal", self.path.display())),
        ];
        self.read(move |conn| {
            let used_bytes = used_bytes(conn)?;
            let file_bytes = files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            Ok(Storage {
                used_bytes,
                file_bytes,
            })
        })
        .await
    }

    /// Counts per channel, on the read-only connection: the counts are kept by triggers
    /// in `delivery_counts` and the oldest pending row is one seek in the partial index
    /// `deliveries_pending`, so this costs the same at 300k rows as at 3.
    pub(super) async fn stats(&self) -> Result<Vec<ChannelStats>, Error> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(STATS_SQL)?;
            let rows = statement.query_map([], |r| {
                Ok(ChannelStats {
                    channel: r.get(0)?,
                    pending: r.get(1)?,
                    oldest_pending_ms: r.get(2)?,
                    dead: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// The latest rows in `state` (or of any state with `None`), newest first, on the
    /// read-only connection. Never reads a payload: the summary was stored at accept time.
    pub(super) async fn latest(
        &self,
        state: Option<&'static str>,
        limit: usize,
    ) -> Result<Vec<Row>, Error> {
        self.read(move |conn| {
            let sql = match state {
                Some(_) => LATEST_IN_STATE_SQL,
                None => LATEST_SQL,
            };
            let mut statement = conn.prepare_cached(sql)?;
            let map = |r: &rusqlite::Row<'_>| {
                Ok(Row {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    receiver: r.get(2)?,
                    state: r.get(3)?,
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                    received_at_ms: r.get(6)?,
                    updated_at_ms: r.get(7)?,
                    summary: r.get(8)?,
                })
            };
            let rows = match state {
                Some(state) => statement.query_map(params![state, limit as i64], map)?,
                None => statement.query_map(params![limit as i64], map)?,
            };
            rows.collect()
        })
        .await
    }

    /// Runs `f` on the read-only connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Result<T, Error> {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| Error::Sqlite("the outbox reader panicked earlier".to_owned()))?;
            f(&conn).map_err(Error::from)
        })
        .await
        .map_err(|error| Error::Sqlite(format!("outbox reader: {error}")))?
    }
}

/// One batch of [`Self::prune_to_size`]: the next cursor, or `None` when no candidate
/// is left after `after`.
struct PruneBatch {
    removed: usize,
    emptied: usize,
    used_bytes: u64,
    next: Option<i64>,
}

/// Notifications pruned per transaction.
const PRUNE_BATCH: i64 = 64;

fn prune_batch(
    conn: &mut Connection,
    max_bytes: u64,
    dedupe_since_ms: i64,
    with_dead: bool,
    after: i64,
) -> Result<PruneBatch, rusqlite::Error> {
    let mut batch = PruneBatch {
        removed: 0,
        emptied: 0,
        used_bytes: used_bytes(conn)?,
        next: None,
    };
    if batch.used_bytes <= max_bytes {
        return Ok(batch);
    }
    let tx = conn.transaction()?;
    // octet_length reads a payload's size from its record header, not the payload.
    let candidates: Vec<(i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT d.notification_id, MIN(d.created_at_ms),
                    (SELECT octet_length(n.payload) FROM notifications n WHERE n.id = d.notification_id)
             FROM deliveries d
             WHERE d.notification_id > ?1
               AND d.notification_id NOT IN (SELECT notification_id FROM incidents WHERE state <> 'resolved')
             GROUP BY d.notification_id
             HAVING SUM(d.state = 'pending') = 0 AND (?2 OR SUM(d.state = 'dead') = 0)
             ORDER BY d.notification_id LIMIT ?3",
        )?
        .query_map(params![after, with_dead, PRUNE_BATCH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(0)))
        })?
        .collect::<Result<_, _>>()?;
    // Stop once the payloads dropped cover the excess (the next batch corrects the rest).
    let mut excess = i64::try_from(batch.used_bytes - max_bytes).unwrap_or(i64::MAX);
    {
        let mut forget_deliveries =
            tx.prepare_cached("DELETE FROM deliveries WHERE notification_id = ?1")?;
        let mut forget = tx.prepare_cached("DELETE FROM notifications WHERE id = ?1")?;
        let mut empty = tx.prepare_cached("UPDATE notifications SET payload = '' WHERE id = ?1")?;
        for (id, received_at_ms, bytes) in &candidates {
            if excess <= 0 {
                break;
            }
            batch.next = Some(*id);
            if *received_at_ms < dedupe_since_ms {
                forget_deliveries.execute([id])?;
                forget.execute([id])?;
                batch.removed += 1;
            } else if *bytes > 0 {
                empty.execute([id])?;
                batch.emptied += 1;
            }
            excess -= bytes;
        }
    }
    tx.commit()?;
    batch.used_bytes = used_bytes(conn)?;
    Ok(batch)
}

/// Bytes of the database pages in use (freed pages excluded).
fn used_bytes(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT (p.page_count - f.freelist_count) * s.page_size
         FROM pragma_page_count() p, pragma_freelist_count() f, pragma_page_size() s",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|bytes| u64::try_from(bytes).unwrap_or(0))
}

/// Per-channel counts from the trigger-maintained `delivery_counts`.
const STATS_SQL: &str = "SELECT c.channel,
        SUM(CASE WHEN c.state = 'pending' THEN c.n ELSE 0 END),
        (SELECT MIN(d.created_at_ms) FROM deliveries d WHERE d.channel = c.channel AND d.state = 'pending'),
        SUM(CASE WHEN c.state = 'dead' THEN c.n ELSE 0 END)
     FROM delivery_counts c WHERE c.state IN ('pending', 'dead')
     GROUP BY c.channel HAVING SUM(c.n) > 0 ORDER BY c.channel";

const LATEST_SQL: &str = "SELECT d.id, d.channel, n.receiver, d.state, d.attempts, d.last_error, d.created_at_ms, d.updated_at_ms, d.summary
     FROM deliveries d JOIN notifications n ON n.id = d.notification_id
     ORDER BY d.id DESC LIMIT ?1";

/// Only dead letters are listed by state; `deliveries_dead` keeps that a short walk.
const LATEST_IN_STATE_SQL: &str = "SELECT d.id, d.channel, n.receiver, d.state, d.attempts, d.last_error, d.created_at_ms, d.updated_at_ms, d.summary
     FROM deliveries d JOIN notifications n ON n.id = d.notification_id
     WHERE d.state = ?1 ORDER BY d.id DESC LIMIT ?2";

/// The WAL is truncated to this size after a checkpoint.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// The read-only connection: sees every commit of the writer (WAL), never blocks it.
fn open_reader(path: &Path) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(conn)
}

/// Runs `sql` once per id in one transaction, with the id as `?1` and `rest` after it.
fn update_each(
    conn: &mut Connection,
    sql: &str,
    ids: &[i64],
    rest: &[&dyn rusqlite::ToSql],
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction()?;
    {
        let mut statement = tx.prepare_cached(sql)?;
        for id in ids {
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(rest.len() + 1);
            values.push(id);
            values.extend_from_slice(rest);
            statement.execute(values.as_slice())?;
        }
    }
    tx.commit()
}

/// [`summary`] of a stored payload (schema version 1 rows, which had none).
fn summarize_payload(payload: &str) -> String {
    Notification::parse(payload.as_bytes())
        .map_or_else(|_| "(unreadable payload)".to_owned(), |n| summary(&n))
}

/// Creates or upgrades the schema to [`SCHEMA_VERSION`].
pub(super) fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::TooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let tx = conn.transaction()?;
    if version < 1 {
        tx.execute_batch(
            "CREATE TABLE notifications (
                id INTEGER PRIMARY KEY,
                receiver TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                payload TEXT NOT NULL,
                received_at_ms INTEGER NOT NULL
            );
            CREATE INDEX notifications_dedupe ON notifications (dedupe_key, received_at_ms);
            CREATE TABLE deliveries (
                id INTEGER PRIMARY KEY,
                notification_id INTEGER NOT NULL REFERENCES notifications (id),
                channel TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at_ms INTEGER NOT NULL,
                last_error TEXT,
                sent_parts TEXT NOT NULL DEFAULT '',
                too_long INTEGER NOT NULL DEFAULT 0,
                created_at_ms INTEGER NOT NULL,
                updated_at_ms INTEGER NOT NULL,
                delivered_at_ms INTEGER
            );
            CREATE INDEX deliveries_due ON deliveries (channel, state, next_attempt_at_ms);
            CREATE INDEX deliveries_notification ON deliveries (notification_id);
            CREATE TABLE sends (
                channel TEXT NOT NULL,
                target TEXT NOT NULL,
                at_ms INTEGER NOT NULL
            );
            CREATE INDEX sends_by_channel ON sends (channel, at_ms);",
        )?;
    }
    if version < 2 {
        migrate_v2(&tx)?;
    }
    if version < 3 {
        // Incidents keep their order; digests and target pauses are durable. Rows from
        // before have no incident: each is its own.
        tx.execute_batch(
            "ALTER TABLE deliveries ADD COLUMN incident TEXT NOT NULL DEFAULT '';
            UPDATE deliveries SET incident = 'n' || notification_id;
            ALTER TABLE deliveries ADD COLUMN digest_id INTEGER;
            CREATE INDEX deliveries_incident ON deliveries (channel, incident, state, id);
            CREATE INDEX deliveries_digest ON deliveries (digest_id) WHERE digest_id IS NOT NULL;
            CREATE TABLE digests (
                id INTEGER PRIMARY KEY,
                channel TEXT NOT NULL,
                messages TEXT NOT NULL,
                sent_parts TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at_ms INTEGER NOT NULL,
                last_error TEXT,
                created_at_ms INTEGER NOT NULL
            );
            CREATE INDEX digests_by_channel ON digests (channel, id);
            CREATE INDEX sends_by_target ON sends (target, at_ms);
            CREATE TABLE pauses (
                target TEXT PRIMARY KEY,
                until_ms INTEGER NOT NULL
            );",
        )?;
    }
    if version < 4 {
        incidents::migrate_v4(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Version 2: summaries stored at accept time (the status page never parses payloads),
/// per-(channel, state) counts kept by triggers, and partial indexes for the oldest
/// pending row and the latest dead letters — statistics cost the same at any size.
fn migrate_v2(tx: &rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> {
    tx.execute_batch(
        "ALTER TABLE deliveries ADD COLUMN summary TEXT NOT NULL DEFAULT '';
        CREATE INDEX deliveries_pending ON deliveries (channel, created_at_ms) WHERE state = 'pending';
        CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
        CREATE TABLE delivery_counts (
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (channel, state)
        ) WITHOUT ROWID;
        INSERT INTO delivery_counts (channel, state, n)
            SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state;
        CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries BEGIN
            INSERT INTO delivery_counts (channel, state, n) VALUES (new.channel, new.state, 1)
                ON CONFLICT (channel, state) DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries BEGIN
            UPDATE delivery_counts SET n = n - 1 WHERE channel = old.channel AND state = old.state;
        END;
        CREATE TRIGGER deliveries_counted_update AFTER UPDATE OF channel, state ON deliveries
            WHEN old.channel IS NOT new.channel OR old.state IS NOT new.state BEGIN
            UPDATE delivery_counts SET n = n - 1 WHERE channel = old.channel AND state = old.state;
            INSERT INTO delivery_counts (channel, state, n) VALUES (new.channel, new.state, 1)
                ON CONFLICT (channel, state) DO UPDATE SET n = n + 1;
        END;",
    )?;
    // Rows from version 1 get their summary once, here (one payload in memory at a time).
    let mut select = tx.prepare("SELECT id, payload FROM notifications")?;
    let mut update = tx.prepare("UPDATE deliveries SET summary = ?2 WHERE notification_id = ?1")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let summary = summarize_payload(row.get_ref(1)?.as_str()?);
        update.execute(params![id, summary])?;
    }
    Ok(())
}

/// The writer thread: runs operations in order; consecutive accepts share a commit.
fn writer(mut conn: Connection, ops: &mpsc::Receiver<Op>, commits: &AtomicU64) {
    let mut pending: Option<Op> = None;
    loop {
        let op = match pending.take() {
            Some(op) => op,
            None => match ops.recv() {
                Ok(op) => op,
                Err(_) => return,
            },
        };
        match op {
            Op::Run(job) => job(&mut conn),
            Op::Accept(first, reply) => {
                let mut batch = vec![(first, reply)];
                // Take every accept already queued; stop at the first other operation.
                while let Ok(op) = ops.try_recv() {
                    match op {
                        Op::Accept(n, reply) => batch.push((n, reply)),
                        other => {
                            pending = Some(other);
                            break;
                        }
                    }
                }
                commit_batch(&mut conn, batch, commits);
            }
        }
    }
}

type Reply = oneshot::Sender<Result<Accepted, Error>>;

fn commit_batch(conn: &mut Connection, batch: Vec<(NewNotification, Reply)>, commits: &AtomicU64) {
    let result = (|| {
        let tx = conn.transaction()?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (n, _) in &batch {
            outcomes.push(insert(&tx, n)?);
        }
        tx.commit()?;
        Ok::<_, rusqlite::Error>(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) => {
            tracing::error!(%error, count = batch.len(), "outbox commit failed; answering 503");
            let error = Error::from(error);
            for (_, reply) in batch {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    n: &NewNotification,
) -> Result<Accepted, rusqlite::Error> {
    let duplicate: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM notifications WHERE dedupe_key = ?1 AND received_at_ms >= ?2 ORDER BY id LIMIT 1",
        )?
        .query_row(params![n.dedupe_key, n.dedupe_since_ms], |r| r.get(0))
        .optional()?;
    if let Some(id) = duplicate {
        return Ok(Accepted::Duplicate { id });
    }
    tx.prepare_cached(
        "INSERT INTO notifications (receiver, dedupe_key, payload, received_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![n.receiver, n.dedupe_key, n.payload, n.received_at_ms])?;
    let id = tx.last_insert_rowid();
    let mut statement = tx.prepare_cached(
        "INSERT INTO deliveries (notification_id, channel, state, next_attempt_at_ms, created_at_ms, updated_at_ms, summary, incident)
         VALUES (?1, ?2, 'pending', ?3, ?3, ?3, ?4, ?5)",
    )?;
    for channel in &n.channels {
        statement.execute(params![
            id,
            channel,
            n.received_at_ms,
            n.summary,
            n.incident
        ])?;
    }
    if n.escalates {
        incidents::record(tx, id, n)?;
    }
    Ok(Accepted::Stored {
        id,
        deliveries: n.channels.len(),
    })
}

/// Reads the secret kept in `dir/{name}.key`, or writes `fresh` there (mode 0600,
/// synced) if there is none.
fn keep_secret_file(dir: &Path, name: &str, fresh: &str) -> Result<String, Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(format!("{name}.key"));
    let failed = |error: std::io::Error| Error::Sqlite(format!("{}: {error}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(failed)?;
            file.write_all(fresh.as_bytes()).map_err(failed)?;
            file.sync_all().map_err(failed)?;
            Ok(fresh.to_owned())
        }
        Err(error) => Err(failed(error)),
    }
}

#[async_trait::async_trait]
impl Store for Sqlite {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn local_dir(&self) -> Option<&Path> {
        self.path.parent()
    }

    fn accept_commits(&self) -> u64 {
        Sqlite::accept_commits(self)
    }

    async fn accept(&self, notification: NewNotification) -> Result<Accepted, Error> {
        Sqlite::accept(self, notification).await
    }

    async fn due(&self, channel: &str, now_ms: i64, limit: usize) -> Result<Vec<Delivery>, Error> {
        Sqlite::due(self, channel, now_ms, limit).await
    }

    async fn due_batch(
        &self,
        channel: &str,
        now_ms: i64,
        after_id: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Delivery>, Error> {
        Sqlite::due_batch(self, channel, now_ms, after_id, limit, max_bytes).await
    }

    async fn due_count(&self, channel: &str, now_ms: i64) -> Result<usize, Error> {
        Sqlite::due_count(self, channel, now_ms).await
    }

    async fn next_due_ms(&self, channel: &str, now_ms: i64) -> Result<Option<i64>, Error> {
        Sqlite::next_due_ms(self, channel, now_ms).await
    }

    async fn delivered(&self, ids: Vec<i64>, now_ms: i64) -> Result<(), Error> {
        Sqlite::delivered(self, ids, now_ms).await
    }

    async fn part_sent(&self, id: i64, key: String, now_ms: i64) -> Result<(), Error> {
        Sqlite::part_sent(self, id, key, now_ms).await
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
        Sqlite::retry_later(self, ids, next_at_ms, error, attempted, too_long, now_ms).await
    }

    async fn dead(&self, ids: Vec<i64>, error: String, now_ms: i64) -> Result<(), Error> {
        Sqlite::dead(self, ids, error, now_ms).await
    }

    async fn take_send(
        &self,
        channel: String,
        target: String,
        budget: Budget,
        at_ms: i64,
    ) -> Result<bool, Error> {
        Sqlite::take_send(self, channel, target, budget, at_ms).await
    }

    async fn target_state(
        &self,
        target: String,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<TargetState, Error> {
        let paused_until_ms = Sqlite::pauses(self, now_ms)
            .await?
            .into_iter()
            .find_map(|(t, until)| (t == target).then_some(until));
        let sends = Sqlite::sends_to(self, target, since_ms).await?;
        Ok(TargetState {
            sends,
            paused_until_ms,
        })
    }

    async fn pause(&self, target: String, until_ms: i64) -> Result<(), Error> {
        Sqlite::pause(self, target, until_ms).await
    }

    async fn open_digest(
        &self,
        channel: String,
        rows: Vec<i64>,
        messages: String,
        now_ms: i64,
    ) -> Result<i64, Error> {
        Sqlite::open_digest(self, channel, rows, messages, now_ms).await
    }

    async fn open_digest_of(
        &self,
        channel: &str,
        _now_ms: i64,
    ) -> Result<Option<StoredDigest>, Error> {
        Sqlite::open_digest_of(self, channel).await
    }

    async fn digest_part_sent(&self, id: i64, key: String) -> Result<(), Error> {
        Sqlite::digest_part_sent(self, id, key).await
    }

    async fn digest_retry_later(
        &self,
        id: i64,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        Sqlite::digest_retry_later(self, id, next_at_ms, error, attempted, now_ms).await
    }

    async fn close_digest(&self, id: i64, dead: Option<String>, now_ms: i64) -> Result<(), Error> {
        Sqlite::close_digest(self, id, dead, now_ms).await
    }

    async fn dissolve_digest(&self, id: i64, too_long: bool, now_ms: i64) -> Result<(), Error> {
        Sqlite::dissolve_digest(self, id, too_long, now_ms).await
    }

    async fn prune(
        &self,
        now_ms: i64,
        keep_delivered_ms: i64,
        keep_dead_ms: i64,
    ) -> Result<usize, Error> {
        Sqlite::prune(self, now_ms, keep_delivered_ms, keep_dead_ms).await
    }

    async fn prune_to_size(
        &self,
        max_bytes: u64,
        dedupe_since_ms: i64,
    ) -> Result<SizePrune, Error> {
        Sqlite::prune_to_size(self, max_bytes, dedupe_since_ms).await
    }

    async fn storage(&self) -> Result<Storage, Error> {
        Sqlite::storage(self).await
    }

    async fn stats(&self) -> Result<Vec<ChannelStats>, Error> {
        Sqlite::stats(self).await
    }

    async fn latest(&self, state: Option<&'static str>, limit: usize) -> Result<Vec<Row>, Error> {
        Sqlite::latest(self, state, limit).await
    }

    async fn open_incidents(&self) -> Result<Vec<OpenIncident>, Error> {
        Sqlite::open_incidents(self).await
    }

    async fn incident(&self, id: i64) -> Result<Option<IncidentPage>, Error> {
        Sqlite::incident(self, id).await
    }

    async fn fire_step(
        &self,
        id: i64,
        step: usize,
        channels: Vec<String>,
        now_ms: i64,
    ) -> Result<bool, Error> {
        Sqlite::fire_step(self, id, step, channels, now_ms).await
    }

    async fn ack(&self, id: i64, by: Option<String>, now_ms: i64) -> Result<Acked, Error> {
        Sqlite::ack(self, id, by, now_ms).await
    }

    async fn prune_incidents(&self, before_ms: i64) -> Result<usize, Error> {
        Sqlite::prune_incidents(self, before_ms).await
    }

    async fn redrive(&self, which: Redrive, now_ms: i64) -> Result<Redriven, Error> {
        Sqlite::redrive(self, which, now_ms).await
    }

    async fn keep_secret(&self, name: &str, fresh: String) -> Result<String, Error> {
        let (dir, name) = (
            self.path.parent().map(Path::to_owned).unwrap_or_default(),
            name.to_owned(),
        );
        tokio::task::spawn_blocking(move || keep_secret_file(&dir, &name, &fresh))
            .await
            .map_err(|error| Error::Sqlite(format!("secret reader: {error}")))?
    }

    /// One process holds every row: nothing to give up.
    async fn release(&self) {}
}

mod digests;
mod incidents;
mod redrive;
#[cfg(test)]
mod tests;
