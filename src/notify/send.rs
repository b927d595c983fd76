//! The configured channels, ready to send: each channel's template loaded and its
//! transport (HTTP client) open, rebuilt on every reload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;

use crate::alert::render::Templates;
use crate::channel::{Channel, Message, Outcome, Sender};
use crate::config::Config;

/// Why channels could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("channel `{channel}`: cannot read template {path}: {source}")]
    TemplateFile {
        channel: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("channel `{channel}`: template {path}, line {line}: {message}")]
    Template {
        channel: String,
        path: String,
        line: usize,
        message: String,
    },
    #[error("channel `{channel}`: {message}")]
    Transport { channel: String, message: String },
}

/// Every configured channel with its open transport, and the templates they render with.
#[derive(Debug)]
pub struct Channels {
    pub templates: Templates,
    senders: BTreeMap<String, Sender>,
    config: Arc<Config>,
}

impl Channels {
    /// Loads custom templates and opens each channel's transport.
    pub fn new(config: Arc<Config>) -> Result<Self, Error> {
        let mut templates = Templates::new(config.timezone);
        let mut senders = BTreeMap::new();
        for (name, channel) in &config.channels {
            if let Some(path) = &channel.delivery.template {
                let source = read_template(path).map_err(|source| Error::TemplateFile {
                    channel: name.clone(),
                    path: path.display().to_string(),
                    source,
                })?;
                templates
                    .add(name, source)
                    .map_err(|error| template_error(name, path, &error))?;
            }
            let sender = Sender::new(channel).map_err(|message| Error::Transport {
                channel: name.clone(),
                message,
            })?;
            senders.insert(name.clone(), sender);
        }
        Ok(Self {
            templates,
            senders,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn channel(&self, name: &str) -> Option<&Channel> {
        self.config.channels.get(name)
    }

    /// Signs and sends `message` now, and classifies the reply.
    pub async fn send(&self, message: &Message) -> Outcome {
        let Some(sender) = self.senders.get(&message.channel) else {
            return Outcome::Permanent(format!(
                "channel `{}` is no longer configured",
                message.channel
            ));
        };
        sender.send(message, Utc::now()).await
    }
}

fn template_error(channel: &str, path: &Path, error: &crate::alert::render::Error) -> Error {
    let (line, message) = match error {
        crate::alert::render::Error::Template { source, .. } => (
            source.line().unwrap_or(0),
            source
                .detail()
                .map_or_else(|| source.kind().to_string(), str::to_owned),
        ),
        other => (0, other.to_string()),
    };
    Error::Template {
        channel: channel.to_owned(),
        path: path.display().to_string(),
        line,
        message,
    }
}

fn read_template(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}
