//! A string that must never be shown: `Debug` and `Display` print `**REDACTED**`.
//!
//! The only way to the value is [`Secret::expose`], so every place a secret leaves the
//! process (a signature, a header, a DSN handed to a driver) is easy to find.

use std::fmt;

/// A redacted string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

const REDACTED: &str = "**REDACTED**";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Replaces the password in a URL's userinfo (`scheme://user:pass@host`) by `**REDACTED**`
/// so a DSN can be logged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}{user}:{REDACTED}{host}{tail}"),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "**REDACTED**");
        assert_eq!(format!("{secret}"), "**REDACTED**");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(**REDACTED**)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("mysql://app:s3cret@db:3306/shop"),
            "mysql://app:**REDACTED**@db:3306/shop"
        );
        assert_eq!(redact_url("mysql://app@db/shop"), "mysql://app@db/shop");
        assert_eq!(redact_url("sqlite:///var/a.db"), "sqlite:///var/a.db");
        assert_eq!(
            redact_url("postgres://u:p@ss@h/db?x=@"),
            "postgres://u:**REDACTED**@h/db?x=@"
        );
    }
}
