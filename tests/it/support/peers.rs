//! Guards for the Debian peers the tests compare against: `prometheus` (with a query
//! client for its HTTP API), `prometheus-node-exporter` and `prometheus-mysqld-exporter`.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::exposition::{Exposition, Labels};
use super::http::{http_get, percent_encode};
use super::process::ChildGuard;
use super::require_binary;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Prometheus with its own config and TSDB in a temp dir; killed when dropped.
pub(crate) struct Prometheus {
    process: ChildGuard,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping each `(job, target)` every second.
    /// `None` (after a skip note) when `prometheus` is not installed outside CI.
    pub(crate) fn scraping(targets: &[(&str, SocketAddr)]) -> Option<Prometheus> {
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n",
        );
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['{target}']\n"
            ));
        }
        Prometheus::start(&config)
    }

    /// Starts Prometheus with `config` as its configuration file.
    pub(crate) fn start(config: &str) -> Option<Prometheus> {
        Prometheus::start_with_args(config, &[])
    }

    /// Starts Prometheus with `config` and extra command-line flags (e.g.
    /// `--rules.alert.resend-delay=1s`), after the ones [`Prometheus::start`] passes.
    pub(crate) fn start_with_args(config: &str, extra_args: &[&str]) -> Option<Prometheus> {
        let binary = require_binary("prometheus")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus config");
        let process = ChildGuard::start(
            "prometheus",
            dir.path(),
            "/-/ready",
            READY_TIMEOUT,
            |addr| {
                // A fresh TSDB per attempt: a failed attempt may leave a lock behind.
                let tsdb = dir.path().join(format!("tsdb-{}", addr.port()));
                let mut command = Command::new(&binary);
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--log.level=warn")
                    .args(extra_args);
                command
            },
        );
        Some(Prometheus { process, dir })
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.process.addr())
    }

    /// Both logs, for panic messages.
    pub(crate) fn logs(&self) -> String {
        self.process.logs()
    }

    /// `GET /api/v1/<endpoint>`; returns `data` or panics with Prometheus' error.
    pub(crate) fn api(&self, endpoint_and_query: &str) -> Value {
        let url = format!("{}/api/v1/{endpoint_and_query}", self.base_url());
        let response =
            http_get(&url, &[]).unwrap_or_else(|error| panic!("GET {url} failed: {error}"));
        let json = response.json();
        if json["status"] != "success" {
            panic!("GET {url} answered {}: {json}", response.status);
        }
        json["data"].clone()
    }

    /// An instant query; returns `data` (`resultType` and `result`).
    pub(crate) fn query(&self, expr: &str) -> Value {
        self.api(&format!("query?query={}", percent_encode(expr)))
    }

    /// An instant query whose result is a vector: each element's labels and value.
    pub(crate) fn query_vector(&self, expr: &str) -> Vec<(Labels, f64)> {
        let data = self.query(expr);
        assert_eq!(
            data["resultType"], "vector",
            "{expr} is not a vector: {data}"
        );
        data["result"]
            .as_array()
            .expect("result is an array")
            .iter()
            .map(|element| {
                let labels = element["metric"]
                    .as_object()
                    .expect("metric is an object")
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap_or("").to_owned()))
                    .collect();
                let value = element["value"][1]
                    .as_str()
                    .and_then(|text| text.parse().ok())
                    .unwrap_or_else(|| panic!("bad sample value in {element}"));
                (labels, value)
            })
            .collect()
    }

    /// The active targets of `job` from `/api/v1/targets`.
    pub(crate) fn targets(&self, job: &str) -> Vec<Value> {
        let data = self.api("targets?state=active");
        data["activeTargets"]
            .as_array()
            .expect("activeTargets is an array")
            .iter()
            .filter(|target| target["labels"]["job"] == job)
            .cloned()
            .collect()
    }
}

/// A running `prometheus-node-exporter`; killed when dropped.
pub(crate) struct NodeExporter {
    process: ChildGuard,
    dir: TempDir,
}

impl NodeExporter {
    /// `None` (after a skip note) when it is not installed outside CI.
    pub(crate) fn start() -> Option<NodeExporter> {
        let binary = require_binary("prometheus-node-exporter")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let process = ChildGuard::start(
            "node_exporter",
            dir.path(),
            "/metrics",
            READY_TIMEOUT,
            |addr| {
                let mut command = Command::new(&binary);
                // The systemd collector fails without systemd.
                command
                    .arg("--no-collector.systemd")
                    .arg(format!("--web.listen-address={addr}"));
                command
            },
        );
        Some(NodeExporter { process, dir })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.process.addr()
    }

    pub(crate) fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.addr())
    }

    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// One scrape, parsed.
    pub(crate) fn scrape(&self) -> Exposition {
        scrape_text_004(&self.metrics_url(), "node_exporter")
    }
}

/// One text 0.0.4 scrape of an exporter at `url`, parsed; panics naming `what`.
fn scrape_text_004(url: &str, what: &str) -> Exposition {
    let response = http_get(url, &[("Accept", "text/plain;version=0.0.4")])
        .unwrap_or_else(|error| panic!("{what} does not answer: {error}"));
    assert_eq!(response.status, 200, "{what} /metrics");
    Exposition::parse(&response.text()).unwrap_or_else(|error| panic!("{what} output: {error}"))
}

/// A running database exporter with its default collectors, reading the server of a
/// `DATA_SOURCE_NAME`: Debian's `prometheus-mysqld-exporter` or
/// `prometheus-postgres-exporter`; killed when dropped.
pub(crate) struct DatabaseExporter {
    name: &'static str,
    process: ChildGuard,
    _dir: TempDir,
}

impl DatabaseExporter {
    /// mysqld_exporter on `dsn` (Go driver form, `user:password@(host:port)/`).
    /// `None` (after a skip note) when it is not installed outside CI.
    pub(crate) fn mysqld(dsn: &str) -> Option<DatabaseExporter> {
        Self::start("prometheus-mysqld-exporter", "mysqld_exporter", dsn)
    }

    /// postgres_exporter on `dsn` (`postgresql://user:password@host:port/db?sslmode=disable`).
    /// `None` (after a skip note) when it is not installed outside CI.
    pub(crate) fn postgres(dsn: &str) -> Option<DatabaseExporter> {
        Self::start("prometheus-postgres-exporter", "postgres_exporter", dsn)
    }

    fn start(binary: &str, name: &'static str, dsn: &str) -> Option<DatabaseExporter> {
        let binary = require_binary(binary)?;
        let dir = tempfile::tempdir().expect("temp dir");
        let process = ChildGuard::start(name, dir.path(), "/metrics", READY_TIMEOUT, |addr| {
            let mut command = Command::new(&binary);
            command
                .env("DATA_SOURCE_NAME", dsn)
                .arg(format!("--web.listen-address={addr}"));
            command
        });
        Some(DatabaseExporter {
            name,
            process,
            _dir: dir,
        })
    }

    /// One scrape, parsed.
    pub(crate) fn scrape(&self) -> Exposition {
        let url = format!("http://{}/metrics", self.process.addr());
        scrape_text_004(&url, self.name)
    }
}

/// A running Alertmanager (Debian `prometheus-alertmanager`), clustering off; killed when
/// dropped.
pub(crate) struct Alertmanager {
    process: ChildGuard,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` as its configuration file.
    /// `None` (after a skip note) when it is not installed outside CI.
    pub(crate) fn start(config: &str) -> Option<Alertmanager> {
        let binary = require_binary("prometheus-alertmanager")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("write alertmanager config");
        let process = ChildGuard::start(
            "alertmanager",
            dir.path(),
            "/-/ready",
            READY_TIMEOUT,
            |addr| {
                let data = dir.path().join(format!("data-{}", addr.port()));
                let mut command = Command::new(&binary);
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.path={}", data.display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--cluster.listen-address=")
                    .arg("--log.level=debug");
                command
            },
        );
        Some(Alertmanager { process, _dir: dir })
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.process.addr())
    }

    pub(crate) fn logs(&self) -> String {
        self.process.logs()
    }

    /// `POST /api/v2/alerts` with `alerts` (a JSON array).
    pub(crate) fn post_alerts(&self, alerts: &Value) {
        let url = format!("{}/api/v2/alerts", self.base_url());
        let body = alerts.to_string();
        let response = super::http::http_request(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .unwrap_or_else(|error| panic!("POST {url}: {error}"));
        assert_eq!(response.status, 200, "POST {url}: {}", response.text());
    }
}
