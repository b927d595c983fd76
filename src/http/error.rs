//! HTTP errors, mapped to responses in one place. Bad input is answered with a plain
//! message naming the problem; internal errors are logged and answered without details.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("unauthorized")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    ReloadFailed(String),
    /// The client was too slow; answered with `Connection: close`.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A webhook refusal: answered as `{"error": message}` with `status`.
    #[error("{message}")]
    Webhook { status: StatusCode, message: String },
}

impl Error {
    pub fn webhook(status: StatusCode, message: String) -> Self {
        Error::Webhook { status, message }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::ReloadFailed(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Webhook { status, .. } => *status,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Error::Webhook { message, .. } = &self {
            return (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
        }
        let body = match &self {
            Error::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see lookout's log\n".to_owned()
            }
            other => format!("{other}\n"),
        };
        let mut response = (status, body).into_response();
        if matches!(self, Error::RequestTimeout(_)) {
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        if matches!(self, Error::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(
                    "Bearer realm=\"lookout\", Basic realm=\"lookout\"",
                ),
            );
        }
        response
    }
}

/// The fallback for unknown routes.
pub async fn not_found() -> Error {
    Error::NotFound
}
