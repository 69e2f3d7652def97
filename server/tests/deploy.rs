//! The deployment files: the guide shows exactly the files in `server/deploy/`, they say what the
//! guide promises (HSTS, the metrics kept private, the trusted proxy, a hardened unit), systemd
//! accepts the units, and the container image runs the server as a non-root user (built where a
//! docker engine is available).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_guide_shows_the_deploy_files_and_they_say_what_it_promises() {
    let guide = read("docs/deploy.md");
    for file in [
        "server/deploy/zkwiki-server.service",
        "server/deploy/Caddyfile",
        "server/deploy/nginx.conf",
    ] {
        let text = read(file);
        assert!(
            guide.contains(text.trim_end()),
            "docs/deploy.md does not show {file} as it is"
        );
    }
    let caddy = read("server/deploy/Caddyfile");
    let nginx = read("server/deploy/nginx.conf");
    for conf in [&caddy, &nginx] {
        assert!(conf.contains("Strict-Transport-Security \"max-age=63072000"));
        assert!(conf.contains("/metrics") && conf.contains("404"));
        assert!(conf.contains("127.0.0.1:8080") && conf.contains("X-Request-Id"));
    }
    assert!(nginx.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
    assert!(nginx.contains("return 301 https://"));
    let unit = read("server/deploy/zkwiki-server.service");
    for line in [
        "User=zkwiki",
        "--listen 127.0.0.1:8080",
        "--trusted-proxy 127.0.0.1,::1",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/zkwiki",
        "CapabilityBoundingSet=",
        "PrivateTmp=yes",
        "MemoryDenyWriteExecute=yes",
        "SystemCallFilter=@system-service",
        "StateDirectoryMode=0700",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(line), "the unit lacks {line}");
    }
}

#[test]
fn systemd_accepts_the_units() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed; the units were not verified");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in [
        "zkwiki-server.service",
        "zkwiki-backup.service",
        "zkwiki-backup.timer",
    ] {
        // The real binary where the unit expects the installed one.
        let text = read(&format!("server/deploy/{name}")).replace(
            "/usr/local/bin/zkwiki-server",
            env!("CARGO_BIN_EXE_zkwiki-server"),
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        units.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("Unknown") && !err.contains("Failed"),
        "systemd-analyze: {err}"
    );
}

#[test]
fn the_container_image_runs_the_server_as_a_non_root_user() {
    let dockerfile = read("Dockerfile");
    let final_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    let user = final_stage
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid != "root" && uid != "0", "USER {user}");
    assert!(final_stage.contains("ENTRYPOINT [\"/usr/local/bin/zkwiki-server\"]"));
    assert!(final_stage.contains("VOLUME [\"/data\"]") && final_stage.contains("git"));
    assert!(read(".dockerignore").lines().any(|l| l == "target"));

    let engine = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if !engine.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "SKIPPED: no docker engine here (`docker info` failed), so the image was not built; \
             the Dockerfile was checked as text only"
        );
        return;
    }
    let tag = format!("zkwiki-server-test:{}", std::process::id());
    let build = Command::new("docker")
        .args(["build", "-q", "-t", &tag, "."])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let id = Command::new("docker")
        .args(["run", "--rm", "--entrypoint", "id", &tag, "-u"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout).trim(), "10001");
    let version = Command::new("docker")
        .args(["run", "--rm", &tag, "--version"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("zkwiki-server "));
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}
