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

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already holds its share of connections.
    PerClient,
    /// The server holds as many connections as it may, all busy.
    Full,
}

impl Refusal {
    /// A label for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::PerClient => "per_client",
            Self::Full => "full",
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
}

/// The table of open connections.
pub struct Tracker {
    max: usize,
    per_client: usize,
    table: Mutex<Table>,
    open: AtomicUsize,
    refused_per_client: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
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
            // The oldest idle connection gives way (it is asked to close; its slot is free as
            // soon as it has); a table where every connection is busy refuses.
            let victim = t
                .conns
                .iter()
                .find(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refusal::Full);
            };
            if let Some(e) = t.conns.remove(&victim) {
                Self::uncount(&mut t, e.ip);
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
            if let Some(e) = t.conns.remove(&id) {
                Self::uncount(&mut t, e.ip);
            }
            self.open.store(t.conns.len(), Ordering::Relaxed);
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
        drop(old);
        assert_eq!(t.open(), 2);
        assert_eq!(t.refused()[2].1, 1);
    }
}
