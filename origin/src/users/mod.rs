//! Accounts in PostgreSQL: the rules for usernames and passwords, and the
//! changes an admin makes (`console`): role, disabled, deleted — each of which
//! ends the account's sessions (`auth::revoked`).

pub mod console;

use rushgate_core::api::UserView;
use rushgate_core::{ErrorCode, Role};
use sqlx::PgPool;

use crate::auth::password::Hashers;
use crate::error::ApiError;

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
    pub generation: i32,
    pub disabled: bool,
    pub deleted: bool,
    pub created_at: time::OffsetDateTime,
}

impl UserRow {
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Customer)
    }

    /// The generation sessions of this account carry.
    pub fn generation(&self) -> u32 {
        self.generation.max(0) as u32
    }

    /// Whether the account may sign in and keep its sessions.
    pub fn active(&self) -> bool {
        !self.disabled && !self.deleted
    }

    pub fn view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            role: self.role(),
            disabled: self.disabled,
            deleted: self.deleted,
            created_at: self.created_at,
        }
    }
}

const COLUMNS: &str = "id, username, password_hash, role, generation, \
     disabled_at IS NOT NULL AS disabled, deleted_at IS NOT NULL AS deleted, created_at";

/// Creates a user; `UsernameTaken` if the name exists.
pub async fn create(
    pool: &PgPool,
    hashers: &Hashers,
    username: &Username,
    password: Password,
    role: Role,
) -> Result<i64, ApiError> {
    let hash = hashers.hash(password.into_inner()).await?;
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

/// Creates a user or, if the name exists, resets its password and role (and
/// enables it again).
pub async fn upsert(
    pool: &PgPool,
    hashers: &Hashers,
    username: &Username,
    password: Password,
    role: Role,
) -> Result<i64, ApiError> {
    let hash = hashers.hash(password.into_inner()).await?;
    let id = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) \
         ON CONFLICT (username) DO UPDATE SET password_hash = $2, role = $3, \
           disabled_at = NULL, generation = users.generation + 1 RETURNING id",
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
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE username = $1"))
            .bind(username)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Option<UserRow>, ApiError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Accounts whose name starts with `prefix` (all without one), by name; at
/// most `limit`. Deleted ones are left out.
pub async fn list(pool: &PgPool, prefix: &str, limit: i64) -> Result<Vec<UserRow>, ApiError> {
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE deleted_at IS NULL AND username LIKE $1 \
         ORDER BY username LIMIT $2"
    ))
    .bind(pattern)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// What to change about an account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    pub delete: bool,
}

/// Applies `change` to account `id`; when its role, its being enabled or its
/// existence changed, the account moves to its next generation (its sessions
/// end). Refused when it would leave the deployment without an enabled admin.
/// `None`: no such account.
pub async fn change(
    pool: &PgPool,
    id: i64,
    change: Change,
) -> Result<Option<(UserRow, bool)>, ApiError> {
    let mut tx = pool.begin().await?;
    // The enabled admins, locked: two changes at once cannot both remove the
    // last but one.
    let admins: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL AND deleted_at IS NULL \
         ORDER BY id FOR UPDATE",
    )
    .fetch_all(&mut *tx)
    .await?;
    let Some(before): Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    if before.deleted {
        return Err(ApiError::invalid_state("the account is deleted"));
    }
    let role = change.role.unwrap_or(before.role());
    let disabled = change.disabled.unwrap_or(before.disabled) || change.delete;
    let stays_admin = role == Role::Admin && !disabled;
    if admins == [id] && !stays_admin {
        return Err(ApiError::invalid_state(
            "this is the only enabled admin: make another admin first",
        ));
    }
    let moved = role != before.role() || disabled != before.disabled || change.delete;
    let after: UserRow = sqlx::query_as(&format!(
        "UPDATE users SET role = $2, \
           disabled_at = CASE WHEN $3 THEN COALESCE(disabled_at, now()) END, \
           deleted_at = CASE WHEN $4 THEN now() END, \
           username = CASE WHEN $4 THEN 'deleted-' || id ELSE username END, \
           password_hash = CASE WHEN $4 THEN '!' ELSE password_hash END, \
           generation = generation + CASE WHEN $5 THEN 1 ELSE 0 END \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(role.as_str())
    .bind(disabled)
    .bind(change.delete)
    .bind(moved)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some((after, moved)))
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
