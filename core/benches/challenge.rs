//! D1: the door's cost. Checking an answer (`challenge::verify`: one HMAC, one
//! SHA-256) against verifying a purchase token (one HMAC) in the same run, and
//! a solver's hashes per second (what a bot's core spends per bit of
//! difficulty). Native code on this machine; the edge runs the same code as Wasm.
//!
//! `cargo bench -p rushgate-core --bench challenge [-- ITERATIONS]`

use std::hint::black_box;
use std::time::Instant;

use rushgate_core::Keyring;
use rushgate_core::challenge::{self, Lane};
use rushgate_core::token::PurchaseClaims;

fn per_call_us(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

fn main() {
    let iterations: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let keys = Keyring::new(&[7u8; 32], None).expect("a 32-byte key");
    let now = 1_800_000_000;
    let (text, claims) = challenge::issue(&keys, 42, 7, 12, Lane::Fast, now, [3; 16]);
    let nonce = challenge::solve(&text, claims.difficulty).to_string();
    let purchase = keys.sign(&PurchaseClaims {
        event_id: 42,
        user_id: 7,
        exp: now + 300,
        nonce: [5; 16],
    });

    let verify_us = per_call_us(iterations, || {
        black_box(challenge::verify(&keys, black_box(&text), &nonce, 42, 7, now + 1).is_ok());
    });
    let token_us = per_call_us(iterations, || {
        black_box(
            keys.verify::<PurchaseClaims>(black_box(&purchase), now + 1)
                .is_ok(),
        );
    });

    // A solver's rate: the hashes of solving 64 challenges of 14 bits.
    let mut hashes = 0u64;
    let started = Instant::now();
    for i in 0..64u8 {
        let (text, _) = challenge::issue(&keys, 42, 7, 14, Lane::Fast, now, [i; 16]);
        hashes += challenge::solve(&text, 14) + 1;
    }
    let per_s = hashes as f64 / started.elapsed().as_secs_f64();

    println!("challenge verify        {verify_us:8.2} µs");
    println!("purchase token verify   {token_us:8.2} µs  (baseline: one HMAC)");
    println!("ratio                   {:8.2}", verify_us / token_us);
    println!("solver                  {per_s:8.0} hashes/s on one core");
    for bits in [8u32, 12, 16, 20, 24] {
        println!(
            "  {bits:2} bits: {:10.4} s expected per challenge",
            2f64.powi(bits as i32) / per_s
        );
    }
}
