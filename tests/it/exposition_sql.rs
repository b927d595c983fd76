//! SQL series through the real binary in every format and encoding: the segment encoded
//! once per snapshot and joined with the rest of the exposition (plain or as one gzip
//! stream) gives the same series as prometheus-client would, with escaping, `_total`,
//! `# EOF` last, an exact `Content-Length`, and a new snapshot replacing the old one.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::support::{Exposition, Lookout, http::gunzip, http_get, poll_until};

const PROM2_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const WALLETS: usize = 3_000;

/// A database with `WALLETS` wallets whose ids need escaping now and then, and one
/// counter row.
fn database(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("shop.db");
    let conn = rusqlite::Connection::open(&path).expect("create the database");
    conn.execute_batch(
        "CREATE TABLE wallet (wid TEXT, kind TEXT, balance REAL);
         CREATE TABLE paid (n INTEGER); INSERT INTO paid VALUES (7);",
    )
    .expect("create tables");
    let mut insert = conn
        .prepare("INSERT INTO wallet VALUES (?1, ?2, ?3)")
        .expect("prepare");
    for i in 0..WALLETS {
        let wid = match i % 500 {
            0 => format!("钱包 \"{i}\" \\ 换行\n"),
            _ => format!("w{i}"),
        };
        let kind = ["deposit", "withdraw", "transfer"][i % 3];
        insert
            .execute(rusqlite::params![wid, kind, i as f64 * 0.25])
            .expect("insert");
    }
    path
}

fn config(db: &Path) -> String {
    format!(
        "host: {{ enabled: false }}
databases:
  shop: {{ url: 'sqlite://{}' }}
queries:
  - name: wallets
    database: shop
    interval: 1s
    timeout: 1s
    max_series: 5000
    sql: SELECT wid, kind, balance FROM wallet
    metrics:
      - {{ name: shop_wallet_balance, help: \"Balance per \\\"wallet\\\".\", labels: [wid, kind], value: balance }}
  - name: some_wallets_again
    database: shop
    interval: 1s
    timeout: 1s
    sql: SELECT wid, kind, balance FROM wallet WHERE rowid <= 10
    metrics:
      - {{ name: shop_wallet_balance, help: Balance per wallet., labels: [wid, kind], value: balance }}
  - name: paid
    database: shop
    interval: 1s
    timeout: 1s
    sql: SELECT n FROM paid
    metrics:
      - {{ name: shop_paid_total, type: counter, help: Paid orders., value: n }}
",
        db.display()
    )
}

/// One scrape: the decoded body, checked against its `Content-Length`.
fn scrape(lookout: &Lookout, accept: &str, gzip: bool) -> String {
    let mut headers = vec![("Accept", accept)];
    if gzip {
        headers.push(("Accept-Encoding", "gzip"));
    }
    let response = http_get(&lookout.url("/metrics"), &headers).expect("scrape");
    assert_eq!(response.status, 200, "{}", response.text());
    let length: usize = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(
        length,
        response.body.len(),
        "Content-Length is the body's length"
    );
    assert_eq!(response.header("content-encoding") == Some("gzip"), gzip);
    let body = if gzip {
        gunzip(&response.body)
    } else {
        response.body
    };
    String::from_utf8(body).expect("UTF-8 exposition")
}

/// The lines about `shop_` metrics, in order.
fn shop_lines(body: &str) -> Vec<&str> {
    body.lines()
        .filter(|l| l.contains(" shop_") || l.starts_with("shop_"))
        .collect()
}

#[test]
fn every_format_and_encoding_serves_the_same_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let lookout = Lookout::start(&config(&db));
    poll_until(Duration::from_secs(20), "three query snapshots", || {
        let body = scrape(&lookout, "text/plain", false);
        let wallets = body
            .lines()
            .filter(|l| l.starts_with("shop_wallet_balance{"))
            .count();
        (wallets == WALLETS && body.contains("shop_paid_total 7"))
            .then_some(())
            .ok_or(format!("{wallets} wallets"))
    });

    let text = scrape(&lookout, "text/plain;version=0.0.4", false);
    let text_gz = scrape(&lookout, "text/plain;version=0.0.4", true);
    let om = scrape(&lookout, PROM2_ACCEPT, false);
    let om_gz = scrape(&lookout, PROM2_ACCEPT, true);

    assert_eq!(
        shop_lines(&text),
        shop_lines(&text_gz),
        "text: gzip and plain agree"
    );
    assert_eq!(
        shop_lines(&om),
        shop_lines(&om_gz),
        "OpenMetrics: gzip and plain agree"
    );
    for body in [&om, &om_gz] {
        assert!(body.ends_with("\n# EOF\n"), "OpenMetrics ends with # EOF");
        assert_eq!(body.matches("# EOF").count(), 1);
    }
    for body in [&text, &text_gz] {
        assert!(!body.contains("# EOF"));
        assert!(
            body.contains("# TYPE lookout_query_success gauge\n"),
            "health still served"
        );
    }

    // Both queries feed one family: written once, with the first query's help, each
    // label set once.
    let lines = shop_lines(&text);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("# TYPE shop_wallet_balance "))
            .count(),
        1,
        "one family"
    );
    assert!(
        text.contains("# HELP shop_wallet_balance Balance per \"wallet\".\n"),
        "text 0.0.4 help keeps quotes"
    );
    assert!(
        om.contains("# HELP shop_wallet_balance Balance per \\\"wallet\\\".\n"),
        "OpenMetrics help escapes them"
    );
    assert!(
        text.contains("# TYPE shop_paid_total counter\nshop_paid_total 7.0\n"),
        "{lines:?}"
    );
    assert!(om.contains("# TYPE shop_paid counter\nshop_paid_total 7.0\n"));
    assert!(
        text.contains(
            "shop_wallet_balance{wid=\"钱包 \\\"500\\\" \\\\ 换行\\n\",kind=\"transfer\"} 125.0\n"
        ),
        "label values escaped"
    );

    // The parsed series: every wallet once, with its value.
    let parsed = Exposition::parse(&text).expect("parse");
    let wallets = parsed.get("shop_wallet_balance");
    assert_eq!(wallets.len(), WALLETS);
    let ids: BTreeSet<&str> = wallets
        .iter()
        .map(|(labels, _)| labels["wid"].as_str())
        .collect();
    assert_eq!(ids.len(), WALLETS, "no label set twice");
    let w42 = wallets
        .iter()
        .find(|(labels, _)| labels["wid"] == "w42")
        .expect("w42");
    assert_eq!((w42.0["kind"].as_str(), w42.1), ("deposit", 10.5));
}

#[test]
fn a_new_snapshot_replaces_the_cached_series_and_a_stale_one_goes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = database(dir.path());
    let yaml = config(&db).replace(
        "    timeout: 1s\n",
        "    timeout: 1s\n    stale_after: 3s\n",
    );
    let lookout = Lookout::start(&yaml);
    let paid = |gzip: bool| {
        let body = scrape(&lookout, PROM2_ACCEPT, gzip);
        body.lines()
            .find_map(|l| l.strip_prefix("shop_paid_total "))
            .map(str::to_owned)
    };
    poll_until(Duration::from_secs(20), "the first snapshot", || {
        (paid(true).as_deref() == Some("7.0"))
            .then_some(())
            .ok_or_else(|| "not yet".to_owned())
    });
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute("UPDATE paid SET n = 8", []).expect("update");
    for gzip in [true, false] {
        poll_until(Duration::from_secs(20), "the new value", || {
            let seen = paid(gzip);
            (seen.as_deref() == Some("8.0"))
                .then_some(())
                .ok_or(format!("{seen:?}"))
        });
    }
    // The table goes: runs fail, the snapshot ages past stale_after and its series go,
    // while the rest of the exposition is still served.
    conn.execute_batch("DROP TABLE paid").expect("drop");
    poll_until(Duration::from_secs(20), "the stale series to go", || {
        let body = scrape(&lookout, PROM2_ACCEPT, true);
        let gone = !body.contains("shop_paid_total") && body.contains("shop_wallet_balance{");
        gone.then_some(()).ok_or_else(|| "still there".to_owned())
    });
}
