//! The SPEC §5 invariants, checked against both Redis and PostgreSQL after a run.

use std::collections::{HashMap, HashSet};

use rushgate_origin::events::repo;
use rushgate_origin::sale::record::Reservation;
use uuid::Uuid;

use crate::helpers::TestApp;

/// What a sale looks like in both stores, per tier.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TierTally {
    pub stock_total: i64,
    pub remaining: i64,
    pub queued: i64,
    pub awaiting: i64,
    pub paid: i64,
    /// Expired or cancelled, units already back in Redis.
    pub returned: i64,
    /// Expired or cancelled, release still in the outbox.
    pub returning: i64,
    /// Moving between buckets: taken from one, not yet landed in another.
    pub in_flight: i64,
}

#[derive(Debug, Default)]
pub struct Tally {
    pub tiers: HashMap<i64, TierTally>,
    pub order_ids: HashSet<Uuid>,
    pub queued_ids: HashSet<Uuid>,
}

/// Reads the sale of `event_id` from both stores and asserts every invariant that
/// holds at any quiet moment:
/// 1. never oversold: held + paid ≤ stock, per tier;
/// 3. every reservation is exactly one order (row or still queued), and no order
///    exists without a reservation (`reservations`, if given, is the set of ids
///    the API answered 202 for);
/// 4. no user holds more than the per-user limit, and Redis's per-user counts
///    equal what the orders say;
/// 5. units are conserved: remaining + held + paid + being returned + moving
///    between buckets = stock, so an expired or cancelled order's units came
///    back exactly once.
pub async fn assert_invariants(
    app: &TestApp,
    event_id: i64,
    reservations: Option<&HashSet<Uuid>>,
) -> Tally {
    let event = repo::get(&app.db, event_id).await.unwrap().unwrap();
    let mut tally = Tally::default();
    let mut conn = app.redis.conn.clone();

    let rows: Vec<(Uuid, i64, i64, i32, String, bool, i32)> = sqlx::query_as(
        "SELECT o.id, o.tier_id, o.user_id, o.quantity, o.status, \
         COALESCE(r.released_at IS NULL, false) AS returning, o.bucket \
         FROM orders o LEFT JOIN release_outbox r ON r.order_id = o.id WHERE o.event_id = $1",
    )
    .bind(event_id)
    .fetch_all(&app.db)
    .await
    .unwrap();

    for tier in &event.tiers {
        tally.tiers.insert(
            tier.id,
            TierTally {
                stock_total: i64::from(tier.stock),
                ..TierTally::default()
            },
        );
    }
    // Units each user should hold according to the orders (Redis counts units of
    // orders not yet returned).
    let mut expected_held: HashMap<i64, i64> = HashMap::new();
    for (id, tier, user, qty, status, returning, bucket) in &rows {
        let qty = i64::from(*qty);
        // A release whose script ran but whose outbox row is not marked yet has
        // already returned its units.
        let marked: bool = redis::cmd("EXISTS")
            .arg(app.keys(event_id, *bucket as u32).await.released(id))
            .query_async(&mut conn)
            .await
            .unwrap();
        let returning = &(*returning && !marked);
        let t = tally
            .tiers
            .get_mut(tier)
            .expect("order for an unknown tier");
        assert!(tally.order_ids.insert(*id), "order {id} twice");
        match status.as_str() {
            "awaiting_payment" => t.awaiting += qty,
            "paid" => t.paid += qty,
            _ if *returning => t.returning += qty,
            _ => t.returned += qty,
        }
        if status == "awaiting_payment" || status == "paid" || *returning {
            *expected_held.entry(*user).or_default() += qty;
        }
    }

    let mut redis_held: HashMap<i64, i64> = HashMap::new();
    for b in 0..event.buckets {
        for tier in &event.tiers {
            let stock: Option<i64> = redis::cmd("GET")
                .arg(app.keys(event_id, b).await.stock(tier.id))
                .query_async(&mut conn)
                .await
                .unwrap();
            tally.tiers.get_mut(&tier.id).unwrap().remaining += stock.unwrap_or(0);
        }
        let users: HashMap<i64, i64> = redis::cmd("HGETALL")
            .arg(app.keys(event_id, b).await.users())
            .query_async(&mut conn)
            .await
            .unwrap();
        for (user, units) in users {
            *redis_held.entry(user).or_default() += units;
        }
        let transfers: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(app.keys(event_id, b).await.transfers())
            .query_async(&mut conn)
            .await
            .unwrap();
        for (id, value) in transfers {
            let parts: Vec<i64> = value.split(':').map(|p| p.parse().unwrap()).collect();
            let landed: bool = redis::cmd("EXISTS")
                .arg(app.keys(event_id, parts[0] as u32).await.landed(&id))
                .query_async(&mut conn)
                .await
                .unwrap();
            if !landed {
                tally.tiers.get_mut(&parts[1]).unwrap().in_flight += parts[2];
            }
        }
        let queued: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(app.keys(event_id, b).await.queued())
            .query_async(&mut conn)
            .await
            .unwrap();
        for (id, value) in queued {
            let id = Uuid::parse_str(&id).unwrap();
            let order = Reservation::parse(&value).unwrap();
            assert_eq!(order.id, id);
            let order = order.queued_order();
            assert!(
                !tally.order_ids.contains(&id),
                "{id} is both queued and written"
            );
            tally.queued_ids.insert(id);
            tally.tiers.get_mut(&order.tier_id).unwrap().queued += order.quantity;
            *expected_held.entry(order.user_id).or_default() += order.quantity;
        }
    }

    for (tier, t) in &tally.tiers {
        let held = t.queued + t.awaiting;
        assert!(
            held + t.paid <= t.stock_total,
            "tier {tier} oversold: {t:?}"
        );
        assert!(t.remaining >= 0, "tier {tier} negative stock: {t:?}");
        assert_eq!(
            t.remaining + held + t.paid + t.returning + t.in_flight,
            t.stock_total,
            "tier {tier}: units not conserved: {t:?}"
        );
    }

    let limit = i64::from(event.per_user_limit);
    for (user, held) in &redis_held {
        assert!(*held <= limit, "user {user} holds {held} > {limit}");
        assert!(*held > 0, "user {user} has a non-positive count {held}");
    }
    expected_held.retain(|_, units| *units > 0);
    assert_eq!(
        redis_held, expected_held,
        "Redis per-user counts disagree with the orders"
    );

    if let Some(reservations) = reservations {
        let all: HashSet<Uuid> = tally.order_ids.union(&tally.queued_ids).copied().collect();
        assert_eq!(&all, reservations, "orders and 202 reservations differ");
    }
    tally
}
