//! Bucket routing: a tier's stock is split over `buckets` shards, each living in
//! its own Redis Cluster slot together with the per-user counters of the users
//! routed to it. A user always lands in the same bucket of an event, so the
//! per-user limit is checked atomically with the stock it draws from.
//!
//! Each bucket's keys share a hash tag ([`tag`]) chosen so that bucket `b` of
//! `n` hashes into the `b`-th of `n` equal parts of the cluster's slot space. A
//! cluster made by `redis-cli --cluster create` gives each of its `m` masters
//! one contiguous, equal part of that space, so with `n` a multiple of `m` every
//! master holds `n / m` buckets of every event: losing one master stops a
//! fraction of the buckets, not the sale.

/// Splits `stock` units over `buckets` shards as evenly as possible; the first
/// `stock % buckets` shards get one unit more.
pub fn split(stock: i64, buckets: u32) -> Vec<i64> {
    let buckets = i64::from(buckets.max(1));
    (0..buckets)
        .map(|b| stock / buckets + i64::from(b < stock % buckets))
        .collect()
}

/// Slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The cluster slot of a hash tag (or of a key without one): CRC16/XMODEM
/// modulo 16384, as Redis computes it.
pub fn slot(tag: &str) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(tag.as_bytes()) % SLOTS
}

/// The slots bucket `bucket` of `buckets` hashes into: its equal part of the
/// slot space.
pub fn slot_range(bucket: u32, buckets: u32) -> std::ops::Range<u16> {
    let buckets = buckets.max(1);
    let part = |b: u32| (u32::from(SLOTS) * b / buckets) as u16;
    part(bucket)..if bucket + 1 >= buckets {
        SLOTS
    } else {
        part(bucket + 1)
    }
}

/// The hash tag of an event bucket's keys: `e<event>:b<bucket>`, with `:<n>`
/// appended for the smallest `n` that puts its slot in the bucket's part of the
/// slot space ([`slot_range`]). A single bucket keeps the plain tag.
pub fn tag(event_id: i64, bucket: u32, buckets: u32) -> String {
    let plain = format!("e{event_id}:b{bucket}");
    let range = slot_range(bucket, buckets);
    if range.contains(&slot(&plain)) {
        return plain;
    }
    (1u32..)
        .map(|n| format!("{plain}:{n}"))
        .find(|candidate| range.contains(&slot(candidate)))
        .expect("CRC16 reaches every slot range")
}

/// The bucket of an event a user's purchases go to.
pub fn for_user(event_id: i64, user_id: i64, buckets: u32) -> u32 {
    if buckets <= 1 {
        return 0;
    }
    // SplitMix64 finaliser: spreads consecutive ids evenly.
    let mut x = (user_id as u64) ^ (event_id as u64).rotate_left(32);
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % u64::from(buckets)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn split_is_even_and_complete() {
        assert_eq!(split(10, 1), vec![10]);
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(4, 4), vec![1, 1, 1, 1]);
    }

    #[test]
    fn users_spread_over_buckets() {
        let mut counts = [0u32; 8];
        for user in 0..8_000 {
            counts[for_user(5, user, 8) as usize] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn slots_are_redis_slots() {
        // Values from Redis' own CLUSTER KEYSLOT.
        assert_eq!(slot("123456789"), 12739);
        assert_eq!(slot("e42:b0"), slot("e42:b0"));
        assert_eq!(slot(""), 0);
    }

    #[test]
    fn buckets_split_the_slot_space_evenly() {
        assert_eq!(slot_range(0, 1), 0..16384);
        assert_eq!(slot_range(0, 3), 0..5461);
        assert_eq!(slot_range(2, 3), 10922..16384);
        // Six buckets on three masters made by `redis-cli --cluster create`
        // (0-5460, 5461-10922, 10923-16383): two on each.
        let masters = [0..5461u16, 5461..10923, 10923..16384];
        let mut per_master = [0; 3];
        for b in 0..6 {
            let slot = slot(&tag(42, b, 6));
            assert!(slot_range(b, 6).contains(&slot));
            let m = masters.iter().position(|r| r.contains(&slot)).unwrap();
            per_master[m] += 1;
        }
        assert_eq!(per_master, [2, 2, 2]);
        assert_eq!(tag(42, 0, 1), "e42:b0");
    }

    proptest! {
        #[test]
        fn every_bucket_lands_in_its_part(event in 1i64..1_000_000, buckets in 1u32..=64) {
            let bucket = (event as u32) % buckets;
            let tag = tag(event, bucket, buckets);
            prop_assert!(slot_range(bucket, buckets).contains(&slot(&tag)));
        }

        #[test]
        fn split_sums_to_stock(stock in 0i64..10_000_000, buckets in 1u32..64) {
            let parts = split(stock, buckets);
            prop_assert_eq!(parts.len(), buckets as usize);
            prop_assert_eq!(parts.iter().sum::<i64>(), stock);
            let (min, max) = (parts.iter().min().unwrap(), parts.iter().max().unwrap());
            prop_assert!(max - min <= 1);
        }

        #[test]
        fn routing_is_stable_and_in_range(event in any::<i64>(), user in any::<i64>(), buckets in 1u32..64) {
            let b = for_user(event, user, buckets);
            prop_assert!(b < buckets);
            prop_assert_eq!(b, for_user(event, user, buckets));
        }
    }
}
