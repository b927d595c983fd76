//! Redrive: dead letters back to `pending`, once their cause is fixed (a wrong secret
//! corrected by a reload, say). A row keeps its notification — so its dedupe key — and
//! the parts it had already sent, so nothing goes out twice; rows that are not dead are
//! never touched. A dead letter whose payload retention already dropped cannot be sent
//! again and is counted as skipped.

use rusqlite::params;

use super::{Error, Sqlite};
use crate::outbox::model::{Redrive, Redriven};

impl Sqlite {
    pub(super) async fn redrive(&self, which: Redrive, now_ms: i64) -> Result<Redriven, Error> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let candidates: Vec<(i64, String, bool)> = {
                let select = "SELECT d.id, d.channel, n.payload <> ''
                     FROM deliveries d JOIN notifications n ON n.id = d.notification_id
                     WHERE d.state = 'dead' AND ";
                match &which {
                    Redrive::Channel(channel) => tx
                        .prepare_cached(&format!("{select} d.channel = ?1 ORDER BY d.id"))?
                        .query_map([channel], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<Result<_, _>>()?,
                    Redrive::Ids(ids) => {
                        let mut statement = tx.prepare_cached(&format!("{select} d.id = ?1"))?;
                        let mut rows = Vec::new();
                        for id in ids {
                            rows.extend(
                                statement
                                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                                    .collect::<Result<Vec<_>, _>>()?,
                            );
                        }
                        rows
                    }
                }
            };
            let mut done = Redriven::default();
            {
                let mut revive = tx.prepare_cached(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at_ms = ?2,
                         last_error = NULL, digest_id = NULL, updated_at_ms = ?2
                     WHERE id = ?1 AND state = 'dead'",
                )?;
                for (id, channel, has_payload) in candidates {
                    if !has_payload {
                        done.skipped += 1;
                        continue;
                    }
                    if revive.execute(params![id, now_ms])? == 1 {
                        *done.channels.entry(channel).or_default() += 1;
                    }
                }
            }
            tx.commit()?;
            Ok(done)
        })
        .await
    }
}
