//! The AWS KMS protector.
//!
//! A fresh 32-byte protector key is made locally and wrapped with KMS `Encrypt` under the encryption
//! context `{"zkwiki:purpose": "protector-key/v1", "zkwiki:user": <name>}` (plus `"zkwiki:wiki":
//! <wiki id>` for an agent bound to one wiki). KMS refuses to `Decrypt` it under any other context,
//! so a wrapped key cannot be replayed for another account, and CloudTrail logs every unlock.
//!
//! Stored form: [`WrappedKey`] (`"ZKKM" ‖ 0x01 ‖ u16 len ‖ key ARN ‖ u32 len ‖ KMS ciphertext
//! blob`), whose format lives in `core_crypto::wrapped`.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use core_crypto::protector::{ProtectorKey, ProtectorKind};
pub use core_crypto::wrapped::WrappedKey;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::{KeyProtector, ProtectorContext, ProtectorError};

/// Where and how to reach KMS. Credentials and region otherwise come from the standard AWS chain
/// (environment, profile, web identity, container or instance role).
#[derive(Clone, Default)]
pub struct KmsConfig {
    /// The KMS key id, alias or ARN used to wrap new keys (unwrapping uses the ARN stored with the
    /// wrapped key).
    pub key_id: String,
    /// Endpoint override (a local KMS-compatible endpoint for testing); `AWS_ENDPOINT_URL_KMS` works too.
    pub endpoint: Option<String>,
    /// Region override.
    pub region: Option<String>,
    /// Static credentials (access key id, secret) instead of the chain, for local test endpoints.
    pub static_credentials: Option<(String, String)>,
}

/// Names the static access key id but never its secret.
impl core::fmt::Debug for KmsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KmsConfig")
            .field("key_id", &self.key_id)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field(
                "static_credentials",
                &self
                    .static_credentials
                    .as_ref()
                    .map(|(id, _)| (id.as_str(), "[REDACTED]")),
            )
            .finish()
    }
}

/// Wraps and unwraps protector keys with AWS KMS.
pub struct KmsProtector {
    config: KmsConfig,
    client: aws_sdk_kms::Client,
    runtime: tokio::runtime::Runtime,
}

impl core::fmt::Debug for KmsProtector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KmsProtector")
            .field("key_id", &self.config.key_id)
            .finish()
    }
}

fn context(ctx: &ProtectorContext) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("zkwiki:purpose", "protector-key/v1".to_owned()),
        ("zkwiki:user", ctx.user.clone()),
    ];
    if let Some(wiki) = ctx.wiki {
        out.push(("zkwiki:wiki", wiki.to_hex()));
    }
    out
}

impl KmsProtector {
    /// Connects (lazily: no call is made until a key is created or unlocked).
    pub fn new(config: KmsConfig) -> Result<Self, ProtectorError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProtectorError::Kms(format!("cannot start the async runtime: {e}")))?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some((id, secret)) = &config.static_credentials {
            loader = loader.credentials_provider(aws_sdk_kms::config::Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "zkwiki-static",
            ));
        }
        let sdk_config = runtime.block_on(loader.load());
        let client = aws_sdk_kms::Client::new(&sdk_config);
        Ok(Self {
            config,
            client,
            runtime,
        })
    }

    /// The SDK client (tests use it to create, disable and delete keys).
    pub fn client(&self) -> &aws_sdk_kms::Client {
        &self.client
    }

    /// Runs a future on this protector's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    fn endpoint(&self) -> String {
        self.config
            .endpoint
            .clone()
            .unwrap_or_else(|| "the AWS KMS endpoint".to_owned())
    }

    fn map_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        err: SdkError<E>,
        key: &str,
    ) -> ProtectorError {
        match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                return ProtectorError::KmsUnreachable {
                    endpoint: self.endpoint(),
                    detail: format!("{}", aws_sdk_kms::error::DisplayErrorContext(&err)),
                };
            }
            _ => {}
        }
        let key = key.to_owned();
        match err.code() {
            Some("DisabledException") => ProtectorError::KmsKeyDisabled { key },
            Some("NotFoundException") => ProtectorError::KmsKeyNotFound { key },
            // Pending deletion is reported as an invalid state.
            Some("KMSInvalidStateException") => ProtectorError::KmsKeyNotFound { key },
            Some("InvalidCiphertextException") | Some("IncorrectKeyException") => {
                ProtectorError::KmsWrongContext
            }
            Some("AccessDeniedException") => {
                ProtectorError::KmsAccessDenied(err.message().unwrap_or("access denied").to_owned())
            }
            _ => ProtectorError::Kms(format!("{}", aws_sdk_kms::error::DisplayErrorContext(&err))),
        }
    }

    /// Wraps a protector key.
    pub fn wrap(
        &self,
        key: &ProtectorKey,
        ctx: &ProtectorContext,
    ) -> Result<WrappedKey, ProtectorError> {
        let mut req = self
            .client
            .encrypt()
            .key_id(&self.config.key_id)
            .plaintext(Blob::new(key.expose().to_vec()));
        for (k, v) in context(ctx) {
            req = req.encryption_context(k, v);
        }
        let out = self
            .runtime
            .block_on(req.send())
            .map_err(|e| self.map_error(e, &self.config.key_id))?;
        let ciphertext = out
            .ciphertext_blob()
            .ok_or_else(|| ProtectorError::Kms("KMS returned no ciphertext".into()))?
            .as_ref()
            .to_vec();
        let key_arn = out.key_id().unwrap_or(&self.config.key_id).to_owned();
        Ok(WrappedKey {
            key_arn,
            ciphertext,
        })
    }

    /// The full ARN of a key named by id, alias or ARN, which is what a wrapped key records (a
    /// KMS login names the key by it). Asks `DescribeKey`; a caller without `kms:DescribeKey` gets
    /// the name back as given and must then give the full ARN.
    pub fn key_arn(&self, key: &str) -> Result<String, ProtectorError> {
        match self
            .runtime
            .block_on(self.client.describe_key().key_id(key).send())
        {
            Ok(out) => Ok(out
                .key_metadata()
                .and_then(|m| m.arn())
                .unwrap_or(key)
                .to_owned()),
            Err(e) => match self.map_error(e, key) {
                ProtectorError::KmsAccessDenied(_) => Ok(key.to_owned()),
                other => Err(other),
            },
        }
    }

    /// Checks the key's state first, so a disabled key or one pending deletion is reported as such
    /// (KMS itself refuses both; some KMS-compatible endpoints only report the state). A caller
    /// without `kms:DescribeKey` skips this check and relies on `Decrypt`'s answer.
    fn check_key_state(&self, key: &str) -> Result<(), ProtectorError> {
        use aws_sdk_kms::types::KeyState;
        let out = match self
            .runtime
            .block_on(self.client.describe_key().key_id(key).send())
        {
            Ok(out) => out,
            Err(e) => {
                return match self.map_error(e, key) {
                    ProtectorError::KmsAccessDenied(_) => Ok(()),
                    other => Err(other),
                };
            }
        };
        let key = key.to_owned();
        match out.key_metadata().and_then(|m| m.key_state()) {
            Some(KeyState::Disabled) => Err(ProtectorError::KmsKeyDisabled { key }),
            Some(KeyState::PendingDeletion) | Some(KeyState::PendingReplicaDeletion) => {
                Err(ProtectorError::KmsKeyNotFound { key })
            }
            _ => Ok(()),
        }
    }

    /// Unwraps a protector key with the same context.
    pub fn unwrap_key(
        &self,
        wrapped: &WrappedKey,
        ctx: &ProtectorContext,
    ) -> Result<ProtectorKey, ProtectorError> {
        self.check_key_state(&wrapped.key_arn)?;
        let mut req = self
            .client
            .decrypt()
            .key_id(&wrapped.key_arn)
            .ciphertext_blob(Blob::new(wrapped.ciphertext.clone()));
        for (k, v) in context(ctx) {
            req = req.encryption_context(k, v);
        }
        let out = self
            .runtime
            .block_on(req.send())
            .map_err(|e| self.map_error(e, &wrapped.key_arn))?;
        let plain = Zeroizing::new(
            out.plaintext()
                .ok_or_else(|| ProtectorError::Kms("KMS returned no plaintext".into()))?
                .as_ref()
                .to_vec(),
        );
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| ProtectorError::Kms("KMS returned a key of the wrong length".into()))?;
        Ok(ProtectorKey::from_bytes(bytes))
    }
}

impl KeyProtector for KmsProtector {
    fn kind(&self) -> ProtectorKind {
        ProtectorKind::Kms
    }

    fn create(&self, ctx: &ProtectorContext) -> Result<(ProtectorKey, Vec<u8>), ProtectorError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        let key = ProtectorKey::from_bytes(*bytes);
        let wrapped = self.wrap(&key, ctx)?;
        Ok((key, wrapped.encode()?))
    }

    fn unlock(
        &self,
        stored: &[u8],
        ctx: &ProtectorContext,
    ) -> Result<ProtectorKey, ProtectorError> {
        self.unwrap_key(&WrappedKey::decode(stored)?, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::KmsConfig;

    #[test]
    fn debug_never_shows_the_secret_access_key() {
        let c = KmsConfig {
            static_credentials: Some(("AKIDEXAMPLE".into(), "wJalrXUtnFEMI-secret".into())),
            ..KmsConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("AKIDEXAMPLE") && !shown.contains("wJalrXUtnFEMI"),
            "{shown}"
        );
    }
}
