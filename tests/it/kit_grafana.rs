//! The Grafana kit in `grafana/`: the dashboards (host, business, relay, database) pick their
//! Prometheus through a `${datasource}` variable that every panel, query and variable
//! uses; each shows firing alerts (`ALERTS`) as annotations, one toggle per severity of
//! the kit (critical, high, warning, info); the business dashboard's variables come from
//! `lookout_build_info`; the fullest-partition panel skips read-only mounts as
//! `HostDiskUsageHigh` does; the business one has seed 001's group-buy success rate; the
//! provisioning files load them with a Prometheus and an Alertmanager datasource. Against
//! a real Prometheus scraping `lookout demo` (with a notification relayed, and
//! `rules/*.yml` loaded), every variable resolves,
//! every panel query parses and returns data, every metric a query names is one lookout
//! exports (or a documented counter that appears on its first event), and every rule
//! evaluates without error. The database dashboard gets the same against a Prometheus
//! scraping lookout with both packs on the CI MariaDB and PostgreSQL; only its
//! replica-only panels may be empty there (the CI servers are primaries without slots).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::db::{PASSWORD, USER};
use crate::support::http::percent_encode;
use crate::support::lookout::HOST_ONLY_CONFIG;
use crate::support::{Lookout, Prometheus, http_request, poll_until, require_binary};
use regex::Regex;
use serde_json::{Value, json};

const DASHBOARDS: [&str; 4] = ["host", "business", "relay", "database"];

/// The dashboards of `lookout demo` (the database one needs the packs: its own test).
const DEMO_DASHBOARDS: [&str; 3] = ["host", "business", "relay"];

/// The kit's severities, most severe first (alertmanager/alertmanager.yml).
const SEVERITIES: [&str; 4] = ["critical", "high", "warning", "info"];

/// Grafana's interval variables, replaced as Grafana would with a 1 s scrape interval
/// over a short range: wide enough for two samples in every `rate()`.
const INTERVALS: [&str; 4] = ["$__rate_interval", "$__interval", "$__range", "$__range_s"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dashboard(name: &str) -> Value {
    let path = root().join(format!("grafana/dashboards/{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn datasource_ref() -> Value {
    json!({ "type": "prometheus", "uid": "${datasource}" })
}

/// Every panel, rows' nested panels included (rows themselves excluded).
fn panels(board: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            if panel["type"] == "row" {
                walk(&panel["panels"], out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(&board["panels"], &mut out);
    out
}

fn variables(board: &Value) -> &[Value] {
    board["templating"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// (panel title, expr) of every query of `board`.
fn queries(board: &Value) -> Vec<(String, String)> {
    panels(board)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(move |target| {
                    (
                        title.clone(),
                        target["expr"].as_str().unwrap_or("").to_owned(),
                    )
                })
        })
        .collect()
}

/// The `label_values(selector, label)` of a query variable.
fn label_values(variable: &Value) -> (String, String) {
    let query = variable["query"]["query"]
        .as_str()
        .or(variable["query"].as_str())
        .unwrap_or_else(|| panic!("variable without a query: {variable}"));
    let pattern =
        Regex::new(r"^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$").expect("valid regex");
    let captures = pattern
        .captures(query)
        .unwrap_or_else(|| panic!("not label_values(selector, label): {query}"));
    (captures[1].trim().to_owned(), captures[2].to_owned())
}

fn substitute(expr: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = expr.to_owned();
    for interval in INTERVALS {
        out = out.replace(interval, "1m");
    }
    for (name, value) in values {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// The metric names an expression selects: identifiers outside strings, label matchers,
/// ranges and grouping clauses that are neither functions nor keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 13] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    ];
    let strings = Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("valid regex");
    let matchers = Regex::new(r"\{[^}]*\}").expect("valid regex");
    let ranges = Regex::new(r"\[[^\]]*\]").expect("valid regex");
    let grouping = Regex::new(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
        .expect("valid regex");
    let token = Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*|[0-9][A-Za-z0-9_.]*").expect("valid regex");
    let text = strings.replace_all(expr, " ");
    let text = matchers.replace_all(&text, " ");
    let text = ranges.replace_all(&text, " ");
    let text = grouping.replace_all(&text, " ");
    token
        .find_iter(&text)
        .filter(|word| {
            let word_text = word.as_str();
            let is_call = text
                .get(word.end()..)
                .unwrap_or_default()
                .trim_start()
                .starts_with('(');
            !word_text.starts_with(|c: char| c.is_ascii_digit())
                && !is_call
                && !KEYWORDS.contains(&word_text)
        })
        .map(|word| word.as_str().to_owned())
        .collect()
}

#[test]
fn metric_names_finds_selected_metrics_only() {
    let expr = r#"histogram_quantile(0.9, sum by (le, channel) (rate(lookout_delivery_latency_seconds_bucket{job="$job", channel=~"a|b"}[1m]))) or on (channel) 0 * lookout_outbox_pending offset 5m > bool 1 and instance:shop_business_health:score"#;
    let names: Vec<String> = metric_names(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "instance:shop_business_health:score",
            "lookout_delivery_latency_seconds_bucket",
            "lookout_outbox_pending",
        ]
    );
}

#[test]
fn every_panel_and_variable_uses_the_datasource_variable() {
    let mut uids = BTreeSet::new();
    for name in DASHBOARDS {
        let board = dashboard(name);
        let at = |what: &str| format!("{name}.json: {what}");
        assert!(
            board["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{}",
            at("title")
        );
        let uid = board["uid"].as_str().unwrap_or_default().to_owned();
        assert!(!uid.is_empty() && uids.insert(uid), "{}", at("unique uid"));
        let schema = board["schemaVersion"].as_i64().unwrap_or_default();
        assert!(
            (36..=41).contains(&schema),
            "{}",
            at(&format!("schemaVersion {schema}"))
        );

        let vars = variables(&board);
        let datasource = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{}", at("no `datasource` variable")));
        assert_eq!(
            datasource["type"],
            "datasource",
            "{}",
            at("datasource variable type")
        );
        assert_eq!(
            datasource["query"],
            "prometheus",
            "{}",
            at("datasource variable plugin")
        );
        for variable in vars.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                variable["datasource"],
                datasource_ref(),
                "{}",
                at(&format!("variable {}", variable["name"]))
            );
            label_values(variable);
        }

        let all = panels(&board);
        assert!(
            all.len() >= 15,
            "{}",
            at(&format!("only {} panels", all.len()))
        );
        let mut ids = BTreeSet::new();
        for panel in all {
            let title = panel["title"].as_str().unwrap_or_default();
            let at_panel = |what: &str| at(&format!("panel {title:?}: {what}"));
            assert!(!title.is_empty(), "{}", at_panel("no title"));
            assert!(
                ids.insert(panel["id"].as_i64()),
                "{}",
                at_panel("duplicate id")
            );
            assert_eq!(
                panel["datasource"],
                datasource_ref(),
                "{}",
                at_panel("datasource")
            );
            let unit = panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default();
            assert!(!unit.is_empty(), "{}", at_panel("no unit"));
            let grid = &panel["gridPos"];
            let (x, w) = (
                grid["x"].as_i64().unwrap_or(-1),
                grid["w"].as_i64().unwrap_or(0),
            );
            assert!(x >= 0 && w > 0 && x + w <= 24, "{}", at_panel("gridPos"));
            let targets = panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert!(!targets.is_empty(), "{}", at_panel("no targets"));
            for target in targets {
                assert_eq!(
                    target["datasource"],
                    datasource_ref(),
                    "{}",
                    at_panel("target datasource")
                );
                let expr = target["expr"].as_str().unwrap_or_default();
                assert!(!expr.trim().is_empty(), "{}", at_panel("empty expr"));
            }
        }
    }
}

/// The `ALERTS` annotations of `board`: (severity, expr).
fn alert_annotations(board: &Value) -> Vec<(String, String)> {
    let severity = Regex::new(r#"severity="([a-z]+)""#).expect("valid regex");
    board["annotations"]["list"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|annotation| annotation["builtIn"] != 1)
        .map(|annotation| {
            assert_eq!(annotation["datasource"], datasource_ref(), "{annotation}");
            let expr = annotation["expr"].as_str().unwrap_or_default().to_owned();
            let level = severity
                .captures(&expr)
                .map(|c| c[1].to_owned())
                .unwrap_or_default();
            (level, expr)
        })
        .collect()
}

#[test]
fn every_dashboard_marks_firing_alerts_with_one_toggle_per_severity() {
    for name in DASHBOARDS {
        let board = dashboard(name);
        let annotations = alert_annotations(&board);
        let levels: Vec<&str> = annotations.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            levels, SEVERITIES,
            "{name}.json: one ALERTS annotation per severity"
        );
        for (level, expr) in &annotations {
            assert!(
                expr.starts_with("ALERTS{") && expr.contains(r#"alertstate="firing""#),
                "{name}.json {level}: {expr}"
            );
        }
    }
}

#[test]
fn the_business_variables_come_from_lookout_build_info() {
    let board = dashboard("business");
    for variable in variables(&board).iter().filter(|v| v["type"] == "query") {
        let (selector, _) = label_values(variable);
        assert!(
            selector.starts_with("lookout_build_info"),
            "variable {}: {selector}",
            variable["name"]
        );
    }
}

#[test]
fn the_business_dashboard_shows_the_group_buy_success_rate() {
    // Seed 001: filled ÷ all group buys that closed, from the query every shop config has.
    let board = dashboard("business");
    let panel = panels(&board)
        .into_iter()
        .find(|panel| {
            panel["title"]
                .as_str()
                .is_some_and(|t| t.contains("拼团成功率"))
        })
        .expect("a group-buy success rate panel");
    assert_eq!(panel["fieldConfig"]["defaults"]["unit"], "percentunit");
    let expr = panel["targets"][0]["expr"].as_str().unwrap_or_default();
    let compact: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        compact,
        r#"sum(shop_group_buys_closed_7d{job="$job", instance="$instance", status="success"}) / sum(shop_group_buys_closed_7d{job="$job", instance="$instance"})"#
    );
    for config in [
        "src/demo/demo.yaml",
        "examples/shop/lookout.yaml",
        "examples/shop/lookout-postgres.yaml",
    ] {
        let text = std::fs::read_to_string(root().join(config)).expect("read config");
        assert!(
            text.contains("name: shop_group_buys_closed_7d,"),
            "{config} defines shop_group_buys_closed_7d"
        );
    }
}

#[test]
fn the_fullest_partition_skips_read_only_mounts_like_the_alert() {
    let alert = std::fs::read_to_string(root().join("rules/host.yml")).expect("read host.yml");
    assert!(alert.contains(r#"and node_filesystem_readonly{job=~"lookout.*"} == 0"#));
    let board = dashboard("host");
    let (title, expr) = queries(&board)
        .into_iter()
        .find(|(title, _)| title.contains("最满分区"))
        .expect("the fullest-partition panel");
    let compact: String = expr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        compact.contains(r#"and node_filesystem_readonly{job="$job", instance="$instance"} == 0"#),
        "{title}: {expr}"
    );
}

#[test]
fn provisioning_loads_the_dashboards_from_a_prometheus_datasource() {
    let read = |path: &str| {
        let text = std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|error| panic!("read {path}: {error}"));
        marked_yaml::parse_yaml(0, &text).unwrap_or_else(|error| panic!("{path}: {error}"))
    };
    let datasources = read("grafana/provisioning/datasources/prometheus.yml");
    let list = datasources
        .as_mapping()
        .and_then(|m| m.get_sequence("datasources"))
        .expect("datasources: [...]");
    let prometheus = list
        .iter()
        .filter_map(|node| node.as_mapping())
        .find(|ds| {
            ds.get_scalar("type")
                .is_some_and(|t| t.as_str() == "prometheus")
        })
        .expect("a prometheus datasource");
    assert!(
        prometheus
            .get_scalar("url")
            .is_some_and(|u| u.as_str().starts_with("http"))
    );
    let alertmanager = list
        .iter()
        .filter_map(|node| node.as_mapping())
        .find(|ds| {
            ds.get_scalar("type")
                .is_some_and(|t| t.as_str() == "alertmanager")
        })
        .expect("an alertmanager datasource");
    assert_eq!(
        alertmanager
            .get_mapping("jsonData")
            .and_then(|data| data.get_scalar("implementation"))
            .map(|i| i.as_str()),
        Some("prometheus"),
        "Grafana talks to a Prometheus Alertmanager"
    );

    let dashboards = read("grafana/provisioning/dashboards/lookout.yml");
    let providers = dashboards
        .as_mapping()
        .and_then(|m| m.get_sequence("providers"))
        .expect("providers: [...]");
    let provider = providers.get_mapping(0).expect("one provider");
    assert_eq!(
        provider.get_scalar("type").map(|t| t.as_str()),
        Some("file")
    );
    let path = provider
        .get_mapping("options")
        .and_then(|o| o.get_scalar("path"))
        .map(|p| p.as_str().to_owned())
        .expect("options.path");
    assert!(path.starts_with('/'), "{path}");
}

fn rule_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .expect("read rules/")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

fn post_payload(lookout: &Lookout, file: &str) {
    let body = std::fs::read(root().join("examples/payloads").join(file)).expect("read payload");
    let response = http_request(
        "POST",
        &lookout.url("/alertmanager/critical"),
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("POST the payload");
    assert_eq!(response.status, 200, "{file}: {}", response.text());
}

/// Each variable's first value, resolving them in order (later selectors use earlier
/// variables).
fn resolve_variables(
    prometheus: &Prometheus,
    board: &Value,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for variable in variables(board).iter().filter(|v| v["type"] == "query") {
        let name = variable["name"].as_str().unwrap_or_default().to_owned();
        let (selector, label) = label_values(variable);
        let selector = substitute(&selector, &values);
        let series = prometheus.api(&format!("series?match[]={}", percent_encode(&selector)));
        let mut found: Vec<String> = series
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s[&label].as_str().map(str::to_owned))
            .collect();
        found.sort();
        let first = found
            .into_iter()
            .next()
            .ok_or_else(|| format!("variable {name}: no `{label}` in {selector}"))?;
        values.insert(name, first);
    }
    Ok(values)
}

#[test]
fn every_panel_query_returns_data_from_prometheus_scraping_the_demo() {
    if require_binary("prometheus").is_none() {
        return;
    }
    let started = Instant::now();
    let lookout = Lookout::start_with_args(HOST_ONLY_CONFIG, &["demo"]);
    // Relay series: a notification (twice, so the duplicate counter exists too).
    post_payload(&lookout, "firing.json");
    post_payload(&lookout, "firing.json");

    let Some(prometheus) = prometheus_scraping(&lookout) else {
        return;
    };
    // A second notification once Prometheus scrapes, so the relay counters and the
    // latency histogram move within the rate windows.
    poll_until(
        Duration::from_secs(20),
        "the first scrapes",
        || match prometheus
            .query_vector("count_over_time(lookout_build_info[1m])")
            .first()
        {
            Some((_, n)) if *n >= 3.0 => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    post_payload(&lookout, "resolved.json");

    let boards: Vec<(&str, Value)> = DEMO_DASHBOARDS
        .iter()
        .map(|name| (*name, dashboard(name)))
        .collect();
    let total = assert_queries_answer(&prometheus, &boards, |_| false);
    assert!(total >= 80, "only {total} queries");

    // The alerting and recording rules evaluate over the demo's real series.
    let rules = rule_health(&prometheus);
    assert!(rules.len() >= 25, "only {} rules loaded", rules.len());
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|(_, health, _)| health != "ok")
        .map(|(name, health, error)| format!("{name} {health}: {error}"))
        .collect();
    assert!(
        unhealthy.is_empty(),
        "rules failing over the demo:\n{}",
        unhealthy.join("\n")
    );
    let score = prometheus.query_vector("instance:shop_business_health:score");
    assert!(
        score.len() == 1 && (0.0..=100.0).contains(&score[0].1),
        "health score over the demo: {score:?}"
    );
    eprintln!(
        "{total} panel queries answered; {} rules healthy; {:.1?} in all",
        rules.len(),
        started.elapsed()
    );
}

/// Waits until every panel query of `boards` returns data (a query whose metrics are all
/// `may_be_empty` only has to parse), checks the annotations' queries parse and that every
/// metric a query selects is one Prometheus has (or `may_be_empty`); returns the number
/// of queries.
fn assert_queries_answer(
    prometheus: &Prometheus,
    boards: &[(&str, Value)],
    may_be_empty: impl Fn(&str) -> bool,
) -> usize {
    let total: usize = boards.iter().map(|(_, board)| queries(board).len()).sum();
    poll_until(
        Duration::from_secs(45),
        "every panel query to return data",
        || {
            let mut empty = Vec::new();
            for (name, board) in boards {
                let values = resolve_variables(prometheus, board)?;
                for (title, expr) in queries(board) {
                    let expr = substitute(&expr, &values);
                    assert!(
                        !expr.contains('$'),
                        "{name}.json {title:?}: unresolved variable in {expr}"
                    );
                    // `query` panics on a parse error: those never get better by waiting.
                    let data = prometheus.query(&expr);
                    let results = data["result"].as_array().map_or(0, Vec::len);
                    let optional = metric_names(&expr).iter().all(|m| may_be_empty(m));
                    if results == 0 && !optional {
                        empty.push(format!("{name}.json {title:?}: {expr}"));
                    }
                }
            }
            if empty.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{} of {total} queries empty:\n{}",
                    empty.len(),
                    empty.join("\n")
                ))
            }
        },
    );

    // The annotations' queries parse (ALERTS may be empty: `query` panics on an error).
    for (_, board) in boards {
        let values = resolve_variables(prometheus, board).expect("variables resolved above");
        for (_, expr) in alert_annotations(board) {
            prometheus.query(&substitute(&expr, &values));
        }
    }

    // Every metric a query selects is one Prometheus has from lookout (or a recording
    // rule over them).
    let known: BTreeSet<String> = prometheus
        .api("label/__name__/values")
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    let mut unknown = Vec::new();
    for (name, board) in boards {
        for (title, expr) in queries(board) {
            for metric in metric_names(&expr) {
                if !known.contains(&metric) && !may_be_empty(&metric) {
                    unknown.push(format!("{name}.json {title:?}: {metric}"));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics lookout does not export:\n{}",
        unknown.join("\n")
    );
    total
}

/// The rules Prometheus loaded, each as (name, health, last error).
fn rule_health(prometheus: &Prometheus) -> Vec<(String, String, String)> {
    let groups = prometheus.api("rules");
    groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| {
            group["rules"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .map(|rule| {
            let text = |key: &str| rule[key].as_str().unwrap_or_default().to_owned();
            (text("name"), text("health"), text("lastError"))
        })
        .collect()
}

/// A Prometheus scraping `lookout` every second with `rules/*.yml` loaded.
fn prometheus_scraping(lookout: &Lookout) -> Option<Prometheus> {
    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n",
    );
    for file in rule_files() {
        config.push_str(&format!("  - '{}'\n", file.display()));
    }
    config.push_str(&format!(
        "scrape_configs:\n  - job_name: lookout\n    static_configs:\n      - targets: ['{}']\n",
        lookout.addr()
    ));
    Prometheus::start(&config)
}

/// Metrics only a replica (MySQL), or a primary with standbys or replication slots
/// (PostgreSQL), has: the CI servers are neither.
fn replica_only(metric: &str) -> bool {
    [
        "mysql_slave_status_",
        "pg_replication_slots_",
        "pg_stat_replication_",
    ]
    .iter()
    .any(|prefix| metric.starts_with(prefix))
}

#[test]
fn the_database_dashboard_answers_from_prometheus_scraping_the_packs() {
    if require_binary("prometheus").is_none() {
        return;
    }
    let config = format!(
        "host: {{ enabled: false }}
databases:
  shop_mysql: {{ url: 'mysql://{USER}@127.0.0.1:3306/', password: '{PASSWORD}', collect: [mysql], collect_interval: 1s }}
  shop_pg: {{ url: 'postgres://{USER}@127.0.0.1:5432/postgres', password: '{PASSWORD}', collect: [postgres], collect_interval: 1s }}
"
    );
    let lookout = Lookout::start(&config);
    let Some(prometheus) = prometheus_scraping(&lookout) else {
        return;
    };
    poll_until(Duration::from_secs(20), "the packs scraped", || {
        let up = prometheus.query_vector(
            "count_over_time(mysql_up[1m]) + on() group_left count_over_time(pg_up[1m])",
        );
        match up.first() {
            Some((_, n)) if *n >= 6.0 => Ok(()),
            other => Err(format!("{other:?}\n{}", lookout.logs())),
        }
    });
    let boards = [("database", dashboard("database"))];
    let total = assert_queries_answer(&prometheus, &boards, replica_only);
    assert!(total >= 40, "only {total} queries");
    let unhealthy: Vec<String> = rule_health(&prometheus)
        .into_iter()
        .filter(|(_, health, _)| health != "ok")
        .map(|(name, health, error)| format!("{name} {health}: {error}"))
        .collect();
    assert!(
        unhealthy.is_empty(),
        "rules failing over the packs:\n{}",
        unhealthy.join("\n")
    );
    eprintln!("database dashboard: {total} panel queries answered");
}
