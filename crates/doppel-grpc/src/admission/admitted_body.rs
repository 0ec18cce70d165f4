//! A response body that holds its call's admission permit until the body is dropped
//! (after its last frame), so a streamed answer counts for as long as it streams, and
//! whose trailers get the size-limit status rewritten (see `oversize`).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

/// A body and the permit of the call that produces it.
pub struct AdmittedBody<B> {
    inner: Pin<Box<B>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<B> AdmittedBody<B> {
    /// `inner`, holding `permit` (if any) until dropped.
    pub fn new(inner: B, permit: Option<OwnedSemaphorePermit>) -> Self {
        Self {
            inner: Box::pin(inner),
            _permit: permit,
        }
    }
}

impl<B: Default> Default for AdmittedBody<B> {
    fn default() -> Self {
        Self::new(B::default(), None)
    }
}

impl<B: Body> Body for AdmittedBody<B> {
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
                    super::oversize::rewrite(&mut trailers);
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
