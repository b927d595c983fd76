//! Sending one prepared message: sign it with the current clock, POST it with the
//! channel's timeout and proxy, and classify the reply. The one place requests leave
//! lookout.
//!
//! **Invariant:** secrets never reach logs: transport errors are reported without their
//! URL (robot URLs carry tokens), and request `Debug` output omits header values.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::message::{Body, Message};
use super::sms::{SignedRequest, aliyun, tencent};
use super::{Outcome, dingtalk, wecom};
use crate::alert::render::Templates;
use crate::config::{Channel, ChannelKind, Config};

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
    #[error("channel `{channel}`: HTTP client: {message}")]
    Client { channel: String, message: String },
}

/// Every configured channel with its HTTP client, and the templates they render with.
#[derive(Debug)]
pub struct Channels {
    pub templates: Templates,
    clients: BTreeMap<String, reqwest::Client>,
    config: Arc<Config>,
}

impl Channels {
    /// Loads custom templates and builds one HTTP client per channel.
    pub fn new(config: Arc<Config>) -> Result<Self, Error> {
        install_crypto_provider();
        let mut templates = Templates::new(config.timezone);
        let mut clients = BTreeMap::new();
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
            clients.insert(name.clone(), client(channel)?);
        }
        Ok(Self {
            templates,
            clients,
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
        let (Some(channel), Some(client)) = (
            self.channel(&message.channel),
            self.clients.get(&message.channel),
        ) else {
            return Outcome::Permanent(format!(
                "channel `{}` is no longer configured",
                message.channel
            ));
        };
        send(client, channel, message, Utc::now()).await
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

/// rustls needs a process-wide crypto provider; ring keeps the build free of cmake.
fn install_crypto_provider() {
    // An error means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client(channel: &Channel) -> Result<reqwest::Client, Error> {
    let error = |e: reqwest::Error| Error::Client {
        channel: channel.name.clone(),
        message: e.without_url().to_string(),
    };
    let mut builder = reqwest::Client::builder()
        .timeout(channel.delivery.timeout)
        .connect_timeout(channel.delivery.timeout)
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(proxy) = &channel.delivery.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(error)?);
    }
    builder.build().map_err(error)
}

/// Signs `message` at `now`, sends it, classifies the reply.
pub async fn send(
    client: &reqwest::Client,
    channel: &Channel,
    message: &Message,
    now: DateTime<Utc>,
) -> Outcome {
    match (&channel.kind, &message.body) {
        (ChannelKind::Dingtalk { url, secret, .. }, Body::Json { json }) => {
            let url = match secret {
                Some(secret) => {
                    dingtalk::signed_url(url.expose(), secret.expose(), now.timestamp_millis())
                }
                None => url.expose().to_owned(),
            };
            let request = client.post(url).json(json);
            match exchange(request).await {
                Ok((status, body)) => dingtalk::classify(status, &body),
                Err(outcome) => outcome,
            }
        }
        (ChannelKind::Wecom { url, .. }, Body::Json { json }) => {
            match exchange(client.post(url.expose()).json(json)).await {
                Ok((status, body)) => wecom::classify(status, &body),
                Err(outcome) => outcome,
            }
        }
        (
            ChannelKind::AliyunSms {
                endpoint,
                access_key_id,
                access_key_secret,
                sign_name,
                template_code,
                ..
            },
            Body::AliyunSms { phone, params },
        ) => {
            let phones = [phone.clone()];
            let sms = aliyun::SendSms {
                phone_numbers: &phones,
                sign_name,
                template_code,
                template_param: params,
            };
            let nonce = format!("{:032x}", fastrand::u128(..));
            let signed = aliyun::sign_send_sms(
                endpoint,
                &sms,
                access_key_id,
                access_key_secret.expose(),
                now,
                &nonce,
            );
            match exchange(signed_request(client, signed)).await {
                Ok((status, body)) => aliyun::classify(status, &body),
                Err(outcome) => outcome,
            }
        }
        (
            ChannelKind::TencentSms {
                endpoint,
                region,
                secret_id,
                secret_key,
                sdk_app_id,
                sign_name,
                template_id,
                ..
            },
            Body::TencentSms { phone, params },
        ) => {
            let phones = [phone.clone()];
            let sms = tencent::SendSms {
                sdk_app_id,
                sign_name,
                template_id,
                template_params: params,
                phone_numbers: &phones,
            };
            let signed = tencent::sign_send_sms_to(
                endpoint,
                region,
                &sms,
                secret_id,
                secret_key.expose(),
                now,
            );
            match exchange(signed_request(client, signed)).await {
                Ok((status, body)) => tencent::classify(status, &body),
                Err(outcome) => outcome,
            }
        }
        (ChannelKind::Console, Body::Console { text }) => {
            println!("── lookout → {} ──\n{text}", message.channel);
            Outcome::Delivered
        }
        _ => Outcome::Permanent(format!(
            "message kind does not match channel `{}`",
            message.channel
        )),
    }
}

fn signed_request(client: &reqwest::Client, signed: SignedRequest) -> reqwest::RequestBuilder {
    let mut request = client.post(&signed.url);
    for (name, value) in &signed.headers {
        // reqwest sets Host from the URL; sending it twice would be wrong.
        if !name.eq_ignore_ascii_case("host") {
            request = request.header(name, value);
        }
    }
    request.body(signed.body)
}

/// Sends and reads the reply; transport failures are transient, reported without URL.
async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Outcome> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(transport)?;
    Ok((status, body.to_vec()))
}

fn transport(error: reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    Outcome::Transient(format!("{kind}: {}", cause_chain(&error.without_url())))
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused
/// (os error 111)": the error and its sources, each said once, with any URL in them
/// replaced by `<url>` (robot URLs carry their token).
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = redact_urls(&current.to_string());
        // A wrapper often repeats its source's text; keep what is new.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['(', '"', '\'', '<']);
            if bare.starts_with("http://") || bare.starts_with("https://") {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn the_cause_chain_is_joined_without_repeats_or_urls() {
        let error = Layer(
            "error sending request for url (https://oapi.dingtalk.com/robot/send?access_token=secret)",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "tcp connect error: Connection refused (os error 111)",
                    Some(Box::new(Layer("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            cause_chain(&error),
            "error sending request for url <url>: client error (Connect): \
             tcp connect error: Connection refused (os error 111)"
        );
    }
}
