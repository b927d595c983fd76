//! Alertmanager v4 notifications for the relay tests, as Alertmanager sends them.

use serde_json::json;

/// A firing notification of the `critical` receiver, named `name`, with one alert per
/// (id, fingerprint); its group key is the name's.
pub(crate) fn firing(name: &str, alerts: &[(String, String)]) -> String {
    let alerts: Vec<_> = alerts
        .iter()
        .map(|(id, fingerprint)| {
            json!({
                "status": "firing",
                "labels": { "alertname": name, "severity": "critical", "id": id },
                "annotations": { "summary": format!("{name} {id}") },
                "startsAt": "2026-11-22T02:10:05Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint,
            })
        })
        .collect();
    json!({
        "version": "4", "status": "firing", "receiver": "critical",
        "groupKey": format!("{{}}:{{alertname=\"{name}\", batch=\"{}\"}}", alerts.len()),
        "groupLabels": { "alertname": name }, "commonLabels": { "alertname": name, "severity": "critical" },
        "externalURL": "http://am:9093", "alerts": alerts,
    })
    .to_string()
}

/// [`firing`] with one alert of a random fingerprint.
pub(crate) fn single(name: &str) -> String {
    firing(
        name,
        &[("1".to_owned(), format!("{:016x}", fastrand::u64(..)))],
    )
}
