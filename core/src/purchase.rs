//! Purchase URLs: who may get one when, and how it is built. The edge and the
//! origin both issue them through this module, so they are interchangeable.

use time::OffsetDateTime;

use crate::api::BuyRequest;
use crate::error::ErrorCode;
use crate::event::FieldError;
use crate::phase::Phase;
use crate::token::{Keyring, PurchaseClaims, TokenError};

/// Path prefix of purchase URLs.
pub const BUY_PREFIX: &str = "/buy/";

/// Whether a purchase URL may be issued in `phase`; otherwise the error to answer.
pub fn check_phase(phase: Phase) -> Result<(), ErrorCode> {
    match phase {
        Phase::Open => Ok(()),
        Phase::Upcoming => Err(ErrorCode::NotOpen),
        Phase::Presale => Err(ErrorCode::PresaleCodeRequired),
        Phase::SoldOut => Err(ErrorCode::SoldOut),
        Phase::Closed => Err(ErrorCode::Closed),
        Phase::Hidden => Err(ErrorCode::NotFound),
    }
}

/// Checks a `/buy` body against the event it is for: the tier must be one of the
/// event's and the quantity between 1 and the per-order limit. The edge checks
/// it against its snapshot before anything is counted or forwarded, the origin
/// again against its own copy.
pub fn check_order(
    order: &BuyRequest,
    mut tier_ids: impl Iterator<Item = i64>,
    per_order_limit: u32,
) -> Result<(), FieldError> {
    if !tier_ids.any(|id| id == order.tier_id) {
        return Err(FieldError::new("tier_id", "no such tier in this event"));
    }
    if order.quantity < 1 || order.quantity > i64::from(per_order_limit) {
        return Err(FieldError::new(
            "quantity",
            format!("must be between 1 and {per_order_limit}"),
        ));
    }
    Ok(())
}

/// A signed purchase URL and when it stops working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedUrl {
    pub path: String,
    pub claims: PurchaseClaims,
}

/// Signs a purchase URL for `user_id` in `event_id`, valid for `ttl_s` seconds but
/// never past the close of the sale. `nonce` must be fresh randomness.
pub fn issue(
    keys: &Keyring,
    event_id: i64,
    user_id: i64,
    now: OffsetDateTime,
    ttl_s: u32,
    closes_at: OffsetDateTime,
    nonce: [u8; 16],
) -> IssuedUrl {
    let exp = (now.unix_timestamp() + i64::from(ttl_s)).min(closes_at.unix_timestamp());
    let claims = PurchaseClaims {
        event_id,
        user_id,
        exp,
        nonce,
    };
    IssuedUrl {
        path: format!("{BUY_PREFIX}{event_id}/{}", keys.sign(&claims)),
        claims,
    }
}

/// The purchase a `/buy/{event_id}/{token}` request may make for `user_id` at
/// `now_s`: the token must be authentic, unexpired, for the event in the path
/// and issued to this user. The edge and the origin both check with this.
pub fn verify(
    keys: &Keyring,
    path: &str,
    user_id: i64,
    now_s: i64,
) -> Result<PurchaseClaims, ErrorCode> {
    let (event_id, token) = parse_path(path).ok_or(ErrorCode::BadSignature)?;
    let claims: PurchaseClaims = keys.verify(token, now_s).map_err(|e| match e {
        TokenError::BadSignature => ErrorCode::BadSignature,
        TokenError::Expired => ErrorCode::UrlExpired,
    })?;
    if claims.event_id != event_id {
        return Err(ErrorCode::BadSignature);
    }
    if claims.user_id != user_id {
        return Err(ErrorCode::WrongUser);
    }
    Ok(claims)
}

/// Splits `/buy/{event_id}/{token}` into its parts.
pub fn parse_path(path: &str) -> Option<(i64, &str)> {
    let rest = path.strip_prefix(BUY_PREFIX)?;
    let (event, token) = rest.split_once('/')?;
    let event_id = event.parse().ok().filter(|id: &i64| *id > 0)?;
    (!token.is_empty() && !token.contains('/')).then_some((event_id, token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn issued_urls_verify_and_stop_at_close() {
        let keys = Keyring::new(&[1; 32], None).unwrap();
        let now = datetime!(2026-01-01 12:00 UTC);
        let url = issue(
            &keys,
            42,
            7,
            now,
            300,
            datetime!(2026-01-01 12:01 UTC),
            [3; 16],
        );
        assert_eq!(url.claims.exp, now.unix_timestamp() + 60);
        let (event, token) = parse_path(&url.path).unwrap();
        assert_eq!(event, 42);
        let claims: PurchaseClaims = keys.verify(token, now.unix_timestamp()).unwrap();
        assert_eq!(claims, url.claims);
    }

    #[test]
    fn verification_names_what_is_wrong() {
        let keys = Keyring::new(&[1; 32], None).unwrap();
        let now = datetime!(2026-01-01 12:00 UTC);
        let closes = datetime!(2026-01-02 12:00 UTC);
        let url = issue(&keys, 42, 7, now, 300, closes, [3; 16]);
        let t = now.unix_timestamp();
        assert_eq!(verify(&keys, &url.path, 7, t), Ok(url.claims));
        assert_eq!(verify(&keys, &url.path, 8, t), Err(ErrorCode::WrongUser));
        assert_eq!(
            verify(&keys, &url.path, 7, t + 300),
            Err(ErrorCode::UrlExpired)
        );
        let moved = url.path.replacen("/42/", "/43/", 1);
        assert_eq!(verify(&keys, &moved, 7, t), Err(ErrorCode::BadSignature));
        assert_eq!(
            verify(&keys, "/buy/42/junk", 7, t),
            Err(ErrorCode::BadSignature)
        );
        assert_eq!(verify(&keys, "/nope", 7, t), Err(ErrorCode::BadSignature));
    }

    #[test]
    fn paths_parse_strictly() {
        assert_eq!(parse_path("/buy/5/abc.def"), Some((5, "abc.def")));
        for bad in [
            "/buy/5/",
            "/buy/x/abc",
            "/buy/-1/abc",
            "/buy/5/a/b",
            "/buy/5",
            "/bu/5/a",
        ] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn orders_name_the_field_at_fault() {
        let order = |tier_id, quantity| BuyRequest { tier_id, quantity };
        let tiers = || [7, 8].into_iter();
        assert_eq!(check_order(&order(8, 2), tiers(), 2), Ok(()));
        for (tier, quantity, field) in [
            (9, 1, "tier_id"),
            (-1, 1, "tier_id"),
            (7, 0, "quantity"),
            (7, -1, "quantity"),
            (7, 3, "quantity"),
            (7, i64::MAX, "quantity"),
            (7, i64::MIN, "quantity"),
        ] {
            let err = check_order(&order(tier, quantity), tiers(), 2).unwrap_err();
            assert_eq!(err.field, field, "{tier} {quantity}");
        }
    }

    #[test]
    fn only_open_sales_get_urls() {
        assert_eq!(check_phase(Phase::Open), Ok(()));
        assert_eq!(check_phase(Phase::Upcoming), Err(ErrorCode::NotOpen));
        assert_eq!(
            check_phase(Phase::Presale),
            Err(ErrorCode::PresaleCodeRequired)
        );
        assert_eq!(check_phase(Phase::SoldOut), Err(ErrorCode::SoldOut));
        assert_eq!(check_phase(Phase::Closed), Err(ErrorCode::Closed));
        assert_eq!(check_phase(Phase::Hidden), Err(ErrorCode::NotFound));
    }
}
