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
    static ISOLATE: u64 = u64::from_le_bytes(random());
}

/// This isolate's name (at the desks and tallies, and in `/api/edge/isolate`).
pub fn isolate_id() -> u64 {
    ISOLATE.with(|i| *i)
}

/// This isolate's own offset in `0..span_ms`, the same for its life: isolates
/// whose copies of a resource went stale at the same instant refresh them at
/// different ones, the earliest for all.
pub fn skew_ms(span_ms: i64) -> i64 {
    (isolate_id() % span_ms.max(1) as u64) as i64
}

/// `GET /api/edge/isolate`: which isolate answered (tests and the crowd
/// simulator tell isolates apart by it).
#[derive(serde::Serialize)]
pub struct Isolate {
    pub isolate: String,
}

pub fn isolate() -> Isolate {
    Isolate {
        isolate: hex::encode(isolate_id().to_le_bytes()),
    }
}
