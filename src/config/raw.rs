//! The configuration as written in the file: serde structs close to the YAML, with
//! every value still a string where validation has something to say about it.
//!
//! Every struct denies unknown keys. Channels are the channel kinds' own (see
//! `channel::decode_section`): each is deserialized by hand on its `type` key, because
//! serde's internally tagged enums buffer their input and lose both
//! `deny_unknown_fields` and source positions.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file. Sections are deserialized one entry at a time by `config::load`, so
/// this struct only names the scalar top-level keys and the small sections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTop {
    pub listen: Option<String>,
    pub timezone: Option<String>,
    pub state_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub auth: Option<RawAuth>,
    pub metrics_auth: Option<bool>,
    pub max_body_bytes: Option<String>,
    pub header_read_timeout: Option<String>,
    pub body_read_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<u32>,
    pub shutdown_timeout: Option<String>,
    pub tls: Option<RawWebTls>,
    pub external_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebTls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<String>,
    pub basic_auth: Option<RawBasicAuth>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBasicAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub enabled: Option<bool>,
    pub max_age: Option<String>,
    pub filesystem: Option<RawFilesystem>,
    pub collectors: Option<super::host::RawCollectors>,
    pub textfile_directory: Option<String>,
    pub rootfs: Option<String>,
    pub procfs: Option<String>,
    pub sysfs: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilesystem {
    pub mount_points_exclude: Option<String>,
    pub fs_types_exclude: Option<String>,
    pub mount_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub max_connections: Option<u32>,
    pub connect_timeout: Option<String>,
    pub tls: Option<RawDatabaseTls>,
    pub collect: Option<Vec<String>>,
    pub collect_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabaseTls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

impl RawDatabaseTls {
    pub const DEFAULT: RawDatabaseTls = RawDatabaseTls {
        ca_file: None,
        cert_file: None,
        key_file: None,
    };
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    pub name: Option<String>,
    pub database: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub stale_after: Option<String>,
    pub max_series: Option<u32>,
    pub const_labels: Option<BTreeMap<String, String>>,
    pub sql: Option<String>,
    #[serde(default)]
    pub metrics: Vec<RawMetric>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    pub name: Option<String>,
    pub help: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub value: Option<String>,
    pub const_labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    /// A PostgreSQL or MySQL URL: replicas share the outbox there.
    pub outbox: Option<String>,
    pub outbox_password: Option<String>,
    pub outbox_password_file: Option<String>,
    pub outbox_tls: Option<RawDatabaseTls>,
    pub lease: Option<String>,
    pub dedupe_window: Option<String>,
    pub rate_limit_pause: Option<String>,
    pub retention: Option<RawRetention>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub delivered: Option<String>,
    pub dead: Option<String>,
    pub max_bytes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub escalate: Vec<RawEscalationStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalationStep {
    pub after: Option<String>,
    #[serde(default)]
    pub channels: Vec<String>,
}

/// Everything the file said, after per-section deserialization.
#[derive(Debug, Default)]
pub struct RawConfig {
    pub top: RawTop,
    pub log: RawLog,
    pub web: RawWeb,
    pub host: RawHost,
    pub databases: BTreeMap<String, RawDatabase>,
    pub queries: Vec<RawQuery>,
    pub channels: BTreeMap<String, crate::channel::RawChannel>,
    pub relay: RawRelay,
    pub receivers: BTreeMap<String, RawReceiver>,
}
