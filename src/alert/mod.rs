//! Alertmanager notifications: the webhook payload (version 4), parsed leniently, and the
//! view of it that templates render ([`render`]).

mod filters;
pub mod render;
#[cfg(test)]
pub(crate) mod testing;
pub mod view;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a notification or an alert is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One webhook notification. Unknown fields are ignored: Alertmanager keeps adding them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: Status,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: Status,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Alertmanager sends `0001-01-01T00:00:00Z` while an alert fires.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }

    /// When a resolved alert ended; `None` while firing or for the zero time.
    pub fn ended(&self) -> Option<DateTime<Utc>> {
        self.ends_at.filter(|t| t.timestamp() > 0)
    }
}

/// Why a webhook body is not a notification.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("`{path}`: {message}")]
    Field { path: String, message: String },
    #[error("the notification has no alerts")]
    NoAlerts,
}

impl Notification {
    /// Parses a webhook body, naming the offending field on error.
    pub fn parse(body: &[u8]) -> Result<Notification, ParseError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let notification: Notification = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|error| {
                let path = error.path().to_string();
                let inner = error.into_inner();
                if inner.is_syntax() || inner.is_eof() || path == "." {
                    ParseError::Syntax {
                        line: inner.line(),
                        column: inner.column(),
                        message: strip_position(&inner.to_string()),
                    }
                } else {
                    ParseError::Field {
                        path,
                        message: strip_position(&inner.to_string()),
                    }
                }
            })?;
        deserializer.end().map_err(|inner| ParseError::Syntax {
            line: inner.line(),
            column: inner.column(),
            message: strip_position(&inner.to_string()),
        })?;
        if notification.alerts.is_empty() {
            return Err(ParseError::NoAlerts);
        }
        Ok(notification)
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message.get(..at).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"HighCPU\"}", "truncatedAlerts": 0,
      "status": "firing", "receiver": "critical",
      "groupLabels": {"alertname": "HighCPU"},
      "commonLabels": {"alertname": "HighCPU", "severity": "critical"},
      "commonAnnotations": {}, "externalURL": "http://am:9093",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "HighCPU", "severity": "critical", "instance": "web-1"},
        "annotations": {"summary": "CPU 使用率 92%"},
        "startsAt": "2024-01-02T07:04:05.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom:9090/graph?g0.expr=x", "fingerprint": "a1b2",
        "someFutureField": {"x": 1}
      }],
      "anotherNewField": true
    }"#;

    #[test]
    fn parses_a_v4_payload_and_ignores_new_fields() {
        let n = Notification::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(n.status, Status::Firing);
        assert_eq!(n.alerts[0].name(), "HighCPU");
        assert_eq!(n.alerts[0].ended(), None);
        assert_eq!(n.alerts[0].starts_at.timestamp(), 1_704_179_045);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Notification::parse(b"{\"status\": \"firing\", \"alerts\": [").unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON at line 1"), "{e}");
        let e = Notification::parse(br#"{"status": "burning", "alerts": []}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("`status`: unknown variant `burning`"),
            "{e}"
        );
        let e = Notification::parse(
            br#"{"status": "firing", "alerts": [{"status": "firing", "startsAt": "yesterday"}]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("`alerts[0].startsAt`"), "{e}");
        let e = Notification::parse(br#"{"status": "firing"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `alerts`"), "{e}");
        let e = Notification::parse(br#"{"status": "firing", "alerts": []}"#).unwrap_err();
        assert!(matches!(e, ParseError::NoAlerts));
        let e = Notification::parse(br#"{"status": "firing", "alerts": []} trailing"#).unwrap_err();
        assert!(e.to_string().contains("trailing"), "{e}");
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::Notification;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes never panic the parser: they parse or name a problem.
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            match Notification::parse(&body) {
                Ok(n) => prop_assert!(!n.alerts.is_empty()),
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        /// Near-valid payloads (a real one with a span of bytes replaced) never panic.
        #[test]
        fn mutated_payloads_never_panic(at in 0usize..1200, len in 0usize..40, fill in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut body = include_bytes!("../../examples/payloads/firing.json").to_vec();
            let at = at.min(body.len());
            let end = (at + len).min(body.len());
            body.splice(at..end, fill);
            let _ = Notification::parse(&body);
        }
    }
}
