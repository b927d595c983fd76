//! node_exporter's `textfile` collector: the samples of every `*.prom` file in
//! `host.textfile_directory`, `node_textfile_mtime_seconds{file}` per file read, and
//! `node_textfile_scrape_error` (1 when any file could not be read or parsed).
//!
//! A file that does not parse is skipped whole and never breaks `/metrics`. The parser
//! accepts the Prometheus text format 0.0.4: `# HELP`, `# TYPE`, samples with labels,
//! no timestamps (node_exporter refuses them too). Counters and gauges keep their type;
//! a counter whose samples do not end in `_total`, and histogram and summary samples,
//! are exported as untyped families named after their samples, because the encoder
//! derives counter, bucket and quantile names itself.

use std::borrow::Cow;
use std::path::Path;
use std::time::UNIX_EPOCH;

use tracing::debug;

use super::read::Reader;
use crate::exporter::family::{Family, Kind, Labels, labels};

/// The families of every readable file, the per-file mtimes and the error flag. Never
/// fails: problems are reported through `node_textfile_scrape_error`.
pub(crate) fn collect(directory: Option<&Path>, reader: &mut Reader) -> Vec<Family> {
    let mut error = false;
    let mut families: Vec<Family> = Vec::new();
    let mut mtime = Family::gauge(
        "node_textfile_mtime_seconds",
        "Unixtime mtime of textfiles successfully read.",
    );
    if let Some(directory) = directory {
        match std::fs::read_dir(directory) {
            Ok(entries) => {
                let mut files: Vec<(String, std::path::PathBuf)> = entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
                    .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
                    .filter(|(name, _)| name.ends_with(".prom"))
                    .collect();
                files.sort_unstable();
                for (name, path) in files {
                    match read_file(&path, reader) {
                        Ok((parsed, modified)) => {
                            merge(&mut families, parsed);
                            mtime.push(labels([("file", &name)]), modified);
                        }
                        Err(reason) => {
                            debug!(file = %path.display(), %reason, "textfile skipped");
                            error = true;
                        }
                    }
                }
            }
            Err(reason) => {
                debug!(directory = %directory.display(), %reason, "textfile directory unreadable");
                error = true;
            }
        }
    }
    families.push(mtime);
    families.push(
        Family::gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
        )
        .with(Vec::new(), if error { 1.0 } else { 0.0 }),
    );
    families
}

fn read_file(path: &Path, reader: &mut Reader) -> Result<(Vec<Family>, f64), String> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| e.to_string())?
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs_f64();
    let text = reader.read(path).map_err(|e| e.to_string())?;
    let families = parse(text).map_err(|e| e.to_string())?;
    Ok((families, modified))
}

/// Adds `parsed` to `families`, joining families of the same name and kind.
fn merge(families: &mut Vec<Family>, parsed: Vec<Family>) {
    for family in parsed {
        match families
            .iter_mut()
            .find(|f| f.name == family.name && f.kind == family.kind)
        {
            Some(existing) => existing.samples.extend(family.samples),
            None => families.push(family),
        }
    }
}

/// A text-format parse error with its line.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("line {line}: {message}")]
pub(crate) struct ParseError {
    line: usize,
    message: String,
}

/// What `# TYPE` declared for a metric name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Declared {
    Counter,
    Gauge,
    Untyped,
    Histogram,
    Summary,
}

/// Parses one file into families.
pub(crate) fn parse(text: &str) -> Result<Vec<Family>, ParseError> {
    let mut helps: Vec<(String, String)> = Vec::new();
    let mut types: Vec<(String, Declared)> = Vec::new();
    let mut families: Vec<Family> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let fail = |message: String| ParseError {
            line: index + 1,
            message,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) => {
                    check_name(name).map_err(fail)?;
                    helps.push((name.to_owned(), unescape_help(help.unwrap_or_default())));
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    check_name(name).map_err(fail)?;
                    let declared = match kind.trim() {
                        "counter" => Declared::Counter,
                        "gauge" => Declared::Gauge,
                        "untyped" => Declared::Untyped,
                        "histogram" => Declared::Histogram,
                        "summary" => Declared::Summary,
                        other => return Err(fail(format!("unknown type `{other}`"))),
                    };
                    if types.iter().any(|(n, _)| n == name) {
                        return Err(fail(format!("second TYPE line for `{name}`")));
                    }
                    types.push((name.to_owned(), declared));
                }
                (Some("TYPE"), _, None) => return Err(fail("TYPE without a type".into())),
                _ => {}
            }
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(fail)?;
        let declared = declared_for(&types, &name);
        let (family_name, kind) = match declared {
            Some((base, Declared::Counter)) if name == format!("{base}_total") => {
                (base.to_owned(), Kind::Counter)
            }
            Some((base, Declared::Counter)) if name == base && base.ends_with("_total") => {
                (base.trim_end_matches("_total").to_owned(), Kind::Counter)
            }
            Some((_, Declared::Gauge)) => (name.clone(), Kind::Gauge),
            _ => (name.clone(), Kind::Untyped),
        };
        let help = declared
            .and_then(|(base, _)| helps.iter().find(|(n, _)| n == base))
            .or_else(|| helps.iter().find(|(n, _)| *n == name))
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| format!("Metric read from a textfile: {name}"));
        match families
            .iter_mut()
            .find(|f| f.name == family_name && f.kind == kind)
        {
            Some(family) => {
                if family.samples.iter().any(|s| s.labels == labels) {
                    return Err(fail(format!("duplicate sample for `{name}`")));
                }
                family.push(labels, value);
            }
            None => {
                let mut family = Family {
                    kind,
                    ..Family::gauge(family_name, help)
                };
                family.push(labels, value);
                families.push(family);
            }
        }
    }
    Ok(families)
}

/// The `# TYPE` a sample belongs to: its own name, or for `_total`, `_bucket`, `_sum`,
/// `_count` samples, the base name.
fn declared_for<'a>(types: &'a [(String, Declared)], name: &str) -> Option<(&'a str, Declared)> {
    types
        .iter()
        .find(|(n, _)| {
            n == name
                || ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| name.strip_suffix(suffix) == Some(n.as_str()))
        })
        .map(|(n, d)| (n.as_str(), *d))
}

fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid metric name `{name}`"))
    }
}

fn check_label_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    let ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label name `{name}`"))
    }
}

fn unescape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// `name{label="value",…} value` → its parts.
fn parse_sample(line: &str) -> Result<(String, Labels, f64), String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .ok_or_else(|| format!("no value in `{line}`"))?;
    let (name, mut rest) = line.split_at(name_end);
    check_name(name)?;
    let mut labels: Labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices();
        let mut consumed = after.len();
        loop {
            // Skip separators, then read `name="value"` or the closing brace.
            let mut label = String::new();
            let mut closed = false;
            for (i, c) in chars.by_ref() {
                match c {
                    '}' if label.trim().is_empty() => {
                        consumed = i + 1;
                        closed = true;
                        break;
                    }
                    ',' if label.trim().is_empty() => {}
                    '=' => break,
                    c => label.push(c),
                }
            }
            if closed {
                break;
            }
            let label = label.trim().to_owned();
            check_label_name(&label)?;
            if !matches!(chars.next(), Some((_, '"'))) {
                return Err(format!("label `{label}` without a quoted value"));
            }
            let mut value = String::new();
            let mut terminated = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        terminated = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        _ => return Err(format!("bad escape in label `{label}`")),
                    },
                    c => value.push(c),
                }
            }
            if !terminated {
                return Err(format!("unterminated value of label `{label}`"));
            }
            if labels.iter().any(|(k, _)| k == &label) {
                return Err(format!("label `{label}` twice"));
            }
            labels.push((Cow::Owned(label), value));
        }
        rest = after.get(consumed..).unwrap_or_default();
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| format!("no value in `{line}`"))?;
    if fields.next().is_some() {
        return Err(format!("timestamps are not supported: `{line}`"));
    }
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other
            .parse()
            .map_err(|_| format!("invalid value `{other}`"))?,
    };
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((name.to_owned(), labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"# HELP backup_last_success_timestamp_seconds When the last backup succeeded.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds{job="db",host="a b"} 1.7e9
# TYPE backup_runs_total counter
backup_runs_total{job="db"} 12
backup_runs_total{job="files"} 3
# comment
raid_disks{array="md0",state="quoted \"x\" \\ y"} 2
"#;

    #[test]
    fn good_file() {
        let families = parse(GOOD).unwrap();
        let names: Vec<(&str, Kind, usize)> = families
            .iter()
            .map(|f| (f.name.as_ref(), f.kind, f.samples.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("backup_last_success_timestamp_seconds", Kind::Gauge, 1),
                ("backup_runs", Kind::Counter, 2),
                ("raid_disks", Kind::Untyped, 1),
            ]
        );
        assert_eq!(families[0].help, "When the last backup succeeded.");
        assert_eq!(
            families[0].samples[0].labels,
            labels([("host", "a b"), ("job", "db")])
        );
        assert_eq!(families[0].samples[0].value, 1.7e9);
        assert_eq!(families[2].samples[0].labels[1].1, "quoted \"x\" \\ y");
    }

    #[test]
    fn malformed_files_fail_with_their_line() {
        for (text, line) in [
            ("ok 1\nbad{ 2\n", 2),
            ("x{a=\"1\"} 1 1700000000\n", 1),
            ("9bad 1\n", 1),
            ("x{a=1} 1\n", 1),
            ("x 1\nx 2\n", 2),
            ("# TYPE x counterish\n", 1),
            ("x{a=\"1\",a=\"2\"} 1\n", 1),
            ("x not-a-number\n", 1),
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }

    #[test]
    fn directory_with_a_good_and_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.prom"), GOOD).unwrap();
        std::fs::write(dir.path().join("bad.prom"), "bad{ 1\n").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "bad{ 1\n").unwrap();
        let mut reader = Reader::new();
        let families = collect(Some(dir.path()), &mut reader);
        let find = |name: &str| families.iter().find(|f| f.name == name).unwrap();
        assert_eq!(find("node_textfile_scrape_error").samples[0].value, 1.0);
        let mtimes = &find("node_textfile_mtime_seconds").samples;
        assert_eq!(mtimes.len(), 1);
        assert_eq!(mtimes[0].labels[0].1, "good.prom");
        assert!(mtimes[0].value > 1.0e9);
        assert_eq!(find("backup_runs").samples.len(), 2);

        std::fs::remove_file(dir.path().join("bad.prom")).unwrap();
        let families = collect(Some(dir.path()), &mut reader);
        let error = families
            .iter()
            .find(|f| f.name == "node_textfile_scrape_error")
            .unwrap();
        assert_eq!(error.samples[0].value, 0.0);

        let missing = collect(Some(&dir.path().join("nope")), &mut reader);
        assert_eq!(missing.last().unwrap().samples[0].value, 1.0);
        let unset = collect(None, &mut reader);
        assert_eq!(unset.len(), 2);
        assert_eq!(unset[1].samples[0].value, 0.0);
    }
}
