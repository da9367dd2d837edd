//! The edge: the built worker (`scripts/build-edge.sh`) under the `workerd`
//! binary that the npm packages bring, with a generated config — no proxy in
//! between — or under `wrangler dev`, as users run it.
//!
//! The workerd config has the worker (its module and Wasm), the `DedupShard`
//! Durable Object namespace with storage on disk, the vars and the signing key
//! as text bindings, an outbound network that may reach loopback, and a small
//! router (`dev/workerd/router.js`) that serves `static/` first, as wrangler's
//! `[assets]` does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::{answers, free_port, ready};
use crate::proc::Proc;

/// What runs the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// The `workerd` binary with a generated config.
    Workerd,
    /// `wrangler dev` (workerd behind wrangler's proxy), as users run it.
    Wrangler,
}

pub struct EdgeSpec<'a> {
    pub root: &'a Path,
    /// A JavaScript module to run instead of the built worker (workerd only).
    pub script: Option<&'a Path>,
    pub dir: &'a Path,
    pub port: u16,
    /// The origins' base URLs; the edge spreads requests over them.
    pub origins: &'a [String],
    pub signing_key: &'a str,
    /// More `[vars]`, e.g. `("EVENT_CACHE_TTL_S", "1")`.
    pub vars: &'a [(String, String)],
}

/// Starts the edge and waits until it answers `GET /api/time`.
pub async fn start(runtime: Runtime, spec: &EdgeSpec<'_>) -> anyhow::Result<Proc> {
    let built = spec.root.join("edge/build/index.js");
    anyhow::ensure!(
        spec.script.is_some() || built.exists(),
        "the edge is not built: run scripts/build-edge.sh"
    );
    anyhow::ensure!(
        spec.script.is_none() || runtime == Runtime::Workerd,
        "an edge script runs under workerd only"
    );
    let mut proc = match runtime {
        Runtime::Workerd => workerd(spec)?,
        Runtime::Wrangler => wrangler(spec)?,
    };
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{}/api/time", spec.port);
    ready(&mut proc, Duration::from_secs(120), || answers(&http, &url)).await?;
    Ok(proc)
}

fn node_bin(root: &Path, path: &str) -> anyhow::Result<PathBuf> {
    let bin = root.join("node_modules").join(path);
    anyhow::ensure!(bin.exists(), "{} is missing: run npm ci", bin.display());
    Ok(bin)
}

fn workerd(spec: &EdgeSpec<'_>) -> anyhow::Result<Proc> {
    let bin = node_bin(spec.root, "@cloudflare/workerd-linux-64/bin/workerd")?;
    let storage = spec.dir.join("durable-objects");
    std::fs::create_dir_all(&storage)?;
    let config = spec.dir.join("workerd.capnp");
    std::fs::write(&config, workerd_config(spec, &storage))?;
    let mut command = Command::new(bin);
    // Absolute `embed` paths resolve against the import path.
    command
        .arg("serve")
        .arg(&config)
        .args(["--import-path", "/"]);
    Proc::spawn("workerd", command, &spec.dir.join("workerd.log"))
}

/// A capnp text literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The generated `workerd` config.
pub fn workerd_config(spec: &EdgeSpec<'_>, storage: &Path) -> String {
    let path = |p: &Path| quoted(&p.display().to_string());
    let build = spec.root.join("edge/build");
    let mut bindings = vec![
        format!(
            "(name = \"ORIGIN_URL\", text = {})",
            quoted(&spec.origins[0])
        ),
        format!(
            "(name = \"ORIGIN_URLS\", text = {})",
            quoted(&spec.origins.join(","))
        ),
        format!(
            "(name = \"SIGNING_KEY\", text = {})",
            quoted(spec.signing_key)
        ),
        "(name = \"DEDUP\", durableObjectNamespace = \"DedupShard\")".to_owned(),
    ];
    for (name, value) in spec.vars {
        bindings.push(format!(
            "(name = {}, text = {})",
            quoted(name),
            quoted(value)
        ));
    }
    let mut out = String::new();
    let _ = write!(
        out,
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .router),
    (name = "edge", worker = .edge),
    (name = "assets", disk = (path = {static_dir}, writable = false)),
    (name = "do-storage", disk = (path = {storage}, writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);

const router :Workerd.Worker = (
  modules = [(name = "router.js", esModule = embed {router})],
  compatibilityDate = "2025-06-01",
  bindings = [
    (name = "ASSETS", service = "assets"),
    (name = "EDGE", service = "edge"),
    (name = "HEADERS", text = embed {headers}),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    {modules}
  ],
  compatibilityDate = "2025-06-01",
  bindings = [
    {bindings}
  ],
  durableObjectNamespaces = [
    (className = "DedupShard", uniqueKey = "rushgate-dedup-shard", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "do-storage"),
);
"#,
        static_dir = path(&spec.root.join("static")),
        storage = path(storage),
        port = spec.port,
        router = path(&spec.root.join("dev/workerd/router.js")),
        headers = path(&spec.root.join("static/_headers")),
        modules = match spec.script {
            Some(script) => format!("(name = \"worker.js\", esModule = embed {})", path(script)),
            None => format!(
                "(name = \"index.js\", esModule = embed {}),\n    (name = \"index_bg.wasm\", wasm = embed {})",
                path(&build.join("index.js")),
                path(&build.join("index_bg.wasm"))
            ),
        },
        bindings = bindings.join(",\n    "),
    );
    out
}

fn wrangler(spec: &EdgeSpec<'_>) -> anyhow::Result<Proc> {
    let bin = node_bin(spec.root, ".bin/wrangler")?;
    let mut command = Command::new(bin);
    command
        .current_dir(spec.root)
        .args(["dev", "--config", "wrangler.toml", "--ip", "127.0.0.1"])
        .args(["--port", &spec.port.to_string()])
        .args(["--inspector-port", &free_port().to_string()])
        .args([
            "--show-interactive-dev-session=false",
            "--log-level",
            "warn",
        ])
        .arg("--persist-to")
        .arg(spec.dir.join("wrangler"))
        .args(["--var", &format!("ORIGIN_URL:{}", spec.origins[0])])
        .args(["--var", &format!("ORIGIN_URLS:{}", spec.origins.join(","))])
        .args(["--var", &format!("SIGNING_KEY:{}", spec.signing_key)])
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false");
    for (name, value) in spec.vars {
        command.args(["--var", &format!("{name}:{value}")]);
    }
    Proc::spawn("wrangler dev", command, &spec.dir.join("wrangler.log"))
}
