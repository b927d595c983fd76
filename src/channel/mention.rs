//! Who a chat message pings: `mention: {mobiles, user_ids, all_on_severity}`, shared by
//! the robot kinds (each writes the pings its own way).

use serde::Deserialize;

use crate::alert::view::NotificationView;

/// The `mention` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMention {
    #[serde(default)]
    pub mobiles: Vec<String>,
    #[serde(default)]
    pub user_ids: Vec<String>,
    #[serde(default)]
    pub all_on_severity: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Mention {
    pub mobiles: Vec<String>,
    pub user_ids: Vec<String>,
    /// Severities whose firing notifications ping everyone in the group.
    pub all_on_severity: Vec<String>,
}

impl Mention {
    pub fn of(raw: Option<&RawMention>) -> Self {
        raw.map(|m| Mention {
            mobiles: m.mobiles.clone(),
            user_ids: m.user_ids.clone(),
            all_on_severity: m.all_on_severity.clone(),
        })
        .unwrap_or_default()
    }

    /// Whether `view` pings everyone.
    pub fn at_all(&self, view: &NotificationView) -> bool {
        view.firing && self.all_on_severity.contains(&view.severity)
    }
}
