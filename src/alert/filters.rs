//! The template filters custom templates get: `localtime` and `duration`.
//!
//! Their input comes from payloads (label and annotation values, times), so no value may
//! panic them: the release build aborts on a panic. `duration` takes any number (negative
//! and NaN show as `0秒`, beyond `Duration::MAX` it saturates); `localtime` names a time
//! it cannot show as a template error.

use std::time::Duration;

use minijinja::value::Value;
use minijinja::{Error, ErrorKind};

/// `localtime`: an RFC 3339 time or Unix seconds → `2024-01-02 15:04:05` in `tz`.
pub(super) fn localtime(value: &Value, tz: chrono_tz::Tz) -> Result<String, Error> {
    let invalid = |message: String| Error::new(ErrorKind::InvalidOperation, message);
    let time = if let Some(text) = value.as_str() {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| invalid(format!("localtime: `{text}`: {e}")))?
    } else {
        let seconds = f64::try_from(value.clone())
            .map_err(|_| invalid("localtime expects a time string or Unix seconds".to_owned()))?;
        // `as` saturates, and the range check below refuses the saturated ends; NaN
        // would become 0 (1970), so it is refused first.
        Some(seconds * 1000.0)
            .filter(|ms| ms.is_finite())
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms as i64))
            .ok_or_else(|| invalid(format!("localtime: {seconds} seconds is out of range")))?
    };
    Ok(super::view::local_time(time, tz))
}

/// `duration`: seconds → `1小时5分`.
pub(super) fn duration(seconds: f64) -> String {
    super::view::human_duration(seconds_to_duration(seconds))
}

/// Negative and NaN → zero; too large (or infinite) → `Duration::MAX`.
fn seconds_to_duration(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_takes_every_float() {
        let max = "213503982334601天7小时";
        for (seconds, shown) in [
            (3900.0, "1小时5分"),
            (0.4, "0秒"),
            (-5.0, "0秒"),
            (f64::NAN, "0秒"),
            (f64::NEG_INFINITY, "0秒"),
            (f64::INFINITY, max),
            (f64::MAX, max),
            (1.8446744073709552e19, max),
        ] {
            assert_eq!(duration(seconds), shown, "{seconds}");
        }
    }

    #[test]
    fn localtime_refuses_times_it_cannot_show() {
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(
            localtime(&Value::from(1_704_179_045), tz).unwrap(),
            "2024-01-02 15:04:05"
        );
        for seconds in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 9e15, -9e15] {
            let error = localtime(&Value::from(seconds), tz).unwrap_err();
            assert!(error.to_string().contains("out of range"), "{error}");
        }
        // The ends of chrono's range still print (the local time may pass them).
        for seconds in [8.2e12, -8.2e12] {
            assert!(localtime(&Value::from(seconds), tz).is_ok(), "{seconds}");
        }
        let error = localtime(&Value::from("yesterday"), tz).unwrap_err();
        assert!(error.to_string().contains("`yesterday`"), "{error}");
    }
}
