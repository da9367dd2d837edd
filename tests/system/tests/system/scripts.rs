//! The bench scripts stop what they start: a script interrupted with Ctrl-C
//! (SIGINT to its whole process group, as a terminal sends it) leaves no
//! launcher, Redis, origin or workerd behind.

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use rushgate_client::eventually;

#[tokio::test]
async fn an_interrupted_bench_script_leaves_nothing_running() {
    use std::os::unix::process::CommandExt as _;
    let root = rushgate_dev::stack::root();
    let script = r#"
        source bench/scripts/lib.sh
        stack_up --edge workerd
        echo "ports ${RUSHGATE_REDIS_URL##*:} ${RUSHGATE_BIND##*:} ${EDGE##*:}"
        sleep 600
    "#;
    let mut child = Command::new("bash")
        .args(["-c", script])
        .current_dir(&root)
        .env("RUSHGATE_BENCH_PROFILE", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ports: Vec<u16> = line
        .strip_prefix("ports ")
        .unwrap_or_else(|| panic!("the script did not start its stack: {line:?}"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(ports.len(), 3, "{line}");
    let listening = |port: u16| TcpStream::connect(("127.0.0.1", port)).is_ok();
    assert!(ports.iter().all(|p| listening(*p)), "{ports:?}");

    let group = format!("-{}", child.id());
    Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the script exits as interrupted");
    eventually(Duration::from_secs(10), || async {
        ports.iter().all(|p| !listening(*p))
    })
    .await;
}
