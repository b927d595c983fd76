//! The shared outbox's schema, versioned in `lookout_schema` and migrated forward under
//! a database-wide lock (PostgreSQL's `pg_advisory_xact_lock`, MySQL's `GET_LOCK`), so
//! replicas that start at the same instant migrate once: the first takes the lock and
//! migrates, the others wait for it and find the schema current. PostgreSQL migrates in
//! one transaction; MySQL commits each DDL statement on its own, so every statement is
//! written to be run again (`IF NOT EXISTS`) after a migration that stopped midway.
//!
//! Tables are prefixed `lookout_`, so the outbox can share a database with other data.
//! Targets (robot URLs carrying tokens) are stored as SHA-256 hashes.

use super::sql::{Conn, Dialect, SqlError, params};

/// The schema version this build writes.
pub(super) const VERSION: i64 = 1;

/// An arbitrary constant naming the migration lock (PostgreSQL takes a number).
const PG_LOCK: i64 = 0x006c_6f6f_6b6f_7574;
const MYSQL_LOCK: &str = "lookout_outbox_schema";

/// One table: columns with `{id}`, `{key}`, `{text}` and `{long}` for the types that
/// differ between the engines, and its secondary indexes as (name, columns).
struct Table {
    name: &'static str,
    columns: &'static str,
    indexes: &'static [(&'static str, &'static str)],
}

const V1: &[Table] = &[
    Table {
        name: "lookout_notifications",
        columns: "id {id},
            receiver {key} NOT NULL,
            dedupe_key {key} NOT NULL,
            payload {long} NOT NULL,
            summary {text} NOT NULL,
            received_at_ms BIGINT NOT NULL,
            incident_id BIGINT",
        indexes: &[],
    },
    // The dedupe key is unique here: of two replicas accepting one notification, the
    // second waits for the first's row and finds it.
    Table {
        name: "lookout_dedupe",
        columns: "dedupe_key {key} NOT NULL PRIMARY KEY,
            notification_id BIGINT,
            received_at_ms BIGINT NOT NULL",
        indexes: &[("lookout_dedupe_age", "received_at_ms")],
    },
    Table {
        name: "lookout_deliveries",
        columns: "id {id},
            notification_id BIGINT NOT NULL,
            channel {key} NOT NULL,
            state VARCHAR(16) NOT NULL,
            attempts BIGINT NOT NULL,
            next_attempt_at_ms BIGINT NOT NULL,
            last_error {text},
            sent_parts {text} NOT NULL,
            too_long BIGINT NOT NULL,
            created_at_ms BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL,
            delivered_at_ms BIGINT,
            summary {text} NOT NULL,
            incident {key} NOT NULL,
            digest_id BIGINT,
            leased_by VARCHAR(128),
            leased_until_ms BIGINT",
        indexes: &[
            (
                "lookout_deliveries_due",
                "channel, state, next_attempt_at_ms",
            ),
            ("lookout_deliveries_notification", "notification_id"),
            (
                "lookout_deliveries_incident",
                "channel, incident, state, id",
            ),
            ("lookout_deliveries_digest", "digest_id"),
            ("lookout_deliveries_state", "state, channel, created_at_ms"),
            ("lookout_deliveries_holder", "leased_by"),
        ],
    },
    Table {
        name: "lookout_digests",
        columns: "id {id},
            channel {key} NOT NULL,
            messages {long} NOT NULL,
            sent_parts {text} NOT NULL,
            attempts BIGINT NOT NULL,
            next_attempt_at_ms BIGINT NOT NULL,
            last_error {text},
            created_at_ms BIGINT NOT NULL,
            leased_by VARCHAR(128),
            leased_until_ms BIGINT",
        indexes: &[("lookout_digests_channel", "channel, id")],
    },
    Table {
        name: "lookout_sends",
        columns: "id {id},
            channel {key} NOT NULL,
            target {key} NOT NULL,
            at_ms BIGINT NOT NULL",
        indexes: &[
            ("lookout_sends_target", "target, at_ms"),
            ("lookout_sends_age", "at_ms"),
        ],
    },
    // One row per target: locked while its budget is checked and spent, and its pause.
    Table {
        name: "lookout_targets",
        columns: "target {key} NOT NULL PRIMARY KEY,
            paused_until_ms BIGINT",
        indexes: &[],
    },
    // Rows locked to serialize what has no row yet (an incident's first notification).
    Table {
        name: "lookout_locks",
        columns: "name {key} NOT NULL PRIMARY KEY",
        indexes: &[],
    },
    Table {
        name: "lookout_incidents",
        columns: "id {id},
            incident {key} NOT NULL,
            receiver {key} NOT NULL,
            summary {text} NOT NULL,
            notification_id BIGINT NOT NULL,
            state VARCHAR(16) NOT NULL,
            steps_done BIGINT NOT NULL,
            opened_at_ms BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL,
            acked_at_ms BIGINT,
            acked_by {text},
            resolved_at_ms BIGINT",
        indexes: &[
            ("lookout_incidents_open", "incident, state"),
            ("lookout_incidents_age", "state, updated_at_ms"),
        ],
    },
    Table {
        name: "lookout_escalations",
        columns: "incident_id BIGINT NOT NULL,
            step BIGINT NOT NULL,
            at_ms BIGINT NOT NULL,
            PRIMARY KEY (incident_id, step)",
        indexes: &[],
    },
    Table {
        name: "lookout_secrets",
        columns: "name VARCHAR(64) NOT NULL PRIMARY KEY,
            value {text} NOT NULL",
        indexes: &[],
    },
];

/// The statements that create `tables` on `dialect`.
fn create(dialect: Dialect, tables: &[Table]) -> Vec<String> {
    let mut statements = Vec::new();
    for table in tables {
        let columns = table
            .columns
            .replace(
                "{id}",
                dialect.pick("BIGSERIAL PRIMARY KEY", "BIGINT AUTO_INCREMENT PRIMARY KEY"),
            )
            .replace("{key}", "VARCHAR(255)")
            .replace("{text}", "TEXT")
            .replace("{long}", dialect.pick("TEXT", "LONGTEXT"));
        match dialect {
            Dialect::Postgres => {
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS {} ({columns})",
                    table.name
                ));
                for (name, on) in table.indexes {
                    statements.push(format!(
                        "CREATE INDEX IF NOT EXISTS {name} ON {} ({on})",
                        table.name
                    ));
                }
            }
            Dialect::Mysql => {
                // MySQL has no CREATE INDEX IF NOT EXISTS: indexes are part of the table.
                let indexes: String = table
                    .indexes
                    .iter()
                    .map(|(name, on)| format!(", INDEX {name} ({on})"))
                    .collect();
                statements.push(format!(
                    "CREATE TABLE IF NOT EXISTS {} ({columns}{indexes}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
                    table.name
                ));
            }
        }
    }
    statements
}

/// Brings the schema to [`VERSION`]; errors name a newer schema than this build knows.
pub(super) async fn migrate(conn: &mut Conn, dialect: Dialect) -> Result<(), Migration> {
    match dialect {
        Dialect::Postgres => {
            let mut tx = conn.begin().await?;
            tx.execute("SELECT pg_advisory_xact_lock(?)", params![PG_LOCK])
                .await?;
            let found = current(&mut tx).await?;
            if found < VERSION {
                for statement in create(dialect, V1) {
                    tx.execute(&statement, &[]).await?;
                }
                set_version(&mut tx, found).await?;
            }
            tx.commit().await?;
            check(found)
        }
        Dialect::Mysql => {
            let locked = session_lock(conn, "SELECT GET_LOCK(?, 60)").await?;
            if locked != Some(1) {
                return Err(Migration::Sql(SqlError::new(
                    "waited 60 s for another replica's schema migration",
                )));
            }
            let result = migrate_mysql(conn).await;
            // The lock is the session's: release it before the connection goes back.
            if session_lock(conn, "SELECT RELEASE_LOCK(?)").await.is_err() {
                tracing::warn!(
                    "cannot release the outbox schema lock; it ends with the connection"
                );
            }
            result
        }
    }
}

/// Takes or gives back MySQL's migration lock (`sql` names it as its one parameter); the
/// lock belongs to the session and outlives the transaction that asked for it.
async fn session_lock(conn: &mut Conn, sql: &str) -> Result<Option<i64>, SqlError> {
    let mut tx = conn.begin().await?;
    let answer = tx.query_one(sql, params![MYSQL_LOCK]).await?.opt_int(0)?;
    tx.commit().await?;
    Ok(answer)
}

async fn migrate_mysql(conn: &mut Conn) -> Result<(), Migration> {
    let found = {
        let mut tx = conn.begin().await?;
        let found = current(&mut tx).await?;
        tx.commit().await?;
        found
    };
    if found < VERSION {
        for statement in create(Dialect::Mysql, V1) {
            conn.batch(&statement).await?;
        }
        let mut tx = conn.begin().await?;
        set_version(&mut tx, found).await?;
        tx.commit().await?;
    }
    check(found)
}

/// The version recorded, 0 for an empty database.
async fn current(tx: &mut super::sql::Tx<'_>) -> Result<i64, SqlError> {
    // On MySQL this DDL commits the transaction; harmless here, before any write.
    tx.execute(
        "CREATE TABLE IF NOT EXISTS lookout_schema (version BIGINT NOT NULL)",
        &[],
    )
    .await?;
    Ok(tx
        .query_opt("SELECT MAX(version) FROM lookout_schema", &[])
        .await?
        .map(|row| row.opt_int(0))
        .transpose()?
        .flatten()
        .unwrap_or(0))
}

async fn set_version(tx: &mut super::sql::Tx<'_>, found: i64) -> Result<(), SqlError> {
    if found == 0 {
        tx.execute(
            "INSERT INTO lookout_schema (version) VALUES (?)",
            params![VERSION],
        )
        .await?;
    } else {
        tx.execute("UPDATE lookout_schema SET version = ?", params![VERSION])
            .await?;
    }
    Ok(())
}

fn check(found: i64) -> Result<(), Migration> {
    if found > VERSION {
        return Err(Migration::TooNew(found));
    }
    Ok(())
}

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub(super) enum Migration {
    Sql(SqlError),
    TooNew(i64),
}

impl From<SqlError> for Migration {
    fn from(error: SqlError) -> Self {
        Migration::Sql(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_engine_gets_its_types_and_indexes() {
        let pg = create(Dialect::Postgres, V1);
        assert!(pg[0].starts_with(
            "CREATE TABLE IF NOT EXISTS lookout_notifications (id BIGSERIAL PRIMARY KEY"
        ));
        assert!(pg.iter().any(|s| s
            == "CREATE INDEX IF NOT EXISTS lookout_sends_target ON lookout_sends (target, at_ms)"));
        let my = create(Dialect::Mysql, V1);
        assert_eq!(my.len(), V1.len());
        assert!(my[0].contains("payload LONGTEXT NOT NULL"));
        assert!(
            my.iter()
                .any(|s| s.contains(", INDEX lookout_sends_target (target, at_ms)"))
        );
        assert!(
            my.iter()
                .all(|s| s.ends_with("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"))
        );
        for statement in pg.iter().chain(&my) {
            assert!(!statement.contains('{'), "{statement}");
        }
    }
}
