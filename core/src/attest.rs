//! The edge's attestations to the origin, signed and checked here only, by the
//! edge and the origin alike:
//!
//! - `X-Rushgate-Admit`: an admission token over the method, path and user of
//!   a request the edge admitted (`/buy`, a purchase URL), valid for
//!   [`AdmissionClaims::MAX_SKEW_S`] either side of the time it was made;
//! - `X-Rushgate-Forward` ([`forward`]): over the method, path and body
//!   (SHA-256) of a request the edge sends or passes on, with the client's
//!   address when the edge knows it — its own reports (taken once: the
//!   origin spends the nonce) and the logins and registrations it passes on.

use ring::digest;

use crate::error::ErrorCode;
use crate::token::{AdmissionClaims, ForwardClaims, Keyring};

/// The header value for `method path` on behalf of `user_id` at `now_s`.
pub fn sign(keys: &Keyring, method: &str, path: &str, user_id: i64, now_s: i64) -> String {
    keys.sign(&AdmissionClaims {
        method: method.to_owned(),
        path: path.to_owned(),
        user_id,
        timestamp: now_s,
    })
}

/// Whether `header` attests `method path` for `user_id` at `now_s`; otherwise
/// `not_admitted_by_edge`.
pub fn verify(
    keys: &Keyring,
    header: Option<&str>,
    method: &str,
    path: &str,
    user_id: i64,
    now_s: i64,
) -> Result<(), ErrorCode> {
    header
        .and_then(|h| keys.verify_signature::<AdmissionClaims>(h).ok())
        .filter(|claims| claims.admits(method, path, user_id, now_s))
        .map(|_| ())
        .ok_or(ErrorCode::NotAdmittedByEdge)
}

/// SHA-256 of a request body.
pub fn body_sha256(body: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, body).as_ref());
    out
}

/// The `X-Rushgate-Forward` value for `method path` with `body`, from
/// `client` (if known) at `now_s`.
pub fn forward(
    keys: &Keyring,
    method: &str,
    path: &str,
    body: &[u8],
    client: Option<&str>,
    now_s: i64,
    nonce: [u8; 16],
) -> String {
    keys.sign(&ForwardClaims {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        timestamp: now_s,
        body_sha256: body_sha256(body),
        client: client.map(str::to_owned),
        nonce,
    })
}

/// The claims of a `header` that attests `method path` at `now_s`, before its
/// body is read (check it with [`ForwardClaims::covers`]).
pub fn forwarded(
    keys: &Keyring,
    header: Option<&str>,
    method: &str,
    path: &str,
    now_s: i64,
) -> Option<ForwardClaims> {
    header
        .and_then(|h| keys.verify_signature::<ForwardClaims>(h).ok())
        .filter(|c| {
            c.method.eq_ignore_ascii_case(method)
                && c.path == path
                && (now_s - c.timestamp).abs() <= AdmissionClaims::MAX_SKEW_S
        })
}

impl ForwardClaims {
    /// Whether the attested body is `body`.
    pub fn covers(&self, body: &[u8]) -> bool {
        self.body_sha256 == body_sha256(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forward_binds_method_path_body_and_time() {
        let keys = Keyring::new(&[3; 32], None).unwrap();
        let body = br#"{"events":{}}"#;
        let header = forward(
            &keys,
            "post",
            "/api/internal/funnel",
            body,
            Some("203.0.113.9"),
            1_000,
            [9; 16],
        );
        let claims =
            forwarded(&keys, Some(&header), "POST", "/api/internal/funnel", 1_030).unwrap();
        assert!(claims.covers(body));
        assert!(!claims.covers(br#"{"events":{"1":{}}}"#));
        assert_eq!(claims.client.as_deref(), Some("203.0.113.9"));
        assert_eq!(claims.nonce, [9; 16]);
        assert!(forwarded(&keys, Some(&header), "POST", "/api/internal/queue", 1_000).is_none());
        assert!(forwarded(&keys, Some(&header), "PUT", "/api/internal/funnel", 1_000).is_none());
        assert!(forwarded(&keys, Some(&header), "POST", "/api/internal/funnel", 1_031).is_none());
        assert!(forwarded(&keys, None, "POST", "/api/internal/funnel", 1_000).is_none());
        let other = Keyring::new(&[4; 32], None).unwrap();
        assert!(forwarded(&other, Some(&header), "POST", "/api/internal/funnel", 1_000).is_none());
        // An admission token is not a forward, nor the reverse.
        let admit = sign(&keys, "POST", "/api/internal/funnel", 0, 1_000);
        assert!(forwarded(&keys, Some(&admit), "POST", "/api/internal/funnel", 1_000).is_none());
        assert_eq!(
            verify(
                &keys,
                Some(&header),
                "POST",
                "/api/internal/funnel",
                0,
                1_000
            ),
            Err(ErrorCode::NotAdmittedByEdge)
        );
    }

    #[test]
    fn attests_one_request_of_one_user_for_a_while() {
        let keys = Keyring::new(&[3; 32], None).unwrap();
        let token = sign(&keys, "POST", "/buy/1/t", 7, 1_000);
        assert_eq!(
            verify(&keys, Some(&token), "post", "/buy/1/t", 7, 1_030),
            Ok(())
        );
        let refused = Err(ErrorCode::NotAdmittedByEdge);
        assert_eq!(
            verify(&keys, Some(&token), "POST", "/buy/1/u", 7, 1_000),
            refused
        );
        assert_eq!(
            verify(&keys, Some(&token), "POST", "/buy/1/t", 8, 1_000),
            refused
        );
        assert_eq!(
            verify(&keys, Some(&token), "POST", "/buy/1/t", 7, 1_031),
            refused
        );
        assert_eq!(verify(&keys, None, "POST", "/buy/1/t", 7, 1_000), refused);
        let other = Keyring::new(&[4; 32], None).unwrap();
        assert_eq!(
            verify(&other, Some(&token), "POST", "/buy/1/t", 7, 1_000),
            refused
        );
    }
}
