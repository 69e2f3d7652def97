//! The KMS protector against a real KMS API on loopback: `moto_server` (PyPI `moto[server]`),
//! installed by `cargo xtask test` into `.venv-moto/` (or named by `MOTO_SERVER`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;

use core_crypto::identity::UserIdentity;
use core_crypto::ids::WikiId;
use core_crypto::protector::ProtectorKind;
use key_protector::moto::MotoServer;
use key_protector::{
    KeyProtector, KmsConfig, KmsProtector, ProtectorContext, ProtectorError, WrappedKey,
};
use rand_core::OsRng;

fn protector(endpoint: &str, key_id: &str) -> KmsProtector {
    KmsProtector::new(KmsConfig {
        key_id: key_id.to_owned(),
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".into()),
        static_credentials: Some(("testing".into(), "testing".into())),
    })
    .unwrap()
}

fn new_key(p: &KmsProtector) -> String {
    let out = p.block_on(p.client().create_key().send()).unwrap();
    out.key_metadata().unwrap().key_id().to_owned()
}

fn ctx(user: &str) -> ProtectorContext {
    ProtectorContext {
        user: user.into(),
        wiki: None,
    }
}

#[test]
fn kms_protector_round_trip_context_and_key_states() {
    let moto = MotoServer::start();
    let admin = protector(&moto.endpoint, "unused");
    let key_id = new_key(&admin);
    let p = protector(&moto.endpoint, &key_id);
    assert_eq!(p.kind(), ProtectorKind::Kms);

    // Round trip, and the identity sealed under it opens again.
    let (key, stored) = p.create(&ctx("alice")).unwrap();
    let again = p.unlock(&stored, &ctx("alice")).unwrap();
    assert_eq!(again, key);
    let wrapped = WrappedKey::decode(&stored).unwrap();
    assert!(wrapped.key_arn.contains(&key_id), "{}", wrapped.key_arn);
    let id = UserIdentity::make(&mut OsRng);
    let sealed = id
        .seal(
            &mut OsRng,
            &key.derive_seal_key(),
            ProtectorKind::Kms,
            "alice",
            None,
        )
        .unwrap();
    let opened = UserIdentity::unseal(&sealed, &again.derive_seal_key(), "alice", None).unwrap();
    assert_eq!(opened.public(), id.public());

    // Another user's or another wiki's context is refused by KMS itself.
    assert!(matches!(
        p.unlock(&stored, &ctx("mallory")),
        Err(ProtectorError::KmsWrongContext)
    ));
    let agent_ctx = ProtectorContext {
        user: "bot".into(),
        wiki: Some(WikiId([1; 16])),
    };
    let (_, agent_stored) = p.create(&agent_ctx).unwrap();
    let other_wiki = ProtectorContext {
        wiki: Some(WikiId([2; 16])),
        ..agent_ctx.clone()
    };
    assert!(matches!(
        p.unlock(&agent_stored, &other_wiki),
        Err(ProtectorError::KmsWrongContext)
    ));
    p.unlock(&agent_stored, &agent_ctx).unwrap();

    // A tampered stored form is rejected before KMS is asked.
    let mut bad = stored.clone();
    bad[4] = 9;
    assert!(matches!(
        p.unlock(&bad, &ctx("alice")),
        Err(ProtectorError::Core(
            core_crypto::Error::UnsupportedVersion { .. }
        ))
    ));
    let mut flipped_blob = wrapped.clone();
    let last = flipped_blob.ciphertext.len() - 1;
    flipped_blob.ciphertext[last] ^= 1;
    assert!(p.unwrap_key(&flipped_blob, &ctx("alice")).is_err());

    // A disabled key fails with a clear error, and works again once enabled.
    p.block_on(p.client().disable_key().key_id(&key_id).send())
        .unwrap();
    let err = p.unlock(&stored, &ctx("alice")).unwrap_err();
    assert!(
        matches!(err, ProtectorError::KmsKeyDisabled { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("disabled"), "{err}");
    p.block_on(p.client().enable_key().key_id(&key_id).send())
        .unwrap();
    assert_eq!(p.unlock(&stored, &ctx("alice")).unwrap(), key);

    // A key scheduled for deletion fails.
    p.block_on(
        p.client()
            .schedule_key_deletion()
            .key_id(&key_id)
            .pending_window_in_days(7)
            .send(),
    )
    .unwrap();
    let err = p.unlock(&stored, &ctx("alice")).unwrap_err();
    assert!(
        matches!(err, ProtectorError::KmsKeyNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("pending deletion"), "{err}");
}

#[test]
fn unreachable_kms_says_so() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let p = protector(&endpoint, "arn:aws:kms:us-east-1:000000000000:key/none");
    let stored = WrappedKey {
        key_arn: "arn:aws:kms:us-east-1:000000000000:key/none".into(),
        ciphertext: vec![1, 2, 3],
    }
    .encode()
    .unwrap();
    let err = p.unlock(&stored, &ctx("alice")).unwrap_err();
    assert!(
        matches!(err, ProtectorError::KmsUnreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("needs KMS"), "{err}");
}
