//! Purchase URLs: who may get one when, and how it is built. The edge and the
//! origin both issue them through this module, so they are interchangeable.

use time::OffsetDateTime;

use crate::error::ErrorCode;
use crate::phase::Phase;
use crate::token::{Keyring, PurchaseClaims};

/// Path prefix of purchase URLs.
pub const BUY_PREFIX: &str = "/buy/";

/// Whether a purchase URL may be issued in `phase`; otherwise the error to answer.
pub fn check_phase(phase: Phase) -> Result<(), ErrorCode> {
    match phase {
        Phase::Open => Ok(()),
        Phase::Upcoming => Err(ErrorCode::NotOpen),
        Phase::SoldOut => Err(ErrorCode::SoldOut),
        Phase::Closed => Err(ErrorCode::Closed),
        Phase::Hidden => Err(ErrorCode::NotFound),
    }
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
    fn only_open_sales_get_urls() {
        assert_eq!(check_phase(Phase::Open), Ok(()));
        assert_eq!(check_phase(Phase::Upcoming), Err(ErrorCode::NotOpen));
        assert_eq!(check_phase(Phase::SoldOut), Err(ErrorCode::SoldOut));
        assert_eq!(check_phase(Phase::Closed), Err(ErrorCode::Closed));
        assert_eq!(check_phase(Phase::Hidden), Err(ErrorCode::NotFound));
    }
}
