//! Query strings of the asks the worker sends its Durable Objects: every ask
//! is a GET whose query carries it, so it costs no body or headers.

/// The value of `name` in `url`'s query.
pub fn field<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// 16 bytes from 32 hex digits (session ids, nonces).
pub fn bytes16(text: &str) -> Option<[u8; 16]> {
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

/// The `g=` field of an ask: its session's generation (0 when absent).
pub fn generation(url: &str) -> Option<u32> {
    field(url, "g").map_or(Some(0), |g| g.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_exact_name() {
        let url = "https://x.internal/a?e=1&ee=2&g=3";
        assert_eq!(field(url, "e"), Some("1"));
        assert_eq!(field(url, "ee"), Some("2"));
        assert_eq!(field(url, "x"), None);
        assert_eq!(generation(url), Some(3));
        assert_eq!(generation("https://x.internal/a?e=1"), Some(0));
        assert_eq!(generation("https://x.internal/a?g=x"), None);
        assert_eq!(bytes16(&"ab".repeat(16)), Some([0xab; 16]));
        assert_eq!(bytes16("ab"), None);
    }
}
