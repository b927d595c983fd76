//! Render tests: golden output of the default templates (firing and resolved, Chinese),
//! custom templates with their filters, and packing that stops rendering once the parts
//! are full. Each channel kind's splitting at its own limit is tested in `channel`.

use super::{Limit, Templates, render};
use crate::alert::Status;
use crate::alert::testing::{CUSTOM, alert, notification, view_of};
use crate::alert::view::NotificationView;

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
