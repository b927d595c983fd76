//! Private database servers for the tests that must own theirs (kill it, make it require
//! TLS): a `mariadbd` and a PostgreSQL cluster in temp directories on free ports, as
//! children of the test. PostgreSQL refuses to run as root, so under root the cluster
//! belongs to the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_addr, poll_until, require_binary};

/// A `mariadbd` of the test's own: `root` over its socket, TCP on 127.0.0.1.
pub(crate) struct PrivateMariaDb {
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    args: Vec<String>,
}

impl PrivateMariaDb {
    /// Creates the data directory and starts the server with `args` added (e.g.
    /// `--skip-grant-tables`, `--ssl-cert=…`); `None` outside CI when MariaDB is missing.
    pub(crate) fn install(args: &[String]) -> Option<PrivateMariaDb> {
        let binary = require_binary("mariadbd")?;
        let install = require_binary("mariadb-install-db")?;
        require_binary("mysql")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let output = Command::new(install)
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .output()
            .expect("run mariadb-install-db");
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut server = PrivateMariaDb {
            child: None,
            binary,
            dir,
            port: free_addr().port(),
            args: args.to_vec(),
        };
        server.start();
        Some(server)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn start(&mut self) {
        let log = std::fs::File::create(self.path("mariadbd.log")).expect("log file");
        let child = Command::new(&self.binary)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.path("data").display()))
            .arg(format!("--socket={}", self.path("sock").display()))
            .arg(format!("--pid-file={}", self.path("pid").display()))
            .arg(format!("--port={}", self.port))
            .args(["--bind-address=127.0.0.1", "--user=root", "--skip-log-bin"])
            .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        poll_until(
            Duration::from_secs(30),
            "mariadbd to accept connections",
            || {
                if self.try_sql("SELECT 1") {
                    Ok(())
                } else {
                    Err(self.log())
                }
            },
        );
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `sql` as root over the socket; panics if it fails.
    pub(crate) fn sql(&self, sql: &str) {
        assert!(self.try_sql(sql), "{sql}\n{}", self.log());
    }

    fn try_sql(&self, sql: &str) -> bool {
        Command::new("mysql")
            .arg(format!("--socket={}", self.path("sock").display()))
            .args(["-uroot", "-e", sql])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path("mariadbd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A PostgreSQL cluster of the test's own, listening on 127.0.0.1 and on a socket in its
/// directory; the superuser is `postgres`.
pub(crate) struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub(crate) port: u16,
    /// Run the server tools as `postgres` (the test runs as root).
    as_postgres: bool,
}

impl PrivatePostgres {
    /// `initdb`, then `files` copied into the data directory (certificates and keys,
    /// owned by the server's user, 0600), `conf` appended to postgresql.conf, `hba` as
    /// pg_hba.conf (after a `local` trust line for the test's own psql), and a start.
    pub(crate) fn install(conf: &str, hba: &str, files: &[&Path]) -> Option<PrivatePostgres> {
        let initdb = require_binary("initdb")?;
        // The server's own bin directory (PATH may hold only links to some tools).
        let initdb = initdb.canonicalize().unwrap_or(initdb);
        let bin = initdb.parent().expect("bin dir").to_path_buf();
        require_binary("psql")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = rustix::process::geteuid().is_root();
        let cluster = PrivatePostgres {
            bin,
            dir,
            port: free_addr().port(),
            as_postgres,
        };
        let data = cluster.data();
        cluster.own(cluster.dir.path());
        cluster.run(
            "initdb",
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                &data.display().to_string(),
            ],
        );
        for file in files {
            let copied = data.join(file.file_name().expect("file name"));
            std::fs::copy(file, &copied).expect("copy into the cluster");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&copied, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\nshared_buffers = 16MB\n{conf}\n",
            cluster.port,
            cluster.dir.path().display()
        );
        append(&data.join("postgresql.conf"), &settings);
        std::fs::write(
            data.join("pg_hba.conf"),
            format!("local all all trust\n{hba}\n"),
        )
        .expect("write pg_hba.conf");
        cluster.own(cluster.dir.path());
        cluster.start();
        Some(cluster)
    }

    /// A streaming replica of `primary` (whose pg_hba.conf must allow `local replication`)
    /// through the physical replication slot `slot`, made here: `pg_basebackup -R` into a
    /// directory of its own, then a start on a port of its own.
    pub(crate) fn replica_of(primary: &PrivatePostgres, slot: &str) -> PrivatePostgres {
        primary.sql(&format!(
            "SELECT pg_create_physical_replication_slot('{slot}')"
        ));
        let replica = PrivatePostgres {
            bin: primary.bin.clone(),
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_addr().port(),
            as_postgres: primary.as_postgres,
        };
        replica.own(replica.dir.path());
        let data = replica.data().display().to_string();
        let socket = primary.dir.path().display().to_string();
        let port = primary.port.to_string();
        replica.run(
            "pg_basebackup",
            &[
                "-h", &socket, "-p", &port, "-U", "postgres", "-D", &data, "-R", "-S", slot, "-X",
                "stream",
            ],
        );
        append(
            &replica.data().join("postgresql.conf"),
            &format!(
                "port = {}\nunix_socket_directories = '{}'\n",
                replica.port,
                replica.dir.path().display()
            ),
        );
        replica.own(replica.dir.path());
        replica.start();
        replica
    }

    /// Starts the server and waits until it accepts connections.
    pub(crate) fn start(&self) {
        let log = self.dir.path().join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stops the server at once (`-m immediate`: no shutdown checkpoint, as if it
    /// crashed).
    pub(crate) fn stop_immediately(&self) {
        let data = self.data().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `sql` as `postgres` over the socket; panics if it fails.
    pub(crate) fn sql(&self, sql: &str) {
        let output = Command::new("psql")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .arg("-h")
            .arg(self.dir.path())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn own(&self, path: &Path) {
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postgres {}", path.display());
        }
    }

    /// A server tool, run as `postgres` when the test runs as root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"));
        assert!(
            output.status.success(),
            "{tool} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(text.as_bytes()).expect("append");
}
