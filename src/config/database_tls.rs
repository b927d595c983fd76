//! TLS to a database: the mode from the URL (`?ssl-mode=` for MySQL, libpq's `?sslmode=`
//! for PostgreSQL) and the `tls:` files (`ca_file`, `cert_file`, `key_file`), read and
//! checked at load time. The mode parameter is taken out of the URL the drivers see, so
//! each driver gets lookout's meaning of it, not its own.

use super::DatabaseKind;
use super::raw::RawDatabaseTls;
use crate::configfile::{Checker, Secret, join};

/// How a connection uses TLS; libpq's names, with MySQL's spellings mapped onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, its certificate unchecked; plaintext otherwise.
    /// The default of both `mysql` and `psql`.
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is checked against `tls.ca_file` when one
    /// is given (as libpq does), not checked otherwise.
    Require,
    /// TLS, the server's certificate chain checked against `tls.ca_file` (or, without
    /// one, the Mozilla roots); any host name.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host in the URL.
    VerifyFull,
}

impl SslMode {
    /// Whether the certificate chain is checked.
    pub fn verifies(self, has_ca: bool) -> bool {
        match self {
            SslMode::Disable | SslMode::Prefer => false,
            SslMode::Require => has_ca,
            SslMode::VerifyCa | SslMode::VerifyFull => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A client certificate for servers that authenticate clients by certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientIdentity {
    /// PEM: the certificate, then any intermediates.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: Secret,
}

/// `databases.<name>`'s TLS settings, as loaded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DatabaseTls {
    pub mode: SslMode,
    /// PEM CA certificates from `tls.ca_file`: when set, the only roots trusted.
    pub ca_pem: Option<String>,
    pub identity: Option<ClientIdentity>,
}

/// URL parameters of the drivers' own TLS switches, which lookout replaces.
const MYSQL_DRIVER_KEYS: &[&str] = &[
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];
const POSTGRES_DRIVER_KEYS: &[&str] = &["sslrootcert", "sslcert", "sslkey", "sslpassword"];

impl Checker<'_> {
    /// The URL without its TLS mode parameter, and the TLS settings.
    pub(super) fn database_tls(
        &mut self,
        path: &str,
        kind: DatabaseKind,
        url: &str,
        raw: Option<&RawDatabaseTls>,
    ) -> (String, DatabaseTls) {
        self.database_tls_at(&join(path, "url"), &join(path, "tls"), kind, url, raw)
    }

    /// [`Self::database_tls`] for a URL and TLS section at any key paths.
    pub(super) fn database_tls_at(
        &mut self,
        url_path: &str,
        tls_path: &str,
        kind: DatabaseKind,
        url: &str,
        raw: Option<&RawDatabaseTls>,
    ) -> (String, DatabaseTls) {
        let (url, mode) = match split_mode(url, kind) {
            Ok(split) => split,
            Err(message) => {
                self.error(url_path, message);
                (url.to_owned(), None)
            }
        };
        if kind == DatabaseKind::Sqlite {
            if raw.is_some() || mode.is_some() {
                self.error(tls_path, "SQLite is a local file: TLS does not apply");
            }
            return (url, DatabaseTls::default());
        }
        let raw = raw.unwrap_or(&RawDatabaseTls::DEFAULT);
        let ca_pem = raw.ca_file.as_deref().and_then(|file| {
            self.certificates(tls_path, "ca_file", file)?;
            self.file(tls_path, "ca_file", file)
        });
        let identity = match (raw.cert_file.as_deref(), raw.key_file.as_deref()) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                let certs = self.certificates(tls_path, "cert_file", cert);
                let parsed = self.private_key(tls_path, "key_file", key);
                let cert_pem = self.file(tls_path, "cert_file", cert);
                let key_pem = self.secret(tls_path, "key", None, Some(&key.to_owned()));
                match (certs, parsed, cert_pem, key_pem) {
                    (Some(_), Some(_), Some(cert_pem), Some(key_pem)) => {
                        Some(ClientIdentity { cert_pem, key_pem })
                    }
                    _ => None,
                }
            }
            (Some(_), None) => {
                self.error(tls_path, "`cert_file` needs `key_file`");
                None
            }
            (None, Some(_)) => {
                self.error(tls_path, "`key_file` needs `cert_file`");
                None
            }
        };
        let mode = mode.unwrap_or_default();
        if mode == SslMode::Disable && (ca_pem.is_some() || identity.is_some()) {
            self.error(
                tls_path,
                format!(
                    "TLS files are set but the URL turns TLS off ({}); remove one or the other",
                    mode_param(kind)
                ),
            );
        }
        (
            url,
            DatabaseTls {
                mode,
                ca_pem,
                identity,
            },
        )
    }
}

fn mode_param(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Mysql => "ssl-mode=disabled",
        DatabaseKind::Postgres | DatabaseKind::Sqlite => "sslmode=disable",
    }
}

/// Takes the TLS mode parameter out of `url`'s query string.
fn split_mode(url: &str, kind: DatabaseKind) -> Result<(String, Option<SslMode>), String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut kept = Vec::new();
    let mut mode = None;
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let parsed = match (kind, key) {
            (DatabaseKind::Mysql, "ssl-mode" | "ssl_mode") => Some(mysql_mode(value)?),
            (DatabaseKind::Postgres, "sslmode") => Some(postgres_mode(value)?),
            (DatabaseKind::Mysql, key) if MYSQL_DRIVER_KEYS.contains(&key) => {
                return Err(format!(
                    "`{key}` is not used; say `ssl-mode=disabled|preferred|required|verify-ca|verify-full` in the URL and give files under `tls:`"
                ));
            }
            (DatabaseKind::Postgres, key) if POSTGRES_DRIVER_KEYS.contains(&key) => {
                return Err(format!(
                    "`{key}` is not used; give the files as `tls.ca_file`, `tls.cert_file` and `tls.key_file`"
                ));
            }
            _ => None,
        };
        match parsed {
            Some(_) if mode.is_some() => {
                return Err(format!("`{key}` is given twice"));
            }
            Some(parsed) => mode = Some(parsed),
            None => kept.push(param),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

/// MySQL's `--ssl-mode` names, any case, `_` or `-`; libpq's `verify-full` too.
fn mysql_mode(value: &str) -> Result<SslMode, String> {
    match value.to_ascii_lowercase().replace('_', "-").as_str() {
        "disabled" => Ok(SslMode::Disable),
        "preferred" => Ok(SslMode::Prefer),
        "required" => Ok(SslMode::Require),
        "verify-ca" => Ok(SslMode::VerifyCa),
        "verify-identity" | "verify-full" => Ok(SslMode::VerifyFull),
        _ => Err(format!(
            "unknown ssl-mode `{value}`: expected disabled, preferred, required, verify-ca or verify-full (MySQL's verify_identity)"
        )),
    }
}

/// libpq's `sslmode` names.
fn postgres_mode(value: &str) -> Result<SslMode, String> {
    match value {
        "disable" => Ok(SslMode::Disable),
        "prefer" => Ok(SslMode::Prefer),
        "require" => Ok(SslMode::Require),
        "verify-ca" => Ok(SslMode::VerifyCa),
        "verify-full" => Ok(SslMode::VerifyFull),
        "allow" => Err(
            "sslmode `allow` (plaintext first) is not supported: use prefer, require, verify-ca or verify-full".to_owned(),
        ),
        _ => Err(format!(
            "unknown sslmode `{value}`: expected disable, prefer, require, verify-ca or verify-full"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_leaves_the_url_and_other_parameters_stay() {
        let mysql = DatabaseKind::Mysql;
        assert_eq!(
            split_mode("mysql://u@h/db?ssl-mode=VERIFY_IDENTITY&x=1", mysql),
            Ok(("mysql://u@h/db?x=1".to_owned(), Some(SslMode::VerifyFull)))
        );
        assert_eq!(
            split_mode("mysql://u@h/db?ssl_mode=verify-ca", mysql),
            Ok(("mysql://u@h/db".to_owned(), Some(SslMode::VerifyCa)))
        );
        assert_eq!(
            split_mode("mysql://u@h/db?prefer_socket=false", mysql),
            Ok(("mysql://u@h/db?prefer_socket=false".to_owned(), None))
        );
        let pg = DatabaseKind::Postgres;
        assert_eq!(
            split_mode("postgres://u@a,b/db?application_name=x&sslmode=require", pg),
            Ok((
                "postgres://u@a,b/db?application_name=x".to_owned(),
                Some(SslMode::Require)
            ))
        );
        assert_eq!(
            split_mode("postgres://u@h/db", pg),
            Ok(("postgres://u@h/db".to_owned(), None))
        );
    }

    #[test]
    fn unknown_modes_and_driver_switches_are_named() {
        let error = |url, kind| split_mode(url, kind).expect_err(url);
        assert!(error("mysql://h/d?ssl-mode=require", DatabaseKind::Mysql).contains("`require`"));
        assert!(
            error("postgres://h/d?sslmode=VERIFY-FULL", DatabaseKind::Postgres)
                .contains("unknown sslmode")
        );
        assert!(
            error("postgres://h/d?sslmode=allow", DatabaseKind::Postgres).contains("not supported")
        );
        assert!(
            error("mysql://h/d?require_ssl=true", DatabaseKind::Mysql).contains("`require_ssl`")
        );
        assert!(
            error("postgres://h/d?sslrootcert=/ca.pem", DatabaseKind::Postgres)
                .contains("tls.ca_file")
        );
        assert!(
            error(
                "postgres://h/d?sslmode=require&sslmode=disable",
                DatabaseKind::Postgres
            )
            .contains("twice")
        );
    }

    #[test]
    fn require_verifies_only_with_a_ca() {
        assert!(!SslMode::Require.verifies(false));
        assert!(SslMode::Require.verifies(true));
        assert!(SslMode::VerifyCa.verifies(false));
        assert!(!SslMode::Prefer.verifies(true));
    }
}
