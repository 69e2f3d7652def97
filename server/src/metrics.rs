//! Counters and histograms for `GET /metrics`, in the Prometheus text exposition format (0.0.4).
//!
//! Requests are counted by route *template* (`/api/v1/wikis/{wiki}/commits`, never a real id),
//! method and status, with a latency histogram per route (time to the response head). Commits,
//! conflicts, body timeouts and refusals are counters; the upload budget, open connections and
//! the data directory's free space are gauges read when scraped. Nothing here names a user, a
//! wiki or a page.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Counters that live as long as the process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(String, &'static str, u16), u64>>,
    latency: Mutex<HashMap<String, Histogram>>,
    parse_errors: Mutex<BTreeMap<u16, u64>>,
    /// Commits accepted.
    pub commits: AtomicU64,
    /// Commits refused with `409 conflict` (a stale writer).
    pub conflicts: AtomicU64,
    /// Request bodies cut off by the body timeout.
    pub body_timeouts: AtomicU64,
    /// Large uploads refused with `503 busy`.
    pub busy: AtomicU64,
    /// Logins and registrations refused with `429`.
    pub rate_limited: AtomicU64,
    /// Logins that succeeded / failed.
    pub logins_ok: AtomicU64,
    /// Logins with wrong credentials.
    pub logins_failed: AtomicU64,
}

/// Values read at scrape time.
pub struct Gauges {
    /// Bytes of the upload budget reserved now.
    pub budget_in_use: u64,
    /// The upload budget.
    pub budget_total: u64,
    /// Connections open now.
    pub open_connections: usize,
    /// The connection cap.
    pub max_connections: usize,
    /// Connections refused (or idle ones closed to make room), by reason.
    pub refused: [(&'static str, u64); 3],
    /// Free bytes on the data directory's filesystem, if known.
    pub data_free_bytes: Option<u64>,
    /// Whether the server answers `/readyz` with 200.
    pub ready: bool,
    /// Process start, Unix seconds.
    pub start_time: i64,
}

fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, method: &axum::http::Method, status: u16, secs: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_owned(), method_label(method), status))
                .or_insert(0) += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Counts a request hyper refused before routing (`status`: 400, 414 or 431).
    pub fn parse_error(&self, status: u16) {
        if let Ok(mut p) = self.parse_errors.lock() {
            *p.entry(status).or_insert(0) += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(8192);
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            "zkwiki_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        let mut rows: Vec<_> = self
            .requests
            .lock()
            .map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        rows.sort();
        let mut body = String::new();
        for ((route, method, status), n) in rows {
            let _ = writeln!(
                body,
                "zkwiki_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                esc(&route)
            );
        }
        let mut hist: Vec<_> = self
            .latency
            .lock()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        hist.sort_by(|a, b| a.0.cmp(&b.0));
        let mut hbody = String::new();
        for (route, h) in hist {
            let route = esc(&route);
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    hbody,
                    "zkwiki_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                hbody,
                "zkwiki_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                hbody,
                "zkwiki_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                hbody,
                "zkwiki_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str(&body);
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            "zkwiki_http_request_duration_seconds",
            "histogram",
            "Time from routing to the response head, by route template.",
        );
        out.push_str(&hbody);
        let mut scalar = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed).to_string();
        scalar(
            "zkwiki_commits_total",
            "counter",
            "Commits accepted (each one git commit, durable before its answer).",
            c(&self.commits),
        );
        scalar(
            "zkwiki_commit_conflicts_total",
            "counter",
            "Commits refused with 409 conflict because the wiki moved on (the writer retries).",
            c(&self.conflicts),
        );
        scalar(
            "zkwiki_body_timeouts_total",
            "counter",
            "Request bodies cut off because they stopped arriving (408).",
            c(&self.body_timeouts),
        );
        scalar(
            "zkwiki_upload_refusals_total",
            "counter",
            "Large uploads refused with 503 busy (upload budget or per-client share spent).",
            c(&self.busy),
        );
        scalar(
            "zkwiki_login_rate_limited_total",
            "counter",
            "Logins and registrations refused with 429.",
            c(&self.rate_limited),
        );
        scalar(
            "zkwiki_logins_total",
            "counter",
            "Successful logins.",
            c(&self.logins_ok),
        );
        scalar(
            "zkwiki_login_failures_total",
            "counter",
            "Logins refused with bad_credentials.",
            c(&self.logins_failed),
        );
        scalar(
            "zkwiki_upload_budget_bytes_in_use",
            "gauge",
            "Bytes of the large-upload memory budget reserved by requests in flight.",
            g.budget_in_use.to_string(),
        );
        scalar(
            "zkwiki_upload_budget_bytes",
            "gauge",
            "The large-upload memory budget (--max-body-memory).",
            g.budget_total.to_string(),
        );
        scalar(
            "zkwiki_open_connections",
            "gauge",
            "Client connections open now.",
            g.open_connections.to_string(),
        );
        scalar(
            "zkwiki_max_connections",
            "gauge",
            "The connection cap (from --max-connections or the descriptor limit).",
            g.max_connections.to_string(),
        );
        scalar(
            "zkwiki_ready",
            "gauge",
            "1 when /readyz answers 200.",
            u8::from(g.ready).to_string(),
        );
        scalar(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process, Unix seconds.",
            g.start_time.to_string(),
        );
        if let Some(free) = g.data_free_bytes {
            scalar(
                "zkwiki_data_dir_free_bytes",
                "gauge",
                "Free bytes on the data directory's filesystem (for the server's user).",
                free.to_string(),
            );
        }
        let _ = writeln!(
            out,
            "# HELP zkwiki_connections_refused_total Connections refused at accept (per_client: \
             the address's cap; full: every slot busy), and idle ones closed to make room \
             (evicted_idle).\n# TYPE zkwiki_connections_refused_total counter"
        );
        for (reason, n) in g.refused {
            let _ = writeln!(
                out,
                "zkwiki_connections_refused_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP zkwiki_http_parse_errors_total Requests refused by the HTTP parser before \
             routing, by status.\n# TYPE zkwiki_http_parse_errors_total counter"
        );
        if let Ok(p) = self.parse_errors.lock() {
            for (status, n) in p.iter() {
                let _ = writeln!(
                    out,
                    "zkwiki_http_parse_errors_total{{status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP zkwiki_build_info The running version.\n# TYPE zkwiki_build_info gauge\n\
             zkwiki_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_labels_escaped() {
        let m = Metrics::default();
        let get = axum::http::Method::GET;
        m.record("/a", &get, 200, 0.0005);
        m.record("/a", &get, 200, 0.2);
        m.record("/a\"b", &get, 404, 30.0);
        let g = Gauges {
            budget_in_use: 0,
            budget_total: 1,
            open_connections: 2,
            max_connections: 3,
            refused: [("per_client", 0), ("full", 0), ("evicted_idle", 0)],
            data_free_bytes: None,
            ready: true,
            start_time: 0,
        };
        let text = m.render(&g);
        assert!(
            text.contains(
                "zkwiki_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 2"
            )
        );
        assert!(text.contains("route=\"/a\\\"b\""));
        assert!(
            text.contains(
                "zkwiki_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.001\"} 1"
            )
        );
        assert!(
            text.contains(
                "zkwiki_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.25\"} 2"
            )
        );
        assert!(
            text.contains(
                "zkwiki_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 2"
            )
        );
        assert!(text.contains(
            "zkwiki_http_request_duration_seconds_bucket{route=\"/a\\\"b\",le=\"10\"} 0"
        ));
    }
}
