//! The HTTP exchange every HTTP channel kind uses: one client per channel (with its
//! timeout and proxy), a signed request sent as it was signed, the reply read whole, and
//! transport failures classified. The one place lookout's requests leave the process.
//!
//! **Invariant:** secrets never reach logs: transport errors are reported without their
//! URL (robot URLs carry tokens), and request `Debug` output omits header values.

use super::Delivery;
use super::outcome::Outcome;
use super::sign::SignedRequest;

/// rustls needs a process-wide crypto provider; ring keeps the build free of cmake.
pub fn install_crypto_provider() {
    // An error means one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for one channel: its timeout for connecting and for the whole exchange, its
/// proxy (and no proxy from the environment otherwise).
pub fn client(delivery: &Delivery) -> Result<reqwest::Client, String> {
    let error = |e: reqwest::Error| format!("HTTP client: {}", e.without_url());
    let mut builder = reqwest::Client::builder()
        .timeout(delivery.timeout)
        .connect_timeout(delivery.timeout)
        .user_agent(concat!("lookout/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(proxy) = &delivery.proxy {
        builder = builder.proxy(reqwest::Proxy::all(proxy.as_str()).map_err(error)?);
    }
    builder.build().map_err(error)
}

/// A provider's reply classifier: `classify(status, body)`.
pub type Classify = fn(u16, &[u8]) -> Outcome;

/// POSTs `json` to `url` and classifies the reply (a transport failure is transient).
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    json: &serde_json::Value,
    classify: Classify,
) -> Outcome {
    match exchange(client.post(url).json(json)).await {
        Ok((status, body)) => classify(status, &body),
        Err(outcome) => outcome,
    }
}

/// Sends `signed` exactly as signed and classifies the reply.
pub async fn send_signed(
    client: &reqwest::Client,
    signed: SignedRequest,
    classify: Classify,
) -> Outcome {
    match exchange(signed_request(client, signed)).await {
        Ok((status, body)) => classify(status, &body),
        Err(outcome) => outcome,
    }
}

fn signed_request(client: &reqwest::Client, signed: SignedRequest) -> reqwest::RequestBuilder {
    let mut request = client.post(&signed.url);
    for (name, value) in &signed.headers {
        // reqwest sets Host from the URL; sending it twice would be wrong.
        if !name.eq_ignore_ascii_case("host") {
            request = request.header(name, value);
        }
    }
    request.body(signed.body)
}

/// Sends and reads the reply; transport failures are transient, reported without URL.
async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Outcome> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(transport)?;
    Ok((status, body.to_vec()))
}

fn transport(error: reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    Outcome::Transient(format!("{kind}: {}", cause_chain(&error.without_url())))
}

/// "error sending request: client error (Connect): tcp connect error: Connection refused
/// (os error 111)": the error and its sources, each said once, with any URL in them
/// replaced by `<url>` (robot URLs carry their token).
pub(super) fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let text = redact_urls(&current.to_string());
        // A wrapper often repeats its source's text; keep what is new.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = current.source();
    }
    parts.join(": ")
}

fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let bare = word.trim_start_matches(['(', '"', '\'', '<']);
            if bare.starts_with("http://") || bare.starts_with("https://") {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn the_cause_chain_is_joined_without_repeats_or_urls() {
        let error = Layer(
            "error sending request for url (https://oapi.dingtalk.com/robot/send?access_token=secret)",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "tcp connect error: Connection refused (os error 111)",
                    Some(Box::new(Layer("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            cause_chain(&error),
            "error sending request for url <url>: client error (Connect): \
             tcp connect error: Connection refused (os error 111)"
        );
    }
}
