//! The whole system on free loopback ports: a private `redis-server`, a fresh
//! PostgreSQL database, the `rushgate-origin` binary, and the built edge worker
//! under `wrangler dev` (workerd). Everything is stopped when the test ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rushgate_core::Keyring;
use rushgate_core::Role;
use rushgate_core::token::SessionClaims;
use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::support::{RedisServer, free_port};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A child process started in its own process group, killed with its children.
struct Proc {
    child: Child,
    name: &'static str,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt as _;
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Self { child, name, log }
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

pub struct System {
    pub edge: String,
    pub origin: String,
    pub key: String,
    pub db_url: String,
    pub keys: Keyring,
    pub db: PgPool,
    pub client: reqwest::Client,
    admin: String,
    _wrangler: Proc,
    _origin: Proc,
    _redis: RedisServer,
    dir: PathBuf,
}

impl Drop for System {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `url` answers 200, or panics with the process's log.
async fn ready(client: &reqwest::Client, url: &str, proc: &mut Proc, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status() == 200
        {
            return;
        }
        assert!(proc.alive(), "{} exited:\n{}", proc.name, proc.output());
        assert!(
            Instant::now() < until,
            "{} not ready in {limit:?}:\n{}",
            proc.name,
            proc.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl System {
    pub async fn start() -> Self {
        let root = root();
        let shim = root.join("edge/build/worker/shim.mjs");
        assert!(
            shim.exists(),
            "the edge is not built: run scripts/build-edge.sh (scripts/test.sh does)"
        );
        let wrangler = root.join("node_modules/.bin/wrangler");
        assert!(wrangler.exists(), "wrangler is missing: run npm ci");

        let dir =
            std::env::temp_dir().join(format!("rushgate-system-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let redis = RedisServer::start();
        let key = hex::encode(rand::random::<[u8; 32]>());
        let keys = Keyring::from_hex(&key, None).unwrap();
        let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/test.sh sets it)");
        let db_url = format!(
            "{}/rg_system_{}",
            base.rsplit_once('/').unwrap().0,
            uuid::Uuid::new_v4().simple()
        );

        let origin_port = free_port();
        let origin = format!("http://127.0.0.1:{origin_port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rushgate-origin"));
        command
            .arg("serve")
            .env("RUSHGATE_BIND", format!("127.0.0.1:{origin_port}"))
            .env("RUSHGATE_REDIS_URL", redis.url())
            .env("RUSHGATE_DATABASE_URL", &db_url)
            .env("RUSHGATE_SIGNING_KEY", &key)
            .env("RUSHGATE_REQUIRE_EDGE_ADMISSION", "true")
            .env("RUSHGATE_LOG", "warn");
        let mut origin_proc = Proc::spawn("rushgate-origin", command, dir.join("origin.log"));

        let edge_port = free_port();
        let edge = format!("http://127.0.0.1:{edge_port}");
        let mut command = Command::new(&wrangler);
        command
            .current_dir(&root)
            .args(["dev", "--config", "wrangler.toml", "--ip", "127.0.0.1"])
            .args(["--port", &edge_port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .args([
                "--show-interactive-dev-session=false",
                "--log-level",
                "warn",
            ])
            .args(["--persist-to", dir.join("wrangler").to_str().unwrap()])
            .args(["--var", &format!("ORIGIN_URL:{origin}")])
            .args(["--var", &format!("SIGNING_KEY:{key}")])
            .args(["--var", "EVENT_CACHE_TTL_S:1"])
            .args(["--var", "REPORT_EVERY_MS:200"])
            .env("CI", "true")
            .env("WRANGLER_SEND_METRICS", "false");
        let mut wrangler_proc = Proc::spawn("wrangler dev", command, dir.join("wrangler.log"));

        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        ready(
            &client,
            &format!("{origin}/readyz"),
            &mut origin_proc,
            Duration::from_secs(60),
        )
        .await;
        ready(
            &client,
            &format!("{edge}/api/time"),
            &mut wrangler_proc,
            Duration::from_secs(90),
        )
        .await;
        let db = rushgate_origin::store::db::connect(&db_url, 4)
            .await
            .unwrap();
        let mut system = Self {
            edge,
            origin,
            key,
            db_url,
            keys,
            db,
            client,
            admin: String::new(),
            _wrangler: wrangler_proc,
            _origin: origin_proc,
            _redis: redis,
            dir,
        };
        system.admin = system.user(Role::Admin).await.1;
        system
    }

    /// A user inserted straight into the database, and a session token.
    pub async fn user(&self, role: Role) -> (i64, String) {
        let name = format!("s{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, role) VALUES ($1, '!', $2) RETURNING id",
        )
        .bind(&name)
        .bind(role.as_str())
        .fetch_one(&self.db)
        .await
        .unwrap();
        let token = self.keys.sign(&SessionClaims {
            user_id: id,
            role,
            exp: OffsetDateTime::now_utc().unix_timestamp() + 3600,
        });
        (id, token)
    }

    /// An approved event created through the origin's API; returns (event, tier).
    pub async fn sale(&self, overrides: Value) -> (i64, i64) {
        let now = OffsetDateTime::now_utc();
        let at = |s: i64| {
            (now + time::Duration::seconds(s))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
        };
        let mut body = json!({
            "name": "System sale",
            "visible_at": at(-60),
            "opens_at": at(-1),
            "closes_at": at(3600),
            "per_user_limit": 2,
            "tiers": [{"name": "GA", "price_cents": 1000, "stock": 100}]
        });
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        let created = self
            .post(&self.origin, "/api/admin/events", &self.admin, body)
            .await;
        assert_eq!(created.0, 201, "{}", created.1);
        let id = created.1["id"].as_i64().unwrap();
        for step in ["submit", "approve"] {
            let r = self
                .post(
                    &self.origin,
                    &format!("/api/admin/events/{id}/{step}"),
                    &self.admin,
                    json!({}),
                )
                .await;
            assert_eq!(r.0, 200, "{}", r.1);
        }
        (id, created.1["tiers"][0]["id"].as_i64().unwrap())
    }

    pub async fn post(
        &self,
        base: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.post_with(base, path, token, body, &[]).await
    }

    pub async fn post_with(
        &self,
        base: &str,
        path: &str,
        token: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("request failed");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    pub async fn get(&self, base: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request failed");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.origin))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// Requests the origin has served on `route` (its Prometheus counter).
    pub async fn origin_requests(&self, route: &str) -> u64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.origin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let needle = format!("route=\"{route}\"");
        text.lines()
            .filter(|l| l.starts_with("rushgate_http_requests_total{") && l.contains(&needle))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}
