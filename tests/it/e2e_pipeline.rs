//! End to end, everything real except the chat service: the example shop schema in a
//! scratch MariaDB database → lookout's business queries (examples/shop/lookout.yaml) →
//! a real Prometheus scraping lookout and evaluating every file of rules/ → a real
//! Alertmanager routing with alertmanager/alertmanager.yml → lookout's relay → the
//! verifying DingTalk mock (加签 checked). A burst of failed transactions fires
//! `TransactionFailureRateHigh` and a signed 【告警】 message arrives; removing the burst
//! resolves it and the 【恢复】 message arrives.
//!
//! The three configurations are the shipped files with an overlay that only shortens
//! timing (query intervals, `for:`, rule group intervals, Alertmanager's group_wait and
//! group_interval) and points addresses and secrets at this test's processes; the test
//! checks that queries and rule expressions are byte-identical to the originals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::db::{MariaDb, PASSWORD};
use crate::support::mocks::DingTalkMock;
use crate::support::{Alertmanager, Lookout, Prometheus, require_binary};
use lookout::config::{Config, Sources, parse_str};
use regex::Regex;
use serde_json::Value;

const ALERT: &str = "TransactionFailureRateHigh";
const ROBOT_TOKEN: &str = "e2e-robot";
const ROBOT_SECRET: &str = "SECe2e0pipeline";
const WEBHOOK_TOKEN: &str = "e2e-am-t0ken";

/// The shortened timing of the overlay.
const QUERY_INTERVAL: &str = "2s";
const QUERY_STALE_AFTER: &str = "10s";
const RULE_FOR: &str = "2s";
const RULE_GROUP_INTERVAL: &str = "1s";
const AM_GROUP_TIMING: &str = "1s";

/// What the shipped files use for lookout's address and the token file.
const AM_LOOKOUT_URL: &str = "http://lookout:9788";
const AM_TOKEN_FILE: &str = "/etc/alertmanager/lookout-token";
const EXAMPLE_DB_URL: &str = "mysql://lookout@127.0.0.1:3306/shop";
const EXAMPLE_PASSWORD: &str = "password: ${SHOP_DB_PASSWORD}";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("the test's regexes are valid")
}

/// `mysql.sql` without the two lines that create and select the `shop` database (as
/// tests/it/demo.rs loads it).
fn mysql_schema() -> String {
    read("examples/shop/mysql.sql")
        .lines()
        .filter(|line| !line.starts_with("CREATE DATABASE") && !line.starts_with("USE "))
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------
// lookout: examples/shop/lookout.yaml with shorter intervals, this database, no host
// metrics, web auth and a DingTalk channel in place of the console.

fn lookout_config(db: &MariaDb, mock: &DingTalkMock, token_file: &Path) -> String {
    let example = read("examples/shop/lookout.yaml");
    assert_eq!(
        example.matches(EXAMPLE_DB_URL).count(),
        1,
        "one database URL"
    );
    assert_eq!(example.matches(EXAMPLE_PASSWORD).count(), 1, "one password");
    assert_eq!(
        example.matches("host:\n  enabled: true\n").count(),
        1,
        "host metrics block"
    );
    let interval = regex(r"(?m)^    interval: \d+[smh]$");
    let queries = example.matches("  - name: ").count();
    assert_eq!(
        interval.find_iter(&example).count(),
        queries,
        "every query has an interval to shorten"
    );
    let shortened = interval.replace_all(
        &example,
        format!("    interval: {QUERY_INTERVAL}\n    stale_after: {QUERY_STALE_AFTER}").as_str(),
    );
    let body = shortened
        .replace(EXAMPLE_DB_URL, &db.url())
        .replace(EXAMPLE_PASSWORD, &format!("password: '{PASSWORD}'"))
        .replace("host:\n  enabled: true\n", "host:\n  enabled: false\n");
    // The example's channels and receivers (a console) give way to the mock.
    let cut = body
        .find("\nchannels:\n")
        .expect("the example has a channels section");
    let (queries_part, _) = body.split_at(cut);
    format!(
        "{queries_part}
web:
  auth: {{ bearer_token_file: '{token}' }}
channels:
  ops-dingtalk:
    type: dingtalk
    url: '{url}'
    secret: {ROBOT_SECRET}
receivers:
  critical: {{ channels: [ops-dingtalk] }}
  high: {{ channels: [ops-dingtalk] }}
  warning: {{ channels: [ops-dingtalk] }}
  info: {{ channels: [ops-dingtalk] }}
",
        token = token_file.display(),
        url = mock.webhook_url(),
    )
}

fn parse_config(name: &str, yaml: &str) -> Config {
    let env = |var: &str| (var == "SHOP_DB_PASSWORD").then(|| PASSWORD.to_owned());
    let sources = Sources {
        env: &env,
        read_file: &|path| std::fs::read_to_string(path),
    };
    parse_str(name, yaml, &sources).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The overlay keeps every query as it is and only shortens its schedule.
fn assert_same_queries(overlay: &str) {
    let original = parse_config(
        "examples/shop/lookout.yaml",
        &read("examples/shop/lookout.yaml"),
    );
    let derived = parse_config("e2e lookout.yaml", overlay);
    assert_eq!(derived.queries.len(), original.queries.len());
    for (ours, theirs) in derived.queries.iter().zip(&original.queries) {
        assert_eq!(ours.name, theirs.name);
        assert_eq!(ours.database, theirs.database, "{}", ours.name);
        assert_eq!(ours.sql, theirs.sql, "{}", ours.name);
        assert_eq!(ours.metrics, theirs.metrics, "{}", ours.name);
        assert_eq!(ours.max_series, theirs.max_series, "{}", ours.name);
        assert_eq!(ours.const_labels, theirs.const_labels, "{}", ours.name);
        assert!(ours.interval < theirs.interval, "{}", ours.name);
    }
}

// ---------------------------------------------------------------------------------------
// Prometheus: every rules/*.yml with shorter `for:` and a 1 s group interval.

fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .expect("read rules/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

/// Only the timing of `rules`: each `for:` becomes [`RULE_FOR`] and each group gets
/// `interval:` [`RULE_GROUP_INTERVAL`].
fn shorten_rules(rules: &str) -> String {
    assert!(
        !regex(r"(?m)^\s+interval:").is_match(rules),
        "a group already has an interval"
    );
    let for_line = regex(r"(?m)^(\s+for: )\S+$");
    let group = regex(r"(?m)^(  - name: \S+)$");
    let shortened = for_line.replace_all(rules, format!("${{1}}{RULE_FOR}").as_str());
    group
        .replace_all(
            &shortened,
            format!("${{1}}\n    interval: {RULE_GROUP_INTERVAL}").as_str(),
        )
        .into_owned()
}

/// Each `expr:` with its continuation lines (those indented deeper than the `expr:`).
fn expressions(rules: &str) -> Vec<String> {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut found = Vec::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("expr:") {
            continue;
        }
        let mut expr = line.to_owned();
        while let Some(next) = lines.peek() {
            if next.trim().is_empty() || indent(next) <= indent(line) {
                break;
            }
            expr.push('\n');
            expr.push_str(next);
            lines.next();
        }
        found.push(expr);
    }
    found
}

/// Writes the shortened copies of rules/*.yml into `dir`; checks that only `for:` and
/// `interval:` lines differ and every expression is byte-identical.
fn write_rules(dir: &Path) -> Vec<PathBuf> {
    let timing = regex(r"^\s+(for|interval): \S+$");
    let files = rule_files();
    assert!(files.len() >= 4, "rules/*.yml: {files:?}");
    files
        .iter()
        .map(|file| {
            let original = std::fs::read_to_string(file).expect("read a rule file");
            let shortened = shorten_rules(&original);
            let name = file.file_name().expect("a file name");
            assert_eq!(
                expressions(&shortened),
                expressions(&original),
                "{name:?}: the expressions changed"
            );
            assert!(!expressions(&original).is_empty(), "{name:?}");
            let without_timing = |text: &str| {
                text.lines()
                    .filter(|line| !timing.is_match(line))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                without_timing(&shortened),
                without_timing(&original),
                "{name:?}: more than the timing changed"
            );
            let copy = dir.join(name);
            std::fs::write(&copy, shortened).expect("write a rule file");
            copy
        })
        .collect()
}

fn prometheus_config(lookout: &Lookout, alertmanager: &Alertmanager, rules: &[PathBuf]) -> String {
    let rule_files: String = rules
        .iter()
        .map(|path| format!("  - '{}'\n", path.display()))
        .collect();
    let am_target = alertmanager
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
{rule_files}alerting:
  alertmanagers:
    - static_configs:
        - targets: ['{am_target}']
scrape_configs:
  - job_name: lookout
    static_configs:
      - targets: ['{lookout}']
",
        lookout = lookout.addr()
    )
}

// ---------------------------------------------------------------------------------------
// Alertmanager: alertmanager/alertmanager.yml pointed at this lookout and token file, with
// 1 s group_wait and group_interval.

fn alertmanager_config(lookout: &Lookout, token_file: &Path) -> String {
    let shipped = read("alertmanager/alertmanager.yml");
    assert_eq!(
        shipped.matches(AM_LOOKOUT_URL).count(),
        4,
        "one URL per receiver"
    );
    let credentials = format!("credentials_file: {AM_TOKEN_FILE}");
    assert_eq!(
        shipped.matches(&credentials).count(),
        4,
        "one token file per receiver"
    );
    let timing = regex(r"(?m)^(\s+group_(?:wait|interval): )\d+[smh]\b");
    assert!(timing.find_iter(&shipped).count() >= 2, "group timings");
    let shortened = timing.replace_all(&shipped, format!("${{1}}{AM_GROUP_TIMING}").as_str());
    shortened
        .replace(AM_LOOKOUT_URL, &lookout.base_url())
        .replace(
            &credentials,
            &format!("credentials_file: '{}'", token_file.display()),
        )
}

// ---------------------------------------------------------------------------------------
// Observing.

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all.iter()
        .skip(all.len().saturating_sub(lines))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `ALERTS` series as `alertname{…} state`.
fn alerts_series(prometheus: &Prometheus) -> String {
    prometheus
        .query_vector("ALERTS")
        .iter()
        .map(|(labels, _)| {
            let mut labels: BTreeMap<String, String> = labels.clone();
            let name = labels.remove("alertname").unwrap_or_default();
            let state = labels.remove("alertstate").unwrap_or_default();
            labels.remove("__name__");
            format!("{name} {state} {labels:?}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn instant_value(prometheus: &Prometheus, expr: &str) -> Option<f64> {
    prometheus
        .query_vector(expr)
        .first()
        .map(|(_, value)| *value)
}

/// The whole test stays within this, however slow the machine (a loaded 2-core CI box).
const TEST_BUDGET: Duration = Duration::from_secs(120);

struct Pipeline<'a> {
    /// Every wait ends by then.
    deadline: Instant,
    mock: &'a DingTalkMock,
    lookout: &'a Lookout,
    prometheus: &'a Prometheus,
    alertmanager: &'a Alertmanager,
}

impl Pipeline<'_> {
    fn diagnostics(&self) -> String {
        let ratio = self.prometheus.query("shop_transaction_failure_ratio");
        let headlines: Vec<String> = self
            .mock
            .texts()
            .iter()
            .map(|text| first_line(text).to_owned())
            .collect();
        let refused: Vec<String> = self
            .mock
            .requests()
            .iter()
            .filter(|request| !request.accepted)
            .map(|request| format!("{:?} {}", request.code, request.body_text()))
            .collect();
        format!(
            "--- ALERTS ---\n{}\n--- shop_transaction_failure_ratio ---\n{ratio}\n\
             --- DingTalk messages (first lines) ---\n{headlines:#?}\n\
             --- DingTalk refusals ---\n{refused:#?}\n{}\n{}\n{}",
            alerts_series(self.prometheus),
            tail(&self.lookout.logs(), 120),
            tail(&self.prometheus.logs(), 60),
            tail(&self.alertmanager.logs(), 120),
        )
    }

    /// Polls `probe` every 200 ms until it gives `Some`; after `timeout` (or at the
    /// test's deadline, whichever is first) panics with `what` and every process's logs.
    fn wait<T>(&self, timeout: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let started = Instant::now();
        let timeout = timeout.min(self.deadline.saturating_duration_since(started));
        loop {
            if let Some(value) = probe() {
                eprintln!("{what}: after {:.1?}", started.elapsed());
                return value;
            }
            if started.elapsed() >= timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The first accepted message whose headline is `【{kind}】TransactionFailureRateHigh`.
    fn message(&self, kind: &str) -> Option<Value> {
        let headline = format!("【{kind}】{ALERT}");
        self.mock.messages().into_iter().find(|message| {
            let text = message["markdown"]["text"]
                .as_str()
                .or(message["text"]["content"].as_str())
                .unwrap_or_default();
            first_line(text).contains(&headline)
        })
    }
}

#[test]
fn a_failure_burst_in_mariadb_reaches_dingtalk_as_a_signed_alert_then_its_recovery() {
    let started = Instant::now();
    if require_binary("prometheus").is_none() || require_binary("prometheus-alertmanager").is_none()
    {
        return;
    }
    let Some(db) = MariaDb::create() else { return };
    db.exec(&mysql_schema());
    eprintln!("loaded mysql.sql in {:.1?}", started.elapsed());

    let mock = DingTalkMock::start(ROBOT_TOKEN, Some(ROBOT_SECRET));
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("lookout-token");
    std::fs::write(&token_file, format!("{WEBHOOK_TOKEN}\n")).expect("write token");

    let lookout_yaml = lookout_config(&db, &mock, &token_file);
    assert_same_queries(&lookout_yaml);
    let lookout = Lookout::start(&lookout_yaml);

    let Some(alertmanager) = Alertmanager::start(&alertmanager_config(&lookout, &token_file))
    else {
        return;
    };

    let rules_dir = tempfile::tempdir().expect("temp dir");
    let rules = write_rules(rules_dir.path());
    let Some(prometheus) = Prometheus::start_with_args(
        &prometheus_config(&lookout, &alertmanager, &rules),
        &["--rules.alert.resend-delay=1s"],
    ) else {
        return;
    };
    let pipeline = Pipeline {
        // The budget covers the pipeline's work, not the setup before it.
        deadline: Instant::now() + TEST_BUDGET,
        mock: &mock,
        lookout: &lookout,
        prometheus: &prometheus,
        alertmanager: &alertmanager,
    };
    eprintln!("everything up after {:.1?}", started.elapsed());

    // Before the burst: the sample's 2.5 % failures, evaluated and not alerting.
    let before = pipeline.wait(
        Duration::from_secs(20),
        "the failure ratio in Prometheus and the rules evaluated",
        || {
            let ratio = instant_value(&prometheus, "shop_transaction_failure_ratio")?;
            let evaluated = prometheus.api("rules")["groups"]
                .as_array()
                .is_some_and(|groups| {
                    groups.iter().all(|group| {
                        !group["lastEvaluation"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("0001")
                    })
                });
            evaluated.then_some(ratio)
        },
    );
    assert!(before < 0.1, "the sample alone is at {before}");
    assert!(
        !alerts_series(&prometheus).contains(ALERT),
        "{ALERT} before the burst\n{}",
        pipeline.diagnostics()
    );

    // The burst: failed transactions now, several times the last 10 minutes' volume.
    let count = |sql: &str| -> i64 {
        db.column(sql)[0]
            .as_deref()
            .unwrap_or("0")
            .parse()
            .expect("a count")
    };
    let recent = count(
        "SELECT COUNT(*) FROM transactions WHERE created_at >= UTC_TIMESTAMP() - INTERVAL 10 MINUTE",
    );
    let last_id = count("SELECT MAX(id) FROM transactions");
    let burst = (recent * 2).max(100);
    let rows: Vec<String> = (0..burst)
        .map(|i| {
            format!(
                "({}, 'withdraw', 25.00, 1, 'failed', UTC_TIMESTAMP())",
                1 + i % 20_000
            )
        })
        .collect();
    db.exec(&format!(
        "INSERT INTO transactions (wallet_id, type, amount, fee, status, created_at) VALUES {}",
        rows.join(", ")
    ));
    eprintln!("inserted {burst} failed transactions over {recent} recent ones");

    let firing = pipeline.wait(
        Duration::from_secs(40),
        "the signed 【告警】 message at DingTalk",
        || pipeline.message("告警"),
    );
    let firing_text = firing.to_string();
    assert!(firing_text.contains(ALERT), "{firing_text}");
    assert!(
        firing_text.contains("交易失败率过高"),
        "the rule's summary: {firing_text}"
    );
    let ratio_after = instant_value(&prometheus, "shop_transaction_failure_ratio").unwrap_or(0.0);
    assert!(ratio_after > 0.5, "the burst gives {ratio_after}");

    // Remove the condition: the burst rows go, the ratio is back to the sample's.
    db.exec(&format!("DELETE FROM transactions WHERE id > {last_id}"));
    let resolved = pipeline.wait(
        Duration::from_secs(40),
        "the signed 【恢复】 message at DingTalk",
        || pipeline.message("恢复"),
    );
    let resolved_text = resolved.to_string();
    assert!(resolved_text.contains(ALERT), "{resolved_text}");

    // Every message the robot saw was correctly signed and accepted (none refused for a
    // signature, a shape or the rate limit).
    let refused: Vec<String> = mock
        .requests()
        .iter()
        .filter(|request| !request.accepted)
        .map(|request| format!("{:?} {}", request.code, request.body_text()))
        .collect();
    assert!(refused.is_empty(), "refused: {refused:#?}");
    assert!(
        mock.requests()
            .iter()
            .all(|request| request.query.contains("timestamp=") && request.query.contains("sign=")),
        "every request carries timestamp and sign"
    );
    let headlines: Vec<String> = mock
        .texts()
        .iter()
        .map(|text| first_line(text).to_owned())
        .collect();
    let firing_at = headlines
        .iter()
        .position(|line| line.contains(&format!("【告警】{ALERT}")));
    let resolved_at = headlines
        .iter()
        .position(|line| line.contains(&format!("【恢复】{ALERT}")));
    assert!(firing_at < resolved_at, "{headlines:#?}");
    eprintln!(
        "done in {:.1?}; {} messages: {headlines:#?}",
        started.elapsed(),
        headlines.len()
    );
}
