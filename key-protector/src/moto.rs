//! A real KMS API on loopback for tests: `moto_server` (PyPI `moto[server]`, installed by
//! `cargo xtask test` into `.venv-moto/`, or named by `MOTO_SERVER`) on a free port.
//!
//! Only with the `test-support` feature; the key-protector and CLI tests share it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{KmsConfig, KmsProtector};

/// A running `moto_server`, killed on drop.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test credentials and region moto accepts.
pub const TEST_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-moto/bin/moto_server")
}

impl MotoServer {
    /// Starts `moto_server` on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// If the binary is missing or does not start within 30 s (this is test support).
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    pub fn start() -> Self {
        let bin = binary();
        assert!(
            bin.exists(),
            "moto_server not found at {}: run `cargo xtask test` (it installs moto[server]) or set MOTO_SERVER",
            bin.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A protector for `key_id` on this endpoint with the test credentials.
    ///
    /// # Panics
    /// If the SDK cannot be set up.
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    pub fn protector(&self, key_id: &str) -> KmsProtector {
        KmsProtector::new(KmsConfig {
            key_id: key_id.to_owned(),
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            static_credentials: Some(("testing".into(), "testing".into())),
        })
        .expect("KMS client")
    }

    /// Creates a symmetric key and returns its id.
    ///
    /// # Panics
    /// If moto refuses.
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    pub fn create_key(&self) -> String {
        let admin = self.protector("");
        let out = admin
            .block_on(admin.client().create_key().send())
            .expect("CreateKey");
        out.key_metadata()
            .expect("key metadata")
            .key_id()
            .to_owned()
    }
}
