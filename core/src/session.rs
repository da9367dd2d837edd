//! Where a request carries its session: `Authorization: Bearer <token>`, else the
//! `rushgate_session` cookie. Shared so the edge and the origin read it alike,
//! with the rule that keeps other sites from using the cookie
//! ([`forgeable`]).

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

/// Whether a request that changes something could have been sent by another
/// site's page in the visitor's name: it rides on the session cookie (no
/// `Authorization` header) with a body type that a form or a plain `fetch`
/// sends without asking the server first — none, form-urlencoded, multipart
/// or plain text. Such requests are refused (415); JSON (and any other type)
/// makes the browser ask first, which no other site gets past.
pub fn forgeable(
    method: &str,
    authorization: bool,
    cookies: Option<&str>,
    content_type: Option<&str>,
) -> bool {
    let changes = !matches!(method, "GET" | "HEAD" | "OPTIONS");
    let by_cookie = !authorization && cookie(cookies, SESSION_COOKIE).is_some();
    let essence = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    let simple = match essence.as_deref() {
        None | Some("") => true,
        Some(t) => matches!(
            t,
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ),
    };
    changes && by_cookie && simple
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cookie_requests_of_simple_types_could_be_forged() {
        let cookie = Some("theme=x; rushgate_session=abc");
        for simple in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("TEXT/PLAIN;charset=utf-8"),
        ] {
            assert!(forgeable("POST", false, cookie, simple), "{simple:?}");
        }
        assert!(!forgeable("POST", false, cookie, Some("application/json")));
        assert!(!forgeable("POST", false, cookie, Some("text/csv")));
        assert!(
            !forgeable("POST", true, cookie, None),
            "a Bearer token cannot be forged"
        );
        assert!(
            !forgeable("POST", false, Some("theme=x"), None),
            "no session"
        );
        assert!(!forgeable("POST", false, None, None));
        assert!(!forgeable("GET", false, cookie, None));
        assert!(forgeable("DELETE", false, cookie, None));
        assert!(forgeable("PATCH", false, cookie, Some("text/plain")));
    }

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
