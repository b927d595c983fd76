//! What one delivery attempt came to, in the terms the outbox acts on.
//!
//! Every channel reports failure its own way — DingTalk and WeCom inside an HTTP 200, the
//! SMS gateways as error codes in a JSON body — so each channel has a pure
//! `classify(status, body) -> Outcome` and the outbox only ever sees this enum
//! (SPEC §3 "Error classes").

use std::time::Duration;

/// The result of one delivery attempt, classified for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The channel accepted the message. The outbox marks the row delivered.
    Delivered,
    /// The channel refused because this target (robot, number, account) is over its rate
    /// limit. The outbox pauses the target for `retry_after` — or its own default when
    /// `None` — and keeps the row; rate limiting never counts as a failed attempt.
    RateLimited {
        /// How long the channel says (or is known) to block the target.
        retry_after: Option<Duration>,
    },
    /// The attempt may succeed if repeated: 5xx, timeouts, transport errors, gateway junk.
    /// The outbox retries with capped exponential backoff and jitter.
    Transient(String),
    /// Repeating the same request cannot succeed: bad token, signature, key, template or
    /// number. The outbox moves the row to the dead-letter state, visible on `/` and in the
    /// `lookout_` metrics, so that someone fixes the configuration.
    Permanent(String),
    /// The channel rejected the message as too long. The outbox re-renders it split into
    /// smaller parts once, then truncated; a second `TooLong` goes to the dead letters.
    TooLong(String),
}

impl Outcome {
    /// A stable, lowercase name for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::Transient(_) => "transient",
            Outcome::Permanent(_) => "permanent",
            Outcome::TooLong(_) => "too_long",
        }
    }

    /// Whether the channel accepted the message.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered)
    }

    /// How bad the outcome is when several have to be folded into one (an SMS request to
    /// several numbers): a permanent failure outranks a length problem, which outranks a
    /// rate limit, which outranks a transient failure, which outranks delivery.
    fn severity(&self) -> u8 {
        match self {
            Outcome::Delivered => 0,
            Outcome::Transient(_) => 1,
            Outcome::RateLimited { .. } => 2,
            Outcome::TooLong(_) => 3,
            Outcome::Permanent(_) => 4,
        }
    }

    /// The more severe of two outcomes (the first one on a tie).
    pub(crate) fn worst(self, other: Outcome) -> Outcome {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// Classifies a reply by its HTTP status alone: `None` for 2xx (the body decides), else
/// 429 → rate limited, 408/5xx → transient, and anything else (4xx, an unexpected 1xx or
/// 3xx) → permanent, because repeating the same request gets the same answer.
pub(crate) fn by_status(status: u16, body: &[u8]) -> Option<Outcome> {
    match status {
        200..=299 => None,
        429 => Some(Outcome::RateLimited { retry_after: None }),
        408 | 500..=599 => Some(Outcome::Transient(format!(
            "http {status}: {}",
            snippet(body)
        ))),
        _ => Some(Outcome::Permanent(format!(
            "http {status}: {}",
            snippet(body)
        ))),
    }
}

/// The start of a reply body for an error message: lossy UTF-8, cut on a character
/// boundary after at most [`SNIPPET_BYTES`] bytes, whitespace collapsed.
pub(crate) fn snippet(body: &[u8]) -> String {
    let collapsed = String::from_utf8_lossy(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if collapsed.is_empty() {
        return "(empty body)".to_owned();
    }
    if collapsed.len() <= SNIPPET_BYTES {
        return collapsed;
    }
    let mut out = String::with_capacity(SNIPPET_BYTES + '…'.len_utf8());
    for c in collapsed.chars() {
        if out.len() + c.len_utf8() > SNIPPET_BYTES {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// How much of a reply body goes into an error message.
const SNIPPET_BYTES: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let cases: &[(u16, Option<&str>)] = &[
            (200, None),
            (204, None),
            (429, Some("rate_limited")),
            (408, Some("transient")),
            (500, Some("transient")),
            (502, Some("transient")),
            (503, Some("transient")),
            (400, Some("permanent")),
            (401, Some("permanent")),
            (403, Some("permanent")),
            (404, Some("permanent")),
            (301, Some("permanent")),
        ];
        for (status, want) in cases {
            let got = by_status(*status, b"x").map(|o| o.kind());
            assert_eq!(got, *want, "status {status}");
        }
    }

    #[test]
    fn worst_prefers_the_more_severe() {
        let t = Outcome::Transient("t".into());
        let p = Outcome::Permanent("p".into());
        let r = Outcome::RateLimited { retry_after: None };
        assert_eq!(Outcome::Delivered.worst(t.clone()), t);
        assert_eq!(t.clone().worst(r.clone()), r);
        assert_eq!(r.clone().worst(p.clone()), p);
        assert_eq!(p.clone().worst(Outcome::Delivered), p);
    }

    #[test]
    fn snippet_cuts_on_a_char_boundary() {
        let long = "告".repeat(100); // 300 bytes
        let s = snippet(long.as_bytes());
        assert!(s.len() <= SNIPPET_BYTES + '…'.len_utf8());
        assert!(s.ends_with('…'));
        assert_eq!(snippet(b"  a \n b "), "a b");
        assert_eq!(snippet(b""), "(empty body)");
        assert_eq!(snippet(&[0xff, b'a']), "\u{fffd}a");
    }
}
