//! A recording HTTP/1.1 proxy for scrapes: forwards each request to one upstream
//! (optionally replacing its `Accept` header) and records what the scraper asked for and
//! what the upstream answered, so tests can see content negotiation end to end.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::http::{read_headers, read_line, read_response};

/// One proxied request and its response.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// `Accept` as the client sent it.
    pub(crate) client_accept: String,
    /// `Accept` as forwarded upstream.
    pub(crate) upstream_accept: String,
    pub(crate) accept_encoding: String,
    pub(crate) user_agent: String,
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) content_encoding: String,
    pub(crate) body_len: usize,
}

/// A running proxy; stops when dropped.
pub(crate) struct RecordingProxy {
    addr: SocketAddr,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingProxy {
    /// Proxies to `upstream`; with `accept_override`, every request's `Accept` is replaced.
    pub(crate) fn start(upstream: SocketAddr, accept_override: Option<&str>) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept_override = accept_override.map(str::to_owned);
        let thread = {
            let exchanges = Arc::clone(&exchanges);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let exchanges = Arc::clone(&exchanges);
                    let accept_override = accept_override.clone();
                    std::thread::spawn(move || {
                        match proxy_one(&client, upstream, accept_override.as_deref()) {
                            Ok(exchange) => exchanges.lock().expect("not poisoned").push(exchange),
                            Err(error) => eprintln!("proxy: {error}"),
                        }
                    });
                }
            })
        };
        RecordingProxy {
            addr,
            exchanges,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every completed exchange so far, oldest first.
    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().expect("not poisoned").clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one request on `client` (the connection is closed afterwards).
fn proxy_one(
    client: &TcpStream,
    upstream: SocketAddr,
    accept_override: Option<&str>,
) -> std::io::Result<Exchange> {
    let timeout = Some(Duration::from_secs(10));
    client.set_read_timeout(timeout)?;
    let mut client_reader = BufReader::new(client);
    let request_line = read_line(&mut client_reader)?;
    let headers = read_headers(&mut client_reader)?;
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    let client_accept = find("accept");
    let upstream_accept = accept_override.map_or_else(|| client_accept.clone(), str::to_owned);

    let mut request = format!("{request_line}\r\n");
    for (name, value) in &headers {
        if !matches!(name.as_str(), "accept" | "connection" | "keep-alive") {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    request.push_str(&format!(
        "accept: {upstream_accept}\r\nconnection: close\r\n\r\n"
    ));

    let upstream_stream = TcpStream::connect(upstream)?;
    upstream_stream.set_read_timeout(timeout)?;
    (&upstream_stream).write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    (&upstream_stream).read_to_end(&mut raw)?;
    let response = read_response(&mut raw.as_slice(), false)?;
    let header = |name: &str| response.header(name).unwrap_or_default().to_owned();
    let exchange = Exchange {
        client_accept,
        upstream_accept,
        accept_encoding: find("accept-encoding"),
        user_agent: find("user-agent"),
        status: response.status,
        content_type: header("content-type"),
        content_encoding: header("content-encoding"),
        body_len: response.body.len(),
    };
    // Relay the upstream bytes untouched; it was asked to close, and so do we.
    let mut client = client;
    client.write_all(&raw)?;
    Ok(exchange)
}
