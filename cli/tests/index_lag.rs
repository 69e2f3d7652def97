//! The search index of a large wiki may lag behind the pages by a few writes (so a one-page edit
//! does not re-upload the whole index), and every reader still lists and finds every page: it
//! re-indexes the pages the stored index does not describe. Past the limit a write rewrites it; a
//! small wiki's index is rewritten with every write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Server, git};

/// Page files (`pages/…`) changed by the newest commit of the server's repository.
fn pages_changed_by_head(server: &Server, wiki: &str) -> Vec<String> {
    git(
        &server.repo(wiki),
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-only",
            "-r",
            "main~1",
            "main",
        ],
    )
    .lines()
    .filter(|p| p.starts_with("pages/"))
    .map(str::to_owned)
    .collect()
}

#[test]
fn the_index_lags_a_little_and_readers_still_see_every_page() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "notes");
    // Small: every write carries the index.
    alice.put("Home.md", "# Home\n");
    assert_eq!(pages_changed_by_head(&server, &wiki).len(), 2);
    // Large (over 256 pages): an import stores its index at the end.
    let folder = alice.path("bulk");
    std::fs::create_dir_all(&folder).unwrap();
    for k in 0..300 {
        std::fs::write(folder.join(format!("Bulk{k}.md")), format!("# Bulk {k}\n")).unwrap();
    }
    alice.ok(&["import", folder.to_str().unwrap()]);
    let mut bob = Env::new(Some(&server));
    bob.vars.push(("ZKWIKI_WIKI".into(), wiki.clone()));
    bob.ok(&["login", "alice"]);

    // Small writes carry only their page: the index is not re-uploaded each time.
    let mut with_index = Vec::new();
    for n in 0..40 {
        alice.put(&format!("Note{n}.md"), &format!("# Note {n}\nword{n}x\n"));
        let changed = pages_changed_by_head(&server, &wiki);
        assert!(
            (1..=2).contains(&changed.len()),
            "write {n} changed {changed:?}"
        );
        if changed.len() == 2 {
            with_index.push(n);
        }
        if n == 5 {
            // Another machine lists and finds pages the stored index does not describe yet.
            let ls = bob.ok(&["ls"]);
            for k in 0..=5 {
                assert!(ls.contains(&format!("Note{k}.md")), "{ls}");
            }
            let hits = bob.json(&["search", "word5x"]);
            assert_eq!(hits["hits"][0]["path"], "Note5.md", "{hits}");
        }
    }
    // Past the lag limit (32 pages) one write rewrote the index, then it lagged again.
    assert_eq!(
        with_index.len(),
        1,
        "index written by writes {with_index:?}"
    );
    assert!(with_index[0] <= 32, "{with_index:?}");
    let ls = bob.ok(&["ls"]);
    assert_eq!(ls.matches("Note").count(), 40, "{ls}");
}
