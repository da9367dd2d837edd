//! Child processes the stack starts: each the leader of its own process group,
//! so stopping it stops whatever it started (wrangler's workerd, say), with its
//! output in a log file. Dropping a process stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `command` in a new process group, its output going to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let out = std::fs::File::create(log)?;
        let child = command
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {name}: {e}"))?;
        Ok(Self {
            child,
            name: name.to_owned(),
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) to the process's group.
    pub fn signal(&self, signal: &str) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// `kill -9` of the whole group: a crash, not a shutdown.
    pub fn crash(mut self) {
        self.signal("KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    /// SIGTERM, then SIGKILL if the process is still there after 10 s.
    fn drop(&mut self) {
        if !self.alive() {
            return;
        }
        self.signal("TERM");
        let until = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.alive() {
            self.signal("KILL");
        }
        let _ = self.child.wait();
    }
}
