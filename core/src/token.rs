//! Signed tokens: HMAC-SHA256 over a compact binary body, base64url encoded.
//!
//! A token is `base64url(body) "." base64url(tag)` where
//! `body = version(1) kind(1) key_id(4) claims(..)`, the claims in postcard (a
//! compact serde format), and `tag = HMAC-SHA256(key, "rushgate-token\0" ||
//! body)`.
//!
//! The kind byte is inside the signed body and each claims type checks it, so a
//! token of one kind never verifies as another. The key id lets a deployment rotate
//! keys: a [`Keyring`] signs with its current key and verifies with the current or
//! the previous one. Decoding is strict (canonical base64, claims that end where
//! the body ends), so any change to a token's text is a verification failure.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{digest, hmac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::role::Role;

/// Version 2: claims in postcard (version 1 had a hand-made layout).
const VERSION: u8 = 2;
const HEADER_LEN: usize = 6;
const MAC_LABEL: &[u8] = b"rushgate-token\0";
/// Minimum length of a signing key in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// What a token is for. Part of the signed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Session = 1,
    Purchase = 2,
    Admission = 3,
    Retry = 4,
    QueuePass = 5,
    Challenge = 6,
    Forward = 7,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token, the wrong kind, an unknown key or a bad tag: all look alike.
    #[error("token signature is not valid")]
    BadSignature,
    /// Authentic but past its expiry.
    #[error("token has expired")]
    Expired,
}

/// A signing key is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("signing key must be hex")]
    NotHex,
    #[error("signing key must be at least {MIN_KEY_LEN} bytes ({} hex digits)", MIN_KEY_LEN * 2)]
    TooShort,
}

struct SigningKey {
    id: [u8; 4],
    key: hmac::Key,
}

impl SigningKey {
    fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort);
        }
        let fingerprint = digest::digest(&digest::SHA256, secret);
        let mut id = [0u8; 4];
        id.copy_from_slice(&fingerprint.as_ref()[..4]);
        Ok(Self {
            id,
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }
}

/// The keys a deployment signs and verifies with: the current key and, during a
/// rotation, the previous one.
pub struct Keyring {
    current: SigningKey,
    previous: Option<SigningKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current_id", &hex::encode(self.current.id))
            .field(
                "previous_id",
                &self.previous.as_ref().map(|k| hex::encode(k.id)),
            )
            .finish()
    }
}

impl Keyring {
    /// Builds a keyring from raw key bytes.
    pub fn new(current: &[u8], previous: Option<&[u8]>) -> Result<Self, KeyError> {
        Ok(Self {
            current: SigningKey::new(current)?,
            previous: previous.map(SigningKey::new).transpose()?,
        })
    }

    /// Builds a keyring from hex-encoded keys, as they appear in configuration.
    pub fn from_hex(current: &str, previous: Option<&str>) -> Result<Self, KeyError> {
        let current = decode_hex(current)?;
        let previous = previous.map(decode_hex).transpose()?;
        Self::new(&current, previous.as_deref())
    }

    /// Signs claims with the current key.
    pub fn sign<C: Claims>(&self, claims: &C) -> String {
        let mut body = Vec::with_capacity(HEADER_LEN + 64);
        body.push(VERSION);
        body.push(C::KIND as u8);
        body.extend_from_slice(&self.current.id);
        let body = postcard::to_extend(claims, body).expect("plain data always serializes");
        let tag = sign_body(&self.current.key, &body);
        let mut out = String::with_capacity((body.len() + tag.as_ref().len()) * 4 / 3 + 4);
        URL_SAFE_NO_PAD.encode_string(&body, &mut out);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(tag.as_ref(), &mut out);
        out
    }

    /// Verifies a token of kind `C` and returns its claims if it is authentic and
    /// not expired at `now` (unix seconds).
    pub fn verify<C: Claims>(&self, token: &str, now: i64) -> Result<C, TokenError> {
        let claims = self.verify_signature::<C>(token)?;
        if now >= claims.expires_at() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Checks authenticity only; the caller judges time (used by tokens whose
    /// validity is a window rather than an expiry).
    pub fn verify_signature<C: Claims>(&self, token: &str) -> Result<C, TokenError> {
        let (body_b64, tag_b64) = token.split_once('.').ok_or(TokenError::BadSignature)?;
        if body_b64.len() > 1024 || tag_b64.len() > 64 {
            return Err(TokenError::BadSignature);
        }
        let body = URL_SAFE_NO_PAD
            .decode(body_b64)
            .map_err(|_| TokenError::BadSignature)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag_b64)
            .map_err(|_| TokenError::BadSignature)?;
        if body.len() < HEADER_LEN || body[0] != VERSION || body[1] != C::KIND as u8 {
            return Err(TokenError::BadSignature);
        }
        let key = self.key_for(&body[2..HEADER_LEN])?;
        hmac::verify(&key.key, &mac_input(&body), &tag).map_err(|_| TokenError::BadSignature)?;
        match postcard::take_from_bytes::<C>(&body[HEADER_LEN..]) {
            Ok((claims, [])) => Ok(claims),
            _ => Err(TokenError::BadSignature),
        }
    }

    /// A number only this deployment can compute: HMAC-SHA256 under the
    /// current key of `label` then `message` (a label other than the tokens'
    /// keeps it apart from every tag).
    pub fn private_number(&self, label: &[u8], message: &[u8]) -> [u8; 32] {
        debug_assert_ne!(label, MAC_LABEL);
        let mut ctx = hmac::Context::with_key(&self.current.key);
        ctx.update(label);
        ctx.update(message);
        let mut number = [0u8; 32];
        number.copy_from_slice(ctx.sign().as_ref());
        number
    }

    fn key_for(&self, id: &[u8]) -> Result<&SigningKey, TokenError> {
        if id == self.current.id {
            return Ok(&self.current);
        }
        match &self.previous {
            Some(previous) if id == previous.id => Ok(previous),
            _ => Err(TokenError::BadSignature),
        }
    }
}

fn mac_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(MAC_LABEL.len() + body.len());
    input.extend_from_slice(MAC_LABEL);
    input.extend_from_slice(body);
    input
}

fn sign_body(key: &hmac::Key, body: &[u8]) -> hmac::Tag {
    hmac::sign(key, &mac_input(body))
}

fn decode_hex(text: &str) -> Result<Vec<u8>, KeyError> {
    hex::decode(text.trim()).map_err(|_| KeyError::NotHex)
}

/// The payload of one kind of token, encoded with serde.
pub trait Claims: Serialize + DeserializeOwned {
    const KIND: Kind;
    /// Unix seconds from which the token is no longer valid.
    fn expires_at(&self) -> i64;
}

/// Who a request comes from: carried as a Bearer token or a cookie. The session
/// id names this login, so logging out can revoke it (and only it); the
/// generation is the account's when it logged in, so changing its role,
/// disabling or deleting it (which moves the account to its next generation)
/// revokes every session it had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub user_id: i64,
    pub role: Role,
    pub exp: i64,
    pub sid: [u8; 16],
    pub generation: u32,
}

impl Claims for SessionClaims {
    const KIND: Kind = Kind::Session;
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// The right of one user to try to buy in one event, embedded in the purchase URL.
/// The nonce is the idempotency key of the reservation it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseClaims {
    pub event_id: i64,
    pub user_id: i64,
    pub exp: i64,
    pub nonce: [u8; 16],
}

impl PurchaseClaims {
    /// The nonce as 32 lowercase hex digits, as it is used for keys.
    pub fn nonce_hex(&self) -> String {
        hex::encode(self.nonce)
    }
}

impl Claims for PurchaseClaims {
    const KIND: Kind = Kind::Purchase;
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// The edge's attestation that it admitted a request: bound to the method, path and
/// user, valid for [`AdmissionClaims::MAX_SKEW_S`] either side of its timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionClaims {
    pub method: String,
    pub path: String,
    pub user_id: i64,
    /// Unix seconds at which the edge admitted the request.
    pub timestamp: i64,
}

impl AdmissionClaims {
    /// How far the timestamp may be from the verifier's clock, in seconds.
    pub const MAX_SKEW_S: i64 = 30;

    /// Whether these claims admit `method path` for `user_id` at `now`.
    pub fn admits(&self, method: &str, path: &str, user_id: i64, now: i64) -> bool {
        self.method.eq_ignore_ascii_case(method)
            && self.path == path
            && self.user_id == user_id
            && (now - self.timestamp).abs() <= Self::MAX_SKEW_S
    }
}

impl Claims for AdmissionClaims {
    const KIND: Kind = Kind::Admission;
    fn expires_at(&self) -> i64 {
        self.timestamp + Self::MAX_SKEW_S + 1
    }
}

/// The edge's word on a request it sends or passes on to the origin, bound to
/// its method, path and body (SHA-256), with the client's address when the
/// edge knows it, valid for [`AdmissionClaims::MAX_SKEW_S`] either side of
/// its timestamp; the nonce lets the origin take a report once only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardClaims {
    pub method: String,
    pub path: String,
    pub timestamp: i64,
    pub body_sha256: [u8; 32],
    pub client: Option<String>,
    pub nonce: [u8; 16],
}

impl Claims for ForwardClaims {
    const KIND: Kind = Kind::Forward;
    fn expires_at(&self) -> i64 {
        self.timestamp + AdmissionClaims::MAX_SKEW_S + 1
    }
}

/// A loser's ticket into the next admission round: single use (the edge records
/// its nonce), valid from `not_before` until `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryClaims {
    pub event_id: i64,
    pub user_id: i64,
    /// The round this token enters (1 for the first retry; 0 is a ticket of
    /// an opening draw, `core::opening`).
    pub round: u32,
    pub not_before: i64,
    pub exp: i64,
    pub nonce: [u8; 16],
}

impl Claims for RetryClaims {
    const KIND: Kind = Kind::Retry;
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// A place in an event's queue (`POST /api/events/{id}/queue`). Signed from
/// what the user's shard first recorded, so joining again yields the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePassClaims {
    pub event_id: i64,
    pub user_id: i64,
    /// When the user first joined (unix ms): before the opening is the pre-queue.
    pub joined_ms: i64,
    /// For a late joiner, about how many late joiners came first.
    pub late_ahead: u64,
    pub exp: i64,
}

impl Claims for QueuePassClaims {
    const KIND: Kind = Kind::QueuePass;
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(&[7u8; 32], None).unwrap()
    }

    fn purchase() -> PurchaseClaims {
        PurchaseClaims {
            event_id: 42,
            user_id: 7,
            exp: 1_000,
            nonce: [9; 16],
        }
    }

    #[test]
    fn round_trips_each_kind() {
        let keys = ring();
        let session = SessionClaims {
            user_id: 5,
            role: Role::Admin,
            exp: 100,
            sid: [4; 16],
            generation: 0,
        };
        assert_eq!(keys.verify(&keys.sign(&session), 99), Ok(session));
        let p = purchase();
        assert_eq!(keys.verify(&keys.sign(&p), 999), Ok(p));
        let admit = AdmissionClaims {
            method: "POST".into(),
            path: "/buy/1/abc".into(),
            user_id: 3,
            timestamp: 50,
        };
        let back: AdmissionClaims = keys.verify_signature(&keys.sign(&admit)).unwrap();
        assert_eq!(back, admit);
        assert!(back.admits("post", "/buy/1/abc", 3, 60));
        assert!(!back.admits("POST", "/buy/1/abd", 3, 60));
        assert!(!back.admits("POST", "/buy/1/abc", 4, 60));
        assert!(!back.admits("POST", "/buy/1/abc", 3, 81));
    }

    #[test]
    fn expiry_is_exclusive() {
        let keys = ring();
        let token = keys.sign(&purchase());
        assert!(keys.verify::<PurchaseClaims>(&token, 999).is_ok());
        assert_eq!(
            keys.verify::<PurchaseClaims>(&token, 1_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_never_verifies_as_another_kind() {
        let keys = ring();
        let session = keys.sign(&SessionClaims {
            user_id: 1,
            role: Role::Customer,
            exp: i64::MAX,
            sid: [5; 16],
            generation: 0,
        });
        assert_eq!(
            keys.verify::<PurchaseClaims>(&session, 0),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            keys.verify_signature::<AdmissionClaims>(&session),
            Err(TokenError::BadSignature)
        );
        let purchase = keys.sign(&purchase());
        assert_eq!(
            keys.verify::<SessionClaims>(&purchase, 0),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn rotation_accepts_previous_key_and_signs_with_current() {
        let old = Keyring::new(&[1u8; 32], None).unwrap();
        let rotated = Keyring::new(&[2u8; 32], Some(&[1u8; 32])).unwrap();
        let retired = Keyring::new(&[3u8; 32], Some(&[2u8; 32])).unwrap();
        let old_token = old.sign(&purchase());
        assert!(rotated.verify::<PurchaseClaims>(&old_token, 0).is_ok());
        assert_eq!(
            retired.verify::<PurchaseClaims>(&old_token, 0),
            Err(TokenError::BadSignature)
        );
        let new_token = rotated.sign(&purchase());
        assert!(old.verify::<PurchaseClaims>(&new_token, 0).is_err());
        assert!(retired.verify::<PurchaseClaims>(&new_token, 0).is_ok());
    }

    #[test]
    fn keys_must_be_long_hex() {
        assert_eq!(
            Keyring::from_hex("abcd", None).unwrap_err(),
            KeyError::TooShort
        );
        assert_eq!(
            Keyring::from_hex(&"zz".repeat(32), None).unwrap_err(),
            KeyError::NotHex
        );
        assert!(Keyring::from_hex(&"ab".repeat(32), None).is_ok());
    }

    #[test]
    fn garbage_is_a_bad_signature() {
        let keys = ring();
        for junk in ["", ".", "abc", "a.b", "....", "😀.😀", &"A".repeat(5000)] {
            assert_eq!(
                keys.verify::<SessionClaims>(junk, 0),
                Err(TokenError::BadSignature),
                "{junk}"
            );
        }
    }

    #[test]
    fn nonce_hex_is_32_digits() {
        let mut p = purchase();
        p.nonce = [0xab; 16];
        assert_eq!(p.nonce_hex(), "ab".repeat(16));
    }
}
