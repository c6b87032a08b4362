//! Bodies the proxy forwards: boxed so requests and synthesized answers share one type, and
//! observed on the way through — bytes counted, a bounded prefix copied for inspection, the
//! gRPC status read from trailers — with a callback when the body ends or is dropped.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// What passed through an observed body.
#[derive(Debug, Default)]
pub struct Summary {
    pub bytes: u64,
    /// The first bytes, up to the copy limit (empty when not copying).
    pub copy: Bytes,
    /// The body was longer than the copy.
    pub truncated: bool,
    pub grpc_status: Option<u32>,
    /// The body failed or was abandoned before its end.
    pub error: Option<String>,
}

type OnEnd = Box<dyn FnOnce(Summary) + Send>;

pub struct Observed<B> {
    inner: B,
    copy_limit: usize,
    copy: BytesMut,
    summary: Summary,
    on_end: Option<OnEnd>,
}

impl<B> Observed<B> {
    /// Observes `inner`, copying up to `copy_limit` bytes; `on_end` runs exactly once.
    pub fn new(inner: B, copy_limit: usize, on_end: impl FnOnce(Summary) + Send + 'static) -> Self {
        Observed {
            inner,
            copy_limit,
            copy: BytesMut::new(),
            summary: Summary::default(),
            on_end: Some(Box::new(on_end)),
        }
    }

    fn finish(&mut self, error: Option<String>) {
        if let Some(on_end) = self.on_end.take() {
            let mut summary = std::mem::take(&mut self.summary);
            summary.copy = std::mem::take(&mut self.copy).freeze();
            summary.error = error;
            on_end(summary);
        }
    }
}

impl<B> Body for Observed<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.summary.bytes += data.len() as u64;
                    let room = this.copy_limit - this.copy.len();
                    if room > 0 {
                        this.copy.extend_from_slice(&data[..data.len().min(room)]);
                    }
                    if data.len() > room {
                        this.summary.truncated = true;
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.summary.grpc_status = grpc_status(trailers);
                }
                if this.inner.is_end_stream() {
                    this.finish(None);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                this.finish(Some(e.to_string()));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Observed<B> {
    fn drop(&mut self) {
        if self.on_end.is_some() {
            // Hyper need not poll a body it knows is empty; any other early drop is an abort.
            let ended = self.summary.bytes == 0 || self.summary.error.is_some();
            self.finish((!ended).then(|| "the body was abandoned before its end".to_string()));
        }
    }
}

/// `grpc-status` from a header map (trailers, or the headers of a trailers-only response).
pub fn grpc_status(headers: &hyper::HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Reads a whole body, up to `limit` bytes.
pub async fn collect_limited<B>(body: B, limit: usize) -> Result<Bytes, CollectError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(CollectError::TooLarge)
        }
        Err(e) => Err(CollectError::Failed(e.to_string())),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CollectError {
    TooLarge,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A body that yields each part as its own data frame.
    struct Chunks(std::collections::VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunks(parts: &[&'static [u8]]) -> Chunks {
        Chunks(parts.iter().map(|p| Bytes::from_static(p)).collect())
    }

    #[tokio::test]
    async fn counts_copies_a_bounded_prefix_and_reports_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let body = Observed::new(chunks(&[b"hello ", b"world"]), 8, move |sum| {
            s.lock().unwrap().push(sum)
        });
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"hello world");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].bytes, &seen[0].copy[..]), (11, &b"hello wo"[..]));
        assert!(seen[0].truncated && seen[0].error.is_none());
    }

    #[tokio::test]
    async fn an_abandoned_body_reports_an_error() {
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        let mut body = Observed::new(chunks(&[b"a", b"b"]), 0, move |sum| {
            *s.lock().unwrap() = Some(sum)
        });
        let _ = body.frame().await;
        drop(body);
        let sum = seen.lock().unwrap().take().unwrap();
        assert_eq!(sum.bytes, 1);
        assert!(sum.error.unwrap().contains("abandoned"));
    }

    #[tokio::test]
    async fn collect_stops_at_the_limit() {
        assert_eq!(
            collect_limited(chunks(&[b"12345", b"678"]), 6).await,
            Err(CollectError::TooLarge)
        );
        assert_eq!(&collect_limited(full("abc"), 6).await.unwrap()[..], b"abc");
    }
}
