//! The Durable Object namespaces the worker binds (`DEDUP`, `QUEUE`, `DESK`,
//! `TALLY`), each looked up once per isolate: bindings do not change while an
//! isolate lives; and the load every object counts of itself.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::worker_sys::DurableObjectNamespace;
use worker::{Env, Result};

thread_local! {
    static NAMESPACES: RefCell<HashMap<&'static str, DurableObjectNamespace>> =
        RefCell::new(HashMap::new());
}

/// The runtime's own namespace object of `binding`.
pub fn namespace(env: &Env, binding: &'static str) -> Result<DurableObjectNamespace> {
    if let Some(namespace) = NAMESPACES.with(|n| n.borrow().get(binding).cloned()) {
        return Ok(namespace);
    }
    let namespace: DurableObjectNamespace =
        JsValue::from(env.durable_object(binding)?).unchecked_into();
    NAMESPACES.with(|n| n.borrow_mut().insert(binding, namespace.clone()));
    Ok(namespace)
}

/// Requests an object answered, in all and in the busiest second.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    asks: u64,
    second: i64,
    in_second: u32,
    peak_per_s: u32,
}

impl Load {
    pub fn count(mut self, now_ms: i64) -> Self {
        let second = now_ms.div_euclid(1000);
        if second != self.second {
            self.second = second;
            self.in_second = 0;
        }
        self.asks += 1;
        self.in_second += 1;
        self.peak_per_s = self.peak_per_s.max(self.in_second);
        self
    }

    /// As the `load` answer: `<asks> <peak per s>`.
    pub fn text(self) -> String {
        format!("{} {}", self.asks, self.peak_per_s)
    }
}

/// Parses a `load` answer into (asks, peak per s).
pub fn parse_load(text: &str) -> Option<(u64, u32)> {
    let (asks, peak) = text.split_once(' ')?;
    Some((asks.parse().ok()?, peak.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_counts_asks_and_the_busiest_second() {
        let load = Load::default().count(1_000).count(1_500).count(2_100);
        assert_eq!(parse_load(&load.text()), Some((3, 2)));
        assert_eq!(parse_load("3"), None);
    }
}
