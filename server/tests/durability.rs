//! Crash states made for real on disk, then a real server restarted on them: a ref that names a
//! commit whose objects are missing or torn is rolled back to the last complete commit (and only
//! that far), a torn ref is recovered from the journal, and torn objects of a commit that never
//! took effect (loose, or a pack) are set aside; `git fsck --strict` is clean afterwards, the
//! server serves the repaired head and writing goes on from it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// The packs of a repository (`objects/pack/pack-*.pack`).
fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo.join("objects/pack"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "pack"));
    out.sort();
    out
}

/// The loose object files of what commit `spec` adds to its parent (commit, trees, blobs).
fn added_files(repo: &Path, spec: &str) -> Vec<PathBuf> {
    let range = format!("{spec}~1..{spec}");
    git(repo, &["rev-list", "--objects", &range])
        .lines()
        .map(|l| {
            let oid = l.split(' ').next().unwrap();
            repo.join("objects").join(&oid[..2]).join(&oid[2..])
        })
        .inspect(|p| assert!(p.is_file(), "{} is loose", p.display()))
        .collect()
}

/// Makes a (read-only) object file writable, to tear it.
fn writable(path: &Path) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
}

fn head_commit(repo: &Path) -> String {
    git(repo, &["rev-parse", "main"]).trim().to_owned()
}

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    repo: PathBuf,
    alice: User,
    wiki: String,
}

/// A wiki with `pages` pages (sequence `pages + 1`) written by a server process that then
/// stopped cleanly.
fn wiki_with_pages(pages: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut p = Process::spawn(&data);
    let c = p.client();
    let alice = register(&c, "alice");
    let mut view = create_wiki(&c, &alice);
    for i in 0..pages {
        put_page(
            &c,
            &alice,
            &mut view,
            &format!("p{i}.md"),
            &format!("page {i}"),
        );
    }
    assert!(p.terminate().success());
    let repo = data.join("wikis").join(format!("{}.git", view.wiki));
    assert_eq!(check_repo(&repo).0.seq, pages as u64 + 1);
    Setup {
        _dir: dir,
        data,
        repo,
        alice,
        wiki: view.wiki,
    }
}

/// Restarts a server on the data, checks the head it serves and that one more write lands on
/// it, and that the repository is `git fsck --strict` clean with no gap.
fn restart_and_expect(s: &mut Setup, seq: u64) {
    let p = Process::spawn(&s.data);
    let c = p.client();
    let token = login(&c, "alice", "passphrase", &s.alice.passphrase_auth);
    s.alice.token = token.clone();
    let head = c.get(&format!("/api/v1/wikis/{}/head", s.wiki), Some(&token));
    head.expect(200, "");
    let mut view = WikiView::fetch(&c, &token, &s.wiki, &s.alice.identity);
    assert_eq!(view.snap.state.seq, seq, "head after restart");
    assert_eq!(check_repo(&s.repo).0.seq, seq);
    let (_, _, next) = put_page(&c, &s.alice, &mut view, "after.md", "after the crash");
    assert_eq!(next, seq + 1);
    assert_eq!(check_repo(&s.repo).0.seq, seq + 1);
}

#[test]
fn ref_ahead_of_missing_objects_is_rolled_back_to_the_last_complete_commit() {
    let mut s = wiki_with_pages(4);
    // The crash state of one flush per commit: the ref reached the disk, the objects of the
    // commit it names did not.
    let parent = git(&s.repo, &["rev-parse", "main~1"]).trim().to_owned();
    for f in added_files(&s.repo, "main") {
        std::fs::remove_file(f).unwrap();
    }
    assert!(
        !git_ok(&s.repo, &["fsck", "--strict", "--no-dangling"]),
        "the crash state is broken to begin with"
    );
    restart_and_expect(&mut s, 4);
    assert_eq!(git(&s.repo, &["rev-parse", "main~1"]).trim(), parent);
}

#[test]
fn ref_ahead_of_torn_objects_is_rolled_back_and_the_torn_files_set_aside() {
    let mut s = wiki_with_pages(4);
    // Object files renamed into place whose data never reached the disk: their length, zeros.
    for f in added_files(&s.repo, "main") {
        let len = std::fs::metadata(&f).unwrap().len() as usize;
        writable(&f);
        std::fs::write(&f, vec![0u8; len]).unwrap();
    }
    restart_and_expect(&mut s, 4);
    let quarantined = std::fs::read_dir(s.repo.join("zkwiki-quarantine"))
        .unwrap()
        .count();
    assert!(quarantined > 0, "the torn files are kept aside");
}

#[test]
fn only_the_commit_object_lost_is_enough_to_roll_back() {
    // The tree and blobs made it, the commit object did not: the journal still names the parent.
    let mut s = wiki_with_pages(3);
    let commit = git(&s.repo, &["rev-parse", "main"]).trim().to_owned();
    std::fs::remove_file(s.repo.join("objects").join(&commit[..2]).join(&commit[2..])).unwrap();
    restart_and_expect(&mut s, 3);
}

#[test]
fn two_commits_lost_in_the_crash_roll_back_two() {
    // Deeper than the server's rules let a crash reach (it flushes a head it did not flush itself
    // before building on it), but the repair must not care: with the objects of the last two
    // commits gone, the journal leads back past both.
    let mut s = wiki_with_pages(5);
    let lost: Vec<PathBuf> = ["main", "main~1"]
        .iter()
        .flat_map(|spec| added_files(&s.repo, spec))
        .collect();
    for f in lost {
        let _ = std::fs::remove_file(f);
    }
    restart_and_expect(&mut s, 4);
}

#[test]
fn torn_ref_is_recovered_from_the_journal_without_losing_the_head() {
    let mut s = wiki_with_pages(3);
    let last = head_commit(&s.repo);
    // The ref file renamed into place before its contents reached the disk.
    std::fs::write(s.repo.join("refs/heads/main"), b"").unwrap();
    restart_and_expect(&mut s, 4);
    assert_eq!(git(&s.repo, &["rev-parse", "main~1"]).trim(), last);
}

#[test]
fn torn_objects_of_a_commit_that_never_took_effect_are_set_aside() {
    let mut s = wiki_with_pages(3);
    // A commit whose objects were written but whose ref move never happened (crash in between),
    // and they are torn: object files and a pack newer than the ref, with garbage inside.
    let loose = s
        .repo
        .join("objects/ab/0123456789abcdef0123456789abcdef012345");
    std::fs::create_dir_all(loose.parent().unwrap()).unwrap();
    std::fs::write(&loose, b"").unwrap();
    std::fs::create_dir_all(s.repo.join("objects/pack")).unwrap();
    let torn = s
        .repo
        .join("objects/pack/pack-0123456789abcdef0123456789abcdef01234567");
    std::fs::write(
        torn.with_extension("pack"),
        b"PACK\0\0\0\x02\0\0\0\x01garbage",
    )
    .unwrap();
    std::fs::write(torn.with_extension("idx"), b"\xfftOc\0\0\0\x02torn").unwrap();
    assert!(!git_ok(&s.repo, &["fsck", "--strict", "--no-dangling"]));
    restart_and_expect(&mut s, 4);
    assert!(!loose.exists());
    assert!(!torn.with_extension("pack").exists());
    assert!(packs(&s.repo).is_empty());
}

fn git_ok(dir: &Path, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}
