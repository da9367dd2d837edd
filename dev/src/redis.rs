//! Private Redis for one stack, on free ports, in the stack's directory (so an
//! AOF survives a restart): a single `redis-server`, or a Redis Cluster of
//! masters with a replica each (`redis-cli --cluster create`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::ports::{free_port, listening, ready};
use crate::proc::Proc;

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    /// More `redis-server` arguments (cluster mode).
    extra: Vec<String>,
    /// Remove `dir` when dropped.
    temporary: bool,
    proc: Option<Proc>,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.proc = None;
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl RedisServer {
    /// Starts a server keeping its files in `dir`; with `aof`, every write is
    /// appended and fsynced before it is answered.
    pub async fn start(dir: &Path, aof: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut server = Self {
            port: free_port(),
            dir: dir.to_owned(),
            aof,
            extra: Vec::new(),
            temporary: false,
            proc: None,
        };
        server.spawn().await?;
        Ok(server)
    }

    /// A server of its own in a temporary directory, removed when dropped.
    pub async fn temporary(aof: bool) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("rushgate-redis-{}", uuid::Uuid::new_v4().simple()));
        let mut server = Self::start(&dir, aof).await?;
        server.temporary = true;
        Ok(server)
    }

    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--dir"])
            .arg(&self.dir)
            .args(["--appendonly", if self.aof { "yes" } else { "no" }])
            .args(["--appendfsync", "always"])
            .args(&self.extra);
        let mut proc = Proc::spawn("redis-server", command, &self.dir.join("redis.log"))?;
        let port = self.port;
        ready(&mut proc, Duration::from_secs(10), || async move {
            listening(port)
        })
        .await?;
        self.proc = Some(proc);
        Ok(())
    }

    /// `kill -9`: gone without a shutdown save, as in a crash.
    pub fn crash(&mut self) {
        if let Some(proc) = self.proc.take() {
            proc.crash();
        }
    }

    /// A crash and a start on the same port and directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.crash();
        self.spawn().await
    }
}

/// A Redis Cluster: `masters` masters, each with one replica, slots spread
/// evenly (0–5460, 5461–10922, 10923–16383 for three), failing over after a
/// second without its master (`cluster-node-timeout 1000`).
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start(dir: &Path, masters: usize, aof: bool) -> anyhow::Result<Self> {
        let mut nodes = Vec::new();
        for i in 0..masters.max(1) * 2 {
            let node_dir = dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let mut node = RedisServer {
                port: free_port(),
                dir: node_dir,
                aof,
                extra: Vec::new(),
                temporary: false,
                proc: None,
            };
            node.extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
            ]
            .map(str::to_owned)
            .to_vec();
            node.spawn().await?;
            nodes.push(node);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()?;
        anyhow::ensure!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { nodes };
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while !cluster.settled() {
            anyhow::ensure!(
                std::time::Instant::now() < until,
                "the Redis Cluster did not settle"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(cluster)
    }

    /// Seed nodes for the cluster client: every node, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn pids(&self) -> Vec<Option<u32>> {
        self.nodes.iter().map(RedisServer::pid).collect()
    }

    /// The port of the master that owns `slot` now, as the nodes say.
    pub fn master_of_slot(&self, slot: u16) -> Option<u16> {
        let node = self.nodes.iter().find(|n| n.proc.is_some())?;
        // `<id> <ip:port@cport> <flags> <master> ... <slot ranges>`
        redis_cli(node.port, &["cluster", "nodes"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .find(|line| {
                line.split_whitespace().skip(8).any(|range| {
                    let (from, to) = range.split_once('-').unwrap_or((range, range));
                    matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
                })
            })
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|address| address.split(['@', ':']).nth(1)?.parse().ok())
    }

    /// The master whose buckets of an event hold the most units of a tier now
    /// (keys under `prefix`, as the origin names them), with the slots of
    /// those buckets and the units they hold.
    pub fn busiest_master(
        &self,
        prefix: &str,
        event_id: i64,
        tier_id: i64,
        buckets: u32,
    ) -> Option<Busiest> {
        let mut per_master: Vec<Busiest> = Vec::new();
        for b in 0..buckets {
            let tag = rushgate_core::bucket::tag(event_id, b, buckets);
            let slot = rushgate_core::bucket::slot(&tag);
            let master = self.master_of_slot(slot)?;
            let key = format!("{prefix}:{{{tag}}}:stock:t{tier_id}");
            let units: i64 = redis_cli(master, &["GET", &key])
                .trim()
                .parse()
                .unwrap_or(0);
            match per_master.iter_mut().find(|m| m.port == master) {
                Some(m) => {
                    m.units += units;
                    m.slots.push(slot);
                }
                None => per_master.push(Busiest {
                    port: master,
                    units,
                    slots: vec![slot],
                }),
            }
        }
        per_master.into_iter().max_by_key(|m| m.units)
    }

    /// Waits until every slot in `slots` has a live master other than `port`.
    pub async fn wait_taken_over(&self, port: u16, slots: &[u16]) -> anyhow::Result<()> {
        let until = std::time::Instant::now() + Duration::from_secs(30);
        while !slots
            .iter()
            .all(|s| matches!(self.master_of_slot(*s), Some(p) if p != port))
        {
            anyhow::ensure!(
                std::time::Instant::now() < until,
                "no failover of {port} in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// What `redis-cli -p <port> <args>` prints.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        redis_cli(port, args)
    }

    /// `kill -9` of the node on `port`.
    pub fn crash(&mut self, port: u16) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.port == port) {
            node.crash();
        }
    }

    /// Starts the node on `port` again, with its cluster identity
    /// (`nodes.conf`): after a failover it comes back as the new master's
    /// replica, as an orchestrator's restart would bring it.
    pub async fn restart(&mut self, port: u16) -> anyhow::Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .ok_or_else(|| anyhow::anyhow!("no node on port {port}"))?;
        node.crash();
        node.spawn().await
    }

    /// Every slot has a live master and every live replica is in sync: what a
    /// restarted node has reached once it serves as a replica again.
    pub fn settled(&self) -> bool {
        self.nodes.iter().filter(|n| n.proc.is_some()).all(|n| {
            let info = redis_cli(n.port, &["cluster", "info"]);
            let replication = redis_cli(n.port, &["info", "replication"]);
            info.contains("cluster_state:ok")
                && (replication.contains("role:master")
                    || replication.contains("master_link_status:up"))
        })
    }

    /// The ports of the masters, as the nodes say now.
    pub fn masters(&self) -> Vec<u16> {
        let Some(node) = self.nodes.iter().find(|n| n.proc.is_some()) else {
            return Vec::new();
        };
        redis_cli(node.port, &["cluster", "nodes"])
            .lines()
            .filter(|line| line.contains("master") && !line.contains("fail"))
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter_map(|address| address.split(['@', ':']).nth(1)?.parse().ok())
            .collect()
    }
}

/// A master and the event buckets it holds ([`RedisCluster::busiest_master`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busiest {
    pub port: u16,
    /// Units of the tier in those buckets.
    pub units: i64,
    /// Slots of the buckets.
    pub slots: Vec<u16>,
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}
