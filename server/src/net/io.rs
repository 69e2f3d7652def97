//! The socket as hyper sees it, with one job: hyper answers a request it cannot parse (a request
//! line or headers over the limit: `431`; an over-long URI: `414`; malformed: `400`) on its own,
//! with an empty body, before any of our code runs. [`JsonErrors`] recognises those automatic
//! answers as they are written and sends the documented JSON error in their place, with a request
//! id that the server log names too.
//!
//! hyper's automatic answer is the only response on a connection that lacks the
//! `Content-Security-Policy` header every response of the app carries, and it is a bare head
//! (`content-length: 0`) with one of those three statuses; nothing else matches.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::metrics::Metrics;
use crate::observe::new_request_id;

/// A complete `HTTP/1.1` error response with the JSON body of `docs/api.md`, closing the
/// connection (for answers written outside the router).
pub fn canned_response(status: u16, code: &str, message: &str, request_id: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "error": {"code": code, "message": message, "request_id": request_id}
    })
    .to_string();
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nx-request-id: {request_id}\r\n",
        body.len()
    );
    for (name, value) in crate::web::SECURITY_HEADERS {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if status == 503 {
        out.push_str("retry-after: 1\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// The status of hyper's own answer to an unparsable request, if `buf` starts with one.
fn automatic_error(buf: &[u8]) -> Option<u16> {
    let status = buf.strip_prefix(b"HTTP/1.1 ")?.get(..3)?;
    let status: u16 = std::str::from_utf8(status).ok()?.parse().ok()?;
    if !matches!(status, 400 | 414 | 431) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    (!head.contains("\r\ncontent-security-policy:") && head.contains("\r\ncontent-length: 0"))
        .then_some(status)
}

fn replacement(status: u16) -> (&'static str, &'static str) {
    match status {
        431 => (
            "headers_too_large",
            "the request line and headers are larger than this server accepts (64 KiB, 100 \
             fields)",
        ),
        414 => (
            "uri_too_long",
            "the request URI is longer than this server accepts",
        ),
        _ => ("bad_request", "the request is not valid HTTP/1.1"),
    }
}

pin_project! {
    /// A connection's socket, replacing hyper's empty automatic error answers with JSON.
    pub struct JsonErrors<S> {
        #[pin]
        inner: S,
        pending: Vec<u8>,
        sent: usize,
        peer: IpAddr,
        metrics: Arc<Metrics>,
    }
}

impl<S> JsonErrors<S> {
    /// Wraps the socket of a connection from `peer`.
    pub fn new(inner: S, peer: IpAddr, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            sent: 0,
            peer,
            metrics,
        }
    }
}

impl<S: AsyncWrite> JsonErrors<S> {
    /// Writes out a pending replacement; `Ready(Ok)` once nothing is pending.
    fn poll_pending(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        while *this.sent < this.pending.len() {
            let n = ready!(
                this.inner
                    .as_mut()
                    .poll_write(cx, &this.pending[*this.sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *this.sent += n;
        }
        this.pending.clear();
        *this.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Replaces an automatic answer of `status` that was `len` bytes long.
    fn replace(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: u16,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let this = self.as_mut().project();
        let id = new_request_id();
        let (code, message) = replacement(status);
        tracing::info!(request_id = %id, peer = %this.peer, status, code, "request refused by the HTTP parser");
        this.metrics.parse_error(status);
        *this.pending = canned_response(status, code, message, &id);
        *this.sent = 0;
        // Written out now if the socket takes it, else by the flush hyper does next.
        match self.poll_pending(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(len)),
        }
    }
}

impl<S: AsyncRead> AsyncRead for JsonErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<S: AsyncWrite> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.as_mut().poll_pending(cx))?;
        if let Some(status) = automatic_error(buf) {
            return self.replace(cx, status, buf.len());
        }
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.as_mut().poll_pending(cx))?;
        let mut nonempty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(first), None) = (nonempty.next(), nonempty.next())
            && let Some(status) = automatic_error(first)
        {
            return self.replace(cx, status, first.len());
        }
        self.project().inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_pending(cx))?;
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_pending(cx))?;
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_answers_match() {
        let hyper431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(automatic_error(hyper431), Some(431));
        let hyper400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(automatic_error(hyper400), Some(400));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\ncontent-security-policy: x\r\n\r\n";
        assert_eq!(automatic_error(ours), None);
        assert_eq!(
            automatic_error(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"),
            None
        );
        assert_eq!(
            automatic_error(b"HTTP/1.1 400 Bad"),
            None,
            "a head cut short"
        );
        assert_eq!(automatic_error(b"0008NAK\n"), None);
    }

    #[test]
    fn canned_responses_are_documented_json() {
        let r = String::from_utf8(canned_response(431, "headers_too_large", "m", "abc"))
            .unwrap_or_default();
        let (head, body) = r.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(v["error"]["code"], "headers_too_large");
        assert_eq!(v["error"]["request_id"], "abc");
    }
}
