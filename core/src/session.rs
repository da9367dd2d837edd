//! Where a request carries its session: `Authorization: Bearer <token>`, else the
//! `rushgate_session` cookie. Shared so the edge and the origin read it alike.

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "rushgate_session";

/// The session token in a request, given its `Authorization` header and its
/// `Cookie` header values. A non-Bearer `Authorization` yields none.
pub fn token<'a>(
    authorization: Option<&'a str>,
    cookies: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if let Some(auth) = authorization {
        let (scheme, token) = auth.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim())
            .filter(|t| !t.is_empty());
    }
    cookie(cookies, SESSION_COOKIE)
}

/// The value of cookie `name` in the `Cookie` header values.
pub fn cookie<'a>(cookies: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    cookies
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_wins_then_cookie() {
        assert_eq!(
            token(Some("Bearer abc"), ["rushgate_session=zzz"]),
            Some("abc")
        );
        assert_eq!(token(Some("bearer  abc "), []), Some("abc"));
        assert_eq!(token(Some("Basic abc"), ["rushgate_session=zzz"]), None);
        assert_eq!(
            token(None, ["theme=dark; rushgate_session=zzz"]),
            Some("zzz")
        );
        assert_eq!(token(None, ["a=1", "rushgate_session=y"]), Some("y"));
        assert_eq!(token(None, ["rushgate_session="]), None);
        assert_eq!(token(None, []), None);
        assert_eq!(cookie(["a=1; rg_queue_7=p.q"], "rg_queue_7"), Some("p.q"));
        assert_eq!(cookie(["a=1"], "rg_queue_7"), None);
    }
}
