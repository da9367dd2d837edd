//! Spreading the edge's requests over several origins: which origin a request
//! tries first (round robin), which next when one does not answer (the others
//! in turn, those that failed lately last), and which requests may be sent
//! again to another origin at all.

/// How long an origin that did not answer is tried only after the others, ms.
pub const DOWN_FOR_MS: f64 = 2_000.0;

/// The origins and when each last failed.
#[derive(Debug, Clone)]
pub struct Origins {
    urls: Vec<String>,
    /// Per origin: tried last until this time (ms since the epoch).
    down_until: Vec<f64>,
    turn: usize,
}

impl Origins {
    /// Base URLs, comma-separated (`ORIGIN_URLS`); blanks and trailing
    /// slashes dropped. `None` if there is none.
    pub fn parse(list: &str) -> Option<Self> {
        let urls: Vec<String> = list
            .split(',')
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        (!urls.is_empty()).then(|| Self {
            down_until: vec![0.0; urls.len()],
            urls,
            turn: 0,
        })
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The order to try the origins in for the next request: starting one
    /// further each time, origins that failed in the last [`DOWN_FOR_MS`]
    /// after the rest.
    pub fn next_order(&mut self, now_ms: f64) -> Vec<usize> {
        let n = self.urls.len();
        let start = self.turn % n;
        self.turn = self.turn.wrapping_add(1);
        let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        // A stable sort keeps the round robin among the healthy ones.
        order.sort_by_key(|&i| self.down_until[i] > now_ms);
        order
    }

    /// Origin `i` did not answer at `now_ms`.
    pub fn failed(&mut self, i: usize, now_ms: f64) {
        if let Some(until) = self.down_until.get_mut(i) {
            *until = now_ms + DOWN_FOR_MS;
        }
    }

    /// Origin `i` answered.
    pub fn answered(&mut self, i: usize) {
        if let Some(until) = self.down_until.get_mut(i) {
            *until = 0.0;
        }
    }
}

/// Whether a request that got no answer from one origin may be sent to
/// another: reads, and writes that cannot happen twice — a purchase (its
/// token's nonce replays the first reservation), pay and cancel (guarded by
/// the order's status), a new purchase URL, logging in or out. Creating things
/// (an account, an event) is not retried: a lost answer does not mean nothing
/// was made.
pub fn retry_safe(method: &str, path: &str) -> bool {
    if matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return true;
    }
    if method != "POST" {
        return false;
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["buy", _, _]
            | ["api", "orders", _, "pay" | "cancel"]
            | ["api", "events", _, "purchase-url"]
            | ["api", "auth", "login" | "logout"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_and_refuses_an_empty_one() {
        let origins = Origins::parse(" http://a:1/, ,http://b:2").unwrap();
        assert_eq!(origins.urls(), ["http://a:1", "http://b:2"]);
        assert!(Origins::parse(" , ").is_none());
    }

    #[test]
    fn requests_go_round_and_a_failed_origin_goes_last_for_a_while() {
        let mut o = Origins::parse("a,b,c").unwrap();
        assert_eq!(o.next_order(0.0), [0, 1, 2]);
        assert_eq!(o.next_order(0.0), [1, 2, 0]);
        assert_eq!(o.next_order(0.0), [2, 0, 1]);
        o.failed(1, 1_000.0);
        assert_eq!(o.next_order(1_500.0), [0, 2, 1]);
        assert_eq!(o.next_order(1_500.0), [2, 0, 1]);
        // After DOWN_FOR_MS it is back in turn; an answer clears it at once.
        assert_eq!(o.next_order(1_000.0 + DOWN_FOR_MS + 1.0), [2, 0, 1]);
        assert_eq!(o.next_order(1_000.0 + DOWN_FOR_MS + 1.0), [0, 1, 2]);
        o.failed(0, 5_000.0);
        o.answered(0);
        assert_eq!(o.next_order(5_000.0), [1, 2, 0]);
    }

    #[test]
    fn only_requests_that_cannot_happen_twice_are_retried() {
        for (method, path) in [
            ("GET", "/api/events/1"),
            ("POST", "/buy/1/tok"),
            ("POST", "/api/orders/abc/pay"),
            ("POST", "/api/orders/abc/cancel"),
            ("POST", "/api/events/1/purchase-url"),
            ("POST", "/api/auth/login"),
        ] {
            assert!(retry_safe(method, path), "{method} {path}");
        }
        for (method, path) in [
            ("POST", "/api/auth/register"),
            ("POST", "/api/admin/events"),
            ("PUT", "/api/admin/events/1"),
            ("POST", "/api/admin/events/1/approve"),
            ("POST", "/api/internal/edge-report"),
            ("POST", "/buy/1"),
        ] {
            assert!(!retry_safe(method, path), "{method} {path}");
        }
    }
}
