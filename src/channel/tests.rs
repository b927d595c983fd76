//! Each kind's messages from a notification: mentions that ping, splitting at the kind's
//! own limit into numbered parts, cutting one huge alert on a character boundary, bounded
//! digests, and a property test that every part fits and every alert is shown or counted.

use proptest::prelude::*;

use super::mention::Mention;
use super::{
    Channel, Delivery, Kind, MAX_PARTS, Message, Options, dingtalk, json_string_len, wecom,
};
use crate::alert::render::Templates;
use crate::alert::testing::{CUSTOM, alert, notification, storm, t0, view_of};
use crate::alert::view::{self, NotificationView};
use crate::alert::{Alert, Notification, Status};
use crate::backoff::Backoff;
use crate::configfile::{Rate, Secret};

fn channel(kind: Kind) -> Channel {
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
    channel(Kind::Dingtalk(dingtalk::Config {
        url: Secret::new("https://oapi.dingtalk.com/robot/send?access_token=t"),
        secret: None,
        mention: Mention {
            mobiles: vec!["13800000000".to_owned()],
            user_ids: vec![],
            all_on_severity: vec!["critical".to_owned()],
        },
        markdown: true,
    }))
}

fn wecom(markdown: bool) -> Channel {
    channel(Kind::Wecom(wecom::Config {
        url: Secret::new("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"),
        mention: Mention {
            mobiles: vec!["13800000000".to_owned()],
            user_ids: vec!["zhangsan".to_owned()],
            all_on_severity: vec![],
        },
        markdown,
    }))
}

fn prepare(channel: &Channel, view: &NotificationView) -> Vec<Message> {
    channel
        .prepare(&Templates::builtin(), view, &Options::default())
        .unwrap()
}

#[test]
fn dingtalk_mentions_ping_in_text_and_at() {
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let messages = prepare(&dingtalk(), &view_of(&n));
    let json = &messages[0].payload;
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
    let md = prepare(&wecom(true), &view_of(&n));
    let json = &md[0].payload;
    assert!(
        json["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("<@zhangsan>")
    );
    let text = prepare(&wecom(false), &view_of(&n));
    let json = &text[0].payload;
    assert_eq!(json["text"]["mentioned_mobile_list"][0], "13800000000");
    assert_eq!(json["text"]["mentioned_list"][0], "zhangsan");
}

fn sizes(channel: &Channel, n: &Notification) -> (Vec<usize>, usize, usize) {
    let messages = prepare(channel, &view_of(n));
    let sizes = messages
        .iter()
        .map(|m| match &channel.kind {
            Kind::Wecom(wecom::Config { markdown: true, .. }) => {
                json_string_len(m.payload["markdown"]["content"].as_str().unwrap())
            }
            Kind::Wecom(wecom::Config {
                markdown: false, ..
            }) => json_string_len(m.payload["text"]["content"].as_str().unwrap()),
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
        (dingtalk(), dingtalk::MAX_BYTES),
        (wecom(true), wecom::MARKDOWN_MAX_BYTES),
        (wecom(false), wecom::TEXT_MAX_BYTES),
    ] {
        let (sizes, shown, omitted) = sizes(&channel, &n);
        assert_eq!(sizes.len(), MAX_PARTS);
        assert!(sizes.iter().all(|s| *s <= limit), "{sizes:?} > {limit}");
        assert_eq!(shown + omitted, 400);
        assert!(omitted > 0);
    }
    let messages = prepare(&dingtalk(), &view_of(&n));
    let json = &messages[4].payload;
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
        (dingtalk(), dingtalk::MAX_BYTES),
        (wecom(true), wecom::MARKDOWN_MAX_BYTES),
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
        for (channel, limit) in [(dingtalk(), dingtalk::MAX_BYTES), (wecom(true), wecom::MARKDOWN_MAX_BYTES), (wecom(false), wecom::TEXT_MAX_BYTES)] {
            let (sizes, shown, omitted) = sizes(&channel, &n);
            prop_assert!(sizes.iter().all(|s| *s <= limit), "{:?} over {}", sizes, limit);
            prop_assert_eq!(shown + omitted, count);
        }
    }
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
    let messages = channels
        .channel("c")
        .unwrap()
        .prepare(&channels.templates, &view_of(&n), &Options::default())
        .unwrap();
    let text = messages[0].payload["text"].as_str().unwrap();
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
fn a_view_keeps_a_bounded_number_of_alerts_and_counts_all() {
    let n = storm(view::MAX_VIEW_ALERTS + 500, "s");
    let v = view_of(&n);
    assert_eq!(v.alerts.len(), view::MAX_VIEW_ALERTS);
    assert_eq!(v.alert_count, view::MAX_VIEW_ALERTS + 500);
    assert_eq!(v.firing_count, view::MAX_VIEW_ALERTS + 500);
    assert_eq!(v.severity_counts["critical"], view::MAX_VIEW_ALERTS + 500);
    let messages = prepare(&dingtalk(), &v);
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
    let options = Options {
        template: Some("digest"),
        max_parts: MAX_PARTS,
        shrink: false,
    };
    let messages = dingtalk()
        .prepare(&Templates::builtin(), &v, &options)
        .unwrap();
    assert!(messages.len() <= MAX_PARTS);
    let shown: usize = messages.iter().map(|m| m.alerts).sum();
    let omitted: usize = messages.iter().map(|m| m.omitted).sum();
    assert_eq!(shown, view::MAX_VIEW_ALERTS, "the alerts kept all fit");
    assert_eq!(
        shown + omitted,
        v.alert_count,
        "every alert shown or counted"
    );
    let json = &messages[0].payload;
    let text = json["markdown"]["text"].as_str().unwrap();
    assert!(
        text.contains("共 45045 条告警"),
        "the header counts them all: {text}"
    );
}

#[test]
fn feishu_cards_ping_by_id_colour_by_severity_and_fit() {
    let feishu = channel(Kind::Feishu(super::feishu::Config {
        url: Secret::new("https://open.feishu.cn/open-apis/bot/v2/hook/t"),
        secret: None,
        mention: Mention {
            mobiles: vec![],
            user_ids: vec!["ou_123".to_owned()],
            all_on_severity: vec!["critical".to_owned()],
        },
    }));
    let n = notification(Status::Firing, vec![alert("HighCPU", Status::Firing, "x")]);
    let messages = prepare(&feishu, &view_of(&n));
    let card = &messages[0].payload["card"];
    assert_eq!(messages[0].payload["msg_type"], "interactive");
    assert_eq!(card["header"]["template"], "red");
    let content = card["elements"][0]["content"].as_str().unwrap();
    assert!(
        content.ends_with("<at id=ou_123></at> <at id=all></at>"),
        "{content}"
    );
    // A storm splits into parts that leave room for the signature fields.
    let messages = prepare(
        &feishu,
        &view_of(&storm(400, "交易失败率过高，请立即检查支付通道")),
    );
    assert_eq!(messages.len(), MAX_PARTS);
    for m in &messages {
        let signed = m.wire().len()
            + r#","timestamp":"1700000000","sign":"OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU=""#
                .len();
        assert!(signed <= super::feishu::MAX_BYTES, "{signed}");
    }
}
