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
//! address in the last 30 days (remembered in the database, a few addresses per user: this covers
//! clients that do not keep the device token yet), per user name from all addresses together, so
//! many addresses cannot guess fast either. Once an attacker spends that bucket, only devices and
//! addresses the user logged in from before get in as them, which is the point: the attack slows
//! the guessing down without locking the user out.
//!
//! Attempts are taken before the secret is checked and given back when the login succeeds, so a
//! user's own logins never use up a bucket. Buckets and known addresses are rows of the database
//! (SQLite or PostgreSQL), so every server process on one database counts against the same
//! limits: an attacker gains nothing by spreading attempts over processes or Lambda instances.
//! Their writes are not flushed one by one (a power cut may give back a few seconds of attempts,
//! never tear anything), and bucket times are the server clock in milliseconds, so machines
//! sharing a database need synchronized clocks (NTP) like everything else here.

use std::net::IpAddr;
use std::time::Duration;

use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::config::LoginLimits;
use crate::db::backend::{Durability, Tx};
use crate::db::{Db, ct_eq, now_ms, now_unix, sql};
use crate::error::{AppError, AppResult};

/// Domain label of device tokens (server-only: no client derives it).
const DEVICE_LABEL: &[u8] = b"zkwiki/v1/server/device-token";
/// Domain label of the per-user cookie name.
const COOKIE_NAME_LABEL: &[u8] = b"zkwiki/v1/server/device-cookie-name";
/// A device token is honoured this long after it was issued.
pub const DEVICE_TTL_SECS: i64 = 365 * 24 * 3600;
/// Addresses remembered per user (the most recent successful logins).
const KNOWN_PER_USER: usize = 8;
/// A remembered address counts for this long after the last successful login from it.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

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

/// A bucket's level at `now_ms`: what it held at `at_ms` plus what it regained since, at most
/// `burst` (a clock that went back regains nothing).
fn level(tokens: f64, at_ms: i64, now_ms: i64, burst: u32, refill: Duration) -> f64 {
    let refill_ms = (refill.as_millis() as f64).max(1.0);
    let gained = now_ms.saturating_sub(at_ms).max(0) as f64 / refill_ms;
    (tokens + gained).min(f64::from(burst))
}

/// The login and registration limiter. Its buckets and known addresses are rows of the
/// database, so every server process on it counts against the same limits.
pub struct LoginLimiter {
    limits: LoginLimits,
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
        Self { limits }
    }

    /// After this long untouched, any bucket has refilled (its row may go).
    fn full_after_ms(&self) -> i64 {
        let l = &self.limits;
        let burst = [
            l.per_pair,
            l.per_user,
            l.per_ip,
            l.per_device,
            l.register_per_ip,
        ]
        .into_iter()
        .max()
        .unwrap_or(1);
        i64::try_from(l.refill.as_millis().saturating_mul(u128::from(burst))).unwrap_or(i64::MAX)
    }

    /// Whether `user` logged in successfully from `ip` within [`KNOWN_FOR`].
    fn known_address(&self, db: &Db, user: &str, ip: Option<IpAddr>) -> AppResult<bool> {
        let Some(ip) = ip else { return Ok(false) };
        let since = now_ms() - KNOWN_FOR.as_millis() as i64;
        Ok(!db
            .rows(
                sql::KNOWN_ADDRESS,
                &[user.into(), ip.to_string().as_str().into(), since.into()],
            )?
            .is_empty())
    }

    /// Takes one attempt from each bucket, or none when any is empty (`429` with the wait).
    /// One transaction that locks the buckets in key order, so concurrent takes (in any process)
    /// neither deadlock nor both spend the last attempt.
    fn take_all(&self, db: &Db, mut keys: Vec<(String, u32)>) -> AppResult<Vec<(String, u32)>> {
        keys.sort();
        keys.dedup_by(|a, b| a.0 == b.0);
        let refill = self.limits.refill;
        let now = now_ms();
        db.transaction(Durability::Relaxed, |tx| {
            let mut levels = Vec::with_capacity(keys.len());
            for (key, burst) in &keys {
                let current = lock_bucket(tx, key, *burst, now)?;
                levels.push(level(current.0, current.1, now, *burst, refill));
            }
            let wait = levels
                .iter()
                .filter(|l| **l < 1.0)
                .map(|l| (1.0 - l) * refill.as_secs_f64().max(0.001))
                .fold(0.0, f64::max);
            if wait > 0.0 {
                // Rolled back: nothing is spent.
                return Err(AppError::RateLimited(wait.ceil() as u64));
            }
            for ((key, _), l) in keys.iter().zip(levels) {
                tx.execute(sql::SET_BUCKET, &[key.into(), (l - 1.0).into(), now.into()])?;
            }
            tx.execute(
                sql::FORGET_FULL_BUCKETS,
                &[(now - self.full_after_ms()).into()],
            )?;
            Ok(())
        })?;
        Ok(keys)
    }

    /// Counts a login attempt for `user` from `ip`, from a known `device` of that user or not.
    pub fn login(
        &self,
        db: &Db,
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
                    // Names have no spaces (`check_name`): the key is unambiguous.
                    (format!("pair:{user} {addr}"), l.per_pair),
                    (format!("ip:{addr}"), l.per_ip),
                ];
                if !self.known_address(db, user, ip)? {
                    keys.push((format!("user:{user}"), l.per_user));
                }
                keys
            }
        };
        Ok(Attempt {
            taken: self.take_all(db, keys)?,
            user: user.to_owned(),
            ip,
        })
    }

    /// A successful login: the attempt did not count, and its address is now a known one.
    pub fn succeeded(&self, db: &Db, attempt: Attempt) -> AppResult<()> {
        let refill = self.limits.refill;
        let now = now_ms();
        db.transaction(Durability::Relaxed, |tx| {
            for (key, burst) in &attempt.taken {
                let current = lock_bucket(tx, key, *burst, now)?;
                let l = level(current.0, current.1, now, *burst, refill);
                let back = (l + 1.0).min(f64::from(*burst));
                tx.execute(sql::SET_BUCKET, &[key.into(), back.into(), now.into()])?;
            }
            if let Some(ip) = attempt.ip {
                let (user, ip) = (attempt.user.as_str(), ip.to_string());
                tx.execute(
                    sql::REMEMBER_ADDRESS,
                    &[user.into(), ip.as_str().into(), now.into()],
                )?;
                tx.execute(
                    sql::TRIM_ADDRESSES,
                    &[user.into(), (KNOWN_PER_USER as i64).into()],
                )?;
                let old = now - KNOWN_FOR.as_millis() as i64;
                tx.execute(sql::FORGET_OLD_ADDRESSES, &[old.into()])?;
            }
            Ok(())
        })
    }

    /// Counts a registration from `ip`.
    pub fn register(&self, db: &Db, ip: Option<IpAddr>) -> AppResult<()> {
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        self.take_all(
            db,
            vec![(format!("register:{ip}"), self.limits.register_per_ip)],
        )
        .map(drop)
    }
}

/// Locks a bucket (creating it full) and reads it: `(tokens, at_ms)`.
fn lock_bucket(tx: &mut dyn Tx, key: &str, burst: u32, now: i64) -> AppResult<(f64, i64)> {
    tx.execute(
        sql::LOCK_BUCKET,
        &[key.into(), f64::from(burst).into(), now.into()],
    )?;
    let rows = tx.query(sql::BUCKET, &[key.into()])?;
    let row = rows
        .first()
        .ok_or_else(|| AppError::internal("a locked bucket has no row"))?;
    Ok((row.real(0)?, row.int(1)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A limiter over a fresh SQLite database (the integration tests run it over PostgreSQL).
    struct Fixture {
        _dir: tempfile::TempDir,
        db: Db,
        limiter: LoginLimiter,
    }

    impl std::ops::Deref for Fixture {
        type Target = LoginLimiter;
        fn deref(&self) -> &LoginLimiter {
            &self.limiter
        }
    }

    impl Fixture {
        fn login(&self, user: &str, ip: Option<IpAddr>, d: Option<&Device>) -> AppResult<Attempt> {
            self.limiter.login(&self.db, user, ip, d)
        }
        fn succeeded(&self, a: Attempt) {
            self.limiter.succeeded(&self.db, a).unwrap();
        }
        fn register(&self, ip: Option<IpAddr>) -> AppResult<()> {
            self.limiter.register(&self.db, ip)
        }
    }

    fn limiter() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let db = rt
            .block_on(Db::open(&crate::config::Database::Sqlite, dir.path()))
            .unwrap();
        let limiter = LoginLimiter::new(LoginLimits {
            per_pair: 3,
            per_user: 5,
            per_ip: 8,
            per_device: 2,
            register_per_ip: 2,
            refill: Duration::from_secs(3600),
        });
        Fixture {
            _dir: dir,
            db,
            limiter,
        }
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

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn buckets_refill_at_the_rate_and_never_overflow() {
        let six = Duration::from_secs(6);
        assert_eq!(level(0.0, 0, 6_000, 10, six), 1.0);
        assert_eq!(level(2.5, 1_000, 4_000, 10, six), 3.0);
        assert_eq!(level(9.0, 0, 60_000, 10, six), 10.0, "capped at the burst");
        assert_eq!(
            level(4.0, 10_000, 5_000, 10, six),
            4.0,
            "a clock that went back"
        );
    }
}
