//! Demo data for trying rushgate locally: an admin, an operator, a customer (fresh
//! random passwords on every run) and an approved sale opening shortly.

use rushgate_core::Role;
use rushgate_core::api::EventStatus;
use rushgate_core::event::{EventInput, EventSpec, TierInput};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

use crate::events::repo;
use crate::sale::{Replicas, stock};
use crate::store::redis::Redis;
use crate::users::{self, Password, Username};

const DEMO_EVENT: &str = "rushgate demo sale";

fn random_password() -> String {
    hex::encode(rand::random::<[u8; 9]>())
}

/// Creates or resets the demo users and makes sure a demo sale is upcoming or
/// open; prints what to log in with.
pub async fn seed(
    pool: &PgPool,
    redis: &Redis,
    replicas: &Replicas,
    opens_in_s: i64,
) -> anyhow::Result<()> {
    let mut lines = Vec::new();
    let mut operator_id = 0;
    let hashers = crate::auth::password::Hashers::new(1);
    for (name, role) in [
        ("demo-admin", Role::Admin),
        ("demo-operator", Role::Operator),
        ("demo-customer", Role::Customer),
    ] {
        let password = random_password();
        let id = users::upsert(
            pool,
            &hashers,
            &Username::parse(name).map_err(|e| anyhow::anyhow!("{e}"))?,
            Password::parse(&password).map_err(|e| anyhow::anyhow!("{e}"))?,
            role,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        if role == Role::Operator {
            operator_id = id;
        }
        lines.push(format!("  {role:<9} {name} / {password}"));
    }

    let now = OffsetDateTime::now_utc();
    let existing = repo::list_managed(pool, Some(operator_id))
        .await?
        .into_iter()
        .find(|e| {
            e.name == DEMO_EVENT
                && e.status == EventStatus::Approved
                && e.schedule.closes_at > now + Duration::minutes(10)
        });
    let event = match existing {
        Some(event) => event,
        None => {
            let opens_at = now + Duration::seconds(opens_in_s);
            let input = EventInput {
                name: DEMO_EVENT.into(),
                venue: "Localhost Arena".into(),
                description:
                    "A small sale to try the whole path: wait for the countdown, buy, pay.".into(),
                visible_at: now,
                opens_at,
                closes_at: opens_at + Duration::hours(2),
                per_user_limit: 2,
                per_order_limit: None,
                payment_window_s: None,
                dedup_window_s: None,
                admission: None,
                buckets: None,
                challenge: None,
                presale: None,
                velocity: None,
                tiers: vec![
                    TierInput {
                        name: "Standing".into(),
                        price_cents: 4500,
                        stock: 100,
                    },
                    TierInput {
                        name: "Seated".into(),
                        price_cents: 8900,
                        stock: 50,
                    },
                ],
            };
            let spec = EventSpec::parse(&input)?;
            let id = repo::insert(pool, operator_id, &spec).await?;
            let event = repo::get(pool, id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("demo event vanished"))?;
            stock::init(redis, replicas, &event).await?;
            repo::transition(
                pool,
                id,
                &[EventStatus::Draft],
                EventStatus::Approved,
                Some("demo"),
            )
            .await?;
            event
        }
    };
    println!("demo users (passwords are new on every run):");
    for line in lines {
        println!("{line}");
    }
    println!(
        "demo sale: event {} \"{}\" opens at {}",
        event.id, event.name, event.schedule.opens_at
    );
    Ok(())
}
