//! Bucket routing: a tier's stock is split over `buckets` shards, each living in
//! its own Redis Cluster slot together with the per-user counters of the users
//! routed to it. A user always lands in the same bucket of an event, so the
//! per-user limit is checked atomically with the stock it draws from.

/// Splits `stock` units over `buckets` shards as evenly as possible; the first
/// `stock % buckets` shards get one unit more.
pub fn split(stock: i64, buckets: u32) -> Vec<i64> {
    let buckets = i64::from(buckets.max(1));
    (0..buckets)
        .map(|b| stock / buckets + i64::from(b < stock % buckets))
        .collect()
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

    proptest! {
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
