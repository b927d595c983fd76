//! Outbox store tests on a real SQLite file in a temp dir.

use super::*;

const PAYLOAD: &str = r#"{"status":"firing","alerts":[{"status":"firing","startsAt":"2024-01-01T00:00:00Z","labels":{"alertname":"X"}}]}"#;

fn new(key: &str, channels: &[&str], at: i64) -> NewNotification {
    with_payload(key, channels, at, PAYLOAD.to_owned())
}

fn with_payload(key: &str, channels: &[&str], at: i64, payload: String) -> NewNotification {
    NewNotification {
        receiver: "critical".to_owned(),
        dedupe_key: key.to_owned(),
        incident: key.to_owned(),
        summary: summarize_payload(&payload),
        payload,
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        received_at_ms: at,
        dedupe_since_ms: at - 600_000,
        escalates: false,
        firing: true,
    }
}

/// A firing payload of about `bytes` bytes (one alert with a long annotation).
fn large_payload(name: &str, bytes: usize) -> String {
    format!(
        r#"{{"status":"firing","alerts":[{{"status":"firing","startsAt":"2024-01-01T00:00:00Z","labels":{{"alertname":"{name}"}},"annotations":{{"description":"{}"}}}}]}}"#,
        "x".repeat(bytes)
    )
}

#[tokio::test]
async fn accepted_rows_are_due_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let accepted = outbox.accept(new("k1", &["a", "b"], 1_000)).await.unwrap();
    assert!(matches!(accepted, Accepted::Stored { deliveries: 2, .. }));
    let due = outbox.due("a", 1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].receiver, "critical");
    assert!(
        outbox.due("a", 999, 10).await.unwrap().is_empty(),
        "not due before it arrived"
    );
    outbox.delivered(vec![due[0].id], 2_000).await.unwrap();
    assert!(outbox.due("a", 5_000, 10).await.unwrap().is_empty());
    assert_eq!(
        outbox.due("b", 5_000, 10).await.unwrap().len(),
        1,
        "other channel unaffected"
    );
    let stats = outbox.stats().await.unwrap();
    assert_eq!(
        stats,
        vec![ChannelStats {
            channel: "b".into(),
            pending: 1,
            oldest_pending_ms: Some(1_000),
            dead: 0
        }],
        "a channel with neither pending rows nor dead letters has no counts"
    );
    assert_eq!(count_in(&outbox, "a", "delivered").await, 1);
}

/// Rows of `channel` in `state`, from the status page's list.
async fn count_in(outbox: &Sqlite, channel: &str, state: &'static str) -> i64 {
    let rows = outbox.latest(Some(state), 1_000_000).await.unwrap();
    rows.iter().filter(|r| r.channel == channel).count() as i64
}

#[tokio::test]
async fn the_same_notification_within_the_window_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let first = outbox.accept(new("k", &["a"], 1_000_000)).await.unwrap();
    let Accepted::Stored { id, .. } = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        outbox.accept(new("k", &["a"], 1_300_000)).await.unwrap(),
        Accepted::Duplicate { id }
    );
    // After the window (600 s) it is new again.
    assert!(matches!(
        outbox.accept(new("k", &["a"], 1_700_000)).await.unwrap(),
        Accepted::Stored { .. }
    ));
}

#[tokio::test]
async fn retries_parts_dead_letters_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Sqlite::open(dir.path()).unwrap();
        outbox.accept(new("k1", &["a"], 1_000)).await.unwrap();
        outbox.accept(new("k2", &["a"], 1_000)).await.unwrap();
        let due = outbox.due("a", 1_000, 10).await.unwrap();
        outbox
            .part_sent(due[0].id, "robot#1".into(), 1_100)
            .await
            .unwrap();
        outbox
            .retry_later(
                vec![due[0].id],
                9_000,
                "HTTP 500".into(),
                true,
                false,
                1_100,
            )
            .await
            .unwrap();
        outbox
            .dead(vec![due[1].id], "310000 sign not match".into(), 1_100)
            .await
            .unwrap();
        assert_eq!(outbox.next_due_ms("a", 1_100).await.unwrap(), Some(9_000));
        let dead = outbox.latest(Some("dead"), 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].last_error.as_deref(), Some("310000 sign not match"));
        assert_eq!(dead[0].summary, "firing X ×1");
    }
    // Reopen: the pending row survives with its progress.
    let outbox = Sqlite::open(dir.path()).unwrap();
    let due = outbox.due("a", 9_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].sent_parts, vec!["robot#1".to_owned()]);
}

#[tokio::test]
async fn concurrent_accepts_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.accept(new(&format!("k{i}"), &["a"], 1_000)).await })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            Accepted::Stored { .. }
        ));
    }
    assert_eq!(outbox.due("a", 1_000, 1_000).await.unwrap().len(), 200);
    // Batching, not only storing: the 200 concurrent accepts shared a few transactions.
    let commits = outbox.accept_commits();
    assert!(
        (1..=20).contains(&commits),
        "200 accepts took {commits} commits"
    );
}

#[tokio::test]
async fn sends_are_remembered_for_rate_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let now = now_ms();
    let budget = Budget {
        count: 3,
        per_ms: 60_000,
    };
    for i in 0..3 {
        assert!(
            outbox
                .take_send("a".into(), "robot".into(), budget, now + i)
                .await
                .unwrap()
        );
    }
    assert!(
        !outbox
            .take_send("b".into(), "robot".into(), budget, now + 3)
            .await
            .unwrap(),
        "the budget is the target's, whichever channel spends it"
    );
    assert!(
        outbox
            .take_send("b".into(), "robot".into(), budget, now + 60_000)
            .await
            .unwrap(),
        "the oldest send left the window"
    );
    outbox.pause("robot".into(), now + 120_000).await.unwrap();
    assert!(
        !outbox
            .take_send("a".into(), "robot".into(), budget, now + 100_000)
            .await
            .unwrap(),
        "a paused target takes nothing"
    );
    assert_eq!(
        outbox.sends_to("robot".into(), now + 1).await.unwrap(),
        vec![now + 1, now + 2, now + 60_000]
    );
    assert!(outbox.sends_to("other".into(), 0).await.unwrap().is_empty());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("outbox.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Sqlite::open(dir.path()),
        Err(Error::TooNew { found: 99, .. })
    ));
}

#[test]
fn an_unusable_state_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(matches!(
        Sqlite::open(&file.join("state")),
        Err(Error::StateDir { .. })
    ));
}

#[tokio::test]
async fn old_rows_are_pruned_pending_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    for key in ["a", "b", "c"] {
        outbox.accept(new(key, &["x"], 1_000)).await.unwrap();
    }
    let due = outbox.due("x", 1_000, 10).await.unwrap();
    outbox.delivered(vec![due[0].id], 2_000).await.unwrap();
    outbox
        .dead(vec![due[1].id], "bad".into(), 2_000)
        .await
        .unwrap();
    // Delivered kept 1 s, dead 1 h: only the delivered row (and its notification) go.
    assert_eq!(outbox.prune(10_000, 1_000, 3_600_000).await.unwrap(), 2);
    assert_eq!(
        outbox.due("x", 10_000, 10).await.unwrap().len(),
        1,
        "pending rows stay"
    );
    assert_eq!(outbox.latest(Some("dead"), 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_size_bound_drops_old_payloads_and_never_pending_ones() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let mb = 1024 * 1024;
    // Two pending notifications, then 20 delivered and 4 dead ones, 256 KiB each.
    for i in 0..2 {
        let payload = large_payload(&format!("Pending{i}"), 256 * 1024);
        outbox
            .accept(with_payload(&format!("p{i}"), &["a"], 1_000, payload))
            .await
            .unwrap();
    }
    for i in 0..24 {
        let payload = large_payload(&format!("Old{i}"), 256 * 1024);
        outbox
            .accept(with_payload(&format!("o{i}"), &["b"], 1_000 + i, payload))
            .await
            .unwrap();
    }
    let rows = outbox.due("b", 10_000, 100).await.unwrap();
    let (dead, delivered) = rows.split_at(4);
    outbox
        .dead(dead.iter().map(|r| r.id).collect(), "bad".into(), 2_000)
        .await
        .unwrap();
    outbox
        .delivered(delivered.iter().map(|r| r.id).collect(), 2_000)
        .await
        .unwrap();
    assert!(outbox.storage().await.unwrap().used_bytes > 6 * mb);

    // A 2 MiB bound: delivered payloads go, oldest first; dead letters stay.
    let report = outbox.prune_to_size(2 * mb, 1_000_000).await.unwrap();
    assert!(report.used_bytes <= 2 * mb, "{report:?}");
    assert_eq!(report.emptied, 0, "nothing is inside the dedupe window");
    assert_eq!(
        outbox.storage().await.unwrap().used_bytes,
        report.used_bytes
    );
    let stats = outbox.stats().await.unwrap();
    assert_eq!((stats[0].channel.as_str(), stats[0].pending), ("a", 2));
    assert_eq!(
        stats[1].dead, 4,
        "dead letters are kept while delivered rows suffice"
    );
    assert_eq!(
        count_in(&outbox, "b", "delivered").await,
        24 - 4 - report.removed as i64
    );
    let kept = outbox.latest(None, 100).await.unwrap();
    assert!(
        kept.iter().any(|r| r.summary == "firing Old23 ×1"),
        "the newest delivered rows are kept: {kept:?}"
    );
    assert!(!kept.iter().any(|r| r.summary == "firing Old4 ×1"));

    // A bound the pending rows alone exceed: everything else goes, pending rows stay whole.
    let report = outbox.prune_to_size(mb / 4, 1_000_000).await.unwrap();
    assert!(report.used_bytes > mb / 4);
    let stats = outbox.stats().await.unwrap();
    assert_eq!(stats.len(), 1, "{stats:?}");
    let pending = outbox.due("a", 10_000, 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    for row in &pending {
        assert_eq!(
            row.payload.len(),
            large_payload("Pending0", 256 * 1024).len()
        );
    }
}

#[tokio::test]
async fn the_size_bound_keeps_the_dedupe_window() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let now = 10_000_000;
    let payload = large_payload("Recent", 512 * 1024);
    outbox
        .accept(with_payload("recent", &["a"], now, payload.clone()))
        .await
        .unwrap();
    let due = outbox.due("a", now, 10).await.unwrap();
    outbox.delivered(vec![due[0].id], now).await.unwrap();
    let report = outbox
        .prune_to_size(64 * 1024, now - 600_000)
        .await
        .unwrap();
    assert_eq!((report.removed, report.emptied), (0, 1));
    assert!(report.used_bytes < 128 * 1024, "{report:?}");
    // Its row stays: the same notification is still a duplicate, and `/` still shows it.
    assert!(matches!(
        outbox
            .accept(with_payload("recent", &["a"], now + 1_000, payload))
            .await
            .unwrap(),
        Accepted::Duplicate { .. }
    ));
    let rows = outbox.latest(None, 10).await.unwrap();
    assert_eq!(rows[0].summary, "firing Recent ×1");
}

/// The version 1 schema exactly as released; a database written by that version must
/// open with this one.
const SCHEMA_V1: &str = "CREATE TABLE notifications (
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
    CREATE INDEX sends_by_channel ON sends (channel, at_ms);
    PRAGMA user_version = 1;";

#[tokio::test]
async fn a_version_1_outbox_migrates_forward() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("outbox.db")).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO notifications VALUES (1, 'critical', 'k1', ?1, 1000), (2, 'critical', 'k2', 'not json', 1000)",
            [PAYLOAD],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO deliveries (notification_id, channel, state, next_attempt_at_ms, created_at_ms, updated_at_ms)
             VALUES (1, 'a', 'pending', 1000, 1000, 1000), (1, 'b', 'dead', 1000, 1000, 1000),
                    (2, 'a', 'delivered', 1000, 1000, 1000), (2, 'b', 'pending', 500, 500, 500);",
        )
        .unwrap();
    }
    let outbox = Sqlite::open(dir.path()).unwrap();
    let version: i64 = outbox
        .read(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(
        outbox.stats().await.unwrap(),
        vec![
            ChannelStats {
                channel: "a".into(),
                pending: 1,
                oldest_pending_ms: Some(1000),
                dead: 0
            },
            ChannelStats {
                channel: "b".into(),
                pending: 1,
                oldest_pending_ms: Some(500),
                dead: 1
            },
        ]
    );
    let summaries: Vec<String> = outbox
        .latest(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.summary)
        .collect();
    assert_eq!(
        summaries,
        [
            "(unreadable payload)",
            "(unreadable payload)",
            "firing X ×1",
            "firing X ×1"
        ]
    );
    // The counts follow new rows and state changes from here on.
    outbox.accept(new("k3", &["a"], 2_000)).await.unwrap();
    let due = outbox.due("a", 2_000, 10).await.unwrap();
    outbox
        .delivered(due.iter().map(|r| r.id).collect(), 3_000)
        .await
        .unwrap();
    let stats = outbox.stats().await.unwrap();
    assert_eq!(stats[0].channel, "b", "a has nothing pending or dead");
    assert_eq!(count_in(&outbox, "a", "delivered").await, 3);
    // And it opens again without migrating twice.
    drop(outbox);
    assert!(Sqlite::open(dir.path()).is_ok());
}

/// `stats()` runs every second and `/` on every page view: neither may scan the
/// deliveries table, however many rows it holds.
#[tokio::test]
async fn statistics_and_the_status_page_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    let plan = |sql: &'static str| {
        let outbox = outbox.clone();
        async move {
            outbox
                .read(move |c| {
                    let mut statement = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = statement.query_map(
                        rusqlite::params_from_iter(std::iter::repeat_n(
                            "dead",
                            sql.matches('?').count(),
                        )),
                        |r| r.get::<_, String>(3),
                    )?;
                    rows.collect::<Result<Vec<_>, _>>()
                })
                .await
                .unwrap()
                .join("\n")
        }
    };
    let stats = plan(STATS_SQL).await;
    assert!(
        stats.contains("USING COVERING INDEX deliveries_pending (channel=?)"),
        "{stats}"
    );
    assert!(!stats.contains("SCAN d"), "{stats}");
    let dead = plan(LATEST_IN_STATE_SQL).await;
    assert!(dead.contains("deliveries_dead"), "{dead}");
    assert!(
        !dead.contains("SCAN d\n") && !dead.ends_with("SCAN d"),
        "{dead}"
    );
    let latest = plan(LATEST_SQL).await;
    assert!(
        latest.contains("SEARCH n USING INTEGER PRIMARY KEY"),
        "{latest}"
    );
}

fn in_incident(key: &str, incident: &str, at: i64) -> NewNotification {
    NewNotification {
        incident: incident.to_owned(),
        ..new(key, &["a"], at)
    }
}

#[tokio::test]
async fn a_later_row_of_an_incident_waits_for_the_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox
        .accept(in_incident("firing", "i1", 1_000))
        .await
        .unwrap();
    outbox
        .accept(in_incident("resolved", "i1", 1_100))
        .await
        .unwrap();
    outbox
        .accept(in_incident("other", "i2", 1_200))
        .await
        .unwrap();
    let alone = outbox.due("a", 2_000, 10).await.unwrap();
    assert_eq!(
        alone.iter().map(|d| d.notification_id).collect::<Vec<_>>(),
        vec![1, 3],
        "the resolved row waits while its firing row is pending"
    );
    // The firing row failed and backs off: the resolved row must not overtake it, not
    // even in a digest; the other incident goes on.
    outbox
        .retry_later(
            vec![alone[0].id],
            60_000,
            "HTTP 500".into(),
            true,
            false,
            2_000,
        )
        .await
        .unwrap();
    assert_eq!(outbox.due_count("a", 2_000).await.unwrap(), 1);
    let batch = outbox
        .due_batch("a", 2_000, 0, 10, usize::MAX)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].notification_id, 3);
    outbox.delivered(vec![batch[0].id], 2_000).await.unwrap();
    assert_eq!(
        outbox.next_due_ms("a", 2_000).await.unwrap(),
        Some(60_000),
        "next due is the firing row's retry, not the blocked row's past time"
    );
    // Once both are due, a digest may carry them together, in order.
    let batch = outbox
        .due_batch("a", 60_000, 0, 10, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        batch.iter().map(|d| d.notification_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

#[tokio::test]
async fn digest_batches_are_bounded_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    for i in 0..10 {
        outbox
            .accept(new(&format!("k{i}"), &["a"], 1_000 + i))
            .await
            .unwrap();
    }
    let one = new("x", &["a"], 0).payload.len();
    let batch = outbox.due_batch("a", 2_000, 0, 100, one * 3).await.unwrap();
    assert_eq!(batch.len(), 3, "stops once the payloads reach the bound");
    let next = outbox
        .due_batch("a", 2_000, batch[2].id, 100, 1)
        .await
        .unwrap();
    assert_eq!(next.len(), 1, "at least one row, after the last one read");
    assert_eq!(next[0].id, batch[2].id + 1);
}

#[tokio::test]
async fn a_digest_resumes_at_its_next_unsent_part_and_closes_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    for i in 0..3 {
        outbox
            .accept(new(&format!("k{i}"), &["a"], 1_000 + i))
            .await
            .unwrap();
    }
    let ids: Vec<i64> = outbox
        .due_batch("a", 2_000, 0, 10, usize::MAX)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    let id = outbox
        .open_digest("a".into(), ids.clone(), "[]".into(), 2_000)
        .await
        .unwrap();
    assert_eq!(
        outbox.due_count("a", 3_000).await.unwrap(),
        0,
        "rows belong to the digest"
    );
    outbox
        .digest_part_sent(id, "robot#1/2".into())
        .await
        .unwrap();
    outbox
        .digest_retry_later(id, 9_000, "HTTP 500".into(), true, 3_000)
        .await
        .unwrap();
    // As after a restart: the digest is read back with its progress and rows.
    let reopened = Sqlite::open(dir.path()).unwrap();
    let digest = reopened.open_digest_of("a").await.unwrap().unwrap();
    assert_eq!(digest.id, id);
    assert_eq!(digest.sent_parts, vec!["robot#1/2".to_owned()]);
    assert_eq!(digest.next_attempt_at_ms, 9_000);
    assert_eq!(digest.attempts, 1);
    assert_eq!(digest.rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    reopened.close_digest(id, None, 10_000).await.unwrap();
    assert!(reopened.open_digest_of("a").await.unwrap().is_none());
    assert!(reopened.stats().await.unwrap().is_empty());
    assert_eq!(count_in(&reopened, "a", "delivered").await, 3);
}

#[tokio::test]
async fn pauses_survive_a_restart_until_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox.pause("robot".into(), 10_000).await.unwrap();
    outbox.pause("robot".into(), 5_000).await.unwrap();
    outbox.pause("sms".into(), 3_000).await.unwrap();
    let reopened = Sqlite::open(dir.path()).unwrap();
    assert_eq!(
        reopened.pauses(4_000).await.unwrap(),
        vec![("robot".to_owned(), 10_000)],
        "the longer pause is kept; an ended one is forgotten"
    );
}

#[tokio::test]
async fn age_pruning_takes_a_large_backlog_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    for i in 0..600 {
        outbox
            .accept(new(&format!("old{i}"), &["a"], 1_000))
            .await
            .unwrap();
    }
    outbox.accept(new("pending", &["a"], 1_000)).await.unwrap();
    let due = outbox.due("a", 2_000, 1_000).await.unwrap();
    let (pending, done) = due.split_last().unwrap();
    outbox
        .delivered(done.iter().map(|r| r.id).collect(), 2_000)
        .await
        .unwrap();
    let removed = outbox.prune(1_000_000, 10_000, 10_000).await.unwrap();
    assert_eq!(removed, 1_200, "600 deliveries and their 600 notifications");
    let left = outbox.due("a", 2_000_000, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, pending.id, "a pending row is never pruned");
}

fn escalating(key: &str, firing: bool, at: i64) -> NewNotification {
    NewNotification {
        incident: "db-down".to_owned(),
        escalates: true,
        firing,
        ..new(key, &["chat"], at)
    }
}

#[tokio::test]
async fn an_incident_opens_on_firing_steps_once_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox.accept(escalating("f1", true, 1_000)).await.unwrap();
    outbox.accept(escalating("f2", true, 2_000)).await.unwrap();
    let open = outbox.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1, "a repeat updates the open incident");
    let id = open[0].id;
    assert_eq!(open[0].opened_at_ms, 1_000);

    assert!(
        outbox
            .fire_step(id, 0, vec!["voice".into()], 5_000)
            .await
            .unwrap()
    );
    assert!(
        !outbox
            .fire_step(id, 0, vec!["voice".into()], 5_001)
            .await
            .unwrap(),
        "a step fires at most once"
    );
    assert!(
        !outbox
            .fire_step(id, 2, vec!["voice".into()], 5_002)
            .await
            .unwrap(),
        "steps fire in order"
    );
    let voice = outbox.due("voice", 6_000, 10).await.unwrap();
    assert_eq!(voice.len(), 1);
    assert_eq!(voice[0].incident_id, Some(id));
    let page = outbox.incident(id).await.unwrap().unwrap();
    assert_eq!(page.escalations, vec![(0, 5_000)]);
    assert!(page.payload.contains("firing"));

    outbox.accept(escalating("r1", false, 7_000)).await.unwrap();
    assert!(outbox.open_incidents().await.unwrap().is_empty());
    assert!(
        !outbox
            .fire_step(id, 1, vec!["voice".into()], 8_000)
            .await
            .unwrap(),
        "a resolved incident escalates no further"
    );
    assert_eq!(outbox.ack(id, None, 8_000).await.unwrap(), Acked::Resolved);

    outbox.accept(escalating("f3", true, 9_000)).await.unwrap();
    let again = outbox.open_incidents().await.unwrap();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, id, "firing after resolution is a new incident");
    assert_eq!(again[0].steps_done, 0);
}

#[tokio::test]
async fn an_ack_stops_escalation_and_holds_until_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox.accept(escalating("f1", true, 1_000)).await.unwrap();
    let id = outbox.open_incidents().await.unwrap()[0].id;
    assert_eq!(
        outbox.ack(id, Some("li".into()), 2_000).await.unwrap(),
        Acked::Now
    );
    assert_eq!(
        outbox.ack(id, None, 3_000).await.unwrap(),
        Acked::Already {
            by: Some("li".into()),
            at_ms: Some(2_000)
        }
    );
    assert!(
        !outbox
            .fire_step(id, 0, vec!["voice".into()], 4_000)
            .await
            .unwrap()
    );
    outbox.accept(escalating("f2", true, 5_000)).await.unwrap();
    let open = outbox.open_incidents().await.unwrap();
    assert!(open[0].acked, "a repeat keeps the ack");
    assert_eq!(outbox.ack(999, None, 6_000).await.unwrap(), Acked::Unknown);
    outbox.accept(escalating("r1", false, 7_000)).await.unwrap();
    assert_eq!(outbox.prune_incidents(7_001).await.unwrap(), 1);
    assert_eq!(outbox.incident(id).await.unwrap(), None);
}

#[tokio::test]
async fn incidents_survive_reopening_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox.accept(escalating("f1", true, 1_000)).await.unwrap();
    let id = outbox.open_incidents().await.unwrap()[0].id;
    assert!(
        outbox
            .fire_step(id, 0, vec!["voice".into()], 2_000)
            .await
            .unwrap()
    );
    drop(outbox);
    let outbox = Sqlite::open(dir.path()).unwrap();
    let open = outbox.open_incidents().await.unwrap();
    assert_eq!(open[0].steps_done, 1, "the fired step is remembered");
    assert!(
        !outbox
            .fire_step(id, 0, vec!["voice".into()], 3_000)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn redrive_revives_dead_letters_only_and_keeps_their_sent_parts() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Sqlite::open(dir.path()).unwrap();
    outbox.accept(new("k1", &["a", "b"], 1_000)).await.unwrap();
    outbox.accept(new("k2", &["a"], 1_001)).await.unwrap();
    let a = outbox.due("a", 2_000, 10).await.unwrap();
    let b = outbox.due("b", 2_000, 10).await.unwrap();
    outbox
        .part_sent(a[0].id, "t#1".into(), 2_000)
        .await
        .unwrap();
    outbox
        .dead(vec![a[0].id, a[1].id], "310000 sign".into(), 2_000)
        .await
        .unwrap();
    outbox.delivered(vec![b[0].id], 2_000).await.unwrap();

    let none = outbox
        .redrive(Redrive::Channel("b".into()), 3_000)
        .await
        .unwrap();
    assert_eq!(none.total(), 0, "a delivered row is not dead");
    let one = outbox
        .redrive(Redrive::Ids(vec![a[1].id, b[0].id, 999]), 3_000)
        .await
        .unwrap();
    assert_eq!(
        one.channels,
        std::collections::BTreeMap::from([("a".to_owned(), 1)])
    );
    let rest = outbox
        .redrive(Redrive::Channel("a".into()), 3_000)
        .await
        .unwrap();
    assert_eq!(rest.total(), 1);
    let again = outbox.due("a", 3_000, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[0].attempts, 0);
    assert_eq!(
        again[0].sent_parts,
        ["t#1"],
        "a part already sent is not sent again"
    );
    assert!(
        outbox
            .redrive(Redrive::Channel("a".into()), 3_000)
            .await
            .unwrap()
            .total()
            == 0
    );
}
