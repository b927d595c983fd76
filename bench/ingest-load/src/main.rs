//! The load client of `bench/ingest.sh`: posts real Alertmanager v4 payloads to a webhook
//! over N keep-alive connections for D seconds and reports throughput and latency.
//!
//! Every request is a distinct notification: the `groupKey` and every alert's
//! `fingerprint` of the template payloads get a per-run, per-request suffix, so lookout's
//! dedupe never short-circuits a commit. Payload files are used in turn.
//!
//! ```text
//! ingest-load [--connections N] [--duration SECS] [--threads N] [--run ID] URL PAYLOAD.json...
//! ```
//!
//! Prints `key=value` lines on stdout: `requests`, `accepted` (200 with
//! `"status":"accepted"`), `duplicate` (200 with `"status":"duplicate"`), `non_200`,
//! `errors` (transport), `seconds`, `rps` (completed requests ÷ seconds), `accepted_per_s`,
//! `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`, and `first_failure` when something failed.
//! `--threads` is the client's runtime threads (default 1, like `wrk -t1`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

const USAGE: &str = "usage: ingest-load [--connections N] [--duration SECS] [--threads N] [--run ID] URL PAYLOAD.json...";
const MARK: &str = "@@REQUEST@@";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A payload split around the places where the request's unique id goes.
struct Template {
    pieces: Vec<String>,
}

impl Template {
    fn new(json: &str) -> Result<Self, Error> {
        let mut value: Value = serde_json::from_str(json)?;
        let object = value
            .as_object_mut()
            .ok_or("payload is not a JSON object")?;
        let group_key = object
            .get("groupKey")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        object.insert(
            "groupKey".into(),
            Value::String(format!("{group_key}:{{bench=\"{MARK}\"}}")),
        );
        let alerts = object
            .get_mut("alerts")
            .and_then(Value::as_array_mut)
            .ok_or("payload has no alerts array")?;
        for alert in alerts {
            let alert = alert.as_object_mut().ok_or("an alert is not an object")?;
            let fingerprint = alert
                .get("fingerprint")
                .and_then(Value::as_str)
                .unwrap_or("0")
                .to_owned();
            alert.insert(
                "fingerprint".into(),
                Value::String(format!("{fingerprint}-{MARK}")),
            );
        }
        let text = serde_json::to_string(&value)?;
        Ok(Self {
            pieces: text.split(MARK).map(str::to_owned).collect(),
        })
    }

    fn render(&self, id: &str) -> Bytes {
        Bytes::from(self.pieces.join(id))
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    accepted: u64,
    duplicate: u64,
    non_200: u64,
    errors: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.first_failure.is_none() {
            self.first_failure = Some(what);
        }
    }
}

struct Shared {
    uri: Uri,
    host: String,
    addr: String,
    templates: Vec<Template>,
    run: String,
    next: AtomicU64,
    deadline: Instant,
}

fn main() -> Result<(), Error> {
    let mut connections = 4usize;
    let mut duration = 10f64;
    let mut threads = 1usize;
    let mut run = SystemTime::now()
        .duration_since(UNIX_EPOCH)?
        .as_nanos()
        .to_string();
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connections" | "-c" => connections = args.next().ok_or(USAGE)?.parse()?,
            "--duration" | "-d" => duration = args.next().ok_or(USAGE)?.parse()?,
            "--threads" | "-t" => threads = args.next().ok_or(USAGE)?.parse()?,
            "--run" => run = args.next().ok_or(USAGE)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => positional.push(arg),
        }
    }
    if positional.len() < 2 || connections == 0 || threads == 0 {
        return Err(USAGE.into());
    }
    let uri: Uri = positional[0].parse()?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs".into());
    }
    let authority = uri.authority().ok_or("URL without host")?.clone();
    let templates = positional[1..]
        .iter()
        .map(|path| Template::new(&std::fs::read_to_string(path)?))
        .collect::<Result<Vec<_>, Error>>()?;

    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(async move {
        let started = Instant::now();
        let shared = Arc::new(Shared {
            host: authority.to_string(),
            addr: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            uri,
            templates,
            run,
            next: AtomicU64::new(0),
            deadline: started + Duration::from_secs_f64(duration),
        });
        let workers: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
            .collect();
        let mut total = Tally::default();
        for worker in workers {
            let tally = worker.await?;
            total.latencies_us.extend(tally.latencies_us);
            total.accepted += tally.accepted;
            total.duplicate += tally.duplicate;
            total.non_200 += tally.non_200;
            total.errors += tally.errors;
            if total.first_failure.is_none() {
                total.first_failure = tally.first_failure;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        report(&mut total, seconds);
        Ok::<_, Error>(())
    })
}

async fn worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    'connect: while Instant::now() < shared.deadline {
        let stream = match TcpStream::connect(&shared.addr).await {
            Ok(stream) => stream,
            Err(error) => {
                tally.errors += 1;
                tally.fail(format!("connect: {error}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(error) => {
                tally.errors += 1;
                tally.fail(format!("handshake: {error}"));
                continue;
            }
        };
        tokio::spawn(connection);
        while Instant::now() < shared.deadline {
            let n = shared.next.fetch_add(1, Ordering::Relaxed);
            let template = &shared.templates[(n % shared.templates.len() as u64) as usize];
            let body = template.render(&format!("{}-{n}", shared.run));
            let request = Request::builder()
                .method(Method::POST)
                .uri(shared.uri.path_and_query().map_or("/", |p| p.as_str()))
                .header(HOST, &shared.host)
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body))
                .expect("constant method, valid path and header values");
            let sent = Instant::now();
            let answer = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            }
            .await;
            let micros = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
            match answer {
                Ok((status, body)) => {
                    tally.latencies_us.push(micros);
                    let text = String::from_utf8_lossy(&body);
                    if status != 200 {
                        tally.non_200 += 1;
                        tally.fail(format!("HTTP {status}: {text}"));
                    } else if text.contains("\"duplicate\"") {
                        tally.duplicate += 1;
                    } else if text.contains("\"accepted\"") {
                        tally.accepted += 1;
                    } else {
                        tally.non_200 += 1;
                        tally.fail(format!("HTTP 200 without a status: {text}"));
                    }
                }
                Err(error) => {
                    tally.errors += 1;
                    tally.fail(format!("request: {error}"));
                    continue 'connect;
                }
            }
        }
    }
    tally
}

fn report(total: &mut Tally, seconds: f64) {
    let latencies = &mut total.latencies_us;
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        f64::from(latencies[rank - 1]) / 1000.0
    };
    let requests = latencies.len();
    println!("requests={requests}");
    println!("accepted={}", total.accepted);
    println!("duplicate={}", total.duplicate);
    println!("non_200={}", total.non_200);
    println!("errors={}", total.errors);
    println!("seconds={seconds:.3}");
    println!("rps={:.0}", requests as f64 / seconds);
    println!("accepted_per_s={:.0}", total.accepted as f64 / seconds);
    println!("p50_ms={:.2}", quantile(0.50));
    println!("p90_ms={:.2}", quantile(0.90));
    println!("p99_ms={:.2}", quantile(0.99));
    println!("max_ms={:.2}", quantile(1.0));
    if let Some(failure) = &total.first_failure {
        let failure: String = failure.chars().take(300).collect();
        println!("first_failure={}", failure.replace('\n', " "));
    }
}
