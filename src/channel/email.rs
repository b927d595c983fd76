//! `type: email`: alert mail over SMTP (lettre, rustls on *ring*).
//!
//! ```yaml
//! ops-mail:
//!   type: email
//!   smtp: smtps://smtp.example.com:465     # implicit TLS; smtp://host:587 = STARTTLS, required
//!   username: alerts@example.com           # AUTH, with password or password_file
//!   password: ${SMTP_PASSWORD}
//!   from: '监控告警 <alerts@example.com>'
//!   to: [oncall@example.com, ops@example.com]
//!   tls: { ca_file: /etc/lookout/ca.pem }  # an extra root beside the public ones
//! ```
//!
//! # The mail
//!
//! One mail per notification to every recipient at once: `multipart/alternative` with a
//! plain-text part (the channel's template, `text` by default) and an HTML part (a
//! coloured severity header and a table of alerts with labels, start time in `timezone`,
//! duration, generator and silence links; every label and annotation HTML-escaped).
//! The subject is `[告警][critical] 名称（共 N 条）` (`[恢复]` once resolved), RFC 2047
//! encoded by lettre. `Message-ID` is derived from the notification (its group key,
//! status and alerts), so a retried mail keeps its id; `In-Reply-To` and `References`
//! name one id per alert group, so a group's mails thread in mail clients.
//!
//! # Replies
//!
//! | SMTP reply | Outcome |
//! |---|---|
//! | 2xx | delivered |
//! | 552 (message too big) | too long: the mail is rebuilt at half size |
//! | other 5xx (550 mailbox, 553 address, 535 authentication …) | permanent, with the server's reply |
//! | 4xx (451 try later, 421 closing, 454 temporary auth failure …) | transient |
//! | TLS: the certificate does not verify | permanent: a wrong CA or host name needs a human |
//! | a server without STARTTLS on `smtp://`, no AUTH mechanism in common | permanent |
//! | connection refused, reset, timeout, other TLS failures | transient |

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::{ChannelKind, Compose, Defaults, Delivery, Error, Message, Outcome, Shown, http};
use crate::alert::render::{Limit, Part};
use crate::alert::view::NotificationView;
use crate::configfile::{Checker, Rate, Secret, join};

/// The plain-text part at most this long (half after a "too big" reply).
const TEXT_MAX_BYTES: usize = 64 * 1024;
/// At most this many alerts are rows of the HTML table (half after "too big"); the rest
/// are counted.
const HTML_MAX_ALERTS: usize = 200;

/// `type: email` keys as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub smtp: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca_file: Option<String>,
}

/// One SMTP server and the mail's addresses.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// `smtps://`: TLS from the first byte; `smtp://`: STARTTLS, required.
    pub implicit_tls: bool,
    pub credentials: Option<(String, Secret)>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// PEM of an extra trusted root.
    pub ca_pem: Option<String>,
}

/// One mail, as built: everything but the addresses (taken from the config when sent).
#[derive(Debug, Serialize, Deserialize)]
struct Mail {
    subject: String,
    text: String,
    html: String,
    message_id: String,
    /// The id every mail of the alert group refers to.
    thread: String,
}

impl ChannelKind for Config {
    const TYPE: &'static str = "email";
    const DEFAULTS: Defaults = Defaults {
        rate_limit: Rate {
            count: 60,
            per: std::time::Duration::from_secs(60),
        },
        send_resolved: true,
    };
    /// SMTP does not go through an HTTP proxy.
    const DELIVERY_KEYS: &'static [&'static str] = &[
        "rate_limit",
        "retry",
        "timeout",
        "template",
        "send_resolved",
    ];
    type Raw = Raw;
    type Transport = AsyncSmtpTransport<Tokio1Executor>;

    fn validate(raw: &Raw, path: &str, check: &mut Checker<'_>) -> Option<Self> {
        let server = check
            .required(path, "smtp", raw.smtp.as_deref())
            .and_then(|url| match parse_server(url) {
                Ok(server) => Some(server),
                Err(message) => {
                    check.error(&join(path, "smtp"), message);
                    None
                }
            });
        let password = check.secret(
            path,
            "password",
            raw.password.as_ref(),
            raw.password_file.as_ref(),
        );
        let credentials = match (raw.username.as_deref(), password) {
            (Some(user), Some(password)) if !user.is_empty() => Some((user.to_owned(), password)),
            (None, None) => None,
            (Some(_), None) => {
                check.error(path, "`username` needs `password` or `password_file`");
                None
            }
            _ => {
                check.error(&join(path, "username"), "missing key `username`");
                None
            }
        };
        let from = check
            .required(path, "from", raw.from.as_deref())
            .and_then(|from| mailbox(&join(path, "from"), from, check));
        if raw.to.is_empty() {
            check.error(&join(path, "to"), "at least one recipient is needed");
        }
        let to: Vec<Mailbox> = raw
            .to
            .iter()
            .enumerate()
            .filter_map(|(i, to)| mailbox(&format!("{path}.to[{i}]"), to, check))
            .collect();
        let ca_pem = raw
            .tls
            .as_ref()
            .and_then(|tls| tls.ca_file.as_deref())
            .and_then(|file| {
                let pem = check.file(path, "tls.ca_file", file)?;
                if Certificate::from_pem(pem.as_bytes()).is_err() {
                    check.error(
                        &join(path, "tls.ca_file"),
                        format!("`{file}` holds no PEM certificate"),
                    );
                    return None;
                }
                Some(pem)
            });
        let (host, port, implicit_tls) = server?;
        Some(Self {
            host,
            port,
            implicit_tls,
            credentials,
            from: from?,
            to,
            ca_pem,
        })
    }

    fn targets(&self) -> Vec<String> {
        vec![format!("email:{}:{}", self.host, self.port)]
    }

    fn compose(&self, compose: &Compose<'_>) -> Result<Vec<Message>, Error> {
        let view = compose.view;
        let shrink = compose.options.shrink;
        let limit = Limit {
            bytes: if shrink {
                TEXT_MAX_BYTES / 2
            } else {
                TEXT_MAX_BYTES
            },
            max_parts: 1,
        };
        let measure = |_: &str, text: &str| text.len();
        let text = compose
            .render(false, "", limit, &measure)?
            .into_iter()
            .next()
            .map(|part| part.text)
            .unwrap_or_default();
        let rows = if shrink {
            HTML_MAX_ALERTS / 2
        } else {
            HTML_MAX_ALERTS
        };
        let subject = subject(view);
        let html = html(view, &subject, rows)?;
        let domain = self.from.email.domain().to_owned();
        let mail = Mail {
            message_id: format!("<lookout.{}@{domain}>", notification_id(view)),
            thread: format!("<lookout.group.{}@{domain}>", short_hash(&view.group_key)),
            subject,
            text,
            html,
        };
        let part = Part {
            title: String::new(),
            text: String::new(),
            index: 1,
            total: 1,
            alerts: view.alert_count,
            omitted: 0,
        };
        let payload = serde_json::to_value(&mail)
            .unwrap_or_else(|error| unreachable!("a mail serializes: {error}"));
        let target = self.targets().remove(0);
        Ok(vec![compose.message(&target, payload, &part)])
    }

    fn describe(&self, message: &Message) -> Shown {
        match mail(message) {
            Ok(mail) => {
                let mut text = format!(
                    "Subject: {}\nMessage-ID: {}\nTo: {}\n-- text/plain ({} bytes)\n{}\n-- text/html ({} bytes)\n{}",
                    mail.subject,
                    mail.message_id,
                    self.to
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                    mail.text.len(),
                    mail.text.trim_end(),
                    mail.html.len(),
                    mail.html.trim_end()
                );
                text.truncate(text.trim_end().len());
                Shown {
                    bytes: mail.subject.len() + mail.text.len() + mail.html.len(),
                    text,
                }
            }
            Err(outcome) => Shown {
                bytes: 0,
                text: format!("{outcome:?}"),
            },
        }
    }

    fn transport(&self, delivery: &Delivery) -> Result<Self::Transport, String> {
        http::install_crypto_provider();
        let mut tls = TlsParameters::builder(self.host.clone());
        if let Some(pem) = &self.ca_pem {
            let root = Certificate::from_pem(pem.as_bytes())
                .map_err(|error| format!("tls.ca_file: {error}"))?;
            tls = tls.add_root_certificate(root);
        }
        let tls = tls
            .build_rustls()
            .map_err(|error| format!("TLS: {error}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(delivery.timeout))
            .tls(if self.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Required(tls)
            });
        if let Some((user, password)) = &self.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }

    async fn send(
        &self,
        transport: &Self::Transport,
        message: &Message,
        _now: DateTime<Utc>,
    ) -> Outcome {
        let mail = match mail(message) {
            Ok(mail) => mail,
            Err(outcome) => return outcome,
        };
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(mail.subject)
            .message_id(Some(mail.message_id))
            .in_reply_to(mail.thread.clone())
            .references(mail.thread)
            .date_now();
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let email = match builder.multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        {
            Ok(email) => email,
            Err(error) => return Outcome::Permanent(format!("cannot build the mail: {error}")),
        };
        match transport.send(email).await {
            Ok(_) => Outcome::Delivered,
            Err(error) => classify(&error),
        }
    }
}

/// `smtps://host[:465]` or `smtp://host[:587]` → host, port, implicit TLS.
fn parse_server(url: &str) -> Result<(String, u16, bool), String> {
    let bad = || format!("expected smtps://host[:port] or smtp://host[:port], got `{url}`");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (implicit_tls, default_port) = match scheme {
        "smtps" => (true, 465),
        "smtp" => (false, 587),
        _ => return Err(bad()),
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains(['/', '@', '?']) {
        return Err(bad());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port `{port}` in `{url}`"))?;
            (host, port)
        }
        _ => (rest, default_port),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port, implicit_tls))
}

fn mailbox(path: &str, text: &str, check: &mut Checker<'_>) -> Option<Mailbox> {
    Mailbox::from_str(text.trim())
        .map_err(|error| {
            check.error(path, format!("`{text}` is not a mail address: {error}"));
        })
        .ok()
}

/// `[告警][critical] 名称（共 N 条）`, or `[恢复]…` when resolved.
fn subject(view: &NotificationView) -> String {
    let state = if view.firing { "告警" } else { "恢复" };
    let mut subject = format!("[{state}][{}] {}", view.severity, view.alertname);
    if view.alert_count > 1 {
        let _ = write!(subject, "（共 {} 条）", view.alert_count);
    }
    subject
}

/// The header colour: red for critical, orange for high, amber for warning, blue
/// otherwise, green once resolved.
fn colour(view: &NotificationView) -> &'static str {
    if !view.firing {
        return "#2ba471";
    }
    match view.severity.as_str() {
        "critical" => "#d54941",
        "high" => "#e37318",
        "warning" => "#d89614",
        _ => "#0052d9",
    }
}

/// The HTML part: the first `rows` alerts as table rows, the rest counted.
fn html(view: &NotificationView, subject: &str, rows: usize) -> Result<String, Error> {
    let mut env = minijinja::Environment::new();
    // The `.html` name turns HTML auto-escaping on for every value.
    env.add_template("email.html", include_str!("templates/email.html.j2"))
        .map_err(template_error)?;
    let shown = view.alerts.len().min(rows);
    let alerts = view.alerts.get(..shown).unwrap_or_default();
    let context = minijinja::context! {
        view => minijinja::Value::from(minijinja::value::Serde(view)),
        alerts => minijinja::Value::from(minijinja::value::Serde(alerts)),
        subject => subject,
        state => if view.firing { "告警" } else { "恢复" },
        colour => colour(view),
        omitted => view.alert_count.saturating_sub(shown),
    };
    env.get_template("email.html")
        .and_then(|template| template.render(context))
        .map_err(template_error)
}

fn template_error(source: minijinja::Error) -> Error {
    Error::Render(crate::alert::render::Error::Template {
        name: "email.html".to_owned(),
        source,
    })
}

/// The notification's identity: group, status and each alert's fingerprint, status and
/// start, so a retried mail keeps its `Message-ID` and a new notification gets a new one.
fn notification_id(view: &NotificationView) -> String {
    let mut key = format!("{}\n{}\n{}", view.group_key, view.status, view.alert_count);
    for alert in view.alerts.iter() {
        let _ = write!(
            key,
            "\n{} {} {}",
            alert.fingerprint, alert.status, alert.starts_at
        );
    }
    short_hash(&key)
}

/// 32 hex digits of SHA-256.
fn short_hash(text: &str) -> String {
    let digest = super::sign::sha256_hex(text.as_bytes());
    digest.get(..32).unwrap_or(&digest).to_owned()
}

fn mail(message: &Message) -> Result<Mail, Outcome> {
    serde_json::from_value(message.payload.clone())
        .map_err(|error| Outcome::Permanent(format!("the stored message is not a mail: {error}")))
}

/// Classifies a failed send; see the module doc for the table.
fn classify(error: &lettre::transport::smtp::Error) -> Outcome {
    let detail = http::cause_chain(error);
    if let Some(code) = error.status() {
        return if code.to_string() == "552" {
            Outcome::TooLong(format!("SMTP {detail}"))
        } else if error.is_permanent() {
            Outcome::Permanent(format!("SMTP {detail}"))
        } else {
            Outcome::Transient(format!("SMTP {detail}"))
        };
    }
    // With implicit TLS a failed handshake is a connection error, with STARTTLS a TLS
    // error: the certificate is named in the cause either way.
    let certificate = ["certificate", "UnknownIssuer", "NotValidForName"];
    if certificate.iter().any(|word| detail.contains(word)) {
        return Outcome::Permanent(format!("SMTP TLS: {detail}"));
    }
    if error.is_tls() {
        return Outcome::Transient(format!("SMTP TLS: {detail}"));
    }
    if error.is_client() {
        return Outcome::Permanent(format!("SMTP: {detail}"));
    }
    Outcome::Transient(format!("SMTP: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_name_the_tls_mode_and_port() {
        assert_eq!(
            parse_server("smtps://smtp.example.com"),
            Ok(("smtp.example.com".to_owned(), 465, true))
        );
        assert_eq!(
            parse_server("smtp://smtp.example.com:2525/"),
            Ok(("smtp.example.com".to_owned(), 2525, false))
        );
        assert_eq!(
            parse_server("smtps://[::1]:465"),
            Ok(("[::1]".to_owned(), 465, true))
        );
        for bad in [
            "smtp.example.com",
            "http://smtp.example.com",
            "smtps://",
            "smtps://user@host",
            "smtps://host:0",
            "smtps://host:x",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
