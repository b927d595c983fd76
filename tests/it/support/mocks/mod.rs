//! Verifying mock servers for lookout's notification channels: a DingTalk robot, a WeCom
//! robot, a Feishu bot, Aliyun and Tencent Cloud SMS and voice calls, each checking requests the way the real
//! service does (signatures recomputed here from the providers' documentation, never with
//! lookout's own signers), with the real error codes, size limits and rate limits.
//!
//! Each mock is a small axum app on `127.0.0.1:<free port>`, served by its own thread and
//! current-thread tokio runtime, started by its constructor and stopped on drop. This
//! module holds what they share:
//!
//! * [`MockServer`]: the server itself, the [`Recorded`] log of every request (method,
//!   path and query, headers, raw body, parsed JSON, whether it was accepted, the code and
//!   reply it got), and the [`Misbehave`] control that makes the next requests fail the
//!   way real gateways do (5xx, delays, error codes, junk, hangs);
//! * [`RateLimiter`]: per-target rolling windows with an optional block after a breach,
//!   defaults set to the real services' values and shrinkable by tests;
//! * the hashing and encoding helpers the verifiers need.
//!
//! Every mock derefs to its [`MockServer`], so `mock.misbehave(..)`, `mock.requests()`,
//! `mock.max_in_any_window(..)` and `mock.rate_limited_count()` work on all of them.

pub(crate) mod aliyun;
pub(crate) mod aliyun_voice;
pub(crate) mod dingtalk;
pub(crate) mod feishu;
pub(crate) mod tencent;
pub(crate) mod tencent_voice;
pub(crate) mod wecom;

#[allow(unused_imports)]
pub(crate) use self::{
    aliyun::AliyunSmsMock, aliyun_voice::AliyunVoiceMock, dingtalk::DingTalkMock,
    feishu::FeishuMock, tencent::TencentSmsMock, tencent_voice::TencentVoiceMock, wecom::WeComMock,
};

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// One request as the mock received it, before anything was decided about it.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) method: String,
    /// The path as sent, still percent-encoded.
    pub(crate) path: String,
    /// The raw query string without its `?`; empty when there is none.
    pub(crate) query: String,
    /// Header names lowercased, values as sent, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The mock's wall clock when the request arrived.
    pub(crate) received_at: DateTime<Utc>,
}

impl Incoming {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every value of the header named `name`, in the order received.
    pub(crate) fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The query parameters, each name and value decoded once the way servlet-style
    /// gateways do (`+` is a space, `%XX` a byte).
    pub(crate) fn form_query(&self) -> Vec<(String, String)> {
        parse_form(&self.query)
    }
}

/// The mock's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// A JSON reply with the exact `Content-Type` the provider sends.
    pub(crate) fn json(status: u16, content_type: &str, value: &serde_json::Value) -> Reply {
        Reply {
            status,
            content_type: content_type.to_owned(),
            body: value.to_string().into_bytes(),
        }
    }

    /// A non-JSON reply (gateway pages, 404s).
    pub(crate) fn text(status: u16, content_type: &str, body: &str) -> Reply {
        Reply {
            status,
            content_type: content_type.to_owned(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// The body parsed as JSON, if it is JSON.
    pub(crate) fn json_body(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as (lossy) UTF-8.
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What a provider decided about one request.
#[derive(Debug, Clone)]
pub(crate) struct Handled {
    pub(crate) reply: Reply,
    /// Whether the message was (at least partly) delivered.
    pub(crate) accepted: bool,
    /// The provider's error code, when the request was refused (wholly or for some number).
    pub(crate) code: Option<String>,
    /// Whether a rate limit refused it.
    pub(crate) rate_limited: bool,
}

impl Handled {
    pub(crate) fn accepted(reply: Reply) -> Handled {
        Handled {
            reply,
            accepted: true,
            code: None,
            rate_limited: false,
        }
    }

    // By value so that numbers (DingTalk, WeCom) and strings (SMS) read the same.
    #[allow(clippy::needless_pass_by_value)]
    pub(crate) fn rejected(code: impl ToString, reply: Reply) -> Handled {
        Handled {
            reply,
            accepted: false,
            code: Some(code.to_string()),
            rate_limited: false,
        }
    }

    #[allow(clippy::needless_pass_by_value)]
    pub(crate) fn rate_limited(code: impl ToString, reply: Reply) -> Handled {
        Handled {
            rate_limited: true,
            ..Handled::rejected(code, reply)
        }
    }
}

/// One request in a mock's log, with what the mock made of it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// The body parsed as JSON, when it is JSON.
    pub(crate) json: Option<serde_json::Value>,
    /// Whether the provider delivered the message.
    pub(crate) accepted: bool,
    /// The error code answered, if any.
    pub(crate) code: Option<String>,
    /// Whether a rate limit refused it.
    pub(crate) rate_limited: bool,
    /// The misbehaviour that was applied instead of (or before) normal handling.
    pub(crate) misbehaved: Option<Misbehave>,
    /// The reply sent; `None` while a `Hang` holds the request.
    pub(crate) reply: Option<Reply>,
    /// When the request was decided (after any `Delay`), for rate arithmetic.
    pub(crate) at: Instant,
    pub(crate) received_at: DateTime<Utc>,
}

impl Recorded {
    /// `path?query`, or just the path.
    pub(crate) fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A failure a mock produces instead of its normal answer, as real gateways do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Misbehave {
    /// Answer with this HTTP status and a small HTML error page.
    Status(u16),
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Answer in the provider's own error shape with this code and message (for DingTalk
    /// and WeCom the code is the numeric `errcode`).
    ErrCode(String, String),
    /// Answer HTTP 200 with an HTML page instead of JSON.
    NonJson,
    /// Read the request and never answer, until the client gives up.
    Hang,
}

impl Misbehave {
    /// `ErrCode` from anything printable: `Misbehave::err_code(130101, "send too fast")`.
    #[allow(clippy::needless_pass_by_value)]
    pub(crate) fn err_code(code: impl ToString, message: impl Into<String>) -> Misbehave {
        Misbehave::ErrCode(code.to_string(), message.into())
    }
}

/// For how many requests a [`Misbehave`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Times {
    /// The next `n` requests.
    Count(usize),
    /// Every request until [`MockServer::reset_misbehave`].
    UntilReset,
    /// The `skip` next requests are answered normally, then `count` misbehave.
    After { skip: usize, count: usize },
}

impl From<usize> for Times {
    fn from(count: usize) -> Times {
        Times::Count(count)
    }
}

/// A provider's protocol: how it answers a request, and what its error shape looks like.
pub(crate) trait Service: Send + Sync + 'static {
    /// Verifies and answers one request; `now` is the monotonic time for rate limits (the
    /// wall clock is `req.received_at`).
    fn handle(&self, req: &Incoming, now: Instant) -> Handled;

    /// The provider's error reply carrying `code` and `message`, for `Misbehave::ErrCode`.
    fn error_reply(&self, code: &str, message: &str) -> Reply;
}

struct Shared {
    service: Arc<dyn Service>,
    log: Mutex<Vec<Recorded>>,
    misbehave: Mutex<Option<(Misbehave, Times)>>,
    /// Requests counted as they arrive, before any `Delay` (the log records a request
    /// once it is answered).
    arrivals: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// The misbehaviour for the request being handled now, counting it down.
    fn next_misbehave(&self) -> Option<Misbehave> {
        let mut slot = lock(&self.misbehave);
        let (misbehave, times) = slot.as_mut()?;
        let current = misbehave.clone();
        match times {
            Times::After { skip, .. } if *skip > 0 => {
                *skip -= 1;
                return None;
            }
            Times::Count(left) | Times::After { count: left, .. } => {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    *slot = None;
                }
            }
            Times::UntilReset => {}
        }
        Some(current)
    }

    fn record(&self, req: Incoming, handled: Option<&Handled>, misbehaved: Option<Misbehave>) {
        let json = serde_json::from_slice(&req.body).ok();
        let recorded = Recorded {
            method: req.method,
            path: req.path,
            query: req.query,
            headers: req.headers,
            body: req.body,
            json,
            accepted: handled.is_some_and(|h| h.accepted),
            code: handled.and_then(|h| h.code.clone()),
            rate_limited: handled.is_some_and(|h| h.rate_limited),
            misbehaved,
            reply: handled.map(|h| h.reply.clone()),
            at: Instant::now(),
            received_at: req.received_at,
        };
        lock(&self.log).push(recorded);
    }
}

/// A running mock: its address, its log and its misbehaviour control. Stopped on drop.
pub(crate) struct MockServer {
    name: &'static str,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Serves `service` on a fresh loopback port, on its own thread and runtime.
    pub(crate) fn start(name: &'static str, service: Arc<dyn Service>) -> MockServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for a mock always works");
        listener
            .set_nonblocking(true)
            .expect("a bound listener can be made non-blocking");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            service,
            log: Mutex::new(Vec::new()),
            misbehave: Mutex::new(None),
            arrivals: std::sync::atomic::AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("mock-{name}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .expect("a std listener converts inside a runtime");
                    let serve = axum::serve(listener, app);
                    tokio::select! {
                        result = async { serve.await } => {
                            if let Err(error) = result {
                                eprintln!("mock {name}: server stopped: {error}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime here cancels connections still open (hung ones too).
            })
            .expect("spawning a mock thread works");
        MockServer {
            name,
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Which provider this mock plays.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far, oldest first.
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// The requests whose message was delivered, oldest first.
    pub(crate) fn accepted(&self) -> Vec<Recorded> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.accepted)
            .cloned()
            .collect()
    }

    /// How many requests have arrived, answered or not (a delayed one counts at once).
    pub(crate) fn arrivals(&self) -> usize {
        self.shared
            .arrivals
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many requests arrived so far.
    pub(crate) fn request_count(&self) -> usize {
        lock(&self.shared.log).len()
    }

    /// The most recent request.
    pub(crate) fn last(&self) -> Option<Recorded> {
        lock(&self.shared.log).last().cloned()
    }

    /// How many requests a rate limit refused.
    pub(crate) fn rate_limited_count(&self) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.rate_limited)
            .count()
    }

    /// The largest number of accepted requests within any window of length `window`.
    pub(crate) fn max_in_any_window(&self, window: Duration) -> usize {
        let times: Vec<Instant> = self.accepted().iter().map(|r| r.at).collect();
        max_in_window(&times, window)
    }

    /// Makes the next requests misbehave: `mock.misbehave(Misbehave::Status(500), 2)` or
    /// `mock.misbehave(Misbehave::Hang, Times::UntilReset)`. Replaces any earlier setting.
    pub(crate) fn misbehave(&self, misbehave: Misbehave, times: impl Into<Times>) {
        let times = times.into();
        *lock(&self.shared.misbehave) = match times {
            Times::Count(0) | Times::After { count: 0, .. } => None,
            _ => Some((misbehave, times)),
        };
    }

    /// Back to normal behaviour.
    pub(crate) fn reset_misbehave(&self) {
        *lock(&self.shared.misbehave) = None;
    }

    /// Forgets the requests logged so far (rate-limit state is the provider's and stays).
    pub(crate) fn clear_log(&self) {
        lock(&self.shared.log).clear();
    }

    /// Waits until at least `count` requests arrived; panics after `timeout`.
    pub(crate) fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<Recorded> {
        super::poll_until(
            timeout,
            &format!("{count} requests to {}", self.name),
            || {
                let requests = self.requests();
                if requests.len() >= count {
                    Ok(requests)
                } else {
                    Err(format!("{} so far", requests.len()))
                }
            },
        )
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        received_at: Utc::now(),
    };
    shared
        .arrivals
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let misbehave = shared.next_misbehave();
    if let Some(Misbehave::Delay(delay)) = &misbehave {
        tokio::time::sleep(*delay).await;
    }
    let handled = match &misbehave {
        Some(Misbehave::Status(status)) => Handled {
            reply: Reply::text(
                *status,
                "text/html",
                &format!("<html><body><h1>{status}</h1>mock gateway error</body></html>"),
            ),
            accepted: false,
            code: None,
            rate_limited: false,
        },
        Some(Misbehave::ErrCode(code, message)) => {
            Handled::rejected(code, shared.service.error_reply(code, message))
        }
        Some(Misbehave::NonJson) => Handled {
            reply: Reply::text(
                200,
                "text/html",
                "<html><body>502 Bad Gateway (mock)</body></html>",
            ),
            accepted: false,
            code: None,
            rate_limited: false,
        },
        Some(Misbehave::Hang) => {
            shared.record(incoming, None, misbehave);
            return std::future::pending::<Response>().await;
        }
        None | Some(Misbehave::Delay(_)) => shared.service.handle(&incoming, Instant::now()),
    };
    let reply = handled.reply.clone();
    shared.record(incoming, Some(&handled), misbehave);
    to_response(&reply)
}

fn to_response(reply: &Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(reply.body.clone()));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(&reply.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The largest number of `times` (in any order) that fall within one window of length
/// `window`; two times exactly `window` apart are in different windows.
pub(crate) fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut start = 0;
    for (end, &t) in sorted.iter().enumerate() {
        while sorted
            .get(start)
            .is_some_and(|&first| t.duration_since(first) >= window)
        {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// One rate limit: at most `budget` messages per target in any rolling `window`; a breach
/// is answered with `code`/`message` and, when `block` is non-zero, blocks the target for
/// that long (every request refused, whatever the window says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateRule {
    pub(crate) budget: usize,
    pub(crate) window: Duration,
    pub(crate) block: Duration,
    pub(crate) code: String,
    pub(crate) message: String,
}

#[derive(Debug, Default)]
struct TargetLog {
    sent: VecDeque<Instant>,
    /// Blocked until this instant, by the rule with this index.
    blocked: Option<(Instant, usize)>,
}

/// Per-target rolling-window rate limiting with several tiers (minute, hour, day …).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rules: Vec<RateRule>,
    targets: HashMap<String, TargetLog>,
}

/// The end of a chat robot's handling: over budget → the robot's rate-limit code
/// (`fallback_code` when the rule names none); otherwise the send counts and is accepted.
/// `reply(errcode, errmsg)` shapes the robot's JSON answer.
pub(crate) fn admit_robot_message(
    limiter: &Mutex<RateLimiter>,
    target: &str,
    now: Instant,
    fallback_code: i64,
    reply: fn(i64, &str) -> Reply,
) -> Handled {
    let mut limiter = lock(limiter);
    if let Err(rule) = limiter.check(target, now) {
        let code: i64 = rule.code.parse().unwrap_or(fallback_code);
        return Handled::rate_limited(code, reply(code, &rule.message));
    }
    limiter.record(target, now);
    Handled::accepted(reply(0, "ok"))
}

impl RateLimiter {
    pub(crate) fn new(rules: Vec<RateRule>) -> RateLimiter {
        RateLimiter {
            rules,
            targets: HashMap::new(),
        }
    }

    pub(crate) fn rules(&self) -> &[RateRule] {
        &self.rules
    }

    /// Replaces the rules and forgets all history and blocks.
    pub(crate) fn set_rules(&mut self, rules: Vec<RateRule>) {
        self.rules = rules;
        self.targets.clear();
    }

    /// Whether one more message to `target` at `now` is within every rule. A breach
    /// starts the rule's block. Nothing is recorded: call [`RateLimiter::record`] once the
    /// message is actually sent.
    pub(crate) fn check(&mut self, target: &str, now: Instant) -> Result<(), RateRule> {
        let log = self.targets.entry(target.to_owned()).or_default();
        if let Some((until, rule)) = log.blocked {
            if now < until {
                return Err(self.rules.get(rule).cloned().unwrap_or_else(|| RateRule {
                    budget: 0,
                    window: Duration::ZERO,
                    block: Duration::ZERO,
                    code: "blocked".to_owned(),
                    message: "blocked".to_owned(),
                }));
            }
            log.blocked = None;
        }
        let longest = self
            .rules
            .iter()
            .map(|r| r.window)
            .max()
            .unwrap_or_default();
        while log
            .sent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= longest)
        {
            log.sent.pop_front();
        }
        for (index, rule) in self.rules.iter().enumerate() {
            let in_window = log
                .sent
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < rule.window)
                .count();
            if in_window >= rule.budget {
                if !rule.block.is_zero() {
                    log.blocked = Some((now + rule.block, index));
                }
                return Err(rule.clone());
            }
        }
        Ok(())
    }

    /// Records one message sent to `target` at `now`.
    pub(crate) fn record(&mut self, target: &str, now: Instant) {
        self.targets
            .entry(target.to_owned())
            .or_default()
            .sent
            .push_back(now);
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must not hide the log).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SHA-256 of `data`, lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `msg` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~`, uppercase hex.
pub(crate) fn rfc3986(text: &str) -> String {
    super::http::percent_encode(text)
}

/// Decodes `%XX` escapes once (lossy UTF-8); `+` stays a `+`.
pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, then
/// `%XX` escapes are decoded once.
pub(crate) fn form_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

/// Splits `a=1&b=2` into decoded pairs (form rules); a name without `=` gets an empty
/// value, empty segments are skipped.
pub(crate) fn parse_form(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| match segment.split_once('=') {
            Some((name, value)) => (form_decode(name), form_decode(value)),
            None => (form_decode(segment), String::new()),
        })
        .collect()
}

/// A request id in the providers' UUID style, uppercase.
pub(crate) fn request_id() -> String {
    let hex: String = (0..32)
        .map(|_| char::from(b"0123456789ABCDEF"[fastrand::usize(..16)]))
        .collect();
    let part = |range: std::ops::Range<usize>| -> String {
        hex.chars().skip(range.start).take(range.len()).collect()
    };
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(budget: usize, window_s: u64, block_s: u64) -> RateRule {
        RateRule {
            budget,
            window: Duration::from_secs(window_s),
            block: Duration::from_secs(block_s),
            code: "limited".to_owned(),
            message: String::new(),
        }
    }

    #[test]
    fn rolling_window_counts_only_recent_sends() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut limiter = RateLimiter::new(vec![rule(2, 60, 0)]);
        for s in [0, 10] {
            assert!(limiter.check("a", at(s)).is_ok());
            limiter.record("a", at(s));
        }
        assert!(limiter.check("a", at(59)).is_err());
        assert!(
            limiter.check("b", at(59)).is_ok(),
            "targets are independent"
        );
        // The send at 0 leaves the window at 60.
        assert!(limiter.check("a", at(60)).is_ok());
    }

    #[test]
    fn a_breach_blocks_for_the_block_duration() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut limiter = RateLimiter::new(vec![rule(1, 60, 600)]);
        limiter.record("a", at(0));
        assert!(limiter.check("a", at(1)).is_err());
        // The window is long gone, the block is not.
        assert!(limiter.check("a", at(120)).is_err());
        assert!(limiter.check("a", at(601)).is_ok());
    }

    #[test]
    fn tiers_report_the_rule_that_tripped() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut minute = rule(1, 60, 0);
        minute.code = "minute".to_owned();
        let mut hour = rule(2, 3600, 0);
        hour.code = "hour".to_owned();
        let mut limiter = RateLimiter::new(vec![minute, hour]);
        limiter.record("a", at(0));
        assert_eq!(
            limiter.check("a", at(30)).map_err(|r| r.code),
            Err("minute".into())
        );
        limiter.record("a", at(70));
        assert_eq!(
            limiter.check("a", at(140)).map_err(|r| r.code),
            Err("hour".into())
        );
    }

    #[test]
    fn max_in_window_slides() {
        let t0 = Instant::now();
        let times: Vec<Instant> = [0, 1, 2, 60, 61, 130]
            .iter()
            .map(|&s| t0 + Duration::from_secs(s))
            .collect();
        assert_eq!(max_in_window(&times, Duration::from_secs(60)), 3);
        assert_eq!(max_in_window(&times, Duration::from_secs(61)), 4);
        assert_eq!(max_in_window(&times, Duration::from_secs(1)), 1);
        assert_eq!(max_in_window(&[], Duration::from_secs(1)), 0);
    }

    #[test]
    fn form_decoding_is_single_and_plus_is_space() {
        assert_eq!(form_decode("a%2Bb+c"), "a+b c");
        assert_eq!(form_decode("%252B"), "%2B");
        assert_eq!(
            parse_form("x=1&&y&z=%E5%91%8A"),
            vec![
                ("x".to_owned(), "1".to_owned()),
                ("y".to_owned(), String::new()),
                ("z".to_owned(), "告".to_owned())
            ]
        );
        assert_eq!(rfc3986("a b*~/"), "a%20b%2A~%2F");
    }

    #[test]
    fn crypto_known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
