//! Outbox store tests on a real SQLite file in a temp dir.

use super::*;

fn new(key: &str, channels: &[&str], at: i64) -> NewNotification {
    NewNotification {
        receiver: "critical".to_owned(),
        dedupe_key: key.to_owned(),
        incident: key.to_owned(),
        payload: r#"{"status":"firing","alerts":[{"status":"firing","startsAt":"2024-01-01T00:00:00Z","labels":{"alertname":"X"}}]}"#.to_owned(),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        received_at_ms: at,
        dedupe_since_ms: at - 600_000,
    }
}

#[tokio::test]
async fn accepted_rows_are_due_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
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
        stats[0],
        ChannelStats {
            channel: "a".into(),
            pending: 0,
            oldest_pending_ms: None,
            delivered: 1,
            dead: 0
        }
    );
    assert_eq!(stats[1].pending, 1);
}

#[tokio::test]
async fn the_same_notification_within_the_window_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
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
        let outbox = Outbox::open(dir.path()).unwrap();
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
    let outbox = Outbox::open(dir.path()).unwrap();
    let due = outbox.due("a", 9_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(due[0].sent_parts, vec!["robot#1".to_owned()]);
}

#[tokio::test]
async fn concurrent_accepts_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
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
}

#[tokio::test]
async fn sends_are_remembered_for_rate_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let now = now_ms();
    for i in 0..3 {
        outbox
            .record_send("a".into(), "robot".into(), now + i)
            .await
            .unwrap();
    }
    assert_eq!(outbox.sends_since(now + 1).await.unwrap().len(), 2);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("outbox.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        Outbox::open(dir.path()),
        Err(Error::TooNew { found: 99, .. })
    ));
}

#[test]
fn an_unusable_state_dir_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(matches!(
        Outbox::open(&file.join("state")),
        Err(Error::StateDir { .. })
    ));
}

#[tokio::test]
async fn old_rows_are_pruned_pending_ones_never() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
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

fn in_incident(key: &str, incident: &str, at: i64) -> NewNotification {
    NewNotification {
        incident: incident.to_owned(),
        ..new(key, &["a"], at)
    }
}

#[tokio::test]
async fn a_later_row_of_an_incident_waits_for_the_earlier_one() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
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
    let outbox = Outbox::open(dir.path()).unwrap();
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
    let outbox = Outbox::open(dir.path()).unwrap();
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
    let reopened = Outbox::open(dir.path()).unwrap();
    let digest = reopened.open_digest_of("a").await.unwrap().unwrap();
    assert_eq!(digest.id, id);
    assert_eq!(digest.sent_parts, vec!["robot#1/2".to_owned()]);
    assert_eq!(digest.next_attempt_at_ms, 9_000);
    assert_eq!(digest.attempts, 1);
    assert_eq!(digest.rows.iter().map(|r| r.0).collect::<Vec<_>>(), ids);
    reopened.close_digest(id, None, 10_000).await.unwrap();
    assert!(reopened.open_digest_of("a").await.unwrap().is_none());
    let stats = reopened.stats().await.unwrap();
    assert_eq!((stats[0].pending, stats[0].delivered), (0, 3));
}

#[tokio::test]
async fn pauses_survive_a_restart_until_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    outbox.pause("robot".into(), 10_000).await.unwrap();
    outbox.pause("robot".into(), 5_000).await.unwrap();
    outbox.pause("sms".into(), 3_000).await.unwrap();
    let reopened = Outbox::open(dir.path()).unwrap();
    assert_eq!(
        reopened.pauses(4_000).await.unwrap(),
        vec![("robot".to_owned(), 10_000)],
        "the longer pause is kept; an ended one is forgotten"
    );
}
