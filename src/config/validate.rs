//! Raw → validated configuration in one pure step that returns every error at once.
//!
//! The only outside access is the `read_file` function it is handed for `*_file`
//! secrets, so tests can validate without touching the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;

use self::bounds::Span;
use super::raw::{self, RawChannel, RawConfig};
use super::yaml::{Positions, join};
use super::{
    Channel, ChannelKind, Config, DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE, Database,
    DatabaseKind, Delivery, Diagnostic, HostConfig, InboundAuth, LogConfig, LogFormat, Mention,
    MetricKind, MetricSpec, Query, Rate, Receiver, RelayConfig, Retention, Secret, WebConfig,
};
use crate::backoff::{self, Backoff};

/// `retry.initial` and `retry.max` when not set.
const DEFAULT_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// The default listen address (SPEC §1).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9788";

/// Validates `raw`. `read_file` reads `*_file` secrets.
pub fn validate(
    raw: &RawConfig,
    positions: &Positions,
    read_file: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Config, Vec<Diagnostic>> {
    let mut v = Validator {
        positions,
        read_file,
        errors: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok(config)
    } else {
        Err(v.errors)
    }
}

struct Validator<'a> {
    positions: &'a Positions,
    read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
    errors: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            position: self.positions.of(path),
            path: path.to_owned(),
            message: message.into(),
        });
    }

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
            .filter_map(|(name, ch)| Some((name.clone(), self.channel(name, ch)?)))
            .collect::<BTreeMap<_, _>>();
        let receivers = self.receivers(&raw.receivers, &raw.channels);
        Config {
            source: None,
            listen: self.listen(raw.top.listen.as_deref()),
            timezone: self.timezone(raw.top.timezone.as_deref()),
            state_dir: PathBuf::from(raw.top.state_dir.as_deref().unwrap_or("./lookout-data")),
            log: self.log(&raw.log),
            web: self.web(&raw.web),
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
        RelayConfig {
            dedupe_window,
            rate_limit_pause: self.duration_in(
                "relay.rate_limit_pause",
                raw.rate_limit_pause.as_deref(),
                Duration::from_secs(600),
                bounds::RATE_LIMIT_PAUSE,
            ),
            retention: self.retention(raw.retention.as_ref(), dedupe_window),
        }
    }

    /// `relay.retention`: a week for delivered rows, a month for dead letters, 256 MiB.
    /// Both ages must cover the dedupe window, which finds duplicates among kept rows.
    fn retention(&mut self, raw: Option<&raw::RawRetention>, dedupe_window: Duration) -> Retention {
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
        let max_bytes = self.bytes(
            "relay.retention.max_bytes",
            raw.and_then(|r| r.max_bytes.as_deref()),
            256 * 1024 * 1024,
            &bounds::RETENTION_BYTES,
        );
        Retention {
            delivered,
            dead,
            max_bytes: u64::try_from(max_bytes).unwrap_or(u64::MAX),
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
        if super::secret::redact_url(&url) != url {
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
        let max_connections = raw.max_connections.unwrap_or(2);
        self.number(
            &join(&path, "max_connections"),
            &bounds::MAX_CONNECTIONS,
            max_connections,
        );
        Some(Database {
            kind,
            url,
            password,
            max_connections,
            connect_timeout: self.duration_in(
                &join(&path, "connect_timeout"),
                raw.connect_timeout.as_deref(),
                Duration::from_secs(5),
                bounds::CONNECT_TIMEOUT,
            ),
        })
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

    fn channel(&mut self, name: &str, raw: &RawChannel) -> Option<Channel> {
        let path = join("channels", name);
        let (kind, delivery) = match raw {
            RawChannel::Dingtalk(c) => {
                let url = self.url(&path, "url", c.url.as_deref())?;
                let secret =
                    self.secret(&path, "secret", c.secret.as_ref(), c.secret_file.as_ref());
                let delivery =
                    self.delivery(&path, DeliveryDefaults::CHAT, &Common::of_dingtalk(c));
                (
                    ChannelKind::Dingtalk {
                        url,
                        secret,
                        mention: mention(c.mention.as_ref()),
                        markdown: self.message_type(&path, c.message_type.as_deref()),
                    },
                    delivery,
                )
            }
            RawChannel::Wecom(c) => {
                let url = self.url(&path, "url", c.url.as_deref())?;
                let delivery = self.delivery(&path, DeliveryDefaults::CHAT, &Common::of_wecom(c));
                (
                    ChannelKind::Wecom {
                        url,
                        mention: mention(c.mention.as_ref()),
                        markdown: self.message_type(&path, c.message_type.as_deref()),
                    },
                    delivery,
                )
            }
            RawChannel::AliyunSms(c) => {
                let endpoint = self.url(
                    &path,
                    "endpoint",
                    Some(
                        c.endpoint
                            .as_deref()
                            .unwrap_or("https://dysmsapi.aliyuncs.com"),
                    ),
                )?;
                let secret = self.secret(
                    &path,
                    "access_key_secret",
                    c.access_key_secret.as_ref(),
                    c.access_key_secret_file.as_ref(),
                );
                if secret.is_none() {
                    self.error(
                        &path,
                        "missing key `access_key_secret` or `access_key_secret_file`",
                    );
                }
                self.phone_numbers(&path, &c.phone_numbers);
                let delivery = self.delivery(&path, DeliveryDefaults::SMS, &Common::of_aliyun(c));
                (
                    ChannelKind::AliyunSms {
                        endpoint: endpoint.expose().to_owned(),
                        access_key_id: self
                            .required(&path, "access_key_id", c.access_key_id.as_deref())?
                            .to_owned(),
                        access_key_secret: secret?,
                        sign_name: self
                            .required(&path, "sign_name", c.sign_name.as_deref())?
                            .to_owned(),
                        template_code: self
                            .required(&path, "template_code", c.template_code.as_deref())?
                            .to_owned(),
                        template_params: c.template_params.clone(),
                        phone_numbers: c.phone_numbers.clone(),
                    },
                    delivery,
                )
            }
            RawChannel::TencentSms(c) => {
                let endpoint = self.url(
                    &path,
                    "endpoint",
                    Some(
                        c.endpoint
                            .as_deref()
                            .unwrap_or("https://sms.tencentcloudapi.com"),
                    ),
                )?;
                let secret = self.secret(
                    &path,
                    "secret_key",
                    c.secret_key.as_ref(),
                    c.secret_key_file.as_ref(),
                );
                if secret.is_none() {
                    self.error(&path, "missing key `secret_key` or `secret_key_file`");
                }
                self.phone_numbers(&path, &c.phone_numbers);
                let delivery = self.delivery(&path, DeliveryDefaults::SMS, &Common::of_tencent(c));
                (
                    ChannelKind::TencentSms {
                        endpoint: endpoint.expose().to_owned(),
                        region: c
                            .region
                            .clone()
                            .unwrap_or_else(|| "ap-guangzhou".to_owned()),
                        secret_id: self
                            .required(&path, "secret_id", c.secret_id.as_deref())?
                            .to_owned(),
                        secret_key: secret?,
                        sdk_app_id: self
                            .required(&path, "sdk_app_id", c.sdk_app_id.as_deref())?
                            .to_owned(),
                        sign_name: self
                            .required(&path, "sign_name", c.sign_name.as_deref())?
                            .to_owned(),
                        template_id: self
                            .required(&path, "template_id", c.template_id.as_deref())?
                            .to_owned(),
                        template_params: c.template_params.clone(),
                        phone_numbers: c.phone_numbers.clone(),
                    },
                    delivery,
                )
            }
            RawChannel::Console(c) => {
                let common = Common {
                    template: c.template.as_deref(),
                    send_resolved: c.send_resolved,
                    ..Common::default()
                };
                (
                    ChannelKind::Console,
                    self.delivery(&path, DeliveryDefaults::CONSOLE, &common),
                )
            }
        };
        Some(Channel {
            name: name.to_owned(),
            delivery,
            kind,
        })
    }

    fn phone_numbers(&mut self, path: &str, numbers: &[String]) {
        if numbers.is_empty() {
            self.error(
                &join(path, "phone_numbers"),
                "at least one phone number is needed",
            );
        }
        for number in numbers {
            let digits = number.strip_prefix('+').unwrap_or(number);
            if digits.len() < 5 || !digits.chars().all(|c| c.is_ascii_digit()) {
                self.error(
                    &join(path, "phone_numbers"),
                    format!("`{number}` is not a phone number"),
                );
            }
        }
    }

    fn message_type(&mut self, path: &str, value: Option<&str>) -> bool {
        match value {
            None | Some("markdown") => true,
            Some("text") => false,
            Some(other) => {
                self.error(
                    &join(path, "message_type"),
                    format!("unknown message type `{other}` (expected markdown or text)"),
                );
                true
            }
        }
    }

    fn delivery(&mut self, path: &str, defaults: DeliveryDefaults, raw: &Common<'_>) -> Delivery {
        let rate_limit = match raw.rate_limit {
            None => defaults.rate_limit,
            Some(text) => parse_rate(text).unwrap_or_else(|message| {
                self.error(&join(path, "rate_limit"), message);
                defaults.rate_limit
            }),
        };
        let retry = self.retry(path, raw.retry);
        if let Some(proxy) = raw.proxy {
            self.url(path, "proxy", Some(proxy));
        }
        Delivery {
            rate_limit,
            retry,
            timeout: self.duration_in(
                &join(path, "timeout"),
                raw.timeout,
                Duration::from_secs(10),
                bounds::SEND_TIMEOUT,
            ),
            proxy: raw.proxy.map(str::to_owned),
            template: raw.template.map(PathBuf::from),
            send_resolved: raw.send_resolved.unwrap_or(defaults.send_resolved),
        }
    }

    /// `retry.initial` and `retry.max` as the backoff the dispatcher uses.
    fn retry(&mut self, path: &str, raw: Option<&raw::RawRetry>) -> Backoff {
        let initial = self.duration_in(
            &join(path, "retry.initial"),
            raw.and_then(|r| r.initial.as_deref()),
            DEFAULT_RETRY.0,
            bounds::RETRY_INITIAL,
        );
        let max = self.duration_in(
            &join(path, "retry.max"),
            raw.and_then(|r| r.max.as_deref()),
            DEFAULT_RETRY.1,
            bounds::RETRY_MAX,
        );
        Backoff::new(initial, max).unwrap_or_else(|error| {
            let message = match error {
                backoff::Error::ZeroInitial => "`initial` must be positive",
                backoff::Error::InitialAboveMax { .. } => "`initial` must not exceed `max`",
            };
            self.error(&join(path, "retry"), message);
            // The config is refused for this error; the default only fills the slot.
            Backoff::constant(DEFAULT_RETRY.0, DEFAULT_RETRY.1)
        })
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
            out.insert(
                name.clone(),
                Receiver {
                    channels: receiver.channels.clone(),
                },
            );
        }
        out
    }

    fn required<'s>(&mut self, path: &str, key: &str, value: Option<&'s str>) -> Option<&'s str> {
        match value {
            Some(v) if !v.trim().is_empty() => Some(v),
            _ => {
                self.error(&join(path, key), format!("missing key `{key}`"));
                None
            }
        }
    }

    fn url(&mut self, path: &str, key: &str, value: Option<&str>) -> Option<Secret> {
        let value = self.required(path, key, value)?;
        let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https" | "socks5") && !rest.is_empty()
        });
        if !ok {
            // The URL may carry a token: do not echo it.
            self.error(&join(path, key), "expected an http:// or https:// URL");
            return None;
        }
        Some(Secret::new(value))
    }

    /// A secret given inline as `key` or read from the file named by `key_file`.
    fn secret(
        &mut self,
        path: &str,
        key: &str,
        value: Option<&String>,
        file: Option<&String>,
    ) -> Option<Secret> {
        match (value, file) {
            (Some(_), Some(_)) => {
                self.error(
                    &join(path, key),
                    format!("set either `{key}` or `{key}_file`, not both"),
                );
                None
            }
            (Some(value), None) => Some(Secret::new(value.as_str())),
            (None, Some(file)) => {
                let file_key = join(path, &format!("{key}_file"));
                match (self.read_file)(Path::new(file)) {
                    Ok(content) => Some(Secret::new(content.trim_end_matches(['\n', '\r']))),
                    Err(error) => {
                        self.error(&file_key, format!("cannot read `{file}`: {error}"));
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    /// A duration within `span`; on any error, `default` (itself within `span`).
    fn duration_in(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: Duration,
        span: Span,
    ) -> Duration {
        let Some(text) = value else {
            return default;
        };
        match parse_duration(text).and_then(|d| span.check(d, text.trim()).map(|()| d)) {
            Ok(duration) => duration,
            Err(message) => {
                self.error(path, message);
                default
            }
        }
    }

    /// Reports `value` when it is outside `range`.
    fn number<T>(&mut self, path: &str, range: &std::ops::RangeInclusive<T>, value: T)
    where
        T: PartialOrd + std::fmt::Display + Copy,
    {
        if let Err(message) = bounds::check_number(range, value) {
            self.error(path, message);
        }
    }

    /// A size within `range`; on any error, `default`.
    fn bytes(
        &mut self,
        path: &str,
        value: Option<&str>,
        default: usize,
        range: &std::ops::RangeInclusive<usize>,
    ) -> usize {
        let Some(text) = value else {
            return default;
        };
        let checked = parse_bytes(text).and_then(|n| {
            bounds::check_number(range, n)
                .map(|()| n)
                .map_err(|message| format!("{message} bytes"))
        });
        checked.unwrap_or_else(|message| {
            self.error(path, message);
            default
        })
    }

    fn regex(&mut self, path: &str, pattern: &str) -> Regex {
        Regex::new(pattern).unwrap_or_else(|error| {
            self.error(path, format!("invalid regular expression: {error}"));
            Regex::new("$^").unwrap_or_else(|_| unreachable!("the never-matching regex is valid"))
        })
    }
}

/// Metric name prefixes lookout exports itself.
const RESERVED_PREFIXES: &[&str] = &["lookout_", "process_", "node_"];

/// Label names that Prometheus gives a meaning of its own.
const RESERVED_LABELS: &[&str] = &["le", "quantile"];

fn mention(raw: Option<&raw::RawMention>) -> Mention {
    raw.map(|m| Mention {
        mobiles: m.mobiles.clone(),
        user_ids: m.user_ids.clone(),
        all_on_severity: m.all_on_severity.clone(),
    })
    .unwrap_or_default()
}

#[derive(Clone, Copy)]
struct DeliveryDefaults {
    rate_limit: Rate,
    send_resolved: bool,
}

impl DeliveryDefaults {
    /// DingTalk and WeCom robots: 20 messages a minute.
    const CHAT: Self = Self {
        rate_limit: Rate {
            count: 20,
            per: Duration::from_secs(60),
        },
        send_resolved: true,
    };
    /// Aliyun and Tencent throttle one number to about one message a minute.
    const SMS: Self = Self {
        rate_limit: Rate {
            count: 1,
            per: Duration::from_secs(60),
        },
        send_resolved: false,
    };
    const CONSOLE: Self = Self {
        rate_limit: Rate {
            count: 1000,
            per: Duration::from_secs(1),
        },
        send_resolved: true,
    };
}

/// The delivery keys every raw channel struct has, borrowed.
#[derive(Default)]
struct Common<'a> {
    rate_limit: Option<&'a str>,
    retry: Option<&'a raw::RawRetry>,
    timeout: Option<&'a str>,
    proxy: Option<&'a str>,
    template: Option<&'a str>,
    send_resolved: Option<bool>,
}

macro_rules! common_of {
    ($($fn:ident: $ty:ty, template: $template:expr;)*) => {
        impl<'a> Common<'a> {
            $(fn $fn(c: &'a $ty) -> Self {
                Self {
                    rate_limit: c.rate_limit.as_deref(),
                    retry: c.retry.as_ref(),
                    timeout: c.timeout.as_deref(),
                    proxy: c.proxy.as_deref(),
                    template: $template(c),
                    send_resolved: c.send_resolved,
                }
            })*
        }
    };
}

common_of! {
    of_dingtalk: raw::RawDingtalk, template: |c: &'a raw::RawDingtalk| c.template.as_deref();
    of_wecom: raw::RawWecom, template: |c: &'a raw::RawWecom| c.template.as_deref();
    of_aliyun: raw::RawAliyunSms, template: |_| None;
    of_tencent: raw::RawTencentSms, template: |_| None;
}

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

/// Durations as Prometheus writes them: `500ms`, `10s`, `5m`, `1h30m`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration `{text}` needs a unit (ms, s, m, h, d), e.g. `{text}s`"
        ));
    }
    humantime::parse_duration(text).map_err(|error| format!("invalid duration `{text}`: {error}"))
}

/// Byte sizes: `1048576`, `512KiB`, `1MiB`, `1MB`, `2GiB`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size `{text}` (e.g. 1MiB, 512KiB, 1048576)"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" | "K" => 1024.0,
        "MB" => 1e6,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = number * scale;
    if !(1.0..=f64::from(u32::MAX)).contains(&bytes) {
        return Err(format!("size `{text}` is out of range"));
    }
    Ok(bytes as usize)
}

/// Send budgets: `20/min`, `1/s`, `100/h`.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let bad = || format!("invalid rate `{text}` (expected N/s, N/min or N/h, e.g. 20/min)");
    let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    if count == 0 {
        return Err(format!("rate `{text}` must allow at least one message"));
    }
    if !bounds::RATE_COUNT.contains(&count) {
        return Err(format!(
            "rate `{text}` allows more than {} messages per window",
            bounds::RATE_COUNT.end()
        ));
    }
    Ok(Rate { count, per })
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

mod bounds;

#[cfg(test)]
mod tests;
