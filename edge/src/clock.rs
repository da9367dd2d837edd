//! Time and randomness from the runtime, in the forms core wants, and this
//! isolate's name.

use time::OffsetDateTime;

/// Milliseconds since the epoch (`Date.now()`: no `Date` object made).
pub fn now_ms() -> i64 {
    worker::js_sys::Date::now() as i64
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Fresh random bytes from the runtime's CSPRNG.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom on workerd is crypto.getRandomValues, which does not fail.
    let _ = getrandom::getrandom(&mut bytes);
    bytes
}

thread_local! {
    /// This isolate's name: random, drawn at its first use.
    static ISOLATE: String = hex::encode(random::<8>());
}

/// `GET /api/edge/isolate`: which isolate answered (tests and the crowd
/// simulator tell isolates apart by it).
#[derive(serde::Serialize)]
pub struct Isolate {
    pub isolate: String,
}

pub fn isolate() -> Isolate {
    Isolate {
        isolate: ISOLATE.with(Clone::clone),
    }
}
