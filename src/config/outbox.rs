//! `relay.outbox`: where the outbox lives. Unset, it is SQLite in `state_dir` (one
//! process); a `postgres://` or `mysql://` URL makes it a database that replicas share,
//! with `outbox_password` (or `_file`), `outbox_tls` (as a database's `tls`) and `lease`.

use std::time::Duration;

use super::raw::RawRelay;
use super::{Database, DatabaseKind, OutboxLocation, SharedOutbox, SslMode};
use crate::configfile::{Checker, bounds, secret};

/// Connections each replica keeps to a shared outbox: webhooks, workers and the lease
/// renewal share them.
const MAX_CONNECTIONS: u32 = 8;

impl Checker<'_> {
    pub(super) fn outbox(&mut self, raw: &RawRelay) -> OutboxLocation {
        let lease = self.duration_in(
            "relay.lease",
            raw.lease.as_deref(),
            Duration::from_secs(30),
            bounds::LEASE,
        );
        let Some(url) = raw.outbox.as_deref() else {
            let stray = [
                ("outbox_password", raw.outbox_password.is_some()),
                ("outbox_password_file", raw.outbox_password_file.is_some()),
                ("outbox_tls", raw.outbox_tls.is_some()),
                ("lease", raw.lease.is_some()),
            ];
            for (key, set) in stray {
                if set {
                    self.error(
                        &format!("relay.{key}"),
                        "applies only to a shared outbox: set `relay.outbox` to a postgres:// or mysql:// URL",
                    );
                }
            }
            return OutboxLocation::StateDir;
        };
        let kind = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("mysql" | "mariadb") => DatabaseKind::Mysql,
            Some("postgres" | "postgresql") => DatabaseKind::Postgres,
            _ => {
                self.error(
                    "relay.outbox",
                    "unsupported outbox URL (expected postgres:// or mysql://; leave it unset for SQLite in state_dir)",
                );
                return OutboxLocation::StateDir;
            }
        };
        if secret::redact_url(url) != url {
            self.error(
                "relay.outbox",
                "the URL carries a password; move it to `outbox_password` or `outbox_password_file`",
            );
        }
        let password = self.secret(
            "relay",
            "outbox_password",
            raw.outbox_password.as_ref(),
            raw.outbox_password_file.as_ref(),
        );
        let (url, tls) = self.database_tls_at(
            "relay.outbox",
            "relay.outbox_tls",
            kind,
            url,
            raw.outbox_tls.as_ref(),
        );
        let verifies = tls.mode.verifies(tls.ca_pem.is_some());
        if kind == DatabaseKind::Mysql && verifies && tls.mode != SslMode::VerifyFull {
            // The MySQL driver cannot check the chain without the name; the exporter works
            // around it by learning the name first, which the outbox does not need.
            self.error(
                "relay.outbox",
                "a MySQL outbox checks certificates only with ssl-mode=verify-full",
            );
        }
        OutboxLocation::Shared(Box::new(SharedOutbox {
            database: Database {
                kind,
                url,
                password,
                tls,
                max_connections: MAX_CONNECTIONS,
                connect_timeout: Duration::from_secs(5),
                collect: Vec::new(),
                collect_interval: Duration::from_secs(15),
            },
            lease,
        }))
    }
}
