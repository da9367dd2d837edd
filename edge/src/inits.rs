//! Response inits kept per isolate. `new Response(body, init)` copies what its
//! init says, so one init serves every answer alike: an answer costs one call
//! out of Wasm instead of the seven that build its headers and init.

use std::borrow::Borrow;
use std::cell::RefCell;

use worker::wasm_bindgen::JsValue;
use worker::web_sys::{Headers, ResponseInit};

/// Inits kept at most in one cache (a short list, searched in order; more
/// distinct answers are built each time).
const MAX_KEPT: usize = 64;

/// Inits by key.
pub struct Inits<K> {
    kept: RefCell<Vec<(K, ResponseInit)>>,
}

impl<K> Inits<K> {
    pub const fn new() -> Self {
        Self {
            kept: RefCell::new(Vec::new()),
        }
    }

    /// The init kept for `key`, made by `make` the first time.
    pub fn get<Q>(
        &self,
        key: &Q,
        make: impl FnOnce() -> Result<ResponseInit, JsValue>,
    ) -> Result<ResponseInit, JsValue>
    where
        Q: PartialEq + ToOwned<Owned = K> + ?Sized,
        K: Borrow<Q>,
    {
        let kept = self.kept.borrow();
        if let Some((_, init)) = kept.iter().find(|(k, _)| k.borrow() == key) {
            return Ok(init.clone());
        }
        drop(kept);
        let init = make()?;
        let mut kept = self.kept.borrow_mut();
        if kept.len() < MAX_KEPT {
            kept.push((key.to_owned(), init.clone()));
        }
        Ok(init)
    }
}

/// An init with `status` (200 if none) and these headers.
pub fn make(status: Option<u16>, headers: &[(&str, &str)]) -> Result<ResponseInit, JsValue> {
    let set = Headers::new()?;
    for (name, value) in headers {
        set.set(name, value)?;
    }
    let init = ResponseInit::new();
    if let Some(status) = status {
        init.set_status(status);
    }
    init.set_headers(&set);
    Ok(init)
}
