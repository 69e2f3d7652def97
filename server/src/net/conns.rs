//! Which connections the server keeps: at most a few per client address, and in all fewer than
//! the process may open descriptors, so a flood of half-sent requests can neither exhaust the
//! descriptor table (`accept: Too many open files`) nor crowd out other clients.
//!
//! At the global cap a new connection takes the place of the oldest one that has no request in
//! flight (a connection still sending its first header line, or idle between requests); when
//! every connection is busy, the new one is answered `503` and closed. A connection over its
//! address's cap is answered `503` and closed at once. A trusted proxy carries many clients and
//! is exempt from the per-address cap (the global cap still holds).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds its share of connections.
    PerClient,
    /// The server holds as many connections as it may, all busy.
    Full,
    /// Room is being made (idle connections are closing): try again when one has closed.
    Closing,
}

impl Refusal {
    /// A label for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::PerClient => "per_client",
            Self::Full | Self::Closing => "full",
        }
    }
}

struct Entry {
    ip: IpAddr,
    exempt: bool,
    busy: Arc<AtomicUsize>,
    evict: Arc<Notify>,
}

#[derive(Default)]
struct Table {
    next: u64,
    conns: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
    /// Connections asked to make room that have not closed yet: they still hold a descriptor.
    closing: usize,
}

/// At most this many connections are closing to make room at once; beyond it, new connections
/// are refused, so the descriptors in use stay below the cap plus this.
const MAX_CLOSING: usize = 32;

/// The table of open connections.
pub struct Tracker {
    max: usize,
    per_client: usize,
    table: Mutex<Table>,
    open: AtomicUsize,
    refused_per_client: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    closed: Notify,
}

/// A connection the tracker admitted; leaves the table on drop.
pub struct Admitted {
    tracker: Arc<Tracker>,
    id: u64,
    /// Requests in flight on this connection (a busy connection is never evicted).
    pub busy: Arc<AtomicUsize>,
    /// Notified when this connection must make room for a newer one.
    pub evict: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.tracker.remove(self.id);
    }
}

impl Tracker {
    /// At most `max` connections, `per_client` of them from one address.
    pub fn new(max: usize, per_client: usize) -> Self {
        Self {
            max: max.max(1),
            per_client: per_client.max(1),
            table: Mutex::new(Table::default()),
            open: AtomicUsize::new(0),
            refused_per_client: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            closed: Notify::new(),
        }
    }

    /// The global cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections refused since start, by reason; and idle ones closed to make room.
    pub fn refused(&self) -> [(&'static str, u64); 3] {
        [
            (
                Refusal::PerClient.name(),
                self.refused_per_client.load(Ordering::Relaxed),
            ),
            (
                Refusal::Full.name(),
                self.refused_full.load(Ordering::Relaxed),
            ),
            ("evicted_idle", self.evicted.load(Ordering::Relaxed)),
        ]
    }

    /// Admits a connection from `ip` (`exempt`: a trusted proxy, no per-address cap).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Result<Admitted, Refusal> {
        let Ok(mut t) = self.table.lock() else {
            return Err(Refusal::Full);
        };
        let from_ip = t.per_ip.get(&ip).copied().unwrap_or(0);
        if !exempt && from_ip >= self.per_client {
            self.refused_per_client.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::PerClient);
        }
        if t.conns.len() >= self.max {
            // The oldest idle connection gives way (it is asked to close, and its descriptor
            // counts as closing until it has); a table where every connection is busy, or where
            // enough are closing already, refuses.
            let victim = t
                .conns
                .iter()
                .find(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            };
            if t.closing >= MAX_CLOSING {
                return Err(Refusal::Closing);
            }
            if let Some(e) = t.conns.remove(&victim) {
                Self::uncount(&mut t, e.ip);
                t.closing += 1;
                e.evict.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = t.next;
        t.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let evict = Arc::new(Notify::new());
        t.conns.insert(
            id,
            Entry {
                ip,
                exempt,
                busy: busy.clone(),
                evict: evict.clone(),
            },
        );
        *t.per_ip.entry(ip).or_insert(0) += 1;
        self.open.store(t.conns.len(), Ordering::Relaxed);
        Ok(Admitted {
            tracker: self.clone(),
            id,
            busy,
            evict,
        })
    }

    fn uncount(t: &mut Table, ip: IpAddr) {
        if let Some(n) = t.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                t.per_ip.remove(&ip);
            }
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut t) = self.table.lock() {
            match t.conns.remove(&id) {
                Some(e) => Self::uncount(&mut t, e.ip),
                // It had been asked to make room: now it has.
                None => {
                    t.closing = t.closing.saturating_sub(1);
                    self.closed.notify_waiters();
                }
            }
            self.open.store(t.conns.len(), Ordering::Relaxed);
        }
    }

    /// Admits a connection, waiting up to `patience` while connections that were asked to make
    /// room are still closing; refused (`Full`) after that.
    pub async fn admit_patiently(
        self: &Arc<Self>,
        ip: IpAddr,
        exempt: bool,
        patience: std::time::Duration,
    ) -> Result<Admitted, Refusal> {
        let until = tokio::time::Instant::now() + patience;
        loop {
            let closed = self.closed.notified();
            match self.admit(ip, exempt) {
                Err(Refusal::Closing) => {
                    if tokio::time::timeout_at(until, closed).await.is_err() {
                        self.refused_full.fetch_add(1, Ordering::Relaxed);
                        return Err(Refusal::Full);
                    }
                }
                other => return other,
            }
        }
    }

    /// Connections from addresses other than trusted proxies, for tests and logs.
    pub fn direct(&self) -> usize {
        self.table
            .lock()
            .map(|t| t.conns.values().filter(|e| !e.exempt).count())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_client_cap_and_exemption() {
        let t = Arc::new(Tracker::new(100, 2));
        let a = t.admit(ip("10.0.0.1"), false).unwrap();
        let _b = t.admit(ip("10.0.0.1"), false).unwrap();
        assert_eq!(
            t.admit(ip("10.0.0.1"), false).err(),
            Some(Refusal::PerClient)
        );
        let _c = t.admit(ip("10.0.0.2"), false).unwrap();
        let _p: Vec<_> = (0..5)
            .map(|_| t.admit(ip("10.0.0.9"), true).unwrap())
            .collect();
        drop(a);
        let _d = t.admit(ip("10.0.0.1"), false).unwrap();
        assert_eq!(t.open(), 2 + 1 + 5);
    }

    #[test]
    fn evictions_in_flight_are_bounded() {
        let t = Arc::new(Tracker::new(1, 10_000));
        let mut kept = vec![t.admit(ip("10.0.0.1"), false).unwrap()];
        for _ in 0..MAX_CLOSING {
            kept.push(t.admit(ip("10.0.0.1"), false).unwrap());
        }
        assert_eq!(t.admit(ip("10.0.0.1"), false).err(), Some(Refusal::Closing));
        kept.remove(0);
        assert!(t.admit(ip("10.0.0.1"), false).is_ok());
    }

    #[test]
    fn at_the_global_cap_the_oldest_idle_connection_gives_way() {
        let t = Arc::new(Tracker::new(2, 10));
        let old = t.admit(ip("10.0.0.1"), false).unwrap();
        let busy = t.admit(ip("10.0.0.2"), false).unwrap();
        busy.busy.fetch_add(1, Ordering::AcqRel);
        old.busy.fetch_add(1, Ordering::AcqRel);
        assert_eq!(t.admit(ip("10.0.0.3"), false).err(), Some(Refusal::Full));
        old.busy.fetch_sub(1, Ordering::AcqRel);
        let _new = t.admit(ip("10.0.0.3"), false).unwrap();
        assert_eq!(t.open(), 2);
        // The evicted connection's own drop does not free someone else's slot.
        assert_eq!(t.table.lock().unwrap().closing, 1);
        drop(old);
        assert_eq!(t.open(), 2);
        assert_eq!(t.table.lock().unwrap().closing, 0);
        assert_eq!(t.refused()[2].1, 1);
    }
}
