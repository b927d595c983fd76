//! What the outbox stores and answers, whichever database holds it.

use std::collections::BTreeMap;

use crate::alert::Notification;

/// A notification to store, with the channels it goes to.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub receiver: String,
    pub dedupe_key: String,
    /// Deliveries of one incident (receiver, group key) go out in arrival order.
    pub incident: String,
    pub payload: String,
    /// What the status page shows for it ([`summary`]), computed once at accept time.
    pub summary: String,
    pub channels: Vec<String>,
    pub received_at_ms: i64,
    /// A notification with the same key accepted after this time is a duplicate.
    pub dedupe_since_ms: i64,
    /// Its receiver escalates: the notification opens, updates or resolves an incident.
    pub escalates: bool,
    /// Its status is firing (else resolved).
    pub firing: bool,
}

/// What `accept` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    Stored { id: i64, deliveries: usize },
    Duplicate { id: i64 },
}

/// A pending delivery row, with its notification's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub notification_id: i64,
    pub channel: String,
    pub receiver: String,
    pub payload: String,
    pub attempts: i64,
    pub received_at_ms: i64,
    /// Keys of the parts already sent (`target#part`).
    pub sent_parts: Vec<String>,
    /// The channel answered "too long" before: render smaller.
    pub too_long: bool,
    /// The escalating incident this notification belongs to (its ack link), if any.
    pub incident_id: Option<i64>,
}

/// Per-channel counts for metrics and the status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub channel: String,
    pub pending: i64,
    pub oldest_pending_ms: Option<i64>,
    pub dead: i64,
}

/// A dead letter or a recent notification, for the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub channel: String,
    pub receiver: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub received_at_ms: i64,
    pub updated_at_ms: i64,
    pub summary: String,
}

/// How much room the outbox takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Storage {
    /// Bytes of the database pages in use: what `relay.retention.max_bytes` bounds.
    pub used_bytes: u64,
    /// Bytes of the database and WAL files on disk. Pages freed by pruning are reused,
    /// not returned to the filesystem, so this stays at its high-water mark.
    pub file_bytes: u64,
}

/// What [`super::Store::prune_to_size`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizePrune {
    /// Notifications removed with their delivery rows.
    pub removed: usize,
    /// Notifications inside the dedupe window whose payload was dropped.
    pub emptied: usize,
    /// Bytes of pages in use afterwards.
    pub used_bytes: u64,
}

/// "firing HighCPU ×3": what the status page shows for a notification.
pub fn summary(n: &Notification) -> String {
    let name = n
        .common_labels
        .get("alertname")
        .or_else(|| n.group_labels.get("alertname"))
        .map_or_else(
            || n.alerts.first().map(|a| a.name()).unwrap_or_default(),
            String::as_str,
        );
    format!("{} {name} ×{}", n.status.as_str(), n.alerts.len())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A digest being delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDigest {
    pub id: i64,
    pub channel: String,
    /// The rendered messages, as JSON (the dispatcher's `Message` list).
    pub messages: String,
    /// Keys of the parts already sent.
    pub sent_parts: Vec<String>,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    /// The deliveries it stands for: (id, received at).
    pub rows: Vec<(i64, i64)>,
}

/// An incident that is firing or acknowledged, for the escalator and the status page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: i64,
    pub receiver: String,
    pub summary: String,
    pub acked: bool,
    pub acked_by: Option<String>,
    pub acked_at_ms: Option<i64>,
    pub steps_done: usize,
    pub opened_at_ms: i64,
}

/// One incident for its ack page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentPage {
    pub id: i64,
    pub receiver: String,
    pub summary: String,
    /// `firing`, `acked` or `resolved`.
    pub state: String,
    pub opened_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub acked_at_ms: Option<i64>,
    pub acked_by: Option<String>,
    /// (step, when) of the steps that fired.
    pub escalations: Vec<(usize, i64)>,
    /// The latest firing notification as received (empty if retention dropped it).
    pub payload: String,
}

/// What an ack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acked {
    Now,
    Already {
        by: Option<String>,
        at_ms: Option<i64>,
    },
    Resolved,
    Unknown,
}

/// Which dead letters to redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    Channel(String),
    Ids(Vec<i64>),
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Rows made pending again, by channel.
    pub channels: BTreeMap<String, usize>,
    /// Dead letters left dead because their payload is gone.
    pub skipped: usize,
}

impl Redriven {
    pub fn total(&self) -> usize {
        self.channels.values().sum()
    }
}

/// The keys of the parts already sent, as stored: `key,key,…,` (each appended with its
/// comma as it is sent).
pub(crate) fn parts_sent(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
