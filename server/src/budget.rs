//! A memory budget for request bodies in flight.
//!
//! Each route caps its own body (`DefaultBodyLimit`), but a hundred clients each sending a body
//! just under the 64 MiB cap would still need gigabytes at once: handlers read JSON bodies whole.
//! So a request that declares a large body (or streams one without a length) first reserves its
//! size from one shared budget, and holds the reservation until its answer is built. When the
//! budget is spent, it waits a moment and is then refused with `503 busy` and `Retry-After`,
//! before a byte of its body is read. Small bodies (most API calls) never wait.
//!
//! Nobody without an account can hold any of it: a large body is reserved only for a request
//! whose token checks out (a bad or missing token is answered `401` before its body is read), and
//! the routes that take no token (prelogin, register, login) accept only small bodies. One client
//! address may hold at most its share (`--max-body-memory-per-client`, a quarter by default), and
//! a body that stops arriving is cut off by the connection layer's body timeout, which ends the
//! request and so frees its reservation.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::auth::{PresentedToken, authenticate};
use crate::error::AppError;
use crate::observe::ClientAddr;

/// Bodies up to this size pass without a reservation.
pub const SMALL_BODY: u64 = 256 * 1024;
/// The budget is counted in units of this many bytes.
const UNIT: u64 = 64 * 1024;

/// The shared budget.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: u32,
    per_client_units: u32,
    by_client: Arc<Mutex<HashMap<IpAddr, u32>>>,
    wait: Duration,
}

fn to_units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

/// One client's share of the budget, returned on drop.
struct ClientShare {
    by_client: Arc<Mutex<HashMap<IpAddr, u32>>>,
    ip: Option<IpAddr>,
    units: u32,
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let (Some(ip), Ok(mut map)) = (self.ip, self.by_client.lock()) else {
            return;
        };
        if let Some(n) = map.get_mut(&ip) {
            *n = n.saturating_sub(self.units);
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

impl BodyBudget {
    /// A budget of `bytes` (at least one unit) in flight, at most `per_client` bytes of it for
    /// one client address; a request waits up to `wait` for room.
    pub fn new(bytes: u64, per_client: u64, wait: Duration) -> Self {
        let total_units = to_units(bytes).clamp(1, Semaphore::MAX_PERMITS as u32);
        Self {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            per_client_units: to_units(per_client).clamp(1, total_units),
            by_client: Arc::new(Mutex::new(HashMap::new())),
            wait,
        }
    }

    /// The budget in bytes.
    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_units) * UNIT
    }

    /// Bytes reserved now.
    pub fn in_use_bytes(&self) -> u64 {
        let free = u32::try_from(self.units.available_permits()).unwrap_or(u32::MAX);
        u64::from(self.total_units.saturating_sub(free)) * UNIT
    }

    /// The size a request will hold: its declared length, or the route's limit when it streams a
    /// body without one. `None` for a request that carries no body worth counting.
    fn claimed(req: &Request, route_limit: u64) -> Option<u64> {
        let headers = req.headers();
        let size = match declared(req) {
            Some(n) => n.min(route_limit),
            None if headers.contains_key(header::TRANSFER_ENCODING) => route_limit,
            None => 0,
        };
        (size > SMALL_BODY).then_some(size)
    }

    /// Takes this client's share first (refused at once when it is spent), then room in the
    /// budget (waiting up to `wait`).
    async fn reserve(
        &self,
        ip: Option<IpAddr>,
        units: u32,
    ) -> Option<(ClientShare, OwnedSemaphorePermit)> {
        let units = units.min(self.total_units);
        if let Some(ip) = ip {
            let mut map = self.by_client.lock().ok()?;
            let held = map.get(&ip).copied().unwrap_or(0);
            // A client with nothing in flight may always send one body (even one larger than
            // its share); beyond that, only within its share.
            if held > 0 && held.saturating_add(units) > self.per_client_units {
                return None;
            }
            map.insert(ip, held + units);
        }
        let share = ClientShare {
            by_client: self.by_client.clone(),
            ip,
            units,
        };
        let permit = tokio::time::timeout(self.wait, self.units.clone().acquire_many_owned(units))
            .await
            .ok()?
            .ok()?;
        Some((share, permit))
    }
}

/// The `Content-Length` a request declares.
fn declared(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// How a router's bodies are treated.
#[derive(Clone)]
pub struct RouteBodies {
    /// The app.
    pub state: AppState,
    /// The routes' body limit.
    pub limit: u64,
    /// git routes answer a missing token with a Basic-auth challenge.
    pub git: bool,
}

/// Middleware: refuses a declared body over the route's limit (`413`) before reading it; for a
/// large body, checks the token (`401`) and reserves the body's size for the whole request, or
/// answers `503 busy`.
pub async fn hold(State(rb): State<RouteBodies>, req: Request, next: Next) -> Response {
    if declared(&req).is_some_and(|n| n > rb.limit) {
        return AppError::TooLarge {
            limit: usize::try_from(rb.limit).unwrap_or(usize::MAX),
        }
        .into_response();
    }
    let Some(size) = BodyBudget::claimed(&req, rb.limit) else {
        return next.run(req).await;
    };
    let token = match PresentedToken::from_headers(req.headers()) {
        Ok(t) => t,
        Err(e) => return refuse(e, rb.git),
    };
    if let Err(e) = rb
        .state
        .blocking(move |st| authenticate(&st.db, token.as_ref()).map(drop))
        .await
    {
        return refuse(e, rb.git);
    }
    let ip = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let budget = &rb.state.budget;
    match budget.reserve(ip, to_units(size)).await {
        Some(held) => {
            let resp = next.run(req).await;
            drop(held);
            resp
        }
        None => {
            rb.state
                .metrics
                .busy
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                bytes = size,
                "request body refused: the upload budget (or this client's share) is spent"
            );
            AppError::Busy(budget.wait.as_secs().max(1)).into_response()
        }
    }
}

fn refuse(err: AppError, git: bool) -> Response {
    if git {
        crate::git::refuse(err)
    } else {
        err.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_client_holds_at_most_its_share() {
        let b = BodyBudget::new(4 * 1024 * 1024, 1024 * 1024, Duration::from_millis(50));
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let other: Option<IpAddr> = "10.0.0.2".parse().ok();
        let first = b.reserve(a, 16).await;
        assert!(first.is_some(), "1 MiB fits the share");
        assert!(b.reserve(a, 1).await.is_none(), "the share is spent");
        assert!(b.reserve(other, 16).await.is_some());
        assert_eq!(b.in_use_bytes(), 1024 * 1024, "the dropped one is back");
        drop(first);
        assert!(b.reserve(a, 16).await.is_some());
        assert_eq!(b.in_use_bytes(), 0);
    }
}
