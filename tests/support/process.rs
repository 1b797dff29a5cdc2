//! What every test server harness does with its process (`redis_server.rs`,
//! `postgres_server.rs`, `mariadb_server.rs`, `dynamodb_server.rs`): a free loopback port, a
//! fresh temporary directory, starting the server and waiting until it is ready (or has
//! exited, or the deadline passed), restarting it on its port, and stopping it (on drop too).
//!
//! Each harness includes it next to itself: `#[path = "process.rs"] mod process;`.
//! Standard library only.

#![allow(dead_code)] // each harness uses a different part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released: the server binds it next).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A fresh, empty temporary directory `cachet-{kind}-{pid}-{n}`.
pub fn new_dir(kind: &str) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cachet-{kind}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("create the test directory {}: {e}", dir.display()));
    dir
}

/// Whether something accepts a TCP connection on the loopback port.
pub fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Polls `ready` every `every` until it holds, while `child` runs: `Ok` with the child once
/// ready; `Err` saying why when the child exits first (`exited` describes it, e.g. with its
/// log) or `deadline` passes (the child is then killed).
pub fn wait_ready(
    mut child: Child,
    deadline: Duration,
    every: Duration,
    mut ready: impl FnMut() -> bool,
    mut exited: impl FnMut(std::process::ExitStatus) -> String,
) -> Result<Child, String> {
    let until = Instant::now() + deadline;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(exited(status));
        }
        if ready() {
            return Ok(child);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("not ready within {deadline:?}"));
        }
        std::thread::sleep(every);
    }
}

/// Calls `start` until it succeeds, for up to `deadline` (a restarted server's port may
/// still be held for a moment); panics with the last reason after that.
pub fn retry_start(what: &str, deadline: Duration, mut start: impl FnMut() -> Result<(), String>) {
    let until = Instant::now() + deadline;
    loop {
        match start() {
            Ok(()) => return,
            Err(why) if Instant::now() > until => panic!("could not start {what}: {why}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The server's process, while it runs.
#[derive(Default)]
pub struct Running(Mutex<Option<Child>>);

impl Running {
    /// Remembers the started child.
    pub fn set(&self, child: Child) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Child::id)
    }

    /// Kills the child (SIGKILL) and waits for it to be gone.
    pub fn kill(&self) {
        self.stop_with(|child| {
            let _ = child.kill();
        });
    }

    /// Sends `signal` (a `kill` option such as `-QUIT`), waits up to `grace` for the child
    /// to exit, then kills it.
    pub fn stop(&self, signal: &str, grace: Duration) {
        self.stop_with(|child| {
            let _ = std::process::Command::new("kill")
                .arg(signal)
                .arg(child.id().to_string())
                .status();
            let until = Instant::now() + grace;
            while Instant::now() < until {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        });
    }

    fn stop_with(&self, stop: impl FnOnce(&mut Child)) {
        let taken = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut child) = taken {
            stop(&mut child);
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
