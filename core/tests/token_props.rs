//! Property tests for signed tokens: round trips hold, any bit flipped anywhere in
//! a token makes it fail, expired tokens fail, kinds never cross.

use proptest::prelude::*;
use rushgate_core::Role;
use rushgate_core::token::{
    AdmissionClaims, Claims, Keyring, PurchaseClaims, RetryClaims, SessionClaims, TokenError,
};

fn keyring(seed: u8) -> Keyring {
    Keyring::new(&[seed; 32], Some(&[seed.wrapping_add(1); 32])).unwrap()
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        Just(Role::Customer),
        Just(Role::Operator),
        Just(Role::Admin)
    ]
}

fn session() -> impl Strategy<Value = SessionClaims> {
    (any::<i64>(), role(), any::<i64>(), any::<[u8; 16]>()).prop_map(|(user_id, role, exp, sid)| {
        SessionClaims {
            user_id,
            role,
            exp,
            sid,
            generation: 0,
        }
    })
}

fn purchase() -> impl Strategy<Value = PurchaseClaims> {
    (any::<i64>(), any::<i64>(), any::<i64>(), any::<[u8; 16]>()).prop_map(
        |(event_id, user_id, exp, nonce)| PurchaseClaims {
            event_id,
            user_id,
            exp,
            nonce,
        },
    )
}

fn admission() -> impl Strategy<Value = AdmissionClaims> {
    (
        "[A-Z]{3,6}",
        "/[a-zA-Z0-9/_.-]{0,120}",
        any::<i64>(),
        any::<i64>(),
    )
        .prop_map(|(method, path, user_id, timestamp)| AdmissionClaims {
            method,
            path,
            user_id,
            timestamp,
        })
}

fn retry() -> impl Strategy<Value = RetryClaims> {
    (
        any::<i64>(),
        any::<i64>(),
        any::<u32>(),
        any::<i64>(),
        any::<i64>(),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(event_id, user_id, round, not_before, exp, nonce)| RetryClaims {
                event_id,
                user_id,
                round,
                not_before,
                exp,
                nonce,
            },
        )
}

/// A token of arbitrary body bytes, signed as `Keyring` does.
fn sign_raw(key: &[u8], body: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, &[b"rushgate-token\0".as_slice(), body].concat());
    format!("{}.{}", b64.encode(body), b64.encode(tag.as_ref()))
}

/// Flips one bit of the token's text; `None` if the result is not text at all.
fn flip(token: &str, bit: usize) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    String::from_utf8(bytes).ok()
}

fn assert_flips_fail<C: Claims + std::fmt::Debug>(keys: &Keyring, token: &str, bit: usize) {
    if let Some(tampered) = flip(token, bit) {
        assert_eq!(
            keys.verify_signature::<C>(&tampered).unwrap_err(),
            TokenError::BadSignature,
            "{tampered}"
        );
    }
}

proptest! {
    #[test]
    fn session_round_trips(claims in session(), seed in any::<u8>()) {
        let keys = keyring(seed);
        let token = keys.sign(&claims);
        prop_assert_eq!(keys.verify_signature::<SessionClaims>(&token), Ok(claims));
    }

    #[test]
    fn purchase_round_trips_and_is_url_safe(claims in purchase()) {
        let keys = keyring(3);
        let token = keys.sign(&claims);
        prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        prop_assert_eq!(keys.verify_signature::<PurchaseClaims>(&token), Ok(claims));
    }

    #[test]
    fn admission_round_trips(claims in admission()) {
        let keys = keyring(4);
        let token = keys.sign(&claims);
        prop_assert_eq!(keys.verify_signature::<AdmissionClaims>(&token), Ok(claims));
    }

    #[test]
    fn retry_round_trips(claims in retry()) {
        let keys = keyring(8);
        let token = keys.sign(&claims);
        prop_assert_eq!(keys.verify_signature::<RetryClaims>(&token), Ok(claims));
    }

    #[test]
    fn any_flipped_bit_fails(s in session(), p in purchase(), a in admission(), r in retry(), bit in any::<usize>()) {
        let keys = keyring(5);
        assert_flips_fail::<SessionClaims>(&keys, &keys.sign(&s), bit);
        assert_flips_fail::<PurchaseClaims>(&keys, &keys.sign(&p), bit);
        assert_flips_fail::<AdmissionClaims>(&keys, &keys.sign(&a), bit);
        assert_flips_fail::<RetryClaims>(&keys, &keys.sign(&r), bit);
    }

    #[test]
    fn truncated_or_extended_fails(s in session(), p in purchase(), cut in any::<usize>()) {
        let keys = keyring(9);
        for token in [keys.sign(&s), keys.sign(&p)] {
            let short = &token[..cut % token.len()];
            prop_assert!(keys.verify_signature::<SessionClaims>(short).is_err());
            prop_assert!(keys.verify_signature::<PurchaseClaims>(short).is_err());
            let long = format!("{token}A");
            prop_assert!(keys.verify_signature::<SessionClaims>(&long).is_err());
            prop_assert!(keys.verify_signature::<PurchaseClaims>(&long).is_err());
        }
    }

    #[test]
    fn claims_ending_early_or_late_fail(p in purchase(), extra in proptest::collection::vec(any::<u8>(), 1..8)) {
        // Bodies signed with the right key whose claims do not fill them exactly.
        let key = [3u8; 32];
        let keys = keyring(3);
        let mut body = vec![2u8, 2];
        body.extend_from_slice(&ring::digest::digest(&ring::digest::SHA256, &key).as_ref()[..4]);
        let claims = postcard::to_allocvec(&p).unwrap();
        for bytes in [
            [claims.as_slice(), &extra].concat(),
            claims[..claims.len() - 1].to_vec(),
        ] {
            let mut signed = body.clone();
            signed.extend_from_slice(&bytes);
            let token = sign_raw(&key, &signed);
            prop_assert_eq!(
                keys.verify_signature::<PurchaseClaims>(&token),
                Err(TokenError::BadSignature)
            );
        }
    }

    #[test]
    fn expired_fails_and_unexpired_passes(claims in purchase(), now in any::<i64>()) {
        let keys = keyring(6);
        let token = keys.sign(&claims);
        let result = keys.verify::<PurchaseClaims>(&token, now);
        if now >= claims.exp {
            prop_assert_eq!(result, Err(TokenError::Expired));
        } else {
            prop_assert_eq!(result, Ok(claims));
        }
    }

    #[test]
    fn kinds_never_cross(s in session(), p in purchase(), a in admission(), r in retry()) {
        let keys = keyring(7);
        let (s, p, a, r) = (keys.sign(&s), keys.sign(&p), keys.sign(&a), keys.sign(&r));
        prop_assert!(keys.verify_signature::<PurchaseClaims>(&r).is_err());
        prop_assert!(keys.verify_signature::<SessionClaims>(&r).is_err());
        prop_assert!(keys.verify_signature::<RetryClaims>(&p).is_err());
        prop_assert!(keys.verify_signature::<RetryClaims>(&s).is_err());
        prop_assert!(keys.verify_signature::<RetryClaims>(&a).is_err());
        prop_assert!(keys.verify_signature::<PurchaseClaims>(&s).is_err());
        prop_assert!(keys.verify_signature::<AdmissionClaims>(&s).is_err());
        prop_assert!(keys.verify_signature::<SessionClaims>(&p).is_err());
        prop_assert!(keys.verify_signature::<AdmissionClaims>(&p).is_err());
        prop_assert!(keys.verify_signature::<SessionClaims>(&a).is_err());
        prop_assert!(keys.verify_signature::<PurchaseClaims>(&a).is_err());
    }

    #[test]
    fn other_keys_fail(claims in purchase(), a in any::<u8>(), b in any::<u8>()) {
        prop_assume!(a != b && a.wrapping_add(1) != b && b.wrapping_add(1) != a);
        let token = keyring(a).sign(&claims);
        prop_assert_eq!(
            Keyring::new(&[b; 32], None).unwrap().verify_signature::<PurchaseClaims>(&token),
            Err(TokenError::BadSignature)
        );
    }
}
