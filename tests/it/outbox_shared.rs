//! The shared outbox's storage on a real PostgreSQL and a real MariaDB (scratch databases
//! on 127.0.0.1), several handles standing for several replicas: the schema migrates once
//! when they open at the same instant; one notification accepted by two replicas is
//! stored once; claims are exclusive and outlive a dead replica only by the lease;
//! budgets are spent together; a digest a dead replica left is resumed with its sent
//! parts; an escalation step fires once; every replica signs with the same key.

// `scenarios` is the body of both tests (one per engine), not a helper: unwrapping there
// is a test's unwrapping.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lookout::config::{OutboxLocation, Sources, parse_str};
use lookout::outbox::{Accepted, Budget, NewNotification, Outbox, Redrive, now_ms};

use crate::support::db::{MariaDb, PASSWORD, Postgres};

/// The location `url` names, with a short lease so expiry is quick to see.
fn location(url: &str) -> OutboxLocation {
    let yaml = format!("relay: {{ outbox: '{url}', outbox_password: '{PASSWORD}', lease: 2s }}\n");
    parse_str("shared.yaml", &yaml, &Sources::system())
        .unwrap_or_else(|e| panic!("{e}"))
        .relay
        .outbox
}

/// `n` handles on one database, opened at the same instant.
async fn replicas(url: &str, n: usize) -> Vec<Outbox> {
    let location = location(url);
    let dir = tempfile::tempdir().unwrap();
    let opens = (0..n).map(|_| {
        let (location, dir) = (location.clone(), dir.path().to_owned());
        async move { Outbox::open(&location, &dir).await }
    });
    futures_join_all(opens)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("open: {e}")))
        .collect()
}

/// Runs `futures` at once (each on its own task); their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

fn notification(key: &str, channels: &[&str], at: i64) -> NewNotification {
    NewNotification {
        receiver: "critical".into(),
        dedupe_key: key.into(),
        incident: format!("i-{key}"),
        payload: r#"{"status":"firing","alerts":[]}"#.into(),
        summary: format!("firing {key} ×1"),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        received_at_ms: at,
        dedupe_since_ms: at - 600_000,
        escalates: false,
        firing: true,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Every scenario, on one engine.
async fn scenarios(url: &str, engine: &str) {
    // Three replicas migrate an empty database at once; a fourth finds it current.
    let handles = replicas(url, 3).await;
    let (a, b) = (handles[0].clone(), handles[1].clone());
    assert!(a.location().starts_with(engine), "{}", a.location());
    drop(replicas(url, 1).await);

    // One notification accepted by two replicas at once is stored once.
    let now = now_ms();
    let (x, y) = tokio::join!(
        a.accept(notification("same", &["ops"], now)),
        b.accept(notification("same", &["ops"], now + 1))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    let stored = [x, y]
        .iter()
        .filter(|r| matches!(r, Accepted::Stored { .. }))
        .count();
    assert_eq!(stored, 1, "{x:?} {y:?}");
    let id = match (x, y) {
        (Accepted::Stored { id, .. }, Accepted::Duplicate { id: dup })
        | (Accepted::Duplicate { id: dup }, Accepted::Stored { id, .. }) => {
            assert_eq!(id, dup, "the duplicate names the stored notification");
            id
        }
        other => panic!("{other:?}"),
    };
    // Past the window the same key is a new notification.
    let mut later = notification("same", &["ops"], now + 700_000);
    later.dedupe_since_ms = now + 100_000;
    assert!(
        matches!(a.accept(later).await.unwrap(), Accepted::Stored { id: new, .. } if new != id)
    );

    // Claims are exclusive: of 10 rows, each replica gets its own.
    for i in 0..10 {
        a.accept(notification(&format!("row{i}"), &["mass"], now - 1_000 + i))
            .await
            .unwrap();
    }
    let (from_a, from_b) = tokio::join!(
        a.due_batch("mass", now_ms(), 0, 4, usize::MAX),
        b.due_batch("mass", now_ms(), 0, 4, usize::MAX)
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert_eq!((from_a.len(), from_b.len()), (4, 4));
    assert!(
        from_a.iter().all(|r| from_b.iter().all(|s| s.id != r.id)),
        "disjoint claims"
    );
    assert_eq!(
        b.due_count("mass", now_ms()).await.unwrap(),
        2 + 4,
        "b sees its own and the free rows"
    );
    // A replica that dies stops renewing; its rows come back after the lease.
    let c = replicas(url, 1).await.remove(0);
    let dead_ids: Vec<i64> = from_a.iter().map(|r| r.id).collect();
    drop(a);
    drop(handles);
    let claimed = c
        .due_batch("mass", now_ms(), 0, 10, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        claimed.len(),
        2,
        "only the free rows while the dead replica's leases run"
    );
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let claimed = c
        .due_batch("mass", now_ms(), 0, 10, usize::MAX)
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
    assert!(
        dead_ids.iter().all(|id| ids.contains(id)),
        "the dead replica's rows are claimable again"
    );
    // A live replica keeps its claims past the lease (renewed) and gives them up at once
    // when it stops cleanly.
    let b_ids: Vec<i64> = from_b.iter().map(|r| r.id).collect();
    assert!(
        b_ids.iter().all(|id| !ids.contains(id)),
        "b renews its leases"
    );
    b.release().await;
    let claimed = c
        .due_batch("mass", now_ms(), 0, 10, usize::MAX)
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 10, "released at once: every row is c's now");
    assert!(b_ids.iter().all(|id| ids.contains(id)));
    let done: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| *id != dead_ids[0])
        .collect();
    c.delivered(done, now_ms()).await.unwrap();
    c.part_sent(dead_ids[0], "robot#1/2".into(), now_ms())
        .await
        .unwrap();
    c.retry_later(vec![dead_ids[0]], 0, "later".into(), true, true, now_ms())
        .await
        .unwrap();
    let again = c.due("mass", now_ms(), 10).await.unwrap();
    let row = again
        .iter()
        .find(|r| r.id == dead_ids[0])
        .expect("retried row is due");
    assert_eq!(
        (row.sent_parts.clone(), row.too_long, row.attempts),
        (vec!["robot#1/2".to_owned()], true, 1)
    );

    // Budgets are spent together: 3 per minute across two replicas, 6 tries at once.
    let (d, e) = {
        let mut two = replicas(url, 2).await;
        (two.remove(0), two.remove(0))
    };
    let budget = Budget {
        count: 3,
        per_ms: 61_000,
    };
    let at = now_ms();
    let tries = (0..6).map(|i| {
        let outbox = if i % 2 == 0 { d.clone() } else { e.clone() };
        async move {
            outbox
                .take_send(
                    "ops".into(),
                    "https://robot/?access_token=t".into(),
                    budget,
                    at + i,
                )
                .await
        }
    });
    let taken = futures_join_all(tries)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(
        taken, 3,
        "three sends in the window, whichever replica took them"
    );
    let state = e
        .target_state("https://robot/?access_token=t".into(), at - 1, at)
        .await
        .unwrap();
    assert_eq!(state.sends.len(), 3);
    d.pause("https://robot/?access_token=t".into(), at + 600_000)
        .await
        .unwrap();
    let state = e
        .target_state("https://robot/?access_token=t".into(), at - 1, at)
        .await
        .unwrap();
    assert_eq!(
        state.paused_until_ms,
        Some(at + 600_000),
        "a pause is seen by every replica"
    );
    let roomy = Budget {
        count: 100,
        per_ms: 1_000,
    };
    assert!(
        !e.take_send(
            "other".into(),
            "https://robot/?access_token=t".into(),
            roomy,
            at + 5_000
        )
        .await
        .unwrap(),
        "a paused target takes nothing"
    );

    // A digest a replica left open is resumed by another after the lease, sent parts kept.
    for i in 0..3 {
        d.accept(notification(&format!("dig{i}"), &["digest"], now + i))
            .await
            .unwrap();
    }
    let rows = d
        .due_batch("digest", now_ms(), 0, 10, usize::MAX)
        .await
        .unwrap();
    let digest = d
        .open_digest(
            "digest".into(),
            rows.iter().map(|r| r.id).collect(),
            "[]".into(),
            now_ms(),
        )
        .await
        .unwrap();
    d.digest_part_sent(digest, "robot#1/2".into())
        .await
        .unwrap();
    assert!(
        e.open_digest_of("digest", now_ms())
            .await
            .unwrap()
            .is_none(),
        "held by d"
    );
    assert_eq!(
        e.due_count("digest", now_ms()).await.unwrap(),
        0,
        "rows in a digest are not due"
    );
    drop(d);
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let resumed = e
        .open_digest_of("digest", now_ms())
        .await
        .unwrap()
        .expect("resumed");
    assert_eq!(resumed.id, digest);
    assert_eq!(resumed.sent_parts, vec!["robot#1/2".to_owned()]);
    assert_eq!(resumed.rows.len(), 3);
    e.close_digest(digest, None, now_ms()).await.unwrap();
    assert!(
        e.open_digest_of("digest", now_ms())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        e.stats()
            .await
            .unwrap()
            .iter()
            .all(|s| s.channel != "digest"),
        "all delivered"
    );

    // An escalation step fires once however many replicas try; acks and keys are shared.
    let mut firing = notification("esc", &["ops"], now);
    firing.escalates = true;
    e.accept(firing).await.unwrap();
    let incidents = e.open_incidents().await.unwrap();
    assert_eq!(incidents.len(), 1);
    let incident = incidents[0].id;
    let f = replicas(url, 1).await.remove(0);
    let (one, two) = tokio::join!(
        e.fire_step(incident, 0, vec!["voice".into()], now_ms()),
        f.fire_step(incident, 0, vec!["voice".into()], now_ms())
    );
    assert_eq!(
        [one.unwrap(), two.unwrap()].iter().filter(|f| **f).count(),
        1,
        "one step, once"
    );
    assert_eq!(f.due_count("voice", now_ms() + 1).await.unwrap(), 1);
    assert!(matches!(
        f.ack(incident, Some("oncall".into()), now_ms())
            .await
            .unwrap(),
        lookout::outbox::Acked::Now
    ));
    assert!(matches!(
        e.ack(incident, None, now_ms()).await.unwrap(),
        lookout::outbox::Acked::Already { .. }
    ));
    assert!(
        !e.fire_step(incident, 1, vec!["voice".into()], now_ms())
            .await
            .unwrap(),
        "acked: no more steps"
    );
    let page = e.incident(incident).await.unwrap().expect("page");
    assert_eq!((page.state.as_str(), page.escalations.len()), ("acked", 1));
    let key_e = e.keep_secret("ack", "11".repeat(32)).await.unwrap();
    let key_f = f.keep_secret("ack", "22".repeat(32)).await.unwrap();
    assert_eq!(key_e, key_f, "one key for every replica");

    // Dead letters come back by redrive; old rows are pruned; the status page reads.
    let voice = f.due("voice", now_ms() + 1, 10).await.unwrap();
    f.dead(
        voice.iter().map(|r| r.id).collect(),
        "bad key".into(),
        now_ms(),
    )
    .await
    .unwrap();
    let stats = f.stats().await.unwrap();
    let v = stats
        .iter()
        .find(|s| s.channel == "voice")
        .expect("voice stats");
    assert_eq!((v.pending, v.dead), (0, 1));
    assert_eq!(f.latest(Some("dead"), 10).await.unwrap().len(), 1);
    let redriven = f
        .redrive(Redrive::Channel("voice".into()), now_ms())
        .await
        .unwrap();
    assert_eq!(redriven.total(), 1);
    assert!(f.storage().await.unwrap().used_bytes > 0);
    let removed = f.prune(now_ms() + 10_000_000, 1, 1).await.unwrap();
    assert!(removed > 0, "delivered rows pruned");
    eprintln!("{engine}: shared outbox scenarios pass ({removed} rows pruned)");
}

#[test]
fn the_shared_outbox_on_postgresql() {
    let Some(db) = Postgres::create() else { return };
    runtime().block_on(scenarios(&db.url(), "postgres"));
}

#[test]
fn the_shared_outbox_on_mariadb() {
    let Some(db) = MariaDb::create() else { return };
    runtime().block_on(scenarios(&db.url(), "mysql"));
}
