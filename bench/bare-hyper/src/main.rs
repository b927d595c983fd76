//! The limit of this machine for `bench/host.sh`: a bare hyper server that answers every
//! request with the same pre-read bytes (and, when given, pre-compressed gzip bytes), so
//! lookout's `/metrics` throughput can be compared with pure HTTP serving.
//!
//! Usage: `bare-hyper FILE PORT [GZIP_FILE]`; `CONTENT_TYPE` overrides the default
//! `text/plain; version=0.0.4; charset=utf-8`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: bare-hyper FILE PORT [GZIP_FILE]";
const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What every response carries.
struct Payload {
    identity: Bytes,
    gzip: Option<Bytes>,
    content_type: HeaderValue,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or(USAGE)?;
    let port: u16 = args.next().ok_or(USAGE)?.parse()?;
    let gzip = args.next().map(std::fs::read).transpose()?.map(Bytes::from);
    let payload = Arc::new(Payload {
        identity: Bytes::from(std::fs::read(file)?),
        gzip,
        content_type: HeaderValue::from_str(
            &std::env::var("CONTENT_TYPE").unwrap_or_else(|_| TEXT_004.to_owned()),
        )?,
    });
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let payload = Arc::clone(&payload);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&payload, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client closing mid-response is normal at the end of a wrk run.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(payload: &Payload, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let wants_gzip = request
        .headers()
        .get(ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("gzip"));
    let builder = Response::builder().header(CONTENT_TYPE, payload.content_type.clone());
    let (builder, body) = match (&payload.gzip, wants_gzip) {
        (Some(gzip), true) => (builder.header(CONTENT_ENCODING, "gzip"), gzip.clone()),
        _ => (builder, payload.identity.clone()),
    };
    builder
        .body(Full::new(body))
        .expect("a constant status and valid header values make a valid response")
}
