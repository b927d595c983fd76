//! `lookout demo`: a seeded SQLite shop database under the state directory, the built-in
//! configuration that queries it, and a simulator that keeps its numbers moving.
//!
//! The database lives at `<state_dir>/demo/shop.db` (WAL mode). [`prepare`] builds it
//! under a temporary name and renames it into place, so a crash mid-seed never leaves a
//! half-filled file; an existing file is reused unless its `PRAGMA user_version` is older
//! than the schema. The simulator ([`spawn_simulator`]) is the only writer; the exporter
//! reads through its own read-only connections.
//!
//! The same shop, for MySQL/MariaDB and PostgreSQL, is in `examples/shop/`.

pub mod alerts;
mod schema;
mod seed;
mod simulator;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub use simulator::{SimulatorSettings, spawn_simulator, spawn_simulator_with};

/// Why the demo database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the demo database {} (delete it to start afresh): {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot seed the demo database {}: {source}", path.display())]
    Seed {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot move the demo database into place at {}: {source}", path.display())]
    Replace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The file name of the demo database inside `<state_dir>/demo/`.
pub const DB_FILE: &str = "shop.db";

/// Creates `<state_dir>/demo/shop.db` if it is missing or its schema is older, else
/// reuses it; returns its absolute path.
pub fn prepare(state_dir: &Path) -> Result<PathBuf, Error> {
    let dir =
        std::path::absolute(state_dir.join("demo")).unwrap_or_else(|_| state_dir.join("demo"));
    std::fs::create_dir_all(&dir).map_err(|source| Error::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(DB_FILE);
    if path.exists() {
        let version = schema_version(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        if version >= schema::VERSION {
            tracing::info!(path = %path.display(), "reusing the demo database");
            return Ok(path);
        }
        tracing::info!(path = %path.display(), version, "the demo database is outdated; rebuilding it");
    }

    let started = Instant::now();
    let building = dir.join(format!("{DB_FILE}.building-{}", std::process::id()));
    remove_with_sidecars(&building);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Err(source) = seed::create(&building, now) {
        remove_with_sidecars(&building);
        return Err(Error::Seed { path, source });
    }
    remove_with_sidecars(&path);
    std::fs::rename(&building, &path).map_err(|source| Error::Replace {
        path: path.clone(),
        source,
    })?;
    tracing::info!(
        path = %path.display(),
        seconds = started.elapsed().as_secs_f64(),
        "created the demo database"
    );
    Ok(path)
}

/// `PRAGMA user_version` of the database at `path`.
fn schema_version(path: &Path) -> rusqlite::Result<i32> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Removes a database file with its `-wal` and `-shm` files; missing files are fine.
fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// The built-in demo configuration: host metrics, the shop database at `db_path`, its
/// business queries and a console channel behind the `critical`, `warning` and `info`
/// receivers. Parse it with [`crate::config::parse_str`].
pub fn config_yaml(db_path: &Path) -> String {
    const TEMPLATE: &str = include_str!("demo.yaml");
    const PLACEHOLDER: &str = "@SHOP_DB_URL@";
    let url = format!("sqlite://{}", db_path.display());
    // A single-quoted YAML scalar doubles its quotes; `$${` keeps `${` from expanding.
    let quoted = url.replace('\'', "''").replace("${", "$${");
    TEMPLATE.replace(PLACEHOLDER, &quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_path_is_quoted_for_yaml() {
        let yaml = config_yaml(Path::new("/tmp/it's ${HOME}/shop.db"));
        assert!(yaml.contains("url: 'sqlite:///tmp/it''s $${HOME}/shop.db'"));
        let config =
            crate::config::parse_str("demo.yaml", &yaml, &crate::config::Sources::system())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.databases["shop"].url,
            "sqlite:///tmp/it's ${HOME}/shop.db"
        );
    }
}
