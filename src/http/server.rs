//! The accept loop: HTTP/1 connections served by hyper with a header, body and idle
//! timeout each, a connection cap that closes the oldest idle connection to make room, and
//! a graceful shutdown bounded by a deadline.
//!
//! Each connection is tracked by a [`Conn`]: requests in flight, the last time bytes
//! moved, and when the head of the next request started arriving. The connection's task
//! sleeps until the earliest deadline these imply ([`Conn::verdict`]) and drops the
//! connection once it has passed:
//!
//! - a request head must be complete `header_read_timeout` after its first byte (hyper's
//!   own header timer is off: it also runs on idle keep-alive connections);
//! - a request body must be complete `body_read_timeout` after the head, else the request
//!   is answered 408 with `Connection: close` (handler time is not limited: the webhook
//!   must be able to answer 503 when the outbox cannot commit);
//! - a connection with no request in flight and no bytes moving for `idle_timeout` is
//!   closed — this covers silent sockets, idle keep-alive and clients that stop reading.
//!
//! **Invariant:** at most `max_connections` connections are served (one more for a
//! moment while the oldest is closed), never more than half the process's open-file
//! limit; at the cap a new connection closes the oldest one with no request in flight
//! (the oldest of all if every one has a request in flight), so a flood of idle sockets
//! cannot keep `/-/healthy` and `/metrics` from answering.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

use super::error::Error;
use crate::config::WebConfig;
use crate::shutdown::Shutdown;

/// The server's limits, read from the configuration in force for each new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_timeout: Duration,
}

impl From<&WebConfig> for Limits {
    fn from(web: &WebConfig) -> Self {
        Self {
            header_read_timeout: web.header_read_timeout,
            body_read_timeout: web.body_read_timeout,
            idle_timeout: web.idle_timeout,
            max_connections: web.max_connections,
            shutdown_timeout: web.shutdown_timeout,
        }
    }
}

/// What the configuration in force says about a new connection: its limits, and the TLS
/// it must speak (read again on every reload, so a renewed certificate applies to the
/// next connection).
#[derive(Debug, Clone)]
pub struct Settings {
    pub limits: Limits,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl From<&WebConfig> for Settings {
    fn from(web: &WebConfig) -> Self {
        Self {
            limits: Limits::from(web),
            tls: web.tls.as_ref().map(|tls| Arc::clone(&tls.server)),
        }
    }
}

/// How long to pause accepting when the process is out of file descriptors.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How often the "connection cap reached" warning may be logged.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` fires; then stops accepting, lets
/// requests in flight finish until `shutdown_timeout` has passed, closes what is left and
/// returns that deadline (the caller bounds its own draining by it too).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: impl Fn() -> Settings,
    shutdown: Shutdown,
) -> Instant {
    let fd_cap = fd_cap();
    let table = Arc::new(Table::default());
    let mut tasks = JoinSet::new();
    let mut cap_warned: Option<Instant> = None;
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // EMFILE and friends: the cap keeps this rare; do not spin.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    }
                };
                // A response leaves in several writes (a body's chunks, TLS records):
                // without this, Nagle holds a short last write for the client's delayed
                // ACK, 40 ms on Linux.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let Settings { limits, tls } = settings();
                let cap = limits.max_connections.min(fd_cap);
                if table.make_room(cap) && cap_warned.is_none_or(|at| at.elapsed() >= CAP_WARNING_EVERY) {
                    cap_warned = Some(Instant::now());
                    tracing::warn!(max_connections = cap, "connection cap reached; closing the oldest idle connections for new ones");
                }
                let conn = table.open();
                let io = Metered { stream, conn: Arc::clone(&conn) };
                let (table, router, shutdown) = (Arc::clone(&table), router.clone(), shutdown.clone());
                tasks.spawn(async move {
                    match tls {
                        None => serve_connection(io, conn, table, router, limits, shutdown).await,
                        Some(tls) => match handshake(tls, io, limits).await {
                            Some(io) => serve_connection(io, conn, table, router, limits, shutdown).await,
                            None => table.close(conn.id),
                        },
                    }
                });
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + settings().limits.shutdown_timeout;
    let drained = tokio::time::timeout_at(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = tasks.len(),
            "web.shutdown_timeout reached; closing connections with requests in flight"
        );
        tasks.shutdown().await;
    }
    deadline
}

/// Half the soft open-file limit: the rest is for the outbox, databases and sends.
fn fd_cap() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    match limit.current {
        Some(current) => usize::try_from(current / 2).unwrap_or(usize::MAX).max(1),
        None => usize::MAX,
    }
}

/// The TLS handshake, bounded by `header_read_timeout` (a slow handshake holds a socket
/// like a slow request head). `None` when it failed: a client without a valid
/// certificate when one is required, a plain-HTTP client, a timeout.
async fn handshake(
    tls: Arc<rustls::ServerConfig>,
    io: Metered,
    limits: Limits,
) -> Option<tokio_rustls::server::TlsStream<Metered>> {
    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(io);
    match tokio::time::timeout(limits.header_read_timeout, accept).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

/// Serves one connection until it ends, expires, is evicted, or shutdown closes it.
async fn serve_connection<S>(
    io: S,
    conn: Arc<Conn>,
    table: Arc<Table>,
    router: Router,
    limits: Limits,
    shutdown: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let conn = Arc::clone(&conn);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            respond(Arc::clone(&conn), router.clone(), request, limits)
        })
    };
    let io = TokioIo::new(io);
    let connection = hyper::server::conn::http1::Builder::new()
        // Our own timers replace hyper's, which also runs on idle keep-alive connections.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let now = Instant::now();
        let wake = match conn.verdict(now, &limits) {
            Verdict::Expired(reason) => {
                tracing::debug!(reason, "closing connection");
                break;
            }
            Verdict::Until(wake) => wake,
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(wake) => {}
            () = conn.changed.notified() => {}
            () = conn.evicted.notified() => {
                tracing::debug!("closing connection: connection cap reached");
                break;
            }
            () = shutdown.wait(), if !draining => {
                // Closes idle connections now, the others after their response.
                connection.as_mut().graceful_shutdown();
                draining = true;
            }
        }
    }
    table.close(conn.id);
}

/// Runs one request: tracks it as in flight, bounds its body by `body_read_timeout` and
/// answers 408 (closing the connection) when the body came too slowly.
async fn respond(
    conn: Arc<Conn>,
    router: Router,
    request: Request<Incoming>,
    limits: Limits,
) -> Result<Response, Infallible> {
    let _in_flight = conn.begin_request();
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        if body.is_end_stream() {
            // No body to wait for (most GETs): no timer either.
            return axum::body::Body::new(body);
        }
        axum::body::Body::new(TimedBody {
            inner: body,
            sleep: Box::pin(tokio::time::sleep(limits.body_read_timeout)),
            expired: Arc::clone(&expired),
        })
    });
    let response = router.oneshot(request).await;
    if expired.load(Ordering::Acquire) {
        let seconds = limits.body_read_timeout.as_secs_f64();
        return Ok(Error::RequestTimeout(format!(
            "request body not received within web.body_read_timeout ({seconds}s)"
        ))
        .into_response());
    }
    response
}

/// The open connections, oldest first.
#[derive(Debug, Default)]
struct Table {
    inner: Mutex<TableInner>,
}

#[derive(Debug, Default)]
struct TableInner {
    next_id: u64,
    open: BTreeMap<u64, Arc<Conn>>,
}

impl Table {
    fn lock(&self) -> std::sync::MutexGuard<'_, TableInner> {
        // The critical sections cannot panic half-way; a poisoned table is still whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> Arc<Conn> {
        let mut inner = self.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        let conn = Arc::new(Conn::new(id, Instant::now()));
        inner.open.insert(id, Arc::clone(&conn));
        conn
    }

    fn close(&self, id: u64) {
        self.lock().open.remove(&id);
    }

    /// At `cap` open connections, evicts one (see the module doc); true when it did.
    fn make_room(&self, cap: usize) -> bool {
        let mut inner = self.lock();
        if inner.open.len() < cap {
            return false;
        }
        let victim = inner
            .open
            .values()
            .find(|conn| conn.in_flight.load(Ordering::Acquire) == 0)
            .or_else(|| inner.open.values().next())
            .map(|conn| conn.id);
        if let Some(victim) = victim.and_then(|id| inner.open.remove(&id)) {
            // A stored permit: the task sees it even if it is not waiting right now.
            victim.evicted.notify_one();
        }
        true
    }
}

/// One connection's state, shared by its task, its I/O and its requests.
#[derive(Debug)]
struct Conn {
    id: u64,
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds since `opened` of the last byte read or written, or request start/end.
    last_active: AtomicU64,
    /// Milliseconds since `opened` (plus one, zero meaning none) of the first byte of a
    /// request head that has not reached the service yet.
    head_started: AtomicU64,
    /// Wakes the task when a deadline moved earlier.
    changed: Notify,
    evicted: Notify,
}

/// What a connection's timers say now.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Check again at this instant.
    Until(Instant),
    Expired(&'static str),
}

impl Conn {
    fn new(id: u64, opened: Instant) -> Self {
        Self {
            id,
            opened,
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            changed: Notify::new(),
            evicted: Notify::new(),
        }
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.opened).as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    fn touch(&self, now: Instant) {
        self.last_active
            .fetch_max(self.millis(now), Ordering::AcqRel);
    }

    /// Bytes arrived: the head of a request starts when none is in flight.
    fn on_read(&self, now: Instant) {
        self.touch(now);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, self.millis(now) + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.touch(Instant::now());
        InFlight(Arc::clone(self))
    }

    /// The earliest deadline that applies now, or why the connection expired.
    fn verdict(&self, now: Instant, limits: &Limits) -> Verdict {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // The body timer and the handler bound a request; look again after it.
            return Verdict::Until(now + limits.idle_timeout);
        }
        let (deadline, reason) = match self.head_started.load(Ordering::Acquire) {
            0 => (
                self.at(self.last_active.load(Ordering::Acquire)) + limits.idle_timeout,
                "idle timeout",
            ),
            started => (
                self.at(started - 1) + limits.header_read_timeout,
                "request head not received within web.header_read_timeout",
            ),
        };
        if now >= deadline {
            Verdict::Expired(reason)
        } else {
            Verdict::Until(deadline)
        }
    }
}

/// A request in flight on its connection, until dropped.
struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch(Instant::now());
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// A TCP stream that reports its reads and writes to its [`Conn`].
struct Metered {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Metered {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.on_read(Instant::now());
        }
        polled
    }
}

impl AsyncWrite for Metered {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.touch(Instant::now());
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.touch(Instant::now());
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request body that fails once its deadline passes, noting that it did.
struct TimedBody {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

/// The error a [`TimedBody`] fails with.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within web.body_read_timeout")]
struct BodyTimeout;

impl HttpBody for TimedBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(90),
        max_connections: 2,
        shutdown_timeout: Duration::from_secs(20),
    };

    #[tokio::test]
    async fn a_silent_connection_expires_after_the_idle_timeout() {
        let opened = Instant::now();
        let conn = Conn::new(0, opened);
        assert_eq!(
            conn.verdict(opened, &LIMITS),
            Verdict::Until(opened + LIMITS.idle_timeout)
        );
        assert_eq!(
            conn.verdict(opened + LIMITS.idle_timeout, &LIMITS),
            Verdict::Expired("idle timeout")
        );
    }

    #[tokio::test]
    async fn a_started_head_must_finish_within_the_header_timeout_even_if_bytes_trickle() {
        let opened = Instant::now();
        let conn = Conn::new(0, opened);
        let first_byte = opened + Duration::from_secs(5);
        conn.on_read(first_byte);
        for trickle in 1..10 {
            conn.on_read(first_byte + Duration::from_secs(trickle));
        }
        assert_eq!(
            conn.verdict(first_byte, &LIMITS),
            Verdict::Until(first_byte + LIMITS.header_read_timeout)
        );
        assert!(matches!(
            conn.verdict(first_byte + LIMITS.header_read_timeout, &LIMITS),
            Verdict::Expired(_)
        ));
    }

    #[tokio::test]
    async fn a_request_in_flight_is_not_timed_by_the_connection_and_clears_the_head_timer() {
        let opened = Instant::now();
        let conn = Arc::new(Conn::new(0, opened));
        conn.on_read(opened);
        let request = conn.begin_request();
        let much_later = opened + Duration::from_secs(600);
        assert!(matches!(
            conn.verdict(much_later, &LIMITS),
            Verdict::Until(_)
        ));
        drop(request);
        // Idle from the end of the request; the head timer no longer applies.
        let after_head_timeout = opened + LIMITS.header_read_timeout;
        match conn.verdict(after_head_timeout, &LIMITS) {
            Verdict::Until(wake) => assert!(wake >= opened + LIMITS.idle_timeout),
            expired => panic!("{expired:?}"),
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let table = Table::default();
        let busy = table.open();
        let _request = busy.begin_request();
        let idle = table.open();
        assert!(table.make_room(2));
        let open: Vec<u64> = table.lock().open.keys().copied().collect();
        assert_eq!(
            open,
            vec![busy.id],
            "the idle one is evicted, the busy one stays"
        );
        tokio::time::timeout(Duration::from_secs(1), idle.evicted.notified())
            .await
            .expect("the evicted connection is told");
        assert!(!table.make_room(2), "below the cap nothing is evicted");
    }

    #[tokio::test]
    async fn at_the_cap_with_every_connection_busy_the_oldest_goes() {
        let table = Table::default();
        let oldest = table.open();
        let newer = table.open();
        let _a = oldest.begin_request();
        let _b = newer.begin_request();
        assert!(table.make_room(2));
        let open: Vec<u64> = table.lock().open.keys().copied().collect();
        assert_eq!(open, vec![newer.id]);
    }
}
