//! What templates see: a notification flattened into ready-to-print fields — local times
//! in the configured zone, human durations in Chinese, silence links pre-filled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::{Alert, Notification, Status};

/// Labels shown on their own line; the rest are listed as "other labels".
const KEY_LABELS: &[&str] = &["alertname", "severity", "instance", "job"];

/// At most this many alerts of one view (a notification or a digest) are turned into
/// [`AlertView`]s; the rest are counted (`alert_count`) and shown as "…另有 N 条告警".
/// Five parts of the largest message (DingTalk, 20,000 bytes) hold about 200 full alert
/// blocks or 1,000 one-line digest entries of 100 bytes (an alert with an instance and a
/// summary), so an alert that could be shown is left out only when digest lines are
/// shorter than that — it is then counted. A storm's memory is bounded by this, not by
/// the number of alerts: `bench/storm.sh` measured 2,000 at ~40 MB peak and 1,000 at
/// ~30 MB for a 1 MiB notification to two robots.
pub const MAX_VIEW_ALERTS: usize = 1_000;

#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    pub status: &'static str,
    pub firing: bool,
    pub receiver: String,
    pub group_key: String,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    /// The incident's ack link (escalating receivers, firing messages); empty otherwise.
    pub ack_url: String,
    /// The common alert name, or the first alert's.
    pub alertname: String,
    /// The common severity, or the most severe one present.
    pub severity: String,
    pub severity_icon: &'static str,
    pub firing_count: usize,
    pub resolved_count: usize,
    pub truncated_alerts: u64,
    pub timezone: String,
    /// How many notifications this view stands for (more than 1 for a digest).
    pub notifications: usize,
    /// Alerts per severity (`"critical" → 3`), resolved ones under "resolved".
    pub severity_counts: BTreeMap<String, usize>,
    /// Every alert of the view, including those beyond [`MAX_VIEW_ALERTS`].
    pub alert_count: usize,
    /// The first alerts (firing first), at most [`MAX_VIEW_ALERTS`]. Templates see them
    /// through [`NotificationView::context`], one at a time.
    #[serde(skip)]
    pub alerts: Arc<[AlertView]>,
}

impl NotificationView {
    /// The template context: every field, with `alerts` as a lazy list — an alert becomes
    /// a template value only when a template reads it, so a context costs the same for
    /// one alert or a thousand.
    pub fn context(&self) -> Value {
        minijinja::context! {
            alerts => Value::from_object(AlertList(Arc::clone(&self.alerts))),
            ..Value::from(Serde(self))
        }
    }
}

/// A view's alerts as a template sequence, converted on access.
#[derive(Debug)]
struct AlertList(Arc<[AlertView]>);

impl Object for AlertList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .get(key.as_usize()?)
            .map(|alert| Value::from(Serde(alert)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub status: &'static str,
    pub firing: bool,
    pub alertname: String,
    pub severity: String,
    pub severity_icon: &'static str,
    pub summary: String,
    pub description: String,
    pub instance: String,
    pub job: String,
    pub labels: BTreeMap<String, String>,
    pub other_labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    /// How long it fired (resolved) or has been firing so far (at render time).
    pub duration: String,
    pub generator_url: String,
    pub silence_url: String,
    pub fingerprint: String,
}

/// Builds the view at `now` in `tz`. Firing alerts come first; order is otherwise kept.
/// Counts cover every alert; at most [`MAX_VIEW_ALERTS`] become [`AlertView`]s.
pub fn build(n: &Notification, tz: Tz, now: DateTime<Utc>) -> NotificationView {
    let mut sorted: Vec<&Alert> = n.alerts.iter().collect();
    sorted.sort_by_key(|a| a.status);
    let alerts: Vec<AlertView> = sorted
        .iter()
        .take(MAX_VIEW_ALERTS)
        .map(|a| alert(a, &n.external_url, tz, now))
        .collect();
    let firing_count = n
        .alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .count();
    let severity = n
        .common_labels
        .get("severity")
        .cloned()
        .or_else(|| {
            n.alerts
                .iter()
                .map(severity_of)
                .min_by_key(|s| severity_rank(s))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let mut severity_counts = BTreeMap::new();
    n.alerts
        .iter()
        .for_each(|a| count_severity(&mut severity_counts, a));
    NotificationView {
        status: n.status.as_str(),
        firing: n.status == Status::Firing,
        receiver: n.receiver.clone(),
        group_key: n.group_key.clone(),
        group_labels: n.group_labels.clone(),
        common_labels: n.common_labels.clone(),
        common_annotations: n.common_annotations.clone(),
        external_url: n.external_url.clone(),
        ack_url: String::new(),
        alertname: n
            .common_labels
            .get("alertname")
            .or_else(|| n.group_labels.get("alertname"))
            .map(String::as_str)
            .or_else(|| sorted.first().map(|a| a.name()))
            .unwrap_or_default()
            .to_owned(),
        severity_icon: icon(n.status, &severity),
        severity,
        firing_count,
        resolved_count: n.alerts.len() - firing_count,
        truncated_alerts: n.truncated_alerts,
        timezone: tz.name().to_owned(),
        notifications: 1,
        severity_counts,
        alert_count: n.alerts.len(),
        alerts: alerts.into(),
    }
}

fn severity_of(a: &Alert) -> &str {
    a.labels.get("severity").map_or("", String::as_str)
}

/// Alerts per severity (`"critical" → 3`), resolved ones under "resolved".
fn count_severity(counts: &mut BTreeMap<String, usize>, a: &Alert) {
    let key = if a.status == Status::Firing {
        severity_of(a)
    } else {
        "resolved"
    };
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// At most this many distinct alert names are remembered for a digest's title.
const MAX_DIGEST_NAMES: usize = 100;

/// One view standing for many notifications (a digest when a channel is over its rate
/// budget), built one notification at a time so a storm never holds every payload or
/// every alert: counts cover every alert, at most [`MAX_VIEW_ALERTS`] become views
/// (firing first), and the digest is firing if any alert fires.
#[derive(Debug)]
pub struct Digest {
    tz: Tz,
    notifications: usize,
    firing: Vec<AlertView>,
    resolved: Vec<AlertView>,
    firing_count: usize,
    alert_count: usize,
    severity_counts: BTreeMap<String, usize>,
    /// The most severe severity among firing alerts, and among all alerts.
    worst_firing: Option<String>,
    worst: Option<String>,
    names: std::collections::BTreeSet<String>,
    truncated_alerts: u64,
    receiver: String,
    external_url: String,
}

impl Digest {
    pub fn new(tz: Tz) -> Self {
        Self {
            tz,
            notifications: 0,
            firing: Vec::new(),
            resolved: Vec::new(),
            firing_count: 0,
            alert_count: 0,
            severity_counts: BTreeMap::new(),
            worst_firing: None,
            worst: None,
            names: std::collections::BTreeSet::new(),
            truncated_alerts: 0,
            receiver: String::new(),
            external_url: String::new(),
        }
    }

    /// How many notifications were added.
    pub fn notifications(&self) -> usize {
        self.notifications
    }

    /// Adds one notification as rendered at `now` (its arrival).
    pub fn add(&mut self, n: &Notification, now: DateTime<Utc>) {
        if self.notifications == 0 {
            self.receiver.clone_from(&n.receiver);
            self.external_url.clone_from(&n.external_url);
        }
        self.notifications += 1;
        self.truncated_alerts = self.truncated_alerts.saturating_add(n.truncated_alerts);
        for a in &n.alerts {
            self.alert_count += 1;
            count_severity(&mut self.severity_counts, a);
            let severity = severity_of(a);
            let worse = |worst: &Option<String>| {
                worst
                    .as_deref()
                    .is_none_or(|w| severity_rank(severity) < severity_rank(w))
            };
            if worse(&self.worst) {
                self.worst = Some(severity.to_owned());
            }
            if self.names.len() < MAX_DIGEST_NAMES && !self.names.contains(a.name()) {
                self.names.insert(a.name().to_owned());
            }
            let firing = a.status == Status::Firing;
            if firing {
                self.firing_count += 1;
                if worse(&self.worst_firing) {
                    self.worst_firing = Some(severity.to_owned());
                }
            }
            let kept = if firing {
                &mut self.firing
            } else {
                &mut self.resolved
            };
            if kept.len() < MAX_VIEW_ALERTS {
                kept.push(alert(a, &n.external_url, self.tz, now));
            }
        }
    }

    pub fn finish(self) -> NotificationView {
        let firing = self.firing_count > 0;
        let severity = if firing {
            self.worst_firing
        } else {
            self.worst
        }
        .unwrap_or_default();
        let alertname = match (self.names.len(), self.names.iter().next()) {
            (1, Some(name)) => name.clone(),
            (n, Some(first)) if n < MAX_DIGEST_NAMES => format!("{first} 等 {n} 种告警"),
            (_, Some(first)) => format!("{first} 等 {MAX_DIGEST_NAMES}+ 种告警"),
            _ => String::new(),
        };
        let mut alerts = self.firing;
        let room = MAX_VIEW_ALERTS.saturating_sub(alerts.len());
        alerts.extend(self.resolved.into_iter().take(room));
        NotificationView {
            status: if firing { "firing" } else { "resolved" },
            firing,
            receiver: self.receiver,
            group_key: String::new(),
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            external_url: self.external_url,
            ack_url: String::new(),
            alertname,
            severity_icon: icon(
                if firing {
                    Status::Firing
                } else {
                    Status::Resolved
                },
                &severity,
            ),
            severity,
            firing_count: self.firing_count,
            resolved_count: self.alert_count - self.firing_count,
            truncated_alerts: self.truncated_alerts,
            timezone: self.tz.name().to_owned(),
            notifications: self.notifications,
            severity_counts: self.severity_counts,
            alert_count: self.alert_count,
            alerts: alerts.into(),
        }
    }
}

fn alert(a: &Alert, external_url: &str, tz: Tz, now: DateTime<Utc>) -> AlertView {
    let get = |map: &BTreeMap<String, String>, key: &str| map.get(key).cloned().unwrap_or_default();
    let severity = get(&a.labels, "severity");
    let end = a.ended().unwrap_or(now);
    AlertView {
        status: a.status.as_str(),
        firing: a.status == Status::Firing,
        alertname: a.name().to_owned(),
        severity_icon: icon(a.status, &severity),
        severity,
        summary: get(&a.annotations, "summary"),
        description: get(&a.annotations, "description"),
        instance: get(&a.labels, "instance"),
        job: get(&a.labels, "job"),
        other_labels: a
            .labels
            .iter()
            .filter(|(k, _)| !KEY_LABELS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        starts_at: local_time(a.starts_at, tz),
        ends_at: a.ended().map(|t| local_time(t, tz)).unwrap_or_default(),
        duration: human_duration((end - a.starts_at).to_std().unwrap_or_default()),
        generator_url: a.generator_url.clone(),
        silence_url: silence_url(external_url, &a.labels),
        fingerprint: a.fingerprint.clone(),
    }
}

/// Lower is more severe; unknown severities sort last. The kit's four levels are
/// critical, high, warning and info.
pub fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" | "page" | "emergency" => 0,
        "high" | "error" | "major" => 1,
        "warning" | "minor" => 2,
        "info" | "notice" => 3,
        _ => 4,
    }
}

fn icon(status: Status, severity: &str) -> &'static str {
    match (status, severity_rank(severity)) {
        (Status::Resolved, _) => "✅",
        (_, 0) => "🔴",
        (_, 1 | 2) => "🟠",
        (_, 3) => "🔵",
        _ => "⚪",
    }
}

/// `2024-01-02 15:04:05` in `tz`.
pub fn local_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `3天2小时`, `1小时5分`, `5分12秒`, `12秒`: the two largest units.
pub fn human_duration(d: Duration) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "天"), (3_600, "小时"), (60, "分"), (1, "秒")];
    let total = d.as_secs();
    let Some(first) = UNITS.iter().position(|(size, _)| total >= *size) else {
        return "0秒".to_owned();
    };
    let (size, name) = UNITS[first];
    let mut out = format!("{}{name}", total / size);
    if let Some(&(next, next_name)) = UNITS.get(first + 1) {
        let n = (total % size) / next;
        if n > 0 {
            out.push_str(&format!("{n}{next_name}"));
        }
    }
    out
}

/// Alertmanager's UI "new silence" form, pre-filled with the alert's labels.
pub fn silence_url(external_url: &str, labels: &BTreeMap<String, String>) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    let matchers: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let filter = format!("{{{}}}", matchers.join(","));
    format!(
        "{}/#/silences/new?filter={}",
        external_url.trim_end_matches('/'),
        utf8_percent_encode(&filter, NON_ALPHANUMERIC)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let s = Duration::from_secs;
        assert_eq!(human_duration(s(0)), "0秒");
        assert_eq!(human_duration(s(12)), "12秒");
        assert_eq!(human_duration(s(312)), "5分12秒");
        assert_eq!(human_duration(s(3900)), "1小时5分");
        assert_eq!(human_duration(s(3600)), "1小时");
        assert_eq!(human_duration(s(3 * 86400 + 7200 + 59)), "3天2小时");
    }

    #[test]
    fn times_are_local() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T07:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            local_time(t, chrono_tz::Asia::Shanghai),
            "2024-01-02 15:04:05"
        );
        assert_eq!(local_time(t, chrono_tz::UTC), "2024-01-02 07:04:05");
    }

    #[test]
    fn the_kits_four_severities_rank_in_order() {
        let ranks: Vec<u8> = ["critical", "high", "warning", "info", "none"]
            .into_iter()
            .map(severity_rank)
            .collect();
        assert_eq!(ranks, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn silence_links_prefill_matchers() {
        let labels = BTreeMap::from([
            ("alertname".to_owned(), "HighCPU".to_owned()),
            ("instance".to_owned(), "a\"b".to_owned()),
        ]);
        let url = silence_url("http://am:9093/", &labels);
        assert_eq!(
            url,
            "http://am:9093/#/silences/new?filter=%7Balertname%3D%22HighCPU%22%2Cinstance%3D%22a%5C%22b%22%7D"
        );
        assert_eq!(silence_url("", &labels), "");
    }
}
