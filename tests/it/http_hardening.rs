//! The HTTP server under hostile or broken clients, through the real binary: half-sent
//! headers, silent sockets and slowly sent bodies are cut after their timeouts; a flood of
//! idle connections above the open-file limit leaves `/-/healthy` and `/metrics`
//! answering; SIGTERM exits within `web.shutdown_timeout` while a request hangs; a reload
//! that changes `state_dir` says it needs a restart.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{Lookout, http_request};

/// Slack over a configured timeout for a loaded 2-core CI box running a debug build.
const SLACK: Duration = Duration::from_secs(2);

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect to lookout")
}

/// Whether one read shows the peer closed the connection (`Some(true)`), sent data
/// (`Some(false)`), or nothing happened within `wait` (`None`).
fn read_closed(stream: &mut TcpStream, wait: Duration) -> Option<bool> {
    stream
        .set_read_timeout(Some(wait))
        .expect("set read timeout");
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf) {
        Ok(0) => Some(true),
        Ok(_) => Some(false),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(true),
    }
}

/// Seconds from `since` until lookout closes `stream`, polling every 100 ms while
/// `feed` writes to it (a write error also means closed); `None` if still open at `limit`.
fn seconds_to_close(
    stream: &mut TcpStream,
    since: Instant,
    limit: Duration,
    mut feed: impl FnMut(&mut TcpStream) -> std::io::Result<()>,
) -> Option<f64> {
    while since.elapsed() < limit {
        if feed(stream).is_err() {
            return Some(since.elapsed().as_secs_f64());
        }
        match read_closed(stream, Duration::from_millis(100)) {
            Some(true) => return Some(since.elapsed().as_secs_f64()),
            Some(false) => panic!("lookout answered a request that was never completed"),
            None => {}
        }
    }
    None
}

#[test]
fn half_sent_headers_are_cut_after_the_header_read_timeout() {
    let lookout = Lookout::start(
        "host: { enabled: false }\nweb: { header_read_timeout: 1s, idle_timeout: 60s }\n",
    );
    let mut stream = connect(lookout.addr());
    let started = Instant::now();
    stream
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: lookout\r\n")
        .expect("send the request line");
    // A slowloris: one more header line every 100 ms, never the blank line.
    let mut line = 0;
    let closed = seconds_to_close(&mut stream, started, Duration::from_secs(8), |s| {
        line += 1;
        s.write_all(format!("X-Slow-{line}: x\r\n").as_bytes())
    });
    let seconds = closed.unwrap_or_else(|| {
        panic!(
            "a half-sent request head was still open after 8 s\n{}",
            lookout.logs()
        )
    });
    eprintln!("half-sent headers closed after {seconds:.2} s (header_read_timeout 1s)");
    assert!(
        (0.9..=1.0 + SLACK.as_secs_f64()).contains(&seconds),
        "closed after {seconds:.2} s, expected about 1 s"
    );
}

#[test]
fn silent_and_idle_keep_alive_sockets_are_closed_after_the_idle_timeout() {
    let lookout = Lookout::start(
        "host: { enabled: false }\nweb: { idle_timeout: 1s, header_read_timeout: 30s }\n",
    );

    let mut silent = connect(lookout.addr());
    let started = Instant::now();
    let seconds = seconds_to_close(&mut silent, started, Duration::from_secs(8), |_| Ok(()))
        .unwrap_or_else(|| panic!("a silent socket was open after 8 s\n{}", lookout.logs()));
    eprintln!("silent socket closed after {seconds:.2} s (idle_timeout 1s)");
    assert!(
        (0.9..=1.0 + SLACK.as_secs_f64()).contains(&seconds),
        "silent socket closed after {seconds:.2} s, expected about 1 s"
    );

    // A keep-alive connection after a complete exchange is idle too.
    let mut kept = connect(lookout.addr());
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: lookout\r\n\r\n")
        .expect("send a request");
    kept.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set read timeout");
    let response = crate::support::http::read_response(
        &mut std::io::BufReader::new(kept.try_clone().expect("clone socket")),
        false,
    )
    .expect("a response on the keep-alive connection");
    assert_eq!(response.status, 200);
    let answered = Instant::now();
    let seconds = seconds_to_close(&mut kept, answered, Duration::from_secs(8), |_| Ok(()))
        .unwrap_or_else(|| panic!("an idle keep-alive socket was open after 8 s"));
    assert!(
        (0.9..=1.0 + SLACK.as_secs_f64()).contains(&seconds),
        "idle keep-alive socket closed after {seconds:.2} s, expected about 1 s"
    );
}

const RELAY_CONFIG: &str = "host: { enabled: false }
channels:
  console: { type: console }
receivers:
  critical: { channels: [console] }
";

/// Sends the head of a 1 MiB webhook POST, then 1 KiB of body every 100 ms from a thread
/// until a write fails; returns the connection for reading.
fn slow_post(addr: SocketAddr) -> TcpStream {
    let mut stream = connect(addr);
    stream
        .write_all(
            b"POST /alertmanager/critical HTTP/1.1\r\nHost: lookout\r\n\
              Content-Type: application/json\r\nContent-Length: 1048576\r\n\r\n[",
        )
        .expect("send the request head");
    let mut writer = stream.try_clone().expect("clone socket");
    std::thread::spawn(move || {
        let chunk = [b' '; 1024];
        while writer.write_all(&chunk).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    stream
}

#[test]
fn a_slowly_sent_body_is_cut_after_the_body_read_timeout() {
    let lookout = Lookout::start(&format!(
        "{RELAY_CONFIG}web: {{ body_read_timeout: 1s, idle_timeout: 60s }}\n"
    ));
    let started = Instant::now();
    let mut stream = slow_post(lookout.addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("set read timeout");
    let mut received = Vec::new();
    // Everything lookout sends until it closes; a reset after the answer also ends it.
    let ended = loop {
        let mut buf = [0u8; 4096];
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false;
            }
            Err(_) => break true,
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&received);
    assert!(
        ended,
        "a slowly sent body was still being read after {seconds:.2} s; received {text:?}\n{}",
        lookout.logs()
    );
    eprintln!("slow body cut after {seconds:.2} s (body_read_timeout 1s)");
    assert!(
        seconds <= 1.0 + SLACK.as_secs_f64(),
        "cut after {seconds:.2} s, expected about 1 s"
    );
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "expected a 408 answer before the close, got {text:?}"
    );
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text:?}"
    );
}

#[test]
fn a_flood_of_idle_connections_over_the_fd_limit_leaves_health_and_metrics_answering() {
    const FD_LIMIT: u32 = 1024;
    const FLOOD: usize = 1100;
    let lookout = Lookout::start_with_fd_limit(RELAY_CONFIG, FD_LIMIT);
    let mut flood = Vec::with_capacity(FLOOD);
    for i in 0..FLOOD {
        let mut stream = connect(lookout.addr());
        if i % 2 == 0 {
            // Half-sent headers; the rest stay silent.
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: lookout\r\n");
        }
        flood.push(stream);
    }

    let notification = serde_json::json!({
        "version": "4", "status": "firing", "receiver": "critical", "groupKey": "{}:{alertname=\"Flood\"}",
        "groupLabels": { "alertname": "Flood" }, "commonLabels": { "alertname": "Flood" },
        "externalURL": "http://am:9093",
        "alerts": [{
            "status": "firing", "labels": { "alertname": "Flood" }, "annotations": {},
            "startsAt": "2026-11-22T02:10:05Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "0123456789abcdef",
        }],
    })
    .to_string();
    for (method, path) in [
        ("GET", "/-/healthy"),
        ("GET", "/metrics"),
        ("POST", "/alertmanager/critical"),
        ("GET", "/-/healthy"),
    ] {
        let body = if method == "POST" {
            notification.as_bytes()
        } else {
            &[]
        };
        let headers: &[(&str, &str)] = if method == "POST" {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let started = Instant::now();
        let response = http_request(method, &lookout.url(path), headers, body);
        let seconds = started.elapsed().as_secs_f64();
        let status = response
            .as_ref()
            .map(|r| r.status)
            .map_err(|e| e.to_string());
        assert_eq!(
            status,
            Ok(200),
            "{method} {path} with {FLOOD} idle connections open (after {seconds:.2} s)\n{}",
            lookout.logs()
        );
        eprintln!("{method} {path} answered in {seconds:.3} s with {FLOOD} idle connections open");
        assert!(seconds < 2.0, "{method} {path} took {seconds:.2} s");
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", lookout.pid()))
        .expect("read lookout's fd table")
        .count();
    eprintln!("lookout holds {fds} descriptors");
    assert!(
        fds < 600,
        "lookout holds {fds} descriptors with the default cap of 512 connections"
    );
    drop(flood);
}

#[test]
fn sigterm_exits_within_the_shutdown_timeout_while_a_body_is_slow() {
    let mut lookout = Lookout::start(&format!(
        "{RELAY_CONFIG}web: {{ shutdown_timeout: 2s, body_read_timeout: 60s }}\n"
    ));
    let _slow = slow_post(lookout.addr());
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    lookout.signal("TERM");
    let status = lookout.wait_exit(Duration::from_secs(15));
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        status.is_some(),
        "lookout still running {seconds:.1} s after SIGTERM\n{}",
        lookout.logs()
    );
    eprintln!("exited {seconds:.2} s after SIGTERM (shutdown_timeout 2s)");
    assert!(
        seconds <= 2.0 + SLACK.as_secs_f64(),
        "exited {seconds:.2} s after SIGTERM, expected about 2 s"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}\n{}",
        lookout.logs()
    );
    assert!(
        lookout.stderr().contains("lookout stopped"),
        "{}",
        lookout.logs()
    );
}

#[test]
fn a_reload_that_changes_state_dir_says_it_needs_a_restart() {
    let dirs = tempfile::tempdir().expect("temp dir");
    let first = dirs.path().join("first");
    let second = dirs.path().join("second");
    let config = |dir: &std::path::Path| format!("{RELAY_CONFIG}state_dir: '{}'\n", dir.display());
    let lookout = Lookout::start_unready(&config(&first));
    crate::support::poll_until(Duration::from_secs(10), "the outbox to open", || {
        match crate::support::http_get(&lookout.url("/-/ready"), &[]) {
            Ok(response) if response.status == 200 => Ok(()),
            other => Err(format!("{:?}", other.map(|r| r.status))),
        }
    });
    std::fs::write(lookout.config_path(), config(&second)).expect("rewrite config");
    let response =
        http_request("POST", &lookout.url("/-/reload"), &[], &[]).expect("POST /-/reload");
    let text = response.text();
    assert_eq!(response.status, 200, "{text}");
    assert!(
        text.contains("needs a restart: state_dir changed"),
        "the reload answer should say state_dir needs a restart: {text:?}"
    );
    let stderr = lookout.stderr();
    assert!(
        stderr.contains("needs a restart") && stderr.contains("state_dir changed"),
        "{}",
        lookout.logs()
    );
    // The outbox stays where it was opened.
    assert!(first.join("outbox.db").exists());
    assert!(!second.join("outbox.db").exists());
}
