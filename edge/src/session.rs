//! Who is asking: the session token (Bearer or cookie) verified with core.

use rushgate_core::token::SessionClaims;
use rushgate_core::{ErrorCode, Keyring};
use worker::Request;

use crate::error::EdgeError;

pub fn user(req: &Request, keys: &Keyring, now_s: i64) -> Result<SessionClaims, EdgeError> {
    let headers = req.headers();
    let authorization = headers.get("authorization").ok().flatten();
    let cookie = headers.get("cookie").ok().flatten();
    rushgate_core::session::token(authorization.as_deref(), cookie.as_deref())
        .and_then(|token| keys.verify::<SessionClaims>(token, now_s).ok())
        .ok_or_else(|| EdgeError::new(ErrorCode::Unauthenticated, "sign in first"))
}
