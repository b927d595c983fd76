//! Built-in packs of database metrics (`databases.<name>.collect`), under the names of
//! the exporter each stands in for, so its dashboards and alerts work unchanged.
//!
//! A pack runs in the background on `collect_interval`, like a query: through the
//! database's own pool (read-only statements, the same connect timeout and reconnect
//! backoff), never on scrape. A run that cannot read the server leaves only
//! `mysql_up 0` / `pg_up 0`; a snapshot older than three intervals is not served.

pub mod mysql;
pub mod postgres;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use super::family::{Family, Kind, Labels, labels};
use super::sql::database::DatabaseHandle;
use super::sql::rows::ResultSet;
use crate::config::Pack;

/// Families by name, each built up sample by sample.
#[derive(Debug, Default)]
pub struct Families(BTreeMap<String, Family>);

impl Families {
    /// Adds a sample to family `name` (as exposed: a counter's ends in `_total`). The
    /// first sample of a family sets its help and kind.
    pub fn push(
        &mut self,
        name: &str,
        help: impl Into<Cow<'static, str>>,
        kind: Kind,
        labels: Labels,
        value: f64,
    ) {
        // The model names counters without `_total`; the encoder appends it.
        let name = match kind {
            Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
            Kind::Gauge | Kind::Untyped | Kind::LegacyCounter => name,
        };
        self.0
            .entry(name.to_owned())
            .or_insert_with(|| Family {
                name: Cow::Owned(name.to_owned()),
                help: help.into(),
                kind,
                samples: Vec::new(),
            })
            .push(labels, value);
    }

    pub fn into_vec(self) -> Vec<Family> {
        self.0.into_values().collect()
    }
}

/// The families of one pack's last run.
#[derive(Debug)]
struct Snapshot {
    families: Vec<Family>,
    taken: Instant,
}

/// One pack on one database.
#[derive(Debug)]
pub struct PackState {
    pub pack: Pack,
    pub database: String,
    interval: Duration,
    snapshot: ArcSwapOption<Snapshot>,
    /// The `mysql` pack's replica-status statement to try next ([`mysql::SLAVE_STATUS`]).
    replica_form: AtomicUsize,
}

impl PackState {
    pub fn new(pack: Pack, database: &str, interval: Duration) -> Self {
        Self {
            pack,
            database: database.to_owned(),
            interval,
            snapshot: ArcSwapOption::empty(),
            replica_form: AtomicUsize::new(0),
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The last run's families, unless older than three intervals.
    pub fn families(&self) -> Vec<Family> {
        self.snapshot
            .load_full()
            .filter(|s| s.taken.elapsed() < self.interval.saturating_mul(3))
            .map(|s| s.families.clone())
            .unwrap_or_default()
    }

    /// Runs forever on the pack's interval; aborted by dropping its task.
    pub async fn schedule(self: Arc<Self>, db: Arc<DatabaseHandle>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.run_once(&db).await;
        }
    }

    /// Runs the pack once and keeps its families.
    pub async fn run_once(&self, db: &DatabaseHandle) {
        let timeout = self.interval.min(Duration::from_secs(10));
        let families = match self.pack {
            Pack::Mysql => collect_mysql(db, timeout, &self.replica_form).await,
            Pack::Postgres => collect_postgres(db, timeout).await,
        };
        self.snapshot.store(Some(Arc::new(Snapshot {
            families,
            taken: Instant::now(),
        })));
    }
}

/// One pack run on MySQL/MariaDB: status, variables and replica status in one batch (one
/// connection, one session reset). `replica_form` is the replica-status statement to try
/// (the next one after a failure: MariaDB, MySQL ≤ 8.0 and MySQL 8.4 each know another).
async fn collect_mysql(
    db: &DatabaseHandle,
    timeout: Duration,
    replica_form: &AtomicUsize,
) -> Vec<Family> {
    let form = replica_form.load(Ordering::Relaxed) % mysql::SLAVE_STATUS.len();
    let statements = [
        mysql::GLOBAL_STATUS,
        mysql::GLOBAL_VARIABLES,
        mysql::SLAVE_STATUS[form],
    ];
    let mut results = match db.query_each(&statements, timeout).await {
        Ok(results) => results.into_iter(),
        Err(error) => {
            tracing::warn!(%error, database = %db.name, "mysql pack: cannot read the server");
            return vec![mysql::up(false)];
        }
    };
    let status = match results.next() {
        Some(Ok(status)) => status,
        Some(Err(error)) => {
            tracing::warn!(%error, database = %db.name, "mysql pack: cannot read the server's status");
            return vec![mysql::up(false)];
        }
        None => return vec![mysql::up(false)],
    };
    let mut out = Families::default();
    mysql::global_status(&status, &mut out);
    match results.next() {
        Some(Ok(variables)) => mysql::global_variables(&variables, &mut out),
        Some(Err(error)) => {
            tracing::warn!(%error, database = %db.name, "mysql pack: cannot read variables")
        }
        None => {}
    }
    // Not a replica, no privilege, or a form this server does not know: no replica
    // families this run, the next form next run.
    match results.next() {
        Some(Ok(replicas)) => mysql::slave_status(&replicas, &mut out),
        Some(Err(_)) => {
            replica_form.store((form + 1) % mysql::SLAVE_STATUS.len(), Ordering::Relaxed);
        }
        None => {}
    }
    let mut families = out.into_vec();
    families.push(mysql::up(true));
    families
}

/// Reads one statement's result into families.
type Reader = fn(&ResultSet, &mut Families);

/// One pack run on PostgreSQL: every statement in one read-only transaction.
async fn collect_postgres(db: &DatabaseHandle, timeout: Duration) -> Vec<Family> {
    let readers: [(&str, &str, Reader); 3] = [
        (
            "database sizes",
            postgres::DATABASE_SIZE,
            postgres::database_size,
        ),
        ("pg_stat_bgwriter", postgres::BGWRITER, postgres::bgwriter),
        ("pg_settings", postgres::SETTINGS, postgres::settings),
    ];
    let statements: Vec<&str> = std::iter::once(postgres::SERVER)
        .chain(postgres::VIEWS.iter().map(|view| view.query))
        .chain(readers.iter().map(|(_, statement, _)| *statement))
        .collect();
    let mut results = match db.query_each(&statements, timeout).await {
        Ok(results) => results.into_iter(),
        Err(error) => {
            tracing::warn!(%error, database = %db.name, "postgres pack: cannot read the server");
            return vec![postgres::up(false)];
        }
    };
    let server = match results.next() {
        Some(Ok(server)) => server,
        Some(Err(error)) => {
            tracing::warn!(%error, database = %db.name, "postgres pack: cannot read the server");
            return vec![postgres::up(false)];
        }
        None => return vec![postgres::up(false)],
    };
    let mut out = Families::default();
    postgres::server(&server, &mut out);
    let steps = postgres::VIEWS
        .iter()
        .map(|view| (view.namespace, Step::View(view)))
        .chain(
            readers
                .iter()
                .map(|&(what, _, read)| (what, Step::Read(read))),
        );
    for ((what, step), result) in steps.zip(results) {
        match (result, step) {
            (Ok(result), Step::View(view)) => postgres::view(view, &result, &mut out),
            (Ok(result), Step::Read(read)) => read(&result, &mut out),
            (Err(error), _) => {
                tracing::warn!(%error, database = %db.name, what, "postgres pack: cannot read")
            }
        }
    }
    let mut families = out.into_vec();
    families.push(postgres::up(true));
    families
}

/// What to do with one statement's result of a postgres run.
enum Step {
    View(&'static postgres::View),
    Read(Reader),
}

/// The families of every pack, for the exposition. When several databases run the same
/// pack, their samples get a `database` label so that the series stay distinct (with one
/// database per pack the names and labels are exactly the exporter's).
pub fn families(packs: &[Arc<PackState>]) -> Vec<Family> {
    let mut merged: BTreeMap<String, Family> = BTreeMap::new();
    for state in packs {
        let shared = packs.iter().filter(|p| p.pack == state.pack).count() > 1;
        for mut family in state.families() {
            if shared {
                for sample in &mut family.samples {
                    // A label of the exporter's own named `database` (postgres_exporter's
                    // `pg_replication_slots_*`) becomes `exported_database`, as Prometheus
                    // renames a scraped label that clashes with a target label.
                    for (name, _) in &mut sample.labels {
                        if name == "database" {
                            *name = Cow::Borrowed("exported_database");
                        }
                    }
                    sample
                        .labels
                        .push(("database".into(), state.database.clone()));
                }
            }
            match merged.get_mut(family.name.as_ref()) {
                Some(into) => into.samples.append(&mut family.samples),
                None => {
                    merged.insert(family.name.to_string(), family);
                }
            }
        }
    }
    let mut info = Family::gauge(
        "lookout_pack_info",
        "A built-in metrics pack collecting from a configured database",
    );
    for state in packs {
        info.push(
            labels([
                ("database", state.database.as_str()),
                ("pack", state.pack.name()),
            ]),
            1.0,
        );
    }
    let mut families: Vec<Family> = merged.into_values().collect();
    families.push(info);
    families
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(database: &str, families: Vec<Family>) -> Arc<PackState> {
        let state = PackState::new(Pack::Postgres, database, Duration::from_secs(15));
        state.snapshot.store(Some(Arc::new(Snapshot {
            families,
            taken: Instant::now(),
        })));
        Arc::new(state)
    }

    fn slots() -> Vec<Family> {
        vec![
            Family::gauge("pg_replication_slots_active", "Active.")
                .with(labels([("slot_name", "standby1"), ("database", "")]), 1.0),
        ]
    }

    #[test]
    fn one_database_keeps_the_exporters_labels() {
        let families = families(&[state("main", slots())]);
        assert_eq!(
            families[0].samples[0].labels,
            labels([("slot_name", "standby1"), ("database", "")])
        );
        assert_eq!(families[0].name, "pg_replication_slots_active");
        assert_eq!(families[1].name, "lookout_pack_info");
    }

    #[test]
    fn several_databases_add_theirs_and_rename_a_clashing_label() {
        let families = families(&[state("primary", slots()), state("replica", slots())]);
        let samples = &families[0].samples;
        assert_eq!(samples.len(), 2);
        assert_eq!(
            samples[0].labels,
            labels([
                ("slot_name", "standby1"),
                ("exported_database", ""),
                ("database", "primary")
            ])
        );
        assert_eq!(
            samples[1].labels.last(),
            Some(&("database".into(), "replica".to_owned()))
        );
    }
}
