//! A cached exposition as a response body: reference-counted chunks (the SQL segment is
//! shared by every cached body that contains it), sent in order with an exact length.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

/// The chunks of one exposition; cloning copies only reference counts.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    chunks: Vec<Bytes>,
    /// The next chunk to send.
    next: usize,
}

impl Exposition {
    pub fn new(chunks: Vec<Bytes>) -> Self {
        let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        Self { chunks, next: 0 }
    }

    /// Bytes left to send.
    pub fn len(&self) -> usize {
        self.chunks.iter().skip(self.next).map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in one buffer (for tests and small callers).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.get(self.next..) {
            Some([one]) => one.clone(),
            Some(rest) => Bytes::from(rest.concat()),
            None => Bytes::new(),
        }
    }
}

impl http_body::Body for Exposition {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.get(self.next).cloned();
        self.next += 1;
        Poll::Ready(chunk.map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.chunks.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_every_chunk_in_order_with_its_length() {
        let body = Exposition::new(vec![
            Bytes::from_static(b"a 1\n"),
            Bytes::new(),
            Bytes::from_static(b"b 2\n"),
        ]);
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(8));
        assert_eq!(body.to_bytes(), Bytes::from_static(b"a 1\nb 2\n"));
        let collected = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .unwrap();
        assert_eq!(collected, Bytes::from_static(b"a 1\nb 2\n"));
    }
}
