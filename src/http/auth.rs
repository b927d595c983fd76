//! Inbound authentication compatible with Alertmanager's and Prometheus' `http_config`:
//! a bearer token or HTTP basic auth, compared in constant time.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use constant_time_eq::constant_time_eq;

use super::error::Error;
use crate::config::InboundAuth;

/// Checks the `Authorization` header against `auth`; no configured auth admits everyone.
pub fn check(auth: Option<&InboundAuth>, headers: &HeaderMap) -> Result<(), Error> {
    let Some(auth) = auth else {
        return Ok(());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(Error::Unauthorized)?;
    let (scheme, credentials) = presented.split_once(' ').ok_or(Error::Unauthorized)?;
    let ok = match auth {
        InboundAuth::Bearer(token) => {
            scheme.eq_ignore_ascii_case("bearer")
                && constant_time_eq(credentials.trim().as_bytes(), token.expose().as_bytes())
        }
        InboundAuth::Basic { username, password } => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials.trim())
                .unwrap_or_default();
            let expected = format!("{username}:{}", password.expose());
            scheme.eq_ignore_ascii_case("basic") && constant_time_eq(&decoded, expected.as_bytes())
        }
    };
    if ok { Ok(()) } else { Err(Error::Unauthorized) }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::Secret;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens() {
        let auth = InboundAuth::Bearer(Secret::new("t0ken"));
        assert!(check(Some(&auth), &headers("Bearer t0ken")).is_ok());
        assert!(check(Some(&auth), &headers("bearer t0ken")).is_ok());
        assert!(check(Some(&auth), &headers("Bearer t0ke")).is_err());
        assert!(check(Some(&auth), &headers("Basic t0ken")).is_err());
        assert!(check(Some(&auth), &HeaderMap::new()).is_err());
        assert!(check(None, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn basic_auth() {
        let auth = InboundAuth::Basic {
            username: "am".to_owned(),
            password: Secret::new("pw"),
        };
        let good = base64::engine::general_purpose::STANDARD.encode("am:pw");
        let bad = base64::engine::general_purpose::STANDARD.encode("am:px");
        assert!(check(Some(&auth), &headers(&format!("Basic {good}"))).is_ok());
        assert!(check(Some(&auth), &headers(&format!("Basic {bad}"))).is_err());
        assert!(check(Some(&auth), &headers("Basic !!!")).is_err());
    }
}
