//! Password hashing with argon2id, off the async runtime.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::ApiError;

fn hash_blocking(password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))
}

/// A hash of a random password nobody knows, checked when the user is unknown so
/// that both cases take the same time.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&rand::random::<[u8; 32]>()).unwrap_or_default());

/// Hashes a password into a PHC string (argon2id, default parameters).
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes()))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
}

/// Checks a password against a stored hash (`None`: unknown user, always false).
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && known
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash("correct horse".into()).await.unwrap();
        let b = hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salts differ");
        assert!(
            verify("correct horse".into(), Some(a.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong".into(), Some(a)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
