//! Request and response bodies as the connection layer wraps them: a request body that goes
//! silent times out ([`TimeoutBody`]), and a response body keeps its connection counted as busy
//! until it has been sent ([`TrackedBody`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// Errors of a wrapped body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body sent nothing for longer than the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving (nothing for {0:?})")]
pub struct BodyTimedOut(pub Duration);

/// Whether `err` (or anything it wraps) is a [`BodyTimedOut`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

pin_project! {
    /// A body that fails with [`BodyTimedOut`] when no frame arrives for `gap` while someone is
    /// reading it. The clock starts at the first read, so a request waiting for its turn (the
    /// upload budget, `Expect: 100-continue`) is not cut off.
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Sleep,
        gap: Duration,
        started: bool,
    }
}

impl<B> TimeoutBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, gap: Duration) -> Self {
        Self {
            inner,
            sleep: tokio::time::sleep(gap),
            gap,
            started: false,
        }
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if !*this.started {
            *this.started = true;
            this.sleep.as_mut().reset(Instant::now() + *this.gap);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.sleep.as_mut().reset(Instant::now() + *this.gap);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(*this.gap))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Counts one request in flight on a connection until dropped.
pub struct BusyGuard(Arc<AtomicUsize>);

impl BusyGuard {
    /// Counts one more request on `busy`.
    pub fn new(busy: Arc<AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Self(busy)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project! {
    /// A response body that holds a [`BusyGuard`] until it is sent (or dropped).
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        guard: Option<BusyGuard>,
    }
}

impl<B> TrackedBody<B> {
    /// Wraps `inner`, releasing `guard` at its end.
    pub fn new(inner: B, guard: BusyGuard) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let out = this.inner.poll_frame(cx);
        if matches!(out, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard.take();
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
