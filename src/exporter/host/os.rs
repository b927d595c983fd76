//! `<rootfs>/etc/os-release` (or `<rootfs>/usr/lib/os-release`): node_exporter's `os`
//! collector — `node_os_info` with the release's fields as labels and `node_os_version`.

use super::read::Reader;
use super::{Error, HostPaths};
use crate::exporter::family::{Family, labels};

/// (os-release key, label), in label order.
const FIELDS: [(&str, &str); 12] = [
    ("BUILD_ID", "build_id"),
    ("ID", "id"),
    ("ID_LIKE", "id_like"),
    ("IMAGE_ID", "image_id"),
    ("IMAGE_VERSION", "image_version"),
    ("NAME", "name"),
    ("PRETTY_NAME", "pretty_name"),
    ("VARIANT", "variant"),
    ("VARIANT_ID", "variant_id"),
    ("VERSION", "version"),
    ("VERSION_CODENAME", "version_codename"),
    ("VERSION_ID", "version_id"),
];

pub(crate) fn collect(paths: &HostPaths, reader: &mut Reader) -> Result<Vec<Family>, Error> {
    let etc = paths.rootfs.join("etc/os-release");
    let text = match reader.read(&etc) {
        Ok(text) => text,
        Err(_) => reader.read(&paths.rootfs.join("usr/lib/os-release"))?,
    };
    Ok(families(&parse(text)))
}

/// `KEY=value` lines; values may be quoted with `"` or `'` and use backslash escapes.
pub(crate) fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_owned(), unquote(value.trim())))
        .collect()
}

fn unquote(value: &str) -> String {
    let inner = match value.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if value.len() >= 2 => {
            value.get(1..value.len() - 1).unwrap_or_default()
        }
        _ => value,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn families(release: &[(String, String)]) -> Vec<Family> {
    let get = |key: &str| {
        release
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    };
    let values: Vec<&str> = FIELDS.iter().map(|(key, _)| get(key)).collect();
    let info_labels = FIELDS
        .iter()
        .zip(&values)
        .map(|((_, label), value)| (std::borrow::Cow::Borrowed(*label), (*value).to_owned()))
        .collect();
    let mut families = vec![
        Family::gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        )
        .with(info_labels, 1.0),
    ];
    if let Some(version) = major_minor(get("VERSION_ID")) {
        families.push(
            Family::gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
            )
            .with(
                labels([
                    ("id", get("ID")),
                    ("id_like", get("ID_LIKE")),
                    ("name", get("NAME")),
                ]),
                version,
            ),
        );
    }
    families
}

/// The leading `major[.minor]` of `VERSION_ID` (`22.04` → 22.04, `12` → 12).
fn major_minor(version_id: &str) -> Option<f64> {
    let end = version_id
        .char_indices()
        .scan(false, |dot, (i, c)| {
            let keep = c.is_ascii_digit() || (c == '.' && !*dot && i > 0);
            if c == '.' {
                *dot = true;
            }
            keep.then_some(i + c.len_utf8())
        })
        .last()?;
    version_id.get(..end)?.trim_end_matches('.').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn info_and_version_like_node_exporter() {
        let families = families(&parse(DEBIAN));
        let info: Vec<(&str, &str)> = families[0].samples[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_str()))
            .collect();
        assert_eq!(
            info,
            [
                ("build_id", ""),
                ("id", "debian"),
                ("id_like", ""),
                ("image_id", ""),
                ("image_version", ""),
                ("name", "Debian GNU/Linux"),
                ("pretty_name", "Debian GNU/Linux 12 (bookworm)"),
                ("variant", ""),
                ("variant_id", ""),
                ("version", "12 (bookworm)"),
                ("version_codename", "bookworm"),
                ("version_id", "12"),
            ]
        );
        assert_eq!(families[1].samples[0].value, 12.0);
        assert_eq!(families[1].samples[0].labels[2].1, "Debian GNU/Linux");
    }

    #[test]
    fn versions_and_quotes() {
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("9.2.1"), Some(9.2));
        assert_eq!(major_minor("rolling"), None);
        assert_eq!(major_minor(""), None);
        assert_eq!(unquote(r#""a \"b\"""#), r#"a "b""#);
        assert_eq!(unquote("'x'"), "x");
        assert_eq!(unquote("plain"), "plain");
    }
}
