//! The Durable Object namespaces the worker binds (`DEDUP`, `QUEUE`), each
//! looked up once per isolate: bindings do not change while an isolate lives.

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
