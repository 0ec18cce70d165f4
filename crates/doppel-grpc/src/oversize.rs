//! Oversize messages answer RESOURCE_EXHAUSTED, gRPC's code for a size limit, instead of
//! the OUT_OF_RANGE tonic's codec reports ("decoded/encoded message length too large").
//! The status can arrive in the response headers (trailers-only answers) or in the
//! trailers of a stream, so both are rewritten.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tonic::{Code, Status};
use tower::{Layer, Service};

/// Rewrites tonic's size-limit OUT_OF_RANGE into RESOURCE_EXHAUSTED.
#[derive(Clone, Copy, Debug, Default)]
pub struct OversizeLayer;

impl<S> Layer<S> for OversizeLayer {
    type Service = OversizeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        OversizeService { inner }
    }
}

/// The service produced by [`OversizeLayer`].
#[derive(Clone, Debug)]
pub struct OversizeService<S> {
    inner: S,
}

/// Rewrites `headers` in place when they carry a size-limit OUT_OF_RANGE.
fn rewrite(headers: &mut HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let too_large =
        status.code() == Code::OutOfRange && status.message().contains("message length too large");
    if !too_large {
        return;
    }
    let message = status
        .message()
        .trim_start_matches("Error, ")
        .replace("length too large", "too large");
    let replacement = Status::resource_exhausted(message);
    headers.remove("grpc-status");
    headers.remove("grpc-message");
    if replacement.add_header(headers).is_err() {
        tracing::warn!("could not rewrite an oversize-message status");
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for OversizeService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<OversizeBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut response = call.await?;
            rewrite(response.headers_mut());
            Ok(response.map(|inner| OversizeBody {
                inner: Box::pin(inner),
            }))
        })
    }
}

/// A response body whose trailers are rewritten like the headers.
pub struct OversizeBody<B> {
    inner: Pin<Box<B>>,
}

impl<B: Default> Default for OversizeBody<B> {
    fn default() -> Self {
        Self {
            inner: Box::pin(B::default()),
        }
    }
}

impl<B: Body> Body for OversizeBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = polled {
            let frame = match frame.into_trailers() {
                Ok(mut trailers) => {
                    rewrite(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            };
            return Poll::Ready(Some(Ok(frame)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_size_limit_status_is_rewritten() {
        let mut headers = HeaderMap::new();
        Status::out_of_range(
            "Error, decoded message length too large: found 20000000 bytes, the limit is: 16777216 bytes",
        )
        .add_header(&mut headers)
        .expect("header");
        rewrite(&mut headers);
        let status = Status::from_header_map(&headers).expect("a status");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status
                .message()
                .starts_with("decoded message too large: found 20000000")
        );

        let mut other = HeaderMap::new();
        Status::out_of_range("page beyond the end")
            .add_header(&mut other)
            .expect("header");
        rewrite(&mut other);
        let status = Status::from_header_map(&other).expect("a status");
        assert_eq!(status.code(), Code::OutOfRange);
    }
}
