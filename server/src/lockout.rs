//! Login throttling that keeps brute force slow without letting an attacker lock a user out
//! (OWASP's "device cookies").
//!
//! Every successful login hands the client a *device token* (a cookie for the browser, and a
//! `device` field for other clients to keep and send back): `HMAC(server secret, user ‖ issued ‖
//! nonce)`, so the server stores nothing. An attempt that presents a valid device token of the
//! user it names comes from a device that has logged in as that user before, and is limited only
//! per token. Every other attempt is limited per user name *and* client address (one address
//! cannot try many passwords for one name) and per client address counting only failures (one
//! address cannot spray many names); and, unless the user has logged in successfully from that
//! address in the last 30 days (remembered in memory, a few addresses per user: this covers
//! clients that do not keep the device token yet), per user name from all addresses together, so
//! many addresses cannot guess fast either. Once an attacker spends that bucket, only devices and
//! addresses the user logged in from before get in as them, which is the point: the attack slows
//! the guessing down without locking the user out.
//!
//! Attempts are taken before the secret is checked and given back when the login succeeds, so a
//! user's own logins never use up a bucket. All buckets live in each server process's memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::config::LoginLimits;
use crate::db::{ct_eq, now_unix};
use crate::error::{AppError, AppResult};

/// Domain label of device tokens (server-only: no client derives it).
const DEVICE_LABEL: &[u8] = b"zkwiki/v1/server/device-token";
/// Domain label of the per-user cookie name.
const COOKIE_NAME_LABEL: &[u8] = b"zkwiki/v1/server/device-cookie-name";
/// A device token is honoured this long after it was issued.
pub const DEVICE_TTL_SECS: i64 = 365 * 24 * 3600;
/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;
/// Addresses remembered per user (the most recent successful logins).
const KNOWN_PER_USER: usize = 8;
/// A remembered address counts for this long after the last successful login from it.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Users whose addresses are remembered before the oldest are forgotten.
const MAX_KNOWN_USERS: usize = 100_000;

/// A device token that checked out: its nonce keys its own bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    nonce: String,
}

/// Issues and checks device tokens (`<issued>.<nonce hex>.<mac hex>`).
pub struct DeviceTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceTokens(..)")
    }
}

impl DeviceTokens {
    /// Tokens keyed by (a key derived from) the server secret.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, user: &str, issued: i64, nonce: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        // HMAC takes a key of any length, so this never fails.
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) {
            mac.update(DEVICE_LABEL);
            mac.update(&[u8::try_from(user.len()).unwrap_or(u8::MAX)]);
            mac.update(user.as_bytes());
            mac.update(&issued.to_be_bytes());
            mac.update(nonce.as_bytes());
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// A fresh token for `user`.
    pub fn issue(&self, user: &str) -> String {
        let mut nonce = [0u8; 16];
        OsRng.fill_bytes(&mut nonce);
        let nonce = HEXLOWER.encode(&nonce);
        let issued = now_unix();
        let mac = HEXLOWER.encode(&self.mac(user, issued, &nonce));
        format!("{issued}.{nonce}.{mac}")
    }

    /// The device, if `token` is a live token this server issued for `user`.
    pub fn check(&self, user: &str, token: &str) -> Option<Device> {
        let mut parts = token.split('.');
        let (issued, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || nonce.len() != 32 || mac.len() != 64 {
            return None;
        }
        let issued: i64 = issued.parse().ok()?;
        let age = now_unix() - issued;
        if !(0..=DEVICE_TTL_SECS).contains(&age) {
            return None;
        }
        let mac = HEXLOWER.decode(mac.as_bytes()).ok()?;
        ct_eq(&mac, &self.mac(user, issued, nonce)).then(|| Device {
            nonce: nonce.to_owned(),
        })
    }

    /// The browser cookie that carries `user`'s device token: one per user name (several people
    /// may share a browser), named by a keyed hash so the name does not show in the cookie jar.
    pub fn cookie_name(&self, user: &str) -> String {
        let mut tag = [0u8; 32];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) {
            mac.update(COOKIE_NAME_LABEL);
            mac.update(user.as_bytes());
            tag.copy_from_slice(&mac.finalize().into_bytes());
        }
        format!("zkwiki_device_{}", HEXLOWER.encode(&tag[..8]))
    }
}

/// Token buckets by key.
struct Buckets {
    refill: Duration,
    map: HashMap<String, (f64, Instant)>,
}

impl Buckets {
    fn level(&mut self, key: &str, burst: u32, now: Instant) -> f64 {
        let refill = self.refill.as_secs_f64().max(0.001);
        match self.map.get_mut(key) {
            Some((tokens, at)) => {
                *tokens = (*tokens + now.duration_since(*at).as_secs_f64() / refill)
                    .min(f64::from(burst));
                *at = now;
                *tokens
            }
            None => f64::from(burst),
        }
    }

    fn add(&mut self, key: &str, burst: u32, delta: f64, now: Instant) {
        let level = self.level(key, burst, now);
        self.map.insert(
            key.to_owned(),
            ((level + delta).clamp(0.0, f64::from(burst)), now),
        );
    }

    fn forget_full(&mut self, now: Instant, burst: u32) {
        if self.map.len() <= MAX_BUCKETS {
            return;
        }
        let refill = self.refill.as_secs_f64().max(0.001);
        self.map.retain(|_, (tokens, at)| {
            *tokens + now.duration_since(*at).as_secs_f64() / refill < f64::from(burst)
        });
    }
}

/// The login and registration limiter.
pub struct LoginLimiter {
    limits: LoginLimits,
    buckets: Mutex<Buckets>,
    known: Mutex<HashMap<String, Vec<(IpAddr, Instant)>>>,
}

/// Attempts taken for one login, to give back if it succeeds.
#[must_use = "a login attempt is either refunded (success) or kept (failure)"]
pub struct Attempt {
    taken: Vec<(String, u32)>,
    user: String,
    ip: Option<IpAddr>,
}

impl LoginLimiter {
    /// A limiter with these limits.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            buckets: Mutex::new(Buckets {
                refill: limits.refill,
                map: HashMap::new(),
            }),
            known: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// Whether `user` logged in successfully from `ip` within [`KNOWN_FOR`].
    fn known_address(&self, user: &str, ip: Option<IpAddr>) -> bool {
        let (Some(ip), Ok(known)) = (ip, self.known.lock()) else {
            return false;
        };
        known.get(user).is_some_and(|addrs| {
            addrs
                .iter()
                .any(|(a, at)| *a == ip && at.elapsed() < KNOWN_FOR)
        })
    }

    /// Remembers a successful login of `user` from `ip`.
    fn remember(&self, user: &str, ip: Option<IpAddr>) {
        let (Some(ip), Ok(mut known)) = (ip, self.known.lock()) else {
            return;
        };
        if known.len() >= MAX_KNOWN_USERS && !known.contains_key(user) {
            known.retain(|_, addrs| addrs.iter().any(|(_, at)| at.elapsed() < KNOWN_FOR));
            if known.len() >= MAX_KNOWN_USERS {
                known.clear();
            }
        }
        let addrs = known.entry(user.to_owned()).or_default();
        addrs.retain(|(a, at)| *a != ip && at.elapsed() < KNOWN_FOR);
        addrs.push((ip, Instant::now()));
        if addrs.len() > KNOWN_PER_USER {
            addrs.remove(0);
        }
    }

    /// Takes one attempt from each bucket, or none when any is empty (`429` with the wait).
    fn take_all(&self, keys: Vec<(String, u32)>) -> AppResult<Vec<(String, u32)>> {
        let Ok(mut b) = self.buckets.lock() else {
            return Err(AppError::internal("rate limiter poisoned"));
        };
        let now = Instant::now();
        let refill = b.refill.as_secs_f64().max(0.001);
        let mut wait: f64 = 0.0;
        for (key, burst) in &keys {
            let level = b.level(key, *burst, now);
            if level < 1.0 {
                wait = wait.max((1.0 - level) * refill);
            }
        }
        if wait > 0.0 {
            return Err(AppError::RateLimited(wait.ceil() as u64));
        }
        let max_burst = keys.iter().map(|(_, b)| *b).max().unwrap_or(1);
        b.forget_full(now, max_burst);
        for (key, burst) in &keys {
            b.add(key, *burst, -1.0, now);
        }
        Ok(keys)
    }

    /// Counts a login attempt for `user` from `ip`, from a known `device` of that user or not.
    pub fn login(
        &self,
        user: &str,
        ip: Option<IpAddr>,
        device: Option<&Device>,
    ) -> AppResult<Attempt> {
        let l = &self.limits;
        let keys = match device {
            Some(d) => vec![(format!("device:{}", d.nonce), l.per_device)],
            None => {
                let addr = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
                let mut keys = vec![
                    (format!("pair:{user}\u{0}{addr}"), l.per_pair),
                    (format!("ip:{addr}"), l.per_ip),
                ];
                if !self.known_address(user, ip) {
                    keys.push((format!("user:{user}"), l.per_user));
                }
                keys
            }
        };
        Ok(Attempt {
            taken: self.take_all(keys)?,
            user: user.to_owned(),
            ip,
        })
    }

    /// A successful login: the attempt did not count, and its address is now a known one.
    pub fn succeeded(&self, attempt: Attempt) {
        self.remember(&attempt.user, attempt.ip);
        let Ok(mut b) = self.buckets.lock() else {
            return;
        };
        let now = Instant::now();
        for (key, burst) in attempt.taken {
            b.add(&key, burst, 1.0, now);
        }
    }

    /// Counts a registration from `ip`.
    pub fn register(&self, ip: Option<IpAddr>) -> AppResult<()> {
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        self.take_all(vec![(
            format!("register:{ip}"),
            self.limits.register_per_ip,
        )])
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            per_pair: 3,
            per_user: 5,
            per_ip: 8,
            per_device: 2,
            register_per_ip: 2,
            refill: Duration::from_secs(3600),
        })
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn device_tokens_bind_the_user_and_the_server_key() {
        let t = DeviceTokens::new([7; 32]);
        let tok = t.issue("alice");
        assert!(t.check("alice", &tok).is_some());
        assert!(t.check("bob", &tok).is_none());
        assert!(DeviceTokens::new([8; 32]).check("alice", &tok).is_none());
        let last = if tok.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &tok[..tok.len() - 1]);
        assert!(t.check("alice", &forged).is_none(), "a changed MAC");
        let (issued, rest) = tok.split_once('.').unwrap();
        let later = format!("{}.{rest}", issued.parse::<i64>().unwrap() + 1);
        assert!(t.check("alice", &later).is_none(), "a changed issue time");
        assert!(t.check("alice", "").is_none());
        assert!(t.check("alice", "1.2.3.4").is_none());
        assert_ne!(t.cookie_name("alice"), t.cookie_name("bob"));
    }

    #[test]
    fn per_pair_then_per_user_and_a_known_device_is_exempt() {
        let l = limiter();
        for _ in 0..3 {
            let _failed = l.login("alice", ip("10.0.0.2"), None).unwrap();
        }
        // The pair is spent; another address still may, until the name's bucket is spent.
        assert!(l.login("alice", ip("10.0.0.2"), None).is_err());
        for _ in 0..2 {
            let _failed = l.login("alice", ip("10.0.0.3"), None).unwrap();
        }
        assert!(
            l.login("alice", ip("10.0.0.4"), None).is_err(),
            "name spent"
        );
        // Other names from the attacking addresses are unaffected.
        let _ok = l.login("bob", ip("10.0.0.2"), None).unwrap();
        // Alice's own device gets in, within its own bucket.
        let d = Device { nonce: "n".into() };
        let a = l.login("alice", ip("10.0.0.2"), Some(&d)).unwrap();
        l.succeeded(a);
        let a = l.login("alice", ip("10.0.0.9"), Some(&d)).unwrap();
        l.succeeded(a);
        let _f1 = l.login("alice", ip("10.0.0.9"), Some(&d)).unwrap();
        let _f2 = l.login("alice", ip("10.0.0.9"), Some(&d)).unwrap();
        assert!(l.login("alice", ip("10.0.0.9"), Some(&d)).is_err());
    }

    #[test]
    fn an_address_the_user_logged_in_from_is_exempt_from_the_per_name_limit() {
        let l = limiter();
        let ok = l.login("dan", ip("10.1.0.1"), None).unwrap();
        l.succeeded(ok);
        // An attacker spends dan's name from other addresses.
        for i in 0..5 {
            let _f = l.login("dan", ip(&format!("10.2.0.{i}")), None).unwrap();
        }
        assert!(l.login("dan", ip("10.3.0.1"), None).is_err(), "name spent");
        // Dan's own address still gets in, within its own pair bucket.
        let ok = l.login("dan", ip("10.1.0.1"), None).unwrap();
        l.succeeded(ok);
        for _ in 0..3 {
            let _f = l.login("dan", ip("10.1.0.1"), None).unwrap();
        }
        assert!(l.login("dan", ip("10.1.0.1"), None).is_err(), "pair spent");
    }

    #[test]
    fn successes_give_their_attempts_back() {
        let l = limiter();
        for _ in 0..20 {
            let a = l.login("carol", ip("10.0.0.5"), None).unwrap();
            l.succeeded(a);
        }
        let _ok = l.login("carol", ip("10.0.0.5"), None).unwrap();
    }

    #[test]
    fn an_address_cannot_spray_names() {
        let l = limiter();
        for i in 0..8 {
            let _f = l.login(&format!("u{i}"), ip("10.0.0.6"), None).unwrap();
        }
        let err = l.login("u99", ip("10.0.0.6"), None).err().unwrap();
        assert_eq!(err.code(), "rate_limited");
        assert!(l.register(ip("10.0.0.7")).is_ok() && l.register(ip("10.0.0.7")).is_ok());
        assert!(l.register(ip("10.0.0.7")).is_err());
    }
}
