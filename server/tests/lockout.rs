//! Login throttling against an attacker with several addresses, and the client address behind a
//! trusted proxy. Sources are distinct loopback addresses (127.0.0.2, 127.0.0.3, …) with
//! `--trusted-proxy` off unless a test says otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;

use serde_json::{Value, json};
use server::config::LoginLimits;

fn login_body(user: &str, auth: &str) -> Value {
    json!({"user": user, "protector": "passphrase", "auth": auth})
}

/// A bucket regains an attempt every [`LoginLimits::refill`] (6 s by default): these tests run
/// with one far longer than any run, so each count below is exact however slowly a loaded
/// machine sends the attempts (with 6 s, a slow run regained attempts between the attack and
/// the checks after it, and an attacker's login went through).
const NO_REFILL: Duration = Duration::from_secs(3600);

/// The default bursts, without refill during the test.
fn default_bursts() -> LoginLimits {
    LoginLimits {
        refill: NO_REFILL,
        ..LoginLimits::default()
    }
}

fn with_defaults() -> Server {
    Server::start_with(|c| c.login = default_bursts())
}

/// The attack: wrong logins for alice from two other addresses used to keep alice out.
/// Now each address gets a few guesses for the name, the name as a whole a few more, and then
/// only devices and addresses that logged in as alice before get in: alice's own device still
/// does (with the token in the body, or as the browser's cookie), so does a client without the
/// token from her usual address, the attacker does not, and other users, even on the attacking
/// addresses, are not affected.
#[test]
fn a_two_address_attack_does_not_lock_out_the_user() {
    let s = with_defaults();
    let base = s.client().base.clone();
    let alice = register(&s.client(), "alice");
    let bob = register(&s.client(), "bob");

    // Alice's device logs in once: it is given a device token and a cookie.
    let first = post_from(
        "127.0.0.1",
        &base,
        "/api/v1/login",
        &[],
        &login_body("alice", &alice.passphrase_auth),
    );
    assert_eq!(first.status, 200);
    let device = first.json()["device"].as_str().unwrap().to_owned();
    let set_cookie = first.header("set-cookie").unwrap().to_owned();
    assert!(
        set_cookie.contains(&device) && set_cookie.contains("HttpOnly"),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("SameSite=Strict") && !set_cookie.contains("Secure"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // The attack: 60 wrong passwords for alice, alternating between two addresses.
    let wrong = "ab".repeat(32);
    let mut refused = 0;
    let mut tried = 0;
    for i in 0..60 {
        let src = if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" };
        let a = post_from(
            src,
            &base,
            "/api/v1/login",
            &[],
            &login_body("alice", &wrong),
        );
        match a.status {
            401 => tried += 1,
            429 => {
                assert_eq!(a.json()["error"]["code"], "rate_limited");
                assert!(a.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&a.body)),
        }
    }
    // Each address spends its own 10 for the name, together exactly the name's 20.
    let limits = default_bursts();
    assert_eq!(
        tried, limits.per_user as usize,
        "the name's bucket bounds the guesses from all addresses"
    );
    assert_eq!(refused, 60 - tried);

    // Alice herself: her device gets in, again and again, from her address or another one.
    for src in ["127.0.0.1", "127.0.0.1", "127.0.0.4", "127.0.0.2"] {
        let mut body = login_body("alice", &alice.passphrase_auth);
        body["device"] = json!(device);
        let a = post_from(src, &base, "/api/v1/login", &[], &body);
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(
            a.json()["device"],
            device.as_str(),
            "a known device keeps its token"
        );
    }
    let by_cookie = post_from(
        "127.0.0.1",
        &base,
        "/api/v1/login",
        &[("Cookie", &format!("other=1; {cookie}"))],
        &login_body("alice", &alice.passphrase_auth),
    );
    assert_eq!(by_cookie.status, 200);
    // The attacker, presenting a forged or another user's device token, is still refused.
    let mut forged = login_body("alice", &wrong);
    // Change the MAC's last digit (to one it is not, or the "forgery" would be the token).
    let last = if device.ends_with('0') { '1' } else { '0' };
    forged["device"] = json!(format!("{}{last}", &device[..device.len() - 1]));
    let a = post_from("127.0.0.2", &base, "/api/v1/login", &[], &forged);
    assert_eq!(a.status, 429);
    // A client that keeps no device token (a CLI) still gets in from the address alice logged in
    // from before.
    let cli = post_from(
        "127.0.0.1",
        &base,
        "/api/v1/login",
        &[],
        &login_body("alice", &alice.passphrase_auth),
    );
    assert_eq!(cli.status, 200, "{}", String::from_utf8_lossy(&cli.body));
    // A new device on a new address waits like the attacker (the price of the design).
    let fresh = post_from(
        "127.0.0.5",
        &base,
        "/api/v1/login",
        &[],
        &login_body("alice", &alice.passphrase_auth),
    );
    assert_eq!(fresh.status, 429);
    // Other users are unaffected, even from the attacking addresses.
    let a = post_from(
        "127.0.0.2",
        &base,
        "/api/v1/login",
        &[],
        &login_body("bob", &bob.passphrase_auth),
    );
    assert_eq!(a.status, 200);
    // And a wrong password on alice's device counts against that device only.
    let mut guess = login_body("alice", &wrong);
    guess["device"] = json!(device);
    assert_eq!(
        post_from("127.0.0.1", &base, "/api/v1/login", &[], &guess).status,
        401
    );
}

/// A hundred fast failures from one address (spraying names) used to lock out every other
/// user of that address. Now the address's failures bucket stops the sprayer, and a user of the
/// same address whose device logged in before still gets in.
#[test]
fn failures_from_one_address_do_not_lock_out_its_known_devices() {
    let s = with_defaults();
    let base = s.client().base.clone();
    let carol = register(&s.client(), "carol");
    let first = post_from(
        "127.0.0.6",
        &base,
        "/api/v1/login",
        &[],
        &login_body("carol", &carol.passphrase_auth),
    );
    let device = first.json()["device"].as_str().unwrap().to_owned();
    let mut limited = 0;
    for i in 0..110 {
        let a = post_from(
            "127.0.0.6",
            &base,
            "/api/v1/login",
            &[],
            &login_body(&format!("user{i}"), &"cd".repeat(32)),
        );
        if a.status == 429 {
            limited += 1;
        }
    }
    assert_eq!(
        limited,
        110 - default_bursts().per_ip as usize,
        "the sprayer is stopped once the address's failures are spent"
    );
    let mut body = login_body("carol", &carol.passphrase_auth);
    body["device"] = json!(device);
    let a = post_from("127.0.0.6", &base, "/api/v1/login", &[], &body);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
}

fn xff(base: &str, forwarded: &[(&str, &str)], user: &str) -> u16 {
    post_from(
        "127.0.0.1",
        base,
        "/api/v1/login",
        forwarded,
        &login_body(user, &"ef".repeat(32)),
    )
    .status
}

/// `--trusted-proxy`: off by default, a client cannot pick its address with a header; on, the
/// client a trusted proxy names is the one limited (and cannot be spoofed by a header the client
/// itself sent); a peer outside the list is not believed.
#[test]
fn trusted_proxy_on_and_off() {
    let tune = |proxies: &'static str| {
        move |c: &mut server::config::Config| {
            c.login.per_pair = 2;
            c.login.refill = NO_REFILL;
            c.trusted_proxies = proxies.parse().unwrap();
        }
    };
    let h1 = [("X-Forwarded-For", "203.0.113.1")];
    let h2 = [("X-Forwarded-For", "203.0.113.2")];

    // Off (the default): every request is 127.0.0.1, whatever the header says.
    let off = Server::start_with(tune(""));
    let base = off.client().base.clone();
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(
        xff(&base, &h2, "dave"),
        429,
        "a header does not make a new client"
    );
    assert_eq!(
        xff(&base, &[("Forwarded", "for=198.51.100.9")], "dave"),
        429
    );

    // On, with 127.0.0.1 trusted: the forwarded client counts.
    let on = Server::start_with(tune("127.0.0.1, ::1"));
    let base = on.client().base.clone();
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(xff(&base, &h1, "dave"), 429);
    assert_eq!(
        xff(&base, &h2, "dave"),
        401,
        "another client behind the proxy"
    );
    // The client sent its own X-Forwarded-For; the proxy appended the real address.
    let spoof = [("X-Forwarded-For", "203.0.113.77, 203.0.113.1")];
    assert_eq!(
        xff(&base, &spoof, "dave"),
        429,
        "the rightmost untrusted hop counts"
    );
    let fwd = [("Forwarded", "for=\"[2001:db8::5]:4711\";proto=https")];
    assert_eq!(xff(&base, &fwd, "dave"), 401);
    // Without a header, the proxy itself is the client.
    assert_eq!(xff(&base, &[], "dave"), 401);
    // Over HTTPS (says the proxy), the device cookie is Secure.
    let erin = register(&on.client(), "erin");
    let a = post_from(
        "127.0.0.1",
        &base,
        "/api/v1/login",
        &[
            ("X-Forwarded-For", "203.0.113.3"),
            ("X-Forwarded-Proto", "https"),
        ],
        &login_body("erin", &erin.passphrase_auth),
    );
    assert!(a.header("set-cookie").unwrap().contains("; Secure"));
    // A request id from a trusted proxy is kept; from anyone else it is not.
    let a = request_from(
        "127.0.0.1",
        &base,
        "GET",
        "/api/v1/nope",
        &[("X-Request-Id", "proxy-id-42")],
        b"",
    );
    assert_eq!(a.json()["error"]["request_id"], "proxy-id-42");
    let a = request_from(
        "127.0.0.2",
        &base,
        "GET",
        "/api/v1/nope",
        &[("X-Request-Id", "proxy-id-42")],
        b"",
    );
    assert_ne!(a.json()["error"]["request_id"], "proxy-id-42");

    // On, but the peer is not in the list: headers are ignored.
    let other = Server::start_with(tune("10.0.0.1"));
    let base = other.client().base.clone();
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(xff(&base, &h1, "dave"), 401);
    assert_eq!(xff(&base, &h2, "dave"), 429);
}
