//! Shared helpers for the black-box tests: process guards for lookout and its peers, a tiny
//! HTTP client, a recording proxy and an exposition-format parser.
//!
//! Every integration test crate compiles this module on its own and uses a different
//! subset of it, hence the module-wide `dead_code` allowance.
#![allow(dead_code)]

pub(crate) mod certs;
pub(crate) mod db;
pub(crate) mod exposition;
pub(crate) mod http;
pub(crate) mod lookout;
pub(crate) mod markdown;
pub(crate) mod mocks;
pub(crate) mod payloads;
pub(crate) mod peers;
pub(crate) mod process;
pub(crate) mod proxy;
pub(crate) mod python;
pub(crate) mod servers;
pub(crate) mod smtp;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Shortcuts for the tests; each test crate uses some of them.
#[allow(unused_imports)]
pub(crate) use self::{
    exposition::{Exposition, Labels},
    http::{Response, http_get, http_request},
    lookout::Lookout,
    peers::{Alertmanager, NodeExporter, Prometheus},
    proxy::{Exchange, RecordingProxy},
};

/// A loopback address with a port that was free a moment ago.
///
/// The port is released before it is returned, so another process may take it; the
/// process guards retry with a new port when their child fails to start.
pub(crate) fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 always works");
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

/// Whether this run is CI, where a missing tool must fail the test instead of skipping it.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !value.is_empty() && value != "false")
}

/// Finds an external program in `PATH`, `/usr/bin` or `/usr/sbin`.
///
/// When it is missing: panics in CI (a test must never pass silently there), otherwise
/// prints a skip note and returns `None` so the caller can return early.
pub(crate) fn require_binary(name: &str) -> Option<PathBuf> {
    if let Some(found) = find_binary(name) {
        return Some(found);
    }
    let hint = format!(
        "`{name}` not found in PATH, /usr/bin or /usr/sbin (Debian: apt-get install -y {})",
        debian_package(name)
    );
    if in_ci() {
        panic!("{hint}; CI must have it");
    }
    eprintln!("SKIPPED: {hint}");
    None
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .chain(postgres_bin_dirs())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Debian keeps the PostgreSQL server tools (`initdb`, `pg_ctl`) off PATH, under
/// /usr/lib/postgresql/<version>/bin; newest first.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    dirs.sort_by_key(|dir| std::cmp::Reverse(dir.0));
    dirs.into_iter().map(|(_, dir)| dir).collect()
}

fn debian_package(binary: &str) -> &str {
    match binary {
        "promtool" => "prometheus",
        "initdb" | "pg_ctl" => "postgresql",
        "chromedriver" => "chromium-driver",
        "mariadbd" | "mariadb-install-db" => "mariadb-server",
        other => other,
    }
}

/// Calls `probe` every 50 ms until it returns `Some`, or panics after `timeout` with
/// `what` and the last failure `probe` described via `Err`.
pub(crate) fn poll_until<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
