//! Cold start of the edge: how long a fresh `workerd` takes from exec to its
//! first answer with the Rust worker (Wasm compiled and instantiated), with the
//! JavaScript twin (bench/js-edge), and with an empty worker — the runtime's
//! own start, which the other two pay as well. Runs alternate so that drift in
//! the machine's load hits all three alike.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rushgate_dev::edge::{EdgeSpec, spawn_workerd};
use rushgate_dev::free_port;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, clap::Args)]
pub struct ColdStartArgs {
    /// The repository (for edge/build, static/ and the router).
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// The JavaScript worker to compare with.
    #[arg(long, default_value = "bench/js-edge/worker.js")]
    pub js: PathBuf,
    /// Starts of each worker.
    #[arg(long, default_value_t = 15)]
    pub runs: usize,
}

#[derive(Debug, Serialize)]
pub struct ColdStartReport {
    pub runs: usize,
    /// Median ms from exec to the first answer of `GET /api/time`.
    pub rust_ms: f64,
    pub js_ms: f64,
    pub empty_ms: f64,
    /// What the worker adds to the runtime's start, ms (median minus the empty
    /// worker's median).
    pub rust_worker_ms: f64,
    pub js_worker_ms: f64,
    /// The first request after the start, ms (the isolate's first event).
    pub rust_first_request_ms: f64,
    pub js_first_request_ms: f64,
}

const EMPTY: &str = "export default { fetch() { return new Response('{}'); } };\n";

pub async fn run(args: &ColdStartArgs) -> anyhow::Result<ColdStartReport> {
    let root = std::fs::canonicalize(&args.root)?;
    anyhow::ensure!(
        root.join("edge/build/index_bg.wasm").exists(),
        "the edge is not built: run scripts/build-edge.sh"
    );
    let dir = tempdir()?;
    let empty = dir.join("empty.js");
    std::fs::write(&empty, EMPTY)?;
    let js = std::fs::canonicalize(&args.js)?;
    let workers: [Option<&Path>; 3] = [None, Some(&js), Some(&empty)];
    let mut starts = [vec![], vec![], vec![]];
    let mut firsts = [vec![], vec![], vec![]];
    for _ in 0..args.runs {
        for (i, script) in workers.iter().enumerate() {
            let (start, first) = once(&root, &dir, *script).await?;
            starts[i].push(start);
            firsts[i].push(first);
        }
    }
    std::fs::remove_dir_all(&dir)?;
    let [rust, js, empty] = starts.map(median);
    let [rust_first, js_first, _] = firsts.map(median);
    Ok(ColdStartReport {
        runs: args.runs,
        rust_ms: rust,
        js_ms: js,
        empty_ms: empty,
        rust_worker_ms: rust - empty,
        js_worker_ms: js - empty,
        rust_first_request_ms: rust_first,
        js_first_request_ms: js_first,
    })
}

/// One start: ms to the first answer, and how long that first request took.
async fn once(root: &Path, dir: &Path, script: Option<&Path>) -> anyhow::Result<(f64, f64)> {
    let port = free_port();
    let run_dir = dir.join(format!("run-{port}"));
    std::fs::create_dir_all(&run_dir)?;
    let origins = ["http://127.0.0.1:9".to_owned()];
    let key = "00".repeat(32);
    let spec = EdgeSpec {
        root,
        script,
        dir: &run_dir,
        listen: "127.0.0.1",
        port,
        origins: &origins,
        signing_key: &key,
        vars: &[],
        isolates: 1,
        spread: rushgate_dev::edge::Spread::Spray,
    };
    let began = Instant::now();
    let mut proc = spawn_workerd(&spec)?;
    let limit = began + Duration::from_secs(30);
    loop {
        let asked = Instant::now();
        if let Some(status) = get(port, "/api/time").await {
            anyhow::ensure!(status == 200, "GET /api/time answered {status}");
            let done = Instant::now();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            return Ok((ms(done - began), ms(done - asked)));
        }
        anyhow::ensure!(proc.alive(), "workerd exited:\n{}", proc.output());
        anyhow::ensure!(Instant::now() < limit, "workerd did not answer in 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The status of a plain HTTP/1.1 GET, or `None` if nothing listens yet.
async fn get(port: u16, path: &str) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("rushgate-cold-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }
}
