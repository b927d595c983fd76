//! A query's last hour for the console's sparklines: per series, one value per 30-second
//! bucket (the latest run in it), 120 buckets. Bounded: at most [`SERIES`] series per
//! query (the first in the query's order), each a ring of 120 × (u32 bucket, f32 value) =
//! 960 bytes of points plus its name — about 1 KB per series, 8 KB per query at most.
//! Memory does not grow with uptime or with the query's result size, and neither does
//! the work per run: only the first [`SCANNED`] samples of a result are looked at.

use std::collections::VecDeque;

use super::series::SeriesTable;

/// Series kept per query.
pub const SERIES: usize = 8;
/// Samples of a result considered for tracks, in the query's order.
pub const SCANNED: usize = 1_000;
/// Seconds per bucket.
pub const BUCKET_SECS: u64 = 30;
/// Buckets kept: one hour.
pub const POINTS: usize = 120;

/// One series' recent values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// `metric{label="value",…}` as exposed.
    pub name: String,
    /// (bucket number, value), oldest first.
    pub points: VecDeque<(u32, f32)>,
}

impl Track {
    pub fn latest(&self) -> Option<f32> {
        self.points.back().map(|(_, v)| *v)
    }
}

#[derive(Debug, Default)]
pub struct History {
    tracks: Vec<Track>,
}

impl History {
    /// Records a run's values at `unix_secs`.
    pub fn record(&mut self, table: &SeriesTable, unix_secs: u64) {
        let bucket = u32::try_from(unix_secs / BUCKET_SECS).unwrap_or(u32::MAX);
        let oldest = bucket.saturating_sub(u32::try_from(POINTS).unwrap_or(u32::MAX) - 1);
        let samples = table
            .families
            .iter()
            .flat_map(|family| family.samples().map(move |sample| (family, sample)))
            .take(SCANNED);
        for (family, (ids, value)) in samples {
            let name = series_name(&family.name, &table.labels_of(family, ids));
            let track = match self.tracks.iter_mut().position(|t| t.name == name) {
                Some(i) => &mut self.tracks[i],
                None if self.tracks.len() < SERIES => {
                    self.tracks.push(Track {
                        name,
                        points: VecDeque::with_capacity(POINTS),
                    });
                    let last = self.tracks.len() - 1;
                    &mut self.tracks[last]
                }
                None => continue,
            };
            #[allow(clippy::cast_possible_truncation)]
            let value = value as f32;
            match track.points.back_mut() {
                Some((at, v)) if *at == bucket => *v = value,
                _ => track.points.push_back((bucket, value)),
            }
            while track.points.front().is_some_and(|(at, _)| *at < oldest) {
                track.points.pop_front();
            }
        }
    }

    pub fn tracks(&self) -> Vec<Track> {
        self.tracks.clone()
    }
}

fn series_name(metric: &str, labels: &crate::exporter::family::Labels) -> String {
    if labels.is_empty() {
        return metric.to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{metric}{{{}}}", pairs.join(","))
}

/// An inline SVG polyline of `track` over the last hour, `width` × `height` pixels.
pub fn sparkline(track: &Track, now_unix_secs: u64, width: u32, height: u32) -> String {
    let now = u32::try_from(now_unix_secs / BUCKET_SECS).unwrap_or(u32::MAX);
    let start = now.saturating_sub(u32::try_from(POINTS).unwrap_or(u32::MAX) - 1);
    let values: Vec<(u32, f32)> = track
        .points
        .iter()
        .filter(|(at, v)| *at >= start && v.is_finite())
        .copied()
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), (_, v)| {
            (lo.min(*v), hi.max(*v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (width as f32, height as f32);
    let points: Vec<String> = values
        .iter()
        .map(|(at, v)| {
            let x = (at - start) as f32 / (POINTS - 1) as f32 * (w - 2.0) + 1.0;
            let y = if hi > lo {
                h - 1.0 - (v - lo) / span * (h - 2.0)
            } else {
                h / 2.0
            };
            format!("{x:.1},{y:.1}")
        })
        .collect();
    format!(
        r#"<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="last hour"><polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>"#,
        points.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exporter::family::Kind;
    use crate::exporter::sql::series::{SeriesBuilder, SeriesFamily};

    fn family(values: &[(&str, f64)]) -> SeriesTable {
        let orders = SeriesFamily::new(
            "shop_orders".into(),
            "Orders.".into(),
            Kind::Gauge,
            vec!["status".into()],
        );
        let mut builder = SeriesBuilder::new(vec![orders]);
        for (status, value) in values {
            builder.push(0, &[status], *value).unwrap();
        }
        builder.finish()
    }

    #[test]
    fn the_ring_keeps_an_hour_and_at_most_eight_series() {
        let mut history = History::default();
        let many: Vec<(String, f64)> = (0..20).map(|i| (format!("s{i}"), f64::from(i))).collect();
        let many: Vec<(&str, f64)> = many.iter().map(|(s, v)| (s.as_str(), *v)).collect();
        for minute in 0..300u64 {
            history.record(&family(&many), 1_000_020 + minute * 60);
            // A second run in the same bucket replaces its value.
            history.record(&family(&many), 1_000_020 + minute * 60 + 1);
        }
        let tracks = history.tracks();
        assert_eq!(tracks.len(), SERIES);
        assert_eq!(tracks[0].name, "shop_orders{status=\"s0\"}");
        for track in &tracks {
            assert!(track.points.len() <= POINTS, "{}", track.points.len());
            let span = track.points.back().unwrap().0 - track.points.front().unwrap().0;
            assert!(span < POINTS as u32);
        }
    }

    #[test]
    fn a_sparkline_spans_its_values() {
        let mut history = History::default();
        for (i, v) in [1.0, 5.0, 3.0].into_iter().enumerate() {
            history.record(&family(&[("paid", v)]), 3_000 + i as u64 * 30);
        }
        let track = &history.tracks()[0];
        assert_eq!(track.latest(), Some(3.0));
        let svg = sparkline(track, 3_060, 120, 24);
        assert!(svg.starts_with("<svg"), "{svg}");
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 3, "{points}");
        assert!(
            points.contains(",1.0"),
            "the top value touches the top: {points}"
        );
        assert!(
            points.contains(",23.0"),
            "the bottom value the bottom: {points}"
        );
    }
}
