//! Raw → validated configuration in one pure step that returns every error at once.
//!
//! The only outside access is the `read_file` function it is handed for `*_file`
//! secrets, so tests can validate without touching the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::raw::{self, RawConfig};
use super::{
    Channel, Config, DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, Database,
    DatabaseKind, Diagnostic, HostConfig, InboundAuth, LogConfig, LogFormat, MetricKind,
    MetricSpec, OutboxLocation, Pack, Query, Receiver, RelayConfig, Retention, WebConfig,
};
use crate::channel::RawChannel;
use crate::configfile::yaml::Positions;
use crate::configfile::{Checker, bounds, join, secret};

/// The default listen address (SPEC §1).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9788";

/// Validates `raw`. `read_file` reads `*_file` secrets.
pub fn validate(
    raw: &RawConfig,
    positions: &Positions,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Config, Vec<Diagnostic>> {
    let mut check = Checker::new(positions, read_file);
    let config = check.config(raw);
    let errors = check.finish();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

impl Checker<'_> {
    fn config(&mut self, raw: &RawConfig) -> Config {
        let databases = raw
            .databases
            .iter()
            .filter_map(|(name, db)| Some((name.clone(), self.database(name, db)?)))
            .collect::<BTreeMap<_, _>>();
        let queries = self.queries(&raw.queries, &databases);
        let channels = raw
            .channels
            .iter()
            .filter_map(|(name, ch)| Some((name.clone(), Channel::validate(name, ch, self)?)))
            .collect::<BTreeMap<_, _>>();
        let receivers = self.receivers(&raw.receivers, &raw.channels);
        let web = self.web(&raw.web);
        if web.external_url.is_none()
            && let Some(name) = receivers
                .iter()
                .find(|(_, r)| !r.escalate.is_empty())
                .map(|(n, _)| n)
        {
            self.error(
                &join(&join("receivers", name), "escalate"),
                "an escalating receiver needs `web.external_url` (the base of its ack links)",
            );
        }
        Config {
            source: None,
            listen: self.listen(raw.top.listen.as_deref()),
            timezone: self.timezone(raw.top.timezone.as_deref()),
            state_dir: PathBuf::from(raw.top.state_dir.as_deref().unwrap_or("./lookout-data")),
            log: self.log(&raw.log),
            web,
            host: self.host(&raw.host),
            databases,
            queries,
            channels,
            relay: self.relay(&raw.relay),
            receivers,
        }
    }

    fn relay(&mut self, raw: &raw::RawRelay) -> RelayConfig {
        let dedupe_window = self.duration_in(
            "relay.dedupe_window",
            raw.dedupe_window.as_deref(),
            Duration::from_secs(600),
            bounds::DEDUPE_WINDOW,
        );
        let outbox = self.outbox(raw);
        let shared = matches!(outbox, OutboxLocation::Shared(_));
        RelayConfig {
            outbox,
            dedupe_window,
            rate_limit_pause: self.duration_in(
                "relay.rate_limit_pause",
                raw.rate_limit_pause.as_deref(),
                Duration::from_secs(600),
                bounds::RATE_LIMIT_PAUSE,
            ),
            retention: self.retention(raw.retention.as_ref(), dedupe_window, shared),
        }
    }

    /// `relay.retention`: a week for delivered rows, a month for dead letters, 256 MiB.
    /// Both ages must cover the dedupe window, which finds duplicates among kept rows.
    /// A shared outbox has no size bound: its database's size is the DBA's, and a server
    /// database does not give freed space back for a bound to measure.
    fn retention(
        &mut self,
        raw: Option<&raw::RawRetention>,
        dedupe_window: Duration,
        shared: bool,
    ) -> Retention {
        let day = Duration::from_secs(86_400);
        let mut age = |key: &str, value: Option<&str>, default: Duration| {
            let path = format!("relay.retention.{key}");
            let age = self.duration_in(&path, value, default, bounds::RETENTION_AGE);
            if age < dedupe_window {
                self.error(
                    &path,
                    format!(
                        "must be at least relay.dedupe_window ({}): duplicates are found among the kept rows",
                        humantime::format_duration(dedupe_window)
                    ),
                );
                return default.max(dedupe_window);
            }
            age
        };
        let delivered = age(
            "delivered",
            raw.and_then(|r| r.delivered.as_deref()),
            7 * day,
        );
        let dead = age("dead", raw.and_then(|r| r.dead.as_deref()), 30 * day);
        let raw_max = raw.and_then(|r| r.max_bytes.as_deref());
        if shared && raw_max.is_some() {
            self.error(
                "relay.retention.max_bytes",
                "bounds the SQLite outbox only; a shared outbox is bounded by the ages `delivered` and `dead`",
            );
        }
        let max_bytes = self.bytes(
            "relay.retention.max_bytes",
            raw_max,
            256 * 1024 * 1024,
            &bounds::RETENTION_BYTES,
        );
        Retention {
            delivered,
            dead,
            max_bytes: (!shared).then(|| u64::try_from(max_bytes).unwrap_or(u64::MAX)),
        }
    }

    fn listen(&mut self, value: Option<&str>) -> std::net::SocketAddr {
        let text = value.unwrap_or(DEFAULT_LISTEN);
        parse_listen(text).unwrap_or_else(|message| {
            self.error("listen", message);
            parse_listen(DEFAULT_LISTEN).unwrap_or_else(|_| unreachable!("default listen parses"))
        })
    }

    fn timezone(&mut self, value: Option<&str>) -> chrono_tz::Tz {
        let text = value.unwrap_or("Asia/Shanghai");
        chrono_tz::Tz::from_str(text).unwrap_or_else(|_| {
            self.error(
                "timezone",
                format!("unknown time zone `{text}` (use an IANA name such as Asia/Shanghai)"),
            );
            chrono_tz::Asia::Shanghai
        })
    }

    fn log(&mut self, raw: &raw::RawLog) -> LogConfig {
        let level = raw.level.clone().unwrap_or_else(|| "info".to_owned());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&level) {
            self.error("log.level", format!("invalid log level `{level}`: {error}"));
        }
        let format = match raw.format.as_deref().map(LogFormat::from_str) {
            None => LogFormat::Logfmt,
            Some(Ok(format)) => format,
            Some(Err(message)) => {
                self.error("log.format", message);
                LogFormat::Logfmt
            }
        };
        LogConfig { level, format }
    }

    fn web(&mut self, raw: &raw::RawWeb) -> WebConfig {
        let auth = raw.auth.as_ref().and_then(|auth| self.auth(auth));
        let metrics_auth = raw.metrics_auth.unwrap_or(false);
        if metrics_auth && auth.is_none() {
            self.error("web.metrics_auth", "`metrics_auth: true` needs `web.auth`");
        }
        WebConfig {
            auth,
            metrics_auth,
            max_body_bytes: self.bytes(
                "web.max_body_bytes",
                raw.max_body_bytes.as_deref(),
                1024 * 1024,
                &bounds::BODY_BYTES,
            ),
            header_read_timeout: self.duration_in(
                "web.header_read_timeout",
                raw.header_read_timeout.as_deref(),
                Duration::from_secs(10),
                bounds::WEB_TIMEOUT,
            ),
            body_read_timeout: self.duration_in(
                "web.body_read_timeout",
                raw.body_read_timeout.as_deref(),
                Duration::from_secs(30),
                bounds::WEB_TIMEOUT,
            ),
            idle_timeout: self.duration_in(
                "web.idle_timeout",
                raw.idle_timeout.as_deref(),
                Duration::from_secs(90),
                bounds::WEB_TIMEOUT,
            ),
            max_connections: match raw.max_connections {
                None => 512,
                Some(cap) => {
                    self.number("web.max_connections", &bounds::WEB_CONNECTIONS, cap);
                    if bounds::WEB_CONNECTIONS.contains(&cap) {
                        cap as usize
                    } else {
                        512
                    }
                }
            },
            shutdown_timeout: self.duration_in(
                "web.shutdown_timeout",
                raw.shutdown_timeout.as_deref(),
                Duration::from_secs(20),
                bounds::SHUTDOWN_TIMEOUT,
            ),
            tls: raw.tls.as_ref().and_then(|tls| self.web_tls(tls)),
            external_url: self.external_url(raw.external_url.as_deref()),
        }
    }

    fn auth(&mut self, raw: &raw::RawAuth) -> Option<InboundAuth> {
        let bearer = self.secret(
            "web.auth",
            "bearer_token",
            raw.bearer_token.as_ref(),
            raw.bearer_token_file.as_ref(),
        );
        let basic = raw.basic_auth.as_ref().and_then(|basic| {
            let username = basic.username.clone().unwrap_or_default();
            if username.is_empty() {
                self.error("web.auth.basic_auth.username", "missing key `username`");
            }
            let password = self.secret(
                "web.auth.basic_auth",
                "password",
                basic.password.as_ref(),
                basic.password_file.as_ref(),
            );
            if password.is_none() {
                self.error(
                    "web.auth.basic_auth",
                    "missing key `password` or `password_file`",
                );
            }
            Some(InboundAuth::Basic {
                username,
                password: password?,
            })
        });
        match (bearer, basic) {
            (Some(_), Some(_)) => {
                self.error(
                    "web.auth",
                    "set either a bearer token or `basic_auth`, not both",
                );
                None
            }
            (Some(token), None) => Some(InboundAuth::Bearer(token)),
            (None, basic) => {
                if basic.is_none() && raw.basic_auth.is_none() {
                    self.error(
                        "web.auth",
                        "missing `bearer_token`, `bearer_token_file` or `basic_auth`",
                    );
                }
                basic
            }
        }
    }

    fn host(&mut self, raw: &raw::RawHost) -> HostConfig {
        let fs = raw.filesystem.as_ref();
        let (collectors, mut problems) = super::host::collectors(raw.collectors.as_ref());
        let (textfile_directory, more) =
            super::host::textfile_directory(raw.textfile_directory.as_deref());
        problems.extend(more);
        let (paths, more) = super::host::paths(
            raw.rootfs.as_deref(),
            raw.procfs.as_deref(),
            raw.sysfs.as_deref(),
        );
        problems.extend(more);
        for (path, message) in problems {
            self.error(&path, message);
        }
        HostConfig {
            collectors,
            textfile_directory,
            paths,
            enabled: raw.enabled.unwrap_or(true),
            max_age: self.duration_in(
                "host.max_age",
                raw.max_age.as_deref(),
                Duration::from_secs(1),
                bounds::HOST_MAX_AGE,
            ),
            mount_points_exclude: self.regex(
                "host.filesystem.mount_points_exclude",
                fs.and_then(|f| f.mount_points_exclude.as_deref())
                    .unwrap_or(DEFAULT_MOUNT_POINTS_EXCLUDE),
            ),
            fs_types_exclude: self.regex(
                "host.filesystem.fs_types_exclude",
                fs.and_then(|f| f.fs_types_exclude.as_deref())
                    .unwrap_or(DEFAULT_FS_TYPES_EXCLUDE),
            ),
            mount_timeout: self.duration_in(
                "host.filesystem.mount_timeout",
                fs.and_then(|f| f.mount_timeout.as_deref()),
                Duration::from_secs(1),
                bounds::MOUNT_TIMEOUT,
            ),
        }
    }

    fn database(&mut self, name: &str, raw: &raw::RawDatabase) -> Option<Database> {
        let path = join("databases", name);
        let url = self.required(&path, "url", raw.url.as_deref())?.to_owned();
        let kind = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("mysql" | "mariadb") => DatabaseKind::Mysql,
            Some("postgres" | "postgresql") => DatabaseKind::Postgres,
            Some("sqlite") => DatabaseKind::Sqlite,
            _ => {
                self.error(
                    &join(&path, "url"),
                    "unsupported database URL (expected mysql://, postgres:// or sqlite://)",
                );
                return None;
            }
        };
        if secret::redact_url(&url) != url {
            self.error(
                &join(&path, "url"),
                "the URL carries a password; move it to `password` or `password_file`",
            );
        }
        let password = self.secret(
            &path,
            "password",
            raw.password.as_ref(),
            raw.password_file.as_ref(),
        );
        let (url, tls) = self.database_tls(&path, kind, &url, raw.tls.as_ref());
        let max_connections = raw.max_connections.unwrap_or(2);
        self.number(
            &join(&path, "max_connections"),
            &bounds::MAX_CONNECTIONS,
            max_connections,
        );
        let collect = self.packs(&path, kind, raw.collect.as_deref().unwrap_or_default());
        Some(Database {
            kind,
            url,
            password,
            tls,
            max_connections,
            connect_timeout: self.duration_in(
                &join(&path, "connect_timeout"),
                raw.connect_timeout.as_deref(),
                Duration::from_secs(5),
                bounds::CONNECT_TIMEOUT,
            ),
            collect,
            collect_interval: self.duration_in(
                &join(&path, "collect_interval"),
                raw.collect_interval.as_deref(),
                Duration::from_secs(15),
                bounds::COLLECT_INTERVAL,
            ),
        })
    }

    /// `databases.<name>.collect`: each pack once, and only on its own engine.
    fn packs(&mut self, path: &str, kind: DatabaseKind, names: &[String]) -> Vec<Pack> {
        let path = join(path, "collect");
        let mut packs = Vec::new();
        for name in names {
            let pack = match name.as_str() {
                "mysql" => Pack::Mysql,
                "postgres" => Pack::Postgres,
                other => {
                    self.error(
                        &path,
                        format!("unknown pack `{other}` (expected mysql or postgres)"),
                    );
                    continue;
                }
            };
            let fits = matches!(
                (pack, kind),
                (Pack::Mysql, DatabaseKind::Mysql) | (Pack::Postgres, DatabaseKind::Postgres)
            );
            if !fits {
                let engine = match kind {
                    DatabaseKind::Mysql => "a MySQL/MariaDB database",
                    DatabaseKind::Postgres => "a PostgreSQL database",
                    DatabaseKind::Sqlite => "SQLite (which has no pack)",
                };
                self.error(
                    &path,
                    format!("the `{name}` pack cannot collect from {engine}"),
                );
            } else if packs.contains(&pack) {
                self.error(&path, format!("`{name}` is listed twice"));
            } else {
                packs.push(pack);
            }
        }
        packs
    }

    fn queries(
        &mut self,
        raw: &[raw::RawQuery],
        databases: &BTreeMap<String, Database>,
    ) -> Vec<Query> {
        let mut names = BTreeSet::new();
        // metric name → (label set, query path) of its first definition
        let mut metric_labels: BTreeMap<String, (BTreeSet<String>, String)> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, q) in raw.iter().enumerate() {
            let path = format!("queries[{i}]");
            let Some(name) = self.required(&path, "name", q.name.as_deref()) else {
                continue;
            };
            if !is_label_name(name) {
                self.error(
                    &join(&path, "name"),
                    format!("query name `{name}` must match [a-zA-Z_][a-zA-Z0-9_]*"),
                );
            }
            if !names.insert(name.to_owned()) {
                self.error(
                    &join(&path, "name"),
                    format!("duplicate query name `{name}`"),
                );
            }
            let database = q.database.clone().unwrap_or_default();
            if !databases.contains_key(&database) {
                let known = databases.keys().cloned().collect::<Vec<_>>().join(", ");
                self.error(
                    &join(&path, "database"),
                    format!("unknown database `{database}` (defined: {known})"),
                );
            }
            let interval = self.duration_in(
                &join(&path, "interval"),
                q.interval.as_deref(),
                Duration::from_secs(60),
                bounds::QUERY_INTERVAL,
            );
            let timeout = self.duration_in(
                &join(&path, "timeout"),
                q.timeout.as_deref(),
                Duration::from_secs(10).min(interval),
                bounds::QUERY_TIMEOUT,
            );
            if timeout > interval {
                self.error(&join(&path, "timeout"), "must not exceed the interval");
            }
            let stale_after = self.duration_in(
                &join(&path, "stale_after"),
                q.stale_after.as_deref(),
                interval.saturating_mul(3),
                bounds::STALE_AFTER,
            );
            if stale_after < interval {
                self.error(&join(&path, "stale_after"), "must be at least the interval");
            }
            let sql = self
                .required(&path, "sql", q.sql.as_deref())
                .unwrap_or_default()
                .to_owned();
            let const_labels = q.const_labels.clone().unwrap_or_default();
            self.label_names(&join(&path, "const_labels"), const_labels.keys());
            if q.metrics.is_empty() {
                self.error(&join(&path, "metrics"), "a query needs at least one metric");
            }
            let mut metrics = Vec::new();
            for (j, m) in q.metrics.iter().enumerate() {
                let mpath = format!("{path}.metrics[{j}]");
                if let Some(metric) = self.metric(&mpath, m) {
                    let mut all: BTreeSet<String> = metric.labels.iter().cloned().collect();
                    all.extend(metric.const_labels.keys().cloned());
                    all.extend(const_labels.keys().cloned());
                    match metric_labels.get(&metric.name) {
                        Some((labels, first)) if *labels != all => self.error(
                            &join(&mpath, "name"),
                            format!(
                                "metric `{}` is also defined at {first} with different labels",
                                metric.name
                            ),
                        ),
                        Some(_) => {}
                        None => {
                            metric_labels.insert(metric.name.clone(), (all, mpath.clone()));
                        }
                    }
                    metrics.push(metric);
                }
            }
            let max_series = q.max_series.unwrap_or(1000);
            self.number(&join(&path, "max_series"), &bounds::MAX_SERIES, max_series);
            out.push(Query {
                name: name.to_owned(),
                database,
                interval,
                timeout,
                stale_after,
                max_series,
                const_labels,
                sql,
                metrics,
            });
        }
        out
    }

    fn metric(&mut self, path: &str, raw: &raw::RawMetric) -> Option<MetricSpec> {
        let name = self.required(path, "name", raw.name.as_deref())?.to_owned();
        if !is_metric_name(&name) {
            self.error(
                &join(path, "name"),
                format!("metric name `{name}` must match [a-zA-Z_:][a-zA-Z0-9_:]*"),
            );
        } else if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
            self.error(
                &join(path, "name"),
                format!("metric names starting with `{prefix}` are lookout's own"),
            );
        }
        let kind = match raw.kind.as_deref() {
            None | Some("gauge") => MetricKind::Gauge,
            Some("counter") => MetricKind::Counter,
            Some(other) => {
                self.error(
                    &join(path, "type"),
                    format!("unknown metric type `{other}` (expected gauge or counter)"),
                );
                MetricKind::Gauge
            }
        };
        self.label_names(&join(path, "labels"), raw.labels.iter());
        let const_labels = raw.const_labels.clone().unwrap_or_default();
        self.label_names(&join(path, "const_labels"), const_labels.keys());
        let value = self
            .required(path, "value", raw.value.as_deref())?
            .to_owned();
        Some(MetricSpec {
            help: raw
                .help
                .clone()
                .unwrap_or_else(|| format!("{name} (from SQL)")),
            name,
            kind,
            labels: raw.labels.clone(),
            value,
            const_labels,
        })
    }

    fn label_names<'s>(&mut self, path: &str, names: impl Iterator<Item = &'s String>) {
        let mut seen = BTreeSet::new();
        for name in names {
            if !is_label_name(name) || name.starts_with("__") {
                self.error(path, format!("label name `{name}` must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __"));
            } else if RESERVED_LABELS.contains(&name.as_str()) {
                self.error(path, format!("label name `{name}` is reserved"));
            }
            if !seen.insert(name) {
                self.error(path, format!("label `{name}` given twice"));
            }
        }
    }

    fn receivers(
        &mut self,
        raw: &BTreeMap<String, raw::RawReceiver>,
        channels: &BTreeMap<String, RawChannel>,
    ) -> BTreeMap<String, Receiver> {
        let mut out = BTreeMap::new();
        for (name, receiver) in raw {
            let path = join("receivers", name);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                self.error(&path, format!("receiver name `{name}` must use only letters, digits, `-`, `_` and `.` (it is a URL path segment)"));
            }
            if receiver.channels.is_empty() {
                self.error(
                    &join(&path, "channels"),
                    "a receiver needs at least one channel",
                );
            }
            for channel in &receiver.channels {
                if !channels.contains_key(channel) {
                    self.error(
                        &join(&path, "channels"),
                        format!("unknown channel `{channel}`"),
                    );
                }
            }
            let escalate = self.escalation(&path, &receiver.escalate, channels);
            out.insert(
                name.clone(),
                Receiver {
                    channels: receiver.channels.clone(),
                    escalate,
                },
            );
        }
        out
    }
}

/// Metric name prefixes lookout exports itself.
const RESERVED_PREFIXES: &[&str] = &["lookout_", "process_", "node_"];

/// Label names that Prometheus gives a meaning of its own.
const RESERVED_LABELS: &[&str] = &["le", "quantile"];

/// `0.0.0.0:9788`, `[::]:9788`, `127.0.0.1:0`, or `:9788` for every interface.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse().map_err(|_| {
        format!("invalid listen address `{text}` (expected host:port, e.g. 0.0.0.0:9788)")
    })
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests;
