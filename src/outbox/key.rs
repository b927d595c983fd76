//! The dedupe key of a notification: the same alerts in the same state for the same
//! receiver and group give the same key, whichever Alertmanager of an HA pair sent it and
//! however often it retried.

use sha2::{Digest as _, Sha256};

use crate::alert::Notification;

/// `sha256(receiver, groupKey, status, sorted "fingerprint startsAt" lines)` in hex.
pub fn dedupe_key(receiver: &str, n: &Notification) -> String {
    let mut alerts: Vec<String> = n
        .alerts
        .iter()
        .map(|a| {
            let id = if a.fingerprint.is_empty() {
                // Without a fingerprint, the labels identify the alert.
                format!("{:?}", a.labels)
            } else {
                a.fingerprint.clone()
            };
            format!(
                "{id} {} {}",
                a.starts_at.timestamp_nanos_opt().unwrap_or_default(),
                a.status.as_str()
            )
        })
        .collect();
    alerts.sort();
    let mut hasher = Sha256::new();
    for field in [receiver, n.group_key.as_str(), n.status.as_str()] {
        hasher.update(field.as_bytes());
        hasher.update(b"\n");
    }
    for alert in &alerts {
        hasher.update(alert.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// The incident a notification belongs to — its receiver and Alertmanager group — as a
/// short hex key: deliveries of one incident go out in the order they arrived.
pub fn incident_key(receiver: &str, n: &Notification) -> String {
    let mut hasher = Sha256::new();
    hasher.update(receiver.as_bytes());
    hasher.update(b"\n");
    hasher.update(n.group_key.as_bytes());
    hex::encode(hasher.finalize().get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Notification {
        Notification::parse(json.as_bytes()).unwrap()
    }

    const A: &str = r#"{"status":"firing","groupKey":"g","alerts":[
        {"status":"firing","startsAt":"2024-01-01T00:00:00Z","fingerprint":"a"},
        {"status":"firing","startsAt":"2024-01-01T00:00:01Z","fingerprint":"b"}]}"#;
    const A_REORDERED: &str = r#"{"status":"firing","groupKey":"g","externalURL":"http://am-2:9093","alerts":[
        {"status":"firing","startsAt":"2024-01-01T00:00:01Z","fingerprint":"b"},
        {"status":"firing","startsAt":"2024-01-01T00:00:00Z","fingerprint":"a"}]}"#;
    const A_RESOLVED: &str = r#"{"status":"resolved","groupKey":"g","alerts":[
        {"status":"resolved","startsAt":"2024-01-01T00:00:00Z","endsAt":"2024-01-01T01:00:00Z","fingerprint":"a"},
        {"status":"resolved","startsAt":"2024-01-01T00:00:01Z","endsAt":"2024-01-01T01:00:00Z","fingerprint":"b"}]}"#;
    const A_RESTARTED: &str = r#"{"status":"firing","groupKey":"g","alerts":[
        {"status":"firing","startsAt":"2024-01-02T00:00:00Z","fingerprint":"a"},
        {"status":"firing","startsAt":"2024-01-01T00:00:01Z","fingerprint":"b"}]}"#;

    #[test]
    fn same_alerts_same_key_whoever_sends_them() {
        assert_eq!(
            dedupe_key("r", &parse(A)),
            dedupe_key("r", &parse(A_REORDERED))
        );
    }

    #[test]
    fn status_receiver_and_start_times_matter() {
        let a = dedupe_key("r", &parse(A));
        assert_ne!(a, dedupe_key("r", &parse(A_RESOLVED)));
        assert_ne!(a, dedupe_key("other", &parse(A)));
        assert_ne!(a, dedupe_key("r", &parse(A_RESTARTED)));
    }
}
