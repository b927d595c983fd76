//! A database outage, end to end: lookout scrapes its own `mariadbd` (temp datadir, free
//! port), the server is killed with SIGKILL, and then restarted. `/metrics` must keep
//! answering fast, `lookout_database_up` must drop to 0, the query's series must vanish
//! after `stale_after`, reconnect attempts must stay bounded by the backoff, and values
//! must return after the restart without restarting lookout.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::exposition::{Exposition, labels};
use support::{Lookout, http_get, poll_until, require_binary};

struct MariaDbServer {
    child: Option<Child>,
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl MariaDbServer {
    fn install() -> Option<MariaDbServer> {
        let binary = require_binary("mariadbd")?;
        let install = require_binary("mariadb-install-db")?;
        require_binary("mysql")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new(install)
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run mariadb-install-db");
        assert!(status.success(), "mariadb-install-db failed");
        let port = support::free_addr().port();
        let mut server = MariaDbServer {
            child: None,
            binary,
            dir,
            port,
        };
        server.start();
        server.sql("CREATE DATABASE outage; CREATE TABLE outage.t (v INT); INSERT INTO outage.t VALUES (7);");
        Some(server)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.path("mariadbd.log")).expect("log file");
        let child = Command::new(&self.binary)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.path("data").display()))
            .arg(format!("--socket={}", self.path("sock").display()))
            .arg(format!("--pid-file={}", self.path("pid").display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-grant-tables",
                "--skip-log-bin",
            ])
            .args(["--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn mariadbd");
        self.child = Some(child);
        let socket = self.path("sock");
        poll_until(
            Duration::from_secs(30),
            "mariadbd to accept connections",
            || {
                if ping(&socket) {
                    Ok(())
                } else {
                    Err(self.log())
                }
            },
        );
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn sql(&self, sql: &str) {
        let status = Command::new("mysql")
            .arg(format!("--socket={}", self.path("sock").display()))
            .args(["-uroot", "-e", sql])
            .status()
            .expect("run mysql");
        assert!(status.success(), "{sql}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("mariadbd.log")).unwrap_or_default()
    }
}

fn ping(socket: &Path) -> bool {
    Command::new("mysql")
        .arg(format!("--socket={}", socket.display()))
        .args(["-uroot", "-e", "SELECT 1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Scrapes once; returns the parsed exposition and how long the scrape took.
fn scrape(lookout: &Lookout) -> (Exposition, Duration) {
    let started = Instant::now();
    let response = http_get(&lookout.url("/metrics"), &[]).expect("scrape");
    let took = started.elapsed();
    assert_eq!(response.status, 200);
    (
        Exposition::parse(&response.text()).expect("valid exposition"),
        took,
    )
}

#[test]
fn outage_then_recovery_without_restart() {
    let Some(mut db) = MariaDbServer::install() else {
        return;
    };
    // Two queries at 500 ms: without backoff they would try to connect ~4 times a second.
    let config = format!(
        "host: {{ enabled: false }}
databases:
  outage: {{ url: 'mysql://root@127.0.0.1:{port}/outage', connect_timeout: 1s }}
queries:
  - {{ name: a, database: outage, interval: 500ms, timeout: 500ms, stale_after: 3s, sql: 'SELECT v FROM t', metrics: [{{ name: outage_a, value: v }}] }}
  - {{ name: b, database: outage, interval: 500ms, timeout: 500ms, stale_after: 3s, sql: 'SELECT v FROM t', metrics: [{{ name: outage_b, value: v }}] }}
",
        port = db.port
    );
    let lookout = Lookout::start(&config);
    let outage = labels(&[("database", "outage")]);
    poll_until(Duration::from_secs(20), "values from the database", || {
        let (m, _) = scrape(&lookout);
        match (
            m.scalar("outage_a"),
            m.value("lookout_database_up", &outage),
        ) {
            (Some(7.0), Some(1.0)) => Ok(()),
            other => Err(format!("{other:?}\n{}", lookout.logs())),
        }
    });

    db.kill9();
    let killed = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut down_seen = None;
    let mut vanished = None;
    while killed.elapsed() < Duration::from_secs(10) {
        let (m, took) = scrape(&lookout);
        slowest = slowest.max(took);
        if down_seen.is_none() && m.value("lookout_database_up", &outage) == Some(0.0) {
            down_seen = Some(killed.elapsed());
        }
        if vanished.is_none() && m.scalar("outage_a").is_none() && m.scalar("outage_b").is_none() {
            vanished = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Margins are wide (a loaded two-core CI box, a debug build); the speeds are
    // measured in bench/, these are the behaviours.
    assert!(
        slowest < Duration::from_secs(2),
        "a scrape took {slowest:?} during the outage: it must not wait on the database"
    );
    let down_seen = down_seen
        .unwrap_or_else(|| panic!("lookout_database_up never dropped\n{}", lookout.logs()));
    let vanished =
        vanished.unwrap_or_else(|| panic!("stale series never vanished\n{}", lookout.logs()));
    // Not before stale_after (3 s after the last success, less the 1 s exposition cache):
    // a database outage must not blank the numbers early. That they vanish at all within
    // the 10 s watched is the other half.
    assert!(
        vanished >= Duration::from_secs(2),
        "series vanished after {vanished:?}, before stale_after"
    );
    let (m, _) = scrape(&lookout);
    let attempts = m
        .value("lookout_database_connection_errors_total", &outage)
        .unwrap_or(0.0);
    // Backoff 1 s, 2 s, 4 s, 8 s (jittered down to half): at most ~7 attempts in 10 s,
    // where two queries every 500 ms without backoff would make ~40.
    assert!(
        (1.0..=10.0).contains(&attempts),
        "{attempts} connection attempts during a 10 s outage"
    );

    db.start();
    let restarted = Instant::now();
    poll_until(
        Duration::from_secs(30),
        "values to return after the restart",
        || {
            let (m, _) = scrape(&lookout);
            match (
                m.scalar("outage_a"),
                m.scalar("outage_b"),
                m.value("lookout_database_up", &outage),
            ) {
                (Some(7.0), Some(7.0), Some(1.0)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    eprintln!(
        "outage: down seen after {down_seen:?}, series vanished after {vanished:?}, {attempts} attempts, recovered {:?} after restart, slowest scrape {slowest:?}",
        restarted.elapsed()
    );
}
