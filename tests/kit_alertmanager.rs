//! The Alertmanager kit in `alertmanager/`: `amtool check-config` accepts the file; the
//! routing table `alertmanager/tests/routes.txt` and every alert of `rules/*.yml` reach
//! the receivers they must (`amtool config routes test --verify.receivers`, whose exit
//! code is checked both ways); the inhibition is there and works in a real Alertmanager,
//! which delivers a critical alert to lookout's `/alertmanager/critical` with the bearer
//! token from `credentials_file`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use support::exposition::{Exposition, labels};
use support::{Alertmanager, Lookout, http_get, poll_until, require_binary};

const CONFIG_URL: &str = "http://lookout:9788";
const CONFIG_TOKEN_FILE: &str = "/etc/alertmanager/lookout-token";
const RECEIVERS: [&str; 3] = ["critical", "warning", "info"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn config_path() -> PathBuf {
    root().join("alertmanager/alertmanager.yml")
}

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {}: {error}", binary.display()))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `amtool config routes test --verify.receivers=<expected>` for one label set: the
/// receivers it printed, and whether it exited 0.
fn route(amtool: &Path, config: &Path, expected: &str, labels: &[&str]) -> (String, bool) {
    let config_flag = format!("--config.file={}", config.display());
    let verify_flag = format!("--verify.receivers={expected}");
    let mut args = vec!["config", "routes", "test", &config_flag, &verify_flag];
    args.extend_from_slice(labels);
    let output = run(amtool, &args);
    let printed = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (printed, output.status.success())
}

#[derive(Debug, Deserialize)]
struct AmConfig {
    route: AmRoute,
    receivers: Vec<AmReceiver>,
    inhibit_rules: Vec<AmInhibit>,
}

#[derive(Debug, Deserialize)]
struct AmRoute {
    receiver: String,
    #[serde(default)]
    group_by: Vec<String>,
    #[serde(default)]
    routes: Vec<AmRoute>,
}

#[derive(Debug, Deserialize)]
struct AmReceiver {
    name: String,
    #[serde(default)]
    webhook_configs: Vec<AmWebhook>,
}

#[derive(Debug, Deserialize)]
struct AmWebhook {
    url: String,
    send_resolved: bool,
    http_config: AmHttpConfig,
}

#[derive(Debug, Deserialize)]
struct AmHttpConfig {
    authorization: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct AmInhibit {
    source_matchers: Vec<String>,
    target_matchers: Vec<String>,
    equal: Vec<String>,
}

fn parsed_config() -> AmConfig {
    let text = std::fs::read_to_string(config_path()).expect("read alertmanager.yml");
    marked_yaml::from_yaml(0, &text).unwrap_or_else(|error| panic!("alertmanager.yml: {error}"))
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    alert: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// (alert name, severity) of every alerting rule in `rules/*.yml`.
fn rule_alerts() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .expect("read rules/")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    let mut alerts = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read rule file");
        let file: RuleFile = marked_yaml::from_yaml(0, &text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        for rule in file.groups.into_iter().flat_map(|group| group.rules) {
            if let Some(name) = rule.alert {
                let severity = rule.labels.get("severity").cloned().unwrap_or_default();
                alerts.push((name, severity));
            }
        }
    }
    assert!(!alerts.is_empty(), "no alerts in rules/*.yml");
    alerts
}

#[test]
fn amtool_check_config_passes() {
    let Some(amtool) = require_binary("amtool") else {
        return;
    };
    let config = config_path();
    let output = run(
        &amtool,
        &["check-config", config.to_str().expect("UTF-8 path")],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let text = describe(&output);
    for expected in ["SUCCESS", "1 inhibit rules", "3 receivers"] {
        assert!(text.contains(expected), "missing {expected:?}: {text}");
    }

    // The exit code means something: a route to an undefined receiver fails.
    let broken = std::fs::read_to_string(&config)
        .expect("read config")
        .replacen("receiver: info", "receiver: pager", 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let broken_path = dir.path().join("broken.yml");
    std::fs::write(&broken_path, broken).expect("write broken config");
    let output = run(
        &amtool,
        &["check-config", broken_path.to_str().expect("UTF-8 path")],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(describe(&output).contains("pager"), "{}", describe(&output));
}

#[test]
fn the_routes_table_reaches_its_receivers() {
    let Some(amtool) = require_binary("amtool") else {
        return;
    };
    let table = std::fs::read_to_string(root().join("alertmanager/tests/routes.txt"))
        .expect("read routes.txt");
    let mut cases = 0;
    let mut reached = BTreeMap::<String, usize>::new();
    for (number, line) in table.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let expected = fields.next().expect("a non-empty line has a field");
        let labels: Vec<&str> = fields.collect();
        assert!(
            !labels.is_empty() && labels.iter().all(|label| label.contains('=')),
            "routes.txt:{}: want `RECEIVERS label=value ...`: {line}",
            number + 1
        );
        let (printed, ok) = route(&amtool, &config_path(), expected, &labels);
        assert!(
            ok && printed == expected,
            "routes.txt:{}: {labels:?} reached {printed:?}, want {expected:?}",
            number + 1
        );
        for receiver in expected.split(',') {
            *reached.entry(receiver.to_owned()).or_default() += 1;
        }
        cases += 1;
    }
    assert!(cases >= 10, "only {cases} cases in routes.txt");
    for receiver in RECEIVERS {
        assert!(
            reached.contains_key(receiver),
            "no case in routes.txt reaches {receiver}: {reached:?}"
        );
    }
}

#[test]
fn verify_receivers_fails_on_the_wrong_receiver() {
    let Some(amtool) = require_binary("amtool") else {
        return;
    };
    let critical = ["alertname=TargetDown", "severity=critical"];
    let (printed, ok) = route(&amtool, &config_path(), "critical", &critical);
    assert!(ok && printed == "critical", "{printed} {ok}");
    let (printed, ok) = route(&amtool, &config_path(), "info", &critical);
    assert!(
        !ok,
        "verifying the wrong receiver must fail (printed {printed})"
    );
    let info = ["alertname=LargeTransaction", "severity=info"];
    let (printed, ok) = route(&amtool, &config_path(), "info", &info);
    assert!(ok && printed == "info", "{printed} {ok}");
    let (_, ok) = route(&amtool, &config_path(), "critical", &info);
    assert!(!ok, "an info alert must not reach critical");
}

#[test]
fn every_rule_alert_reaches_the_receiver_named_by_its_severity() {
    let Some(amtool) = require_binary("amtool") else {
        return;
    };
    for (name, severity) in rule_alerts() {
        assert!(RECEIVERS.contains(&severity.as_str()), "{name}: {severity}");
        let alertname = format!("alertname={name}");
        let severity_label = format!("severity={severity}");
        let labels = [
            alertname.as_str(),
            severity_label.as_str(),
            "instance=shop-1:9788",
            "job=lookout",
        ];
        let (printed, ok) = route(&amtool, &config_path(), &severity, &labels);
        assert!(
            ok && printed == severity,
            "{name} ({severity}) reached {printed:?}"
        );
    }
}

#[test]
fn the_file_routes_by_severity_to_lookout_with_a_token_file_and_inhibits() {
    let config = parsed_config();
    assert_eq!(config.route.receiver, "warning", "the default receiver");
    assert_eq!(config.route.group_by, ["alertname", "instance"]);
    let routed: Vec<&str> = config
        .route
        .routes
        .iter()
        .map(|r| r.receiver.as_str())
        .collect();
    assert_eq!(routed, RECEIVERS);
    let names: Vec<&str> = config.receivers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, RECEIVERS);
    for receiver in &config.receivers {
        assert_eq!(receiver.webhook_configs.len(), 1, "{}", receiver.name);
        let webhook = &receiver.webhook_configs[0];
        assert_eq!(
            webhook.url,
            format!("{CONFIG_URL}/alertmanager/{}", receiver.name)
        );
        assert!(webhook.send_resolved, "{}", receiver.name);
        assert_eq!(
            webhook
                .http_config
                .authorization
                .get("credentials_file")
                .map(String::as_str),
            Some(CONFIG_TOKEN_FILE),
            "{}",
            receiver.name
        );
    }
    let inhibition = config
        .inhibit_rules
        .iter()
        .find(|rule| {
            rule.source_matchers == ["severity=\"critical\""]
                && rule.target_matchers == ["severity=\"warning\""]
        })
        .unwrap_or_else(|| {
            panic!(
                "no critical → warning inhibition: {:?}",
                config.inhibit_rules
            )
        });
    let mut equal = inhibition.equal.clone();
    equal.sort();
    assert_eq!(equal, ["alertname", "instance"]);
}

fn alert(name: &str, severity: &str, instance: &str) -> Value {
    let now = chrono::Utc::now();
    json!({
        "labels": { "alertname": name, "severity": severity, "instance": instance, "job": "lookout" },
        "annotations": { "summary": format!("{name} {severity} 测试"), "description": "kit_alertmanager" },
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::minutes(10)).to_rfc3339(),
    })
}

/// The state (`active`, `suppressed`) and `inhibitedBy` of each alert Alertmanager holds,
/// by (alertname, severity, instance).
fn alert_states(
    alertmanager: &Alertmanager,
) -> BTreeMap<(String, String, String), (String, usize)> {
    let url = format!("{}/api/v2/alerts", alertmanager.base_url());
    let response = http_get(&url, &[]).expect("GET /api/v2/alerts");
    assert_eq!(response.status, 200, "{}", response.text());
    response
        .json()
        .as_array()
        .expect("an array of alerts")
        .iter()
        .map(|alert| {
            let label = |name: &str| alert["labels"][name].as_str().unwrap_or("").to_owned();
            let status = &alert["status"];
            (
                (label("alertname"), label("severity"), label("instance")),
                (
                    status["state"].as_str().unwrap_or("").to_owned(),
                    status["inhibitedBy"].as_array().map_or(0, Vec::len),
                ),
            )
        })
        .collect()
}

#[test]
fn a_real_alertmanager_inhibits_and_delivers_to_lookout() {
    if require_binary("prometheus-alertmanager").is_none() {
        return;
    }
    let secrets = tempfile::tempdir().expect("temp dir");
    let token_file = secrets.path().join("lookout-token");
    std::fs::write(&token_file, "kit-t0ken\n").expect("write token");
    let lookout = Lookout::start(&format!(
        "host: {{ enabled: false }}
web: {{ auth: {{ bearer_token_file: '{}' }} }}
channels:
  console: {{ type: console }}
receivers:
  critical: {{ channels: [console] }}
  warning: {{ channels: [console] }}
  info: {{ channels: [console] }}
",
        token_file.display()
    ));

    // The shipped file, pointed at this lookout and this token file; nothing else changed.
    let shipped = std::fs::read_to_string(config_path()).expect("read alertmanager.yml");
    assert_eq!(
        shipped.matches(CONFIG_URL).count(),
        3,
        "one URL per receiver"
    );
    assert_eq!(
        shipped
            .matches(&format!("credentials_file: {CONFIG_TOKEN_FILE}"))
            .count(),
        3,
        "one token file per receiver"
    );
    let config = shipped
        .replace(CONFIG_URL, &lookout.base_url())
        .replace(CONFIG_TOKEN_FILE, token_file.to_str().expect("UTF-8 path"));
    let Some(alertmanager) = Alertmanager::start(&config) else {
        return;
    };

    alertmanager.post_alerts(&json!([
        alert("KitDiskFull", "critical", "web-1:9788"),
        alert("KitDiskFull", "warning", "web-1:9788"),
        alert("KitDiskFull", "warning", "web-2:9788"),
    ]));
    let states = poll_until(Duration::from_secs(10), "the three alerts", || {
        let states = alert_states(&alertmanager);
        if states.len() == 3 {
            Ok(states)
        } else {
            Err(format!("{states:?}"))
        }
    });
    let key = |severity: &str, instance: &str| {
        (
            "KitDiskFull".to_owned(),
            severity.to_owned(),
            instance.to_owned(),
        )
    };
    assert_eq!(
        states[&key("critical", "web-1:9788")],
        ("active".to_owned(), 0),
        "{states:?}"
    );
    assert_eq!(
        states[&key("warning", "web-1:9788")],
        ("suppressed".to_owned(), 1),
        "the warning on the critical's instance is inhibited: {states:?}"
    );
    assert_eq!(
        states[&key("warning", "web-2:9788")],
        ("active".to_owned(), 0),
        "another instance's warning is not: {states:?}"
    );

    // The critical route's group_wait is 10 s; lookout accepts with the token and
    // delivers to its console channel.
    poll_until(
        Duration::from_secs(30),
        "the critical notification at lookout",
        || {
            let response = http_get(&lookout.url("/metrics"), &[("Accept", "text/plain")])
                .map_err(|error| error.to_string())?;
            let exposition =
                Exposition::parse(&response.text()).map_err(|error| error.to_string())?;
            let accepted = exposition.value(
                "lookout_webhook_requests_total",
                &labels(&[("receiver", "critical"), ("code", "200")]),
            );
            let refused = exposition.value(
                "lookout_webhook_requests_total",
                &labels(&[("receiver", "critical"), ("code", "401")]),
            );
            assert_eq!(
                refused,
                None,
                "Alertmanager's token was refused\n{}",
                alertmanager.logs()
            );
            match accepted {
                Some(n) if n >= 1.0 => Ok(()),
                other => Err(format!("{other:?}\n{}", alertmanager.logs())),
            }
        },
    );
    poll_until(Duration::from_secs(10), "the console message", || {
        let stdout = lookout.stdout();
        if stdout.contains("KitDiskFull") {
            Ok(())
        } else {
            Err(lookout.logs())
        }
    });
}
