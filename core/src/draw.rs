//! The queue's verifiable draw (SPEC §4, "Queue"). When an event is approved
//! the origin fixes a secret 32-byte seed and publishes its commitment,
//! SHA-256(seed). A pre-queue entrant's draw number is HMAC-SHA256(seed,
//! decimal user id); places follow the numbers, lowest first, so the edge can
//! place anyone from the seed alone, without a list of everyone. After the sale
//! the seed is revealed with every pre-queue entrant — its entry, SHA-256 of the
//! decimal user id, and its number — and the entries in the order they were
//! admitted. Anyone can then check the seed against the commitment and the
//! admitted order against the numbers ([`verify`]); a user can find their own
//! entry and check its number ([`verify_own`]).

use std::collections::HashSet;

use ring::{digest, hmac};
use serde::{Deserialize, Serialize};

/// Length of a draw seed in bytes.
pub const SEED_LEN: usize = 32;

/// A secret draw seed.
pub type Seed = [u8; SEED_LEN];

/// One pre-queue entrant of a published draw: both fields lowercase hex.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entrant {
    /// SHA-256 of the decimal user id.
    pub entry: String,
    /// HMAC-SHA256(seed, decimal user id).
    pub number: String,
}

/// `GET /api/events/{id}/draw` once the sale has closed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawRecord {
    /// The seed, hex.
    pub seed: String,
    /// SHA-256 of the seed, hex, as the event showed it from its approval on.
    pub commitment: String,
    /// The pre-queue entrants, in any order.
    pub entrants: Vec<Entrant>,
    /// Entries in the order they were admitted: pre-queue entrants first, by
    /// number, then those who joined after the opening, by arrival.
    pub admitted: Vec<String>,
}

/// What is wrong with a published draw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("the seed is not {SEED_LEN} bytes of hex")]
    BadSeed,
    #[error("the seed does not match the commitment")]
    Commitment,
    #[error("entry {0} is listed more than once")]
    Duplicate(String),
    #[error("entry {0} is not 32 bytes of hex")]
    BadEntry(String),
    #[error("entry {later} was admitted before entry {earlier}, which drew a lower number")]
    OutOfOrder { earlier: String, later: String },
    #[error(
        "entry {later} joined after the opening and was admitted before pre-queue entry {earlier}"
    )]
    LateBeforeEarly { earlier: String, later: String },
    #[error("your entry's number is not HMAC-SHA256(seed, your user id)")]
    WrongNumber,
}

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// SHA-256 of the seed, hex: what the event shows before the draw.
pub fn commitment(seed: &Seed) -> String {
    hex_of(digest::digest(&digest::SHA256, seed).as_ref())
}

/// A user's entry: SHA-256 of the decimal user id, hex.
pub fn entry(user_id: i64) -> String {
    hex_of(digest::digest(&digest::SHA256, user_id.to_string().as_bytes()).as_ref())
}

/// A user's draw number: HMAC-SHA256(seed, decimal user id), hex. Lower goes first.
pub fn number(seed: &Seed, user_id: i64) -> String {
    hex_of(&number_bytes(seed, user_id))
}

/// A user's draw number as bytes.
pub fn number_bytes(seed: &Seed, user_id: i64) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, seed);
    let tag = hmac::sign(&key, user_id.to_string().as_bytes());
    let mut number = [0u8; 32];
    number.copy_from_slice(tag.as_ref());
    number
}

/// Whether `text` is 32 bytes as lowercase hex (so that texts compare as the
/// numbers they spell).
fn is_hex32(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The draw order of the entrants: their entries, lowest number first (equal
/// numbers, which HMAC makes vanishingly unlikely, by entry).
pub fn order(entrants: &[Entrant]) -> Vec<&str> {
    let mut sorted: Vec<&Entrant> = entrants.iter().collect();
    sorted.sort_by(|a, b| (&a.number, &a.entry).cmp(&(&b.number, &b.entry)));
    sorted.into_iter().map(|e| e.entry.as_str()).collect()
}

fn seed_of(record: &DrawRecord) -> Result<Seed, Fault> {
    let mut seed = [0u8; SEED_LEN];
    hex::decode_to_slice(&record.seed, &mut seed).map_err(|_| Fault::BadSeed)?;
    if commitment(&seed) != record.commitment.to_ascii_lowercase() {
        return Err(Fault::Commitment);
    }
    Ok(seed)
}

/// Checks a published draw: the seed matches the commitment, every entry is
/// listed once, and the admitted order is the draw order — the pre-queue
/// entrants admitted are exactly the first ones by number, in that order, and
/// nobody who joined later was admitted while a pre-queue entrant still waited.
pub fn verify(record: &DrawRecord) -> Result<(), Fault> {
    seed_of(record)?;
    let mut seen = HashSet::new();
    for e in &record.entrants {
        if !is_hex32(&e.entry) || !is_hex32(&e.number) {
            return Err(Fault::BadEntry(e.entry.clone()));
        }
        if !seen.insert(e.entry.as_str()) {
            return Err(Fault::Duplicate(e.entry.clone()));
        }
    }
    let draw = order(&record.entrants);
    let mut admitted = HashSet::new();
    let mut next = 0;
    for entry in &record.admitted {
        if !admitted.insert(entry.as_str()) {
            return Err(Fault::Duplicate(entry.clone()));
        }
        if seen.contains(entry.as_str()) {
            if draw[next] != entry {
                return Err(Fault::OutOfOrder {
                    earlier: draw[next].to_owned(),
                    later: entry.clone(),
                });
            }
            next += 1;
        } else if next < draw.len() {
            return Err(Fault::LateBeforeEarly {
                earlier: draw[next].to_owned(),
                later: entry.clone(),
            });
        }
    }
    Ok(())
}

/// A user's own check: their entry's place in the draw (1 = first), if they
/// were in the pre-queue, after checking their number against the seed.
pub fn verify_own(record: &DrawRecord, user_id: i64) -> Result<Option<usize>, Fault> {
    let seed = seed_of(record)?;
    let mine = entry(user_id);
    let Some(listed) = record.entrants.iter().find(|e| e.entry == mine) else {
        return Ok(None);
    };
    if listed.number != number(&seed, user_id) {
        return Err(Fault::WrongNumber);
    }
    Ok(order(&record.entrants)
        .iter()
        .position(|e| *e == mine)
        .map(|i| i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(seed: &Seed, users: &[i64], admitted: usize, late: &[i64]) -> DrawRecord {
        let entrants: Vec<Entrant> = users
            .iter()
            .map(|u| Entrant {
                entry: entry(*u),
                number: number(seed, *u),
            })
            .collect();
        let mut admitted: Vec<String> = order(&entrants)
            .into_iter()
            .take(admitted)
            .map(str::to_owned)
            .collect();
        if admitted.len() == entrants.len() {
            admitted.extend(late.iter().map(|u| entry(*u)));
        }
        DrawRecord {
            seed: hex::encode(seed),
            commitment: commitment(seed),
            entrants,
            admitted,
        }
    }

    #[test]
    fn numbers_follow_the_published_formula() {
        let seed = [7u8; SEED_LEN];
        // As any tool computes them (e.g. Python's hashlib and hmac).
        assert_eq!(
            entry(42),
            "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"
        );
        assert_eq!(
            commitment(&seed),
            "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0"
        );
        assert_eq!(
            number(&seed, 42),
            "c375c508be09c2d7595d823c178833918c15527d00c6e4a42bbff11914d750c6"
        );
        assert_ne!(number(&seed, 42), number(&[8u8; SEED_LEN], 42));
    }

    #[test]
    fn late_joiners_come_after_the_whole_pre_queue() {
        let seed = [1u8; SEED_LEN];
        let all_in = record(&seed, &[1, 2, 3], 3, &[9]);
        assert_eq!(verify(&all_in), Ok(()));
        let mut early_late = record(&seed, &[1, 2, 3], 2, &[]);
        early_late.admitted.push(entry(9));
        assert!(matches!(
            verify(&early_late),
            Err(Fault::LateBeforeEarly { .. })
        ));
    }

    proptest! {
        #[test]
        fn a_fair_draw_verifies_and_each_user_finds_their_place(
            seed in any::<[u8; SEED_LEN]>(),
            users in proptest::collection::hash_set(1i64..1_000_000, 1..60),
            share in 0.0f64..=1.0,
        ) {
            let users: Vec<i64> = users.into_iter().collect();
            let admitted = (users.len() as f64 * share) as usize;
            let record = record(&seed, &users, admitted, &[]);
            prop_assert_eq!(verify(&record), Ok(()));
            let draw = order(&record.entrants);
            for user in &users {
                let place = verify_own(&record, *user).unwrap().unwrap();
                prop_assert_eq!(draw[place - 1], entry(*user));
            }
            prop_assert_eq!(verify_own(&record, 0), Ok(None));
        }

        #[test]
        fn a_changed_seed_order_or_number_is_caught(
            seed in any::<[u8; SEED_LEN]>(),
            users in proptest::collection::hash_set(1i64..1_000_000, 2..40),
            flip in 0usize..SEED_LEN,
        ) {
            let users: Vec<i64> = users.into_iter().collect();
            let fair = record(&seed, &users, users.len(), &[]);

            let mut other_seed = seed;
            other_seed[flip] ^= 1;
            let mut reseeded = fair.clone();
            reseeded.seed = hex::encode(other_seed);
            prop_assert_eq!(verify(&reseeded), Err(Fault::Commitment));

            let mut swapped = fair.clone();
            swapped.admitted.swap(0, 1);
            let out_of_order = matches!(verify(&swapped), Err(Fault::OutOfOrder { .. }));
            prop_assert!(out_of_order);

            // Another user's number in place of this one's.
            let mut forged = fair;
            let theirs = forged.entrants[1].number.clone();
            forged.entrants[0].number = theirs;
            let victim = users
                .iter()
                .find(|u| entry(**u) == forged.entrants[0].entry)
                .copied()
                .unwrap();
            prop_assert_eq!(verify_own(&forged, victim), Err(Fault::WrongNumber));
        }
    }
}
