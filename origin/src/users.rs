//! Users in PostgreSQL, and the rules for usernames and passwords.

use rushgate_core::Role;
use sqlx::PgPool;

use crate::auth::password;
use crate::error::ApiError;
use rushgate_core::ErrorCode;

/// A username that passed the rules: 3–32 of `a-z A-Z 0-9 _ . -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok_len = (3..=32).contains(&raw.len());
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if ok_len && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::invalid(
                "username",
                "must be 3 to 32 letters, digits, '_', '.' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that passed the rules: 8–128 characters.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        if (8..=128).contains(&raw.chars().count()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ApiError::invalid("password", "must be 8 to 128 characters"))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
}

impl UserRow {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }
}

/// Creates a user; `UsernameTaken` if the name exists.
pub async fn create(
    pool: &PgPool,
    username: &Username,
    password: Password,
    role: Role,
) -> Result<i64, ApiError> {
    let hash = password::hash(password.into_inner()).await?;
    let id = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO NOTHING RETURNING id",
    )
    .bind(username.as_str())
    .bind(hash)
    .bind(role.as_str())
    .fetch_optional(pool)
    .await?;
    id.ok_or(ApiError::from(ErrorCode::UsernameTaken))
}

/// Creates a user or, if the name exists, resets its password and role.
pub async fn upsert(
    pool: &PgPool,
    username: &Username,
    password: Password,
    role: Role,
) -> Result<i64, ApiError> {
    let hash = password::hash(password.into_inner()).await?;
    let id = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET password_hash = $2, role = $3 RETURNING id",
    )
    .bind(username.as_str())
    .bind(hash)
    .bind(role.as_str())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub async fn find_by_username(pool: &PgPool, username: &str) -> Result<Option<UserRow>, ApiError> {
    Ok(
        sqlx::query_as("SELECT id, username, password_hash, role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(pool)
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_rules() {
        assert!(Username::parse("alice_01").is_ok());
        for bad in ["al", "a b c", "", "ünïcode", &"x".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_rules_and_redaction() {
        assert!(Password::parse("short").is_err());
        let p = Password::parse("long enough").unwrap();
        assert!(!format!("{p:?}").contains("long enough"));
    }
}
