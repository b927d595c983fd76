//! Configuration: the YAML file → [`raw`] structs → one pure [`validate`] step → [`Config`].
//!
//! Loading is the only step that touches the outside world (the file, the environment,
//! `*_file` secrets, all through [`Sources`]); validation is a pure function that returns
//! every error at once, each with the file, line, column and key path.

mod database_tls;
mod escalation;
pub mod host;
mod outbox;
pub mod raw;
mod tls;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

pub use crate::channel::Channel;
use crate::configfile::yaml;
pub use crate::configfile::{Diagnostic, Position, Secret};
pub use database_tls::{ClientIdentity, DatabaseTls, SslMode};
pub use tls::WebTls;
pub use validate::validate;

/// Where a configuration came from and how to reach the outside while loading it.
pub struct Sources<'a> {
    /// Looks up an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Reads a `*_file` secret.
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

impl Sources<'static> {
    /// The process environment and the real file system.
    pub fn system() -> Self {
        Sources {
            env: &|name| std::env::var(name).ok(),
            read_file: &|path| std::fs::read_to_string(path),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: cannot read config: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render(file, diagnostics))]
    Invalid {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
}

fn render(file: &str, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diagnostics.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "{}",
            Located {
                file,
                diagnostic: d
            }
        ));
    }
    out
}

/// `file:line:column: path: message`.
struct Located<'a> {
    file: &'a str,
    diagnostic: &'a Diagnostic,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.diagnostic;
        write!(
            f,
            "{}:{}:{}: ",
            self.file, d.position.line, d.position.column
        )?;
        if !d.path.is_empty() {
            write!(f, "{}: ", d.path.escape_debug())?;
        }
        // One line per error, whatever the file's values contain.
        f.write_str(&d.message.replace('\n', "\\n").replace('\r', "\\r"))
    }
}

/// Reads, parses and validates the file at `path`.
pub fn load(path: &Path, sources: &Sources<'_>) -> Result<Config, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        file: file.clone(),
        source,
    })?;
    let mut config = parse_str(&file, &text, sources)?;
    config.source = Some(path.to_owned());
    Ok(config)
}

/// Parses and validates configuration text; `file` names it in errors.
pub fn parse_str(file: &str, text: &str, sources: &Sources<'_>) -> Result<Config, Error> {
    let invalid = |diagnostics| Error::Invalid {
        file: file.to_owned(),
        diagnostics,
    };
    let document = yaml::parse(text).map_err(|d| invalid(vec![d]))?;
    let mut errors = Vec::new();
    let raw = decode_document(document, sources, &mut errors);
    match validate(&raw.config, &raw.positions, sources.read_file) {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(invalid(errors)),
        Err(more) => {
            errors.extend(more);
            errors.sort_by_key(|d| (d.position.line, d.position.column));
            errors.dedup();
            Err(invalid(errors))
        }
    }
}

/// The raw configuration with the position index validation needs.
pub struct Decoded {
    pub config: raw::RawConfig,
    pub positions: yaml::Positions,
}

fn decode_document(
    document: yaml::Document,
    sources: &Sources<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Decoded {
    use marked_yaml::Node;

    let positions = document.positions;
    let mut root = Node::Mapping(document.root);
    yaml::expand_env(&mut root, "", sources.env, errors);
    let Node::Mapping(root) = root else {
        unreachable!("expand_env keeps the node kind")
    };

    let mut config = raw::RawConfig::default();
    let mut top = marked_yaml::types::MarkedMappingNode::new_empty(*root.span());
    for (key, node) in root.iter() {
        let name = key.as_str();
        let p = &positions;
        match name {
            // Extension keys, as in Docker Compose: a place for anchors, ignored.
            _ if name.starts_with("x-") => {}
            "log" => config.log = yaml::decode(node, name, p, errors).unwrap_or_default(),
            "web" => config.web = yaml::decode(node, name, p, errors).unwrap_or_default(),
            "host" => config.host = yaml::decode(node, name, p, errors).unwrap_or_default(),
            "relay" => config.relay = yaml::decode(node, name, p, errors).unwrap_or_default(),
            "databases" => config.databases = yaml::decode_map(node, name, p, errors),
            "queries" => config.queries = yaml::decode_seq(node, name, p, errors),
            "channels" => config.channels = crate::channel::decode_section(node, p, errors),
            "receivers" => config.receivers = yaml::decode_map(node, name, p, errors),
            _ => {
                top.insert(key.clone(), node.clone());
            }
        }
    }
    // Scalars and unknown top-level keys; an unknown key's error lists every section.
    let before = errors.len();
    config.top = yaml::decode(&Node::Mapping(top), "", &positions, errors).unwrap_or_default();
    for error in errors.iter_mut().skip(before) {
        if let Some((head, _)) = error.message.split_once(" (expected one of:") {
            error.message = format!("{head} (expected one of: {})", TOP_LEVEL_KEYS.join(", "));
        }
    }
    Decoded { config, positions }
}

/// Every key the top level accepts.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "timezone",
    "state_dir",
    "log",
    "web",
    "host",
    "databases",
    "queries",
    "channels",
    "relay",
    "receivers",
];

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from; `None` for the built-in default.
    pub source: Option<PathBuf>,
    pub listen: SocketAddr,
    pub timezone: chrono_tz::Tz,
    pub state_dir: PathBuf,
    pub log: LogConfig,
    pub web: WebConfig,
    pub host: HostConfig,
    pub databases: BTreeMap<String, Database>,
    pub queries: Vec<Query>,
    pub channels: BTreeMap<String, Channel>,
    pub relay: RelayConfig,
    pub receivers: BTreeMap<String, Receiver>,
}

impl Config {
    /// The configuration an empty file gives.
    pub fn builtin() -> Self {
        match parse_str("<built-in>", "", &Sources::system()) {
            Ok(config) => config,
            Err(error) => unreachable!("the empty configuration is valid: {error}"),
        }
    }
}

/// Log settings; the command line overrides them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter directive such as `info` or `lookout=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logfmt" => Ok(Self::Logfmt),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected logfmt or json)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Guards `/alertmanager/*` and `/-/reload` (and `/metrics` with `metrics_auth`).
    pub auth: Option<InboundAuth>,
    pub metrics_auth: bool,
    pub max_body_bytes: usize,
    /// From a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// From the end of a request's head to the end of its body.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight and no bytes moving is closed after this.
    pub idle_timeout: Duration,
    /// Open connections; at the cap the oldest idle one is closed for a new one.
    pub max_connections: usize,
    /// After SIGTERM: how long in-flight requests and sends may take before lookout exits.
    pub shutdown_timeout: Duration,
    /// HTTPS (and client certificates) on the listener; plain HTTP when `None`.
    pub tls: Option<WebTls>,
    /// Where people reach lookout (the base of ack links), without a trailing `/`.
    pub external_url: Option<String>,
}

/// Credentials an inbound request must present (Alertmanager's `http_config`).
#[derive(Debug, Clone)]
pub enum InboundAuth {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

/// `host.filesystem.*` default: node_exporter 1.5's default `--collector.filesystem.mount-points-exclude`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// `host.filesystem.*` default: node_exporter 1.5's default `--collector.filesystem.fs-types-exclude`.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub enabled: bool,
    /// A scrape reuses host values collected less than this long ago.
    pub max_age: Duration,
    pub mount_points_exclude: Regex,
    pub fs_types_exclude: Regex,
    pub mount_timeout: Duration,
    /// `host.collectors`, `host.textfile_directory`, `host.rootfs`/`procfs`/`sysfs`.
    pub collectors: host::CollectorSet,
    pub textfile_directory: Option<PathBuf>,
    pub paths: host::HostPaths,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Mysql,
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Database {
    pub kind: DatabaseKind,
    /// The URL as configured, less its TLS mode parameter (that is in `tls`); may not
    /// carry a password (use `password`).
    pub url: String,
    pub password: Option<Secret>,
    pub tls: DatabaseTls,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// Built-in packs of database metrics (`collect:`), run every `collect_interval`.
    pub collect: Vec<Pack>,
    pub collect_interval: Duration,
}

/// A built-in pack of database metrics, named as the exporter it stands in for names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Pack {
    /// mysqld_exporter's default collectors: `mysql_up`, `mysql_version_info`,
    /// `mysql_global_status_*`, `mysql_global_variables_*`, `mysql_slave_status_*`.
    Mysql,
    /// postgres_exporter's default collectors (`pg_*`).
    Postgres,
}

impl Pack {
    pub fn name(self) -> &'static str {
        match self {
            Pack::Mysql => "mysql",
            Pack::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub name: String,
    pub database: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub stale_after: Duration,
    pub max_series: u32,
    pub const_labels: BTreeMap<String, String>,
    pub sql: String,
    pub metrics: Vec<MetricSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    pub labels: Vec<String>,
    pub value: String,
    pub const_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where the outbox lives.
    pub outbox: OutboxLocation,
    pub dedupe_window: Duration,
    pub rate_limit_pause: Duration,
    pub retention: Retention,
}

/// Where the outbox lives (`relay.outbox`).
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxLocation {
    /// SQLite in `state_dir` (the default): one process.
    StateDir,
    /// A PostgreSQL or MySQL database that any number of replicas share.
    Shared(Box<SharedOutbox>),
}

/// A shared outbox: its database and how long a replica's claims outlive it.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedOutbox {
    /// `kind` is Postgres or Mysql; `collect` is empty.
    pub database: Database,
    pub lease: Duration,
}

/// How long finished outbox rows are kept, and how large the outbox may grow.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Delivered rows are forgotten after this.
    pub delivered: Duration,
    /// Dead letters are forgotten after this.
    pub dead: Duration,
    /// Bytes of database pages in use above which the oldest finished payloads are
    /// dropped (delivered first, then dead letters; pending rows never). SQLite only:
    /// `None` for a shared outbox.
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Receiver {
    pub channels: Vec<String>,
    /// While an incident of this receiver fires unacknowledged, each step sends it to
    /// more channels once, `after` its first notification; in increasing order.
    pub escalate: Vec<EscalationStep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStep {
    pub after: Duration,
    pub channels: Vec<String>,
}
