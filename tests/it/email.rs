//! The email channel against a real SMTP server (aiosmtpd, `tests/smtp/server.py`) over
//! TLS with AUTH required, through the real binary: a webhook becomes one
//! `multipart/alternative` mail to every recipient with a Chinese subject that decodes,
//! escaped HTML and a stable `Message-ID`; 451 once is retried and delivered once; 550,
//! a wrong password and a CA that did not issue the server's certificate are dead
//! letters on `/` and in the metrics; the password shows nowhere; `render` and
//! `send-test` work for email.

use std::time::Duration;

use crate::support::exposition::labels;
use crate::support::smtp::{Mode, PASSWORD, SmtpServer, USER};
use crate::support::{Lookout, http_get, poll_until};
use serde_json::{Value, json};

const SCRIPT: &str = "<script>alert('x')</script>";

fn notification(name: &str, count: usize) -> String {
    let alerts: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": { "alertname": name, "severity": "critical", "instance": format!("db-{i}"), "team": "支付<组>" },
                "annotations": { "summary": format!("提现失败率 23.5% {SCRIPT}"), "description": "a & b" },
                "startsAt": "2026-11-22T02:10:05Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom:9090/graph?g0.expr=up&g0.tab=1",
                "fingerprint": format!("{:016x}", fastrand::u64(..)),
            })
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "mail",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": { "alertname": name }, "commonLabels": { "alertname": name, "severity": "critical" },
        "externalURL": "http://am:9093", "alerts": alerts,
    })
    .to_string()
}

fn config(server: &SmtpServer, mode: Mode, to: &[&str], password: &str, ca: &str) -> String {
    let to: Vec<String> = to.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "host: {{ enabled: false }}
channels:
  mail:
    type: email
    smtp: {}
    username: {USER}
    password: {password}
    from: '监控告警 <{USER}>'
    to: [{}]
    tls: {{ ca_file: '{ca}' }}
    timeout: 5s
    retry: {{ initial: 100ms, max: 500ms }}
receivers:
  mail: {{ channels: [mail] }}
",
        server.url(mode),
        to.join(", "),
    )
}

fn delivered_over(mode: Mode) {
    let Some(server) = SmtpServer::start(mode) else {
        return;
    };
    let ca = server.ca_file().display().to_string();
    let to = ["oncall@example.com", "ops@example.com"];
    let lookout = Lookout::start(&config(&server, mode, &to, PASSWORD, &ca));
    assert_eq!(
        lookout.post_alerts("mail", &notification("提现失败率过高", 3))["status"],
        "accepted"
    );
    let mails = server.wait_for_mails(1, Duration::from_secs(20));
    let mail = &mails[0];
    assert_eq!(
        (&mail["authenticated"], &mail["login"]),
        (&json!(true), &json!(USER)),
        "AUTH was used: {mail}"
    );
    assert_eq!(mail["rcpt_tos"], json!(to), "one mail to every recipient");
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(
        mail["subject"], "[告警][critical] 提现失败率过高（共 3 条）",
        "the subject decodes: {mail}"
    );
    let raw_subject = mail["raw_subject"].as_str().unwrap_or_default();
    assert!(
        raw_subject.contains("=?utf-8?") || raw_subject.contains("=?UTF-8?"),
        "RFC 2047 encoded on the wire: {raw_subject}"
    );
    let html = mail["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("&lt;script&gt;") && !html.contains(SCRIPT),
        "annotations are escaped: {html}"
    );
    assert!(
        html.contains("支付&lt;组&gt;") && html.contains("a &amp; b"),
        "labels and descriptions are escaped: {html}"
    );
    // Attribute values are escaped too (`/` as `&#x2f;`), which browsers read back.
    let unescaped = html.replace("&#x2f;", "/").replace("&amp;", "&");
    assert!(
        unescaped.contains("href=\"http://am:9093/#/silences/new?filter=")
            && unescaped.contains("href=\"http://prom:9090/graph?g0.expr=up&g0.tab=1\""),
        "generator and silence links: {html}"
    );
    assert!(
        html.contains("2026-11-22 10:10:05"),
        "start time in Asia/Shanghai: {html}"
    );
    let text = mail["text"].as_str().unwrap_or_default();
    assert!(text.contains("提现失败率过高"), "{text}");
    let id = mail["message_id"].as_str().unwrap_or_default();
    assert!(
        id.starts_with("<lookout.") && id.ends_with("@lookout.test>"),
        "{id}"
    );
    assert!(
        mail["in_reply_to"]
            .as_str()
            .is_some_and(|r| r.starts_with("<lookout.group.")),
        "{mail}"
    );
    assert_no_password(&lookout);
}

fn assert_no_password(lookout: &Lookout) {
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    let scrape = http_get(&lookout.url("/metrics"), &[])
        .expect("scrape")
        .text();
    for (what, text) in [
        ("logs", lookout.logs()),
        ("status page", page),
        ("metrics", scrape),
    ] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}");
    }
}

#[test]
fn a_mail_over_implicit_tls_with_auth() {
    delivered_over(Mode::Smtps);
}

#[test]
fn a_mail_over_starttls_with_auth() {
    delivered_over(Mode::StartTls);
}

#[test]
fn a_451_is_retried_and_the_mail_delivered_once() {
    let Some(server) = SmtpServer::start(Mode::Smtps) else {
        return;
    };
    let ca = server.ca_file().display().to_string();
    let lookout = Lookout::start(&config(
        &server,
        Mode::Smtps,
        &["fail451@example.com"],
        PASSWORD,
        &ca,
    ));
    lookout.post_alerts("mail", &notification("RetryMe", 1));
    let mails = server.wait_for_mails(1, Duration::from_secs(20));
    let channel = labels(&[("channel", "mail")]);
    poll_until(
        Duration::from_secs(10),
        "the delivery counted",
        || match lookout.metrics().value("lookout_outbox_pending", &channel) {
            Some(0.0) => Ok(()),
            other => Err(format!("pending {other:?}")),
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.mails().len(), 1, "delivered once: {mails:?}");
    assert!(
        lookout.logs().contains("451"),
        "the refusal was logged with the server's reply"
    );
}

/// A refusal that cannot be retried becomes a dead letter, visible on `/` with the
/// server's reply and counted in the metrics.
fn dead_letter(config: &str, reply: &str) {
    let lookout = Lookout::start(config);
    lookout.post_alerts("mail", &notification("DeadLetter", 1));
    let channel = labels(&[("channel", "mail")]);
    poll_until(Duration::from_secs(20), "a dead letter", || {
        match lookout.metrics().value("lookout_outbox_dead", &channel) {
            Some(dead) if dead >= 1.0 => Ok(()),
            other => Err(format!("dead {other:?}\n{}", lookout.logs())),
        }
    });
    assert_eq!(
        lookout
            .metrics()
            .value("lookout_dead_letters_total", &channel),
        Some(1.0)
    );
    let page = http_get(&lookout.url("/"), &[])
        .expect("status page")
        .text();
    assert!(
        page.contains(reply),
        "the dead letter names {reply}: {page}"
    );
    assert_no_password(&lookout);
}

#[test]
fn a_550_is_a_dead_letter_with_the_servers_reply() {
    let Some(server) = SmtpServer::start(Mode::Smtps) else {
        return;
    };
    let ca = server.ca_file().display().to_string();
    dead_letter(
        &config(
            &server,
            Mode::Smtps,
            &["reject550@example.com"],
            PASSWORD,
            &ca,
        ),
        "550",
    );
    assert!(server.mails().is_empty());
}

#[test]
fn a_wrong_password_is_a_dead_letter() {
    let Some(server) = SmtpServer::start(Mode::StartTls) else {
        return;
    };
    let ca = server.ca_file().display().to_string();
    dead_letter(
        &config(
            &server,
            Mode::StartTls,
            &["oncall@example.com"],
            "not-the-password",
            &ca,
        ),
        "535",
    );
    assert!(server.mails().is_empty());
}

#[test]
fn a_server_certificate_from_another_ca_is_a_dead_letter() {
    let Some(server) = SmtpServer::start(Mode::Smtps) else {
        return;
    };
    let other = server.other_ca_file().display().to_string();
    dead_letter(
        &config(
            &server,
            Mode::Smtps,
            &["oncall@example.com"],
            PASSWORD,
            &other,
        ),
        "certificate",
    );
    assert!(server.mails().is_empty());
}

#[test]
fn render_and_send_test_work_for_email() {
    let Some(server) = SmtpServer::start(Mode::Smtps) else {
        return;
    };
    let ca = server.ca_file().display().to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("lookout.yaml");
    std::fs::write(
        &path,
        config(&server, Mode::Smtps, &["oncall@example.com"], PASSWORD, &ca),
    )
    .expect("write config");
    let payload = dir.path().join("payload.json");
    std::fs::write(&payload, notification("提现失败率过高", 2)).expect("write payload");
    let render = std::process::Command::new(crate::support::lookout::binary())
        .arg("--config")
        .arg(&path)
        .args(["render", "--receiver", "mail"])
        .arg(&payload)
        .output()
        .expect("run render");
    let stdout = String::from_utf8_lossy(&render.stdout);
    assert!(render.status.success(), "{stdout}");
    for expected in [
        "== mail (email): 1 message(s)",
        "Subject: [告警][critical] 提现失败率过高（共 2 条）",
        "-- text/plain (",
        "-- text/html (",
        "&lt;script&gt;",
    ] {
        assert!(stdout.contains(expected), "{expected} in:\n{stdout}");
    }
    assert!(!stdout.contains(PASSWORD));

    let send = std::process::Command::new(crate::support::lookout::binary())
        .arg("--config")
        .arg(&path)
        .args(["send-test", "mail"])
        .output()
        .expect("run send-test");
    let stdout = String::from_utf8_lossy(&send.stdout);
    assert!(
        send.status.success() && stdout.contains("delivered"),
        "{stdout}{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let mails = server.wait_for_mails(1, Duration::from_secs(10));
    assert!(
        mails[0]["subject"]
            .as_str()
            .is_some_and(|s| s.contains("LookoutTest")),
        "{mails:?}"
    );
    assert!(!stdout.contains(PASSWORD));
}
