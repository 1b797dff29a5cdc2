//! The test harness itself: what it promises other tests.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;

use std::process::Command;
use std::time::Duration;

use redis_server::RedisServer;

fn ping(server: &RedisServer) -> redis::RedisResult<String> {
    let client = redis::Client::open(server.url())?;
    let mut c = client.get_connection_with_timeout(Duration::from_millis(500))?;
    c.set_read_timeout(Some(Duration::from_millis(500)))?;
    redis::cmd("PING").query(&mut c)
}

#[test]
fn start_kill_restart_pause_resume() {
    let server = RedisServer::start();
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/0", server.port())
    );
    assert_eq!(ping(&server).unwrap(), "PONG");
    // no persistence: nothing survives a restart
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    server.kill();
    assert!(ping(&server).is_err());
    server.restart();
    assert_eq!(ping(&server).unwrap(), "PONG");
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let v: Option<String> = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, None);
    server.pause();
    assert!(ping(&server).is_err(), "a paused server answers nothing");
    server.resume();
    assert_eq!(ping(&server).unwrap(), "PONG");
    let port = server.port();
    drop(server);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "stopped on drop"
    );
}

#[test]
fn password_servers_need_the_password() {
    let server = RedisServer::start_with_password("pw-123");
    assert!(server.url().contains(":pw-123@"));
    assert_eq!(ping(&server).unwrap(), "PONG");
    let anonymous = format!("redis://127.0.0.1:{}/0", server.port());
    let mut c = redis::Client::open(anonymous)
        .unwrap()
        .get_connection()
        .unwrap();
    assert!(redis::cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut c)
        .is_err());
}

/// Without `redis-server` on PATH the harness panics with an install hint (never skips).
/// Checked in a child process of this test binary, run with an empty PATH.
#[test]
fn missing_redis_server_panics_with_an_install_hint() {
    if std::env::var_os("CACHET_HARNESS_CHILD").is_some() {
        let _ = RedisServer::start();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "missing_redis_server_panics_with_an_install_hint",
            "--nocapture",
        ])
        .env("CACHET_HARNESS_CHILD", "1")
        .env("PATH", "")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("redis-server not found on PATH: install it (e.g. `apt-get install -y redis-server`) — these tests need a real Redis"),
        "{text}"
    );
}
