//! Typed values as the file writes them: durations (`10s`), sizes (`1MiB`) and send
//! budgets (`20/min`).

use std::time::Duration;

use super::bounds;

/// A send budget: `count` messages per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

/// Durations as Prometheus writes them: `500ms`, `10s`, `5m`, `1h30m`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "duration `{text}` needs a unit (ms, s, m, h, d), e.g. `{text}s`"
        ));
    }
    humantime::parse_duration(text).map_err(|error| format!("invalid duration `{text}`: {error}"))
}

/// Byte sizes: `1048576`, `512KiB`, `1MiB`, `1MB`, `2GiB`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("invalid size `{text}` (e.g. 1MiB, 512KiB, 1048576)"))?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "KiB" | "K" => 1024.0,
        "MB" => 1e6,
        "MiB" | "M" => 1024.0 * 1024.0,
        "GB" => 1e9,
        "GiB" | "G" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    let bytes = number * scale;
    if !(1.0..=f64::from(u32::MAX)).contains(&bytes) {
        return Err(format!("size `{text}` is out of range"));
    }
    Ok(bytes as usize)
}

/// Send budgets: `20/min`, `1/s`, `100/h`.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let bad = || format!("invalid rate `{text}` (expected N/s, N/min or N/h, e.g. 20/min)");
    let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return Err(bad()),
    };
    if count == 0 {
        return Err(format!("rate `{text}` must allow at least one message"));
    }
    if !bounds::RATE_COUNT.contains(&count) {
        return Err(format!(
            "rate `{text}` allows more than {} messages per window",
            bounds::RATE_COUNT.end()
        ));
    }
    Ok(Rate { count, per })
}
