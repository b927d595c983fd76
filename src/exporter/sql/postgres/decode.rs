//! PostgreSQL binary values → [`Value`]: numbers, times and the common non-text types a
//! label column may have (enum, uuid, inet/cidr, macaddr, time, json/jsonb, citext,
//! NUMERIC of any size and NaN). Each cell is read as raw bytes and decoded by its type,
//! so a type the driver has no Rust mapping for still carries its text. Anything else
//! becomes NULL (cast it to text in SQL).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use tokio_postgres::types::{FromSql, Kind, Type};

use crate::exporter::sql::value::Value;

/// One cell's bytes, whatever its type; `None` for SQL NULL.
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Reads cell `i` of `row`, of type `ty`; anything unreadable becomes NULL.
pub(super) fn cell(row: &tokio_postgres::Row, i: usize, ty: &Type) -> Value {
    match row.try_get::<_, Raw<'_>>(i) {
        Ok(Raw(Some(raw))) => decode(ty, raw).unwrap_or(Value::Null),
        Ok(Raw(None)) | Err(_) => Value::Null,
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Option<Value> {
    fn parse<'a, T: FromSql<'a>>(ty: &Type, raw: &'a [u8]) -> Option<T> {
        T::from_sql(ty, raw).ok()
    }
    if let Kind::Domain(base) = ty.kind() {
        return decode(base, raw);
    }
    if let Kind::Enum(_) = ty.kind() {
        return text(raw);
    }
    Some(match *ty {
        Type::BOOL => Value::Bool(parse(ty, raw)?),
        Type::INT2 => Value::Int(parse::<i16>(ty, raw)?.into()),
        Type::INT4 => Value::Int(parse::<i32>(ty, raw)?.into()),
        Type::INT8 => Value::Int(parse(ty, raw)?),
        Type::OID => Value::UInt(parse::<u32>(ty, raw)?.into()),
        Type::FLOAT4 => Value::Float(parse::<f32>(ty, raw)?.into()),
        Type::FLOAT8 => Value::Float(parse(ty, raw)?),
        Type::NUMERIC => Value::Decimal(numeric(raw)?),
        Type::DATE => {
            let date: chrono::NaiveDate = parse(ty, raw)?;
            Value::Time(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp() as f64)
        }
        Type::TIMESTAMP => {
            let at: chrono::NaiveDateTime = parse(ty, raw)?;
            Value::Time(at.and_utc().timestamp_micros() as f64 / 1e6)
        }
        Type::TIMESTAMPTZ => {
            let at: chrono::DateTime<chrono::Utc> = parse(ty, raw)?;
            Value::Time(at.timestamp_micros() as f64 / 1e6)
        }
        Type::TIME => Value::Text(time_of_day(parse(&Type::INT8, raw)?)),
        Type::INTERVAL => Value::Float(interval_seconds(raw)?),
        Type::UUID => Value::Text(uuid(raw)?),
        Type::INET | Type::CIDR => Value::Text(inet(raw, *ty == Type::CIDR)?),
        Type::MACADDR | Type::MACADDR8 => Value::Text(mac(raw)),
        // jsonb: a version byte (1), then the text.
        Type::JSONB => return text(raw.strip_prefix(&[1])?),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::CHAR
        | Type::UNKNOWN
        | Type::JSON
        | Type::XML => return text(raw),
        // Extension types whose binary form is their text.
        _ if matches!(ty.name(), "citext" | "ltree" | "lquery" | "ltxtquery") => {
            return text(raw);
        }
        _ => return None,
    })
}

fn text(raw: &[u8]) -> Option<Value> {
    std::str::from_utf8(raw)
        .ok()
        .map(|s| Value::Text(s.to_owned()))
}

fn be_u16(raw: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*raw.get(at)?, *raw.get(at + 1)?]))
}

fn be_i32(raw: &[u8], at: usize) -> Option<i32> {
    let bytes = raw.get(at..at + 4)?;
    Some(i32::from_be_bytes(bytes.try_into().ok()?))
}

fn be_i64(raw: &[u8], at: usize) -> Option<i64> {
    let bytes = raw.get(at..at + 8)?;
    Some(i64::from_be_bytes(bytes.try_into().ok()?))
}

/// NUMERIC as PostgreSQL prints it: any number of digits, its display scale, `NaN`,
/// `Infinity`, `-Infinity`. Binary form: ndigits, weight, sign, dscale (16 bits each),
/// then base-10000 digits, the first of weight `weight`.
fn numeric(raw: &[u8]) -> Option<String> {
    let ndigits = usize::from(be_u16(raw, 0)?);
    let weight = i32::from(be_u16(raw, 2)? as i16);
    let sign = be_u16(raw, 4)?;
    let dscale = usize::from(be_u16(raw, 6)?);
    match sign {
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => {}
    }
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| be_u16(raw, 8 + 2 * k))
        .collect::<Option<_>>()?;
    // Digit `k` has weight `weight - k`: group of weight `w` is digit `weight - w`.
    let group = |w: i32| {
        usize::try_from(weight - w)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for w in (0..=weight).rev() {
            let _ = if w == weight {
                write!(out, "{}", group(w))
            } else {
                write!(out, "{:04}", group(w))
            };
        }
    }
    if dscale > 0 {
        let mut fraction = String::new();
        let mut w = -1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", group(w));
            w -= 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Some(out)
}

/// TIME (microseconds since midnight) as `08:30:05` or `08:30:05.25`.
fn time_of_day(micros: i64) -> String {
    let (seconds, fraction) = (micros.div_euclid(1_000_000), micros.rem_euclid(1_000_000));
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction > 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

/// INTERVAL as seconds, as `EXTRACT(EPOCH FROM …)` counts them (a month is 30 days, a
/// year 365.25 days). Binary form: microseconds (64 bits), days, months (32 bits each).
fn interval_seconds(raw: &[u8]) -> Option<f64> {
    const DAY: f64 = 86_400.0;
    let micros = be_i64(raw, 0)?;
    let days = be_i32(raw, 8)?;
    let months = be_i32(raw, 12)?;
    let years = f64::from(months / 12);
    Some(
        micros as f64 / 1e6
            + f64::from(days) * DAY
            + years * 365.25 * DAY
            + f64::from(months % 12) * 30.0 * DAY,
    )
}

fn uuid(raw: &[u8]) -> Option<String> {
    if raw.len() != 16 {
        return None;
    }
    let mut out = String::with_capacity(36);
    for (i, byte) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    Some(out)
}

/// INET/CIDR: family (2 = IPv4, 3 = IPv6), prefix bits, is-cidr, address length,
/// address. An inet shows its prefix only when it is not a single host; a cidr always.
fn inet(raw: &[u8], cidr: bool) -> Option<String> {
    let (family, bits) = (*raw.first()?, *raw.get(1)?);
    let address = raw.get(4..)?;
    let (text, full) = match family {
        2 => (
            Ipv4Addr::from(<[u8; 4]>::try_from(address).ok()?).to_string(),
            32,
        ),
        3 => (
            Ipv6Addr::from(<[u8; 16]>::try_from(address).ok()?).to_string(),
            128,
        ),
        _ => return None,
    };
    Some(if cidr || bits != full {
        format!("{text}/{bits}")
    } else {
        text
    })
}

fn mac(raw: &[u8]) -> String {
    raw.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((digits.len() as u16).to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(dscale.to_be_bytes());
        for d in digits {
            raw.extend(d.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_print_as_postgres_prints_them() {
        let cases: [(i16, u16, u16, &[u16], &str); 8] = [
            (0, 0, 2, &[12, 5000], "12.50"),
            (-1, 0x4000, 4, &[42], "-0.0042"),
            (1, 0, 0, &[1, 0], "10000"),
            (0, 0, 0, &[], "0"),
            (-2, 0, 8, &[12], "0.00000012"),
            (2, 0, 1, &[7, 0, 1], "700000001.0"),
            (0, 0xC000, 0, &[], "NaN"),
            (0, 0xF000, 0, &[], "-Infinity"),
        ];
        for (weight, sign, dscale, digits, want) in cases {
            let raw = numeric_bytes(weight, sign, dscale, digits);
            assert_eq!(numeric(&raw).as_deref(), Some(want), "{digits:?}");
        }
        assert_eq!(numeric(&[0, 1]), None, "truncated input");
    }

    #[test]
    fn times_and_intervals() {
        assert_eq!(time_of_day(30_605_000_000), "08:30:05");
        assert_eq!(time_of_day(30_605_250_000), "08:30:05.25");
        let mut raw = Vec::new();
        raw.extend(1_500_000i64.to_be_bytes());
        raw.extend(2i32.to_be_bytes());
        raw.extend(13i32.to_be_bytes());
        let want = 1.5 + 2.0 * 86_400.0 + 365.25 * 86_400.0 + 30.0 * 86_400.0;
        assert_eq!(interval_seconds(&raw), Some(want));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            inet(&[2, 24, 0, 4, 192, 168, 1, 5], false).as_deref(),
            Some("192.168.1.5/24")
        );
        assert_eq!(
            inet(&[2, 32, 0, 4, 10, 1, 2, 3], false).as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(
            inet(&[2, 8, 1, 4, 10, 0, 0, 0], true).as_deref(),
            Some("10.0.0.0/8")
        );
        assert_eq!(inet(&[2, 32, 0, 4, 10], false), None, "short address");
        assert_eq!(mac(&[8, 0, 0x2b, 1, 2, 3]), "08:00:2b:01:02:03");
        assert_eq!(uuid(&[0; 15]), None);
    }
}
