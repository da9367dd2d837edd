//! Fast provisioning for benchmarks: users inserted in bulk straight into
//! PostgreSQL (no argon2; their password hash `!` can never be logged into) and
//! requests signed locally with the deployment's key. It needs database access
//! and the signing key, so it cannot be switched on against a deployment by
//! accident, and `RUSHGATE_ENV=production` refuses it.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, ensure};
use clap::Args;
use rushgate_client::Client;
use rushgate_core::Keyring;
use rushgate_core::Role;
use rushgate_core::event::{AdmissionInput, EventInput, TierInput};
use rushgate_core::purchase;
use rushgate_core::token::SessionClaims;
use sqlx::PgPool;
use time::OffsetDateTime;

/// What bench provisioning needs of a deployment: its database and its
/// signing key — which no one has through the API — and its environment, so
/// that production refuses.
#[derive(Debug, Clone, Args)]
pub struct Access {
    #[arg(long, env = "RUSHGATE_DATABASE_URL")]
    pub database_url: String,
    #[arg(long, env = "RUSHGATE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: String,
    #[arg(long, env = "RUSHGATE_ENV", default_value = "development")]
    pub environment: String,
}

impl Access {
    /// The database and the keys; refused in production.
    pub async fn open(&self) -> anyhow::Result<(PgPool, Keyring)> {
        ensure!(
            self.environment != "production",
            "bench provisioning refuses RUSHGATE_ENV=production"
        );
        let keys = Keyring::from_hex(&self.signing_key, None).context("RUSHGATE_SIGNING_KEY")?;
        let db = PgPool::connect(&self.database_url)
            .await
            .context("connecting to PostgreSQL")?;
        Ok((db, keys))
    }
}

#[derive(Debug, Args)]
pub struct PrepareBuy {
    /// Origin base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub origin: String,
    #[command(flatten)]
    pub access: Access,
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
    /// Stock buckets of the sale (spread over the masters of a Redis Cluster).
    #[arg(long, default_value_t = 1)]
    pub buckets: u32,
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

/// A day-long session for a bench user, signed with the deployment's key.
pub fn session(keys: &Keyring, user_id: i64, role: Role) -> String {
    keys.sign(&SessionClaims {
        user_id,
        role,
        exp: OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600,
        sid: rand::random(),
        generation: 0,
    })
}

pub async fn prepare_buy(args: PrepareBuy) -> anyhow::Result<()> {
    let (pool, keys) = args.access.open().await?;
    let run = format!("bench{}", hex::encode(rand::random::<[u8; 4]>()));
    let staff = bench_users(&pool, &format!("{run}-admin"), 1, Role::Admin).await?[0];
    let customers = bench_users(&pool, &run, args.users, Role::Customer).await?;
    let admin = Client::new(&args.origin).as_user(session(&keys, staff, Role::Admin));

    let now = OffsetDateTime::now_utc();
    let input = EventInput {
        name: format!("{run} sale"),
        venue: String::new(),
        description: String::new(),
        visible_at: now - time::Duration::minutes(1),
        opens_at: now - time::Duration::seconds(1),
        closes_at: now + time::Duration::hours(6),
        per_user_limit: args.per_user_limit,
        per_order_limit: Some(1),
        payment_window_s: None,
        dedup_window_s: Some(i64::from(args.dedup_window_s)),
        admission: Some(AdmissionInput {
            rounds: Some(vec![args.admission_p]),
            ..AdmissionInput::default()
        }),
        buckets: Some(i64::from(args.buckets)),
        // The crowd does not solve challenges (yet): the door stays open.
        challenge: Some(rushgate_core::challenge::ChallengeMode::Off),
        presale: None,
        velocity: None,
        tiers: vec![TierInput {
            name: "GA".into(),
            price_cents: 1000,
            stock: args.stock,
        }],
    };
    let event = admin.approved_event(&admin, &input).await?;
    let (event_id, tier_id) = (event.id, event.tiers[0].id);

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
