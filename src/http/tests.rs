//! Router tests: every route through `oneshot`, without a socket.

use std::io::Read as _;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::router;
use crate::config::{self, Sources};
use crate::state::{AppState, Overrides};

fn state_from(yaml: &str) -> Arc<AppState> {
    let config = config::parse_str("test.yaml", yaml, &Sources::system()).unwrap();
    let state = AppState::new(
        config,
        Overrides::default(),
        crate::shutdown::Shutdown::new(),
    )
    .unwrap();
    state.set_ready(true);
    state
}

async fn call(
    state: &Arc<AppState>,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(Arc::clone(state)).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_negotiates_openmetrics_and_text() {
    let state = state_from("host: { enabled: false }\n");
    let om = Request::get("/metrics")
        .header(
            header::ACCEPT,
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&state, om).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = String::from_utf8(body).unwrap();
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE lookout_build info"), "{body}");

    let (status, headers, body) = call(&state, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = String::from_utf8(body).unwrap();
    assert!(!body.contains("# EOF"));
    assert!(
        body.contains("# TYPE lookout_build_info gauge\nlookout_build_info{"),
        "{body}"
    );
    assert!(body.contains("process_start_time_seconds"), "{body}");
}

#[tokio::test]
async fn metrics_are_gzipped_on_request() {
    let state = state_from("host: { enabled: false }\n");
    let request = Request::get("/metrics")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = call(&state, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("lookout_build_info"), "{text}");
}

#[tokio::test]
async fn host_metrics_are_served_when_enabled() {
    let state = state_from("");
    let (status, _, body) = call(&state, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    for name in [
        "node_cpu_seconds_total{",
        "node_memory_MemTotal_bytes ",
        "node_load1 ",
        "lookout_collector_success{collector=\"cpu\"} 1",
    ] {
        assert!(body.contains(name), "missing {name}");
    }
}

#[tokio::test]
async fn health_ready_landing_and_unknown_routes() {
    let state = state_from("host: { enabled: false }\n");
    assert_eq!(call(&state, get("/-/healthy")).await.0, StatusCode::OK);
    assert_eq!(call(&state, get("/-/ready")).await.0, StatusCode::OK);
    state.set_ready(false);
    assert_eq!(
        call(&state, get("/-/ready")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, headers, body) = call(&state, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8(body).unwrap().contains("/metrics"));
    assert_eq!(call(&state, get("/nope")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn secrets_never_reach_pages_or_metrics() {
    let state = state_from(
        "host: { enabled: false }\nweb: { auth: { bearer_token: s3cr3t-token } }\nchannels:\n  ops: { type: dingtalk, url: 'https://x/robot/send?access_token=tok-abc', secret: SECxyz }\n",
    );
    for uri in ["/", "/metrics"] {
        let body = String::from_utf8(call(&state, get(uri)).await.2).unwrap();
        for secret in ["s3cr3t-token", "tok-abc", "SECxyz"] {
            assert!(!body.contains(secret), "{secret} leaked on {uri}");
        }
    }
}

#[tokio::test]
async fn reload_needs_auth_and_keeps_the_old_config_when_the_new_one_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lookout.yaml");
    std::fs::write(
        &path,
        "host: { enabled: false }\ntimezone: Asia/Shanghai\nweb: { auth: { bearer_token: t } }\n",
    )
    .unwrap();
    let config = config::load(&path, &Sources::system()).unwrap();
    let state = AppState::new(
        config,
        Overrides::default(),
        crate::shutdown::Shutdown::new(),
    )
    .unwrap();
    let reload = |token: Option<&str>| {
        let mut request = Request::post("/-/reload");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(Body::empty()).unwrap()
    };
    assert_eq!(call(&state, reload(None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&state, reload(Some("wrong"))).await.0,
        StatusCode::UNAUTHORIZED
    );

    std::fs::write(
        &path,
        "host: { enabled: false }\ntimezone: Europe/Nowhere\nweb: { auth: { bearer_token: t } }\n",
    )
    .unwrap();
    let (status, _, body) = call(&state, reload(Some("t"))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains("lookout.yaml:2:1: timezone: unknown time zone `Europe/Nowhere`"),
        "{body}"
    );
    assert_eq!(state.config().timezone, chrono_tz::Asia::Shanghai);
    let metrics = String::from_utf8(call(&state, get("/metrics")).await.2).unwrap();
    assert!(
        metrics.contains("lookout_config_last_reload_successful 0"),
        "{metrics}"
    );

    std::fs::write(
        &path,
        "host: { enabled: false }\ntimezone: UTC\nweb: { auth: { bearer_token: t } }\n",
    )
    .unwrap();
    assert_eq!(call(&state, reload(Some("t"))).await.0, StatusCode::OK);
    assert_eq!(state.config().timezone, chrono_tz::UTC);
}

mod webhook {
    use super::*;

    const PAYLOAD: &str = include_str!("../../examples/payloads/firing.json");

    fn relay_state(dir: &std::path::Path, extra: &str) -> Arc<AppState> {
        state_from(&format!(
            "host: {{ enabled: false }}\nstate_dir: '{}'\nweb: {{ auth: {{ bearer_token: tok }}, max_body_bytes: 64KiB }}\nchannels:\n  console: {{ type: console }}\nreceivers:\n  critical: {{ channels: [console] }}\n{extra}",
            dir.display()
        ))
    }

    fn post(
        receiver: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<Body>,
    ) -> Request<Body> {
        let mut request = Request::post(format!("/alertmanager/{receiver}"))
            .header(header::CONTENT_TYPE, content_type);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        request.body(body.into()).unwrap()
    }

    async fn wait_ready(state: &Arc<AppState>) {
        for _ in 0..100 {
            if state.is_ready() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("outbox never opened");
    }

    fn json(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    #[tokio::test]
    async fn every_refusal_has_its_status_and_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let state = relay_state(dir.path(), "");
        wait_ready(&state).await;
        let cases = [
            (
                post("critical", None, "application/json", PAYLOAD),
                StatusCode::UNAUTHORIZED,
                "",
            ),
            (
                post("critical", Some("bad"), "application/json", PAYLOAD),
                StatusCode::UNAUTHORIZED,
                "",
            ),
            (
                post("nope", Some("tok"), "application/json", PAYLOAD),
                StatusCode::NOT_FOUND,
                "unknown receiver `nope`",
            ),
            (
                post("critical", Some("tok"), "text/plain", PAYLOAD),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "application/json",
            ),
            (
                post("critical", Some("tok"), "application/json", "{\"status\":"),
                StatusCode::BAD_REQUEST,
                "invalid JSON at line 1",
            ),
            (
                post(
                    "critical",
                    Some("tok"),
                    "application/json",
                    r#"{"status":"firing","alerts":[{"status":"firing"}]}"#,
                ),
                StatusCode::BAD_REQUEST,
                "missing field `startsAt`",
            ),
            (
                post(
                    "critical",
                    Some("tok"),
                    "application/json",
                    vec![b' '; 70 * 1024],
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
                "max_body_bytes",
            ),
        ];
        for (request, status, reason) in cases {
            let (got, _, body) = call(&state, request).await;
            assert_eq!(got, status, "{}", String::from_utf8_lossy(&body));
            if !reason.is_empty() {
                let error = json(&body)["error"].as_str().unwrap().to_owned();
                assert!(error.contains(reason), "{error}");
            }
        }
        let metrics = String::from_utf8(call(&state, get("/metrics")).await.2).unwrap();
        assert!(
            metrics
                .contains("lookout_webhook_requests_total{receiver=\"_unknown\",code=\"404\"} 1"),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn accepted_once_then_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let state = relay_state(dir.path(), "");
        wait_ready(&state).await;
        let (status, _, body) = call(
            &state,
            post(
                "critical",
                Some("tok"),
                "application/json; charset=utf-8",
                PAYLOAD,
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["status"], "accepted");
        let (status, _, body) = call(
            &state,
            post("critical", Some("tok"), "application/json", PAYLOAD),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json(&body)["status"], "duplicate");
    }

    #[tokio::test]
    async fn an_unusable_state_dir_answers_503_and_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let state = relay_state(&blocker.join("state"), "");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!state.is_ready());
        let (status, _, body) = call(
            &state,
            post("critical", Some("tok"), "application/json", PAYLOAD),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            json(&body)["error"]
                .as_str()
                .unwrap()
                .contains("outbox unavailable")
        );
        assert_eq!(
            call(&state, get("/-/ready")).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
