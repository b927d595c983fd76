//! Table tests for configuration errors: each bad file names file, line, column and key.

use std::path::Path;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::channel::{Kind, TYPES};
use crate::config::{
    DatabaseKind, Error, InboundAuth, OutboxLocation, Sources, SslMode, parse_str,
};

fn env(name: &str) -> Option<String> {
    match name {
        "DINGTALK_TOKEN" => Some("tok123".to_owned()),
        "DINGTALK_SECRET" => Some("SECdeadbeef".to_owned()),
        _ => None,
    }
}

fn read_file(path: &Path) -> std::io::Result<String> {
    match path.to_str() {
        Some("/run/secrets/token") => Ok("bearer-from-file\n".to_owned()),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory",
        )),
    }
}

fn sources() -> Sources<'static> {
    Sources {
        env: &env,
        read_file: &read_file,
    }
}

fn errors(yaml: &str) -> String {
    match parse_str("test.yaml", yaml, &sources()) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(error @ Error::Invalid { .. }) => error.to_string(),
        Err(other) => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn bad_configs_name_file_line_column_and_key() {
    let table: &[(&str, &str)] = &[
        // unknown key at the top
        (
            "listen: 0.0.0.0:9788\nlisten_addr: x\n",
            "test.yaml:2:1: listen_addr: unknown key `listen_addr`",
        ),
        // unknown key inside a section
        (
            "host:\n  enabled: true\n  enabeld: false\n",
            "test.yaml:3:3: host.enabeld: unknown key `enabeld`",
        ),
        // wrong type
        (
            "host:\n  enabled: maybe\n",
            "test.yaml:2:12: host.enabled: expected a boolean",
        ),
        (
            "web:\n  metrics_auth: [1]\n",
            "test.yaml:2:17: web.metrics_auth:",
        ),
        // bad duration, bad size
        (
            "host:\n  max_age: 5 parsecs\n",
            "test.yaml:2:3: host.max_age: invalid duration `5 parsecs`",
        ),
        (
            "host:\n  max_age: 60\n",
            "test.yaml:2:3: host.max_age: duration `60` needs a unit",
        ),
        (
            "web:\n  max_body_bytes: 1 lightyear\n",
            "test.yaml:2:3: web.max_body_bytes: unknown size unit",
        ),
        // missing environment variable
        (
            "channels:\n  ops:\n    type: dingtalk\n    url: https://x/robot/send?access_token=${NOPE}\n",
            "test.yaml:4:10: channels.ops.url: environment variable `NOPE` is not set",
        ),
        // unreadable *_file
        (
            "web:\n  auth:\n    bearer_token_file: /nonexistent/token\n",
            "test.yaml:3:5: web.auth.bearer_token_file: cannot read `/nonexistent/token`",
        ),
        // bad listen, bad time zone, bad regex
        (
            "listen: nowhere\n",
            "test.yaml:1:1: listen: invalid listen address `nowhere`",
        ),
        (
            "timezone: Mars/Olympus\n",
            "test.yaml:1:1: timezone: unknown time zone `Mars/Olympus`",
        ),
        (
            "host:\n  filesystem:\n    fs_types_exclude: '(unclosed'\n",
            "test.yaml:3:5: host.filesystem.fs_types_exclude: invalid regular expression",
        ),
        // YAML syntax error and duplicate keys
        ("host: [unclosed\n", "test.yaml:2:1: invalid YAML"),
        (
            "listen: a\nlisten: b\n",
            "test.yaml:2:1: duplicate key `listen`",
        ),
        // channels: unknown type, missing type, misspelled key
        (
            "channels:\n  x:\n    type: pager\n",
            "test.yaml:3:5: channels.x.type: unknown channel type `pager`",
        ),
        (
            "channels:\n  x:\n    url: https://a\n",
            "test.yaml:2:3: channels.x: missing key `type`",
        ),
        // receivers referencing unknown channels
        (
            "receivers:\n  critical:\n    channels: [nope]\n",
            "test.yaml:3:5: receivers.critical.channels: unknown channel `nope`",
        ),
        // queries: unknown database, reserved label, bad metric name
        (
            "queries:\n  - name: q\n    database: shop\n    sql: SELECT 1 AS v\n    metrics:\n      - { name: 'bad-name', value: v, labels: [le] }\n",
            "test.yaml:3:5: queries[0].database: unknown database `shop`",
        ),
    ];
    for (yaml, expected) in table {
        let message = errors(yaml);
        assert!(
            message.contains(expected),
            "config:\n{yaml}\nexpected: {expected}\ngot:\n{message}"
        );
    }
}

/// A database and a query, the query's keys given as flow-mapping entries (line 4, column 71).
fn query(keys: &str) -> String {
    format!(
        "databases:\n  d: {{ url: 'sqlite:///x' }}\nqueries:\n  - {{ name: q, database: d, sql: x, metrics: [{{ name: m, value: v }}], {keys} }}\n"
    )
}

#[test]
fn zero_and_absurd_numbers_are_refused_for_every_key() {
    let huge = "7000000000000000000s";
    let wecom =
        |keys: &str| format!("channels:\n  c: {{ type: wecom, url: 'https://x', {keys} }}\n");
    let table: Vec<(String, &str)> = vec![
        (
            "host:\n  max_age: 2h\n".into(),
            "test.yaml:2:3: host.max_age: must be at most 1h (got `2h`)",
        ),
        (
            "host:\n  filesystem:\n    mount_timeout: 0s\n".into(),
            "test.yaml:3:5: host.filesystem.mount_timeout: must be positive (got `0s`)",
        ),
        (
            format!("host:\n  filesystem:\n    mount_timeout: {huge}\n"),
            "host.filesystem.mount_timeout: must be at most 5m",
        ),
        (
            "web:\n  max_body_bytes: 2GiB\n".into(),
            "test.yaml:2:3: web.max_body_bytes: must be at most 67108864 (got 2147483648) bytes",
        ),
        (
            "relay:\n  dedupe_window: 30d\n".into(),
            "test.yaml:2:3: relay.dedupe_window: must be at most 7d",
        ),
        (
            "relay:\n  rate_limit_pause: 0s\n".into(),
            "test.yaml:2:3: relay.rate_limit_pause: must be at least 1s (got `0s`)",
        ),
        (
            format!("relay:\n  rate_limit_pause: {huge}\n"),
            "relay.rate_limit_pause: must be at most 1d",
        ),
        (
            "databases:\n  d: { url: 'sqlite:///x', connect_timeout: 0s, max_connections: 0 }\n"
                .into(),
            "test.yaml:2:28: databases.d.connect_timeout: must be positive",
        ),
        (
            "databases:\n  d: { url: 'sqlite:///x', collect: [mysql] }\n".into(),
            "test.yaml:2:28: databases.d.collect: the `mysql` pack cannot collect from SQLite (which has no pack)",
        ),
        (
            "databases:\n  d: { url: 'postgres://u@h/x', collect: [postgres, redis] }\n".into(),
            "databases.d.collect: unknown pack `redis` (expected mysql or postgres)",
        ),
        (
            "databases:\n  d: { url: 'mysql://u@h/x', collect: [mysql, mysql] }\n".into(),
            "databases.d.collect: `mysql` is listed twice",
        ),
        (
            "databases:\n  d: { url: 'mysql://u@h/x', collect: [mysql], collect_interval: 0s }\n"
                .into(),
            "databases.d.collect_interval: must be at least 1s (got `0s`)",
        ),
        (
            "databases:\n  d: { url: 'sqlite:///x', max_connections: 100000 }\n".into(),
            "databases.d.max_connections: must be at most 100 (got 100000)",
        ),
        (
            query("interval: 0s"),
            "test.yaml:4:71: queries[0].interval: must be at least 100ms (got `0s`)",
        ),
        (
            query(&format!("interval: {huge}")),
            "queries[0].interval: must be at most 7d",
        ),
        (
            query("timeout: 0s"),
            "queries[0].timeout: must be positive (got `0s`)",
        ),
        (
            query("timeout: 2m"),
            "queries[0].timeout: must not exceed the interval",
        ),
        (
            query(&format!("stale_after: {huge}")),
            "queries[0].stale_after: must be at most 30d",
        ),
        (
            query("interval: 1m, stale_after: 30s"),
            "queries[0].stale_after: must be at least the interval",
        ),
        (
            query("max_series: 0"),
            "queries[0].max_series: must be at least 1 (got 0)",
        ),
        (
            query("max_series: 4000000000"),
            "queries[0].max_series: must be at most 1000000",
        ),
        (
            wecom("timeout: 0s"),
            "test.yaml:2:39: channels.c.timeout: must be positive (got `0s`)",
        ),
        (
            wecom(&format!("timeout: {huge}")),
            "channels.c.timeout: must be at most 10m",
        ),
        (
            wecom("retry: { initial: 0s }"),
            "channels.c.retry.initial: must be positive",
        ),
        (
            wecom(&format!("retry: {{ max: {huge} }}")),
            "channels.c.retry.max: must be at most 1d",
        ),
        (
            wecom("retry: { initial: 10m, max: 1m }"),
            "channels.c.retry: `initial` must not exceed `max`",
        ),
        (
            wecom("rate_limit: 4000000000/s"),
            "channels.c.rate_limit: rate `4000000000/s` allows more than 100000",
        ),
    ];
    for (yaml, expected) in &table {
        let message = errors(yaml);
        assert!(
            message.contains(expected),
            "config:\n{yaml}\nexpected: {expected}\ngot:\n{message}"
        );
    }
    // Zero where zero means "off", and the largest value of each span, are accepted.
    for yaml in [
        "host:\n  max_age: 0s\nrelay:\n  dedupe_window: 0s\n  rate_limit_pause: 1d\n".to_owned(),
        query("interval: 7d, stale_after: 30d, timeout: 7d, max_series: 1000000"),
        wecom("timeout: 10m, retry: { initial: 1d, max: 1d }, rate_limit: 100000/s"),
    ] {
        if let Err(error) = parse_str("test.yaml", &yaml, &sources()) {
            panic!("{yaml}\n{error}");
        }
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let yaml = "\
listen: nowhere
timezone: Mars/Olympus
host:
  max_age: soon
  enabeld: true
channels:
  a: { type: dingtalk, url: 'https://x', secrett: y }
  b: { type: wecom, url: 'https://x', keyy: y }
queries:
  - name: q
    database: none
    sql: SELECT 1
    metrics: [{ name: 'm', value: v, labels: [quantile] }]
";
    let message = errors(yaml);
    for expected in [
        "test.yaml:1:1: listen:",
        "test.yaml:2:1: timezone:",
        "test.yaml:5:3: host.enabeld: unknown key",
        "channels.a.secrett: unknown key `secrett`",
        "channels.b.keyy: unknown key `keyy`",
        "queries[0].database: unknown database `none`",
        "label name `quantile` is reserved",
    ] {
        assert!(
            message.contains(expected),
            "expected {expected} in:\n{message}"
        );
    }
}

#[test]
fn misspelled_key_is_rejected_for_every_channel_kind() {
    for kind in TYPES {
        let yaml = format!("channels:\n  c:\n    type: {kind}\n    no_such_key: 1\n");
        let message = errors(&yaml);
        assert!(
            message.contains("test.yaml:4:5: channels.c.no_such_key: unknown key `no_such_key`"),
            "{kind}: {message}"
        );
        // The list of accepted keys names the shared delivery keys too.
        assert!(message.contains("send_resolved"), "{kind}: {message}");
    }
}

#[test]
fn a_shared_key_a_kind_does_not_use_is_an_unknown_key() {
    let yaml = "channels:\n  c:\n    type: aliyun_sms\n    template: sms.j2\n";
    let message = errors(yaml);
    assert!(
        message.contains("test.yaml:4:5: channels.c.template: unknown key `template`"),
        "{message}"
    );
    assert!(message.contains("template_params"), "{message}");
    let message = errors("channels:\n  c: { type: console, proxy: 'http://p:3128' }\n");
    assert!(
        message.contains("channels.c.proxy: unknown key `proxy`"),
        "{message}"
    );
}

#[test]
fn a_full_config_validates_with_defaults_and_secrets() {
    let yaml = "\
listen: 127.0.0.1:0
web:
  auth: { bearer_token_file: /run/secrets/token }
  max_body_bytes: 512KiB
host:
  max_age: 500ms
databases:
  shop: { url: 'sqlite:///tmp/shop.db' }
queries:
  - name: users
    database: shop
    interval: 30s
    sql: SELECT COUNT(*) AS n FROM users
    metrics: [{ name: shop_users, help: Users., value: n }]
channels:
  ops:
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=${DINGTALK_TOKEN}
    secret: ${DINGTALK_SECRET}
  sms:
    type: aliyun_sms
    access_key_id: AK
    access_key_secret: SK
    sign_name: 监控告警
    template_code: SMS_1
    phone_numbers: ['13800000000']
    retry: { initial: 2s, max: 1m }
  console: { type: console }
receivers:
  critical: { channels: [sms, ops, console] }
";
    let config = parse_str("full.yaml", yaml, &sources()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:0");
    assert_eq!(config.web.max_body_bytes, 512 * 1024);
    assert!(
        matches!(&config.web.auth, Some(InboundAuth::Bearer(t)) if t.expose() == "bearer-from-file")
    );
    assert_eq!(config.host.max_age, Duration::from_millis(500));
    assert_eq!(config.timezone, chrono_tz::Asia::Shanghai);
    let q = &config.queries[0];
    assert_eq!(
        (q.interval, q.timeout, q.stale_after),
        (
            Duration::from_secs(30),
            Duration::from_secs(10),
            Duration::from_secs(90)
        )
    );
    let ops = &config.channels["ops"];
    assert_eq!(ops.delivery.rate_limit.count, 20);
    match &ops.kind {
        Kind::Dingtalk(crate::channel::dingtalk::Config { url, secret, .. }) => {
            assert!(url.expose().ends_with("access_token=tok123"));
            assert_eq!(secret.as_ref().map(|s| s.expose()), Some("SECdeadbeef"));
        }
        other => panic!("unexpected kind {other:?}"),
    }
    assert!(!config.channels["sms"].delivery.send_resolved);
    // Retry bounds become the backoff itself: defaults 1s..5m, or as configured.
    let retry = |name: &str| config.channels[name].delivery.retry;
    let s = Duration::from_secs;
    assert_eq!(retry("ops"), Backoff::new(s(1), s(300)).unwrap());
    assert_eq!(retry("sms"), Backoff::new(s(2), s(60)).unwrap());
    assert_eq!(retry("sms").delay(u32::MAX, 1.0), s(60));
    // Secrets never show in Debug output.
    let debug = format!("{config:?}");
    for secret in ["tok123", "SECdeadbeef", "bearer-from-file", "\"SK\""] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug");
    }
}

#[test]
fn empty_file_gives_the_defaults() {
    let config = parse_str("empty.yaml", "", &sources()).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:9788");
    assert!(config.host.enabled);
    assert!(config.host.mount_points_exclude.is_match("/proc/sys"));
    assert!(!config.host.mount_points_exclude.is_match("/home"));
}

#[test]
fn value_parsers() {
    use crate::configfile::{parse_bytes, parse_duration, parse_rate};
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert!(parse_duration("10").is_err());
    assert_eq!(parse_bytes("1MiB").unwrap(), 1 << 20);
    assert_eq!(parse_bytes("4096").unwrap(), 4096);
    assert_eq!(parse_bytes("1.5KiB").unwrap(), 1536);
    assert!(parse_bytes("0").is_err());
    assert_eq!(parse_rate("20/min").unwrap().count, 20);
    assert_eq!(parse_rate("2/s").unwrap().per, Duration::from_secs(1));
    assert!(parse_rate("0/min").is_err());
    assert!(parse_rate("fast").is_err());
}

mod fuzz {
    use proptest::prelude::*;

    use super::sources;
    use crate::config::parse_str;

    const FULL: &str = include_str!("../../../examples/channels.yaml");

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Arbitrary text never panics config loading: it validates or lists errors.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_str("fuzz.yaml", &text, &sources());
        }

        /// A real config with a span replaced never panics, and every error it reports
        /// names the file with a line and a column.
        #[test]
        fn mutated_configs_name_positions(at in 0usize..1800, len in 0usize..30, fill in "[ -~\\n]{0,30}") {
            let mut text = FULL.to_owned();
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(at..end, &fill);
            if let Err(error) = parse_str("fuzz.yaml", &text, &sources()) {
                for line in error.to_string().lines() {
                    prop_assert!(line.starts_with("fuzz.yaml:"), "{}", line);
                }
            }
        }
    }
}

#[test]
fn web_server_limits_have_defaults_and_reject_zero() {
    let config = parse_str("test.yaml", "", &sources()).unwrap();
    let web = &config.web;
    assert_eq!(
        (
            web.header_read_timeout,
            web.body_read_timeout,
            web.idle_timeout,
            web.max_connections,
            web.shutdown_timeout,
        ),
        (
            Duration::from_secs(10),
            Duration::from_secs(30),
            Duration::from_secs(90),
            512,
            Duration::from_secs(20),
        )
    );
    let set = parse_str(
        "test.yaml",
        "web: { header_read_timeout: 2s, body_read_timeout: 3s, idle_timeout: 4s, max_connections: 5, shutdown_timeout: 6s }\n",
        &sources(),
    )
    .unwrap();
    assert_eq!(set.web.header_read_timeout, Duration::from_secs(2));
    assert_eq!(set.web.body_read_timeout, Duration::from_secs(3));
    assert_eq!(set.web.idle_timeout, Duration::from_secs(4));
    assert_eq!(set.web.max_connections, 5);
    assert_eq!(set.web.shutdown_timeout, Duration::from_secs(6));

    let text = errors(
        "web:\n  header_read_timeout: 0s\n  body_read_timeout: 0ms\n  idle_timeout: 0s\n  max_connections: 0\n  shutdown_timeout: 0s\n",
    );
    for expected in [
        "test.yaml:2:3: web.header_read_timeout: must be positive (got `0s`)",
        "test.yaml:3:3: web.body_read_timeout: must be positive (got `0ms`)",
        "test.yaml:4:3: web.idle_timeout: must be positive (got `0s`)",
        "test.yaml:5:3: web.max_connections: must be at least 1 (got 0)",
        "test.yaml:6:3: web.shutdown_timeout: must be positive (got `0s`)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn email_channels_name_each_bad_key() {
    let yaml = "\
channels:
  mail:
    type: email
    smtp: imaps://mail.example.com
    username: alerts@example.com
    from: not an address
    to: [ok@example.com, 'also bad']
    tls: { ca_file: /no/such/ca.pem }
    proxy: http://proxy:3128
";
    let message = errors(yaml);
    for expected in [
        "test.yaml:4:5: channels.mail.smtp: expected smtps://host[:port] or smtp://host[:port]",
        "channels.mail: `username` needs `password` or `password_file`",
        "test.yaml:6:5: channels.mail.from: `not an address` is not a mail address",
        "channels.mail.to[1]: `also bad` is not a mail address",
        "channels.mail.tls.ca_file: cannot read `/no/such/ca.pem`",
        "test.yaml:9:5: channels.mail.proxy: unknown key `proxy`",
    ] {
        assert!(message.contains(expected), "{expected} in:\n{message}");
    }
    let good = "channels:\n  mail: { type: email, smtp: 'smtp://mail.example.com', from: '监控 <a@example.com>', to: [b@example.com] }\n";
    let config = parse_str("good.yaml", good, &sources()).unwrap();
    let mail = &config.channels["mail"];
    assert_eq!(
        mail.delivery.rate_limit.count, 60,
        "60/min per server by default"
    );
    assert!(mail.delivery.send_resolved);
    assert_eq!(mail.targets(), ["email:mail.example.com:587"]);
}

#[test]
fn database_tls_names_each_bad_key() {
    let yaml = "\
databases:
  a: { url: 'mysql://u@db:3306/x?ssl-mode=require' }
  b: { url: 'postgres://u@db/x?sslmode=verify-full', tls: { ca_file: /no/ca.pem } }
  c: { url: 'postgres://u@db/x', tls: { cert_file: /no/c.pem } }
  d: { url: 'mysql://u@db/x?ssl-mode=disabled', tls: { key_file: /run/secrets/token, cert_file: /run/secrets/token } }
  e: { url: 'sqlite:///tmp/x.db', tls: { ca_file: /no/ca.pem } }
  f: { url: 'postgres://u@db/x?sslrootcert=/ca.pem' }
  g: { url: 'mysql://u@db/x', tls: { ca: /no/ca.pem } }
";
    let message = errors(yaml);
    for expected in [
        "test.yaml:2:8: databases.a.url: unknown ssl-mode `require`: expected disabled, preferred, required, verify-ca or verify-full",
        "databases.b.tls.ca_file: cannot read `/no/ca.pem`",
        "databases.c.tls: `cert_file` needs `key_file`",
        "databases.d.tls.cert_file: `/run/secrets/token` holds no PEM certificate",
        "databases.d.tls.key_file: `/run/secrets/token` holds no PEM private key",
        "databases.e.tls: SQLite is a local file: TLS does not apply",
        "databases.f.url: `sslrootcert` is not used; give the files as `tls.ca_file`",
        "test.yaml:8:38: databases.g.tls.ca: unknown key `ca`",
    ] {
        assert!(message.contains(expected), "{expected} in:\n{message}");
    }
    let good = "databases:\n  m: { url: 'mysql://u@db/x?ssl-mode=VERIFY_IDENTITY&prefer_socket=false' }\n  p: { url: 'postgres://u@db/x' }\n";
    let config = parse_str("good.yaml", good, &sources()).unwrap();
    let m = &config.databases["m"];
    assert_eq!(m.url, "mysql://u@db/x?prefer_socket=false");
    assert_eq!(m.tls.mode, crate::config::SslMode::VerifyFull);
    assert_eq!(
        config.databases["p"].tls.mode,
        crate::config::SslMode::Prefer,
        "libpq's and mysql's default"
    );
}

#[test]
fn escalation_steps_name_each_bad_key() {
    let yaml = "\
channels:
  chat: { type: console }
  voice: { type: console }
receivers:
  critical:
    channels: [chat]
    escalate:
      - { after: 10m, channels: [voice] }
      - { after: 5m, channels: [nope] }
      - { channels: [] }
      - { after: 0s, channels: [voice], then: x }
";
    let message = errors(yaml);
    for expected in [
        "receivers.critical.escalate: an escalating receiver needs `web.external_url`",
        "test.yaml:9:11: receivers.critical.escalate[1].after: steps must come in increasing order of `after` (5m is not after step 0's 10m)",
        "receivers.critical.escalate[1].channels: unknown channel `nope`",
        "test.yaml:10:9: receivers.critical.escalate[2].after: missing key `after`",
        "receivers.critical.escalate[2].channels: a step needs at least one channel",
        "receivers.critical.escalate[3].after: must be positive (got `0s`)",
        "receivers.critical.escalate[3].then: unknown key `then`",
    ] {
        assert!(message.contains(expected), "{expected} in:\n{message}");
    }
    let bad_url = errors("web: { external_url: 'lookout.example.com' }\n");
    assert!(
        bad_url
            .contains("web.external_url: `lookout.example.com` is not an http:// or https:// URL"),
        "{bad_url}"
    );
    let good = "web: { external_url: 'https://lookout.example.com/' }\nchannels:\n  chat: { type: console }\nreceivers:\n  critical: { channels: [chat], escalate: [{ after: 10m, channels: [chat] }, { after: 30m, channels: [chat] }] }\n";
    let config = parse_str("good.yaml", good, &sources()).unwrap();
    assert_eq!(
        config.web.external_url.as_deref(),
        Some("https://lookout.example.com")
    );
    let steps = &config.receivers["critical"].escalate;
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].after, Duration::from_secs(1800));
}

#[test]
fn anchors_aliases_and_merge_keys_are_accepted() {
    let yaml = "\
x-robot: &robot
  type: dingtalk
  rate_limit: 10/min
  retry: { initial: 2s, max: 1m }
x-query: &query
  database: shop
  interval: 30s
databases:
  shop: { url: 'sqlite:///tmp/shop.db' }
queries:
  - <<: *query
    name: users
    sql: SELECT 1 AS n
    metrics: [{ name: shop_users, value: n }]
  - <<: *query
    name: orders
    interval: 1m
    sql: SELECT 2 AS n
    metrics: [{ name: shop_orders, value: n }]
channels:
  ops:
    <<: *robot
    url: https://oapi.dingtalk.com/robot/send?access_token=a
  oncall:
    <<: [*robot]
    url: https://oapi.dingtalk.com/robot/send?access_token=b
    rate_limit: 5/min
receivers:
  critical: { channels: &both [ops, oncall] }
  warning: { channels: *both }
";
    // Top-level `x-` keys (as in Docker Compose) hold anchors and are otherwise ignored.
    let config = parse_str("anchors.yaml", yaml, &sources()).unwrap();
    let users = &config.queries[0];
    let orders = &config.queries[1];
    assert_eq!(
        (users.database.as_str(), users.interval),
        ("shop", Duration::from_secs(30))
    );
    assert_eq!(
        orders.interval,
        Duration::from_secs(60),
        "the query's own key wins"
    );
    assert_eq!(config.channels["ops"].delivery.rate_limit.count, 10);
    assert_eq!(config.channels["oncall"].delivery.rate_limit.count, 5);
    assert_eq!(
        config.channels["oncall"].delivery.retry,
        Backoff::new(Duration::from_secs(2), Duration::from_secs(60)).unwrap()
    );
    assert!(errors("y-robot: 1\n").contains("unknown key `y-robot`"));

    let inline = "\
channels:
  ops: &robot
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=a
    rate_limit: 10/min
  oncall:
    <<: *robot
    url: https://oapi.dingtalk.com/robot/send?access_token=b
    rate_limit: 5/min
receivers:
  critical: { channels: &both [ops, oncall] }
  warning: { channels: *both }
";
    let config = parse_str("anchors.yaml", inline, &sources()).unwrap();
    let ops = &config.channels["ops"];
    let oncall = &config.channels["oncall"];
    assert_eq!(ops.delivery.rate_limit.count, 10);
    assert_eq!(
        oncall.delivery.rate_limit.count, 5,
        "the mapping's own key wins"
    );
    assert_eq!(oncall.kind.name(), "dingtalk", "merged from the anchor");
    assert_ne!(ops.targets(), oncall.targets());
    assert_eq!(config.receivers["warning"].channels, ["ops", "oncall"]);
}

#[test]
fn an_error_under_a_merged_mapping_names_its_line() {
    let yaml = "\
channels:
  ops: &robot
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=a
    timeout: 0s
  oncall:
    <<: *robot
    url: https://oapi.dingtalk.com/robot/send?access_token=b
";
    let message = errors(yaml);
    // The bad value is written once, on line 5; both channels report it there.
    assert!(
        message.contains("test.yaml:5:5: channels.ops.timeout: must be positive"),
        "{message}"
    );
    assert!(
        message.contains("test.yaml:5:5: channels.oncall.timeout: must be positive"),
        "{message}"
    );
    for (bad, expected) in [
        (
            "a: *nowhere\n",
            "test.yaml:1:4: invalid YAML: while parsing node, found unknown anchor",
        ),
        (
            "a: &x 1\n<<: *x\n",
            "test.yaml:2:5: a merge key `<<` takes a mapping",
        ),
        ("a: 1\na: 2\n", "test.yaml:2:1: duplicate key `a`"),
        ("a: !!str 1\n", "YAML tags are not supported"),
    ] {
        let message = errors(bad);
        assert!(
            message.contains(expected),
            "{bad:?}: {expected} in {message}"
        );
    }
}

#[test]
fn aliases_cannot_expand_without_bound() {
    let mut yaml = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
            p = i - 1
        ));
    }
    let message = errors(&yaml);
    assert!(message.contains("expands to more than"), "{message}");
}

#[test]
fn a_shared_outbox_is_a_server_url_with_its_own_keys() {
    let table: &[(&str, &str)] = &[
        (
            "relay:\n  outbox: sqlite:///tmp/o.db\n",
            "test.yaml:2:3: relay.outbox: unsupported outbox URL (expected postgres:// or mysql://",
        ),
        (
            "relay:\n  outbox: postgres://u:secret@db/lookout\n",
            "relay.outbox: the URL carries a password; move it to `outbox_password` or `outbox_password_file`",
        ),
        (
            "relay:\n  lease: 10s\n",
            "test.yaml:2:3: relay.lease: applies only to a shared outbox",
        ),
        (
            "relay:\n  outbox_password: x\n",
            "relay.outbox_password: applies only to a shared outbox",
        ),
        (
            "relay:\n  outbox: postgres://u@db/lookout\n  lease: 0s\n",
            "relay.lease:",
        ),
        (
            "relay:\n  outbox: postgres://u@db/lookout\n  retention: { max_bytes: 1GiB }\n",
            "relay.retention.max_bytes: bounds the SQLite outbox only",
        ),
        (
            "relay:\n  outbox: mysql://u@db/lookout?ssl-mode=verify-ca\n  outbox_tls: { ca_file: /nonexistent/ca.pem }\n",
            "relay.outbox_tls.ca_file: cannot read",
        ),
        (
            "relay:\n  outbox: postgres://u@db/lookout?sslrootcert=/x\n",
            "relay.outbox: `sslrootcert` is not used",
        ),
    ];
    for (yaml, expected) in table {
        let errors = errors(yaml);
        assert!(
            errors.contains(expected),
            "{yaml}\nexpected {expected}\ngot {errors}"
        );
    }
    let config = parse_str(
        "test.yaml",
        "relay:\n  outbox: mysql://lookout@db:3306/lookout?ssl-mode=disabled\n  outbox_password: pw\n  lease: 5s\n",
        &sources(),
    )
    .unwrap();
    let OutboxLocation::Shared(shared) = &config.relay.outbox else {
        panic!("a shared outbox")
    };
    assert_eq!(shared.database.kind, DatabaseKind::Mysql);
    assert_eq!(shared.database.url, "mysql://lookout@db:3306/lookout");
    assert_eq!(shared.database.tls.mode, SslMode::Disable);
    assert_eq!(shared.lease, Duration::from_secs(5));
    assert_eq!(config.relay.retention.max_bytes, None, "no size bound");
    let default = parse_str("test.yaml", "", &sources()).unwrap();
    assert_eq!(default.relay.outbox, OutboxLocation::StateDir);
}
