//! Profiles: one machine, several accounts on several servers, each with its own wiki names;
//! `zkwiki auth list|switch` and `--profile`; clear errors when not logged in; wiki id prefixes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, Server};

#[test]
fn two_servers_two_accounts_one_home() {
    let a = Server::start();
    let b = Server::start();
    let mut me = Env::new(Some(&a));
    // Not logged in: said plainly (exit 3), not "no wiki selected".
    let err = me.fails(&["ls"], 3);
    assert!(err.contains("not logged in"), "{err}");
    let wiki_a = me.setup("alice", "notes");
    me.put("OnA.md", "on server A\n");
    // The same HOME logs in to another server as another user.
    me.server = Some(b.url.clone());
    std::fs::remove_file(me.path("recovery.txt")).unwrap();
    let wiki_b = me.setup("bob", "notes");
    me.put("OnB.md", "on server B\n");
    let list = me.json(&["auth", "list"]);
    let profiles = list["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 2, "{list}");
    let name_a = profiles.iter().find(|p| p["user"] == "alice").unwrap()["profile"]
        .as_str()
        .unwrap()
        .to_owned();
    let name_b = profiles.iter().find(|p| p["user"] == "bob").unwrap()["profile"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name_a.starts_with("alice@127.0.0.1:"));
    assert!(
        profiles
            .iter()
            .any(|p| p["profile"] == name_b.as_str() && p["current"] == true)
    );
    // Each profile keeps its own wiki names: "notes" is a different wiki on each.
    me.server = None;
    assert_eq!(me.ok(&["ls"]), "OnB.md\n");
    assert_eq!(me.ok(&["--profile", &name_a, "ls"]), "OnA.md\n");
    me.ok(&["auth", "switch", &name_a]);
    assert_eq!(me.ok(&["ls"]), "OnA.md\n");
    assert_eq!(me.ok(&["cat", "OnA.md"]), "on server A\n");
    let err = me.fails(&["--profile", "nobody@nowhere", "ls"], 3);
    assert!(err.contains("no profile"), "{err}");
    // A unique prefix of a wiki id selects it.
    assert_eq!(me.ok(&["--wiki", &wiki_a[..8], "ls"]), "OnA.md\n");
    me.ok(&["auth", "switch", &name_b]);
    assert_eq!(me.ok(&["--wiki", &wiki_b[..8], "ls"]), "OnB.md\n");
    let err = me.fails(&["--wiki", "zzzz", "ls"], 6);
    assert!(err.contains("no wiki named"), "{err}");
}

#[test]
fn a_configuration_from_before_profiles_is_kept() {
    let server = Server::start();
    let me = Env::new(Some(&server));
    let config_dir = me.tmp.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        format!(
            r#"{{"server": "{}", "default_wiki": "old", "wikis": {{"old": "{}"}}}}"#,
            server.url,
            "ab".repeat(16)
        ),
    )
    .unwrap();
    let list = me.json(&["auth", "list"]);
    let p = &list["profiles"][0];
    assert_eq!(p["server"], server.url.as_str(), "{list}");
    assert_eq!(p["default_wiki"], "old");
    assert_eq!(p["current"], true);
}

/// A wiki's title lives encrypted inside it: a second machine shows the same title (not the
/// local name of the first), a change reaches it, and a title that would not show as it is is
/// refused before anything is sent.
#[test]
fn the_title_is_the_same_on_every_machine() {
    let server = Server::start();
    let laptop = Env::new(Some(&server));
    laptop.ok(&["register", "alice", "--recovery-key-out", "recovery.txt"]);
    let made = laptop.json(&["wiki", "create", "lab", "--title", "Lab notebook"]);
    let wiki = made["wiki"].as_str().unwrap().to_owned();
    assert_eq!(made["title"], "Lab notebook");
    assert_eq!(laptop.ok(&["wiki", "title"]), "Lab notebook\n");

    // Another machine: no local name, but the title, once it opened the wiki.
    let desktop = Env::new(Some(&server));
    desktop.ok(&["login", "alice"]);
    let before = desktop.run(&["wiki", "list"]);
    assert!(before.stdout.contains(" ?"), "{}", before.stdout);
    assert!(
        before.stderr.contains("not opened on this machine"),
        "{}",
        before.stderr
    );
    desktop.ok(&["--wiki", &wiki[..8], "ls"]);
    let list = desktop.json(&["wiki", "list"]);
    assert_eq!(list["wikis"][0]["title"], "Lab notebook", "{list}");
    assert_eq!(list["wikis"][0]["name"], serde_json::Value::Null);

    // A new title from the desktop reaches the laptop.
    desktop.ok(&[
        "--wiki",
        &wiki[..8],
        "wiki",
        "title",
        "Lab 2027",
        "--description",
        "shared",
    ]);
    let shown = laptop.json(&["wiki", "title"]);
    assert_eq!(shown["title"], "Lab 2027");
    assert_eq!(shown["description"], "shared");
    assert!(laptop.ok(&["wiki", "list"]).contains("\"Lab 2027\""));

    // Control characters never reach a terminal as a title; nothing was written.
    let seq = laptop.json(&["wiki", "list"])["wikis"][0]["seq"].clone();
    let err = laptop.fails(&["wiki", "title", "evil\u{1b}]0;pwned\u{7}"], 2);
    assert!(err.contains("control or invisible"), "{err}");
    assert_eq!(laptop.json(&["wiki", "list"])["wikis"][0]["seq"], seq);
    // The settings record is not a page.
    assert_eq!(laptop.ok(&["ls"]), "");
}
