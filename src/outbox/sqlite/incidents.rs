//! Incidents of escalating receivers (schema version 4): one row per occurrence of
//! (receiver, group key) from its first firing notification to its resolution, with how
//! many escalation steps have fired and who acknowledged it. Fired steps are rows in
//! `escalations`, whose key (incident, step) makes a step fire at most once.
//!
//! - A firing notification opens an incident, or updates the open one (its latest
//!   notification is what a step sends and what the ack page shows).
//! - A resolved notification resolves the open incident: no further step fires.
//! - An ack moves a firing incident to `acked`: no further step fires; later firing
//!   notifications keep it acknowledged until it resolves.

use rusqlite::{OptionalExtension as _, params};

use super::{Error, NewNotification, Sqlite};
use crate::outbox::model::{Acked, IncidentPage, OpenIncident};

pub(super) fn migrate_v4(tx: &rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> {
    tx.execute_batch(
        "ALTER TABLE notifications ADD COLUMN incident_id INTEGER;
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            incident TEXT NOT NULL,
            receiver TEXT NOT NULL,
            summary TEXT NOT NULL,
            notification_id INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('firing', 'acked', 'resolved')),
            steps_done INTEGER NOT NULL DEFAULT 0,
            opened_at_ms INTEGER NOT NULL,
            updated_at_ms INTEGER NOT NULL,
            acked_at_ms INTEGER,
            acked_by TEXT,
            resolved_at_ms INTEGER
        );
        CREATE INDEX incidents_open ON incidents (incident) WHERE state <> 'resolved';
        CREATE INDEX incidents_resolved ON incidents (updated_at_ms) WHERE state = 'resolved';
        CREATE TABLE escalations (
            incident_id INTEGER NOT NULL,
            step INTEGER NOT NULL,
            at_ms INTEGER NOT NULL,
            PRIMARY KEY (incident_id, step)
        ) WITHOUT ROWID;",
    )
}

/// Opens, updates or resolves `n`'s incident, in the transaction that stores `n`.
pub(super) fn record(
    tx: &rusqlite::Transaction<'_>,
    notification_id: i64,
    n: &NewNotification,
) -> Result<(), rusqlite::Error> {
    let open: Option<i64> = tx
        .prepare_cached(
            "SELECT id FROM incidents WHERE incident = ?1 AND state <> 'resolved' ORDER BY id DESC LIMIT 1",
        )?
        .query_row([&n.incident], |r| r.get(0))
        .optional()?;
    let now = n.received_at_ms;
    let incident_id = match (open, n.firing) {
        (Some(id), true) => {
            tx.prepare_cached(
                "UPDATE incidents SET notification_id = ?2, summary = ?3, updated_at_ms = ?4 WHERE id = ?1",
            )?
            .execute(params![id, notification_id, n.summary, now])?;
            id
        }
        (None, true) => {
            tx.prepare_cached(
                "INSERT INTO incidents (incident, receiver, summary, notification_id, state, opened_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, 'firing', ?5, ?5)",
            )?
            .execute(params![n.incident, n.receiver, n.summary, notification_id, now])?;
            tx.last_insert_rowid()
        }
        (Some(id), false) => {
            tx.prepare_cached(
                "UPDATE incidents SET state = 'resolved', resolved_at_ms = ?2, updated_at_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now])?;
            id
        }
        (None, false) => return Ok(()),
    };
    tx.prepare_cached("UPDATE notifications SET incident_id = ?2 WHERE id = ?1")?
        .execute(params![notification_id, incident_id])?;
    Ok(())
}

impl Sqlite {
    /// Incidents firing or acknowledged, oldest first (read-only connection).
    pub(super) async fn open_incidents(&self) -> Result<Vec<OpenIncident>, Error> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT id, receiver, summary, state, acked_by, acked_at_ms, steps_done, opened_at_ms
                 FROM incidents WHERE state <> 'resolved' ORDER BY id",
            )?;
            let rows = statement.query_map([], |r| {
                Ok(OpenIncident {
                    id: r.get(0)?,
                    receiver: r.get(1)?,
                    summary: r.get(2)?,
                    acked: r.get::<_, String>(3)? == "acked",
                    acked_by: r.get(4)?,
                    acked_at_ms: r.get(5)?,
                    steps_done: usize::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                    opened_at_ms: r.get(7)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// One incident with its latest firing payload and fired steps, if it exists.
    pub(super) async fn incident(&self, id: i64) -> Result<Option<IncidentPage>, Error> {
        self.read(move |conn| {
            let page = conn
                .prepare_cached(
                    "SELECT i.id, i.receiver, i.summary, i.state, i.opened_at_ms, i.resolved_at_ms,
                            i.acked_at_ms, i.acked_by, COALESCE(n.payload, '')
                     FROM incidents i LEFT JOIN notifications n ON n.id = i.notification_id
                     WHERE i.id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(IncidentPage {
                        id: r.get(0)?,
                        receiver: r.get(1)?,
                        summary: r.get(2)?,
                        state: r.get(3)?,
                        opened_at_ms: r.get(4)?,
                        resolved_at_ms: r.get(5)?,
                        acked_at_ms: r.get(6)?,
                        acked_by: r.get(7)?,
                        escalations: Vec::new(),
                        payload: r.get(8)?,
                    })
                })
                .optional()?;
            let Some(mut page) = page else {
                return Ok(None);
            };
            page.escalations = conn
                .prepare_cached(
                    "SELECT step, at_ms FROM escalations WHERE incident_id = ?1 ORDER BY step",
                )?
                .query_map([id], |r| {
                    Ok((usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(Some(page))
        })
        .await
    }

    /// Fires escalation step `step` of incident `id`: queues its latest notification for
    /// `channels`, in one transaction with the record that the step fired. Returns
    /// whether it fired (its notification may be gone: then it is recorded, sending nothing) — not if the incident is no longer firing unacknowledged, or the
    /// step is not the next one (it fired already, perhaps before a restart).
    pub(super) async fn fire_step(
        &self,
        id: i64,
        step: usize,
        channels: Vec<String>,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let advanced = tx
                .prepare_cached(
                    "UPDATE incidents SET steps_done = ?2 + 1, updated_at_ms = ?3
                     WHERE id = ?1 AND state = 'firing' AND steps_done = ?2",
                )?
                .execute(params![id, step, now_ms])?;
            if advanced == 0 {
                return Ok(false);
            }
            tx.prepare_cached("INSERT INTO escalations (incident_id, step, at_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![id, step, now_ms])?;
            let (notification_id, incident, summary): (i64, String, String) = tx
                .prepare_cached(
                    "SELECT i.notification_id, i.incident, i.summary FROM incidents i WHERE i.id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let present: bool = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM notifications WHERE id = ?1 AND payload <> '')")?
                .query_row([notification_id], |r| r.get(0))?;
            if present {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO deliveries (notification_id, channel, state, next_attempt_at_ms, created_at_ms, updated_at_ms, summary, incident)
                     VALUES (?1, ?2, 'pending', ?3, ?3, ?3, ?4, ?5)",
                )?;
                for channel in &channels {
                    insert.execute(params![
                        notification_id,
                        channel,
                        now_ms,
                        format!("escalation {}: {summary}", step + 1),
                        incident
                    ])?;
                }
            } else {
                tracing::warn!(incident = id, "escalation step has no notification left to send (retention dropped it)");
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    /// Acknowledges incident `id` if it is firing.
    pub(super) async fn ack(
        &self,
        id: i64,
        by: Option<String>,
        now_ms: i64,
    ) -> Result<Acked, Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let state: Option<(String, Option<String>, Option<i64>)> = tx
                .prepare_cached("SELECT state, acked_by, acked_at_ms FROM incidents WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            let outcome = match state {
                None => Acked::Unknown,
                Some((state, _, _)) if state == "resolved" => Acked::Resolved,
                Some((state, by, at_ms)) if state == "acked" => Acked::Already { by, at_ms },
                Some(_) => {
                    tx.prepare_cached(
                        "UPDATE incidents SET state = 'acked', acked_at_ms = ?2, acked_by = ?3, updated_at_ms = ?2 WHERE id = ?1",
                    )?
                    .execute(params![id, now_ms, by])?;
                    Acked::Now
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    /// Forgets incidents resolved before `before_ms`, with their fired steps.
    pub(super) async fn prune_incidents(&self, before_ms: i64) -> Result<usize, Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "DELETE FROM escalations WHERE incident_id IN
                     (SELECT id FROM incidents WHERE state = 'resolved' AND updated_at_ms < ?1)",
                [before_ms],
            )?;
            let removed = tx.execute(
                "DELETE FROM incidents WHERE state = 'resolved' AND updated_at_ms < ?1",
                [before_ms],
            )?;
            tx.commit()?;
            Ok(removed)
        })
        .await
    }
}
