//! `adjtimex(2)`: node_exporter's `timex` collector — the kernel's NTP discipline state
//! (offset, frequency, errors, status, PPS counters) as `node_timex_*`.

use super::Error;
use crate::exporter::family::Family;

/// `STA_NANO`: offsets and jitter are in nanoseconds rather than microseconds.
const STA_NANO: i64 = 0x2000;
/// `TIME_ERROR`: adjtimex's answer when the clock is not synchronised.
const TIME_ERROR: i64 = 5;
/// Frequencies are in ppm with a 16-bit fraction.
const PPM16FRAC: f64 = 1_000_000.0 * 65_536.0;

/// The fields of `struct timex` the collector uses, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Timex {
    pub(crate) state: i64,
    pub(crate) offset: i64,
    pub(crate) freq: i64,
    pub(crate) maxerror: i64,
    pub(crate) esterror: i64,
    pub(crate) status: i64,
    pub(crate) constant: i64,
    pub(crate) tick: i64,
    pub(crate) ppsfreq: i64,
    pub(crate) jitter: i64,
    pub(crate) shift: i64,
    pub(crate) stabil: i64,
    pub(crate) jitcnt: i64,
    pub(crate) calcnt: i64,
    pub(crate) errcnt: i64,
    pub(crate) stbcnt: i64,
    pub(crate) tai: i64,
}

/// A read-only `adjtimex` query.
#[cfg(target_os = "linux")]
pub(crate) fn read() -> Result<Timex, Error> {
    let mut tx = rtime_clock::adjtime::Timex::new();
    let state = rtime_clock::adjtime::adjtimex(&mut tx)
        .map_err(|error| Error::unavailable("adjtimex", &error))?;
    let t = &tx.0;
    Ok(Timex {
        state: i64::from(state),
        offset: t.offset,
        freq: t.freq,
        maxerror: t.maxerror,
        esterror: t.esterror,
        status: i64::from(t.status),
        constant: t.constant,
        tick: t.tick,
        ppsfreq: t.ppsfreq,
        jitter: t.jitter,
        shift: i64::from(t.shift),
        stabil: t.stabil,
        jitcnt: t.jitcnt,
        calcnt: t.calcnt,
        errcnt: t.errcnt,
        stbcnt: t.stbcnt,
        tai: i64::from(t.tai),
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn read() -> Result<Timex, Error> {
    Err(Error::unavailable("adjtimex", &"not Linux"))
}

/// The collector: one query, seventeen families.
pub(crate) fn collect() -> Result<Vec<Family>, Error> {
    Ok(families(&read()?))
}

/// node_exporter's conversions (see NOTES in adjtimex(2)).
pub(crate) fn families(t: &Timex) -> Vec<Family> {
    let divisor = if t.status & STA_NANO == 0 {
        1_000_000.0
    } else {
        1_000_000_000.0
    };
    let gauge = |name: &'static str, help: &'static str, value: f64| {
        Family::gauge(name, help).with(Vec::new(), value)
    };
    let counter = |name: &'static str, help: &'static str, value: i64| {
        Family::counter(name, help).with(Vec::new(), value as f64)
    };
    vec![
        gauge(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if t.state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        gauge(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / divisor,
        ),
        gauge(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + t.freq as f64 / PPM16FRAC,
        ),
        gauge(
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / 1_000_000.0,
        ),
        gauge(
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / 1_000_000.0,
        ),
        gauge(
            "node_timex_status",
            "Value of the status array bits.",
            t.status as f64,
        ),
        gauge(
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        ),
        gauge(
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / 1_000_000.0,
        ),
        gauge(
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            t.ppsfreq as f64 / PPM16FRAC,
        ),
        gauge(
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / divisor,
        ),
        gauge(
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            t.shift as f64,
        ),
        gauge(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16FRAC,
        ),
        counter(
            "node_timex_pps_jitter",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt,
        ),
        counter(
            "node_timex_pps_calibration",
            "Pulse per second count of calibration intervals.",
            t.calcnt,
        ),
        counter(
            "node_timex_pps_error",
            "Pulse per second count of calibration errors.",
            t.errcnt,
        ),
        counter(
            "node_timex_pps_stability_exceeded",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt,
        ),
        gauge(
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            t.tai as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(families: &[Family], name: &str) -> f64 {
        families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.samples[0].value)
            .unwrap()
    }

    #[test]
    fn conversions_like_node_exporter() {
        // This machine's unsynchronised clock, as node_exporter printed it.
        let t = Timex {
            state: TIME_ERROR,
            maxerror: 16_000_000,
            esterror: 16_000_000,
            status: 64,
            constant: 2,
            tick: 10_000,
            ..Timex::default()
        };
        let families = families(&t);
        assert_eq!(families.len(), 17);
        assert_eq!(get(&families, "node_timex_sync_status"), 0.0);
        assert_eq!(get(&families, "node_timex_maxerror_seconds"), 16.0);
        assert_eq!(get(&families, "node_timex_tick_seconds"), 0.01);
        assert_eq!(get(&families, "node_timex_status"), 64.0);
        assert_eq!(get(&families, "node_timex_frequency_adjustment_ratio"), 1.0);
        let synced = Timex {
            state: 0,
            offset: 1500,
            freq: 65_536 * 10,
            status: STA_NANO,
            ..Timex::default()
        };
        let families = super::families(&synced);
        assert_eq!(get(&families, "node_timex_sync_status"), 1.0);
        assert_eq!(get(&families, "node_timex_offset_seconds"), 1.5e-6);
        assert_eq!(
            get(&families, "node_timex_frequency_adjustment_ratio"),
            1.00001
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_kernel() {
        let t = read().unwrap();
        assert!(t.tick > 0, "{t:?}");
    }
}
