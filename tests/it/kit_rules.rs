//! The Prometheus rules kit in `rules/`: every rule file passes `promtool check rules`
//! (with every lint, fatal), every test file in `rules/tests/` passes `promtool test
//! rules`, and the tests are complete — every alert (each of its severities) has a case
//! where it fires, with its labels and annotations, and one where it does not; every
//! recording rule has an expression test. All of it with Debian's promtool 2.x and with
//! a promtool 3.x (`promtool3`, installed by `.ci/install-promtool3`; the compose stack
//! runs Prometheus 3). The rule files' shape is checked without promtool: severity,
//! Chinese summary and description, a `runbook_url` pointing at an existing section of
//! `docs/runbook.md`, host selectors scoped to lookout's jobs, recording names that
//! cannot collide with the node-exporter mixin's.

use crate::support::markdown::anchor;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::require_binary;
use serde::Deserialize;

const SEVERITIES: [&str; 4] = ["critical", "high", "warning", "info"];

/// The matcher that scopes a selector to lookout's scrape jobs.
const LOOKOUT_JOBS: &str = r#"job=~"lookout.*""#;

/// promtool 3.x, which Debian 12 does not ship: `.ci/install-promtool3` puts it in
/// `/usr/local/bin/promtool3`. Missing: a failure in CI, a skip elsewhere.
fn promtool3() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .chain([PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join("promtool3"))
        .find(|path| path.is_file());
    if found.is_none() {
        let hint = "`promtool3` not found in PATH or /usr/local/bin (run .ci/install-promtool3)";
        assert!(!crate::support::in_ci(), "{hint}; CI must have it");
        eprintln!("SKIPPED: {hint}");
    }
    found
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct TestFile {
    rule_files: Vec<String>,
    tests: Vec<TestGroup>,
}

#[derive(Debug, Deserialize)]
struct TestGroup {
    #[serde(default)]
    alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<ExprTest>,
}

#[derive(Debug, Deserialize)]
struct AlertTest {
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<ExpectedAlert>,
}

#[derive(Debug, Deserialize)]
struct ExpectedAlert {
    #[serde(default)]
    exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct ExprTest {
    expr: String,
    #[serde(default)]
    exp_samples: Vec<ExpectedSample>,
}

#[derive(Debug, Deserialize)]
struct ExpectedSample {
    labels: String,
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

/// The `*.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yml files in {}", dir.display());
    files
}

fn rule_files() -> Vec<PathBuf> {
    yaml_files(&rules_dir())
}

fn test_files() -> Vec<PathBuf> {
    yaml_files(&rules_dir().join("tests"))
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    marked_yaml::from_yaml(0, &text)
        .unwrap_or_else(|error| panic!("{} does not parse: {error}", path.display()))
}

/// Every rule of every rule file, with the file it is in.
fn all_rules() -> Vec<(PathBuf, Rule)> {
    rule_files()
        .into_iter()
        .flat_map(|path| {
            let file: RuleFile = parse(&path);
            file.groups
                .into_iter()
                .flat_map(|group| {
                    assert!(!group.rules.is_empty(), "group {} is empty", group.name);
                    group.rules
                })
                .map(move |rule| (path.clone(), rule))
        })
        .collect()
}

fn all_tests() -> Vec<(PathBuf, TestFile)> {
    test_files()
        .into_iter()
        .map(|path| {
            let file = parse(&path);
            (path, file)
        })
        .collect()
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

fn path_args(paths: &[PathBuf]) -> Vec<&str> {
    paths
        .iter()
        .map(|path| path.to_str().expect("UTF-8 path"))
        .collect()
}

fn has_chinese(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[test]
fn promtool_check_rules_passes_with_every_lint() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    check_rules(&promtool);
}

#[test]
fn promtool_3_check_rules_passes_with_every_lint() {
    let Some(promtool) = promtool3() else {
        return;
    };
    assert_version(&promtool, "promtool, version 3.");
    check_rules(&promtool);
}

fn assert_version(promtool: &Path, prefix: &str) {
    let output = run(promtool, &["--version"]);
    let text = describe(&output);
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with(prefix),
        "want {prefix}…: {text}"
    );
}

fn check_rules(promtool: &Path) {
    let files = rule_files();
    let mut args = vec!["check", "rules", "--lint=all", "--lint-fatal"];
    args.extend(path_args(&files));
    let output = run(promtool, &args);
    assert!(output.status.success(), "{}", describe(&output));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for file in &files {
        assert!(
            text.contains(&format!("Checking {}", file.display())),
            "{} not checked: {text}",
            file.display()
        );
    }
    assert_eq!(
        text.matches("SUCCESS").count(),
        files.len(),
        "every file succeeds: {text}"
    );
    assert!(
        !text.contains("WARNING") && !text.contains("FAILED"),
        "{text}"
    );
}

#[test]
fn promtool_test_rules_passes() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    test_rules(&promtool);
}

#[test]
fn promtool_3_test_rules_passes() {
    let Some(promtool) = promtool3() else {
        return;
    };
    test_rules(&promtool);
}

fn test_rules(promtool: &Path) {
    let files = test_files();
    let mut args = vec!["test", "rules"];
    args.extend(path_args(&files));
    let output = run(promtool, &args);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("SUCCESS").count(),
        files.len(),
        "every test file succeeds: {stdout}"
    );
}

/// The harness sees failures: a test file expecting a wrong annotation makes `promtool
/// test rules` exit non-zero and name the alert.
#[test]
fn promtool_test_rules_fails_on_a_wrong_expectation() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let source = rules_dir().join("tests/business_test.yml");
    let text = std::fs::read_to_string(&source).expect("read business_test.yml");
    let wrong = text
        .replace("- ../", &format!("- {}/", rules_dir().display()))
        .replacen("仅剩 3 件", "仅剩 4 件", 1);
    assert_ne!(text, wrong, "the replacement applies");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wrong_test.yml");
    std::fs::write(&path, wrong).expect("write test file");
    let output = run(
        &promtool,
        &["test", "rules", path.to_str().expect("UTF-8 path")],
    );
    assert!(!output.status.success(), "{}", describe(&output));
    let text = describe(&output);
    assert!(
        text.contains("FAILED") && text.contains("alertname: LowStock"),
        "{text}"
    );
}

#[test]
fn every_alert_has_a_severity_and_chinese_annotations_with_values() {
    let rules = all_rules();
    let alerts: Vec<_> = rules
        .iter()
        .filter(|(_, rule)| rule.alert.is_some())
        .collect();
    assert!(alerts.len() >= 20, "{} alerts", alerts.len());
    for (path, rule) in alerts {
        let name = rule.alert.as_deref().expect("filtered on alert");
        let at = format!("{name} in {}", path.display());
        assert!(rule.record.is_none(), "{at}: both alert and record");
        assert!(!rule.expr.trim().is_empty(), "{at}: empty expr");
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            severity.is_some_and(|s| SEVERITIES.contains(&s)),
            "{at}: severity {severity:?} is not one of {SEVERITIES:?}"
        );
        for key in ["summary", "description"] {
            let text = rule
                .annotations
                .get(key)
                .unwrap_or_else(|| panic!("{at}: no {key} annotation"));
            assert!(has_chinese(text), "{at}: {key} is not Chinese: {text}");
        }
        let description = &rule.annotations["description"];
        assert!(
            description.contains("{{ $value") || description.contains("{{ $labels."),
            "{at}: the description shows no value or label: {description}"
        );
    }
}

#[test]
fn every_rule_file_is_tested_and_every_test_names_existing_rules() {
    let tested: BTreeSet<PathBuf> = all_tests()
        .into_iter()
        .flat_map(|(path, file)| {
            let dir = path.parent().expect("test file has a directory").to_owned();
            file.rule_files.into_iter().map(move |rule_file| {
                let full = dir.join(&rule_file);
                full.canonicalize().unwrap_or_else(|error| {
                    panic!("{}: rule file {rule_file}: {error}", path.display())
                })
            })
        })
        .collect();
    for file in rule_files() {
        let file = file.canonicalize().expect("rule file exists");
        assert!(
            tested.contains(&file),
            "{} is in no test file's rule_files",
            file.display()
        );
    }
}

#[test]
fn every_alert_fires_in_one_case_and_stays_quiet_in_another() {
    // Alert name → the severities its rules define.
    let mut defined: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, rule) in all_rules() {
        if let Some(name) = rule.alert {
            let severity = rule.labels.get("severity").cloned().unwrap_or_default();
            defined.entry(name).or_default().insert(severity);
        }
    }
    let mut fired: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut quiet: BTreeSet<String> = BTreeSet::new();
    for (path, file) in all_tests() {
        for case in file.tests.iter().flat_map(|group| &group.alert_rule_test) {
            let at = format!("{} in {}", case.alertname, path.display());
            assert!(
                defined.contains_key(&case.alertname),
                "{at}: no such alert in rules/*.yml"
            );
            if case.exp_alerts.is_empty() {
                quiet.insert(case.alertname.clone());
            }
            for expected in &case.exp_alerts {
                let severity = expected
                    .exp_labels
                    .get("severity")
                    .unwrap_or_else(|| panic!("{at}: an expected alert without severity"));
                for key in ["summary", "description"] {
                    assert!(
                        expected.exp_annotations.contains_key(key),
                        "{at}: an expected alert without its {key}"
                    );
                }
                fired
                    .entry(case.alertname.clone())
                    .or_default()
                    .insert(severity.clone());
            }
        }
    }
    let mut missing = Vec::new();
    for (name, severities) in &defined {
        for severity in severities {
            if !fired.get(name).is_some_and(|seen| seen.contains(severity)) {
                missing.push(format!("{name} ({severity}) never fires"));
            }
        }
        if !quiet.contains(name) {
            missing.push(format!("{name} has no case with empty exp_alerts"));
        }
    }
    assert!(
        missing.is_empty(),
        "incomplete rule tests:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_recording_rule_has_an_expression_test() {
    let records: BTreeSet<String> = all_rules()
        .into_iter()
        .filter_map(|(_, rule)| rule.record)
        .collect();
    assert!(
        records.contains("instance:shop_transaction_failures:ratio")
            && records.contains("instance:shop_business_health:score"),
        "{records:?}"
    );
    let mut tested = BTreeSet::new();
    for (_, file) in all_tests() {
        for case in file.tests.iter().flat_map(|group| &group.promql_expr_test) {
            for sample in &case.exp_samples {
                if let Some(record) = records.iter().find(|name| {
                    sample.labels.starts_with(&format!("{name}{{")) && case.expr.contains(*name)
                }) {
                    tested.insert(record.clone());
                }
            }
        }
    }
    let untested: Vec<_> = records.difference(&tested).collect();
    assert!(
        untested.is_empty(),
        "recording rules without a test: {untested:?}"
    );
}

/// The `## ` sections of docs/runbook.md: (anchor, heading, body).
fn runbook_sections() -> Vec<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    let mut sections: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.push((anchor(heading), heading.trim().to_owned(), String::new()));
        } else if let Some((_, _, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(anchor("HostDiskUsageHigh"), "hostdiskusagehigh");
    assert_eq!(anchor("Silencing an alert"), "silencing-an-alert");
    assert_eq!(anchor("What `high` means!"), "what-high-means");
}

#[test]
fn every_alert_has_a_runbook_section_and_every_section_an_alert() {
    let sections = runbook_sections();
    let mut anchors = BTreeSet::new();
    for (anchor, heading, _) in &sections {
        assert!(anchors.insert(anchor.clone()), "two sections #{anchor}");
        assert!(!heading.is_empty());
    }
    let mut alerts = BTreeSet::new();
    for (path, rule) in all_rules() {
        let Some(name) = rule.alert else { continue };
        let at = format!("{name} in {}", path.display());
        let url = rule
            .annotations
            .get("runbook_url")
            .unwrap_or_else(|| panic!("{at}: no runbook_url"));
        let want = format!("docs/runbook.md#{}", anchor(&name));
        assert_eq!(url, &want, "{at}: runbook_url");
        let (_, heading, body) = sections
            .iter()
            .find(|(a, _, _)| *a == anchor(&name))
            .unwrap_or_else(|| panic!("{at}: docs/runbook.md has no section #{}", anchor(&name)));
        assert_eq!(heading, &name, "{at}: the section is titled by the alert");
        for part in ["**What it means.**", "**First checks.**", "**Silence.**"] {
            assert!(
                body.contains(part),
                "{at}: its runbook section lacks {part}"
            );
        }
        alerts.insert(anchor(&name));
    }
    // The other sections explain the runbook itself: they are not named like alerts.
    let stale: Vec<_> = sections
        .iter()
        .filter(|(anchor, heading, _)| {
            !alerts.contains(anchor)
                && heading.chars().next().is_some_and(char::is_uppercase)
                && !heading.contains(' ')
        })
        .map(|(_, heading, _)| heading.clone())
        .collect();
    assert!(stale.is_empty(), "runbook sections of no alert: {stale:?}");
}

/// Every selector of a host metric (`node_*`), of `up` or of lookout's collectors in
/// `expr`, with its matchers (`""` when it has none).
fn host_selectors(expr: &str) -> Vec<(String, String)> {
    let selector =
        regex::Regex::new(r"\b(node_[A-Za-z0-9_]+|up|lookout_collector_[a-z_]+)\b\s*(\{[^}]*\})?")
            .expect("valid regex");
    selector
        .captures_iter(expr)
        .filter(|captures| {
            // Not a function call, and not a label name inside `by (...)`.
            let end = captures.get(0).expect("whole match").end();
            !expr
                .get(end..)
                .unwrap_or_default()
                .trim_start()
                .starts_with('(')
        })
        .map(|captures| {
            (
                captures[1].to_owned(),
                captures.get(2).map_or("", |m| m.as_str()).to_owned(),
            )
        })
        .collect()
}

#[test]
fn host_selectors_are_found_with_their_matchers() {
    let found = host_selectors(
        r#"1 - avg without (cpu) (rate(node_cpu_seconds_total{mode="idle"}[5m])) / up and node_load1{job=~"lookout.*"}"#,
    );
    assert_eq!(
        found,
        [
            ("node_cpu_seconds_total".into(), r#"{mode="idle"}"#.into()),
            ("up".into(), String::new()),
            ("node_load1".into(), r#"{job=~"lookout.*"}"#.into()),
        ]
    );
}

#[test]
fn host_and_target_selectors_are_scoped_to_lookouts_jobs() {
    let mut unscoped = Vec::new();
    let mut seen = 0;
    for (path, rule) in all_rules() {
        let name = rule.alert.or(rule.record).unwrap_or_default();
        for (metric, matchers) in host_selectors(&rule.expr) {
            seen += 1;
            if !matchers.contains(LOOKOUT_JOBS) {
                unscoped.push(format!("{name} in {}: {metric}{matchers}", path.display()));
            }
        }
    }
    assert!(seen >= 30, "only {seen} host selectors");
    assert!(
        unscoped.is_empty(),
        "selectors that also match kube-prometheus' jobs:\n{}",
        unscoped.join("\n")
    );
}

#[test]
fn recording_names_are_level_metric_operations_with_lookouts_prefixes() {
    let shape = regex::Regex::new(r"^([a-z_]+):((?:lookout|shop)_[a-z0-9_]+):([a-z0-9_]+)$")
        .expect("valid regex");
    for (path, rule) in all_rules() {
        let Some(name) = rule.record else { continue };
        let at = format!("{name} in {}", path.display());
        let captures = shape
            .captures(&name)
            .unwrap_or_else(|| panic!("{at}: not level:(lookout|shop)_metric:operations"));
        // The level names the labels kept: every aggregation keeps instance and job.
        assert_eq!(&captures[1], "instance", "{at}");
        assert!(
            !name.starts_with("instance:node_"),
            "{at}: the node-exporter mixin's namespace"
        );
    }
}
