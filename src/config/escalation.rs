//! `receivers.<r>.escalate` and `web.external_url`: the steps an unacknowledged incident
//! climbs, and the base of the ack links its messages carry.

use std::collections::BTreeMap;
use std::time::Duration;

use super::EscalationStep;
use super::raw;
use crate::channel::RawChannel;
use crate::configfile::{Checker, bounds, join, parse_duration};

impl Checker<'_> {
    pub(super) fn escalation(
        &mut self,
        receiver: &str,
        raw: &[raw::RawEscalationStep],
        channels: &BTreeMap<String, RawChannel>,
    ) -> Vec<EscalationStep> {
        let mut steps: Vec<EscalationStep> = Vec::new();
        // The last step with a valid `after`: (its index, its delay, as written).
        let mut previous: Option<(usize, Duration, &str)> = None;
        for (i, step) in raw.iter().enumerate() {
            let path = format!("{}[{i}]", join(receiver, "escalate"));
            if step.channels.is_empty() {
                self.error(
                    &join(&path, "channels"),
                    "a step needs at least one channel",
                );
            }
            for channel in &step.channels {
                if !channels.contains_key(channel) {
                    self.error(
                        &join(&path, "channels"),
                        format!("unknown channel `{channel}`"),
                    );
                }
            }
            let Some(text) = self.required(&path, "after", step.after.as_deref()) else {
                continue;
            };
            let valid =
                parse_duration(text).is_ok_and(|d| bounds::ESCALATE_AFTER.check(d, text).is_ok());
            let after = self.duration_in(
                &join(&path, "after"),
                Some(text),
                Duration::from_secs(1),
                bounds::ESCALATE_AFTER,
            );
            if !valid {
                continue;
            }
            if let Some((index, before, written)) = previous
                && after <= before
            {
                self.error(
                    &join(&path, "after"),
                    format!(
                        "steps must come in increasing order of `after` ({text} is not after step {index}'s {written})"
                    ),
                );
            }
            previous = Some((i, after, text));
            steps.push(EscalationStep {
                after,
                channels: step.channels.clone(),
            });
        }
        steps
    }

    pub(super) fn external_url(&mut self, value: Option<&str>) -> Option<String> {
        let value = value?;
        let trimmed = value.trim_end_matches('/');
        let ok = trimmed
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && !rest.is_empty());
        if !ok {
            self.error(
                "web.external_url",
                format!("`{value}` is not an http:// or https:// URL"),
            );
            return None;
        }
        Some(trimmed.to_owned())
    }
}
