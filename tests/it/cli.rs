//! The binary as an operator meets it: `check-config` exit codes and messages, signals
//! (SIGTERM/SIGINT stop gracefully, SIGHUP reloads and a bad file keeps the old config),
//! log formats, and secrets that never reach logs, pages or metrics.

use std::process::Command;
use std::time::Duration;

use crate::support::exposition::Exposition;
use crate::support::{Lookout, http_get, http_request, poll_until};

const SECRETS: &[&str] = &[
    "s3cr3t-bearer",
    "dt-access-token-42",
    "SECdingtalk-signing",
    "db-pass-w0rd",
];

/// A config that carries every kind of secret, through env vars and files.
fn secret_config(dir: &std::path::Path) -> String {
    let password_file = dir.join("db-password");
    std::fs::write(&password_file, "db-pass-w0rd\n").expect("write password file");
    format!(
        "host: {{ enabled: false }}
web:
  auth: {{ bearer_token: s3cr3t-bearer }}
databases:
  shop: {{ url: 'mysql://app@127.0.0.1:1/shop', password_file: '{}' }}
queries:
  - name: users
    database: shop
    interval: 1s
    sql: SELECT 1 AS n
    metrics: [{{ name: shop_users, value: n }}]
channels:
  ops:
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=dt-access-token-42
    secret: SECdingtalk-signing
receivers:
  critical: {{ channels: [ops] }}
",
        password_file.display()
    )
}

fn check_config(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("check.yaml");
    std::fs::write(&path, text).expect("write config");
    let output = Command::new(crate::support::lookout::binary())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run lookout check-config");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_accepts_good_files_and_names_every_error() {
    let (ok, stdout, _) = check_config("listen: 127.0.0.1:9788\nhost: { enabled: true }\n");
    assert!(ok, "{stdout}");
    assert!(stdout.contains("ok"), "{stdout}");

    let (ok, _, stderr) =
        check_config("listen: 127.0.0.1:9788\nhost:\n  enabeld: true\n  max_age: soon\n");
    assert!(!ok, "a bad file must exit non-zero");
    assert!(
        stderr.contains("check.yaml:3:3: host.enabeld: unknown key `enabeld`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("check.yaml:4:3: host.max_age: invalid duration `soon`"),
        "{stderr}"
    );
}

#[test]
fn sigterm_and_sigint_stop_gracefully() {
    for signal in ["TERM", "INT"] {
        let mut lookout = Lookout::start(crate::support::lookout::HOST_ONLY_CONFIG);
        assert_eq!(
            http_get(&lookout.url("/-/healthy"), &[]).unwrap().status,
            200
        );
        lookout.signal(signal);
        let status = lookout.wait_exit(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "SIG{signal}: exit {status:?}\n{}",
            lookout.logs()
        );
        assert!(
            lookout.stderr().contains("lookout stopped"),
            "{}",
            lookout.logs()
        );
    }
}

fn reload_gauge(lookout: &Lookout) -> Option<f64> {
    let body = http_get(&lookout.url("/metrics"), &[]).ok()?.text();
    Exposition::parse(&body)
        .ok()?
        .scalar("lookout_config_last_reload_successful")
}

#[test]
fn sighup_reloads_and_a_bad_file_keeps_the_running_config() {
    let mut lookout = Lookout::start("host: { enabled: false }\ntimezone: Asia/Shanghai\n");
    std::fs::write(
        lookout.config_path(),
        "host: { enabled: false }\ntimezone: Not/AZone\n",
    )
    .unwrap();
    lookout.signal("HUP");
    poll_until(
        Duration::from_secs(10),
        "the failed reload to show",
        || match reload_gauge(&lookout) {
            Some(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    assert!(lookout.is_running(), "a bad config must not stop lookout");
    let stderr = lookout.stderr();
    assert!(
        stderr.contains("lookout.yaml:2:1: timezone: unknown time zone"),
        "{stderr}"
    );
    let page = http_get(&lookout.url("/"), &[]).unwrap().text();
    // minijinja escapes `/` in HTML, so look for the zone's city.
    assert!(
        page.contains("Shanghai"),
        "old config still in force: {page}"
    );

    std::fs::write(
        lookout.config_path(),
        "host: { enabled: false }\ntimezone: UTC\n",
    )
    .unwrap();
    lookout.signal("HUP");
    poll_until(
        Duration::from_secs(10),
        "the good reload to show",
        || match reload_gauge(&lookout) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let page = http_get(&lookout.url("/"), &[]).unwrap().text();
    assert!(page.contains("UTC") && !page.contains("Shanghai"), "{page}");
}

#[test]
fn secrets_never_reach_logs_pages_or_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let config = secret_config(dir.path());
    let lookout = Lookout::start_with_args(&config, &["--log.level", "trace"]);
    let bearer = [("Authorization", "Bearer s3cr3t-bearer")];
    // Exercise every path that could log: pages, metrics, a failed auth, a reload with a
    // broken file (whose error mentions the key next to the secret), and a good reload.
    let mut bodies = Vec::new();
    for path in ["/", "/metrics", "/-/ready"] {
        bodies.push(http_get(&lookout.url(path), &[]).unwrap().text());
    }
    let denied = http_request(
        "POST",
        &lookout.url("/-/reload"),
        &[("Authorization", "Bearer wrong")],
        b"",
    )
    .unwrap();
    assert_eq!(denied.status, 401);
    std::fs::write(
        lookout.config_path(),
        config.replace(
            "secret: SECdingtalk-signing",
            "secret: SECdingtalk-signing\n    bogus: 1",
        ),
    )
    .unwrap();
    let failed = http_request("POST", &lookout.url("/-/reload"), &bearer, b"").unwrap();
    assert_eq!(failed.status, 500, "{}", failed.text());
    bodies.push(failed.text());
    std::fs::write(lookout.config_path(), &config).unwrap();
    let reloaded = http_request("POST", &lookout.url("/-/reload"), &bearer, b"").unwrap();
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    // The query runs against the unreachable database: the error path that could leak
    // the password has run (and been logged) before the logs are searched.
    poll_until(Duration::from_secs(20), "the database error", || {
        let metrics = http_get(&lookout.url("/metrics"), &[])
            .map(|r| r.text())
            .unwrap_or_default();
        let logs = lookout.logs();
        if metrics.contains("lookout_database_up{database=\"shop\"} 0")
            && logs.contains("shop")
            && logs.contains("level=warn")
        {
            Ok(())
        } else {
            Err(logs)
        }
    });
    let logs = lookout.logs();
    assert!(logs.contains("configuration reloaded"), "{logs}");
    for secret in SECRETS {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
        for body in &bodies {
            assert!(
                !body.contains(secret),
                "{secret} leaked into a response:\n{body}"
            );
        }
    }
    // The secret is also absent from the process' command line.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", lookout.pid())).unwrap();
    for secret in SECRETS {
        assert!(!String::from_utf8_lossy(&cmdline).contains(secret));
    }
}

#[test]
fn logs_are_logfmt_by_default_and_json_on_request() {
    let lookout = Lookout::start(crate::support::lookout::HOST_ONLY_CONFIG);
    let line = lookout
        .stderr()
        .lines()
        .find(|l| l.contains("lookout listening"))
        .map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("{}", lookout.logs()));
    assert!(
        line.starts_with("ts=")
            && line.contains(" level=info ")
            && line.contains("addr=127.0.0.1:"),
        "{line}"
    );
    drop(lookout);

    let lookout = Lookout::start_with_args(
        crate::support::lookout::HOST_ONLY_CONFIG,
        &["--log.format", "json"],
    );
    let stderr = lookout.stderr();
    let mut seen = false;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if value["message"] == "lookout listening" {
            assert_eq!(value["level"], "INFO");
            seen = true;
        }
    }
    assert!(seen, "{stderr}");
}

#[test]
fn starts_on_defaults_when_no_config_exists() {
    // No --config and no lookout.yaml in the working directory: built-in defaults.
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::support::free_addr();
    let mut child = Command::new(crate::support::lookout::binary())
        .args(["--listen", &addr.to_string(), "--state-dir"])
        .arg(dir.path().join("state"))
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = poll_until(Duration::from_secs(20), "lookout on defaults", || {
        http_get(&format!("http://{addr}/metrics"), &[])
            .map(|r| r.text())
            .map_err(|e| e.to_string())
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.contains("node_cpu_seconds_total{"), "{body}");
}

/// A valid config with one SQLite query whose `interval` is `interval` (line 7).
fn query_config(interval: &str) -> String {
    format!(
        "host: {{ enabled: false }}
databases:
  shop: {{ url: 'sqlite:///nonexistent/shop.db' }}
queries:
  - name: q
    database: shop
    interval: {interval}
    sql: SELECT 1 AS v
    metrics: [{{ name: shop_one, value: v }}]
"
    )
}

#[test]
fn check_config_rejects_zero_and_huge_durations_with_a_position() {
    let cases = [
        (
            "0s",
            "check.yaml:7:5: queries[0].interval: must be at least 100ms",
        ),
        (
            "7000000000000000000s",
            "check.yaml:7:5: queries[0].interval: must be at most 7d",
        ),
    ];
    for (interval, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.yaml");
        std::fs::write(&path, query_config(interval)).unwrap();
        let output = Command::new(crate::support::lookout::binary())
            .arg("check-config")
            .arg(&path)
            .output()
            .expect("run lookout check-config");
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Exit code 1 is "invalid config"; a panic is 101, an abort a signal (no code).
        assert_eq!(output.status.code(), Some(1), "{interval}: {stderr}");
        assert!(stderr.contains(expected), "{interval}: {stderr}");
    }
}

#[test]
fn reload_to_a_zero_interval_is_refused_and_lookout_keeps_running() {
    let mut lookout = Lookout::start(&query_config("30s"));
    std::fs::write(lookout.config_path(), query_config("0s")).unwrap();
    let response = http_request("POST", &lookout.url("/-/reload"), &[], &[]).unwrap();
    let body = response.text();
    assert_eq!(response.status, 500, "{body}");
    assert!(
        body.contains("lookout.yaml:7:5: queries[0].interval: must be at least 100ms"),
        "{body}"
    );
    // Long enough for the query task (random start ≤ 2 s) to have met the interval.
    std::thread::sleep(Duration::from_secs(3));
    assert!(lookout.is_running(), "{}", lookout.logs());
    let healthy = http_get(&lookout.url("/-/healthy"), &[]).unwrap();
    assert_eq!(healthy.status, 200);
    assert_eq!(reload_gauge(&lookout), Some(0.0));
    assert!(!lookout.stderr().contains("panicked"), "{}", lookout.logs());
}

/// The environment lookout runs with, from `/proc/PID/environ`.
fn environ_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .expect("read environ")
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

#[test]
fn the_server_tunes_malloc_for_idling_unless_the_operator_did() {
    // Untuned: the server re-executes itself, same process, with glibc tuned.
    let lookout = Lookout::start("host: { enabled: false }\n");
    let environ = environ_of(lookout.pid());
    for setting in [
        "MALLOC_ARENA_MAX=1",
        "MALLOC_MMAP_THRESHOLD_=32768",
        "MALLOC_TRIM_THRESHOLD_=65536",
    ] {
        assert!(
            environ.contains(&setting.to_owned()),
            "{setting}: {environ:?}"
        );
    }
    // Set by the operator: kept as given.
    let dir = tempfile::tempdir().unwrap();
    let addr = crate::support::free_addr();
    let mut child = Command::new(crate::support::lookout::binary())
        .args(["--listen", &addr.to_string(), "--state-dir"])
        .arg(dir.path().join("state"))
        .current_dir(dir.path())
        .env("MALLOC_ARENA_MAX", "4")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    poll_until(Duration::from_secs(20), "lookout ready", || {
        http_get(&format!("http://{addr}/-/ready"), &[])
            .map(drop)
            .map_err(|e| e.to_string())
    });
    let environ = environ_of(child.id());
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        environ.contains(&"MALLOC_ARENA_MAX=4".to_owned()),
        "{environ:?}"
    );
    assert!(
        !environ
            .iter()
            .any(|v| v.starts_with("MALLOC_MMAP_THRESHOLD_")),
        "the operator's tuning is theirs alone: {environ:?}"
    );
}
