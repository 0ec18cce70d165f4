//! A response body that holds its call's admission permit until the body is dropped
//! (after its last frame), so a streamed answer counts for as long as it streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

/// A body and the permit of the call that produces it.
pub struct PermitBody<B> {
    inner: Pin<Box<B>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<B> PermitBody<B> {
    /// `inner`, holding `permit` until dropped.
    pub fn new(inner: B, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner: Box::pin(inner),
            _permit: Some(permit),
        }
    }

    /// `inner` of a call no limit applies to (or a refusal).
    pub fn unlimited(inner: B) -> Self {
        Self {
            inner: Box::pin(inner),
            _permit: None,
        }
    }
}

impl<B: Default> Default for PermitBody<B> {
    fn default() -> Self {
        Self::unlimited(B::default())
    }
}

impl<B: Body> Body for PermitBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.inner.as_mut().poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
