//! Helpers shared by the facade's integration tests.

#[cfg(feature = "redis")]
pub mod chaos;
pub mod clocked;
pub mod counting;
pub mod dynamodb_server;
pub mod redis_server;
pub mod temp_dir;

use std::time::{Duration, Instant};

/// Polls `check` until it holds, failing with `what` after five seconds; returns how long it took.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

/// Runs `redis-cli` against the server on `port`, returning its output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server) runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
