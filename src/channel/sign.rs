//! The signing plumbing every signer shares: SHA-256, HMAC-SHA256, lowercase hex,
//! RFC 3986 percent-encoding, and the signed request handed to the HTTP layer.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

/// A request with every header and the body fixed, ready for the HTTP client. Nothing in
/// it may change after signing: the headers listed are exactly the ones that were signed
/// (plus `authorization`), and `url` carries the canonical query string verbatim.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: &'static str,
    /// The full URL, `https://host/` plus the canonical query string if there is one.
    pub url: String,
    /// Header names and values, `authorization` included. `host` is listed because it is
    /// signed; HTTP clients derive the same value from `url`.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes that were hashed into the signature.
    pub body: Vec<u8>,
}

impl SignedRequest {
    /// The value of a header, looked up case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Debug` leaves out the header values: `authorization` carries the access key id and a
/// signature that is valid for the next few minutes.
impl std::fmt::Debug for SignedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// RFC 3986 encoding: everything except the unreserved characters `A-Z a-z 0-9 - _ . ~`
/// is percent-encoded (so a space is `%20`, never `+`, and `~` stays as it is).
pub(crate) const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` as RFC 3986 asks, with uppercase hex digits.
/// Splits an endpoint given as `https://host[:port]`, `http://host:port` or a bare host
/// into the scheme and the `host[:port]` that is signed as the `Host` header.
pub fn split_endpoint(endpoint: &str) -> (&str, &str) {
    let endpoint = endpoint.trim();
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint));
    (scheme, rest.trim_end_matches('/'))
}

pub(crate) fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, RFC3986).to_string()
}

/// SHA-256 of `data`, lowercase hex.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `msg` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA256 of `msg` under `key`, lowercase hex.
pub(crate) fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    hex::encode(hmac_sha256(key, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// RFC 4231 test cases 1 and 2.
    #[test]
    fn hmac_sha256_rfc4231() {
        assert_eq!(
            hmac_sha256_hex(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rfc3986_encoding() {
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(
            percent_encode("a b*c+d/e=f&g:h'()!"),
            "a%20b%2Ac%2Bd%2Fe%3Df%26g%3Ah%27%28%29%21"
        );
        assert_eq!(percent_encode("告警"), "%E5%91%8A%E8%AD%A6");
        assert_eq!(percent_encode(r#"{"a":"1"}"#), "%7B%22a%22%3A%221%22%7D");
    }

    #[test]
    fn debug_hides_header_values() {
        let req = SignedRequest {
            method: "POST",
            url: "https://example.invalid/".into(),
            headers: vec![("authorization".into(), "SECRET-SIGNATURE".into())],
            body: Vec::new(),
        };
        let shown = format!("{req:?}");
        assert!(!shown.contains("SECRET-SIGNATURE"), "{shown}");
        assert!(shown.contains("authorization"));
        assert_eq!(req.header("Authorization"), Some("SECRET-SIGNATURE"));
    }
}
