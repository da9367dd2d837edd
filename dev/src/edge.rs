//! The edge: the built worker (`scripts/build-edge.sh`) under the `workerd`
//! binary that the npm packages bring, with a generated config — no proxy in
//! between — or under `wrangler dev`, as users run it.
//!
//! The workerd config has the worker (its module and Wasm) in `isolates`
//! services of their own — each its own isolate, as a sale on Cloudflare is
//! served by many — the first defining the Durable Object namespaces
//! (`DedupShard`, `QueueFrontier`, with storage on disk) and the others binding
//! them by service name, so all share one set of objects; the vars and the
//! signing key as text bindings; an outbound network that may reach loopback; a
//! location cache all isolates share (`dev/workerd/cache.js`, the Cache API of
//! one Cloudflare location); and a small router (`dev/workerd/router.js`) that
//! serves `static/` first, as wrangler's `[assets]` does, and spreads the rest
//! over the isolates: at random per request (`spray`), or by client address
//! (`affinity`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

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

/// How the router spreads requests over the isolates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// Each request to an isolate at random.
    #[default]
    Spray,
    /// Each client (`CF-Connecting-IP`) to one isolate; requests without an
    /// address at random.
    Affinity,
}

impl Spread {
    fn as_str(self) -> &'static str {
        match self {
            Self::Spray => "spray",
            Self::Affinity => "affinity",
        }
    }
}

pub struct EdgeSpec<'a> {
    pub root: &'a Path,
    /// A JavaScript module to run instead of the built worker (workerd only).
    pub script: Option<&'a Path>,
    pub dir: &'a Path,
    /// The address workerd listens on (`127.0.0.1`; `0.0.0.0` in a container).
    pub listen: &'a str,
    pub port: u16,
    /// The origins' base URLs; the edge spreads requests over them.
    pub origins: &'a [String],
    pub signing_key: &'a str,
    /// More `[vars]`, e.g. `("EVENT_CACHE_TTL_S", "1")`.
    pub vars: &'a [(String, String)],
    /// Isolates the worker runs in (workerd only; at least one).
    pub isolates: usize,
    pub spread: Spread,
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
    anyhow::ensure!(
        spec.isolates <= 1 || runtime == Runtime::Workerd,
        "several isolates run under workerd only"
    );
    let mut proc = match runtime {
        Runtime::Workerd => spawn_workerd(spec)?,
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

/// Starts workerd with the generated config, without waiting for it.
pub fn spawn_workerd(spec: &EdgeSpec<'_>) -> anyhow::Result<Proc> {
    let bin = node_bin(spec.root, "@cloudflare/workerd-linux-64/bin/workerd")?;
    let storage = spec.dir.join("durable-objects");
    std::fs::create_dir_all(&storage)?;
    let config = spec.dir.join("workerd.capnp");
    write_private(&config, &workerd_config(spec, &storage))?;
    let mut command = Command::new(bin);
    // Absolute `embed` paths resolve against the import path.
    command
        .arg("serve")
        .arg(&config)
        .args(["--import-path", "/"])
        // The worker's console (errors and warnings only) in the log.
        .arg("--verbose");
    // The DevTools protocol, for CPU profiles (bench/scripts/edge-profile.sh).
    if let Ok(address) = std::env::var("RUSHGATE_WORKERD_INSPECTOR") {
        command.arg(format!("--inspector-addr={address}"));
    }
    Proc::spawn("workerd", command, &spec.dir.join("workerd.log"))
}

/// Writes a file only its owner may read: it holds the signing key.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(text.as_bytes())
}

/// A capnp text literal.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The generated `workerd` config.
pub fn workerd_config(spec: &EdgeSpec<'_>, storage: &Path) -> String {
    let path = |p: &Path| quoted(&p.display().to_string());
    let build = spec.root.join("edge/build");
    let isolates = spec.isolates.max(1);
    let mut vars = vec![
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
    ];
    for (name, value) in spec.vars {
        vars.push(format!(
            "(name = {}, text = {})",
            quoted(name),
            quoted(value)
        ));
    }
    let modules = match spec.script {
        Some(script) => format!("(name = \"worker.js\", esModule = embed {})", path(script)),
        None => format!(
            "(name = \"index.js\", esModule = embed {}),\n    (name = \"index_bg.wasm\", wasm = embed {})",
            path(&build.join("index.js")),
            path(&build.join("index_bg.wasm"))
        ),
    };
    let mut out = String::new();
    let services: Vec<String> = (0..isolates)
        .map(|i| format!("(name = \"edge{i}\", worker = .edge{i}),"))
        .collect();
    let router_bindings: Vec<String> = (0..isolates)
        .map(|i| format!("(name = \"EDGE{i}\", service = \"edge{i}\"),"))
        .collect();
    let _ = write!(
        out,
        r#"using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .router),
    {services}
    (name = "location-cache", worker = .cache),
    (name = "assets", disk = (path = {static_dir}, writable = false)),
    (name = "do-storage", disk = (path = {storage}, writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "{listen}:{port}", http = (), service = "main")],
);

const router :Workerd.Worker = (
  modules = [(name = "router.js", esModule = embed {router})],
  compatibilityDate = "2025-06-01",
  bindings = [
    (name = "ASSETS", service = "assets"),
    {router_bindings}
    (name = "ISOLATES", text = "{isolates}"),
    (name = "DESK", durableObjectNamespace = (className = "SaleDesk", serviceName = "edge0")),
    (name = "SPREAD", text = "{spread}"),
    (name = "HEADERS", text = embed {headers}),
  ],
);

const cache :Workerd.Worker = (
  modules = [(name = "cache.js", esModule = embed {cache})],
  compatibilityDate = "2025-06-01",
);
"#,
        services = services.join("\n    "),
        router_bindings = router_bindings.join("\n    "),
        static_dir = path(&spec.root.join("static")),
        storage = path(storage),
        listen = spec.listen,
        port = spec.port,
        router = path(&spec.root.join("dev/workerd/router.js")),
        cache = path(&spec.root.join("dev/workerd/cache.js")),
        headers = path(&spec.root.join("static/_headers")),
        spread = spec.spread.as_str(),
    );
    for i in 0..isolates {
        // The first isolate's service defines the objects; the others bind
        // its namespaces, as every isolate of a Cloudflare deployment does.
        let (objects, owned) = if i == 0 {
            (
                "(name = \"DEDUP\", durableObjectNamespace = \"DedupShard\"),\n    \
                 (name = \"QUEUE\", durableObjectNamespace = \"QueueFrontier\"),\n    \
                 (name = \"DESK\", durableObjectNamespace = \"SaleDesk\"),\n    \
                 (name = \"TALLY\", durableObjectNamespace = \"FunnelTally\")"
                    .to_owned(),
                "durableObjectNamespaces = [\n    \
                 (className = \"DedupShard\", uniqueKey = \"rushgate-dedup-shard\", enableSql = true),\n    \
                 (className = \"QueueFrontier\", uniqueKey = \"rushgate-queue-frontier\", enableSql = true),\n    \
                 (className = \"SaleDesk\", uniqueKey = \"rushgate-sale-desk\", enableSql = true),\n    \
                 (className = \"FunnelTally\", uniqueKey = \"rushgate-funnel-tally\", enableSql = true),\n  ],\n  \
                 durableObjectStorage = (localDisk = \"do-storage\"),"
                    .to_owned(),
            )
        } else {
            (
                "(name = \"DEDUP\", durableObjectNamespace = (className = \"DedupShard\", serviceName = \"edge0\")),\n    \
                 (name = \"QUEUE\", durableObjectNamespace = (className = \"QueueFrontier\", serviceName = \"edge0\")),\n    \
                 (name = \"DESK\", durableObjectNamespace = (className = \"SaleDesk\", serviceName = \"edge0\")),\n    \
                 (name = \"TALLY\", durableObjectNamespace = (className = \"FunnelTally\", serviceName = \"edge0\"))"
                    .to_owned(),
                String::new(),
            )
        };
        let _ = write!(
            out,
            r#"
const edge{i} :Workerd.Worker = (
  modules = [
    {modules}
  ],
  compatibilityDate = "2025-06-01",
  bindings = [
    {vars},
    {objects}
  ],
  cacheApiOutbound = "location-cache",
  {owned}
);
"#,
            vars = vars.join(",\n    "),
        );
    }
    out
}

/// `wrangler.toml` for a worker that is built already: without `[build]`
/// (which makes `wrangler dev` rebuild at every start) and the environments,
/// its paths made absolute so that the copy may live anywhere.
pub fn prebuilt_wrangler_config(root: &Path) -> anyhow::Result<String> {
    let path = root.join("wrangler.toml");
    let text = std::fs::read_to_string(&path)?;
    let mut config: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    config.remove("build");
    config.remove("env");
    let absolute = |relative: Option<&str>| {
        relative
            .map(|r| root.join(r).display().to_string())
            .with_context(|| format!("{} names no such path", path.display()))
    };
    let main = absolute(config.get("main").and_then(|m| m.as_str()))?;
    config["main"] = toml_edit::value(main);
    let assets = absolute(config["assets"].get("directory").and_then(|d| d.as_str()))?;
    config["assets"]["directory"] = toml_edit::value(assets);
    Ok(config.to_string())
}

fn wrangler(spec: &EdgeSpec<'_>) -> anyhow::Result<Proc> {
    let bin = node_bin(spec.root, ".bin/wrangler")?;
    let config = spec.dir.join("wrangler.toml");
    std::fs::write(&config, prebuilt_wrangler_config(spec.root)?)?;
    // The key in `.dev.vars` beside the config (owner only), not on the
    // command line, where any user of the machine could read it.
    let key = format!("SIGNING_KEY = {}\n", quoted(spec.signing_key));
    write_private(&spec.dir.join(".dev.vars"), &key)?;
    let mut command = Command::new(bin);
    command
        .current_dir(spec.root)
        .arg("dev")
        .arg("--config")
        .arg(&config)
        .args(["--ip", "127.0.0.1"])
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
        .env("CI", "true")
        .env("WRANGLER_SEND_METRICS", "false");
    for (name, value) in spec.vars {
        command.args(["--var", &format!("{name}:{value}")]);
    }
    Proc::spawn("wrangler dev", command, &spec.dir.join("wrangler.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn private_files_are_for_their_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("rg-private-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("workerd.capnp");
        std::fs::write(&file, "old").unwrap();
        write_private(&file, "the key").unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "the key");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_prebuilt_config_has_no_build_step_and_absolute_paths() {
        let text = prebuilt_wrangler_config(&root()).unwrap();
        let config: toml_edit::DocumentMut = text.parse().unwrap();
        assert!(config.get("build").is_none());
        assert!(config.get("env").is_none());
        let assets = config["assets"]["directory"].as_str().unwrap();
        assert!(Path::new(assets).is_absolute());
        assert!(Path::new(assets).join("index.html").exists());
        let main = config["main"].as_str().unwrap();
        assert!(Path::new(main).is_absolute() && main.ends_with("shim.mjs"));
        assert_eq!(config["vars"]["DEDUP_SHARDS"].as_str(), Some("64"));
    }

    /// `[vars]` and Durable Object bindings are not inherited by wrangler
    /// environments: production must name every one the worker reads.
    #[test]
    fn production_sets_every_var_and_binding_of_development() {
        let text = std::fs::read_to_string(root().join("wrangler.toml")).unwrap();
        let config: toml_edit::DocumentMut = text.parse().unwrap();
        let production = &config["env"]["production"];
        let keys = |table: &toml_edit::Item| -> Vec<String> {
            let mut keys: Vec<String> = table
                .as_table_like()
                .unwrap()
                .iter()
                .map(|(k, _)| k.to_owned())
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&config["vars"]), keys(&production["vars"]));
        let bindings = |item: &toml_edit::Item| -> Vec<(String, String)> {
            item["bindings"]
                .as_array_of_tables()
                .unwrap()
                .iter()
                .map(|b| {
                    let text = |k: &str| b[k].as_str().unwrap().to_owned();
                    (text("name"), text("class_name"))
                })
                .collect()
        };
        let objects = bindings(&config["durable_objects"]);
        assert_eq!(
            objects,
            [
                ("DEDUP".to_owned(), "DedupShard".to_owned()),
                ("QUEUE".to_owned(), "QueueFrontier".to_owned()),
                ("DESK".to_owned(), "SaleDesk".to_owned()),
                ("TALLY".to_owned(), "FunnelTally".to_owned())
            ]
        );
        assert_eq!(bindings(&production["durable_objects"]), objects);
        assert!(config["build"]["command"].as_str().is_some());
        let origin = production["vars"]["ORIGIN_URL"].as_str().unwrap();
        assert!(origin.starts_with("https://"), "{origin}");
        assert_eq!(production["workers_dev"].as_bool(), Some(false));
    }
}
