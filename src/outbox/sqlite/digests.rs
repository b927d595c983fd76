//! Durable digests and target pauses.
//!
//! A digest is written before its first part is sent: the rendered messages, the parts
//! sent so far, and (through `deliveries.digest_id`) the rows it stands for. A failed
//! part or a crash resumes the same digest at the next unsent part, so parts already
//! delivered are never sent again and the rows stay pending until every part is out.
//! A pause (a target answered "rate limited") survives restarts the same way.

use rusqlite::{OptionalExtension as _, params};

use super::{Error, Sqlite};
use crate::outbox::model::{StoredDigest, parts_sent};

impl Sqlite {
    /// Stores a digest of `rows` (pending deliveries of `channel`) before it is sent.
    pub(super) async fn open_digest(
        &self,
        channel: String,
        rows: Vec<i64>,
        messages: String,
        now_ms: i64,
    ) -> Result<i64, Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO digests (channel, messages, next_attempt_at_ms, created_at_ms) VALUES (?1, ?2, ?3, ?3)",
                params![channel, messages, now_ms],
            )?;
            let id = tx.last_insert_rowid();
            {
                let mut statement = tx.prepare_cached(
                    "UPDATE deliveries SET digest_id = ?2, updated_at_ms = ?3 WHERE id = ?1 AND state = 'pending'",
                )?;
                for row in rows {
                    statement.execute(params![row, id, now_ms])?;
                }
            }
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// The oldest open digest of `channel`, if any (after a crash or a failed part).
    pub(super) async fn open_digest_of(
        &self,
        channel: &str,
    ) -> Result<Option<StoredDigest>, Error> {
        let channel = channel.to_owned();
        self.run(move |conn| {
            let digest = conn
                .query_row(
                    "SELECT id, channel, messages, sent_parts, attempts, next_attempt_at_ms
                     FROM digests WHERE channel = ?1 ORDER BY id LIMIT 1",
                    params![channel],
                    |r| {
                        let sent: String = r.get(3)?;
                        Ok(StoredDigest {
                            id: r.get(0)?,
                            channel: r.get(1)?,
                            messages: r.get(2)?,
                            sent_parts: parts_sent(&sent),
                            attempts: r.get(4)?,
                            next_attempt_at_ms: r.get(5)?,
                            rows: Vec::new(),
                        })
                    },
                )
                .optional()?;
            let Some(mut digest) = digest else {
                return Ok(None);
            };
            let mut statement = conn.prepare_cached(
                "SELECT d.id, n.received_at_ms FROM deliveries d JOIN notifications n ON n.id = d.notification_id
                 WHERE d.digest_id = ?1 AND d.state = 'pending' ORDER BY d.id",
            )?;
            digest.rows = statement
                .query_map(params![digest.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(Some(digest))
        })
        .await
    }

    /// Records one part of a digest as sent.
    pub(super) async fn digest_part_sent(&self, id: i64, key: String) -> Result<(), Error> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE digests SET sent_parts = sent_parts || ?2 || ',' WHERE id = ?1",
                params![id, key],
            )
            .map(drop)
        })
        .await
    }

    /// Keeps a digest open until `next_at_ms`; its rows show `error` meanwhile.
    pub(super) async fn digest_retry_later(
        &self,
        id: i64,
        next_at_ms: i64,
        error: String,
        attempted: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE digests SET next_attempt_at_ms = ?2, last_error = ?3, attempts = attempts + ?4 WHERE id = ?1",
                params![id, next_at_ms, error, i64::from(attempted)],
            )?;
            tx.execute(
                "UPDATE deliveries SET next_attempt_at_ms = ?2, last_error = ?3, attempts = attempts + ?4, updated_at_ms = ?5
                 WHERE digest_id = ?1 AND state = 'pending'",
                params![id, next_at_ms, error, i64::from(attempted), now_ms],
            )?;
            tx.commit()
        })
        .await
    }

    /// Closes a digest: its rows become `delivered`, or `dead` with `error`.
    pub(super) async fn close_digest(
        &self,
        id: i64,
        dead: Option<String>,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            match dead {
                None => tx.execute(
                    "UPDATE deliveries SET state = 'delivered', delivered_at_ms = ?2, updated_at_ms = ?2, last_error = NULL
                     WHERE digest_id = ?1 AND state = 'pending'",
                    params![id, now_ms],
                )?,
                Some(error) => tx.execute(
                    "UPDATE deliveries SET state = 'dead', last_error = ?3, attempts = attempts + 1, updated_at_ms = ?2
                     WHERE digest_id = ?1 AND state = 'pending'",
                    params![id, now_ms, error],
                )?,
            };
            tx.execute("DELETE FROM digests WHERE id = ?1", params![id])?;
            tx.commit()
        })
        .await
    }

    /// Gives a digest's rows back to the queue (to be digested again, at half size when
    /// `too_long`).
    pub(super) async fn dissolve_digest(
        &self,
        id: i64,
        too_long: bool,
        now_ms: i64,
    ) -> Result<(), Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE deliveries SET digest_id = NULL, too_long = too_long OR ?2, updated_at_ms = ?3
                 WHERE digest_id = ?1",
                params![id, too_long, now_ms],
            )?;
            tx.execute("DELETE FROM digests WHERE id = ?1", params![id])?;
            tx.commit()
        })
        .await
    }

    /// Pauses `target` until `until_ms` (kept across restarts).
    pub(super) async fn pause(&self, target: String, until_ms: i64) -> Result<(), Error> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO pauses (target, until_ms) VALUES (?1, ?2)
                 ON CONFLICT (target) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)",
                params![target, until_ms],
            )
            .map(drop)
        })
        .await
    }

    /// Targets paused beyond `now_ms`; expired pauses are forgotten.
    pub(super) async fn pauses(&self, now_ms: i64) -> Result<Vec<(String, i64)>, Error> {
        self.run(move |conn| {
            conn.execute("DELETE FROM pauses WHERE until_ms <= ?1", params![now_ms])?;
            let mut statement = conn.prepare_cached("SELECT target, until_ms FROM pauses")?;
            let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }
}
