//! The SPEC §5 invariants after a run, from the admin stats (Redis's view) and
//! PostgreSQL (the orders):
//! - 1, never oversold: reserved + paid ≤ stock;
//! - 2, never undersold: if anyone was told "sold out", nothing remains;
//! - 3 and 6, every reservation answered 202 is exactly one order row, and no
//!   row exists without one (so no replay reserved twice);
//! - 4, nobody holds more than the per-user limit;
//! - 5, units are conserved: remaining + reserved + paid = stock (no order
//!   expired or was cancelled during a run shorter than the payment window).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use uuid::Uuid;

use super::Sale;

pub struct Checked {
    pub units_sold: i64,
    pub violations: Vec<String>,
}

pub async fn check(
    sale: &Sale,
    db: &PgPool,
    held: &HashSet<Uuid>,
    told_sold_out: bool,
    per_user_limit: i64,
) -> anyhow::Result<Checked> {
    let mut violations = Vec::new();

    // The order worker writes asynchronously: wait for the rows (bounded).
    let until = Instant::now() + Duration::from_secs(30);
    let rows: Vec<Uuid> = loop {
        let rows: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM orders WHERE event_id = $1")
            .bind(sale.event_id)
            .fetch_all(db)
            .await?;
        if rows.len() >= held.len() || Instant::now() > until {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let written: HashSet<Uuid> = rows.iter().copied().collect();
    if written.len() != rows.len() {
        violations.push("an order id appears twice".into());
    }
    let missing = held.difference(&written).count();
    let unexplained = written.difference(held).count();
    if missing > 0 {
        violations.push(format!(
            "{missing} reservations answered 202 have no order row"
        ));
    }
    if unexplained > 0 {
        violations.push(format!("{unexplained} order rows match no 202 reservation"));
    }

    let over: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT user_id, SUM(quantity)::bigint FROM orders WHERE event_id = $1 \
         AND status IN ('awaiting_payment', 'paid') GROUP BY user_id HAVING SUM(quantity) > $2",
    )
    .bind(sale.event_id)
    .bind(per_user_limit)
    .fetch_all(db)
    .await?;
    for (user, units) in over {
        violations.push(format!("user {user} holds {units} > {per_user_limit}"));
    }

    // A Redis node failing over answers 503 for a moment: ask again.
    let until = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        match sale.admin.stats(sale.event_id).await {
            Err(e)
                if e.status() == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)
                    && Instant::now() < until =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answer => break answer?,
        }
    };
    let mut units_sold = 0;
    for tier in &stats.tiers {
        let (total, remaining, reserved, paid) =
            (tier.stock_total, tier.remaining, tier.reserved, tier.paid);
        units_sold += reserved + paid;
        if reserved + paid > total {
            violations.push(format!(
                "oversold: reserved {reserved} + paid {paid} > stock {total}"
            ));
        }
        if remaining + reserved + paid != total {
            violations.push(format!(
                "units not conserved: remaining {remaining} + reserved {reserved} + paid {paid} != stock {total}"
            ));
        }
        if told_sold_out && remaining > 0 {
            violations.push(format!(
                "undersold: buyers were told sold out with {remaining} remaining"
            ));
        }
    }
    Ok(Checked {
        units_sold,
        violations,
    })
}
