//! The whole system on this machine: Redis (a private `redis-server`, or one
//! given by URL), a PostgreSQL database (fresh unless named), any number of
//! `rushgate-origin serve` replicas and `worker` processes, and the edge under
//! workerd or `wrangler dev` — all on free loopback ports unless told otherwise,
//! with one signing key. Dropping the stack stops everything it started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context as _;
use rushgate_client::Client;
use rushgate_core::challenge::ChallengeMode;
use rushgate_core::event::{EventInput, TierInput};
use rushgate_core::token::SessionClaims;
use rushgate_core::{Keyring, Role};
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use crate::edge::{self, EdgeSpec, Runtime};
use crate::ports::{answers, free_port, ready};
use crate::proc::Proc;
use crate::receiver::Receiver;
use crate::redis::{RedisCluster, RedisServer};

/// What to start.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Origin processes serving the API.
    #[arg(long, default_value_t = 1)]
    pub origins: usize,
    /// Separate `rushgate-origin worker` processes; with any, the origins run
    /// `serve --no-workers`.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Use this Redis instead of starting a private one.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Key prefix in Redis (default: a fresh one with a given Redis, `rg`
    /// with a private one).
    #[arg(long)]
    pub redis_prefix: Option<String>,
    /// Start the private Redis with AOF (fsync always), so a restart keeps it.
    #[arg(long)]
    pub redis_aof: bool,
    /// Start a private Redis Cluster of this many masters (each with a
    /// replica) instead of a single node.
    #[arg(long)]
    pub redis_cluster: Option<usize>,
    /// PostgreSQL server, without a database: postgres://user[:password]@host:port
    #[arg(long, env = "RUSHGATE_PG_BASE", default_value_t = pg_base())]
    pub pg_base: String,
    /// Database name (default: a fresh one).
    #[arg(long)]
    pub database: Option<String>,
    /// What runs the edge; without it, no edge.
    #[arg(long, value_enum)]
    pub edge: Option<Runtime>,
    /// Run this JavaScript module as the edge instead of the built Rust worker
    /// (under workerd; same bindings): the baseline of the edge benchmark.
    #[arg(long)]
    pub edge_script: Option<PathBuf>,
    /// Isolates the edge runs in, sharing one set of Durable Objects and one
    /// location cache, as on Cloudflare (workerd only).
    #[arg(long, default_value_t = 1)]
    pub isolates: usize,
    /// How requests are spread over the isolates.
    #[arg(long, value_enum, default_value = "spray")]
    pub spread: edge::Spread,
    /// Port of the first origin (default: a free one).
    #[arg(long)]
    pub origin_port: Option<u16>,
    /// Port of the edge (default: a free one).
    #[arg(long)]
    pub edge_port: Option<u16>,
    /// The signing key shared by edge and origins, hex (default: a fresh one).
    #[arg(long, env = "RUSHGATE_SIGNING_KEY", hide_env_values = true)]
    pub signing_key: Option<String>,
    /// More origin settings, NAME=VALUE (e.g. RUSHGATE_BUY_RATE_PER_S=100).
    #[arg(long = "origin-env", value_parser = pair)]
    pub origin_env: Vec<(String, String)>,
    /// More edge vars, NAME=VALUE (e.g. EVENT_CACHE_TTL_S=1).
    #[arg(long = "edge-var", value_parser = pair)]
    pub edge_vars: Vec<(String, String)>,
    /// The origins' log filter.
    #[arg(long, default_value = "warn")]
    pub log: String,
    /// Use release builds of the binaries.
    #[arg(long)]
    pub release: bool,
    /// Keep logs and state here (default: a temporary directory, removed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Start a webhook receiver that writes each delivery to `webhooks.log`
    /// in the stack's directory, as the origins' `RUSHGATE_WEBHOOK_URLS`.
    #[arg(long)]
    pub webhook_receiver: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            origins: 1,
            workers: 0,
            redis_url: None,
            redis_prefix: None,
            redis_aof: false,
            redis_cluster: None,
            pg_base: pg_base(),
            database: None,
            edge: None,
            edge_script: None,
            isolates: 1,
            spread: edge::Spread::Spray,
            origin_port: None,
            edge_port: None,
            signing_key: None,
            origin_env: Vec::new(),
            edge_vars: Vec::new(),
            log: "warn".into(),
            release: false,
            dir: None,
            webhook_receiver: false,
        }
    }
}

impl Options {
    /// One origin behind the edge under workerd.
    pub fn with_edge() -> Self {
        Self {
            edge: Some(Runtime::Workerd),
            ..Self::default()
        }
    }
}

/// `NAME=VALUE` from the command line.
pub fn pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text}: expected NAME=VALUE"))
}

/// `RUSHGATE_PG_BASE`, else the server of `DATABASE_URL`, else the local default.
pub fn pg_base() -> String {
    if let Ok(base) = std::env::var("RUSHGATE_PG_BASE") {
        return base;
    }
    match std::env::var("DATABASE_URL") {
        Ok(url) => url
            .rsplit_once('/')
            .map_or(url.clone(), |(base, _)| base.to_owned()),
        Err(_) => "postgres://postgres@127.0.0.1:5432".into(),
    }
}

/// The repository: where `edge/build`, `static/` and `node_modules/` are.
pub fn root() -> PathBuf {
    let root = std::env::var_os("RUSHGATE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    root.canonicalize().unwrap_or(root)
}

/// The directory of the `rushgate-origin` and `rushgate-dev` binaries. Under
/// cargo (tests) they are built first, once per process, so they are never
/// stale.
pub fn binaries(release: bool) -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("RUSHGATE_BIN_DIR") {
        return Ok(dir.into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let dir = target.join(if release { "release" } else { "debug" });
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Some(cargo) = std::env::var_os("CARGO") {
        BUILT
            .get_or_init(|| {
                let mut build = Command::new(cargo);
                build.current_dir(root()).args([
                    "build",
                    "-q",
                    "--locked",
                    "-p",
                    "rushgate-origin",
                    "-p",
                    "rushgate-dev",
                    "--bin",
                    "rushgate-origin",
                    "--bin",
                    "rushgate-dev",
                ]);
                if release {
                    build.arg("--release");
                }
                match build.status() {
                    Ok(s) if s.success() => Ok(()),
                    other => Err(format!(
                        "building rushgate-origin and rushgate-dev: {other:?}"
                    )),
                }
            })
            .clone()
            .map_err(anyhow::Error::msg)?;
    }
    anyhow::ensure!(
        dir.join("rushgate-origin").exists(),
        "{} has no rushgate-origin: build it (cargo build -p rushgate-origin)",
        dir.display()
    );
    Ok(dir)
}

/// The private Redis a stack started.
pub enum Private {
    Single(RedisServer),
    Cluster(RedisCluster),
}

/// A process of the stack serving HTTP on a port.
struct Node {
    port: u16,
    proc: Option<Proc>,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Stack {
    pub redis_url: String,
    pub redis_prefix: String,
    pub database_url: String,
    pub signing_key: String,
    pub keys: Keyring,
    // Processes stop in this order when the stack is dropped: the edge, the
    // origins (which flush to Redis on the way out), the workers, then Redis.
    edge: Option<Node>,
    origins: Vec<Node>,
    workers: Vec<Option<Proc>>,
    redis: Option<Private>,
    options: Options,
    bins: PathBuf,
    dir: PathBuf,
    temporary: bool,
    http: reqwest::Client,
    db: OnceCell<PgPool>,
    admin: OnceCell<Client>,
    receiver: Option<Receiver>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.edge = None;
        self.origins.clear();
        self.workers.clear();
        self.redis = None;
        if self.options.database.is_none() {
            // The launcher named the database: it goes with the stack.
            let name = self
                .database_url
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_owned();
            if let Err(e) = drop_database(&self.options.pg_base, &name) {
                eprintln!("rushgate-dev: dropping the database {name} failed: {e:#}");
            }
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Drops database `name` (its connections closed first), on a thread of its
/// own: a stack is often dropped inside an async runtime.
fn drop_database(pg_base: &str, name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        name.starts_with("rg_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "not a database the launcher names: {name}"
    );
    let url = format!("{}/postgres", pg_base.trim_end_matches('/'));
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(&sql).execute(&mut conn).await?;
            anyhow::Ok(())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread dropping the database panicked"))?
}

impl Stack {
    /// Starts everything `options` asks for and waits until it all answers.
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let bins = binaries(options.release)?;
        let (dir, temporary) = match &options.dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("rushgate-{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        std::fs::create_dir_all(&dir)?;
        // Its files hold the signing key: the owner's only.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let (redis, redis_url) = match (&options.redis_url, options.redis_cluster) {
            (Some(url), _) => (None, url.clone()),
            (None, Some(masters)) => {
                let cluster =
                    RedisCluster::start(&dir.join("redis"), masters, options.redis_aof).await?;
                let urls = cluster.urls();
                (Some(Private::Cluster(cluster)), urls)
            }
            (None, None) => {
                let server = RedisServer::start(&dir.join("redis"), options.redis_aof).await?;
                let url = server.url();
                (Some(Private::Single(server)), url)
            }
        };
        let redis_prefix = options.redis_prefix.clone().unwrap_or_else(|| {
            if redis.is_some() {
                "rg".into()
            } else {
                format!("rg{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
            }
        });
        let database = options
            .database
            .clone()
            .unwrap_or_else(|| format!("rg_{}", uuid::Uuid::new_v4().simple()));
        let signing_key = options
            .signing_key
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
        let keys = Keyring::from_hex(&signing_key, None).context("the signing key")?;
        let mut stack = Self {
            redis_url,
            redis_prefix,
            database_url: format!("{}/{database}", options.pg_base.trim_end_matches('/')),
            signing_key,
            keys,
            edge: None,
            origins: Vec::new(),
            workers: Vec::new(),
            redis,
            options,
            bins,
            dir,
            temporary,
            http: reqwest::Client::new(),
            db: OnceCell::new(),
            admin: OnceCell::new(),
            receiver: None,
        };
        if stack.options.webhook_receiver {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            let log = stack.dir.join("webhooks.log");
            let receiver = Receiver::logging(&secret, &log, "127.0.0.1:0").await?;
            let env = &mut stack.options.origin_env;
            env.push(("RUSHGATE_WEBHOOK_URLS".into(), receiver.url()));
            env.push(("RUSHGATE_WEBHOOK_SECRET".into(), secret));
            stack.receiver = Some(receiver);
        }
        // The edge's port is known before the origins start: they relay
        // ended sessions to it.
        let edge_port = stack
            .options
            .edge
            .map(|_| stack.options.edge_port.unwrap_or_else(free_port));
        if let Some(port) = edge_port {
            let url = format!("http://127.0.0.1:{port}");
            stack
                .options
                .origin_env
                .insert(0, ("RUSHGATE_EDGE_URL".into(), url));
        }
        for i in 0..stack.options.origins.max(1) {
            let port = match (i, stack.options.origin_port) {
                (0, Some(port)) => port,
                _ => free_port(),
            };
            stack.origins.push(Node { port, proc: None });
        }
        // The first origin creates and migrates the database; the rest follow.
        stack.start_origin(0).await?;
        let rest = (1..stack.origins.len()).map(|i| stack.spawn_origin(i));
        let rest: Vec<(usize, Proc)> = rest
            .enumerate()
            .map(|(i, p)| p.map(|p| (i + 1, p)))
            .collect::<anyhow::Result<_>>()?;
        for (i, mut proc) in rest {
            let url = format!("{}/readyz", stack.origins[i].url());
            let http = stack.http.clone();
            ready(&mut proc, Duration::from_secs(60), || answers(&http, &url)).await?;
            stack.origins[i].proc = Some(proc);
        }
        for i in 0..stack.options.workers {
            let proc = stack.spawn_worker(i)?;
            stack.workers.push(Some(proc));
        }
        if let (Some(runtime), Some(port)) = (stack.options.edge, edge_port) {
            let origins = stack.origin_urls();
            let script = match &stack.options.edge_script {
                Some(script) => Some(script.canonicalize().context("the edge script")?),
                None => None,
            };
            let spec = EdgeSpec {
                root: &root(),
                script: script.as_deref(),
                dir: &stack.dir.join("edge"),
                listen: "127.0.0.1",
                port,
                origins: &origins,
                signing_key: &stack.signing_key,
                vars: &stack.options.edge_vars,
                isolates: stack.options.isolates,
                spread: stack.options.spread,
            };
            std::fs::create_dir_all(spec.dir)?;
            let proc = edge::start(runtime, &spec).await?;
            stack.edge = Some(Node {
                port,
                proc: Some(proc),
            });
        }
        Ok(stack)
    }

    fn origin_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.bins.join("rushgate-origin"));
        command
            .args(args)
            .env("RUSHGATE_REDIS_URL", &self.redis_url)
            .env("RUSHGATE_REDIS_CLUSTER", self.redis_cluster().to_string())
            .env("RUSHGATE_REDIS_PREFIX", &self.redis_prefix)
            .env("RUSHGATE_DATABASE_URL", &self.database_url)
            .env("RUSHGATE_SIGNING_KEY", &self.signing_key)
            .env("RUSHGATE_LOG", &self.options.log)
            .env(
                "RUSHGATE_REQUIRE_EDGE_ADMISSION",
                self.options.edge.is_some().to_string(),
            )
            // A stack on one machine: its webhook receivers are on loopback.
            .env("RUSHGATE_WEBHOOK_ALLOW_PRIVATE", "true");
        if self.redis_cluster() {
            // A master's writes are promised only once a replica has them.
            command.env("RUSHGATE_REDIS_REPLICAS", "1");
        }
        for (name, value) in &self.options.origin_env {
            command.env(name, value);
        }
        command
    }

    fn spawn_origin(&self, i: usize) -> anyhow::Result<Proc> {
        let mut command = self.origin_command(&["serve"]);
        command.env(
            "RUSHGATE_BIND",
            format!("127.0.0.1:{}", self.origins[i].port),
        );
        if self.options.workers > 0 {
            command.env("RUSHGATE_NO_WORKERS", "true");
        }
        let log = self.dir.join(format!("origin-{i}-{}.log", short_id()));
        Proc::spawn(&format!("origin {i}"), command, &log)
    }

    fn spawn_worker(&self, i: usize) -> anyhow::Result<Proc> {
        let log = self.dir.join(format!("worker-{i}-{}.log", short_id()));
        Proc::spawn(
            &format!("worker {i}"),
            self.origin_command(&["worker"]),
            &log,
        )
    }

    /// Starts origin `i` (again) on its port and waits until it is ready.
    pub async fn start_origin(&mut self, i: usize) -> anyhow::Result<()> {
        let mut proc = self.spawn_origin(i)?;
        let url = format!("{}/readyz", self.origins[i].url());
        let http = self.http.clone();
        ready(&mut proc, Duration::from_secs(90), || answers(&http, &url)).await?;
        self.origins[i].proc = Some(proc);
        Ok(())
    }

    /// Stops origin `i` as an orchestrator would (SIGTERM: in-flight requests
    /// finish, counters are flushed).
    pub fn stop_origin(&mut self, i: usize) {
        self.origins[i].proc = None;
    }

    /// What origin `i` has logged so far (empty once it is stopped).
    pub fn origin_output(&self, i: usize) -> String {
        self.origins[i]
            .proc
            .as_ref()
            .map(Proc::output)
            .unwrap_or_default()
    }

    /// What the edge has logged so far.
    pub fn edge_output(&self) -> String {
        self.edge
            .as_ref()
            .and_then(|e| e.proc.as_ref())
            .map(Proc::output)
            .unwrap_or_default()
    }

    /// `kill -9` of origin `i`: a crash.
    pub fn crash_origin(&mut self, i: usize) {
        if let Some(proc) = self.origins[i].proc.take() {
            proc.crash();
        }
    }

    /// `kill -9` of worker process `i`.
    pub fn crash_worker(&mut self, i: usize) {
        if let Some(proc) = self.workers[i].take() {
            proc.crash();
        }
    }

    /// Starts worker process `i` again.
    pub fn start_worker(&mut self, i: usize) -> anyhow::Result<()> {
        self.workers[i] = Some(self.spawn_worker(i)?);
        Ok(())
    }

    /// Whether the stack's Redis is a cluster.
    pub fn redis_cluster(&self) -> bool {
        self.options.redis_cluster.is_some() || matches!(self.redis, Some(Private::Cluster(_)))
    }

    /// The private single Redis, to crash or restart it.
    pub fn redis_server(&mut self) -> Option<&mut RedisServer> {
        match self.redis.as_mut() {
            Some(Private::Single(server)) => Some(server),
            _ => None,
        }
    }

    /// The private Redis Cluster, to find and crash its masters.
    pub fn redis_cluster_nodes(&mut self) -> Option<&mut RedisCluster> {
        match self.redis.as_mut() {
            Some(Private::Cluster(cluster)) => Some(cluster),
            _ => None,
        }
    }

    /// Runs a `rushgate-origin` command (e.g. `demo`) against this stack and
    /// returns what it printed.
    pub fn origin_cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.origin_command(args).output()?;
        anyhow::ensure!(
            out.status.success(),
            "rushgate-origin {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn origin_url(&self, i: usize) -> String {
        self.origins[i].url()
    }

    pub fn origin_urls(&self) -> Vec<String> {
        self.origins.iter().map(Node::url).collect()
    }

    pub fn edge_url(&self) -> Option<String> {
        self.edge.as_ref().map(Node::url)
    }

    /// Where the public goes: the edge if there is one, else the first origin.
    pub fn front_url(&self) -> String {
        self.edge_url().unwrap_or_else(|| self.origin_url(0))
    }

    /// A client of the front, not signed in.
    pub fn client(&self) -> Client {
        Client::new(self.front_url())
    }

    /// The stack's database.
    pub async fn db(&self) -> anyhow::Result<&PgPool> {
        self.db
            .get_or_try_init(|| async {
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(&self.database_url)
                    .await
                    .context("connecting to the stack's database")
            })
            .await
    }

    /// A session token for a user, signed with the stack's key.
    pub fn session(&self, user_id: i64, role: Role) -> String {
        self.keys.sign(&SessionClaims {
            user_id,
            role,
            exp: OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600,
            sid: rand::random(),
            generation: 0,
        })
    }

    /// A user inserted straight into the database (no password: it cannot log
    /// in, only act with the session it is given), and a client of the front
    /// signed in as that user.
    pub async fn user(&self, role: Role) -> anyhow::Result<(i64, Client)> {
        let name = format!("u-{}", short_id());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, role) VALUES ($1, '!', $2) RETURNING id",
        )
        .bind(&name)
        .bind(role.as_str())
        .fetch_one(self.db().await?)
        .await?;
        Ok((id, self.client().as_user(self.session(id, role))))
    }

    /// An admin's client of the first origin (made once).
    pub async fn admin(&self) -> anyhow::Result<&Client> {
        self.admin
            .get_or_try_init(|| async {
                let (_, client) = self.user(Role::Admin).await?;
                Ok::<_, anyhow::Error>(client.at(self.origin_url(0)))
            })
            .await
    }

    /// An approved sale made by the admin: `input` as given.
    pub async fn sale(&self, input: &EventInput) -> anyhow::Result<rushgate_core::api::EventView> {
        let admin = self.admin().await?;
        Ok(admin.approved_event(admin, input).await?)
    }

    /// What is running, as JSON (the CLI prints it).
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "edge": self.edge_url(),
            "origins": self.origin_urls(),
            "redis_url": self.redis_url,
            "redis_prefix": self.redis_prefix,
            "database_url": self.database_url,
            "signing_key": self.signing_key,
            "dir": self.dir,
            "webhooks": self.receiver.as_ref().map(|r| serde_json::json!({
                "url": r.url(),
                "log": self.dir.join("webhooks.log"),
            })),
            "pids": {
                "redis": match &self.redis {
                    Some(Private::Single(server)) => serde_json::json!(server.pid()),
                    Some(Private::Cluster(cluster)) => serde_json::json!(cluster.pids()),
                    None => serde_json::Value::Null,
                },
                "origins": self.origins.iter().map(|o| o.proc.as_ref().map(Proc::pid)).collect::<Vec<_>>(),
                "workers": self.workers.iter().map(|w| w.as_ref().map(Proc::pid)).collect::<Vec<_>>(),
                "edge": self.edge.as_ref().and_then(|e| e.proc.as_ref().map(Proc::pid)),
            },
        })
    }
}

fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A sale input tests and the bench start from: open since a second ago, for
/// an hour, `stock` units of one tier at 10.00, two per person.
pub fn sale_input(stock: i64) -> EventInput {
    let now = OffsetDateTime::now_utc();
    EventInput {
        name: format!("Sale {}", short_id()),
        venue: "Test Hall".into(),
        description: String::new(),
        visible_at: now - time::Duration::minutes(1),
        opens_at: now - time::Duration::seconds(1),
        closes_at: now + time::Duration::hours(1),
        per_user_limit: 2,
        per_order_limit: None,
        payment_window_s: None,
        dedup_window_s: None,
        admission: None,
        buckets: None,
        // The door's own tests and the bots' bench ask for it.
        challenge: Some(ChallengeMode::Off),
        presale: None,
        velocity: None,
        tiers: vec![TierInput {
            name: "GA".into(),
            price_cents: 1000,
            stock,
        }],
    }
}
