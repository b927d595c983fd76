//! Notifications for tests: a fixed clock, alerts, notifications and their views.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::view::{self, NotificationView};
use super::{Alert, Notification, Status};

pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T02:10:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn alert(name: &str, status: Status, summary: &str) -> Alert {
    Alert {
        status,
        labels: BTreeMap::from([
            ("alertname".to_owned(), name.to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
            ("instance".to_owned(), "wallet-db:9788".to_owned()),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), summary.to_owned())]),
        starts_at: t0(),
        ends_at: (status == Status::Resolved).then(|| t0() + Duration::seconds(3942)),
        generator_url: "http://prom:9090/graph?g0.expr=up".to_owned(),
        fingerprint: format!("fp-{name}"),
    }
}

pub(crate) fn notification(status: Status, alerts: Vec<Alert>) -> Notification {
    Notification {
        version: "4".to_owned(),
        group_key: "{}:{alertname=\"X\"}".to_owned(),
        truncated_alerts: 0,
        status,
        receiver: "critical".to_owned(),
        group_labels: BTreeMap::new(),
        common_labels: BTreeMap::from([("severity".to_owned(), "critical".to_owned())]),
        common_annotations: BTreeMap::new(),
        external_url: "http://am:9093".to_owned(),
        alerts,
    }
}

pub(crate) fn view_of(n: &Notification) -> NotificationView {
    view::build(n, chrono_tz::Asia::Shanghai, t0() + Duration::seconds(150))
}

pub(crate) fn storm(count: usize, summary: &str) -> Notification {
    notification(
        Status::Firing,
        (0..count)
            .map(|i| alert(&format!("Alert{i:04}"), Status::Firing, summary))
            .collect(),
    )
}

/// A custom template: zoned times and human durations, numbered headers.
pub(crate) const CUSTOM: &str = r#"{% macro title() %}自定义{% endmacro %}
{% macro header(part, parts) %}H{{ part }}/{{ parts }}
{% endmacro %}
{% macro alert(a, n) %}[{{ "2024-01-02T07:04:05Z" | localtime }} {{ 3900 | duration }} {{ a.alertname }}]
{% endmacro %}
{% macro footer(omitted) %}{% if omitted %}+{{ omitted }}{% endif %}{% endmacro %}"#;
