//! The relay's metrics: webhook requests, alerts received, delivery outcomes and latency,
//! digests, throttles and dead letters (counters), and the outbox gauges, which a scrape
//! reads from a snapshot the dispatcher refreshes — never from the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::exporter::family::{Family, labels};

type Labels = Vec<(&'static str, String)>;

/// What the status page and the gauges show per channel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelGauges {
    pub channel: String,
    pub pending: i64,
    pub oldest_pending_age_seconds: f64,
    pub dead: i64,
    pub paused: bool,
}

/// How much room the outbox takes, as of the last refresh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Storage {
    /// Bytes of database pages in use (what `relay.retention.max_bytes` bounds).
    pub outbox_bytes: u64,
    /// Bytes of the database and WAL files on disk.
    pub file_bytes: u64,
    /// `relay.retention.max_bytes` (SQLite only).
    pub max_bytes: Option<u64>,
    /// (available, total) bytes of the state directory's filesystem, when known.
    pub filesystem: Option<(u64, u64)>,
}

/// The outbox gauges as of the last refresh.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub outbox_up: bool,
    pub channels: Vec<ChannelGauges>,
}

/// Relay metrics; clone freely.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    webhook_requests: MetricFamily<Labels, Counter>,
    alerts_received: MetricFamily<Labels, Counter>,
    duplicates: MetricFamily<Labels, Counter>,
    notifications: MetricFamily<Labels, Counter>,
    latency: MetricFamily<Labels, Histogram>,
    digests: MetricFamily<Labels, Counter>,
    throttles: MetricFamily<Labels, Counter>,
    dead_letters: MetricFamily<Labels, Counter>,
    escalations: MetricFamily<Labels, Counter>,
    acks: MetricFamily<Labels, Counter>,
    redriven: MetricFamily<Labels, Counter>,
    incidents_open: Arc<AtomicI64>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    storage: Arc<ArcSwap<Option<Storage>>>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    ])
}

impl RelayMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            webhook_requests: MetricFamily::default(),
            alerts_received: MetricFamily::default(),
            duplicates: MetricFamily::default(),
            notifications: MetricFamily::default(),
            latency: MetricFamily::new_with_constructor(latency_histogram),
            digests: MetricFamily::default(),
            throttles: MetricFamily::default(),
            dead_letters: MetricFamily::default(),
            escalations: MetricFamily::default(),
            acks: MetricFamily::default(),
            redriven: MetricFamily::default(),
            incidents_open: Arc::new(AtomicI64::new(0)),
            snapshot: Arc::new(ArcSwap::from_pointee(Snapshot::default())),
            storage: Arc::new(ArcSwap::from_pointee(None)),
        };
        registry.register(
            "lookout_webhook_requests",
            "Alertmanager webhook requests by receiver and HTTP status code",
            metrics.webhook_requests.clone(),
        );
        registry.register(
            "lookout_alerts_received",
            "Alerts received by receiver and status",
            metrics.alerts_received.clone(),
        );
        registry.register(
            "lookout_webhook_duplicates",
            "Notifications received again within the dedupe window and not delivered twice",
            metrics.duplicates.clone(),
        );
        registry.register(
            "lookout_notifications",
            "Delivery attempts by channel and outcome (delivered, rate_limited, transient, permanent, too_long)",
            metrics.notifications.clone(),
        );
        registry.register(
            "lookout_delivery_latency_seconds",
            "Time from accepting a notification to its delivery, by channel",
            metrics.latency.clone(),
        );
        registry.register(
            "lookout_digests",
            "Digest messages sent because a channel's backlog exceeded its rate budget",
            metrics.digests.clone(),
        );
        registry.register(
            "lookout_channel_throttled",
            "Times a channel target answered with a rate-limit code and was paused",
            metrics.throttles.clone(),
        );
        registry.register(
            "lookout_dead_letters",
            "Deliveries given up on after a permanent error",
            metrics.dead_letters.clone(),
        );
        registry.register(
            "lookout_escalations",
            "Escalation steps fired, by receiver and step (1 = the first `escalate` entry)",
            metrics.escalations.clone(),
        );
        registry.register(
            "lookout_acks",
            "Incidents acknowledged through their ack link, by receiver",
            metrics.acks.clone(),
        );
        registry.register(
            "lookout_redriven",
            "Dead letters made pending again by POST /-/outbox/redrive, by channel",
            metrics.redriven.clone(),
        );
        registry.register_collector(Box::new(Gauges {
            snapshot: Arc::clone(&metrics.snapshot),
            storage: Arc::clone(&metrics.storage),
            incidents_open: Arc::clone(&metrics.incidents_open),
        }));
        metrics
    }

    /// Creates every per-channel and per-receiver counter at 0, so `increase()` sees the
    /// first event and dashboards show 0 rather than no data.
    pub fn init(&self, config: &crate::config::Config) {
        for channel in config.channels.keys() {
            let labels = vec![("channel", channel.clone())];
            drop(self.digests.get_or_create(&labels));
            drop(self.throttles.get_or_create(&labels));
            drop(self.dead_letters.get_or_create(&labels));
            drop(self.redriven.get_or_create(&labels));
        }
        for (receiver, r) in &config.receivers {
            drop(
                self.duplicates
                    .get_or_create(&vec![("receiver", receiver.clone())]),
            );
            if !r.escalate.is_empty() {
                drop(
                    self.acks
                        .get_or_create(&vec![("receiver", receiver.clone())]),
                );
            }
            for step in 1..=r.escalate.len() {
                drop(self.escalations.get_or_create(&vec![
                    ("receiver", receiver.clone()),
                    ("step", step.to_string()),
                ]));
            }
        }
    }

    pub fn webhook(&self, receiver: &str, code: u16) {
        self.webhook_requests
            .get_or_create(&vec![
                ("receiver", receiver.to_owned()),
                ("code", code.to_string()),
            ])
            .inc();
    }

    pub fn alerts(&self, receiver: &str, status: &str, count: u64) {
        self.alerts_received
            .get_or_create(&vec![
                ("receiver", receiver.to_owned()),
                ("status", status.to_owned()),
            ])
            .inc_by(count);
    }

    pub fn duplicate(&self, receiver: &str) {
        self.duplicates
            .get_or_create(&vec![("receiver", receiver.to_owned())])
            .inc();
    }

    pub fn outcome(&self, channel: &str, outcome: &str) {
        self.notifications
            .get_or_create(&vec![
                ("channel", channel.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    pub fn delivered_after(&self, channel: &str, seconds: f64) {
        self.latency
            .get_or_create(&vec![("channel", channel.to_owned())])
            .observe(seconds);
    }

    pub fn digest(&self, channel: &str) {
        self.digests
            .get_or_create(&vec![("channel", channel.to_owned())])
            .inc();
    }

    pub fn throttled(&self, channel: &str) {
        self.throttles
            .get_or_create(&vec![("channel", channel.to_owned())])
            .inc();
    }

    pub fn dead(&self, channel: &str, count: u64) {
        self.dead_letters
            .get_or_create(&vec![("channel", channel.to_owned())])
            .inc_by(count);
    }

    /// Escalation step `step` (1-based) of an incident of `receiver` fired.
    pub fn escalated(&self, receiver: &str, step: usize) {
        self.escalations
            .get_or_create(&vec![
                ("receiver", receiver.to_owned()),
                ("step", step.to_string()),
            ])
            .inc();
    }

    pub fn redriven(&self, channel: &str, count: usize) {
        self.redriven
            .get_or_create(&vec![("channel", channel.to_owned())])
            .inc_by(u64::try_from(count).unwrap_or(u64::MAX));
    }

    pub fn acked(&self, receiver: &str) {
        self.acks
            .get_or_create(&vec![("receiver", receiver.to_owned())])
            .inc();
    }

    pub fn set_incidents_open(&self, open: usize) {
        self.incidents_open
            .store(i64::try_from(open).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// Replaces the outbox gauges.
    pub fn set_snapshot(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the storage gauges.
    pub fn set_storage(&self, storage: Storage) {
        self.storage.store(Arc::new(Some(storage)));
    }
}

#[derive(Debug)]
struct Gauges {
    snapshot: Arc<ArcSwap<Snapshot>>,
    storage: Arc<ArcSwap<Option<Storage>>>,
    incidents_open: Arc<AtomicI64>,
}

/// The storage gauges; none until the outbox was first measured.
fn storage_families(storage: &Storage) -> Vec<Family> {
    let gauge = |name: &'static str, help: &'static str, value: u64| {
        Family::gauge(name, help).with(Vec::new(), value as f64)
    };
    let mut families = vec![
        gauge(
            "lookout_outbox_bytes",
            "Bytes of outbox database pages in use (bounded by relay.retention.max_bytes unless pending notifications alone exceed it)",
            storage.outbox_bytes,
        ),
        gauge(
            "lookout_outbox_file_bytes",
            "Bytes of the outbox database and WAL files on disk (freed pages are reused, not returned)",
            storage.file_bytes,
        ),
    ];
    if let Some(max_bytes) = storage.max_bytes {
        families.push(gauge(
            "lookout_outbox_max_bytes",
            "relay.retention.max_bytes: above this the oldest finished notifications are pruned",
            max_bytes,
        ));
    }
    if let Some((avail, size)) = storage.filesystem {
        families.push(gauge(
            "lookout_state_dir_avail_bytes",
            "Bytes available to lookout on the filesystem of state_dir",
            avail,
        ));
        families.push(gauge(
            "lookout_state_dir_size_bytes",
            "Size in bytes of the filesystem of state_dir",
            size,
        ));
    }
    families
}

impl Collector for Gauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(storage) = self.storage.load().as_ref() {
            for family in storage_families(storage) {
                family.encode(&mut encoder)?;
            }
        }
        let snapshot = self.snapshot.load();
        let up = Family::gauge(
            "lookout_outbox_up",
            "Whether the outbox database is open for writing",
        )
        .with(Vec::new(), f64::from(u8::from(snapshot.outbox_up)));
        let mut pending = Family::gauge(
            "lookout_outbox_pending",
            "Deliveries waiting to be sent, by channel",
        );
        let mut oldest = Family::gauge(
            "lookout_outbox_oldest_pending_age_seconds",
            "Age of the oldest delivery still waiting, by channel (0 when none)",
        );
        let mut dead = Family::gauge(
            "lookout_outbox_dead",
            "Dead-letter deliveries kept in the outbox, by channel",
        );
        let mut paused = Family::gauge(
            "lookout_channel_paused",
            "Whether a channel target is paused after a rate-limit answer",
        );
        for c in &snapshot.channels {
            let l = || labels([("channel", c.channel.as_str())]);
            pending.push(l(), c.pending as f64);
            oldest.push(l(), c.oldest_pending_age_seconds);
            dead.push(l(), c.dead as f64);
            paused.push(l(), f64::from(u8::from(c.paused)));
        }
        let incidents = Family::gauge(
            "lookout_incidents_open",
            "Incidents of escalating receivers that are firing, acknowledged or not",
        )
        .with(
            Vec::new(),
            self.incidents_open.load(Ordering::Relaxed) as f64,
        );
        for family in [up, pending, oldest, dead, paused, incidents] {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}
