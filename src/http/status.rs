//! `GET /`: the status page — endpoints and a summary of the running configuration.
//! Rendered by minijinja with HTML auto-escaping; no secret is ever passed to it.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::response::Html;
use minijinja::{Environment, context};

use super::error::Error;
use crate::app::AppState;
use crate::config::ChannelKind;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_template("status.html", include_str!("templates/status.html"))
        .unwrap_or_else(|error| unreachable!("the built-in status template parses: {error}"));
    env
});

pub async fn page(State(state): State<Arc<AppState>>) -> Result<Html<String>, Error> {
    let config = state.config();
    let channels: Vec<_> = config
        .channels
        .values()
        .map(|c| context! { name => c.name.clone(), kind => kind_name(&c.kind) })
        .collect();
    let template = TEMPLATES
        .get_template("status.html")
        .map_err(|error| Error::Internal(error.to_string()))?;
    template
        .render(context! {
            version => env!("CARGO_PKG_VERSION"),
            source => config.source.as_ref().map_or_else(|| "built-in defaults".to_owned(), |p| p.display().to_string()),
            listen => config.listen.to_string(),
            timezone => config.timezone.name(),
            state_dir => config.state_dir.display().to_string(),
            host_enabled => config.host.enabled,
            databases => config.databases.keys().cloned().collect::<Vec<_>>(),
            queries => config.queries.iter().map(|q| q.name.clone()).collect::<Vec<_>>(),
            receivers => config.receivers.keys().cloned().collect::<Vec<_>>(),
            channels,
        })
        .map(Html)
        .map_err(|error| Error::Internal(error.to_string()))
}

fn kind_name(kind: &ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Dingtalk { .. } => "dingtalk",
        ChannelKind::Wecom { .. } => "wecom",
        ChannelKind::AliyunSms { .. } => "aliyun_sms",
        ChannelKind::TencentSms { .. } => "tencent_sms",
        ChannelKind::Console => "console",
    }
}
