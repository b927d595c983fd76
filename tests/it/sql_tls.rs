//! TLS to the databases, against servers that accept nothing else: a private `mariadbd`
//! with `require_secure_transport=ON` and a private PostgreSQL cluster whose pg_hba.conf
//! has only `hostssl` lines. Their certificates name `localhost` only, so connecting to
//! 127.0.0.1 tells `verify-ca` (any name) from `verify-full` (this name). Each case is one
//! configured database whose query reports whether its own session is encrypted; one
//! lookout runs them all.

use std::time::Duration;

use crate::support::certs::Certs;
use crate::support::exposition::labels;
use crate::support::servers::{PrivateMariaDb, PrivatePostgres};
use crate::support::{Lookout, poll_until};

/// One database definition and what must come of it.
struct Case {
    name: &'static str,
    host: &'static str,
    /// The URL's TLS mode parameter, if any.
    mode: Option<&'static str>,
    ca: Option<&'static str>,
    /// Connect as `certuser` (who must present a certificate) with this one, or without.
    certuser: Option<Option<&'static str>>,
    /// `None`: up and encrypted. `Some(text)`: down, and the log says `text`.
    fails_with: Option<&'static str>,
}

const fn case(name: &'static str, host: &'static str, mode: Option<&'static str>) -> Case {
    Case {
        name,
        host,
        mode,
        ca: None,
        certuser: None,
        fails_with: None,
    }
}

impl Case {
    const fn ca(mut self, file: &'static str) -> Case {
        self.ca = Some(file);
        self
    }
    const fn certuser(mut self, cert: Option<&'static str>) -> Case {
        self.certuser = Some(cert);
        self
    }
    const fn fails(mut self, reason: &'static str) -> Case {
        self.fails_with = Some(reason);
        self
    }
}

/// The cases, with each engine's spelling of the modes: (verify-full, verify-ca,
/// required, disabled).
/// `refused`: how the server words refusing plaintext and a missing client certificate.
fn cases(modes: [&'static str; 4], refused: [&'static str; 2]) -> Vec<Case> {
    let [refused_plaintext, refused_no_cert] = refused;
    let [full, ca, required, disabled] = modes;
    vec![
        case("full", "localhost", Some(full)).ca("ca.pem"),
        case("ca_any_name", "127.0.0.1", Some(ca)).ca("ca.pem"),
        case("full_wrong_name", "127.0.0.1", Some(full))
            .ca("ca.pem")
            .fails("not valid for name"),
        case("full_wrong_ca", "localhost", Some(full))
            .ca("other-ca.pem")
            .fails("UnknownIssuer"),
        case("ca_wrong_ca", "127.0.0.1", Some(ca))
            .ca("other-ca.pem")
            .fails("UnknownIssuer"),
        // libpq's rule, for both engines: `require` with a CA file checks the chain.
        case("required_wrong_ca", "127.0.0.1", Some(required))
            .ca("other-ca.pem")
            .fails("UnknownIssuer"),
        case("required_no_ca", "127.0.0.1", Some(required)),
        case("default_prefers_tls", "127.0.0.1", None),
        case("disabled", "127.0.0.1", Some(disabled)).fails(refused_plaintext),
        case("client_cert", "localhost", Some(full))
            .ca("ca.pem")
            .certuser(Some("certuser")),
        case("client_cert_missing", "localhost", Some(full))
            .ca("ca.pem")
            .certuser(None)
            .fails(refused_no_cert),
    ]
}

/// The YAML for every case: a database `<engine>_<case>` and a query reporting
/// `tls_session{case}` from `session_sql`.
fn config(
    certs: &Certs,
    engine: &str,
    url: impl Fn(&Case) -> String,
    session_sql: &str,
    cases: &[Case],
) -> String {
    let mut databases = String::new();
    let mut queries = String::new();
    for case in cases {
        let db = format!("{engine}_{}", case.name);
        let mut tls = Vec::new();
        if let Some(ca) = case.ca {
            tls.push(format!("ca_file: '{}'", certs.path(ca).display()));
        }
        if let Some(Some(cert)) = case.certuser {
            tls.push(format!(
                "cert_file: '{}'",
                certs.path(&format!("{cert}.pem")).display()
            ));
            tls.push(format!(
                "key_file: '{}'",
                certs.path(&format!("{cert}.key")).display()
            ));
        }
        let tls = if tls.is_empty() {
            String::new()
        } else {
            format!(", tls: {{ {} }}", tls.join(", "))
        };
        databases.push_str(&format!(
            "  {db}: {{ url: '{}', connect_timeout: 2s{tls} }}\n",
            url(case)
        ));
        queries.push_str(&format!(
            "  - {{ name: {db}, database: {db}, interval: 2s, timeout: 2s, const_labels: {{ case: {db} }}, sql: \"{session_sql}\", metrics: [{{ name: tls_session, value: tls }}] }}\n"
        ));
    }
    format!("host: {{ enabled: false }}\ndatabases:\n{databases}queries:\n{queries}")
}

/// Waits until every case that must work is up and encrypted and every case that must
/// fail has logged why, then checks the failing ones are down with no values.
fn check(lookout: &Lookout, engine: &str, cases: &[Case]) {
    let result = poll_until(Duration::from_secs(60), "every case to settle", || {
        let metrics = lookout.metrics();
        let logs = lookout.logs();
        let mut pending = Vec::new();
        for case in cases {
            let db = format!("{engine}_{}", case.name);
            let up = metrics.value("lookout_database_up", &labels(&[("database", &db)]));
            let tls = metrics.value("tls_session", &labels(&[("case", &db)]));
            match case.fails_with {
                None if (up, tls) != (Some(1.0), Some(1.0)) => {
                    pending.push(format!("{db}: up {up:?}, tls_session {tls:?}"));
                }
                Some(reason) => {
                    let said = logs
                        .lines()
                        .any(|l| l.contains(&format!("database={db}")) && l.contains(reason));
                    if !said {
                        pending.push(format!("{db}: no log line with `{reason}`"));
                    }
                }
                None => {}
            }
        }
        if pending.is_empty() {
            Ok(metrics)
        } else {
            Err(format!("{}\n--- logs:\n{logs}", pending.join("\n")))
        }
    });
    for case in cases.iter().filter(|c| c.fails_with.is_some()) {
        let db = format!("{engine}_{}", case.name);
        assert_eq!(
            result.value("lookout_database_up", &labels(&[("database", &db)])),
            Some(0.0),
            "{db} must be down"
        );
        assert_eq!(
            result.value("tls_session", &labels(&[("case", &db)])),
            None,
            "{db} must have no values"
        );
    }
}

fn server_certs() -> Option<Certs> {
    let certs = Certs::make()?;
    certs.issue_server_for("db", "DNS:localhost");
    certs.issue_client("certuser");
    Some(certs)
}

#[test]
fn mariadb_requiring_tls() {
    let Some(certs) = server_certs() else {
        return;
    };
    let Some(db) = PrivateMariaDb::install(&[
        format!("--ssl-ca={}", certs.path("ca.pem").display()),
        format!("--ssl-cert={}", certs.path("db.pem").display()),
        format!("--ssl-key={}", certs.path("db.key").display()),
        "--require-secure-transport=ON".to_owned(),
    ]) else {
        return;
    };
    for host in ["127.0.0.1", "localhost"] {
        db.sql(&format!(
            "CREATE USER lookout@'{host}'; CREATE USER certuser@'{host}' REQUIRE SUBJECT '/CN=certuser';"
        ));
    }
    let cases = cases(
        ["verify-full", "VERIFY_CA", "required", "disabled"],
        ["Access denied for user", "Access denied for user"],
    );
    let url = |case: &Case| {
        let user = if case.certuser.is_some() {
            "certuser"
        } else {
            "lookout"
        };
        // The driver would move a loopback connection onto the server's Unix socket
        // after the handshake; stay on TCP so the session shows its TLS.
        let mut url = format!(
            "mysql://{user}@{}:{}/?prefer_socket=false",
            case.host, db.port
        );
        if let Some(mode) = case.mode {
            url.push_str(&format!("&ssl-mode={mode}"));
        }
        url
    };
    let sql = "SELECT COUNT(*) AS tls FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_VERSION' AND VARIABLE_VALUE <> ''";
    let lookout = Lookout::start(&config(&certs, "mysql", url, sql, &cases));
    check(&lookout, "mysql", &cases);
    drop(lookout);
    drop(db);
}

#[test]
fn postgres_requiring_tls() {
    let Some(certs) = server_certs() else {
        return;
    };
    let Some(db) = PrivatePostgres::install(
        "ssl = on\nssl_cert_file = 'db.pem'\nssl_key_file = 'db.key'\nssl_ca_file = 'ca.pem'",
        "hostssl all certuser 127.0.0.1/32 cert\nhostssl all certuser ::1/128 cert\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust",
        &[
            &certs.path("db.pem"),
            &certs.path("db.key"),
            &certs.path("ca.pem"),
        ],
    ) else {
        return;
    };
    db.sql("CREATE ROLE lookout LOGIN; CREATE ROLE certuser LOGIN;");
    let cases = cases(
        ["verify-full", "verify-ca", "require", "disable"],
        ["no encryption", "requires a valid client certificate"],
    );
    let url = |case: &Case| {
        let user = if case.certuser.is_some() {
            "certuser"
        } else {
            "lookout"
        };
        let mut url = format!("postgres://{user}@{}:{}/postgres", case.host, db.port);
        if let Some(mode) = case.mode {
            url.push_str(&format!("?sslmode={mode}"));
        }
        url
    };
    let sql = "SELECT ssl::int AS tls FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let lookout = Lookout::start(&config(&certs, "postgres", url, sql, &cases));
    check(&lookout, "postgres", &cases);
}
