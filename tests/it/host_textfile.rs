//! The textfile collector through the real server: a good `*.prom` file is served with
//! its mtime; a malformed one sets `node_textfile_scrape_error 1` and is skipped while
//! `/metrics` keeps answering 200 with everything else.

use std::fs;

use crate::support::Lookout;
use crate::support::exposition::labels;

const GOOD: &str = "# HELP backup_last_success_timestamp_seconds When the last backup succeeded.\n\
# TYPE backup_last_success_timestamp_seconds gauge\n\
backup_last_success_timestamp_seconds{job=\"db\"} 1700000000\n\
# TYPE backup_runs_total counter\n\
backup_runs_total{job=\"db\"} 12\n";

#[test]
fn good_files_are_served_and_a_malformed_one_only_sets_the_error() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("backup.prom"), GOOD).unwrap();
    let config = format!(
        "host:\n  max_age: 0s\n  textfile_directory: {}\n",
        dir.path().display()
    );
    let lookout = Lookout::start(&config);

    let metrics = lookout.metrics();
    assert_eq!(metrics.scalar("node_textfile_scrape_error"), Some(0.0));
    assert_eq!(
        metrics.value(
            "backup_last_success_timestamp_seconds",
            &labels(&[("job", "db")])
        ),
        Some(1.7e9)
    );
    assert_eq!(
        metrics.value("backup_runs_total", &labels(&[("job", "db")])),
        Some(12.0)
    );
    assert_eq!(metrics.type_of("backup_runs_total"), Some("counter"));
    let modified = fs::metadata(dir.path().join("backup.prom"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(
        metrics.value(
            "node_textfile_mtime_seconds",
            &labels(&[("file", "backup.prom")])
        ),
        Some(modified)
    );

    fs::write(
        dir.path().join("broken.prom"),
        "ok_metric 1\nbroken{job=\"db\" 2\n",
    )
    .unwrap();
    let metrics = lookout.metrics();
    assert_eq!(metrics.scalar("node_textfile_scrape_error"), Some(1.0));
    assert!(
        metrics.get("ok_metric").is_empty(),
        "a malformed file is skipped whole"
    );
    assert!(metrics.get("broken").is_empty());
    assert_eq!(
        metrics.value("backup_runs_total", &labels(&[("job", "db")])),
        Some(12.0)
    );
    assert!(
        metrics.scalar("node_load1").is_some(),
        "host metrics still served"
    );
    assert_eq!(
        metrics
            .get("node_textfile_mtime_seconds")
            .iter()
            .map(|(labels, _)| labels["file"].as_str())
            .collect::<Vec<_>>(),
        ["backup.prom"]
    );
}
