//! Does the time of a refusal tell whether another user's wiki exists? A benchmark, not a test.
//!
//! Starts a server in this process (on loopback, fresh data directory), makes alice's wiki with
//! a few pages, and has bob (not a member) ask for its head and for the head of random wiki ids,
//! alternating, over one keep-alive connection. Both answers are the same `404`; this prints the
//! mean, median and standard deviation of each and Welch's z for the difference of the means
//! (|z| below about 3 is no measurable difference).
//!
//! `cargo run --release -p server --example existence_timing [-- N]` (N rounds, default 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;

fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    xs.sort_by(f64::total_cmp);
    (mean, xs[xs.len() / 2], var.sqrt())
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let s = Server::start();
    let c = s.client();
    while c.get("/readyz", None).status != 200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let alice = register(&c, "alice");
    let bob = register(&c, "bob");
    let mut view = create_wiki(&c, &alice);
    for i in 0..5 {
        put_page(&c, &alice, &mut view, &format!("P{i}.md"), "text");
    }
    let theirs = format!("/api/v1/wikis/{}/head", view.wiki);
    let random = |i: usize| format!("/api/v1/wikis/{:032x}/head", 0x5eed_0000_u128 + i as u128);
    // Warm up both paths.
    for i in 0..200 {
        c.get(&theirs, Some(&bob.token));
        c.get(&random(i), Some(&bob.token));
    }
    let (mut a, mut b) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds {
        // Alternate which goes first, so drift hits both alike.
        let order = if i % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for existing in order {
            let path = if existing { theirs.clone() } else { random(i) };
            let t = Instant::now();
            let r = c.get(&path, Some(&bob.token));
            let us = t.elapsed().as_secs_f64() * 1e6;
            assert_eq!(r.status, 404);
            if existing { a.push(us) } else { b.push(us) }
        }
    }
    let (ma, meda, sa) = stats(&mut a);
    let (mb, medb, sb) = stats(&mut b);
    let se = (sa * sa / a.len() as f64 + sb * sb / b.len() as f64).sqrt();
    let z = (ma - mb) / se;
    println!("rounds: {rounds}");
    println!("another user's wiki: mean {ma:.1} µs, median {meda:.1} µs, sd {sa:.1} µs");
    println!("random wiki id:      mean {mb:.1} µs, median {medb:.1} µs, sd {sb:.1} µs");
    println!(
        "difference of means: {:.2} µs (standard error {se:.2} µs), Welch z = {z:.2}",
        ma - mb
    );
}
