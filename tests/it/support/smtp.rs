//! A real SMTP server for the email tests: aiosmtpd (`tests/smtp/server.py`) over TLS
//! with AUTH required, its certificate issued by a throwaway CA (`support::certs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The account the server accepts.
pub(crate) const USER: &str = "alerts@lookout.test";
pub(crate) const PASSWORD: &str = "smtp-pa55-word";

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// TLS from the first byte (`smtps://`).
    Smtps,
    /// STARTTLS required before AUTH (`smtp://`).
    StartTls,
}

/// A running server; killed on drop.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    certs: super::certs::Certs,
}

impl SmtpServer {
    /// Starts a server, or `None` outside CI when Python, aiosmtpd or openssl is missing.
    pub(crate) fn start(mode: Mode) -> Option<SmtpServer> {
        let python = super::python::python()?;
        let certs = super::certs::Certs::make()?;
        let out = certs.path("mail");
        std::fs::create_dir(&out).expect("mail dir");
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py"))
            .arg("--mode")
            .arg(match mode {
                Mode::Smtps => "smtps",
                Mode::StartTls => "starttls",
            })
            .arg("--cert")
            .arg(certs.path("server.pem"))
            .arg("--key")
            .arg(certs.path("server.key"))
            .args(["--user", USER, "--password", PASSWORD])
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the SMTP server's port");
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"));
        Some(SmtpServer { child, port, certs })
    }

    /// The throwaway CA that issued the server's certificate (for `tls.ca_file`).
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.certs.path("ca.pem")
    }

    /// A CA that did not issue it.
    pub(crate) fn other_ca_file(&self) -> PathBuf {
        self.certs.path("other-ca.pem")
    }

    /// `smtps://localhost:<port>` or `smtp://localhost:<port>`.
    pub(crate) fn url(&self, mode: Mode) -> String {
        match mode {
            Mode::Smtps => format!("smtps://localhost:{}", self.port),
            Mode::StartTls => format!("smtp://localhost:{}", self.port),
        }
    }

    /// The mails accepted so far, oldest first, as the server decoded them.
    pub(crate) fn mails(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.certs.path("mail"))
            .expect("mail dir")
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                serde_json::from_str(&std::fs::read_to_string(path).expect("read mail"))
                    .expect("mail JSON")
            })
            .collect()
    }

    /// Waits until at least `count` mails were accepted.
    pub(crate) fn wait_for_mails(&self, count: usize, timeout: Duration) -> Vec<Value> {
        super::poll_until(timeout, &format!("{count} mail(s)"), || {
            let mails = self.mails();
            if mails.len() >= count {
                Ok(mails)
            } else {
                Err(format!("{} so far", mails.len()))
            }
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
