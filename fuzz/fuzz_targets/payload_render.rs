//! Fuzz target: payload values (label and annotation strings, times anywhere in chrono's
//! range) through the view, the built-in templates and the `duration`/`localtime`
//! filters never panic; the built-in templates always render.
#![no_main]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use lookout::alert::render::{Limit, Templates, render};
use lookout::alert::view;
use lookout::alert::{Alert, Notification, Status};

#[derive(Debug, Arbitrary)]
struct Input {
    n: String,
    t: String,
    starts: i64,
    ends: Option<i64>,
    now: i64,
    truncated: u64,
}

const FILTERS: &[(&str, &str)] = &[
    (
        "durations",
        "{{ a.labels.n | float | duration }} {{ a.labels.n | int | duration }}",
    ),
    (
        "localtimes",
        "{{ a.annotations.t | localtime }} {{ a.labels.n | float | localtime }}",
    ),
];

fn templates() -> Templates {
    let mut templates = Templates::new(chrono_tz::Asia::Shanghai);
    for (name, body) in FILTERS {
        let source = format!(
            "{{% macro title() %}}{{{{ alertname }}}}{{% endmacro %}}\n\
             {{% macro header(part, parts) %}}{{{{ part }}}}/{{{{ parts }}}}{{% endmacro %}}\n\
             {{% macro alert(a, n) %}}{{{{ a.starts_at }}}} {{{{ a.duration }}}} {body}\n{{% endmacro %}}\n\
             {{% macro footer(omitted) %}}{{{{ omitted }}}}{{% endmacro %}}"
        );
        templates
            .add(name, source)
            .unwrap_or_else(|e| panic!("fuzz template {name}: {e}"));
    }
    templates
}

fn time(seconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0)
}

fuzz_target!(|input: Input| {
    let (Some(starts_at), Some(now)) = (time(input.starts), time(input.now)) else {
        return;
    };
    let ends_at = input.ends.and_then(time);
    let alert = Alert {
        status: if ends_at.is_some() {
            Status::Resolved
        } else {
            Status::Firing
        },
        labels: BTreeMap::from([
            ("alertname".to_owned(), "Fuzz".to_owned()),
            ("n".to_owned(), input.n),
        ]),
        annotations: BTreeMap::from([("t".to_owned(), input.t)]),
        starts_at,
        ends_at,
        generator_url: String::new(),
        fingerprint: String::new(),
    };
    let notification = Notification {
        version: "4".to_owned(),
        group_key: String::new(),
        truncated_alerts: input.truncated,
        status: Status::Firing,
        receiver: "r".to_owned(),
        group_labels: BTreeMap::new(),
        common_labels: BTreeMap::new(),
        common_annotations: BTreeMap::new(),
        external_url: "http://am:9093".to_owned(),
        alerts: vec![alert],
    };
    let view = view::build(&notification, chrono_tz::Asia::Shanghai, now);
    let templates = templates();
    let limit = Limit {
        bytes: 20_000,
        max_parts: 5,
    };
    let measure = |t: &str, x: &str| t.len() + x.len();
    for name in ["markdown", "text"] {
        if let Err(error) = render(&templates, name, &view, "", limit, &measure) {
            panic!("built-in template {name} failed: {error}");
        }
    }
    for (name, _) in FILTERS {
        let _ = render(&templates, name, &view, "", limit, &measure);
    }
});
