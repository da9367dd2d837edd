//! The crowd simulator: provisions a sale and N buyers (a share of them bots),
//! sends them at the edge or straight at the origin — open loop (arrivals per
//! second) or closed loop (a fixed number active) — and reports, per endpoint,
//! requests/s, latency percentiles and outcomes, the units sold, the origin's
//! `/buy` load per unit sold, and an invariant check (SPEC §5) against admin
//! stats and PostgreSQL.

mod invariants;
mod load;
mod user;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rushgate_client::Client;
use rushgate_core::api::{DedupLoad, ShardLoad};
use rushgate_core::challenge::ChallengeMode;
use rushgate_core::event::{AdmissionInput, EventInput, ModeInput, TierInput};
use rushgate_core::{Keyring, Role};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::provision::{Access, bench_users, session};
use crate::stats::{self, Endpoint, EndpointReport, Recorder};
use user::Ending;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Buyers arrive at `--rate` per second, whatever the system does.
    Open,
    /// `--concurrency` buyers are active at any time.
    Closed,
}

#[derive(Debug, Clone, Args)]
pub struct CrowdArgs {
    /// Where the crowd goes: the edge, or the origin for a deployment without one.
    #[arg(long, default_value = "http://127.0.0.1:8787")]
    pub target: String,
    /// The origin, for provisioning, admin stats and bots that skip the edge.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub origin: String,
    #[command(flatten)]
    pub access: Access,
    #[arg(long, default_value_t = 2000)]
    pub users: u32,
    #[arg(long, default_value_t = 50)]
    pub stock: i64,
    #[arg(long, default_value_t = 2)]
    pub per_user_limit: i64,
    /// Units per purchase.
    #[arg(long, default_value_t = 1)]
    pub quantity: i64,
    /// Admission round probabilities, comma-separated, `auto` (with the
    /// default opening draw), `auto:<draw s>` or `queue`.
    #[arg(long, default_value = "1.0")]
    pub admission: String,
    #[arg(long, default_value_t = 10)]
    pub dedup_window_s: u32,
    /// Seconds from provisioning until the sale opens.
    #[arg(long, default_value_t = 3)]
    pub opens_in_s: i64,
    #[arg(long, value_enum, default_value = "closed")]
    pub mode: Mode,
    /// Closed loop: buyers active at once.
    #[arg(long, default_value_t = 500)]
    pub concurrency: usize,
    /// Open loop: buyers arriving per second.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Probability that a buyer who holds units pays.
    #[arg(long, default_value_t = 0.8)]
    pub pay_probability: f64,
    /// Share of the crowd that are bots.
    #[arg(long, default_value_t = 0.0)]
    pub bots: f64,
    /// How often a bot fires, ms.
    #[arg(long, default_value_t = 5)]
    pub bot_period_ms: u64,
    /// The client addresses the bots share (`CF-Connecting-IP`); every person
    /// has an address of their own.
    #[arg(long, default_value_t = 5)]
    pub bot_addresses: u32,
    /// The sale's door: off, auto or always (SPEC §4, "Bot defence").
    #[arg(long, default_value = "off", value_parser = challenge_mode)]
    pub challenge: ChallengeMode,
    /// How fast a person's device solves the door's challenge, hashes/s
    /// (Chromium's Web Crypto on a desktop core: docs/BENCHMARKS.md, D1).
    /// Bots solve at this machine's full native speed.
    #[arg(long, default_value_t = 165_000.0)]
    pub human_hashes_per_s: f64,
    /// A buyer gives up after this long.
    #[arg(long, default_value_t = 120)]
    pub max_seconds: u64,
    /// Stock buckets of the sale (default: the origin's choice for its stock).
    #[arg(long)]
    pub buckets: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

impl CrowdArgs {
    /// The command line's defaults, against a launcher stack: the crowd goes
    /// to its front (the edge, else the first origin) and provisions at its
    /// first origin with its database and key.
    pub fn for_stack(stack: &rushgate_dev::Stack) -> Self {
        let command = <Self as clap::Args>::augment_args(clap::Command::new("crowd"));
        let matches = command
            .try_get_matches_from([
                "crowd",
                "--target",
                &stack.front_url(),
                "--origin",
                &stack.origin_url(0),
                "--database-url",
                &stack.database_url,
                "--signing-key",
                &stack.signing_key,
                "--environment",
                "development",
            ])
            .expect("the crowd's options parse");
        <Self as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("the crowd's options parse")
    }
}

/// The sale under test and its buyers (user id, session token).
pub struct Sale {
    pub event_id: i64,
    pub tier_id: i64,
    pub opens_at: OffsetDateTime,
    pub users: Vec<(i64, String)>,
    admin: Client,
    /// The admin's session token.
    admin_token: String,
}

/// What every simulated buyer shares.
pub struct Shared {
    /// A client of the target (the edge, or an origin), not signed in.
    pub client: Client,
    /// The origin, when the target is the edge (bots go there directly too).
    pub origin: Option<String>,
    pub recorder: Recorder,
    pub quantity: i64,
    pub pay_probability: f64,
    pub max_duration: Duration,
    held: Mutex<HashSet<Uuid>>,
    sold_out_answers: AtomicU64,
    /// The sale admits through its queue.
    pub queue: bool,
    /// When a buyer was first told the sale is sold out.
    first_sold_out: Mutex<Option<Instant>>,
    pub bot_addresses: u32,
    pub human_hashes_per_s: f64,
    /// Who got a hold: user index → seconds from the opening.
    hold_times: Mutex<HashMap<usize, f64>>,
    /// The hashes bots computed to answer the door.
    bot_hashes: AtomicU64,
    /// An automatic lottery's opening draw: when it ends.
    pub draw_ends: Option<OffsetDateTime>,
    /// Who got a first turn in it: user index → inside the draw (or late).
    draw_entries: Mutex<HashMap<usize, bool>>,
}

impl Shared {
    /// `user` holds reservation `id` now (`opens_at`: the sale's opening).
    fn held(&self, id: Uuid, user: usize, opens_at: OffsetDateTime) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(id);
        }
        let after = (OffsetDateTime::now_utc() - opens_at).as_seconds_f64();
        if let Ok(mut times) = self.hold_times.lock() {
            times.entry(user).or_insert(after);
        }
    }

    /// `user`'s first `not_admitted` named `retry_at`: in the opening draw if
    /// that is the draw's end, late for it if later.
    fn turn(&self, user: usize, retry_at: OffsetDateTime) {
        if let (Some(ends), Ok(mut entries)) = (self.draw_ends, self.draw_entries.lock()) {
            entries.entry(user).or_insert(retry_at <= ends);
        }
    }

    fn told_sold_out(&self) {
        self.sold_out_answers.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_sold_out.lock() {
            first.get_or_insert_with(Instant::now);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub event_id: i64,
    pub users: u32,
    pub bots: u32,
    pub stock: i64,
    pub seconds: f64,
    pub endpoints: Vec<EndpointReport>,
    pub paid: u64,
    pub held_unpaid: u64,
    pub sold_out: u64,
    pub gave_up: u64,
    pub reservations: usize,
    pub units_sold: i64,
    /// `/buy` requests the origin served during the run.
    pub origin_buy_requests: u64,
    pub origin_buy_per_unit: f64,
    /// Buyers done per second of the run.
    pub buyers_per_s: f64,
    /// Seconds from the opening until a buyer was first told "sold out".
    pub sold_out_after_s: Option<f64>,
    /// With bots: what they won, and what it cost them.
    pub bots_report: Option<BotsReport>,
    /// People's median seconds from the opening to a hold (those who got one).
    pub human_median_hold_s: Option<f64>,
    /// An automatic lottery's opening draw: who got in, who came late.
    pub draw: Option<DrawReport>,
    /// In a queue sale: queue requests (joins and polls) per buyer, and the
    /// event's frontier object's load (asks, busiest second).
    pub queue_requests_per_buyer: Option<f64>,
    pub frontier: Option<ShardLoad>,
    /// Through the edge: the sale's desk's load, and the busiest funnel tally.
    pub desk: Option<ShardLoad>,
    pub busiest_tally: Option<ShardLoad>,
    /// What reached the origin besides purchases during the run: event reads
    /// and the edge's funnel reports (its floor, whatever the crowd).
    pub origin_event_reads: u64,
    pub origin_edge_reports: u64,
    /// Through the edge: the load on its dedup Durable Objects (those asked at
    /// all), since they started.
    pub dedup: Option<DedupSummary>,
    pub violations: Vec<String>,
}

/// Who asked inside an opening draw's window, and who after it (buyers never
/// asking at `/buy`, e.g. still at the door when it sold out, are in neither).
#[derive(Debug, Clone, Serialize)]
pub struct DrawReport {
    pub people_entered: u64,
    pub people_late: u64,
    pub bots_entered: u64,
    pub bots_late: u64,
}

/// The bots' share of the crowd and of the units, and their work.
#[derive(Debug, Clone, Serialize)]
pub struct BotsReport {
    pub share_of_crowd: f64,
    pub units: i64,
    pub share_of_units: f64,
    /// SHA-256 hashes the bots computed to answer the door.
    pub hashes: u64,
    /// What those hashes cost one core of this machine at the native solver's
    /// rate, measured before the crowd came (`native_hashes_per_s`).
    pub cpu_s: f64,
    pub cpu_s_per_unit: Option<f64>,
    pub native_hashes_per_s: f64,
}

/// How many hashes a second the native solver does on one core here: one
/// fixed challenge of 20 bits, timed (its nonce counts the tries).
fn native_hash_rate() -> f64 {
    let started = Instant::now();
    let nonce = rushgate_core::challenge::solve("rushgate bench calibration", 20);
    (nonce + 1) as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// The middle of `values` (sorted here).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The edge's dedup Durable Objects after the run.
#[derive(Debug, Clone, Serialize)]
pub struct DedupSummary {
    pub objects: usize,
    pub asks: u64,
    /// The busiest object: its asks, and the most it answered in one second.
    pub max_asks: u64,
    pub max_peak_per_s: u32,
    /// Asks of the busiest object ÷ the mean over objects.
    pub imbalance: f64,
}

impl DedupSummary {
    fn of(load: &DedupLoad) -> Self {
        let asked: Vec<_> = load.shards.iter().filter(|s| s.asks > 0).collect();
        let asks: u64 = asked.iter().map(|s| s.asks).sum();
        let max_asks = asked.iter().map(|s| s.asks).max().unwrap_or(0);
        let mean = asks as f64 / asked.len().max(1) as f64;
        Self {
            objects: asked.len(),
            asks,
            max_asks,
            max_peak_per_s: asked.iter().map(|s| s.peak_per_s).max().unwrap_or(0),
            imbalance: if mean > 0.0 {
                max_asks as f64 / mean
            } else {
                0.0
            },
        }
    }
}

/// `off`, `auto` or `always`.
fn challenge_mode(spec: &str) -> Result<ChallengeMode, String> {
    serde_json::from_value(serde_json::Value::String(spec.to_owned()))
        .map_err(|_| "off, auto or always".to_owned())
}

/// The opening draw's window of an `--admission` spec, if it has one.
fn draw_window_s(spec: &str) -> anyhow::Result<Option<u32>> {
    let input = admission(spec)?;
    let admission = rushgate_core::event::Admission::from_input(&input)?;
    Ok(admission.draw_s())
}

fn admission(spec: &str) -> anyhow::Result<AdmissionInput> {
    if let Some(draw) = spec.strip_prefix("auto") {
        let draw_s = match draw.strip_prefix(':') {
            Some(seconds) => Some(seconds.parse().context("--admission auto:<draw s>")?),
            None if draw.is_empty() => None,
            None => anyhow::bail!("--admission auto or auto:<opening draw s>"),
        };
        return Ok(AdmissionInput {
            mode: Some(ModeInput::Auto),
            draw_s,
            ..AdmissionInput::default()
        });
    }
    if spec == "queue" {
        return Ok(AdmissionInput {
            mode: Some(ModeInput::Queue),
            ..AdmissionInput::default()
        });
    }
    let rounds: Vec<f64> = spec
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--admission: comma-separated probabilities, `auto[:draw s]` or `queue`")?;
    Ok(AdmissionInput {
        rounds: Some(rounds),
        ..AdmissionInput::default()
    })
}

/// Creates the buyers and an approved sale opening `opens_in_s` from now.
pub async fn provision(args: &CrowdArgs, db: &PgPool, keys: &Keyring) -> anyhow::Result<Sale> {
    let run = format!("crowd{}", hex::encode(rand::random::<[u8; 4]>()));
    let staff = bench_users(db, &format!("{run}-admin"), 1, Role::Admin).await?[0];
    let admin_token = session(keys, staff, Role::Admin);
    let admin = Client::new(&args.origin).as_user(admin_token.clone());
    let ids = bench_users(db, &run, args.users, Role::Customer).await?;
    let users = ids
        .iter()
        .map(|id| (*id, session(keys, *id, Role::Customer)))
        .collect();

    let now = OffsetDateTime::now_utc();
    let opens_at = now + time::Duration::seconds(args.opens_in_s);
    let input = EventInput {
        name: format!("{run} sale"),
        venue: String::new(),
        description: String::new(),
        visible_at: now - time::Duration::minutes(1),
        opens_at,
        closes_at: opens_at + time::Duration::hours(2),
        per_user_limit: args.per_user_limit,
        per_order_limit: Some(args.quantity.min(args.per_user_limit)),
        payment_window_s: None,
        dedup_window_s: Some(i64::from(args.dedup_window_s)),
        admission: Some(admission(&args.admission)?),
        buckets: args.buckets.map(i64::from),
        challenge: Some(args.challenge),
        presale: None,
        velocity: None,
        tiers: vec![TierInput {
            name: "GA".into(),
            price_cents: 2500,
            stock: args.stock,
        }],
    };
    let event = admin.approved_event(&admin, &input).await?;
    Ok(Sale {
        event_id: event.id,
        tier_id: event.tiers[0].id,
        opens_at,
        users,
        admin,
        admin_token,
    })
}

/// `/buy` requests the origin has served (its Prometheus counter).
async fn origin_buys(origin: &Client) -> anyhow::Result<u64> {
    Ok(origin.route_requests("/buy/{event_id}/{token}").await?)
}

/// The origin's event reads and edge reports so far.
async fn origin_floor(origin: &Client) -> anyhow::Result<(u64, u64)> {
    Ok((
        origin.route_requests("/api/events/{id}").await?,
        origin
            .route_requests(rushgate_core::api::EDGE_REPORT_PATH)
            .await?,
    ))
}

/// A provisioned sale, before its crowd arrives.
pub struct Prepared {
    pub sale: Arc<Sale>,
    db: PgPool,
}

/// Provisions the sale and its buyers.
pub async fn prepare(args: &CrowdArgs) -> anyhow::Result<Prepared> {
    let (db, keys) = args.access.open().await?;
    let sale = Arc::new(provision(args, &db, &keys).await?);
    Ok(Prepared { sale, db })
}

/// Provisions a sale and sends the crowd at it.
pub async fn run(args: &CrowdArgs) -> anyhow::Result<Report> {
    let prepared = prepare(args).await?;
    run_prepared(args, prepared).await
}

/// Sends the crowd at a prepared sale (a test can act on the sale meanwhile).
pub async fn run_prepared(args: &CrowdArgs, prepared: Prepared) -> anyhow::Result<Report> {
    let Prepared { sale, db } = prepared;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency.max(64))
        .timeout(Duration::from_secs(30))
        .build()?;
    let origin = Client::with_http(http.clone(), &args.origin);
    let shared = Arc::new(Shared {
        client: Client::with_http(http, &args.target),
        origin: (args.origin != args.target).then(|| args.origin.trim_end_matches('/').to_owned()),
        recorder: Recorder::default(),
        quantity: args.quantity,
        pay_probability: args.pay_probability,
        max_duration: Duration::from_secs(args.max_seconds),
        held: Mutex::new(HashSet::new()),
        sold_out_answers: AtomicU64::new(0),
        queue: args.admission == "queue",
        first_sold_out: Mutex::new(None),
        bot_addresses: args.bot_addresses.max(1),
        human_hashes_per_s: args.human_hashes_per_s.max(1.0),
        hold_times: Mutex::new(HashMap::new()),
        bot_hashes: AtomicU64::new(0),
        draw_ends: draw_window_s(&args.admission)?
            .map(|s| sale.opens_at + time::Duration::seconds(s.into())),
        draw_entries: Mutex::new(HashMap::new()),
    });
    let buys_before = origin_buys(&origin).await?;
    let floor_before = origin_floor(&origin).await?;
    let native_hashes_per_s = tokio::task::spawn_blocking(native_hash_rate).await?;

    let total = sale.users.len();
    let bots = ((total as f64) * args.bots.clamp(0.0, 1.0)).round() as usize;
    let progress = ProgressBar::new(total as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} buyers done  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let watch = shared.origin.as_ref().map(|_| {
        load::LoadWatch::start(
            shared.client.as_user(sale.admin_token.clone()),
            sale.event_id,
        )
    });
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(match args.mode {
        Mode::Closed => args.concurrency.max(1),
        Mode::Open => Semaphore::MAX_PERMITS,
    }));
    // Bots are spread evenly through the crowd.
    let stride = total.checked_div(bots).map_or(usize::MAX, |s| s.max(1));
    let is_bot = move |i: usize| i.is_multiple_of(stride) && i / stride < bots;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        if args.mode == Mode::Open && i > 0 {
            tokio::time::sleep(Duration::from_secs_f64(1.0 / args.rate.max(0.001))).await;
        }
        let permit = gate.clone().acquire_owned().await?;
        let (shared, sale, progress) = (shared.clone(), sale.clone(), progress.clone());
        let period = Duration::from_millis(args.bot_period_ms);
        let bot = is_bot(i);
        tasks.push(tokio::spawn(async move {
            let ending = if bot {
                user::bot(&shared, &sale, i, i / stride, period).await
            } else {
                user::buyer(&shared, &sale, i).await
            };
            drop(permit);
            progress.inc(1);
            ending
        }));
    }
    let endings: Vec<Ending> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap_or(Ending::GaveUp))
        .collect();
    let elapsed = started.elapsed();
    progress.finish_and_clear();

    let load = match watch {
        Some(watch) => Some(watch.finish().await.context("the edge's dedup load")?),
        None => None,
    };
    let held: HashSet<Uuid> = shared.held.lock().map(|h| h.clone()).unwrap_or_default();
    let told_sold_out = shared.sold_out_answers.load(Ordering::Relaxed) > 0;
    let check = invariants::check(&sale, &db, &held, told_sold_out, args.per_user_limit).await?;
    let origin_buy_requests = origin_buys(&origin).await?.saturating_sub(buys_before);
    let floor_after = origin_floor(&origin).await?;
    let origin_event_reads = floor_after.0.saturating_sub(floor_before.0);
    let origin_edge_reports = floor_after.1.saturating_sub(floor_before.1);
    let dedup = load.as_ref().map(DedupSummary::of);
    let desk = load.as_ref().and_then(|l| l.desk);
    let busiest_tally = load
        .as_ref()
        .and_then(|l| l.tallies.iter().max_by_key(|t| t.peak_per_s).copied());
    let frontier = load.and_then(|l| l.frontier).filter(|_| shared.queue);
    let count = |e: Ending| endings.iter().filter(|x| **x == e).count() as u64;
    let endpoints = shared.recorder.report(elapsed);
    let queue_requests = endpoints
        .iter()
        .find(|e| e.endpoint == Endpoint::Queue)
        .map_or(0, |e| e.requests);
    let first_sold_out = shared.first_sold_out.lock().ok().and_then(|f| *f);
    let sold_out_after_s = first_sold_out.map(|first| {
        let since_opening = (OffsetDateTime::now_utc() - sale.opens_at).as_seconds_f64();
        since_opening - first.elapsed().as_secs_f64()
    });
    let hold_times = shared
        .hold_times
        .lock()
        .map(|t| t.clone())
        .unwrap_or_default();
    let human_median_hold_s = median(
        hold_times
            .iter()
            .filter(|(user, _)| !is_bot(**user))
            .map(|(_, s)| *s)
            .collect(),
    );
    let draw = shared.draw_ends.map(|_| {
        let entries = shared
            .draw_entries
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        let tally = |bot: bool, entered: bool| {
            entries
                .iter()
                .filter(|(u, e)| is_bot(**u) == bot && **e == entered)
                .count() as u64
        };
        DrawReport {
            people_entered: tally(false, true),
            people_late: tally(false, false),
            bots_entered: tally(true, true),
            bots_late: tally(true, false),
        }
    });
    let bots_report = (bots > 0).then(|| {
        let units = hold_times.keys().filter(|u| is_bot(**u)).count() as i64 * args.quantity;
        let hashes = shared.bot_hashes.load(Ordering::Relaxed);
        let cpu_s = hashes as f64 / native_hashes_per_s;
        BotsReport {
            hashes,
            native_hashes_per_s,
            share_of_crowd: bots as f64 / total.max(1) as f64,
            units,
            share_of_units: units as f64 / check.units_sold.max(1) as f64,
            cpu_s,
            cpu_s_per_unit: (units > 0).then(|| cpu_s / units as f64),
        }
    });
    Ok(Report {
        event_id: sale.event_id,
        users: total as u32,
        bots: bots as u32,
        stock: args.stock,
        seconds: elapsed.as_secs_f64(),
        endpoints,
        paid: count(Ending::Paid),
        held_unpaid: count(Ending::Held),
        sold_out: count(Ending::SoldOut) + count(Ending::LimitReached),
        gave_up: count(Ending::GaveUp),
        reservations: held.len(),
        units_sold: check.units_sold,
        origin_buy_requests,
        origin_buy_per_unit: origin_buy_requests as f64 / check.units_sold.max(1) as f64,
        buyers_per_s: total as f64 / elapsed.as_secs_f64().max(0.001),
        sold_out_after_s,
        bots_report,
        human_median_hold_s,
        draw,
        queue_requests_per_buyer: shared
            .queue
            .then(|| queue_requests as f64 / total.max(1) as f64),
        frontier,
        desk,
        busiest_tally,
        origin_event_reads,
        origin_edge_reports,
        dedup,
        violations: check.violations,
    })
}

/// Human-readable summary.
pub fn render(report: &Report) -> String {
    let mut out = stats::table(&report.endpoints);
    out.push_str(&format!(
        "\n{} buyers ({} bots), stock {}, {:.1} s: {} paid, {} holding unpaid, {} sold out, {} gave up\n",
        report.users, report.bots, report.stock, report.seconds, report.paid, report.held_unpaid, report.sold_out, report.gave_up
    ));
    out.push_str(&format!("buyers per second {:.0}\n", report.buyers_per_s));
    if let Some(s) = report.sold_out_after_s {
        out.push_str(&format!("sold out {s:.1} s after the opening\n"));
    }
    if let Some(s) = report.human_median_hold_s {
        out.push_str(&format!(
            "people's median time from the opening to a hold {s:.2} s\n"
        ));
    }
    if let Some(d) = &report.draw {
        out.push_str(&format!(
            "opening draw: people {} in, {} late; bots {} in, {} late\n",
            d.people_entered, d.people_late, d.bots_entered, d.bots_late
        ));
    }
    if let Some(b) = &report.bots_report {
        out.push_str(&format!(
            "bots: {:.1} % of the crowd, {} units = {:.1} % of units sold; {} hashes = {:.2} CPU-s of one core here, {} per unit won\n",
            b.share_of_crowd * 100.0,
            b.units,
            b.share_of_units * 100.0,
            b.hashes,
            b.cpu_s,
            b.cpu_s_per_unit
                .map_or("none won".to_owned(), |s| format!("{s:.3} CPU-s")),
        ));
    }
    if let Some(per_buyer) = report.queue_requests_per_buyer {
        out.push_str(&format!("queue requests per buyer {per_buyer:.2}\n"));
    }
    if let Some(f) = &report.frontier {
        out.push_str(&format!(
            "queue frontier object: {} asks, peak {}/s\n",
            f.asks, f.peak_per_s
        ));
    }
    if let Some(d) = &report.desk {
        out.push_str(&format!(
            "sale desk: {} asks, peak {}/s\n",
            d.asks, d.peak_per_s
        ));
    }
    if let Some(t) = &report.busiest_tally {
        out.push_str(&format!(
            "busiest funnel tally: {} asks, peak {}/s\n",
            t.asks, t.peak_per_s
        ));
    }
    out.push_str(&format!(
        "origin besides /buy: {} event reads, {} edge reports\n",
        report.origin_event_reads, report.origin_edge_reports
    ));
    if let Some(d) = &report.dedup {
        out.push_str(&format!(
            "dedup Durable Objects: {} asked, {} asks; busiest {} asks ({:.2}× the mean), peak {}/s\n",
            d.objects, d.asks, d.max_asks, d.imbalance, d.max_peak_per_s
        ));
    }
    out.push_str(&format!(
        "units sold {} in {} reservations; origin /buy requests {} = {:.2} per unit sold\n",
        report.units_sold,
        report.reservations,
        report.origin_buy_requests,
        report.origin_buy_per_unit
    ));
    if report.violations.is_empty() {
        out.push_str("invariants: all hold\n");
    } else {
        out.push_str("INVARIANT VIOLATIONS:\n");
        for v in &report.violations {
            out.push_str(&format!("  - {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_only_objects_that_were_asked() {
        let shard = |shard, asks, peak_per_s| ShardLoad {
            shard,
            asks,
            peak_per_s,
        };
        let load = DedupLoad {
            shards: vec![shard(0, 30, 12), shard(1, 0, 0), shard(2, 10, 4)],
            frontier: None,
            desk: None,
            tallies: Vec::new(),
        };
        let summary = DedupSummary::of(&load);
        assert_eq!((summary.objects, summary.asks), (2, 40));
        assert_eq!((summary.max_asks, summary.max_peak_per_s), (30, 12));
        assert!((summary.imbalance - 1.5).abs() < 1e-9);
    }
}
