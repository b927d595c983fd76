//! Properties over hostile input, run in the normal suite (modest case counts): config
//! text never panics loading, only errors; payload values (label and annotation strings
//! such as `1e309` or `NaN`, times far in the past or future) never panic the view, the
//! built-in templates or the template filters. The release build aborts on a panic, so a
//! panic here is a process that dies. `fuzz/` has cargo-fuzz targets for the same entry
//! points.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lookout::alert::render::{Limit, Templates, render};
use lookout::alert::view;
use lookout::alert::{Alert, Notification, Status};
use lookout::config::{Error, Sources, parse_str};
use proptest::prelude::*;

/// Shows `{{ <body> }}` for every alert, with the payload's own fields around it.
fn template(body: &str) -> String {
    format!(
        r#"{{% macro title() %}}{{{{ alertname }}}}{{% endmacro %}}
{{% macro header(part, parts) %}}{{{{ part }}}}/{{{{ parts }}}}
{{% endmacro %}}
{{% macro alert(a, n) %}}{{{{ a.starts_at }}}} {{{{ a.duration }}}} {body}
{{% endmacro %}}
{{% macro footer(omitted) %}}{{{{ omitted }}}}{{% endmacro %}}"#
    )
}

fn templates() -> Templates {
    let mut templates = Templates::new(chrono_tz::Asia::Shanghai);
    // Label values are strings: numbers reach the filters through `float` and `int`.
    let durations = "[{{ a.labels.n | float | duration }}] [{{ a.labels.n | int | duration }}]";
    let localtimes = "[{{ a.annotations.t | localtime }}] [{{ a.labels.n | float | localtime }}]";
    for (name, body) in [("durations", durations), ("localtimes", localtimes)] {
        templates
            .add(name, template(body))
            .expect("the test template parses");
    }
    templates
}

fn alert(n: &str, t: &str, starts_at: DateTime<Utc>, ends_at: Option<DateTime<Utc>>) -> Alert {
    Alert {
        status: if ends_at.is_some() {
            Status::Resolved
        } else {
            Status::Firing
        },
        labels: BTreeMap::from([
            ("alertname".to_owned(), "Fuzz".to_owned()),
            ("n".to_owned(), n.to_owned()),
        ]),
        annotations: BTreeMap::from([("t".to_owned(), t.to_owned())]),
        starts_at,
        ends_at,
        generator_url: String::new(),
        fingerprint: String::new(),
    }
}

fn notification(alerts: Vec<Alert>) -> Notification {
    Notification {
        version: "4".to_owned(),
        group_key: String::new(),
        truncated_alerts: 0,
        status: Status::Firing,
        receiver: "r".to_owned(),
        group_labels: BTreeMap::new(),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        external_url: "http://am:9093".to_owned(),
        alerts,
    }
}

const LIMIT: Limit = Limit {
    bytes: 20_000,
    max_parts: 5,
};

/// Renders `n` at `now` with `template`; the text of every part joined.
fn render_with(
    templates: &Templates,
    template: &str,
    n: &Notification,
    now: DateTime<Utc>,
) -> Result<String, lookout::alert::render::Error> {
    let view = view::build(n, chrono_tz::Asia::Shanghai, now);
    let parts = render(templates, template, &view, "", LIMIT, &|t, x| {
        t.len() + x.len()
    })?;
    Ok(parts.into_iter().map(|p| p.text).collect())
}

fn ts(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).expect("in range")
}

#[test]
fn the_duration_filter_takes_any_number_a_label_can_hold() {
    let templates = templates();
    let start = ts(1_700_000_000);
    let max = "213503982334601天7小时";
    let cases = [
        // (label value, what `| float | duration` shows)
        ("3900", "1小时5分"),
        ("1e309", max),
        ("inf", max),
        ("1e300", max),
        ("18446744073709551616", max),
        ("-1e309", "0秒"),
        ("-5", "0秒"),
        ("NaN", "0秒"),
        ("0.4", "0秒"),
    ];
    for (value, shown) in cases {
        let n = notification(vec![alert(value, "", start, None)]);
        let text = render_with(&templates, "durations", &n, start)
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert!(text.contains(&format!("[{shown}]")), "{value}: {text}");
    }
}

#[test]
fn the_localtime_filter_names_times_out_of_range_without_panicking() {
    let templates = templates();
    let start = ts(1_700_000_000);
    let render = |n: &str, t: &str| {
        let n = notification(vec![alert(n, t, start, None)]);
        render_with(&templates, "localtimes", &n, start)
    };
    let shown = render("1704179045", "2024-01-02T07:04:05Z").unwrap();
    assert!(
        shown.contains("[2024-01-02 15:04:05] [2024-01-02 15:04:05]"),
        "{shown}"
    );
    // Unix seconds at the ends of the representable range still print.
    for seconds in ["8.2e12", "-8.2e12"] {
        render(seconds, "2024-01-02T07:04:05Z").unwrap_or_else(|e| panic!("{seconds}: {e}"));
    }
    for seconds in ["1e309", "-1e309", "NaN", "9e15", "-9e15"] {
        let error = render(seconds, "2024-01-02T07:04:05Z").unwrap_err();
        assert!(
            error.to_string().contains("out of range"),
            "{seconds}: {error}"
        );
    }
    let error = render("0", "1e309").unwrap_err();
    assert!(error.to_string().contains("localtime: `1e309`"), "{error}");
}

#[test]
fn payload_times_at_the_ends_of_rfc3339_render() {
    let templates = templates();
    for (starts_at, ends_at) in [
        (
            "9999-12-31T23:59:59.999999999-23:59",
            "0001-01-01T00:00:00Z",
        ),
        ("0000-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"),
        ("1970-01-01T00:00:00Z", "0000-01-01T00:00:00+23:59"),
    ] {
        let body = format!(
            r#"{{"status":"firing","alerts":[{{"status":"resolved","labels":{{"alertname":"X","n":"1"}},"annotations":{{"t":"{starts_at}"}},"startsAt":"{starts_at}","endsAt":"{ends_at}"}}]}}"#
        );
        let n = Notification::parse(body.as_bytes()).expect("valid payload");
        for now in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            Utc::now(),
        ] {
            for template in ["markdown", "text", "durations", "localtimes"] {
                render_with(&templates, template, &n, now)
                    .unwrap_or_else(|e| panic!("{template} {starts_at} {ends_at}: {e}"));
            }
        }
    }
}

fn sources() -> Sources<'static> {
    Sources {
        env: &|_| Some("1".to_owned()),
        read_file: &|_| Ok("secret".to_owned()),
    }
}

/// Every duration and number key the file has, with the text around it.
const NUMBER_KEYS: &[(&str, &str)] = &[
    ("host:\n  max_age: ", "\n"),
    ("host:\n  filesystem:\n    mount_timeout: ", "\n"),
    ("web:\n  max_body_bytes: ", "\n"),
    ("relay:\n  dedupe_window: ", "\n"),
    ("relay:\n  rate_limit_pause: ", "\n"),
    (
        "databases:\n  d: { url: 'sqlite:///x', connect_timeout: ",
        " }\n",
    ),
    (
        "databases:\n  d: { url: 'sqlite:///x', max_connections: ",
        " }\n",
    ),
    (
        "databases:\n  d: { url: 'sqlite:///x' }\nqueries:\n  - { name: q, database: d, sql: x, metrics: [{ name: m, value: v }], interval: ",
        " }\n",
    ),
    (
        "databases:\n  d: { url: 'sqlite:///x' }\nqueries:\n  - { name: q, database: d, sql: x, metrics: [{ name: m, value: v }], timeout: ",
        " }\n",
    ),
    (
        "databases:\n  d: { url: 'sqlite:///x' }\nqueries:\n  - { name: q, database: d, sql: x, metrics: [{ name: m, value: v }], stale_after: ",
        " }\n",
    ),
    (
        "databases:\n  d: { url: 'sqlite:///x' }\nqueries:\n  - { name: q, database: d, sql: x, metrics: [{ name: m, value: v }], max_series: ",
        " }\n",
    ),
    (
        "channels:\n  c: { type: wecom, url: 'https://x', timeout: ",
        " }\n",
    ),
    (
        "channels:\n  c: { type: wecom, url: 'https://x', rate_limit: ",
        " }\n",
    ),
    (
        "channels:\n  c: { type: wecom, url: 'https://x', retry: { initial: ",
        " } }\n",
    ),
    (
        "channels:\n  c: { type: wecom, url: 'https://x', retry: { max: ",
        " } }\n",
    ),
];

/// Numbers that break naive arithmetic, in the units the file accepts.
fn hostile_number() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551615".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("7000000000000000000".to_owned()),
        Just("1e309".to_owned()),
        Just("NaN".to_owned()),
        Just("0.0000001".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        (0u64..10_000).prop_map(|n| n.to_string()),
    ];
    let unit = prop_oneof![
        Just(""),
        Just("ns"),
        Just("ms"),
        Just("s"),
        Just("m"),
        Just("h"),
        Just("d"),
        Just("y"),
        Just("/s"),
        Just("/min"),
        Just("KiB"),
        Just("GiB"),
    ];
    (number, unit).prop_map(|(n, u)| format!("{n}{u}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any number in any key: the config loads or names the key; it never panics.
    #[test]
    fn hostile_numbers_in_any_key_load_or_name_the_key(
        key in 0..NUMBER_KEYS.len(),
        value in hostile_number(),
    ) {
        let (before, after) = NUMBER_KEYS[key];
        let text = format!("{before}{value}{after}");
        match parse_str("fuzz.yaml", &text, &sources()) {
            Ok(_) => {}
            Err(error @ Error::Invalid { .. }) => {
                for line in error.to_string().lines() {
                    prop_assert!(line.starts_with("fuzz.yaml:"), "{}", line);
                }
            }
            Err(other) => prop_assert!(false, "unexpected error: {}", other),
        }
    }

    /// Arbitrary label, annotation and time values never panic the view, the built-in
    /// templates (which always render) or the filters (which render or name an error).
    #[test]
    fn payload_values_never_panic_the_view_or_the_filters(
        n in prop_oneof![
            Just("1e309".to_owned()), Just("-1e309".to_owned()), Just("NaN".to_owned()),
            Just("inf".to_owned()), Just("9223372036854775808".to_owned()),
            any::<f64>().prop_map(|f| f.to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            "\\PC{0,12}",
        ],
        t in prop_oneof![
            Just("9999-12-31T23:59:59-23:59".to_owned()),
            any::<f64>().prop_map(|f| f.to_string()),
            "\\PC{0,12}",
        ],
        starts in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        ends in proptest::option::of(DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp()),
        now in DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
    ) {
        let templates = templates();
        let n = notification(vec![alert(&n, &t, ts(starts), ends.map(ts))]);
        for template in ["markdown", "text"] {
            let rendered = render_with(&templates, template, &n, ts(now));
            prop_assert!(rendered.is_ok(), "{}: {:?}", template, rendered.err());
        }
        for template in ["durations", "localtimes"] {
            let _ = render_with(&templates, template, &n, ts(now));
        }
    }
}
