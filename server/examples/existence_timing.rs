//! Does the time of a refusal tell whether another user's wiki exists? A benchmark, not a test.
//!
//! Starts a server in this process (on loopback, fresh data directory), makes alice's wiki with
//! a few pages, and has bob (not a member) ask for its head and for the head of random wiki ids,
//! alternating, over one keep-alive connection. Both answers are the same `404`; this prints the
//! mean and standard deviation (of the central 90 %), the median of each, and Welch's z for the
//! difference of the means (|z| below about 3 is no measurable difference; the standard error
//! says how small a difference the run could have seen).
//!
//! `cargo run --release -p server --example existence_timing [-- N]` (N rounds, default 2000).
//!
//! Measured on the 2-core development VM (busy with another build), 20,000 rounds, release:
//! with the refusal decided by the membership index, differences of 0.45 µs (z = 1.01) and
//! 0.08 µs (z = 0.23), standard error about 0.4 µs; with the index lookup disabled (the refusal
//! after reading the wiki's head, as before), 2.57 µs (z = 5.27) and 3.43 µs (z = 9.09) on the
//! same machine, so the benchmark does see a difference of that size.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;

/// Mean, median and standard deviation of the central 90 % (a few requests that waited for the
/// scheduler would otherwise drown the comparison on a busy machine).
fn stats(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let cut = xs.len() / 20;
    let kept = &xs[cut..xs.len() - cut];
    let n = kept.len() as f64;
    let mean = kept.iter().sum::<f64>() / n;
    let var = kept.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
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
    let n = 0.9 * rounds as f64;
    let se = (sa * sa / n + sb * sb / n).sqrt();
    let z = (ma - mb) / se;
    println!("rounds: {rounds}");
    println!("another user's wiki: mean {ma:.1} µs, median {meda:.1} µs, sd {sa:.1} µs");
    println!("random wiki id:      mean {mb:.1} µs, median {medb:.1} µs, sd {sb:.1} µs");
    println!(
        "difference of means: {:.2} µs (standard error {se:.2} µs), Welch z = {z:.2}",
        ma - mb
    );
}
