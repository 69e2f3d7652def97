//! The passphrase protector: round trip, wrong passphrase, and the client-side KDF floor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use core_crypto::kdf::{KdfCost, KdfParams};
use core_crypto::protector::ProtectorKind;
use key_protector::{KeyProtector, PassphraseProtector, ProtectorContext, ProtectorError};
use zeroize::Zeroizing;

fn ctx() -> ProtectorContext {
    ProtectorContext {
        user: "alice".into(),
        wiki: None,
    }
}

#[test]
fn passphrase_round_trip_and_floor() {
    let p = PassphraseProtector::new(Zeroizing::new("correct horse".into()))
        .with_cost(KdfParams::FLOOR);
    assert_eq!(p.kind(), ProtectorKind::Passphrase);
    let (key, stored) = p.create(&ctx()).unwrap();
    assert_eq!(p.unlock(&stored, &ctx()).unwrap(), key);
    let wrong = PassphraseProtector::new(Zeroizing::new("wrong horse".into()));
    assert_ne!(wrong.unlock(&stored, &ctx()).unwrap(), key);

    // A server that lowers the parameters is refused by the client.
    let mut weak = KdfParams::decode(&stored).unwrap();
    weak.m_kib = 1024;
    assert!(matches!(
        p.unlock(&weak.encode(), &ctx()),
        Err(ProtectorError::Core(core_crypto::Error::WeakKdf(_)))
    ));
    let too_cheap = PassphraseProtector::new(Zeroizing::new("x".into())).with_cost(KdfCost {
        m_kib: 1024,
        t: 1,
        p: 1,
    });
    assert!(too_cheap.create(&ctx()).is_err());
}
