//! The operator console and dead-letter redrive, through the binary and the verifying
//! DingTalk mock: a dead letter caused by a wrong robot secret, fixed by a reload, is
//! delivered after one redrive and never twice — by `lookout outbox redrive`, by the
//! JSON endpoint and by the button on `/`.

use std::process::Command;
use std::time::Duration;

use crate::support::exposition::labels;
use crate::support::mocks::DingTalkMock;
use crate::support::{Lookout, http_get, http_request, poll_until};
use serde_json::json;

const TOKEN: &str = "console-test-token";

fn notification(name: &str) -> String {
    json!({
        "version": "4", "status": "firing", "receiver": "critical",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": { "alertname": name }, "commonLabels": { "alertname": name, "severity": "critical" },
        "externalURL": "http://am:9093",
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": name, "severity": "critical" },
            "annotations": { "summary": format!("{name} summary") },
            "startsAt": "2026-12-02T02:10:05Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": format!("{:016x}", name.len()),
        }],
    })
    .to_string()
}

fn config(mock: &DingTalkMock, secret: &str) -> String {
    format!(
        "host: {{ enabled: false }}
web: {{ auth: {{ bearer_token: {TOKEN} }} }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: {secret} }}
receivers:
  critical: {{ channels: [ops] }}
",
        mock.webhook_url()
    )
}

fn post(lookout: &Lookout, path: &str, content_type: &str, body: &str) -> crate::support::Response {
    let auth = format!("Bearer {TOKEN}");
    http_request(
        "POST",
        &lookout.url(path),
        &[
            ("Content-Type", content_type),
            ("Authorization", auth.as_str()),
        ],
        body.as_bytes(),
    )
    .expect("POST")
}

fn dead_letters(lookout: &Lookout) -> f64 {
    lookout
        .metrics()
        .value("lookout_outbox_dead", &labels(&[("channel", "ops")]))
        .unwrap_or(0.0)
}

fn wait_dead(lookout: &Lookout, count: f64) {
    poll_until(
        Duration::from_secs(15),
        "dead letters",
        || match dead_letters(lookout) {
            n if n == count => Ok(()),
            n => Err(format!("{n} dead, want {count}\n{}", lookout.logs())),
        },
    );
}

fn delivered_about(mock: &DingTalkMock, name: &str) -> usize {
    mock.texts().iter().filter(|t| t.contains(name)).count()
}

#[test]
fn a_dead_letter_fixed_by_a_reload_is_delivered_once_per_redrive_path() {
    let mock = DingTalkMock::start("ops-robot", Some("SECgood"));
    let lookout = Lookout::start(&config(&mock, "SECwrong"));
    for name in ["ViaCli", "ViaJson", "ViaButton"] {
        let accepted = post(
            &lookout,
            "/alertmanager/critical",
            "application/json",
            &notification(name),
        );
        assert_eq!(accepted.status, 200, "{}", accepted.text());
    }
    wait_dead(&lookout, 3.0);
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    assert!(page.contains("310000"), "the reason is shown:\n{page}");
    assert!(
        page.contains("action=\"-/outbox/redrive\""),
        "a redrive button:\n{page}"
    );

    // Unauthenticated or malformed: refused, nothing moves.
    let anonymous = http_request(
        "POST",
        &lookout.url("/-/outbox/redrive"),
        &[("Content-Type", "application/json")],
        br#"{"channel":"ops"}"#,
    )
    .expect("POST");
    assert_eq!(anonymous.status, 401);
    for (body, says) in [
        ("{}", "a channel or ids"),
        (r#"{"channel":"nope"}"#, "no channel named `nope`"),
        (r#"{"channel":"ops","ids":[1]}"#, "not both"),
        ("[1,2]", "expected"),
    ] {
        let refused = post(&lookout, "/-/outbox/redrive", "application/json", body);
        assert_eq!(refused.status, 400, "{body}");
        assert!(refused.text().contains(says), "{body}: {}", refused.text());
    }

    // The fix: the right secret, applied by a reload.
    std::fs::write(lookout.config_path(), config(&mock, "SECgood")).expect("rewrite config");
    let reloaded = post(&lookout, "/-/reload", "text/plain", "");
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mock.texts().len(), 0, "a reload alone resends nothing");

    // 1. The command, against the running server.
    let ids = dead_ids(&lookout);
    let cli = Command::new(crate::support::lookout::binary())
        .arg("--config")
        .arg(lookout.config_path())
        .arg("--listen")
        .arg(lookout.addr().to_string())
        .args(["outbox", "redrive", "--id", &ids["ViaCli"].to_string()])
        .output()
        .expect("run lookout outbox redrive");
    let said = String::from_utf8_lossy(&cli.stdout);
    assert!(
        cli.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert!(said.contains("\"redriven\":1"), "{said}");
    poll_until(
        Duration::from_secs(10),
        "the CLI's redrive",
        || match delivered_about(&mock, "ViaCli") {
            1 => Ok(()),
            n => Err(format!("{n}")),
        },
    );

    // 2. JSON by id.
    let answer = post(
        &lookout,
        "/-/outbox/redrive",
        "application/json",
        &format!(r#"{{"ids":[{}]}}"#, ids["ViaJson"]),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["redriven"], 1);

    // 3. The button on `/`: a form post, answered with a redirect back.
    let button = post(
        &lookout,
        "/-/outbox/redrive",
        "application/x-www-form-urlencoded",
        &format!("id={}", ids["ViaButton"]),
    );
    assert_eq!(button.status, 303, "{}", button.text());
    poll_until(Duration::from_secs(10), "every redriven letter", || {
        let counts: Vec<usize> = ["ViaCli", "ViaJson", "ViaButton"]
            .iter()
            .map(|n| delivered_about(&mock, n))
            .collect();
        if counts == [1, 1, 1] {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    });
    wait_dead(&lookout, 0.0);

    // Again: nothing is dead, nothing is sent twice.
    let again = post(
        &lookout,
        "/-/outbox/redrive",
        "application/json",
        r#"{"channel":"ops"}"#,
    );
    assert_eq!(again.json()["redriven"], 0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mock.texts().len(), 3, "each alert delivered exactly once");
    let redriven = lookout
        .metrics()
        .value("lookout_redriven_total", &labels(&[("channel", "ops")]));
    assert_eq!(redriven, Some(3.0));
}

/// Dead letter ids by alert name, from the status page's rows.
fn dead_ids(lookout: &Lookout) -> std::collections::BTreeMap<String, i64> {
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    let mut ids = std::collections::BTreeMap::new();
    for row in page.split("<tr").filter(|r| r.contains("name=\"id\"")) {
        let id = row
            .split("name=\"id\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|id| id.parse().ok());
        let name = ["ViaCli", "ViaJson", "ViaButton"]
            .into_iter()
            .find(|n| row.contains(n));
        if let (Some(id), Some(name)) = (id, name) {
            ids.insert(name.to_owned(), id);
        }
    }
    assert_eq!(ids.len(), 3, "three dead letters with buttons:\n{page}");
    ids
}

/// `lookout demo` on its own: within three minutes its built-in alert source (standing
/// in for Alertmanager) posts a firing notification when a simulator burst crosses a
/// threshold, the console channel prints the rendered message, and `/` shows it beside
/// the queries' values and sparklines.
#[test]
fn the_demo_alerts_on_its_own_within_three_minutes() {
    let started = std::time::Instant::now();
    let lookout = Lookout::start_with_args(crate::support::lookout::HOST_ONLY_CONFIG, &["demo"]);
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    assert!(page.contains("stands in for Alertmanager"), "{page}");
    let first = poll_until(
        Duration::from_secs(180),
        "a rendered firing message",
        || {
            let out = lookout.stdout();
            match out.split_once("── lookout → console ──") {
                Some((_, message)) if message.contains("【告警】") => Ok(started.elapsed()),
                _ => Err(format!(
                    "stdout:\n{out}\nlogs:\n{}",
                    lookout
                        .logs()
                        .lines()
                        .filter(|l| l.contains("alert source"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )),
            }
        },
    );
    println!(
        "demo: first rendered firing message {:.0} s after start",
        first.as_secs_f64()
    );
    assert!(
        lookout.logs().contains("standing in for Alertmanager"),
        "the log names the alert source"
    );
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    assert!(
        page.contains("firing "),
        "the notification is listed on /:\n{page}"
    );
    assert!(page.contains("<svg class=\"spark\""), "sparklines:\n{page}");
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "the page refreshes itself"
    );
}

/// The page in a real browser (headless Chromium at 375 px): no JavaScript errors, the
/// sparklines are drawn, and the "send again" button of a dead letter — once a reload
/// fixed its robot secret — gets it delivered, once. The screenshot is kept under
/// `target/test-artifacts/console.png`.
#[test]
fn the_console_in_a_browser_redrives_a_dead_letter() {
    let Some(python) = crate::support::python::python() else {
        return;
    };
    if crate::support::require_binary("chromium").is_none()
        || crate::support::require_binary("chromedriver").is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("values.db");
    rusqlite::Connection::open(&db)
        .and_then(|c| c.execute_batch("CREATE TABLE t (v REAL); INSERT INTO t VALUES (42.5);"))
        .expect("a SQLite file");
    let mock = DingTalkMock::start("ops-robot", Some("SECgood"));
    let config = |secret: &str| {
        format!(
            "host: {{ enabled: false }}
databases:
  local: {{ url: 'sqlite://{}' }}
queries:
  - {{ name: answer, database: local, interval: 1s, sql: 'SELECT v FROM t', metrics: [{{ name: console_answer, value: v }}] }}
channels:
  ops: {{ type: dingtalk, url: '{}', secret: {secret} }}
receivers:
  critical: {{ channels: [ops] }}
",
            db.display(),
            mock.webhook_url()
        )
    };
    let lookout = Lookout::start(&config("SECwrong"));
    lookout.post_alerts("critical", &notification("ViaBrowser"));
    wait_dead(&lookout, 1.0);
    std::fs::write(lookout.config_path(), config("SECgood")).expect("rewrite config");
    let reloaded = http_request("POST", &lookout.url("/-/reload"), &[], b"").expect("reload");
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    poll_until(Duration::from_secs(10), "a sparkline", || {
        let page = http_get(&lookout.url("/"), &[])
            .expect("status page")
            .text();
        if page.contains("<polyline") {
            Ok(())
        } else {
            Err(page)
        }
    });

    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let screenshot = artifacts.join("console.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.py");
    let output = Command::new(python)
        .arg(script)
        .arg(lookout.url("/"))
        .arg(&screenshot)
        .output()
        .expect("run the browser");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the script's JSON");
    assert_eq!(
        seen["errors"],
        json!([]),
        "JavaScript console errors: {seen}"
    );
    assert!(seen["sparklines"].as_u64().unwrap_or(0) >= 1, "{seen}");
    assert_eq!(seen["clicked"], true, "{seen}");
    assert!(seen["width"].as_u64().unwrap_or(0) <= 375, "{seen}");
    poll_until(
        Duration::from_secs(10),
        "the redriven letter",
        || match delivered_about(&mock, "ViaBrowser") {
            1 => Ok(()),
            n => Err(format!("{n}")),
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(delivered_about(&mock, "ViaBrowser"), 1, "delivered once");
    let size = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "a screenshot at {}", screenshot.display());
    println!("screenshot: {} ({size} bytes)", screenshot.display());
}
