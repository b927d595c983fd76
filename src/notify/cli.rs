//! `lookout render` and `lookout send-test`: see what a channel would send, and send one
//! test notification through it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::Utc;

use super::send::Channels;
use crate::alert::{Alert, Notification, Status, view};
use crate::channel::{Channel, Message, Options};
use crate::config::Config;

/// Prints, per channel of `receiver`, every message `payload` would produce.
pub fn render(config: Config, receiver: &str, payload: &Path) -> ExitCode {
    let Some(channels) = config.receivers.get(receiver).map(|r| r.channels.clone()) else {
        let known: Vec<_> = config.receivers.keys().cloned().collect();
        eprintln!(
            "unknown receiver `{receiver}` (configured: {})",
            known.join(", ")
        );
        return ExitCode::FAILURE;
    };
    let body = match std::fs::read(payload) {
        Ok(body) => body,
        Err(error) => {
            eprintln!("{}: {error}", payload.display());
            return ExitCode::FAILURE;
        }
    };
    let notification = match Notification::parse(&body) {
        Ok(n) => n,
        Err(error) => {
            eprintln!("{}: {error}", payload.display());
            return ExitCode::FAILURE;
        }
    };
    let timezone = config.timezone;
    let escalates = config
        .receivers
        .get(receiver)
        .is_some_and(|r| !r.escalate.is_empty());
    let external_url = config.web.external_url.clone();
    let registry = match Channels::new(Arc::new(config)) {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    // Rendering at the payload's own latest time keeps the output reproducible.
    let now = notification
        .alerts
        .iter()
        .map(|a| a.ended().unwrap_or(a.starts_at))
        .max()
        .unwrap_or_else(Utc::now);
    let mut view = view::build(&notification, timezone, now);
    // An escalating receiver's firing messages carry an ack link; its token names the
    // incident, which only a running lookout has: show where it goes.
    if view.firing && escalates {
        view.ack_url = format!("{}/ack/<token>", external_url.unwrap_or_default());
    }
    let mut failed = false;
    for name in &channels {
        let Some(channel) = registry.channel(name) else {
            continue;
        };
        match channel.prepare(&registry.templates, &view, &Options::default()) {
            Ok(messages) => print!("{}", describe(channel, &messages)),
            Err(error) => {
                failed = true;
                println!("== {name}: {error}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The human-readable description of what `render` prints for one channel.
pub fn describe(channel: &Channel, messages: &[Message]) -> String {
    let (name, kind) = (&channel.name, channel.kind.name());
    let mut out = String::new();
    if messages.is_empty() {
        out.push_str(&format!("== {name} ({kind}): nothing to send (resolved notifications are off for this channel)\n"));
        return out;
    }
    out.push_str(&format!(
        "== {name} ({kind}): {} message(s)\n",
        messages.len()
    ));
    for m in messages {
        let shown = channel.kind.describe(m);
        out.push_str(&format!(
            "-- part {}/{} to {}: {} bytes, {} alert(s){}\n",
            m.part,
            m.parts,
            m.target,
            shown.bytes,
            m.alerts,
            if m.omitted > 0 {
                format!(", {} omitted", m.omitted)
            } else {
                String::new()
            }
        ));
        out.push_str(&shown.text);
        out.push('\n');
    }
    out
}

/// A firing test notification, as Alertmanager would send it.
pub fn test_notification(receiver: &str) -> Notification {
    let labels = BTreeMap::from([
        ("alertname".to_owned(), "LookoutTest".to_owned()),
        ("severity".to_owned(), "info".to_owned()),
        ("instance".to_owned(), "lookout".to_owned()),
    ]);
    Notification {
        version: "4".to_owned(),
        group_key: "{}:{alertname=\"LookoutTest\"}".to_owned(),
        truncated_alerts: 0,
        status: Status::Firing,
        receiver: receiver.to_owned(),
        group_labels: BTreeMap::from([("alertname".to_owned(), "LookoutTest".to_owned())]),
        common_labels: labels.clone(),
        common_annotations: BTreeMap::new(),
        external_url: String::new(),
        alerts: vec![Alert {
            status: Status::Firing,
            labels,
            annotations: BTreeMap::from([
                ("summary".to_owned(), "lookout 测试消息".to_owned()),
                (
                    "description".to_owned(),
                    "这是一条由 lookout send-test 发送的测试告警。".to_owned(),
                ),
            ]),
            starts_at: Utc::now(),
            ends_at: None,
            generator_url: String::new(),
            fingerprint: "0000000000000000".to_owned(),
        }],
    }
}

/// Sends one test notification through `channel_name` and prints each outcome.
pub fn send_test(config: Config, channel_name: &str) -> ExitCode {
    if !config.channels.contains_key(channel_name) {
        let known: Vec<_> = config.channels.keys().cloned().collect();
        eprintln!(
            "unknown channel `{channel_name}` (configured: {})",
            known.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let timezone = config.timezone;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let registry = match Channels::new(Arc::new(config)) {
            Ok(registry) => registry,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        };
        let Some(channel) = registry.channel(channel_name) else {
            return ExitCode::FAILURE;
        };
        let view = view::build(&test_notification("send-test"), timezone, Utc::now());
        let messages = match channel.prepare(&registry.templates, &view, &Options::default()) {
            Ok(messages) => messages,
            Err(error) => {
                eprintln!("{channel_name}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let mut ok = true;
        for m in &messages {
            let outcome = registry.send(m).await;
            println!(
                "{channel_name} → {}: {}",
                m.target,
                describe_outcome(&outcome)
            );
            ok &= outcome.is_delivered();
        }
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}

fn describe_outcome(outcome: &super::Outcome) -> String {
    use super::Outcome as O;
    match outcome {
        O::Delivered => "delivered".to_owned(),
        O::RateLimited { retry_after } => format!("rate limited (retry after {retry_after:?})"),
        O::Transient(reason) => format!("transient failure: {reason}"),
        O::Permanent(reason) => format!("permanent failure: {reason}"),
        O::TooLong(reason) => format!("too long: {reason}"),
    }
}
