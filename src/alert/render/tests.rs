//! Render tests: golden output of the default templates (firing and resolved, Chinese),
//! splitting and truncation at each channel's limit, and a property test that every part
//! fits and every alert is shown or counted.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;

use super::{Limit, Templates, render};
use crate::alert::view::{self, NotificationView};
use crate::alert::{Alert, Notification, Status};
use crate::backoff::Backoff;
use crate::config::{Channel, Delivery, Mention, Rate, Secret};
use crate::notify::message::{
    self, Body, DINGTALK_MAX_BYTES, MAX_PARTS, WECOM_MARKDOWN_MAX_BYTES, WECOM_TEXT_MAX_BYTES,
};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-22T02:10:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn alert(name: &str, status: Status, summary: &str) -> Alert {
    Alert {
        status,
        labels: BTreeMap::from([
            ("alertname".to_owned(), name.to_owned()),
            ("severity".to_owned(), "critical".to_owned()),
            ("instance".to_owned(), "wallet-db:9788".to_owned()),
        ]),
        annotations: BTreeMap::from([("summary".to_owned(), summary.to_owned())]),
        starts_at: t0(),
        ends_at: (status == Status::Resolved).then(|| t0() + Duration::seconds(3942)),
        generator_url: "http://prom:9090/graph?g0.expr=up".to_owned(),
        fingerprint: format!("fp-{name}"),
    }
}

fn notification(status: Status, alerts: Vec<Alert>) -> Notification {
    Notification {
        version: "4".to_owned(),
        group_key: "{}:{alertname=\"X\"}".to_owned(),
        truncated_alerts: 0,
        status,
        receiver: "critical".to_owned(),
        group_labels: BTreeMap::new(),
        common_labels: BTreeMap::from([("severity".to_owned(), "critical".to_owned())]),
        common_annotations: BTreeMap::new(),
        external_url: "http://am:9093".to_owned(),
        alerts,
    }
}

fn view_of(n: &Notification) -> NotificationView {
    view::build(n, chrono_tz::Asia::Shanghai, t0() + Duration::seconds(150))
}

fn channel(kind: crate::config::ChannelKind) -> Channel {
    Channel {
        name: "c".to_owned(),
        delivery: Delivery {
            rate_limit: Rate {
                count: 20,
                per: std::time::Duration::from_secs(60),
            },
            retry: Backoff::constant(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(60),
            ),
            timeout: std::time::Duration::from_secs(10),
            proxy: None,
            template: None,
            send_resolved: true,
        },
        kind,
    }
}

fn dingtalk() -> Channel {
    channel(crate::config::ChannelKind::Dingtalk {
        url: Secret::new("https://oapi.dingtalk.com/robot/send?access_token=t"),
        secret: None,
        mention: Mention {
            mobiles: vec!["13800000000".to_owned()],
            user_ids: vec![],
            all_on_severity: vec!["critical".to_owned()],
        },
        markdown: true,
    })
}

fn wecom(markdown: bool) -> Channel {
    channel(crate::config::ChannelKind::Wecom {
        url: Secret::new("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
        mention: Mention {
            mobiles: vec!["13800000000".to_owned()],
            user_ids: vec!["zhangsan".to_owned()],
            all_on_severity: vec![],
        },
        markdown,
    })
}

fn plain(view: &NotificationView, template: &str) -> String {
    let parts = render(
        &Templates::builtin(),
        template,
        view,
        "",
        Limit {
            bytes: 1 << 20,
            max_parts: 5,
        },
        &|_, t| t.len(),
    )
    .unwrap();
    assert_eq!(parts.len(), 1);
    format!("title: {}\n{}", parts[0].title, parts[0].text)
}

#[test]
fn golden_markdown_firing() {
    let n = notification(
        Status::Firing,
        vec![
            alert(
                "提现失败率过高",
                Status::Firing,
                "提现交易失败率 23.5%，超过 10%",
            ),
            alert("HighCPU", Status::Firing, "CPU 使用率 92%"),
        ],
    );
    insta::assert_snapshot!(plain(&view_of(&n), "markdown"));
}

#[test]
fn golden_markdown_resolved() {
    let n = notification(
        Status::Resolved,
        vec![alert(
            "提现失败率过高",
            Status::Resolved,
            "提现交易失败率 23.5%，超过 10%",
        )],
    );
    insta::assert_snapshot!(plain(&view_of(&n), "markdown"));
}

#[test]
fn golden_text_firing_and_resolved() {
    let n = notification(
        Status::Firing,
        vec![
            alert("HighCPU", Status::Firing, "CPU 使用率 92%"),
            alert("磁盘空间不足", Status::Resolved, "/data 剩余 8%"),
        ],
    );
    insta::assert_snapshot!(plain(&view_of(&n), "text"));
}

#[test]
fn dingtalk_mentions_ping_in_text_and_at() {
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let messages = message::prepare(&dingtalk(), &Templates::builtin(), &view_of(&n)).unwrap();
    let Body::Json { json } = &messages[0].body else {
        panic!()
    };
    assert!(
        json["markdown"]["text"]
            .as_str()
            .unwrap()
            .ends_with("@13800000000")
    );
    assert_eq!(json["at"]["atMobiles"][0], "13800000000");
    assert_eq!(
        json["at"]["isAtAll"], true,
        "critical is in all_on_severity"
    );
}

#[test]
fn wecom_mentions_by_kind() {
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let md = message::prepare(&wecom(true), &Templates::builtin(), &view_of(&n)).unwrap();
    let Body::Json { json } = &md[0].body else {
        panic!()
    };
    assert!(
        json["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("<@zhangsan>")
    );
    let text = message::prepare(&wecom(false), &Templates::builtin(), &view_of(&n)).unwrap();
    let Body::Json { json } = &text[0].body else {
        panic!()
    };
    assert_eq!(json["text"]["mentioned_mobile_list"][0], "13800000000");
    assert_eq!(json["text"]["mentioned_list"][0], "zhangsan");
}

fn storm(count: usize, summary: &str) -> Notification {
    notification(
        Status::Firing,
        (0..count)
            .map(|i| alert(&format!("Alert{i:04}"), Status::Firing, summary))
            .collect(),
    )
}

fn sizes(channel: &Channel, n: &Notification) -> (Vec<usize>, usize, usize) {
    let messages = message::prepare(channel, &Templates::builtin(), &view_of(n)).unwrap();
    let sizes = messages
        .iter()
        .map(|m| match (&m.body, &channel.kind) {
            (Body::Json { json }, crate::config::ChannelKind::Wecom { markdown: true, .. }) => {
                serde_json::to_string(&json["markdown"]["content"])
                    .unwrap()
                    .len()
                    - 2
            }
            (
                Body::Json { json },
                crate::config::ChannelKind::Wecom {
                    markdown: false, ..
                },
            ) => {
                serde_json::to_string(&json["text"]["content"])
                    .unwrap()
                    .len()
                    - 2
            }
            _ => m.wire().len(),
        })
        .collect();
    let shown = messages.iter().map(|m| m.alerts).sum();
    let omitted = messages.iter().map(|m| m.omitted).sum();
    (sizes, shown, omitted)
}

#[test]
fn a_storm_splits_into_numbered_parts_then_counts_the_rest() {
    let n = storm(400, "交易失败率过高，请立即检查支付通道");
    for (channel, limit) in [
        (dingtalk(), DINGTALK_MAX_BYTES),
        (wecom(true), WECOM_MARKDOWN_MAX_BYTES),
        (wecom(false), WECOM_TEXT_MAX_BYTES),
    ] {
        let (sizes, shown, omitted) = sizes(&channel, &n);
        assert_eq!(sizes.len(), MAX_PARTS);
        assert!(sizes.iter().all(|s| *s <= limit), "{sizes:?} > {limit}");
        assert_eq!(shown + omitted, 400);
        assert!(omitted > 0);
    }
    let messages = message::prepare(&dingtalk(), &Templates::builtin(), &view_of(&n)).unwrap();
    let Body::Json { json } = &messages[4].body else {
        panic!()
    };
    let text = json["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("…另有 {} 条告警", messages[4].omitted)),
        "{text}"
    );
    assert!(
        json["markdown"]["title"]
            .as_str()
            .unwrap()
            .ends_with("（5/5）")
    );
}

#[test]
fn one_huge_alert_is_cut_on_a_char_boundary() {
    let n = storm(1, &"超长描述".repeat(3000));
    for (channel, limit) in [
        (dingtalk(), DINGTALK_MAX_BYTES),
        (wecom(true), WECOM_MARKDOWN_MAX_BYTES),
    ] {
        let (sizes, shown, omitted) = sizes(&channel, &n);
        assert_eq!((sizes.len(), shown, omitted), (1, 1, 0));
        assert!(
            sizes[0] <= limit && sizes[0] > limit - 128,
            "{} not filled close to {limit}",
            sizes[0]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_part_fits_and_every_alert_is_shown_or_counted(
        count in 1usize..120,
        summary in "[a-z0-9 ]{0,20}[告警恢复磁盘🔥é\"\\\\\n]{0,400}",
        resolved in any::<bool>(),
    ) {
        let status = if resolved { Status::Resolved } else { Status::Firing };
        let n = notification(status, (0..count).map(|i| alert(&format!("A{i}"), status, &summary)).collect());
        for (channel, limit) in [(dingtalk(), DINGTALK_MAX_BYTES), (wecom(true), WECOM_MARKDOWN_MAX_BYTES), (wecom(false), WECOM_TEXT_MAX_BYTES)] {
            let (sizes, shown, omitted) = sizes(&channel, &n);
            prop_assert!(sizes.iter().all(|s| *s <= limit), "{:?} over {}", sizes, limit);
            prop_assert_eq!(shown + omitted, count);
        }
    }
}

const CUSTOM: &str = r#"{% macro title() %}自定义{% endmacro %}
{% macro header(part, parts) %}H{{ part }}/{{ parts }}
{% endmacro %}
{% macro alert(a, n) %}[{{ "2024-01-02T07:04:05Z" | localtime }} {{ 3900 | duration }} {{ a.alertname }}]
{% endmacro %}
{% macro footer(omitted) %}{% if omitted %}+{{ omitted }}{% endif %}{% endmacro %}"#;

#[test]
fn custom_templates_get_zoned_times_and_human_durations() {
    let mut templates = Templates::new(chrono_tz::Asia::Shanghai);
    templates.add("mine", CUSTOM.to_owned()).unwrap();
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let parts = render(
        &templates,
        "mine",
        &view_of(&n),
        "",
        Limit {
            bytes: 1000,
            max_parts: 5,
        },
        &|_, t| t.len(),
    )
    .unwrap();
    assert_eq!(parts[0].title, "自定义");
    assert_eq!(
        parts[0].text,
        "H1/1\n[2024-01-02 15:04:05 1小时5分 HighCPU]\n"
    );
}

#[test]
fn a_channel_template_file_is_loaded_and_a_broken_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("console.j2");
    std::fs::write(&path, CUSTOM).unwrap();
    let yaml = format!(
        "channels:\n  c: {{ type: console, template: '{}' }}\n",
        path.display()
    );
    let config =
        crate::config::parse_str("t.yaml", &yaml, &crate::config::Sources::system()).unwrap();
    let channels = crate::notify::send::Channels::new(std::sync::Arc::new(config)).unwrap();
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let messages = message::prepare(
        channels.channel("c").unwrap(),
        &channels.templates,
        &view_of(&n),
    )
    .unwrap();
    let Body::Console { text } = &messages[0].body else {
        panic!()
    };
    assert!(
        text.contains("[2024-01-02 15:04:05 1小时5分 HighCPU]"),
        "{text}"
    );

    std::fs::write(&path, "{% macro title() %}{{ oops {% endmacro %}").unwrap();
    let config =
        crate::config::parse_str("t.yaml", &yaml, &crate::config::Sources::system()).unwrap();
    let error = crate::notify::send::Channels::new(std::sync::Arc::new(config))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("channel `c`: template ") && error.contains("console.j2, line 1: "),
        "{error}"
    );
}

#[test]
fn packing_stops_taking_blocks_once_the_parts_are_full() {
    let fixed = super::Fixed {
        title: "t",
        header: "h\n",
        footer: "…另有 99999 条告警\n",
        suffix: "",
    };
    let taken = std::cell::Cell::new(0);
    let mut blocks = (0..100_000).map(|i| {
        taken.set(taken.get() + 1);
        Ok(format!("- alert {i:06} {}\n", "x".repeat(80)))
    });
    let limit = Limit {
        bytes: 1_000,
        max_parts: 2,
    };
    let measure = |_: &str, text: &str| text.len();
    let plan = super::pack(&fixed, &mut blocks, 100_000, limit, &measure).unwrap();
    assert_eq!(plan.parts.len(), 2);
    let packed: usize = plan.parts.iter().map(Vec::len).sum();
    assert_eq!(
        packed + plan.omitted,
        100_000,
        "every alert shown or counted"
    );
    assert!(
        taken.get() <= packed + 1,
        "{} blocks rendered for {packed} shown: the rest must be counted, not rendered",
        taken.get()
    );
}

#[test]
fn a_view_keeps_a_bounded_number_of_alerts_and_counts_all() {
    let n = storm(view::MAX_VIEW_ALERTS + 500, "s");
    let v = view_of(&n);
    assert_eq!(v.alerts.len(), view::MAX_VIEW_ALERTS);
    assert_eq!(v.alert_count, view::MAX_VIEW_ALERTS + 500);
    assert_eq!(v.firing_count, view::MAX_VIEW_ALERTS + 500);
    assert_eq!(v.severity_counts["critical"], view::MAX_VIEW_ALERTS + 500);
    let messages = message::prepare(&dingtalk(), &Templates::builtin(), &v).unwrap();
    let shown: usize = messages.iter().map(|m| m.alerts).sum();
    let omitted: usize = messages.iter().map(|m| m.omitted).sum();
    assert_eq!(shown + omitted, view::MAX_VIEW_ALERTS + 500);
}

#[test]
fn a_digest_of_a_huge_backlog_is_bounded_and_counts_every_alert() {
    let mut digest = view::Digest::new(chrono_tz::Asia::Shanghai);
    for i in 0..90 {
        let mut alerts: Vec<Alert> = (0..500)
            .map(|j| alert(&format!("A{}", j % 3), Status::Firing, "s"))
            .collect();
        if i % 2 == 0 {
            alerts.push(alert("Gone", Status::Resolved, "r"));
        }
        digest.add(&notification(Status::Firing, alerts), t0());
    }
    let v = digest.finish();
    assert_eq!(v.notifications, 90);
    assert_eq!(v.alert_count, 90 * 500 + 45);
    assert_eq!((v.firing_count, v.resolved_count), (45_000, 45));
    assert_eq!(v.alerts.len(), view::MAX_VIEW_ALERTS, "bounded");
    assert!(v.alerts.iter().all(|a| a.firing), "firing alerts first");
    assert_eq!(v.alertname, "A0 等 4 种告警");
    assert_eq!(v.severity, "critical");
    let options = message::Options {
        template: Some("digest"),
        max_parts: MAX_PARTS,
        shrink: false,
    };
    let messages = message::prepare_with(&dingtalk(), &Templates::builtin(), &v, &options).unwrap();
    assert!(messages.len() <= MAX_PARTS);
    let shown: usize = messages.iter().map(|m| m.alerts).sum();
    let omitted: usize = messages.iter().map(|m| m.omitted).sum();
    assert_eq!(shown, view::MAX_VIEW_ALERTS, "the alerts kept all fit");
    assert_eq!(
        shown + omitted,
        v.alert_count,
        "every alert shown or counted"
    );
    let Body::Json { json } = &messages[0].body else {
        panic!()
    };
    let text = json["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains("共 45045 条告警"),
        "the header counts them all: {text}"
    );
}
