//! Commands at once: several in one HOME (one machine's files, one lock), and eight writers on
//! one wiki from different machines. None may fail and no write may be lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Server};

#[test]
fn four_commands_at_once_in_one_home_never_fail() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    for round in 0..5 {
        let runs: Vec<common::Run> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|n| {
                    let alice = &alice;
                    s.spawn(move || {
                        let text = format!("round {round} writer {n}\n");
                        let path = format!("r{round}/w{n}.md");
                        let run = alice.run_with_input(&["put", &path, "-"], text.as_bytes());
                        if run.code == 0 && n % 2 == 0 {
                            // Reads at the same time as the writes.
                            return alice.run(&["ls"]);
                        }
                        run
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &runs {
            assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        }
    }
    let listed = alice.ok(&["ls"]);
    assert_eq!(listed.lines().count(), 1 + 5 * 4, "{listed}");
}

#[test]
fn eight_writers_on_one_wiki_lose_nothing_and_never_give_up() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "notes");
    alice.put("Home.md", "# Home\n");
    // Seven more machines, each with its own writer key (an agent key file).
    let writers: Vec<(Env, std::path::PathBuf)> = (0..8)
        .map(|n| {
            let name = format!("writer{n}");
            let key = alice.path(&format!("{name}.json"));
            alice.ok(&[
                "agent",
                "grant",
                &name,
                "--role",
                "write",
                "--expires",
                "1h",
                "--out",
                key.to_str().unwrap(),
            ]);
            (Env::new(Some(&server)), key)
        })
        .collect();
    const EACH: usize = 6;
    let runs: Vec<common::Run> = std::thread::scope(|s| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(n, (env, key))| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for k in 0..EACH {
                        let path = format!("w{n}/p{k}.md");
                        let text = format!("writer {n} page {k}\n");
                        out.push(env.run_with_input(
                            &["--key-file", key.to_str().unwrap(), "put", &path, "-"],
                            text.as_bytes(),
                        ));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let failed: Vec<&common::Run> = runs.iter().filter(|r| r.code != 0).collect();
    assert!(
        failed.is_empty(),
        "{} of {} writes failed; first: {}",
        failed.len(),
        runs.len(),
        failed[0].stderr
    );
    let listed = alice.ok(&["ls"]);
    for n in 0..8 {
        for k in 0..EACH {
            assert!(
                listed.lines().any(|l| l == format!("w{n}/p{k}.md")),
                "lost w{n}/p{k}.md: {listed}"
            );
            assert_eq!(
                alice.ok(&["cat", &format!("w{n}/p{k}.md")]),
                format!("writer {n} page {k}\n")
            );
        }
    }
}
