//! The edge's attestation to the origin (`X-Rushgate-Admit`): an admission token
//! over the method, path and user of the request it admitted, valid for
//! [`AdmissionClaims::MAX_SKEW_S`] either side of the time it was made. Signed
//! and checked here only, by the edge and the origin alike.

use crate::error::ErrorCode;
use crate::token::{AdmissionClaims, Keyring};

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

#[cfg(test)]
mod tests {
    use super::*;

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
