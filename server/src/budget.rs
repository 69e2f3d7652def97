//! A memory budget for request bodies in flight.
//!
//! Each route caps its own body (`DefaultBodyLimit`), but a hundred clients each sending a body
//! just under the 64 MiB cap would still need gigabytes at once: handlers read JSON bodies whole.
//! So a request that declares a large body (or streams one without a length) first reserves its
//! size from one shared budget, and holds the reservation until its answer is built. When the
//! budget is spent, it waits a moment and is then refused with `503 busy` and `Retry-After`,
//! before a byte of its body is read. Small bodies (most API calls) never wait.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::AppError;

/// Bodies up to this size pass without a reservation.
pub const SMALL_BODY: u64 = 256 * 1024;
/// The budget is counted in units of this many bytes.
const UNIT: u64 = 64 * 1024;

/// The shared budget.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: u32,
    wait: Duration,
}

impl BodyBudget {
    /// A budget of `bytes` (at least one unit) in flight; a request waits up to `wait` for room.
    pub fn new(bytes: u64, wait: Duration) -> Self {
        let total_units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        Self {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            wait,
        }
    }

    /// The size a request will hold: its declared length, or the route's limit when it streams a
    /// body without one. `None` for a request that carries no body worth counting.
    fn claimed(req: &Request, route_limit: u64) -> Option<u64> {
        let headers = req.headers();
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let size = match declared {
            // Over the route's limit it is refused by that limit without being read.
            Some(n) => n.min(route_limit),
            None if headers.contains_key(header::TRANSFER_ENCODING) => route_limit,
            None => 0,
        };
        (size > SMALL_BODY).then_some(size)
    }
}

/// Middleware: reserves the body's size for the whole request, or answers `503 busy`. The state
/// is the shared budget and the route's body limit.
pub async fn hold(
    State((budget, route_limit)): State<(BodyBudget, u64)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(size) = BodyBudget::claimed(&req, route_limit) else {
        return next.run(req).await;
    };
    let units = u32::try_from(size.div_ceil(UNIT))
        .unwrap_or(u32::MAX)
        .min(budget.total_units);
    let permit = tokio::time::timeout(budget.wait, budget.units.acquire_many_owned(units)).await;
    match permit {
        Ok(Ok(permit)) => {
            let resp = next.run(req).await;
            drop(permit);
            resp
        }
        _ => {
            tracing::warn!(
                bytes = size,
                "request body refused: the upload budget is spent"
            );
            AppError::Busy(budget.wait.as_secs().max(1)).into_response()
        }
    }
}
