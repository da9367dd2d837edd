//! Fast provisioning for benchmarks: users inserted in bulk straight into
//! PostgreSQL (no argon2; their password hash `!` can never be logged into) and
//! requests signed locally with the deployment's key. It needs database access
//! and the signing key, so it cannot be switched on against a deployment by
//! accident, and `RUSHGATE_ENV=production` refuses it.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, ensure};
use clap::Args;
use rushgate_core::Keyring;
use rushgate_core::Role;
use rushgate_core::purchase;
use rushgate_core::token::SessionClaims;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

#[derive(Debug, Args)]
pub struct PrepareBuy {
    /// Origin base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub origin: String,
    #[arg(long, env = "RUSHGATE_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "RUSHGATE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: String,
    #[arg(long, env = "RUSHGATE_ENV", default_value = "development")]
    pub environment: String,
    /// Bench users to create.
    #[arg(long, default_value_t = 10_000)]
    pub users: u32,
    /// Purchase URLs per user.
    #[arg(long, default_value_t = 10)]
    pub urls_per_user: u32,
    /// Stock of the single tier.
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// Units per user; keep it at or above `urls_per_user` to measure reservations.
    #[arg(long, default_value_t = 100)]
    pub per_user_limit: i64,
    /// Admission probability of the (single) round.
    #[arg(long, default_value_t = 1.0)]
    pub admission_p: f64,
    /// Per-user dedup window at the edge, seconds.
    #[arg(long, default_value_t = 0)]
    pub dedup_window_s: u32,
    /// Where to write the requests.
    #[arg(long)]
    pub out: PathBuf,
}

/// Inserts `count` customers named `prefix-<n>` that cannot log in; returns ids.
pub async fn bench_users(
    pool: &PgPool,
    prefix: &str,
    count: u32,
    role: Role,
) -> anyhow::Result<Vec<i64>> {
    let ids = sqlx::query_scalar(
        "INSERT INTO users (username, password_hash, role) \
         SELECT $1 || '-' || g, '!', $3 FROM generate_series(1, $2) g RETURNING id",
    )
    .bind(prefix)
    .bind(count as i32)
    .bind(role.as_str())
    .fetch_all(pool)
    .await
    .context("inserting bench users (is the database migrated?)")?;
    Ok(ids)
}

fn session(keys: &Keyring, user_id: i64, role: Role) -> String {
    keys.sign(&SessionClaims {
        user_id,
        role,
        exp: OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600,
    })
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await?;
    ensure!(status.is_success(), "{url}: {status} {body}");
    Ok(body)
}

pub async fn prepare_buy(args: PrepareBuy) -> anyhow::Result<()> {
    ensure!(
        args.environment != "production",
        "bench provisioning refuses RUSHGATE_ENV=production"
    );
    let keys = Keyring::from_hex(&args.signing_key, None).context("RUSHGATE_SIGNING_KEY")?;
    let pool = PgPool::connect(&args.database_url).await?;
    let run = format!("bench{}", hex::encode(rand::random::<[u8; 4]>()));
    let staff = bench_users(&pool, &format!("{run}-admin"), 1, Role::Admin).await?[0];
    let customers = bench_users(&pool, &run, args.users, Role::Customer).await?;
    let admin = session(&keys, staff, Role::Admin);

    let client = reqwest::Client::new();
    let now = OffsetDateTime::now_utc();
    let fmt = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let event = post(
        &client,
        format!("{}/api/admin/events", args.origin),
        &admin,
        json!({
            "name": format!("{run} sale"),
            "visible_at": fmt(now - time::Duration::minutes(1)),
            "opens_at": fmt(now - time::Duration::seconds(1)),
            "closes_at": fmt(now + time::Duration::hours(6)),
            "per_user_limit": args.per_user_limit,
            "per_order_limit": 1,
            "dedup_window_s": args.dedup_window_s,
            "admission": {"rounds": [args.admission_p]},
            "tiers": [{"name": "GA", "price_cents": 1000, "stock": args.stock}],
        }),
    )
    .await?;
    let event_id = event["id"].as_i64().context("event id")?;
    let tier_id = event["tiers"][0]["id"].as_i64().context("tier id")?;
    post(
        &client,
        format!("{}/api/admin/events/{event_id}/submit", args.origin),
        &admin,
        json!({}),
    )
    .await?;
    post(
        &client,
        format!("{}/api/admin/events/{event_id}/approve", args.origin),
        &admin,
        json!({}),
    )
    .await?;

    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let closes_at = now + time::Duration::hours(6);
    for _ in 0..args.urls_per_user {
        for user in &customers {
            let url = purchase::issue(
                &keys,
                event_id,
                *user,
                now,
                6 * 3600,
                closes_at,
                rand::random(),
            );
            writeln!(
                out,
                "{}\tBearer {}",
                url.path,
                session(&keys, *user, Role::Customer)
            )?;
        }
    }
    out.flush()?;
    println!(
        "{{\"event_id\": {event_id}, \"tier_id\": {tier_id}, \"requests\": {}}}",
        customers.len() as u64 * u64::from(args.urls_per_user)
    );
    Ok(())
}
