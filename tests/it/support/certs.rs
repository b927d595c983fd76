//! Throwaway certificates made with `openssl` for the TLS tests: a CA, a server
//! certificate for `localhost` and 127.0.0.1 issued by it, a client certificate issued by
//! it, and an unrelated CA.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of PEM files: `ca.pem`, `other-ca.pem`, `server.pem`/`server.key`,
/// `client.pem`/`client.key`, and more server certificates on request.
pub(crate) struct Certs {
    openssl: PathBuf,
    dir: tempfile::TempDir,
}

impl Certs {
    /// Makes the set, or `None` outside CI when `openssl` is missing.
    pub(crate) fn make() -> Option<Certs> {
        let openssl = super::require_binary("openssl")?;
        let certs = Certs {
            openssl,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        for ca in ["ca", "other-ca"] {
            certs.run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=lookout test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
            ]);
        }
        certs.issue(
            "server",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        certs.issue("client", "extendedKeyUsage=clientAuth\n");
        Some(certs)
    }

    /// `<name>.pem` and `<name>.key`: a new certificate (new serial) from the CA, for a
    /// server at `localhost` and 127.0.0.1.
    pub(crate) fn issue_server(&self, name: &str) {
        self.issue(
            name,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
    }

    /// `<name>.pem` and `<name>.key`: a server certificate from the CA for `san` (an
    /// openssl subjectAltName value such as `DNS:localhost`).
    pub(crate) fn issue_server_for(&self, name: &str, san: &str) {
        self.issue(
            name,
            &format!("subjectAltName={san}\nextendedKeyUsage=serverAuth\n"),
        );
    }

    /// `<name>.pem` and `<name>.key`: a client certificate from the CA whose subject is
    /// `CN=<name>` (PostgreSQL's `cert` authentication maps it to the user `<name>`).
    pub(crate) fn issue_client(&self, name: &str) {
        self.issue(name, "extendedKeyUsage=clientAuth\n");
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn issue(&self, name: &str, extensions: &str) {
        self.run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(self.path(&format!("{name}.ext")), extensions).expect("write extensions");
        self.run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn run(&self, args: &[&str]) {
        let output = Command::new(&self.openssl)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
