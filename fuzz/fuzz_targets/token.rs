//! Any text as a token of every kind: verification never panics, and what
//! verifies was signed by the key (never forged by the fuzzer).

#![no_main]

use libfuzzer_sys::fuzz_target;
use rushgate_core::token::{
    AdmissionClaims, Claims, Keyring, PurchaseClaims, RetryClaims, SessionClaims,
};
use rushgate_core::{attest, purchase};

fn keys() -> Keyring {
    Keyring::new(&[7; 32], Some(&[8; 32])).unwrap()
}

fn forged<C: Claims>(keys: &Keyring, text: &str) -> bool {
    keys.verify_signature::<C>(text).is_ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = keys();
    // A fuzzer cannot find an HMAC-SHA256 tag: nothing it writes verifies.
    assert!(!forged::<SessionClaims>(&keys, text));
    assert!(!forged::<PurchaseClaims>(&keys, text));
    assert!(!forged::<AdmissionClaims>(&keys, text));
    assert!(!forged::<RetryClaims>(&keys, text));
    let _ = purchase::parse_path(text);
    assert!(purchase::verify(&keys, text, 1, 0).is_err());
    assert!(attest::verify(&keys, Some(text), "POST", "/buy/1/x", 1, 0).is_err());
    let _ = rushgate_core::session::token(Some(text), [text]);
});
