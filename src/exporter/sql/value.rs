//! Database values, independent of the driver, and their coercion into sample values and
//! label values.
//!
//! Coercion rules (documented in the README): integers and floats as they are; DECIMAL
//! and numeric strings parsed; unsigned integers beyond 2^53 keep their nearest f64 with
//! a warning (precision is lost); booleans 1/0; DATE, DATETIME and TIMESTAMP as Unix
//! seconds (zone-less values are read as UTC); NULL yields no sample.

use chrono::{NaiveDate, NaiveDateTime};

/// One cell of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// DECIMAL/NUMERIC kept as text so no precision is lost before the final f64.
    Decimal(String),
    /// Unix seconds of a DATE/DATETIME/TIMESTAMP.
    Time(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Why a cell could not become a sample value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoerceError {
    #[error("`{0}` is not a number")]
    NotNumeric(String),
    #[error("binary value is not a number")]
    Binary,
}

/// A sample value, and whether it lost precision on the way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    pub value: f64,
    pub lossy: bool,
}

/// Integers up to this are exact in an f64.
const EXACT_F64: u64 = 1 << 53;

impl Value {
    /// The sample value of this cell; `Ok(None)` for NULL (the sample is skipped).
    pub fn to_number(&self) -> Result<Option<Number>, CoerceError> {
        let exact = |value| {
            Ok(Some(Number {
                value,
                lossy: false,
            }))
        };
        match self {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(Number {
                value: *i as f64,
                lossy: i.unsigned_abs() > EXACT_F64,
            })),
            Value::UInt(u) => Ok(Some(Number {
                value: *u as f64,
                lossy: *u > EXACT_F64,
            })),
            Value::Float(f) => exact(*f),
            Value::Bool(b) => exact(f64::from(u8::from(*b))),
            Value::Time(t) => exact(*t),
            Value::Decimal(text) | Value::Text(text) => parse_number(text).map(Some),
            Value::Bytes(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => parse_number(text).map(Some),
                Err(_) => Err(CoerceError::Binary),
            },
        }
    }

    /// The label value of this cell (NULL → empty string, which Prometheus treats as
    /// an absent label).
    pub fn to_label(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Bool(b) => b.to_string(),
            Value::Time(t) => format_time(*t),
            Value::Decimal(text) | Value::Text(text) => text.clone(),
            Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

/// Dates as `2024-01-31`, date-times as `2024-01-31 08:00:00` (UTC).
fn format_time(seconds: f64) -> String {
    let whole = seconds.floor();
    match chrono::DateTime::from_timestamp(whole as i64, 0) {
        Some(dt) if whole == seconds && dt.time() == chrono::NaiveTime::MIN => {
            dt.format("%Y-%m-%d").to_string()
        }
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => format_float(seconds),
    }
}

fn format_float(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.0}")
    } else {
        f.to_string()
    }
}

/// Parses a numeric string (`12`, `-3.5`, `1e3`, ` 42 `, `NaN`, `+Inf`); DECIMAL text
/// with more digits than an f64 holds is rounded and flagged lossy.
pub fn parse_number(text: &str) -> Result<Number, CoerceError> {
    let trimmed = text.trim();
    let value: f64 = trimmed
        .parse()
        .map_err(|_| CoerceError::NotNumeric(truncate(trimmed)))?;
    let digits = trimmed.chars().filter(char::is_ascii_digit).count();
    Ok(Number {
        value,
        lossy: digits > 15 && value.abs() >= EXACT_F64 as f64,
    })
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.fff]` or `YYYY-MM-DDTHH:MM:SS[.fff]` (UTC)
/// into Unix seconds.
pub fn parse_datetime(text: &str) -> Option<f64> {
    let text = text.trim();
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, format) {
            return Some(dt.and_utc().timestamp_micros() as f64 / 1e6);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: &Value) -> Option<f64> {
        v.to_number().unwrap().map(|n| n.value)
    }

    #[test]
    fn coerces_every_kind() {
        assert_eq!(num(&Value::Null), None);
        assert_eq!(num(&Value::Int(-7)), Some(-7.0));
        assert_eq!(num(&Value::UInt(7)), Some(7.0));
        assert_eq!(num(&Value::Float(0.25)), Some(0.25));
        assert_eq!(num(&Value::Bool(true)), Some(1.0));
        assert_eq!(num(&Value::Decimal("12345.6789".into())), Some(12345.6789));
        assert_eq!(num(&Value::Text(" 42 ".into())), Some(42.0));
        assert_eq!(num(&Value::Bytes(b"3.5".to_vec())), Some(3.5));
        assert_eq!(num(&Value::Time(1.7e9)), Some(1.7e9));
        assert!(Value::Text("abc".into()).to_number().is_err());
        assert!(Value::Bytes(vec![0xff, 0xfe]).to_number().is_err());
    }

    #[test]
    fn flags_precision_loss_beyond_2_pow_53() {
        let big = Value::UInt(u64::MAX).to_number().unwrap().unwrap();
        assert!(big.lossy);
        assert_eq!(big.value, 18446744073709551615.0);
        assert!(!Value::UInt(1 << 53).to_number().unwrap().unwrap().lossy);
        assert!(
            Value::UInt((1 << 53) + 1)
                .to_number()
                .unwrap()
                .unwrap()
                .lossy
        );
        assert!(
            Value::Decimal("123456789012345678901234.5".into())
                .to_number()
                .unwrap()
                .unwrap()
                .lossy
        );
        assert!(
            !Value::Decimal("1234.5678".into())
                .to_number()
                .unwrap()
                .unwrap()
                .lossy
        );
    }

    #[test]
    fn dates_become_unix_seconds() {
        assert_eq!(parse_datetime("1970-01-02"), Some(86400.0));
        assert_eq!(parse_datetime("2023-11-14 22:13:20"), Some(1_700_000_000.0));
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.5"),
            Some(1_700_000_000.5)
        );
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn labels() {
        assert_eq!(Value::Null.to_label(), "");
        assert_eq!(Value::Float(2.0).to_label(), "2");
        assert_eq!(Value::Float(2.5).to_label(), "2.5");
        assert_eq!(Value::Time(86400.0).to_label(), "1970-01-02");
        assert_eq!(
            Value::Time(1_700_000_000.0).to_label(),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            Value::Text("充值 \"x\"\n".into()).to_label(),
            "充值 \"x\"\n"
        );
    }
}
