//! Importing again and resuming: a folder's last batch always arrives; a git repository
//! imported twice, caught up after new commits (a rename among them) or re-run after the import
//! was killed adds each source commit exactly once, keeps one page id across renames, and
//! leaves a wiki that clones and exports; commit messages, e-mails and time zones arrive.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Server, git, list_files};

/// A git commit in `dir` as `who <mail>` at `date` (git's `@SECONDS +HHMM`), with `message`.
fn commit(dir: &Path, who: &str, mail: &str, date: &str, message: &str) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["commit", "-q", "--allow-empty", "-m", message])
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", who)
        .env("GIT_AUTHOR_EMAIL", mail)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_NAME", who)
        .env("GIT_COMMITTER_EMAIL", mail)
        .env("GIT_COMMITTER_DATE", date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn new_repo(env: &Env) -> std::path::PathBuf {
    let dir = env.path("source");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    dir
}

/// The ids of the wiki's live pages by path.
fn ids(env: &Env) -> Vec<(String, String)> {
    let v = env.json(&["ls"]);
    let mut out: Vec<(String, String)> = v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["page"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_folder_whose_last_file_is_skipped_still_arrives_whole() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "w");
    let src = alice.path("folder");
    write(&src, "a.md", "# A\n");
    write(&src, "b.md", "# B\n");
    // Last in name order, and refused (a backslash in a name).
    write(&src, "z\\bad.md", "# bad\n");
    let r = alice.run(&["import", src.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("imported 2 page versions in 1 commit"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 skipped"), "{}", r.stdout);
    assert!(r.stderr.contains("skipped \"z\\\\bad.md\""), "{}", r.stderr);
    assert_eq!(alice.ok(&["ls"]), "a.md\nb.md\n");
    assert_eq!(alice.ok(&["cat", "b.md"]), "# B\n");
    // Again: nothing new, nothing written.
    let v = alice.json(&["import", src.to_str().unwrap()]);
    assert_eq!(
        (v["commits"].as_u64(), v["unchanged"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(v["skipped"], 1);
}

#[test]
fn a_git_repository_imported_again_adds_only_its_new_commits_and_follows_renames() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "w");
    let src = new_repo(&alice);
    write(&src, "home.md", "# Home\n");
    write(&src, "old name.md", "# Page\n");
    git(&src, &["add", "-A"]);
    commit(
        &src,
        "Ada Lovelace",
        "ada@example.org",
        "@1764320400 +0530",
        "First pages\n\nWith a body line.",
    );
    let v = alice.json(&["import", src.to_str().unwrap()]);
    assert_eq!(
        (v["commits"].as_u64(), v["source_commits"].as_u64()),
        (Some(1), Some(1))
    );
    let before = ids(&alice);

    // The same repository again: nothing.
    let v = alice.json(&["import", src.to_str().unwrap()]);
    assert_eq!(v["commits"], 0);
    assert_eq!(
        (
            v["source_commits"].as_u64(),
            v["source_commits_before"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(ids(&alice), before);
    let out = alice.ok(&["import", src.to_str().unwrap()]);
    assert!(
        out.starts_with("nothing new: the wiki holds all 1 commit of "),
        "{out}"
    );

    // The source goes on: a rename with an edit, then a new page.
    git(&src, &["mv", "old name.md", "new name.md"]);
    write(&src, "new name.md", "# Page\n\nMore.\n");
    git(&src, &["add", "-A"]);
    commit(
        &src,
        "Charles Babbage",
        "charles@example.org",
        "@1764324000 -0300",
        "Rename the page",
    );
    write(&src, "later.md", "# Later\n");
    git(&src, &["add", "-A"]);
    commit(
        &src,
        "Ada Lovelace",
        "ada@example.org",
        "@1764327600 +0000",
        "Later",
    );
    let out = alice.ok(&["import", src.to_str().unwrap()]);
    assert!(
        out.contains("2 commits of the repository new, 1 imported before"),
        "{out}"
    );
    let after = ids(&alice);
    assert_eq!(
        after.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
        ["home.md", "later.md", "new name.md"]
    );
    // The renamed page kept its id: one page, its history across the rename.
    let old_id = &before.iter().find(|(p, _)| p == "old name.md").unwrap().1;
    let new_id = &after.iter().find(|(p, _)| p == "new name.md").unwrap().1;
    assert_eq!(old_id, new_id);
    let log = alice.json(&["log", "new name.md"]);
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["renamed", "created"]);

    // Messages, e-mails and time zones came across and show in history.
    assert_eq!(entries[0]["message"], "Rename the page");
    assert_eq!(entries[0]["author_email"], "charles@example.org");
    assert_eq!(entries[0]["tz_offset_minutes"], -180);
    assert_eq!(entries[1]["message"], "First pages\n\nWith a body line.");
    assert_eq!(entries[1]["tz_offset_minutes"], 330);
    let text = alice.ok(&["log", "new name.md"]);
    assert!(text.contains("2025-11-28 07:00:00 -03:00"), "{text}");
    assert!(text.contains("<charles@example.org>"), "{text}");
    assert!(text.contains("        Rename the page\n"), "{text}");
    assert!(text.contains("2025-11-28 14:30:00 +05:30"), "{text}");
    let wide = alice.ok(&["log"]);
    assert!(wide.contains("        With a body line.\n"), "{wide}");

    // A third time: still nothing; and the wiki clones and exports (no false alarm).
    assert_eq!(alice.json(&["import", src.to_str().unwrap()])["commits"], 0);
    let url = format!("{}/git/{wiki}.git", server.url);
    alice.ok(&["clone", &url, "cl"]);
    assert_eq!(
        list_files(&alice.path("cl")),
        ["home.md", "later.md", "new name.md"]
    );
    let out = alice.path("out");
    alice.ok(&["export", out.to_str().unwrap()]);
    assert_eq!(list_files(&out), ["home.md", "later.md", "new name.md"]);
}

#[test]
fn a_killed_git_import_resumed_adds_no_duplicate_page_or_version() {
    const COMMITS: usize = 40;
    let mut server = Server::start();
    let alice = Env::new(Some(&server));
    let wiki = alice.setup("alice", "w");
    let src = new_repo(&alice);
    for i in 0..COMMITS {
        // Five pages edited in turn, one renamed halfway.
        let page = if i >= 20 && i % 5 == 0 {
            "renamed.md".to_owned()
        } else {
            format!("p{}.md", i % 5)
        };
        if i == 20 {
            git(&src, &["mv", "p0.md", "renamed.md"]);
        }
        write(&src, &page, &format!("# {page}\n\nversion {i}\n"));
        git(&src, &["add", "-A"]);
        commit(
            &src,
            "Ada",
            "ada@example.org",
            &format!("@{} +0100", 1_764_320_400 + i),
            &format!("edit {i}"),
        );
    }
    let repo = server.repo(&wiki);
    let server_commits = || {
        git(&repo, &["rev-list", "--count", "--all"])
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    let base = server_commits();

    // Kill the import once a few of its commits are in.
    let mut child = alice
        .cmd(&["import", src.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while server_commits() < base + 5 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the import made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The import may die with a commit in flight, which the server still makes after its client
    // is gone: counted right away, it landed after the count 1 time in 20 and the resume then
    // started one commit later than `done`. Stopping the server settles it (that commit is in or
    // out); the resume runs against the server started again on the same data.
    server.restart();
    let done = server_commits() - base;
    assert!(
        done < COMMITS,
        "killed too late to test resuming ({done} commits in)"
    );

    // Resume, then once more.
    let v = alice.json(&["import", src.to_str().unwrap()]);
    assert_eq!(
        v["source_commits"].as_u64().unwrap() + v["source_commits_before"].as_u64().unwrap(),
        COMMITS as u64
    );
    assert_eq!(v["source_commits_before"].as_u64().unwrap(), done as u64);
    assert_eq!(alice.json(&["import", src.to_str().unwrap()])["commits"], 0);

    // One wiki commit per source commit, one page per source file, each page's history as git's.
    assert_eq!(server_commits() - base, COMMITS);
    let pages: Vec<String> = ids(&alice).into_iter().map(|(p, _)| p).collect();
    assert_eq!(pages, ["p1.md", "p2.md", "p3.md", "p4.md", "renamed.md"]);
    for page in &pages {
        let ours = alice.json(&["log", "-n", "1000", page]);
        let ours: Vec<String> = ours["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect();
        let theirs: Vec<String> = git(&src, &["log", "--follow", "--format=%s", "--", page])
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(ours, theirs, "history of {page}");
    }
}

#[test]
fn messages_of_members_and_the_wikis_link_style() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "w");
    let r = alice.run_with_input(&["put", "-m", "Start the plan", "Plan.md"], b"# Plan\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    alice.ok(&["mv", "-m", "Better name", "Plan.md", "Roadmap.md"]);
    let log = alice.json(&["log", "Roadmap.md"]);
    let messages: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["Better name", "Start the plan"]);
    // A member's own version has no e-mail and no zone: shown in UTC.
    assert!(log["entries"][0]["author_email"].is_null());
    assert!(alice.ok(&["log", "Roadmap.md"]).contains(" UTC "));

    // The link style: target first by default; changed in the wiki's encrypted settings.
    assert_eq!(
        alice.json(&["wiki", "link-style"])["wikilink_style"],
        "target|label"
    );
    let v = alice.json(&["wiki", "link-style", "label|target"]);
    assert!(v["seq"].is_u64());
    assert_eq!(
        alice.json(&["wiki", "link-style"])["wikilink_style"],
        "label|target"
    );
    // Again: nothing to write.
    assert!(alice.json(&["wiki", "link-style", "label|target"])["seq"].is_null());
    // The title (another setting) is untouched.
    assert_eq!(alice.json(&["wiki", "title"])["title"], "w");
    alice.fails(&["wiki", "link-style", "sideways"], 2);
}

#[test]
fn a_wiki_holding_the_repository_without_a_record_resumes_after_the_commit_it_holds() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "w");
    let src = new_repo(&alice);
    write(&src, "home.md", "# Home\n");
    git(&src, &["add", "-A"]);
    commit(&src, "Ada", "ada@example.org", "@1764320400 +0000", "one");
    write(&src, "page.md", "# Page\n");
    git(&src, &["add", "-A"]);
    commit(&src, "Ada", "ada@example.org", "@1764320460 +0000", "two");
    // Files only: no record of the repository in the wiki (as an import before records were kept).
    alice.ok(&["import", "--no-history", src.to_str().unwrap()]);
    let before = ids(&alice);
    git(&src, &["mv", "page.md", "renamed.md"]);
    commit(&src, "Ada", "ada@example.org", "@1764320520 +0000", "three");
    let r = alice.run(&["import", src.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("already holds"), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("1 commit of the repository new, 2 imported before"),
        "{}",
        r.stdout
    );
    let after = ids(&alice);
    assert_eq!(after.len(), 2);
    let page_id = &before.iter().find(|(p, _)| p == "page.md").unwrap().1;
    assert_eq!(
        &after.iter().find(|(p, _)| p == "renamed.md").unwrap().1,
        page_id
    );
    assert_eq!(alice.json(&["import", src.to_str().unwrap()])["commits"], 0);
}

#[test]
fn a_folder_scoped_writer_imports_an_otterwiki_repository_into_its_folder() {
    let server = Server::start();
    let alice = Env::new(Some(&server));
    alice.setup("alice", "w");
    let key = alice.path("importer.json");
    alice.ok(&[
        "agent",
        "grant",
        "importer",
        "--role",
        "write",
        "--prefix",
        "archive",
        "--expires",
        "1h",
        "--out",
        key.to_str().unwrap(),
    ]);
    let src = new_repo(&alice);
    write(&src, "home.md", "# Home\n\n[[the page|page]]\n");
    git(&src, &["add", "-A"]);
    // Otterwiki's first commit, so the import would set the wiki's link style if it could.
    commit(
        &src,
        "Otterwiki Robot",
        "noreply@otterwiki",
        "@1764320400 +0000",
        "Initial commit",
    );
    write(&src, "page.md", "# Page\n");
    git(&src, &["add", "-A"]);
    commit(&src, "Ada", "ada@example.org", "@1764320460 +0000", "Page");

    let agent = Env::new(Some(&server));
    let k = key.to_str().unwrap();
    let r = agent.run(&[
        "--key-file",
        k,
        "import",
        src.to_str().unwrap(),
        "--into",
        "archive",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("only a member with access to the whole wiki"),
        "{}",
        r.stderr
    );
    assert_eq!(
        agent.ok(&["--key-file", k, "ls"]),
        "archive/home.md\narchive/page.md\n"
    );
    // Outside its folder it is refused, and the wiki's settings were not touched.
    let stderr = agent.fails(&["--key-file", k, "import", src.to_str().unwrap()], 3);
    assert!(stderr.contains("only write pages under"), "{stderr}");
    assert_eq!(
        alice.json(&["wiki", "link-style"])["wikilink_style"],
        "target|label"
    );
}
